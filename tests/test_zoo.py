"""Tests generated from the registry: every registered model, the same checks."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cnns
from keras_cnns.anatomy import count_params, shapes_only_model
from keras_cnns.registry import get_spec

MODELS = keras_cnns.list_models(task="classification")
NUM_CLASSES = 7


def _logits(spec, outputs):
    """The zoo's outputs as logits: RBF distances are negated (smallest distance wins)."""
    return -outputs if spec.output == "rbf_distances" else outputs


def _build(name, **kwargs):
    spec = get_spec(name)
    kwargs.setdefault("input_shape", spec.test_input_shape)
    return spec, keras_cnns.get_model(name, **kwargs)


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def test_all_six_families_and_the_issue_names_are_registered():
    expected = {
        "lenet5", "lenet5_modern", "alexnet", "vgg11", "vgg11_lrn", "vgg13", "vgg16_c", "vgg16", "vgg19",
        "vgg_cifar", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnet20", "resnet32",
        "resnet44", "resnet56", "resnet110", "nin", "nin_cifar", "googlenet"}
    assert expected <= set(MODELS)
    assert keras_cnns.list_aliases()["inception"] == "googlenet"
    assert keras_cnns.get_spec("inception").name == "googlenet"


@pytest.mark.parametrize("name", MODELS)
def test_builds_with_a_non_default_number_of_classes(name):
    spec, model = _build(name, num_classes=NUM_CLASSES)
    assert model.name == name
    out = model(_images(spec.test_input_shape), training=False)
    assert tuple(out.shape) == (2, NUM_CLASSES)
    assert np.all(np.isfinite(out))


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_include_top_false_with_pooling_gives_vectors(name, pooling):
    spec, model = _build(name, include_top=False, pooling=pooling)
    out = model(_images(spec.test_input_shape), training=False)
    assert out.shape.rank == 2 and out.shape[0] == 2 and out.shape[1] > NUM_CLASSES


@pytest.mark.parametrize("name", MODELS)
def test_include_top_false_without_pooling_gives_a_feature_map(name):
    spec, model = _build(name, include_top=False)
    assert len(model.output.shape) == 4


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_changes_every_trainable_weight(name):
    spec, model = _build(name, num_classes=NUM_CLASSES,
                         classifier_activation=None)
    x = _images(spec.test_input_shape, n=4, seed=1)
    y = np.array([0, 1, 2, 3])
    before = [v.numpy().copy() for v in model.trainable_variables]
    optimizer = keras.optimizers.Adam(1e-3)
    with tf.GradientTape() as tape:
        logits = _logits(spec, model(x, training=True))
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    assert np.isfinite(loss.numpy())
    unchanged = [v.path for v, b in zip(model.trainable_variables, before) if np.array_equal(v.numpy(), b)]
    assert not unchanged, f"weights not updated by a training step: {unchanged}"


@pytest.mark.parametrize("name", MODELS)
def test_one_training_step_in_mixed_bfloat16_gives_finite_gradients_for_every_weight(name):
    # What `train.py --precision mixed_bfloat16` (and `auto` on a CPU with bfloat16) builds: every layer must
    # have a kernel in bfloat16 or compute in float32 itself (AlexNet's LRN had no bfloat16 kernel on a CPU).
    from keras_cnns.training.fit import _dtype_policy  # what fit builds the model under

    with _dtype_policy("mixed_bfloat16"):
        spec, model = _build(name, num_classes=NUM_CLASSES, classifier_activation=None)
    x = _images(spec.test_input_shape, n=2, seed=2)
    with tf.GradientTape() as tape:
        logits = tf.cast(_logits(spec, model(x, training=True)), "float32")
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(np.array([0, 1]), logits, from_logits=True))
    grads = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(loss.numpy())
    missing = [v.path for v, g in zip(model.trainable_variables, grads)
               if g is None or not np.isfinite(np.asarray(tf.cast(g, "float32"))).all()]
    assert not missing, f"no finite gradient in mixed_bfloat16 for: {missing}"


@pytest.mark.parametrize("name", MODELS)
def test_bad_arguments_say_what_is_allowed(name):
    with pytest.raises(ValueError, match="pooling"):
        keras_cnns.get_model(name, include_top=False, pooling="mean")
    with pytest.raises(ValueError, match="num_classes"):
        keras_cnns.get_model(name, num_classes=0)
    with pytest.raises(ValueError, match="Received"):
        keras_cnns.get_model(name, input_shape=(8, 8))


@pytest.mark.parametrize("name", MODELS)
def test_too_small_an_input_names_the_minimum(name):
    spec = get_spec(name)
    size = spec.min_input_size - 1
    with pytest.raises(ValueError, match=f"at least {spec.min_input_size}x{spec.min_input_size}"):
        keras_cnns.get_model(name, input_shape=(size, size, spec.test_input_shape[2]))


@pytest.mark.parametrize("name", MODELS)
def test_named_feature_maps_exist(name):
    spec, model = _build(name)
    points = keras_cnns.feature_layers(model)
    assert points
    extractor = keras_cnns.feature_extractor(model)
    maps = extractor(_images(spec.test_input_shape, n=1))
    assert set(maps) == set(points)


def test_unknown_model_name_suggests_close_names():
    with pytest.raises(ValueError, match="resnet50"):
        keras_cnns.get_model("resnet05")


def _one_per_layer_set():
    """The smallest model of each family per set of layer classes: a deeper sibling (resnet152 beside resnet18,
    vgg19 beside vgg16_slim) repeats layers whose configs the file format has already met. Found by building
    every model without initialising its weights (anatomy.shapes_only_model)."""
    smallest = {}
    for name in MODELS:
        spec = get_spec(name)
        with shapes_only_model(name, num_classes=NUM_CLASSES, input_shape=spec.test_input_shape) as model:
            key = (spec.family, frozenset(type(layer).__name__ for layer in model.layers))
            size = count_params(model)
        if key not in smallest or size < smallest[key][0]:
            smallest[key] = (size, name)
    return sorted(name for _, name in smallest.values())


def test_keras_files_load_in_a_fresh_process_with_safe_mode_and_give_identical_outputs(tmp_path):
    chosen = _one_per_layer_set()
    # every family, and each of the zoo's own layers (LRN, C3, subsampling, RBF, the shortcut, NIN's pool) once
    assert {get_spec(name).family for name in chosen} == {get_spec(name).family for name in MODELS}
    assert {"lenet5", "alexnet", "vgg11_lrn", "resnet20", "nin_cifar", "googlenet"} <= set(chosen)
    expected = {}
    for name in chosen:
        spec, model = _build(name, num_classes=NUM_CLASSES)
        x = _images(spec.test_input_shape, n=2, seed=3)
        np.save(tmp_path / f"{name}_x.npy", x)
        expected[name] = np.asarray(model(x, training=False))
        model.save(tmp_path / f"{name}.keras")
    script = (
        "import json, sys, numpy as np, keras, keras_cnns\n"
        "d = sys.argv[1]; out = {}\n"
        f"for name in {chosen!r}:\n"
        "    m = keras.saving.load_model(f'{d}/{name}.keras', safe_mode=True)\n"
        "    x = np.load(f'{d}/{name}_x.npy')\n"
        "    np.save(f'{d}/{name}_y.npy', np.asarray(m(x, training=False)))\n")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, env=env, timeout=900)
    for name in chosen:
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}_y.npy"), expected[name], err_msg=name)
