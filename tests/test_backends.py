"""The zoo is written in Keras 3 (keras.ops): on the JAX backend, and on PyTorch's where torch is installed
(benchmarks/requirements.txt), every family but Faster R-CNN (TensorFlow's image and box ops) builds, loads
the weights saved under TensorFlow and gives the same outputs; LeNet-5's own layers (C3's partial table, the
trainable subsampling, the RBF output) train there with model.fit.
"""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_cnns import get_model, get_spec, list_models
from keras_cnns.registry import BACKENDS

HERE = os.path.dirname(os.path.abspath(__file__))
# One model per family and per custom layer: LRN (alexnet, googlenet), the grouped convolutions (alexnet), C3,
# subsampling and RBF (lenet5), the shortcut (resnet20), global pooling (nin_cifar), the FCN's crop-and-add
# skips at an odd size (fcn8s_vgg16_slim), the binary bottleneck (feature_autoencoder). NIN's "same" average
# pool is the one Keras pools differently on PyTorch (keras_cnns.layers.pooling).
MODELS = {"lenet5": {}, "lenet5_modern": {}, "alexnet": {}, "vgg11_lrn": {"input_shape": (32, 32, 3)},
          "resnet20": {}, "nin_cifar": {}, "googlenet": {},
          "fcn8s_vgg16_slim": {"input_shape": (None, None, 1), "num_classes": 11}, "feature_autoencoder": {}}
ODD = {"fcn8s_vgg16_slim": (67, 45, 1)}


def _run(backend, *args, env=None):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    if backend == "jax":  # eager JAX compiles each op for each new shape: XLA's optimisation passes off roughly
        # halve that (the comparison on 2 CPU cores: 112 s -> 66 s); the HLO, the ops' arithmetic, is the same
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()
    proc = subprocess.run([sys.executable, os.path.join(HERE, "_backend_check.py"), *args], capture_output=True,
                          text=True, env=env, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BACKEND_CHECK ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    result = json.loads(lines[-1][len("BACKEND_CHECK "):])
    assert result["backend"] == backend
    return result


@pytest.fixture(scope="module")
def saved_under_tensorflow(tmp_path_factory):
    assert keras.backend.backend() == "tensorflow"
    directory = tmp_path_factory.mktemp("backends")
    for name, kwargs in MODELS.items():
        keras.utils.set_random_seed(0)
        model = get_model(name, **kwargs)
        shape = ODD.get(name) or tuple(model.input_shape[1:])
        x = np.random.default_rng(1).standard_normal((2,) + shape).astype("float32")
        model.save_weights(str(directory / f"{name}.weights.h5"))
        np.savez(directory / f"{name}.npz", x=x, y=np.asarray(model(x, training=False)), kwargs=json.dumps(kwargs))
    return directory


@pytest.fixture(scope="module")
def compared(saved_under_tensorflow):
    """backend -> what _backend_check.py compare printed there: one interpreter per backend for the module."""
    results = {}

    def on(backend):
        if importlib.util.find_spec(backend) is None:
            pytest.skip(f"{backend} is not installed (PyTorch: pip install -r benchmarks/requirements.txt)")
        if backend not in results:
            results[backend] = _run(backend, "compare", str(saved_under_tensorflow), *MODELS)
        return results[backend]
    return on


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_family_gives_tensorflows_outputs_on_another_backend(backend, compared):
    result = compared(backend)
    for name in MODELS:
        diff = result[name]
        assert diff["max_abs_diff"] <= 1e-5 * max(1.0, diff["scale"]), (name, diff)


def test_lenet5_trains_on_jax():
    loss = _run("jax", "train")["loss"]
    assert all(np.isfinite(loss)) and loss[-1] < 0.8 * loss[0], loss


def test_faster_rcnn_says_it_needs_tensorflow_on_another_backend(compared):
    assert [s.name for s in map(get_spec, list_models()) if s.backends != BACKENDS] == \
        ["frcnn_resnet101", "frcnn_resnet50", "frcnn_resnet_small"]
    refusal = compared("jax")["frcnn_refusal"]
    assert refusal == ("frcnn_resnet_small runs on the Keras backend tensorflow only. Received: KERAS_BACKEND=jax. "
                       "Set KERAS_BACKEND=tensorflow to build it.")


def test_tensorflows_onednn_kernels_give_the_default_kernels_outputs(saved_under_tensorflow):
    # apps/train.py turns them on (keras_cnns.cli.choose_onednn); where TensorFlow already runs them by default
    # (AVX-512 VNNI/BF16, AMX CPUs) this compares oneDNN with itself
    result = _run("tensorflow", "compare", str(saved_under_tensorflow), *MODELS, env={"TF_ENABLE_ONEDNN_OPTS": "1"})
    assert result["onednn"] is True
    for name in MODELS:
        diff = result[name]
        assert diff["max_abs_diff"] <= 1e-5 * max(1.0, diff["scale"]), (name, diff)
