"""apps/train.py and apps/evaluate.py from the command line: a tiny run end to end, and bad input giving
one clear line and exit status 2, never a traceback."""

import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def evaluate_cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, "apps", "evaluate.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=240)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_fashion_mnist, train_cli):
    base = tmp_path_factory.mktemp("apps")
    data_dir = small_fashion_mnist(base / "data", n_train=512, n_test=128)
    out = base / "lenet5"
    run = train_cli("--model", "lenet5", "--dataset", "fashion_mnist", "--data-dir", data_dir, "--epochs", 1,
                    "--batch-size", 64, "--recipe", "fast", "--output", out, "--verbose", 0, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    return run, out, data_dir


def test_train_prints_the_test_accuracy_and_writes_the_directory(trained):
    run, out, _ = trained
    assert "test_accuracy=" in run.stdout
    # TensorFlow's oneDNN kernels, chosen before TensorFlow was imported (on unless the environment says)
    expected = "off" if os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").lower() in ("0", "false", "off") else "on"
    assert f"Kernels: TensorFlow oneDNN {expected}" in run.stdout
    assert {"model.keras", "metadata.json", "history.csv", "curves.png"} <= set(os.listdir(out))


def test_evaluate_reports_per_class_accuracy_and_writes_a_confusion_matrix(trained):
    _, out, data_dir = trained
    res = evaluate_cli(out, "--data-dir", data_dir, "--no-onednn")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "accuracy" in res.stdout and "Ankle boot" in res.stdout and "top-5" in res.stdout
    assert res.stdout.startswith("Kernels: TensorFlow oneDNN off (TF_ENABLE_ONEDNN_OPTS=0)\n")  # --no-onednn wins
    assert os.path.getsize(os.path.join(out, "confusion_matrix.png")) > 0


@pytest.mark.parametrize("args, words", [
    (["--model", "lenet6"], "Unknown model 'lenet6'"),
    (["--model", "lenet5", "--dataset", "no_such_dataset"], "Unknown data source"),
    (["--model", "lenet5", "--epochs", "0"], "epochs must be a positive integer"),
    (["--model", "lenet5", "--cpu-replicas", "-1"], "--cpu-replicas must be 0 or more"),
    (["--model", "lenet5", "--steps-per-execution", "0"], "--steps-per-execution must be 1 or more"),
    (["--model", "lenet5", "--strategy", "multiworker"], "TF_CONFIG"),
    (["--model", "lenet5", "--heartbeat-timeout", "90"], "applies to strategy='multiworker' only"),
    (["--model", "lenet5", "--strategy", "multiworker", "--heartbeat-timeout", "0"],
     "heartbeat_timeout_s must be a positive number of seconds"),
])
def test_train_bad_input_is_one_line_and_exit_2(args, words, capsys, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        _app("train").main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and err.startswith("train.py: error")


def test_train_bad_input_in_a_real_process_has_no_traceback(train_cli):
    res = train_cli("--model", "lenet6", timeout=120)
    assert res.returncode == 2 and "Unknown model" in res.stderr and "Traceback" not in res.stderr


def _app(name):
    spec = importlib.util.spec_from_file_location(f"apps_{name}", os.path.join(ROOT, "apps", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_evaluate_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    evaluate = _app("evaluate")
    assert evaluate.main([str(tmp_path / "nothing_here")]) == 2
    assert "no model directory" in capsys.readouterr().err
    assert evaluate.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "metadata.json" in err and len(err.strip().splitlines()) == 1


def test_onednn_is_chosen_before_tensorflow_is_imported_and_the_environment_wins(monkeypatch):
    import tensorflow  # noqa: F401
    from keras_cnns import cli
    assert cli.choose_onednn(False) is None    # TensorFlow is imported in this process: nothing changes
    monkeypatch.delitem(sys.modules, "tensorflow")
    # set, then deleted, through monkeypatch: it puts back the variable's state from before the test (absent, or
    # the user's value), whatever choose_onednn writes into os.environ; later subprocesses inherit that state
    monkeypatch.setenv(cli.ONEDNN_ENV, "unset by the test")
    monkeypatch.delenv(cli.ONEDNN_ENV)
    assert cli.choose_onednn() == "on" and os.environ[cli.ONEDNN_ENV] == "1"
    monkeypatch.setenv(cli.ONEDNN_ENV, "0")
    assert cli.choose_onednn() == "off" and os.environ[cli.ONEDNN_ENV] == "0"   # the user's setting stays
    assert cli.choose_onednn(True) == "on"                                      # --onednn over it
    assert cli.choose_onednn(False) == "off" and os.environ[cli.ONEDNN_ENV] == "0"


@pytest.mark.parametrize("flags, autotune", [([], False), (["--tf-data-autotune"], True)])
def test_train_turns_tf_datas_autotuner_on_only_when_asked(flags, autotune, monkeypatch):
    """The pipelines' setting (keras_cnns.data.pipeline.TF_DATA_AUTOTUNE) as fit() starts: off unless the flag."""
    import keras_cnns.training
    from keras_cnns.data import pipeline
    seen = []

    def fit(*args, **kwargs):
        seen.append(pipeline.TF_DATA_AUTOTUNE)
        raise ValueError("stopped by the test")  # a user error: one line and exit status 2

    monkeypatch.setattr(keras_cnns.training, "fit", fit)
    monkeypatch.setattr(pipeline, "TF_DATA_AUTOTUNE", not autotune)  # whatever it was, the command decides
    with pytest.raises(SystemExit):
        _app("train").main(["--model", "lenet5", "--no-onednn", *flags])
    assert seen == [autotune]


@pytest.mark.parametrize("flags, passed", [([], None), (["--steps-per-execution", "1"], 1),
                                           (["--steps-per-execution", "8"], 8)])
def test_train_leaves_steps_per_execution_to_the_model_unless_told(flags, passed, monkeypatch):
    """None lets fit() take the model's own (its registry spec's); a number, 1 included, is passed on as it is."""
    import keras_cnns.training
    seen = []

    def fit(*args, **kwargs):
        seen.append(kwargs["steps_per_execution"])
        raise ValueError("stopped by the test")

    monkeypatch.setattr(keras_cnns.training, "fit", fit)
    with pytest.raises(SystemExit):
        _app("train").main(["--model", "lenet5_modern", "--no-onednn", *flags])
    assert seen == [passed]


@pytest.mark.parametrize("strategy", ["multiworker", "default"])
def test_train_says_what_to_do_when_a_worker_stops_answering(strategy, monkeypatch, capsys, tmp_path):
    """A multi-worker run whose peer went silent (tf.errors.UnavailableError from a collective) ends with one line
    that says where the committed epochs are and how to resume, exit status 1; elsewhere the error is not ours
    to explain, and it goes up as it is."""
    import tensorflow as tf

    import keras_cnns.training

    def fit(*args, **kwargs):
        assert kwargs["heartbeat_timeout_s"] is None  # the package's default, named in the message below
        raise tf.errors.UnavailableError(None, None, "Collective ops is aborted by: tasks are unhealthy\nmore")

    monkeypatch.setattr(keras_cnns.training, "fit", fit)
    argv = ["--model", "lenet5_modern", "--no-onednn", "--strategy", strategy, "--output", str(tmp_path / "mw")]
    if strategy != "multiworker":
        with pytest.raises(tf.errors.UnavailableError):
            _app("train").main(argv)
        return
    with pytest.raises(SystemExit) as stop:
        _app("train").main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 1
    assert "a worker stopped answering (Collective ops is aborted by: tasks are unhealthy)" in err
    assert f"{tmp_path / 'mw' / 'checkpoints'}: start the same command on every worker to resume" in err
    assert "A worker silent for 60 s aborts every worker (--heartbeat-timeout" in err and "Traceback" not in err


def test_train_passes_its_heartbeat_timeout_to_the_strategy_and_names_it(monkeypatch, capsys, tmp_path):
    """--heartbeat-timeout 90 reaches the coordination service through fit() and make_strategy(), and the line
    after an abort names 90 s (the service is stubbed: it records the timeout, then reports a silent peer)."""
    import tensorflow as tf

    from keras_cnns.training import strategy as st
    configured = []

    def configure_coordination(heartbeat_timeout_s):
        configured.append(heartbeat_timeout_s)
        raise tf.errors.UnavailableError(None, None, "Collective ops is aborted by: tasks are unhealthy")

    monkeypatch.setattr(st, "configure_coordination", configure_coordination)
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 0}}')
    with pytest.raises(SystemExit) as stop:
        _app("train").main(["--model", "lenet5_modern", "--no-onednn", "--strategy", "multiworker",
                            "--heartbeat-timeout", "90", "--output", str(tmp_path / "mw")])
    assert stop.value.code == 1 and configured == [90.0]
    assert "A worker silent for 90 s aborts every worker" in capsys.readouterr().err
