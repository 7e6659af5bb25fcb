"""Network in Network (Lin, Chen, Yan 2013) as the paper describes it."""

import keras
import numpy as np
import pytest

import keras_cnns
from keras_cnns.models import nin


def _conv_parameters(rows, channels, num_classes):
    """Every layer of an mlpconv is a convolution with a bias: k*k*in*out + out."""
    total = 0
    for row in rows:
        total += row.kernel_size ** 2 * channels * row.filters + row.filters
        channels = row.filters
        for width in row.mlp:
            width = num_classes if width == nin.CLASSES else width
            total += channels * width + width
            channels = width
    return total


@pytest.fixture(scope="module")
def imagenet_nin():
    return keras_cnns.get_model("nin")  # full size: 224x224x3, 1000 classes


def test_imagenet_nin_has_7595176_parameters_about_the_papers_7_6m(imagenet_nin):
    # conv1 34,944 + 2 x 9,312 | conv2 614,656 + 2 x 65,792 | conv3 885,120 + 2 x 147,840
    # | conv4 3,539,968 + 1,049,600 + class maps 1,025,000.
    assert imagenet_nin.count_params() == _conv_parameters(nin.CONFIGS["nin"], 3, 1000) == 7_595_176


def test_nin_cifar_has_966986_parameters():
    # conv1 14,592 + 30,880 + 15,456 | conv2 460,992 + 2 x 37,056 | conv3 331,968 + 37,056 + 1,930.
    model = keras_cnns.get_model("nin_cifar")
    assert model.count_params() == _conv_parameters(nin.CONFIGS["nin_cifar"], 3, 10) == 966_986


def test_no_fully_connected_layer_only_convolutions_with_1x1_mlp_layers(imagenet_nin):
    assert not [layer for layer in imagenet_nin.layers if isinstance(layer, keras.layers.Dense)]
    convs = [layer for layer in imagenet_nin.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 12  # four mlpconv blocks of three layers
    mlp = [c for c in convs if "_mlp" in c.name]
    assert mlp and all(c.kernel_size == (1, 1) for c in mlp)


def test_relu_after_every_layer_but_the_class_maps(imagenet_nin):
    convs = [layer for layer in imagenet_nin.layers if isinstance(layer, keras.layers.Conv2D)]
    activations = {c.name: c.get_config()["activation"] for c in convs}
    assert activations.pop("mlpconv4_mlp2") == "linear"
    assert set(activations.values()) == {"relu"}


def test_last_mlpconv_has_one_map_per_class_then_global_average_pooling(imagenet_nin):
    assert imagenet_nin.get_layer("mlpconv4_mlp2").output.shape[1:] == (5, 5, 1000)
    assert isinstance(imagenet_nin.get_layer("avg_pool"), keras.layers.GlobalAveragePooling2D)
    shapes = [imagenet_nin.get_layer(layer).output.shape[1:3]
              for layer in keras_cnns.feature_layers(imagenet_nin).values()]
    assert shapes == [(54, 54), (26, 26), (12, 12), (5, 5)]


def test_nin_cifar_scores_are_the_averages_of_its_class_maps():
    model = keras_cnns.get_model("nin_cifar", classifier_activation=None)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    maps = keras.Model(model.input, model.get_layer("mlpconv3_mlp2").output)(x)
    assert maps.shape == (2, 8, 8, 10)
    np.testing.assert_allclose(model(x), np.mean(maps, axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_nin_cifar_takes_fashion_mnist():
    model = keras_cnns.get_model("nin_cifar", input_shape=(28, 28, 1))
    points = keras_cnns.feature_layers(model)
    assert list(points) == ["mlpconv1", "mlpconv2", "mlpconv3"]
    assert [model.get_layer(points[p]).output.shape[1:3] for p in points] == [(28, 28), (14, 14), (7, 7)]
    probabilities = np.asarray(model(np.zeros((2, 28, 28, 1), "float32")))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    dropouts = [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropouts == [0.5, 0.5]


def test_include_top_false_drops_only_the_class_maps():
    trunk = keras_cnns.get_model("nin", include_top=False)
    assert trunk.output.shape[1:] == (5, 5, 1024)
    assert trunk.count_params() == 7_595_176 - (1024 * 1000 + 1000)
    assert keras_cnns.feature_layers(trunk)["mlpconv4"] == "mlpconv4_mlp1"
    assert keras_cnns.get_model("nin_cifar", include_top=False, pooling="avg").output.shape == (None, 192)


def test_the_smallest_imagenet_input_is_67_and_smaller_suggests_nin_cifar():
    # 67 -> conv 11/4 -> 15 -> pool 3/2 -> 7 -> 3 -> 1: the last pool still has a 3x3 window.
    assert keras_cnns.get_model("nin", input_shape=(67, 67, 3)).get_layer("mlpconv4_mlp2").output.shape[1:3] == (1, 1)
    with pytest.raises(ValueError, match=r"at least 67x67.*'nin_cifar'.*Received"):
        keras_cnns.get_model("nin", input_shape=(66, 66, 3))


@pytest.mark.parametrize("size", [16, 15, 7, 8])
def test_the_same_padded_average_pool_every_backend_runs_is_tensorflows(size):
    # NIN's mlpconv2 pool (3x3, stride 2, "same"): the keras.ops path that the PyTorch backend takes, here on
    # TensorFlow, against TensorFlow's own kernel (windows at the bottom and right edges average fewer pixels).
    from keras_cnns.layers.pooling import ExcludePaddingAveragePooling2D, exclude_padding_average_pool

    x = np.random.default_rng(size).standard_normal((2, size, size + 3, 4)).astype("float32")
    expected = np.asarray(keras.layers.AveragePooling2D(3, strides=2, padding="same")(x))
    np.testing.assert_allclose(np.asarray(exclude_padding_average_pool(x, (3, 3), (2, 2))), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(ExcludePaddingAveragePooling2D(3, strides=2, padding="same")(x)), expected,
                               atol=1e-6)
