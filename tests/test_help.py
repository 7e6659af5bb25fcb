"""Every app's --help shows the examples of its docstring and never "(default: None)" beside an option whose
default is computed elsewhere; inspect.py's CSV quotes what needs quoting (the GoogLeNet paper's title)."""

import csv
import importlib
import io
import os
import pkgutil
import subprocess
import sys

import pytest

import keras_cnns.cli
from keras_cnns import anatomy

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

APPS = sorted(m.name for m in pkgutil.iter_modules(keras_cnns.cli.__path__)
              if hasattr(importlib.import_module(f"keras_cnns.cli.{m.name}"), "parse_args"))


def _help(app, capsys):
    module = importlib.import_module(f"keras_cnns.cli.{app}")
    with pytest.raises(SystemExit) as done:
        module.parse_args(["--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_every_app_is_covered():
    assert {"classify", "evaluate", "export", "inspect", "scoremap", "train"} <= set(APPS)


@pytest.mark.parametrize("app", APPS)
def test_help_shows_examples_and_no_default_none(app, capsys):
    text = _help(app, capsys)
    examples = [line.strip() for line in importlib.import_module(f"keras_cnns.cli.{app}").__doc__.splitlines()
                if line.strip().startswith(f"python apps/{app}.py")]
    assert examples, f"{app}'s docstring has no example"
    assert all(example in text for example in examples)
    assert "(default: None)" not in text and "(default: False)" not in text and "default: None" not in text


def test_help_keeps_real_defaults(capsys):
    text = " ".join(_help("classify", capsys).split())
    assert "how many classes to show per image (default: 5)" in text
    assert "default: saved_models/lenet5-fashion_mnist" in text   # said in words, not "(default: None)"


def test_csv_quotes_the_googlenet_paper_title(monkeypatch):
    spec = keras_cnns.get_spec("googlenet")
    row = ("googlenet", spec.paper, "224x224x3", 6_998_552, spec.deviations)
    monkeypatch.setattr(anatomy, "zoo_rows", lambda: [row])
    text = anatomy.zoo_table("csv")
    assert '"Szegedy et al. 2014, ""Going deeper with convolutions"""' in text
    header, parsed = list(csv.reader(io.StringIO(text)))
    assert parsed == [str(c) for c in row] and header[1] == "paper"


def test_per_layer_csv_parses_back_to_the_table():
    rows = list(csv.reader(io.StringIO(anatomy.model_table("lenet5", fmt="csv"))))
    assert rows[0][:4] == ["layer", "type", "output shape", "parameters"]
    assert {r[0]: int(r[3]) for r in rows[1:]}["c3"] == 1516
    assert len({len(r) for r in rows}) == 1


@pytest.mark.parametrize("env, shown", [({}, False), ({"KERAS_CNNS_NATIVE_LOGS": "1"}, True)])
def test_the_apps_hide_native_log_lines_unless_asked_and_keep_python_stderr(env, shown):
    code = ("import os, sys; from keras_cnns.cli.stderr import quiet_native_logs; quiet_native_logs(); "
            "os.write(2, b'native line\\n'); print('python line', file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, cwd=ROOT)
    assert "python line" in proc.stderr
    assert ("native line" in proc.stderr) is shown


def test_native_lines_reach_the_terminal_again_once_an_app_has_loaded_its_model():
    code = ("import os, sys; from keras_cnns.cli.stderr import quiet_native_logs, restore_native_logs; "
            "quiet_native_logs(); os.write(2, b'start-up line\\n'); restore_native_logs(); restore_native_logs(); "
            "os.write(2, b'abort message\\n'); print('python line', file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "KERAS_CNNS_NATIVE_LOGS"}, cwd=ROOT)
    assert "start-up line" not in proc.stderr
    assert "abort message" in proc.stderr and "python line" in proc.stderr


@pytest.mark.parametrize("app", APPS)
def test_help_in_a_fresh_process_imports_no_model_module_nor_tensorflow(app):
    code = ("import contextlib, io, runpy, sys\n"
            f"sys.argv = ['apps/{app}.py', '--help']\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n"
            f"        runpy.run_path('apps/{app}.py', run_name='__main__')\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('keras_cnns.models') or m == 'tensorflow'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"
