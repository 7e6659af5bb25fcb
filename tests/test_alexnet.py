"""AlexNet (Krizhevsky, Sutskever, Hinton 2012) as the paper describes it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cnns
from keras_cnns.layers import ChannelSplit, LocalResponseNormalization
from keras_cnns.models import alexnet as alexnet_module

SMALL = (67, 67, 3)


@pytest.fixture(scope="module")
def full():
    """The paper's model: 227x227x3, 1000 classes (built once for the module)."""
    return keras_cnns.get_model("alexnet")


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def _conv_params(kernel, in_maps, filters, groups=1):
    return kernel * kernel * (in_maps // groups) * filters + filters


def test_alexnet_has_60_965_224_parameters(full):
    expected = {
        "conv1": _conv_params(11, 3, 96),
        "conv2": _conv_params(5, 96, 256, groups=2),    # each tower reads its own 48 maps
        "conv3": _conv_params(3, 256, 384),             # reads both towers
        "conv4": _conv_params(3, 384, 384, groups=2),
        "conv5": _conv_params(3, 384, 256, groups=2),
        "fc6": 6 * 6 * 256 * 4096 + 4096,
        "fc7": 4096 * 4096 + 4096,
        "predictions": 4096 * 1000 + 1000,
    }
    for layer, count in expected.items():
        assert full.get_layer(layer).count_params() == count, layer
    assert sum(expected.values()) == full.count_params() == 60_965_224


def test_feature_maps_shrink_as_in_the_paper(full):
    shapes = {name: tuple(full.get_layer(name).output.shape[1:])
              for name in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5")}
    assert shapes == {"conv1": (55, 55, 96), "pool1": (27, 27, 96), "conv2": (27, 27, 256),
                      "pool2": (13, 13, 256), "conv3": (13, 13, 384), "conv4": (13, 13, 384),
                      "conv5": (13, 13, 256), "pool5": (6, 6, 256)}


def test_conv2_conv4_conv5_have_two_towers_and_conv3_reads_both(full):
    assert [full.get_layer(f"conv{i}").groups for i in range(1, 6)] == [1, 2, 1, 2, 2]
    assert tuple(full.get_layer("conv2").kernel.shape) == (5, 5, 48, 256)


def test_a_tower_sees_only_the_maps_of_its_own_gpu(full):
    conv2 = full.get_layer("conv2")
    x = _images((27, 27, 96), n=1)
    changed = x.copy()
    changed[..., 48:] += 1.0   # only the maps of the second tower
    a, b = np.asarray(conv2(x)), np.asarray(conv2(changed))
    np.testing.assert_array_equal(a[..., :128], b[..., :128])
    assert not np.allclose(a[..., 128:], b[..., 128:])


def test_lrn_with_the_paper_constants_follows_the_relu_of_conv1_and_conv2(full):
    names = [layer.name for layer in full.layers]
    for stage in ("1", "2"):
        norm = full.get_layer(f"norm{stage}")
        assert isinstance(norm, LocalResponseNormalization)
        assert (norm.bias, norm.depth, norm.alpha, norm.beta) == (2.0, 5, 1e-4, 0.75)
        assert full.get_layer(f"conv{stage}").activation is keras.activations.relu
        assert names.index(f"conv{stage}") < names.index(f"norm{stage}") < names.index(f"pool{stage}")
    assert sum(isinstance(layer, LocalResponseNormalization) for layer in full.layers) == 2


def test_pooling_overlaps_3_by_2_and_dropout_is_half_on_fc6_fc7(full):
    for name in ("pool1", "pool2", "pool5"):
        layer = full.get_layer(name)
        assert layer.pool_size == (3, 3) and layer.strides == (2, 2)
    assert full.get_layer("drop6").rate == full.get_layer("drop7").rate == 0.5
    assert [type(full.layers[full.layers.index(full.get_layer(f"fc{i}")) + 1]).__name__
            for i in (6, 7)] == ["Dropout", "Dropout"]


def test_initialisation_is_the_papers(full):
    for name in ("conv2", "conv4", "conv5", "fc6", "fc7"):
        np.testing.assert_array_equal(full.get_layer(name).bias.numpy(), 1.0, err_msg=name)
    for name in ("conv1", "conv3", "predictions"):
        np.testing.assert_array_equal(full.get_layer(name).bias.numpy(), 0.0, err_msg=name)
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "predictions"):
        kernel = full.get_layer(name).kernel.numpy()
        assert abs(kernel.mean()) < 1e-3, name
        assert kernel.std() == pytest.approx(0.01, rel=0.05), name
    # each layer draws its own values
    assert not np.array_equal(full.get_layer("conv4").kernel.numpy()[..., :10],
                              full.get_layer("conv5").kernel.numpy()[:, :, :, :10])


def test_67_pixels_is_the_smallest_input():
    assert alexnet_module.minimum_input_size() == keras_cnns.get_spec("alexnet").min_input_size == 67
    model = keras_cnns.get_model("alexnet", input_shape=SMALL, include_top=False)
    assert tuple(model.output.shape[1:]) == (1, 1, 256)
    with pytest.raises(ValueError, match="at least 67x67"):
        keras_cnns.get_model("alexnet", input_shape=(66, 66, 3))


def test_split_towers_compute_the_same_function_as_grouped_convolutions():
    kwargs = dict(input_shape=SMALL, num_classes=5, classifier_activation=None)
    grouped = keras_cnns.get_model("alexnet", **kwargs)
    split = keras_cnns.get_model("alexnet", towers="split", **kwargs)
    assert split.count_params() == grouped.count_params()
    assert all(layer.groups == 1 for layer in split.layers if isinstance(layer, keras.layers.Conv2D))
    assert isinstance(split.get_layer("conv2_split"), ChannelSplit)
    x = _images(SMALL, n=3, seed=1)

    alexnet_module.copy_tower_weights(grouped, split)
    np.testing.assert_allclose(split.predict(x, verbose=0), grouped.predict(x, verbose=0), atol=1e-5)

    # and back, from freshly drawn split weights
    split = keras_cnns.get_model("alexnet", towers="split", **kwargs)
    alexnet_module.copy_tower_weights(split, grouped)
    np.testing.assert_allclose(grouped.predict(x, verbose=0), split.predict(x, verbose=0), atol=1e-5)


@pytest.mark.parametrize("towers", ["grouped", "split"])
def test_both_forms_train_with_fit_on_cpu(towers):
    model = keras_cnns.get_model("alexnet", input_shape=SMALL, num_classes=3, towers=towers)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    before = model.get_layer("conv4").get_weights() if towers == "grouped" else \
        model.get_layer("conv4_tower2").get_weights()
    history = model.fit(_images(SMALL, n=4), np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    after = model.get_layer("conv4").get_weights() if towers == "grouped" else \
        model.get_layer("conv4_tower2").get_weights()
    assert np.isfinite(history.history["loss"][0])
    assert not np.array_equal(before[0], after[0])


def test_split_form_survives_a_keras_round_trip(tmp_path):
    model = keras_cnns.get_model("alexnet", input_shape=SMALL, num_classes=4, towers="split")
    model.save(tmp_path / "split.keras")
    loaded = keras.saving.load_model(tmp_path / "split.keras", safe_mode=True)
    x = _images(SMALL)
    np.testing.assert_array_equal(loaded(x), model(x))


def test_fc7_gives_4096_non_negative_features_for_retrieval():
    model = keras_cnns.get_model("alexnet", input_shape=SMALL)
    points = keras_cnns.feature_layers(model)
    assert list(points) == ["pool1", "pool2", "conv3", "conv4", "pool5", "fc6", "fc7"]
    features = keras_cnns.feature_extractor(model, ["fc6", "fc7"])(_images(SMALL))
    for name in ("fc6", "fc7"):
        assert tuple(features[name].shape) == (2, 4096)
        assert np.all(np.asarray(features[name]) >= 0)   # taken after the ReLU


def test_bad_tower_form_says_what_is_allowed():
    with pytest.raises(ValueError, match=r"towers must be one of \('grouped', 'split'\). Received: towers='gpu'"):
        keras_cnns.get_model("alexnet", towers="gpu")


def test_channel_split_cuts_channels_into_equal_groups():
    x = tf.reshape(tf.range(2 * 2 * 6, dtype=tf.float32), (1, 2, 2, 6))
    a, b = ChannelSplit(2)(x)
    np.testing.assert_array_equal(a, x[..., :3])
    np.testing.assert_array_equal(b, x[..., 3:])
    with pytest.raises(ValueError, match="Received: num_splits=0"):
        ChannelSplit(0)
    with pytest.raises(ValueError, match="multiple of num_splits=4"):
        ChannelSplit(4)(x)
    assert ChannelSplit.from_config(ChannelSplit(3).get_config()).num_splits == 3
