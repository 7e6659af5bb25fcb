"""A run killed with SIGKILL mid-training resumes, when the same command is rerun, from its last finished
epoch and ends with the requested epochs and exactly one history row per epoch."""

import json
import signal
import subprocess
import time

from keras_cnns import training


def test_sigkill_mid_training_then_rerun_resumes_with_one_row_per_epoch(tmp_path, small_fashion_mnist, train_cli,
                                                                       train_popen):
    data_dir = small_fashion_mnist(tmp_path / "data", n_train=1200, n_test=128)
    out = tmp_path / "run"
    args = ["--model", "lenet5", "--dataset", "fashion_mnist", "--data-dir", data_dir, "--epochs", 4,
            "--batch-size", 32, "--recipe", "fast", "--output", out, "--verbose", 0]
    proc = train_popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state_path = out / "checkpoints" / "state.json"
    deadline = time.time() + 150
    try:
        while time.time() < deadline and proc.poll() is None:
            if state_path.exists():
                break          # epoch 1 is committed: epoch 2 has just started
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        assert state_path.exists(), "no epoch finished in time"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done = json.loads(state_path.read_text())["epochs_done"]
    assert 1 <= done < 4
    assert len(training.read_history_csv(str(out / "history.csv"))) == done
    assert not (out / "model.keras").exists()

    rerun = train_cli(*args, timeout=240)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    rows = training.read_history_csv(str(out / "history.csv"))
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    state = json.loads(state_path.read_text())
    assert state["epochs_done"] == 4
    assert json.loads((out / "metadata.json").read_text())["epochs"] == 4
    # no temporary or stale checkpoint files are left behind
    leftovers = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert leftovers == sorted({"state.json", state["weights"], state["best"]["weights"]})
