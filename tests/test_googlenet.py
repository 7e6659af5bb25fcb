"""GoogLeNet as in Szegedy et al. 2014, "Going deeper with convolutions": Table 1, the auxiliary
classifiers of the training model, and the inference model that drops them."""

import os
import re

import keras
import numpy as np
import pytest

import keras_cnns
from keras_cnns.models.googlenet import (AUX_MIN_INPUT_SIZE, INCEPTION_TABLE, LOSS_WEIGHTS, MIN_INPUT_SIZE,
                                         inference_model)

SMALL = (96, 96, 3)  # the smallest round size where the auxiliary 5x5/3 pools fit (6x6 maps at 4a/4d)

# Table 1 of the paper: output size of every inception module at 224x224.
PAPER_OUTPUTS = {
    "3a": (28, 256), "3b": (28, 480), "4a": (14, 512), "4b": (14, 512), "4c": (14, 512),
    "4d": (14, 528), "4e": (14, 832), "5a": (7, 832), "5b": (7, 1024)}


@pytest.fixture(scope="module")
def full_size():
    """The 224x224x3, 1000-class models, built once: (inference model, training model)."""
    return keras_cnns.get_model("googlenet"), keras_cnns.get_model("googlenet", aux_heads=True)


@pytest.fixture(scope="module")
def small_training_model():
    keras.utils.set_random_seed(0)
    return keras_cnns.get_model("googlenet", input_shape=SMALL, num_classes=5, aux_heads=True,
                                classifier_activation=None)


def _images(n, shape=SMALL, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, *shape)).astype("float32")


def _conv_params(kernel, c_in, c_out):
    return kernel * kernel * c_in * c_out + c_out


def _module_params(row, c_in):
    """Parameters of one inception module, from the paper's columns."""
    return (_conv_params(1, c_in, row.n1x1)
            + _conv_params(1, c_in, row.n3x3_reduce) + _conv_params(3, row.n3x3_reduce, row.n3x3)
            + _conv_params(1, c_in, row.n5x5_reduce) + _conv_params(5, row.n5x5_reduce, row.n5x5)
            + _conv_params(1, c_in, row.pool_proj))


def _aux_params(c_in, classes=1000):
    """1x1 conv 128 on the 4x4 pooled map, FC 1024 on its 4*4*128 = 2048 values, linear to the classes."""
    return _conv_params(1, c_in, 128) + (4 * 4 * 128 * 1024 + 1024) + (1024 * classes + classes)


def test_the_table_has_the_papers_nine_modules_in_order():
    assert [row.name for row in INCEPTION_TABLE] == ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"]
    assert {row.name: row.out_channels for row in INCEPTION_TABLE} == {
        name: depth for name, (_, depth) in PAPER_OUTPUTS.items()}
    row_3a = INCEPTION_TABLE[0]
    assert (row_3a.n1x1, row_3a.n3x3_reduce, row_3a.n3x3, row_3a.n5x5_reduce, row_3a.n5x5,
            row_3a.pool_proj) == (64, 96, 128, 16, 32, 32)


def test_every_module_has_the_papers_output_size_and_a_true_5x5_branch(full_size):
    model, _ = full_size
    c_in = 192  # the stem's output: 28x28x192
    assert tuple(model.get_layer("pool2").output.shape) == (None, 28, 28, 192)
    for row in INCEPTION_TABLE:
        name = f"inception_{row.name}"
        size, depth = PAPER_OUTPUTS[row.name]
        assert tuple(model.get_layer(name).output.shape) == (None, size, size, depth), name
        assert tuple(model.get_layer(f"{name}_5x5").kernel.shape) == (5, 5, row.n5x5_reduce, row.n5x5), name
        assert tuple(model.get_layer(f"{name}_3x3").kernel.shape) == (3, 3, row.n3x3_reduce, row.n3x3), name
        assert tuple(model.get_layer(f"{name}_pool_proj").kernel.shape) == (1, 1, c_in, row.pool_proj), name
        layers = [layer for layer in model.layers if layer.name.startswith(f"{name}_")]
        assert sum(layer.count_params() for layer in layers) == _module_params(row, c_in), name
        c_in = depth


def test_googlenet_has_6_998_552_parameters_without_the_auxiliary_heads(full_size):
    model, _ = full_size
    stem = _conv_params(7, 3, 64) + _conv_params(1, 64, 64) + _conv_params(3, 64, 192)   # 124,416
    modules, c_in = 0, 192
    for row in INCEPTION_TABLE:
        modules, c_in = modules + _module_params(row, c_in), row.out_channels           # 5,849,136
    classifier = 1024 * 1000 + 1000                                                      # 1,025,000
    assert stem + modules + classifier == 6_998_552
    assert model.count_params() == 6_998_552


def test_the_auxiliary_heads_add_6_379_728_parameters(full_size):
    model, training = full_size
    # aux1 reads 4a (512 maps): 3,188,840; aux2 reads 4d (528 maps): 3,190,888.
    assert _aux_params(512) + _aux_params(528) == 6_379_728
    assert training.count_params() == model.count_params() + 6_379_728 == 13_378_280
    assert tuple(training.get_layer("aux1_pool").output.shape) == (None, 4, 4, 512)
    assert tuple(training.get_layer("aux2_pool").output.shape) == (None, 4, 4, 528)


def test_the_inference_model_has_no_auxiliary_heads_and_is_the_default(full_size):
    model, training = full_size
    assert not [layer.name for layer in model.layers if layer.name.startswith("aux")]
    assert inference_model(training).count_params() == model.count_params()
    assert inference_model(model) is model
    assert keras_cnns.get_model("inception", input_shape=SMALL).name == "googlenet"


def test_the_training_model_has_three_named_outputs(small_training_model):
    out = small_training_model(_images(2), training=False)
    assert set(out) == {"predictions", "aux1", "aux2"} == set(LOSS_WEIGHTS)
    assert all(tuple(v.shape) == (2, 5) for v in out.values())
    assert LOSS_WEIGHTS == {"predictions": 1.0, "aux1": 0.3, "aux2": 0.3}


def test_a_training_step_adds_the_auxiliary_losses_with_weight_0_3(small_training_model):
    model = small_training_model
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss={name: loss for name in LOSS_WEIGHTS}, loss_weights=LOSS_WEIGHTS)
    x, y = _images(4, seed=1), np.array([0, 1, 2, 3])
    targets = {name: y for name in LOSS_WEIGHTS}
    before = [w.numpy().copy() for w in model.trainable_weights]
    history = model.fit(x, targets, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    changed = [not np.array_equal(w.numpy(), b) for w, b in zip(model.trainable_weights, before)]
    assert all(changed), "every weight, the auxiliary heads' included, gets a gradient"

    # The reported loss is main + 0.3 * aux1 + 0.3 * aux2, evaluated without dropout.
    logits = model(x, training=False)
    parts = {name: float(loss(y, logits[name])) for name in LOSS_WEIGHTS}
    total = model.evaluate(x, targets, batch_size=4, verbose=0, return_dict=True)["loss"]
    assert total == pytest.approx(parts["predictions"] + 0.3 * parts["aux1"] + 0.3 * parts["aux2"], rel=1e-4)


def test_the_inference_model_shares_the_training_models_layers_and_outputs(small_training_model):
    model = small_training_model
    inference = inference_model(model)
    assert len(inference.outputs) == 1
    for layer in inference.layers:
        if layer.weights:
            assert model.get_layer(layer.name) is layer
    x = _images(3, seed=2)
    np.testing.assert_array_equal(np.asarray(inference(x, training=False)),
                                  np.asarray(model(x, training=False)["predictions"]))
    # Shared, not copied: a change to the training model shows in the inference model.
    kernel = model.get_layer("conv1").kernel
    kernel.assign(kernel * 0.5)
    np.testing.assert_array_equal(np.asarray(inference(x, training=False)),
                                  np.asarray(model(x, training=False)["predictions"]))


def test_the_training_model_round_trips_through_a_keras_file(small_training_model, tmp_path):
    model = small_training_model
    path = tmp_path / "googlenet_train.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = _images(2, seed=3)
    expected, got = model(x, training=False), loaded(x, training=False)
    for name in LOSS_WEIGHTS:
        np.testing.assert_array_equal(np.asarray(got[name]), np.asarray(expected[name]), err_msg=name)
    inference = inference_model(loaded)
    inference.save(tmp_path / "googlenet.keras")
    reloaded = keras.saving.load_model(tmp_path / "googlenet.keras", safe_mode=True)
    np.testing.assert_array_equal(np.asarray(reloaded(x, training=False)), np.asarray(expected["predictions"]))


def test_the_nine_inception_outputs_are_the_feature_maps():
    model = keras_cnns.get_model("googlenet", input_shape=SMALL, include_top=False)
    points = keras_cnns.feature_layers(model)
    assert list(points) == [f"inception_{row.name}" for row in INCEPTION_TABLE]
    maps = keras_cnns.feature_extractor(model)(_images(1))
    assert maps["inception_5b"].shape == (1, 3, 3, 1024)  # 96 / 32 = 3


def test_small_and_variable_inputs_work_without_the_auxiliary_heads():
    # Fashion-MNIST as it comes: 28x28x1 gives 14, 7, 4, 2, 1 after the five stride-2 layers.
    model = keras_cnns.get_model("googlenet", input_shape=(28, 28, 1), num_classes=10)
    assert model(_images(1, shape=(28, 28, 1))).shape == (1, 10)
    assert MIN_INPUT_SIZE == 17
    any_size = keras_cnns.get_model("googlenet", input_shape=(None, None, 3), num_classes=10)
    for size in (MIN_INPUT_SIZE, 50):
        assert any_size(_images(1, shape=(size, size, 3))).shape == (1, 10)


def test_arguments_of_the_auxiliary_heads_are_checked():
    with pytest.raises(ValueError, match=f"at least {AUX_MIN_INPUT_SIZE}x{AUX_MIN_INPUT_SIZE}.*Received"):
        keras_cnns.get_model("googlenet", input_shape=(64, 64, 3), aux_heads=True)
    with pytest.raises(ValueError, match="include_top=True.*Received"):
        keras_cnns.get_model("googlenet", include_top=False, aux_heads=True)
    with pytest.raises(ValueError, match="Received: aux_heads='yes'"):
        keras_cnns.get_model("googlenet", aux_heads="yes")
    with pytest.raises(ValueError, match="predictions"):
        inference_model(keras_cnns.get_model("googlenet", input_shape=SMALL, include_top=False))
    assert AUX_MIN_INPUT_SIZE == 65
    assert keras_cnns.get_model("googlenet", input_shape=(65, 65, 3), aux_heads=True).count_params() > 0


def test_the_docs_table_is_the_code_table(full_size):
    model, training = full_size
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "googlenet.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (\d[a-e]) \|(.*)\|$", text, re.MULTILINE)}
    assert list(rows) == [row.name for row in INCEPTION_TABLE]
    for row in INCEPTION_TABLE:
        cells = [c.strip() for c in rows[row.name].split("|")]
        size, depth = PAPER_OUTPUTS[row.name]
        params = sum(layer.count_params() for layer in model.layers
                     if layer.name.startswith(f"inception_{row.name}_"))
        assert cells == [str(v) for v in row[1:]] + [f"{size}x{size}x{depth}", f"{params:,}"], row.name
    assert f"**{model.count_params():,}**" in text and f"**{training.count_params():,}**" in text
