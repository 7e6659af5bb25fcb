"""Distribution without GPUs: MirroredStrategy over two logical CPU devices (--cpu-replicas 2), and
MultiWorkerMirroredStrategy with two local worker processes on loopback (TF_CONFIG)."""

import json
import os
import socket
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, small_fashion_mnist):
    return small_fashion_mnist(tmp_path_factory.mktemp("data"), n_train=1024, n_test=256)


def _args(data_dir, out, *extra):
    return ["--model", "lenet5_modern", "--dataset", "fashion_mnist", "--data-dir", data_dir, "--epochs", 2,
            "--batch-size", 64, "--recipe", "fast", "--output", out, "--verbose", 0, "--seed", 1, *extra]


def test_mirrored_over_two_cpu_replicas_matches_one_device(data_dir, tmp_path, train_cli):
    one = train_cli(*_args(data_dir, tmp_path / "one", "--strategy", "default"), timeout=240)
    two = train_cli(*_args(data_dir, tmp_path / "two", "--strategy", "mirrored", "--cpu-replicas", 2),
                    timeout=240)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    assert "MirroredStrategy over 2 replicas" in two.stdout
    assert "global batch 64 = 32 per replica x 2 replica(s)" in two.stdout
    m1 = json.loads((tmp_path / "one" / "metadata.json").read_text())
    m2 = json.loads((tmp_path / "two" / "metadata.json").read_text())
    assert m2["replicas"] == 2 and m2["strategy"] == "MirroredStrategy"
    rows = (tmp_path / "two" / "history.csv").read_text().splitlines()
    assert len(rows) == 3 and "nan" not in rows[-1].lower()
    # same data, same global batch: the accuracies agree within the noise of 256 test images
    assert abs(m1["test_accuracy"] - m2["test_accuracy"]) < 0.08
    assert m2["test_accuracy"] > 0.5


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_multiworker_with_two_local_workers(data_dir, tmp_path):
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
        cmd = [sys.executable, os.path.join(ROOT, "apps", "train.py"),
               *map(str, _args(data_dir, tmp_path / "mw", "--strategy", "multiworker"))]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        outputs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    chief_out = outputs[0][0]
    assert "MultiWorkerMirroredStrategy with 2 replicas in sync" in chief_out
    assert "global batch 64 = 32 per replica x 2 replica(s)" in chief_out
    meta = json.loads((tmp_path / "mw" / "metadata.json").read_text())
    assert meta["strategy"] == "MultiWorkerMirroredStrategy" and meta["replicas"] == 2
    assert meta["test_accuracy"] > 0.5
    rows = (tmp_path / "mw" / "history.csv").read_text().splitlines()
    assert len(rows) == 3 and "nan" not in rows[-1].lower()
