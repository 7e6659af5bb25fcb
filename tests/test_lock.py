"""One run per output directory: a second train.py into a directory in use is refused with one line naming
the holder and exit status 2, the first finishes intact; a lock left by a dead process is taken over."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from keras_cnns import training
from keras_cnns.training import lock


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_holder(directory, **holder):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, lock.LOCK_FILENAME), "w") as f:
        json.dump({"host": socket.gethostname(), "started": "earlier", **holder}, f)


def test_a_live_holder_refuses_and_release_frees(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        _write_holder(tmp_path, pid=sleeper.pid)
        with pytest.raises(lock.OutputLocked, match=f"pid {sleeper.pid} on {socket.gethostname()}"):
            lock.acquire(str(tmp_path))
    finally:
        sleeper.kill()
        sleeper.wait()
    # now the holder is dead: taken over, then released on the way out of the block
    with lock.output_lock(str(tmp_path)):
        assert lock.read_holder(str(tmp_path))["pid"] == os.getpid()
        with pytest.raises(lock.OutputLocked):  # the same process cannot take it twice either
            lock.acquire(str(tmp_path))
    assert lock.read_holder(str(tmp_path)) is None


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    _write_holder(tmp_path, pid=_dead_pid(), host="elsewhere.example")
    with pytest.raises(lock.OutputLocked, match="elsewhere.example"):
        lock.acquire(str(tmp_path))


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(RuntimeError):
        with lock.output_lock(str(tmp_path)):
            raise RuntimeError("boom")
    assert not os.path.exists(tmp_path / lock.LOCK_FILENAME)


def test_two_runs_into_one_directory_the_second_is_refused_the_first_finishes(tmp_path, small_fashion_mnist,
                                                                              train_cli, train_popen):
    data_dir = small_fashion_mnist(tmp_path / "data", n_train=1200, n_test=128)
    out = tmp_path / "run"
    args = ["--model", "lenet5", "--dataset", "fashion_mnist", "--data-dir", data_dir, "--epochs", 3,
            "--batch-size", 32, "--recipe", "fast", "--output", out, "--verbose", 0]
    first = train_popen(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 150
        while time.time() < deadline and first.poll() is None and not (out / lock.LOCK_FILENAME).exists():
            time.sleep(0.05)
        assert first.poll() is None and (out / lock.LOCK_FILENAME).exists(), "the first run never took the lock"
        # Held still while the second starts (a loaded machine may take longer to import TensorFlow than the
        # first takes to train), then let go: the lock is held by a live process either way.
        first.send_signal(signal.SIGSTOP)
        try:
            second = train_cli(*args, timeout=150)
        finally:
            first.send_signal(signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=240)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 2 and "Traceback" not in second.stderr
    lines = [line for line in second.stderr.splitlines() if line.startswith("train.py")]  # not TF's C++ lines
    assert len(lines) == 1 and "in use by another run" in lines[0] and f"pid {first.pid}" in lines[0], lines
    assert first.returncode == 0, stderr[-2000:]
    assert [r["epoch"] for r in training.read_history_csv(str(out / "history.csv"))] == [1, 2, 3]
    assert json.loads((out / "metadata.json").read_text())["epochs"] == 3
    assert (out / "model.keras").stat().st_size > 0
    assert not (out / lock.LOCK_FILENAME).exists()
