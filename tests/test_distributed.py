"""Distribution without GPUs: MirroredStrategy over two logical CPU devices (--cpu-replicas 2), and
MultiWorkerMirroredStrategy with two local worker processes on loopback (TF_CONFIG), for a classifier, for
the small Faster R-CNN (its own losses: model.fit's train_step, the custom loop's losses_on) and for an FCN (the
custom loop's per-pixel terms: per-image mean loss, pixel accuracy, mean IoU of a confusion matrix)."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

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


def _two_local_workers(args, timeout=300, pause_s=0):
    """Runs apps/train.py `args` as workers 0 and 1 of a MultiWorkerMirroredStrategy on loopback; returns
    [(returncode, stdout, stderr)] of both. pause_s > 0 stops worker 1 (SIGSTOP) for that long once it has made
    its strategy, as a process starved of the CPU would stop sending heartbeats."""
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT,
                   PYTHONUNBUFFERED="1")
        cmd = [sys.executable, os.path.join(ROOT, "apps", "train.py"), *map(str, args)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    try:
        head = _pause_after_strategy(procs[1], pause_s, timeout) if pause_s else ""
        outputs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    outputs[1] = (head + outputs[1][0], outputs[1][1])
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]


def _pause_after_strategy(proc, pause_s, timeout):
    """Reads `proc`'s stdout up to the line that names its strategy, stops it for pause_s seconds, lets it go on;
    returns what it read."""
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if not line or "replicas in sync" in line:
            break
    assert "replicas in sync" in lines[-1], "".join(lines)[-3000:]
    proc.send_signal(signal.SIGSTOP)
    time.sleep(pause_s)
    proc.send_signal(signal.SIGCONT)
    return "".join(lines)


def test_multiworker_with_two_local_workers(data_dir, tmp_path):
    """Worker 1 stops for 12 s once the workers are connected and the run still finishes: TensorFlow's own
    heartbeat timeout aborted both workers after a stop of 8 s (keras_cnns.training.strategy.HEARTBEAT_TIMEOUT_S)."""
    results = _two_local_workers(_args(data_dir, tmp_path / "mw", "--strategy", "multiworker"), pause_s=12)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    chief_out = results[0][1]
    assert "MultiWorkerMirroredStrategy with 2 replicas in sync" in chief_out
    assert "global batch 64 = 32 per replica x 2 replica(s)" in chief_out
    meta = json.loads((tmp_path / "mw" / "metadata.json").read_text())
    assert meta["strategy"] == "MultiWorkerMirroredStrategy" and meta["replicas"] == 2
    assert meta["test_accuracy"] > 0.5
    rows = (tmp_path / "mw" / "history.csv").read_text().splitlines()
    assert len(rows) == 3 and "nan" not in rows[-1].lower()


# -- the detector (Faster R-CNN, its own losses) under the same strategies -------------------------------------
# 8 scenes per split, 2 steps of 4: the losses hardly move in one short epoch, so every strategy should measure
# about the same ones. They still differ a little: anchors and RoIs are sampled at random, with other random
# streams on each replica; the box terms (a few foreground RoIs) vary most, so they are only checked finite.
DETECTOR_TERMS = ("loss", "rpn_objectness", "rpn_box", "head_class", "head_box")


def _detector_args(out, *extra):
    return ["--model", "frcnn_resnet_small", "--limit", 8, "--epochs", 1, "--batch-size", 4, "--recipe", "fast",
            "--output", out, "--verbose", 0, "--seed", 1, *extra]


def _one_epoch_row(folder, terms):
    """The one row of a 1-epoch run's history.csv, every term in `terms` and its val_ twin finite."""
    from keras_cnns import training

    rows = training.read_history_csv(str(folder / "history.csv"))
    assert [r["epoch"] for r in rows] == [1]
    row = rows[0]
    for term in terms:
        assert math.isfinite(row[term]) and math.isfinite(row["val_" + term]), (term, row)
    return row


def _custom_loop_on_two_workers(args, folder, task, timeout):
    """Runs `args` on two local workers, checks both exit 0 through the custom loop and the chief writes the model
    of `task` over 2 replicas; returns (the chief's stdout, metadata, checkpoints/state.json)."""
    results = _two_local_workers(args, timeout=timeout)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    chief_out = results[0][1]
    assert "(custom strategy.run loop)" in chief_out
    assert (folder / "model.keras").is_file()
    meta = json.loads((folder / "metadata.json").read_text())
    assert (meta["task"], meta["strategy"], meta["replicas"]) == (task, "MultiWorkerMirroredStrategy", 2)
    return chief_out, meta, json.loads((folder / "checkpoints" / "state.json").read_text())


def _detector_row(folder):
    return _one_epoch_row(folder, DETECTOR_TERMS)


def _close_to_one_device(row, one):
    for term in ("rpn_objectness", "head_class", "val_rpn_objectness", "val_head_class"):
        assert row[term] == pytest.approx(one[term], rel=0.02), term
    for term in ("loss", "val_loss"):
        assert row[term] == pytest.approx(one[term], rel=0.08), term


@pytest.fixture(scope="module")
def detector_one_device(tmp_path_factory, train_cli):
    out = tmp_path_factory.mktemp("frcnn") / "one"
    result = train_cli(*_detector_args(out, "--strategy", "default"), timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return _detector_row(out)


def test_detector_mirrored_over_two_cpu_replicas_matches_one_device(detector_one_device, tmp_path, train_cli):
    two = train_cli(*_detector_args(tmp_path / "two", "--strategy", "mirrored", "--cpu-replicas", 2), timeout=900)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "MirroredStrategy over 2 replicas" in two.stdout
    assert "global batch 4 = 2 per replica x 2 replica(s)" in two.stdout
    meta = json.loads((tmp_path / "two" / "metadata.json").read_text())
    assert (meta["task"], meta["strategy"], meta["replicas"]) == ("detection", "MirroredStrategy", 2)
    _close_to_one_device(_detector_row(tmp_path / "two"), detector_one_device)


def test_detector_multiworker_trains_with_its_own_losses(detector_one_device, tmp_path):
    """The custom strategy.run loop calls the detector's losses_on (what its train_step uses) on each replica."""
    folder = tmp_path / "mw"
    chief_out, meta, state = _custom_loop_on_two_workers(
        _detector_args(folder, "--strategy", "multiworker"), folder, "detection", timeout=900)
    assert "MultiWorkerMirroredStrategy with 2 replicas in sync" in chief_out
    assert "global batch 4 = 2 per replica x 2 replica(s)" in chief_out
    assert 0.0 <= meta["test_map50"] <= 1.0
    assert state["epochs_done"] == 1 and state["best"]["monitor"] == "val_loss"
    _close_to_one_device(_detector_row(folder), detector_one_device)


# -- a segmentation model (an FCN) in the custom loop: per-pixel terms ---------------------------------------
def test_segmentation_terms_against_numpy_and_keras_metrics():
    """Without any strategy: the loop's per-image loss is the mean of its pixels' -log p(label), whose batch
    average is model.fit's loss; pixel accuracy and the mean IoU of the summed confusion matrix are what
    model.fit's metrics report, a class absent from both labels and predictions left out of the mean."""
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_cnns.tasks import segmentation as seg
    from keras_cnns.training.loop import _epoch_logs, _segmentation_terms

    rng = np.random.default_rng(3)
    k = 4
    labels = rng.integers(0, k - 1, (4, 5, 6))  # class 3 in no label ...
    probs = rng.random((4, 5, 6, k)).astype("float32")
    probs[..., k - 1] = 1e-3  # ... and never predicted
    probs /= probs.sum(-1, keepdims=True)
    terms = _segmentation_terms(seg.loss(), k)
    total = {}
    for batch in (slice(0, 2), slice(2, 4)):  # an epoch of two batches, summed over each batch as the loop does
        per_image, values = terms(lambda x, training: x, tf.constant(probs[batch]), labels[batch], False)
        assert per_image.shape == (2,)
        for name, value in {**values, "examples": np.ones(2)}.items():
            total[name] = total.get(name, 0.0) + np.asarray(value, np.float64).sum(axis=0)
        # model.fit's mean per-pixel loss on one device, and its gradient (not H*W times it: SGD would feel that)
        x = tf.constant(probs[batch])
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            ours = tf.nn.compute_average_loss(terms(lambda p, training: p, x, labels[batch], True)[0],
                                              global_batch_size=2)
            keras_loss = keras.losses.SparseCategoricalCrossentropy()(labels[batch], x)
        assert float(ours) == pytest.approx(float(keras_loss), rel=1e-5)
        np.testing.assert_allclose(tape.gradient(ours, x), tape.gradient(keras_loss, x), rtol=1e-4, atol=1e-7)
    picked = np.take_along_axis(probs, labels[..., None], -1)[..., 0]
    predicted = probs.argmax(-1)
    assert total["confusion_matrix"].tolist() == seg.confusion_matrix(labels, predicted, k).tolist()
    logs = _epoch_logs(total)
    assert sorted(logs) == ["loss", "mean_iou", "pixel_accuracy"]
    assert logs["loss"] == pytest.approx(float(np.mean(-np.log(picked))), rel=1e-5)
    assert logs["pixel_accuracy"] == pytest.approx(float(np.mean(predicted == labels)), rel=1e-6)
    keras_iou = keras.metrics.MeanIoU(num_classes=k, sparse_y_pred=False)
    keras_iou.update_state(labels, probs)
    assert logs["mean_iou"] == pytest.approx(float(keras_iou.result()), abs=1e-6)
    m = total["confusion_matrix"]
    tp = np.diag(m)[:3]  # the mean over the three classes present: class 3 has no IoU
    assert logs["mean_iou"] == pytest.approx(float(np.mean(tp / (m.sum(0)[:3] + m.sum(1)[:3] - tp))), abs=1e-9)


# 8 scenes of 40x40 per split, 2 steps of 4 with the paper's SGD (lr 1e-2: a gradient H*W times too large would
# blow the loss up, where Adam would not notice); the same global batches on one device and on two workers.
SEGMENTATION_TERMS = ("loss", "mean_iou", "pixel_accuracy")


def _fcn_args(out, *extra):
    return ["--model", "fcn32s_vgg16_slim", "--dataset", "fashion_mnist_scenes", "--limit", 8, "--input-size", 40,
            "--epochs", 1, "--batch-size", 4, "--recipe", "paper", "--output", out, "--verbose", 0, "--seed", 1,
            *extra]


def _fcn_row(folder):
    row = _one_epoch_row(folder, SEGMENTATION_TERMS)
    assert set(SEGMENTATION_TERMS) | {"val_" + t for t in SEGMENTATION_TERMS} <= set(row), sorted(row)
    for term in ("mean_iou", "pixel_accuracy", "val_mean_iou", "val_pixel_accuracy"):
        assert 0.0 <= row[term] <= 1.0, (term, row)
    return row


def test_segmentation_multiworker_matches_model_fit_on_one_device(tmp_path, train_cli):
    """Two local workers train an FCN with the custom loop's per-pixel terms: the chief writes the model, the
    history has model.fit's columns and about its numbers, and val_mean_iou picks the best epoch."""
    one = train_cli(*_fcn_args(tmp_path / "one", "--strategy", "default"), timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    folder = tmp_path / "mw"
    _, meta, state = _custom_loop_on_two_workers(_fcn_args(folder, "--strategy", "multiworker"), folder,
                                                 "segmentation", timeout=600)
    assert 0.0 <= meta["test_mean_iou"] <= 1.0
    assert state["best"]["monitor"] == "val_mean_iou" and state["best"]["epoch"] == 1
    row, single = _fcn_row(folder), _fcn_row(tmp_path / "one")
    for term in ("loss", "val_loss"):
        assert row[term] == pytest.approx(single[term], rel=0.02), term
    for term in ("mean_iou", "pixel_accuracy", "val_mean_iou", "val_pixel_accuracy"):
        assert row[term] == pytest.approx(single[term], abs=0.02), term
