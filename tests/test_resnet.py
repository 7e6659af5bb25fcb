"""ResNet (He et al. 2015) as the paper describes it, and the keras.applications ImageNet import."""

import keras
import numpy as np
import pytest

import keras_cnns
from keras_cnns import imagenet
from keras_cnns.layers import ZeroPadShortcut


def _trainable(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def _layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


# Paper Table 1 depths; counts as torchvision reports them (BN gamma/beta counted, moving statistics not).
IMAGENET_PARAMETERS = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808,
}


@pytest.mark.parametrize("name", sorted(IMAGENET_PARAMETERS))
def test_imagenet_resnets_have_the_published_parameter_counts(name):
    model = keras_cnns.get_model(name)  # full size: 224x224x3, 1000 classes
    assert _trainable(model) == IMAGENET_PARAMETERS[name]
    # What is not trainable is exactly the batch norms' moving mean and variance.
    bn_channels = sum(layer.gamma.shape[0] for layer in _layers_of(model, keras.layers.BatchNormalization))
    assert model.count_params() - _trainable(model) == 2 * bn_channels
    # Bias-free convolutions, each followed by its batch norm.
    convs = _layers_of(model, keras.layers.Conv2D)
    assert all(not conv.use_bias for conv in convs)
    assert len(convs) == len(_layers_of(model, keras.layers.BatchNormalization))
    # Depth = weighted layers on the main path (projection shortcuts excluded) + the classifier.
    main_path = [c for c in convs if not c.name.endswith("_0_conv")]
    assert len(main_path) + 1 == int(name[len("resnet"):])
    keras.backend.clear_session()


def _cifar_parameters(n, num_classes=10, channels=3):
    """Section 4.2: a 3x3 conv 16, then 2n 3x3 convs at each of 16, 32, 64 filters, GAP, FC.

    Every conv has no bias and a batch norm (2 trainable parameters per channel); option-A
    shortcuts have no parameters. resnet20 (n=3): 464 + 14,016 + 51,072 + 203,520 + 650 = 269,722.
    """
    total, previous = 9 * channels * 16 + 2 * 16, 16
    for width in (16, 32, 64):
        for _ in range(2 * n):
            total += 9 * previous * width + 2 * width
            previous = width
    return total + 64 * num_classes + num_classes


CIFAR_PARAMETERS = {  # depth 6n + 2: about 0.27M, 0.46M, 0.66M, 0.85M, 1.7M in the paper's Table 6
    "resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586, "resnet56": 853_018, "resnet110": 1_727_962,
}


@pytest.mark.parametrize("name", sorted(CIFAR_PARAMETERS))
def test_cifar_resnets_have_6n_plus_2_layers_and_the_paper_parameter_counts(name):
    depth = int(name[len("resnet"):])
    n = (depth - 2) // 6
    model = keras_cnns.get_model(name)
    assert _trainable(model) == CIFAR_PARAMETERS[name] == _cifar_parameters(n)
    assert len(_layers_of(model, keras.layers.Conv2D)) + 1 == depth
    # Option A: two zero-padding shortcuts (16 -> 32, 32 -> 64), no projection convolution.
    assert len(_layers_of(model, ZeroPadShortcut)) == 2
    assert not [layer for layer in model.layers if layer.name.endswith("_0_conv")]
    keras.backend.clear_session()


def test_cifar_stages_are_32_16_8_maps_of_16_32_64_filters():
    model = keras_cnns.get_model("resnet20")
    shapes = {point: model.get_layer(layer).output.shape[1:]
              for point, layer in keras_cnns.feature_layers(model).items()}
    assert shapes == {"conv1": (32, 32, 16), "conv2": (32, 32, 16), "conv3": (16, 16, 32), "conv4": (8, 8, 64)}


def test_resnet50_stage_outputs_halve_the_map_and_double_the_channels():
    model = keras_cnns.get_model("resnet50", include_top=False)
    shapes = {point: model.get_layer(layer).output.shape[1:]
              for point, layer in keras_cnns.feature_layers(model).items()}
    assert shapes == {"conv1": (112, 112, 64), "conv2": (56, 56, 256), "conv3": (28, 28, 512),
                      "conv4": (14, 14, 1024), "conv5": (7, 7, 2048)}
    assert keras_cnns.feature_layers(model)["conv5"] == "conv5_block3_out"


def test_bottleneck_stride_sits_on_the_first_1x1_as_in_the_paper():
    model = keras_cnns.get_model("resnet50", input_shape=(64, 64, 3))
    for stage in (3, 4, 5):
        assert model.get_layer(f"conv{stage}_block1_1_conv").strides == (2, 2)
        assert model.get_layer(f"conv{stage}_block1_1_conv").kernel_size == (1, 1)
        assert model.get_layer(f"conv{stage}_block1_2_conv").strides == (1, 1)
        assert model.get_layer(f"conv{stage}_block1_0_conv").strides == (2, 2)
    # conv2_x keeps the 56x56 map but widens 64 -> 256, so it projects too (stride 1).
    assert model.get_layer("conv2_block1_0_conv").strides == (1, 1)
    assert len([layer for layer in model.layers if layer.name.endswith("_0_conv")]) == 4


def test_basic_block_projects_only_where_the_shape_changes():
    model = keras_cnns.get_model("resnet18", input_shape=(64, 64, 3))
    projections = sorted(layer.name for layer in model.layers if layer.name.endswith("_0_conv"))
    assert projections == ["conv3_block1_0_conv", "conv4_block1_0_conv", "conv5_block1_0_conv"]
    assert model.get_layer("conv3_block1_1_conv").strides == (2, 2)


def test_bottleneck_has_69632_weights_where_two_3x3_convs_would_have_1179648():
    model = keras_cnns.get_model("resnet50", input_shape=(64, 64, 3))
    bottleneck = sum(model.get_layer(f"conv2_block2_{i}_conv").kernel.shape.num_elements()
                     for i in (1, 2, 3))
    assert bottleneck == 1 * 1 * 256 * 64 + 3 * 3 * 64 * 64 + 1 * 1 * 64 * 256 == 69_632
    assert 2 * 3 * 3 * 256 * 256 == 1_179_648


def test_zero_pad_shortcut_subsamples_and_appends_zero_channels():
    x = np.random.default_rng(0).normal(size=(2, 7, 6, 3)).astype("float32")
    y = np.asarray(ZeroPadShortcut(8, strides=2)(x))
    assert y.shape == (2, 4, 3, 8)
    np.testing.assert_array_equal(y[..., :3], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 3:], 0.0)
    layer = ZeroPadShortcut.from_config(ZeroPadShortcut(8, strides=2).get_config())
    assert (layer.filters, layer.strides, layer.weights) == (8, 2, [])
    with pytest.raises(ValueError, match="Received: filters=0"):
        ZeroPadShortcut(0)


def test_cifar_resnet_takes_fashion_mnist_and_any_size():
    model = keras_cnns.get_model("resnet20", input_shape=(28, 28, 1))
    probabilities = np.asarray(model(np.zeros((2, 28, 28, 1), "float32")))
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert keras_cnns.get_model("resnet20", input_shape=(8, 8, 3)).output.shape == (None, 10)
    any_size = keras_cnns.get_model("resnet20", input_shape=(None, None, 3))
    for size in (12, 40):
        assert any_size(np.zeros((1, size, size, 3), "float32")).shape == (1, 10)


def test_too_small_for_imagenet_depths_suggests_the_cifar_resnet():
    with pytest.raises(ValueError, match=r"at least 32x32.*'resnet20'.*Received"):
        keras_cnns.get_model("resnet50", input_shape=(28, 28, 3))
    with pytest.raises(ValueError, match="at least 8x8"):
        keras_cnns.get_model("resnet56", input_shape=(7, 7, 3))


def test_layer_names_follow_keras_applications():
    names = {layer.name for layer in keras_cnns.get_model("resnet50", input_shape=(32, 32, 3)).layers}
    for expected in ("conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu", "pool1_pad", "pool1_pool",
                     "conv2_block1_0_conv", "conv2_block1_1_conv", "conv2_block1_3_bn", "conv2_block1_add",
                     "conv4_block6_out", "conv5_block3_out", "avg_pool", "predictions"):
        assert expected in names


# keras.applications ImageNet import --------------------------------------------------------------


def _randomised_reference(input_shape, application=keras.applications.ResNet50, **kwargs):
    """A keras.applications ResNet (weights=None) with random conv biases and BN statistics, so that a
    wrong or missing bias folding (or a skipped layer) shows in the outputs."""
    reference = application(weights=None, input_shape=input_shape, **kwargs)
    rng = np.random.default_rng(0)
    for layer in reference.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.5, c),
                               rng.uniform(0.5, 2.0, c)])
        elif isinstance(layer, keras.layers.Conv2D):
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.5, bias.shape)])
    return reference


@pytest.fixture(scope="module")
def reference():
    return _randomised_reference((64, 64, 3), classifier_activation=None)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).uniform(-120, 150, size=(2, 64, 64, 3)).astype("float32")


def _assert_same_outputs(ours, theirs):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert np.abs(theirs).max() > 1.0  # not a trivially small output
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5 * np.abs(theirs).max())


def test_keras_applications_resnet50_instance_gives_identical_logits(reference, images):
    ours = keras_cnns.get_model("resnet50", input_shape=(64, 64, 3), classifier_activation=None,
                                weights=reference)
    _assert_same_outputs(ours(images), reference(images))
    # The folding really happened: our moving mean is theirs minus the conv bias.
    bias = reference.get_layer("conv3_block2_1_conv").bias.numpy()
    np.testing.assert_allclose(ours.get_layer("conv3_block2_1_bn").moving_mean.numpy(),
                               reference.get_layer("conv3_block2_1_bn").moving_mean.numpy() - bias)


@pytest.mark.parametrize("name, application", [("resnet101", keras.applications.ResNet101),
                                               ("resnet152", keras.applications.ResNet152)])
def test_keras_applications_resnet101_and_152_instances_give_identical_logits(name, application, images):
    theirs = _randomised_reference((64, 64, 3), application, classifier_activation=None)
    ours = keras_cnns.get_model(name, input_shape=(64, 64, 3), classifier_activation=None, weights=theirs)
    _assert_same_outputs(ours(images), theirs(images))


def test_keras_applications_trunk_imports_into_include_top_false(reference, images):
    ours = keras_cnns.get_model("resnet50", input_shape=(64, 64, 3), include_top=False, weights=reference)
    trunk = keras.Model(reference.input, reference.get_layer("conv5_block3_out").output)
    _assert_same_outputs(ours(images), trunk(images))


def test_a_keras_applications_h5_file_imports_too(reference, images, tmp_path):
    path = str(tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels.h5")
    reference.save(path)  # legacy HDF5, the format keras.applications publishes
    ours = keras_cnns.get_model("resnet50", input_shape=(64, 64, 3), classifier_activation=None, weights=path)
    _assert_same_outputs(ours(images), reference(images))


def test_imagenet_goes_through_keras_applications(monkeypatch):
    calls, real_resnet50 = [], keras.applications.ResNet50

    def fake_resnet50(**kwargs):  # no network here: record the call, build without weights
        calls.append(kwargs)
        return real_resnet50(**dict(kwargs, weights=None))

    monkeypatch.setattr(keras.applications, "ResNet50", fake_resnet50)
    keras_cnns.get_model("resnet50", include_top=False, weights="imagenet")
    assert calls == [dict(weights="imagenet", include_top=False, classes=1000, input_shape=None)]


def test_imagenet_import_refuses_what_cannot_fit(reference):
    with pytest.raises(ValueError, match="num_classes=1000.*Received: num_classes=7"):
        keras_cnns.get_model("resnet50", num_classes=7, weights="imagenet")
    with pytest.raises(ValueError, match="3-channel"):
        keras_cnns.get_model("resnet101", input_shape=(64, 64, 1), weights="imagenet")
    with pytest.raises(ValueError, match="not a keras.applications.ResNet101"):
        keras_cnns.get_model("resnet101", input_shape=(64, 64, 3), weights=reference)
    with pytest.raises(ValueError, match="weights must be"):
        keras_cnns.get_model("resnet18", weights="imagenet")  # keras.applications has no ResNet-18


def test_imagenet_preprocessing_is_keras_applications_caffe_mode():
    image = np.random.default_rng(2).integers(0, 256, size=(256, 256, 3)).astype("uint8")
    ours = np.asarray(imagenet.preprocessing("resnet50").apply(image))
    crop = image[16:240, 16:240].astype("float32")
    expected = keras.applications.resnet.preprocess_input(crop.copy())
    np.testing.assert_allclose(ours, expected, atol=1e-3)
