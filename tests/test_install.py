"""`pip install .` makes an installable keras_cnns: in a fresh virtual environment (system site-packages for
TensorFlow; no downloads), the console script classifies with the shipped LeNet-5 from another directory,
and it is the installed copy, not the checkout, that runs."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_pip_install_then_console_script_from_another_directory(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    done = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", ROOT],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KERAS_CNNS_HOME",
                                                            "KERAS_CNNS_SAVED_MODELS")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", XDG_DATA_HOME=str(tmp_path / "data"))
    where = subprocess.run([python, "-c", "import keras_cnns.paths as p; print(p.PACKAGE_DIR); "
                                          "print(p.saved_models_dir())"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    package_dir, home = where.stdout.split()[-2:]
    assert package_dir.startswith(str(venv)), where.stdout      # the installed copy, not the checkout
    assert home == str(tmp_path / "data" / "keras_cnns" / "saved_models")
    image = os.path.join(ROOT, "docs", "lenet5_bitmaps.png")
    done = subprocess.run([str(venv / "bin" / "keras-cnns-classify"), image, "--top", "1", "--json"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "\"class\"" in done.stdout
    done = subprocess.run([str(venv / "bin" / "keras-cnns-inspect"), "lenet5"], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "c3" in done.stdout, done.stderr[-3000:]


def test_every_shipped_model_weighs_under_25_mb_and_carries_its_metadata_history_and_curves():
    shipped = os.path.join(ROOT, "saved_models")
    folders = sorted(f for f in os.listdir(shipped) if os.path.isfile(os.path.join(shipped, f, "model.keras")))
    assert "fcn8s_vgg16_quarter-fashion_mnist_scenes" in folders and "lenet5-fashion_mnist" in folders
    for folder in folders:
        files = set(os.listdir(os.path.join(shipped, folder)))
        assert {"metadata.json", "history.csv", "curves.png"} <= files, folder
        assert os.path.getsize(os.path.join(shipped, folder, "model.keras")) < 25_000_000, folder
