"""A run killed with SIGKILL mid-training resumes, when the same command is rerun, from its last finished
epoch and ends with the requested epochs and exactly one history row per epoch."""

import json
import math
import signal
import subprocess
import time

from keras_cnns import training


def _committed(state_path):
    """Whether an epoch's commit is complete: state.json and the history.csv written after it (commit steps 3
    and 4 of keras_cnns.training.callbacks) agree. A kill between the two leaves history.csv one epoch behind
    until the rerun writes it again from state.json, which is what a test reading it right after the kill
    must not catch (it did once, CI of 2026-11-30)."""
    history = state_path.parent.parent / "history.csv"
    if not (state_path.exists() and history.exists()):
        return False
    try:
        return len(training.read_history_csv(str(history))) == json.loads(state_path.read_text())["epochs_done"]
    except (OSError, ValueError, KeyError):
        return False


def _killed_after_first_commit(proc, state_path, wait):
    """SIGKILLs the run `proc` as soon as its first commit is complete (epoch 1 committed, epoch 2 just
    started); returns the epochs it had committed."""
    deadline = time.time() + wait
    try:
        while time.time() < deadline and proc.poll() is None and not _committed(state_path):
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        assert _committed(state_path), "no epoch finished in time"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return json.loads(state_path.read_text())["epochs_done"]


def test_sigkill_mid_training_then_rerun_resumes_with_one_row_per_epoch(tmp_path, small_fashion_mnist, train_cli,
                                                                       train_popen):
    data_dir = small_fashion_mnist(tmp_path / "data", n_train=1200, n_test=128)
    out = tmp_path / "run"
    args = ["--model", "lenet5", "--dataset", "fashion_mnist", "--data-dir", data_dir, "--epochs", 4,
            "--batch-size", 32, "--recipe", "fast", "--output", out, "--verbose", 0]
    state_path = out / "checkpoints" / "state.json"
    done = _killed_after_first_commit(train_popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                                      state_path, wait=150)
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


def test_a_detector_killed_after_its_first_epoch_resumes_with_its_four_losses(tmp_path, train_cli, train_popen):
    """The same for Faster R-CNN (its own train_step; checkpoint monitor val_loss, lower is better)."""
    out = tmp_path / "frcnn"
    args = ["--model", "frcnn_resnet_small", "--limit", 8, "--epochs", 3, "--batch-size", 4, "--recipe", "fast",
            "--output", out, "--verbose", 0]
    state_path = out / "checkpoints" / "state.json"
    done = _killed_after_first_commit(train_popen(*args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                                      state_path, wait=600)
    assert 1 <= done < 3 and not (out / "model.keras").exists()
    before = training.read_history_csv(str(out / "history.csv"))

    rerun = train_cli(*args, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"Resuming from checkpoints/ after epoch {done} of 3" in rerun.stdout
    rows = training.read_history_csv(str(out / "history.csv"))
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[:done] == before                       # the committed epochs are kept as they were
    for row in rows:
        assert all(math.isfinite(row[k]) for k in ("loss", "rpn_objectness", "rpn_box", "head_class", "head_box"))
    state = json.loads(state_path.read_text())
    assert state["epochs_done"] == 3 and state["best"]["monitor"] == "val_loss"
    assert json.loads((out / "metadata.json").read_text())["task"] == "detection"
