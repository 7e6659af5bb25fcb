"""VGG (Simonyan & Zisserman 2014): the six configurations of Table 1, the batch-norm and CIFAR
variants, and the keras.applications / ImageNet weights import."""

import gc

import keras
import numpy as np
import pytest

import keras_cnns
from keras_cnns.layers import LocalResponseNormalization
from keras_cnns import imagenet
from keras_cnns.registry import WeightsImportError

SMALL = (32, 32, 3)


def _images(shape, n=2, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).normal(size=(n, *shape))).astype("float32")


def _convs(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


@pytest.fixture(scope="module")
def vgg16_pair():
    """Our full-size vgg16 and keras.applications.VGG16(weights=None), built once."""
    pair = keras_cnns.get_model("vgg16"), keras.applications.VGG16(weights=None)
    yield pair
    del pair
    gc.collect()


# Table 1's parameter counts at 224x224x3 with 1000 classes. C is B plus three 1x1 convolutions
# (256, 512, 512 filters); LRN has no parameters, so A-LRN counts the same as A.
PARAMS = {
    "vgg11": 132_863_336,
    "vgg11_lrn": 132_863_336,
    "vgg13": 133_047_848,
    "vgg16_c": 133_047_848 + (256 * 256 + 256) + 2 * (512 * 512 + 512),
    "vgg19": 143_667_240,
}


def test_vgg16_configuration_d_has_138_357_544_parameters(vgg16_pair):
    ours, _ = vgg16_pair
    assert ours.count_params() == 138_357_544
    assert len(_convs(ours)) == 13
    assert [tuple(ours.get_layer(f"block{b}_pool").output.shape[1:]) for b in range(1, 6)] == [
        (112, 112, 64), (56, 56, 128), (28, 28, 256), (14, 14, 512), (7, 7, 512)]


@pytest.mark.parametrize("name,count", PARAMS.items())
def test_full_size_parameter_counts(name, count):
    model = keras_cnns.get_model(name)
    assert model.count_params() == count
    del model
    gc.collect()


@pytest.mark.parametrize("name,convs", [("vgg11", 8), ("vgg11_lrn", 8), ("vgg13", 10), ("vgg16_c", 13),
                                        ("vgg16", 13), ("vgg19", 16)])
def test_weight_layers_are_convs_plus_three_fully_connected(name, convs):
    # "VGG-16" and "VGG-19" count their weight layers: convolutions plus fc6, fc7, predictions.
    model = keras_cnns.get_model(name, input_shape=SMALL, num_classes=10)
    assert len(_convs(model)) == convs
    assert [layer.name for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [
        "fc6", "fc7", "predictions"]
    assert all(layer.strides == (1, 1) and layer.padding == "same" for layer in _convs(model))
    assert model.get_layer("drop6").rate == model.get_layer("drop7").rate == 0.5


def test_a_lrn_normalises_after_the_first_convolution_only():
    model = keras_cnns.get_model("vgg11_lrn", input_shape=SMALL)
    lrns = [layer for layer in model.layers if isinstance(layer, LocalResponseNormalization)]
    assert [layer.name for layer in lrns] == ["block1_lrn"]
    assert (lrns[0].bias, lrns[0].depth, lrns[0].alpha, lrns[0].beta) == (2.0, 5, 1e-4, 0.75)
    names = [layer.name for layer in model.layers]
    assert names.index("block1_conv1") + 1 == names.index("block1_lrn")


def test_configuration_c_ends_blocks_3_to_5_with_a_1x1_convolution():
    model = keras_cnns.get_model("vgg16_c", input_shape=SMALL)
    one_by_one = [layer.name for layer in _convs(model) if layer.kernel_size == (1, 1)]
    assert one_by_one == ["block3_conv3", "block4_conv3", "block5_conv3"]
    assert [model.get_layer(n).filters for n in one_by_one] == [256, 512, 512]


def test_layer_names_and_weight_order_match_keras_applications(vgg16_pair):
    ours, theirs = vgg16_pair
    renamed = {"fc6": "fc1", "fc7": "fc2"}
    assert [renamed.get(layer.name, layer.name) for layer in ours.layers if layer.weights] == [
        layer.name for layer in theirs.layers if layer.weights]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]


def test_copying_keras_applications_vgg16_weights_gives_identical_outputs(vgg16_pair):
    ours, theirs = vgg16_pair
    ours.set_weights(theirs.get_weights())
    x = _images((224, 224, 3), n=1, seed=2, scale=50.0)
    np.testing.assert_allclose(ours(x), theirs(x), rtol=0, atol=1e-6)


def test_importing_from_a_keras_applications_instance_gives_identical_outputs(vgg16_pair):
    _, theirs = vgg16_pair
    imported = keras_cnns.get_model("vgg16", weights=theirs)
    x = _images((224, 224, 3), n=1, seed=3, scale=50.0)
    np.testing.assert_allclose(imported(x), theirs(x), rtol=0, atol=1e-6)
    del imported
    gc.collect()


def test_vgg19_likewise_matches_keras_applications():
    theirs = keras.applications.VGG19(weights=None, include_top=False, input_shape=(64, 64, 3))
    ours = keras_cnns.get_model("vgg19", include_top=False, input_shape=(64, 64, 3))
    ours.set_weights(theirs.get_weights())
    imported = keras_cnns.get_model("vgg19", include_top=False, input_shape=(64, 64, 3), weights=theirs)
    x = _images((64, 64, 3), seed=4, scale=50.0)
    np.testing.assert_allclose(ours(x), theirs(x), rtol=0, atol=1e-6)
    np.testing.assert_allclose(imported(x), theirs(x), rtol=0, atol=1e-6)


def test_vgg19_with_its_classifier_imports_from_keras_applications():
    theirs = keras.applications.VGG19(weights=None)
    imported = keras_cnns.get_model("vgg19", weights=theirs)
    x = _images((224, 224, 3), n=1, seed=6, scale=50.0)
    np.testing.assert_allclose(imported(x), theirs(x), rtol=0, atol=1e-6)
    del imported, theirs
    gc.collect()


def test_importing_a_keras_applications_h5_file_gives_identical_outputs(tmp_path):
    # The published notop file has the same layout; its trunk works at any input size.
    theirs = keras.applications.VGG16(weights=None, include_top=False)
    path = tmp_path / "vgg16_weights_notop.h5"
    theirs.save(path)
    ours = keras_cnns.get_model("vgg16", include_top=False, pooling="avg", input_shape=(48, 48, 3),
                                weights=str(path))
    x = _images((48, 48, 3), seed=5, scale=50.0)
    expected = np.asarray(theirs(x)).mean(axis=(1, 2))
    np.testing.assert_allclose(ours(x), expected, rtol=1e-6, atol=1e-5)
    with pytest.raises(ValueError, match="not a keras.applications VGG16 weights file with the top"):
        keras_cnns.get_model("vgg16", weights=str(path))


def test_a_model_with_the_top_lends_its_trunk_to_include_top_false(vgg16_pair):
    _, theirs = vgg16_pair
    ours = keras_cnns.get_model("vgg16", include_top=False, input_shape=(64, 64, 3), weights=theirs)
    np.testing.assert_array_equal(ours.get_layer("block5_conv3").kernel.numpy(),
                                  theirs.get_layer("block5_conv3").kernel.numpy())


def test_imagenet_asks_keras_for_its_published_weights(monkeypatch):
    calls = []
    real_vgg16 = keras.applications.VGG16

    def fake_vgg16(weights, include_top):
        calls.append((weights, include_top))
        return real_vgg16(weights=None, include_top=include_top)

    monkeypatch.setattr(keras.applications, "VGG16", fake_vgg16)
    keras_cnns.get_model("vgg16", weights="imagenet", include_top=False, input_shape=SMALL)
    assert calls == [("imagenet", False)]


def test_imagenet_offline_says_how_to_get_the_file(monkeypatch):
    def offline(weights, include_top):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: Name or service not known")

    monkeypatch.setattr(keras.applications, "VGG16", offline)
    with pytest.raises(WeightsImportError, match="local copy"):
        keras_cnns.get_model("vgg16", weights="imagenet", include_top=False, input_shape=SMALL)


def test_imagenet_weights_need_compatible_arguments(vgg16_pair):
    _, theirs = vgg16_pair
    with pytest.raises(ValueError, match="num_classes=1000.*Received: num_classes=10"):
        keras_cnns.get_model("vgg16", weights=theirs, num_classes=10)
    with pytest.raises(ValueError, match="224x224 input; use include_top=False"):
        keras_cnns.get_model("vgg16", weights=theirs, input_shape=(64, 64, 3))
    vgg19_trunk = keras.applications.VGG19(weights=None, include_top=False)
    with pytest.raises(ValueError, match="block3_conv4"):
        keras_cnns.get_model("vgg16", weights=vgg19_trunk, include_top=False, input_shape=SMALL)
    with pytest.raises(ValueError, match="Received: weights='imagenet'"):
        keras_cnns.get_model("vgg13", weights="imagenet")


def test_imagenet_preprocessing_is_keras_caffe_mode():
    prep = imagenet.preprocessing("vgg16")
    assert prep.size == (224, 224) and prep.channel_order == "bgr" and prep.std == (1.0, 1.0, 1.0)
    image = np.random.default_rng(6).uniform(0, 255, size=(2, 224, 224, 3)).astype("float32")
    expected = keras.applications.vgg16.preprocess_input(image.copy())
    np.testing.assert_allclose(prep.normalize(image), expected, atol=1e-4)
    assert tuple(prep.apply(np.zeros((300, 400, 3), "uint8")).shape) == (224, 224, 3)


@pytest.mark.parametrize("name,plain", [("vgg11_bn", "vgg11"), ("vgg13_bn", "vgg13"), ("vgg16_bn", "vgg16"),
                                        ("vgg19_bn", "vgg19")])
def test_batch_norm_variants_put_bn_between_each_conv_and_its_relu(name, plain):
    model = keras_cnns.get_model(name, input_shape=SMALL, include_top=False)
    reference = keras_cnns.get_model(plain, input_shape=SMALL, include_top=False)
    convs = _convs(model)
    assert len(convs) == len(_convs(reference))
    names = [layer.name for layer in model.layers]
    for conv in convs:
        assert not conv.use_bias
        i = names.index(conv.name)
        assert names[i + 1:i + 3] == [f"{conv.name}_bn", f"{conv.name}_relu"]
    # no conv bias, a trainable gamma and beta per map
    maps = sum(conv.filters for conv in convs)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == reference.count_params() - maps + 2 * maps


def test_vgg_cifar_is_the_d_trunk_on_32x32_with_a_512_512_head():
    model = keras_cnns.get_model("vgg_cifar")
    assert tuple(model.input_shape[1:]) == (32, 32, 3) and model.output_shape == (None, 10)
    assert len(_convs(model)) == 13
    assert tuple(model.get_layer("block5_pool").output.shape[1:]) == (1, 1, 512)
    assert model.get_layer("fc6").units == model.get_layer("fc7").units == 512
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    grey = keras_cnns.get_model("vgg_cifar", input_shape=(32, 32, 1))   # padded Fashion-MNIST
    assert grey(_images((32, 32, 1))).shape == (2, 10)


def test_imagenet_configs_suggest_vgg_cifar_for_small_images():
    with pytest.raises(ValueError, match="at least 32x32. For small images use 'vgg_cifar'"):
        keras_cnns.get_model("vgg16", input_shape=(28, 28, 1))


def test_feature_maps_are_the_five_block_pools_and_fc6_fc7():
    model = keras_cnns.get_model("vgg16", input_shape=(64, 64, 3))
    maps = keras_cnns.feature_extractor(model)(_images((64, 64, 3), n=1))
    assert {k: tuple(v.shape[1:]) for k, v in maps.items()} == {
        "block1": (32, 32, 64), "block2": (16, 16, 128), "block3": (8, 8, 256), "block4": (4, 4, 512),
        "block5": (2, 2, 512), "fc6": (4096,), "fc7": (4096,)}
    trunk = keras_cnns.get_model("vgg16", input_shape=(64, 64, 3), include_top=False)
    assert list(keras_cnns.feature_layers(trunk)) == [f"block{b}" for b in range(1, 6)]


# The CPU twins: configuration D's blocks at (8, 16, 32, 64, 64) and (16, 32, 64, 128, 128) filters, fc6/fc7 of 512
# units in both (fc6 over the 1x1 pool5 of a 32x32 input), 10 classes:
#   slim:    convs 230,424 + fc6 64*512+512 + fc7 512*512+512 + 512*10+10 = 531,490
#   quarter: convs 920,496 + fc6 128*512+512 + fc7 512*512+512 + 512*10+10 = 1,254,330
@pytest.mark.parametrize("twin, blocks, parameters", [
    ("slim", (8, 16, 32, 64, 64), 230_424 + (64 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10)),
    ("quarter", (16, 32, 64, 128, 128), 920_496 + (128 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10)),
])
def test_the_small_vgg16s_are_configuration_d_at_their_widths_with_fc6_fc7_of_512(twin, blocks, parameters):
    model = keras_cnns.get_model(f"vgg16_{twin}")
    assert tuple(model.input_shape[1:]) == (32, 32, 1) and model.output_shape == (None, 10)
    layers_per_block = (2, 2, 3, 3, 3)
    assert [conv.filters for conv in _convs(model)] == [f for f, n in zip(blocks, layers_per_block) for _ in range(n)]
    assert model.get_layer("fc6").units == model.get_layer("fc7").units == 512
    assert model.count_params() == parameters == {"slim": 531_490, "quarter": 1_254_330}[twin]


@pytest.mark.parametrize("twin", ["slim", "quarter"])
def test_the_small_vgg16s_are_the_classifier_twins_of_their_fcns_backbones(twin):
    from keras_cnns.models import fcn

    classifier = keras_cnns.get_model(f"vgg16_{twin}")
    net = keras_cnns.get_model(f"fcn8s_vgg16_{twin}", input_shape=(None, None, 1), num_classes=11)
    copied = fcn.load_backbone(net, classifier)
    assert [name for name in copied if name.startswith("block")] == [conv.name for conv in _convs(classifier)]
    assert "fc7" in copied and "fc6" in copied   # fc6 saw a 1x1 pool5 map: the centre tap of the FCN's 7x7 fc6
    for conv in _convs(classifier):
        np.testing.assert_array_equal(net.get_layer(conv.name).get_weights()[0], conv.get_weights()[0])
