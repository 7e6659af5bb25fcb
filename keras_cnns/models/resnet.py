"""ResNet (He, Zhang, Ren, Sun 2015, "Deep Residual Learning for Image Recognition").

One table, one builder. The ImageNet depths 18/34/50/101/152 (paper Table 1) and the CIFAR depths
20/32/44/56/110 (paper section 4.2: depth = 6n + 2) differ only in their row:

* block: "basic" (two 3x3 convolutions) or "bottleneck" (1x1 reduce, 3x3, 1x1 expand to 4x);
* stem: "imagenet" (7x7/2 conv 64, 3x3/2 max-pool) or "cifar" (one 3x3 conv 16);
* shortcut where the shape changes: "B", a 1x1 projection convolution with batch norm, or "A", the
  parameter-free :class:`~keras_cnns.layers.ZeroPadShortcut` (subsample + zero channels). Where the
  shape does not change the shortcut is the identity in both.

Where the stride sits: in a bottleneck the stride 2 of a stage's first block is on the first 1x1
convolution, as in the paper and keras.applications ("ResNet v1"; torchvision's "v1.5" moves it to
the 3x3; the parameter counts are the same). In a basic block it is on the first 3x3.

Every convolution is bias-free and followed by batch normalisation (epsilon 1.001e-5, as
keras.applications), then ReLU; the second ReLU of a block comes after the addition.
Layer names follow keras.applications: conv1_conv, conv1_bn, conv1_relu, pool1_pool,
conv2_block1_1_conv, ..., conv2_block1_0_conv (projection), conv2_block1_add, conv5_block3_out,
avg_pool, predictions.

Deviations from the paper, all shared by keras.applications and torchvision:
* A strided 3x3 (and the 7x7 stem) pads one (three) pixel(s) on every side, explicitly; stride-1
  convolutions use "same" padding.
* The CIFAR zero-padding shortcut appends its zero channels after the identity ones.
* Keras' default Glorot-uniform initialisation rather than the paper's He initialisation.
* keras.applications' own ResNets put a bias on every convolution; ours do not (the bias before a
  batch norm is redundant). Importing their weights folds each bias into the batch norm's moving mean,
  which is exact at inference.
"""

import dataclasses
import os
from typing import Tuple

import keras

from keras_cnns.features import register_endpoints
from keras_cnns.layers import batch_norm as fused_bn
from keras_cnns.layers.shortcut import ZeroPadShortcut
from keras_cnns.models.common import (check_args, classifier, finish_model, is_foreign_weights,
                                      keras_applications_weights, pool_features)
from keras_cnns.registry import WeightsImportError, register_model

PAPER = "He et al. 2015, Deep Residual Learning for Image Recognition"
BN_EPSILON = 1.001e-5
EXPANSION = 4  # a bottleneck's last 1x1 convolution widens its stage's width four times


@dataclasses.dataclass(frozen=True)
class ResNetConfig:
    """One row of the paper's tables.

    Attributes:
      block: "basic" or "bottleneck".
      blocks: residual blocks per stage (conv2_x, conv3_x, ...).
      widths: each stage's filters (a bottleneck outputs EXPANSION times as many).
      stem: "imagenet" or "cifar".
      shortcut: "B" (1x1 projection) or "A" (zero padding) where a block changes shape.
    """

    block: str
    blocks: Tuple[int, ...]
    widths: Tuple[int, ...]
    stem: str
    shortcut: str


_IMAGENET_WIDTHS = (64, 128, 256, 512)
_CIFAR_WIDTHS = (16, 32, 64)

CONFIGS = {
    "resnet18": ResNetConfig("basic", (2, 2, 2, 2), _IMAGENET_WIDTHS, "imagenet", "B"),
    "resnet34": ResNetConfig("basic", (3, 4, 6, 3), _IMAGENET_WIDTHS, "imagenet", "B"),
    "resnet50": ResNetConfig("bottleneck", (3, 4, 6, 3), _IMAGENET_WIDTHS, "imagenet", "B"),
    "resnet101": ResNetConfig("bottleneck", (3, 4, 23, 3), _IMAGENET_WIDTHS, "imagenet", "B"),
    "resnet152": ResNetConfig("bottleneck", (3, 8, 36, 3), _IMAGENET_WIDTHS, "imagenet", "B"),
    **{f"resnet{6 * n + 2}": ResNetConfig("basic", (n, n, n), _CIFAR_WIDTHS, "cifar", "A")
       for n in (3, 5, 7, 9, 18)},
}

# The models whose ImageNet weights keras.applications publishes (with the same layer names as ours).
APPLICATIONS = {"resnet50": "ResNet50", "resnet101": "ResNet101", "resnet152": "ResNet152"}

# Stage outputs. The CIFAR models have conv1 (the 3x3 stem) and the stages conv2..conv4 (32x32x16,
# 16x16x32, 8x8x64 on CIFAR); the ImageNet models add conv5.
register_endpoints("resnet", [
    ("conv1", r"conv1_relu"),
    ("conv2", r"conv2_block\d+_out"),
    ("conv3", r"conv3_block\d+_out"),
    ("conv4", r"conv4_block\d+_out"),
    ("conv5", r"conv5_block\d+_out"),
])


def _conv_bn(x, filters, kernel_size, strides, name, relu=True):
    """Bias-free convolution, batch norm, optionally ReLU: {name}_conv, {name}_bn, {name}_relu."""
    padding = "same"
    if strides > 1 and kernel_size > 1:
        x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, use_bias=False,
                            name=f"{name}_conv")(x)
    x = fused_bn.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_bn")(x)
    if relu:
        x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def _shortcut(x, filters, strides, kind, name):
    """The identity where the shape is kept; option A or B where it changes."""
    if strides == 1 and x.shape[-1] == filters:
        return x
    if kind == "A":
        return ZeroPadShortcut(filters, strides, name=f"{name}_0_shortcut")(x)
    return _conv_bn(x, filters, 1, strides, f"{name}_0", relu=False)


def _basic_block(x, width, strides, shortcut, name):
    """3x3 (stride here) -> 3x3, plus the shortcut; outputs `width` channels."""
    short = _shortcut(x, width, strides, shortcut, name)
    y = _conv_bn(x, width, 3, strides, f"{name}_1")
    y = _conv_bn(y, width, 3, 1, f"{name}_2", relu=False)
    return _merge(short, y, name)


def _bottleneck_block(x, width, strides, shortcut, name):
    """1x1 reduce (stride here, "v1") -> 3x3 -> 1x1 expand, plus the shortcut; outputs 4 * width."""
    short = _shortcut(x, EXPANSION * width, strides, shortcut, name)
    y = _conv_bn(x, width, 1, strides, f"{name}_1")
    y = _conv_bn(y, width, 3, 1, f"{name}_2")
    y = _conv_bn(y, EXPANSION * width, 1, 1, f"{name}_3", relu=False)
    return _merge(short, y, name)


def _merge(shortcut, residual, name):
    x = keras.layers.Add(name=f"{name}_add")([shortcut, residual])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


_BLOCKS = {"basic": _basic_block, "bottleneck": _bottleneck_block}


def stem(inputs, config, width=1.0):
    """conv1 (and pool1) of a CONFIGS row: the ImageNet 7x7/2 convolution and 3x3/2 max-pool (stride 4), or
    the CIFAR 3x3 convolution (stride 1). ``width`` multiplies the filters (1.0: the paper's)."""
    if config.stem == "cifar":
        return _conv_bn(inputs, _scaled(config.widths[0], width), 3, 1, "conv1")
    x = _conv_bn(inputs, _scaled(64, width), 7, 2, "conv1")
    x = keras.layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def stage(x, config, index, strides=None, width=1.0):
    """Stage ``index`` (0 = conv2_x) of a CONFIGS row: its blocks, named conv{index + 2}_block{k}.

    ``strides`` of its first block defaults to the paper's (1 for conv2_x, else 2); Faster R-CNN's trunks
    set it (stride 1 to keep a finer map, models.faster_rcnn). ``width`` multiplies the filters."""
    if strides is None:
        strides = 2 if index > 0 else 1
    block = _BLOCKS[config.block]
    filters = _scaled(config.widths[index], width)
    for k in range(config.blocks[index]):
        x = block(x, filters, strides if k == 0 else 1, config.shortcut, f"conv{index + 2}_block{k + 1}")
    return x


def stage_channels(config, index, width=1.0):
    """The channels stage ``index`` outputs (a bottleneck's 4x its width)."""
    return _scaled(config.widths[index], width) * (EXPANSION if config.block == "bottleneck" else 1)


def _scaled(filters, width):
    return max(1, int(round(filters * width)))


def _resnet(variant, *, input_shape, num_classes, include_top, pooling, classifier_activation,
            weights, name):
    """Builds `variant` from its CONFIGS row."""
    config = CONFIGS[variant]
    cifar = config.stem == "cifar"
    published = _published(variant)
    input_shape = check_args(
        variant, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
        pooling=pooling, classifier_activation=classifier_activation, weights=weights,
        default_shape=(32, 32, 3) if cifar else (224, 224, 3), min_size=8 if cifar else 32,
        small_variant=None if cifar else "resnet20", any_size_top=True, published=published)
    foreign = bool(published) and is_foreign_weights(weights, published)
    if foreign and input_shape[-1] != 3:
        raise ValueError(f"{variant}: ImageNet weights need 3-channel (RGB) inputs. "
                         f"Received: input_shape={input_shape!r}")
    if foreign and include_top and weights == "imagenet" and num_classes != 1000:
        raise ValueError(f"{variant}: the ImageNet classifier has 1000 classes; use num_classes=1000 or "
                         f"include_top=False. Received: num_classes={num_classes!r}")

    inputs = keras.Input(shape=input_shape)
    x = stem(inputs, config)                       # ImageNet (224, 224, 3) -> (56, 56, 64); CIFAR (32, 32, 16)
    for index in range(len(config.blocks)):
        x = stage(x, config, index)
    # ImageNet: (7, 7, 512 | 2048); CIFAR: (8, 8, 64)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        outputs = classifier(x, num_classes, classifier_activation)
    else:
        outputs = pool_features(x, pooling)
    return finish_model(inputs, outputs, name=name, weights=weights, published=published)


def _published(variant):
    """The registry.Weights of `variant`: keras.applications' ImageNet set for resnet50/101/152."""
    return keras_applications_weights(variant, APPLICATIONS.get(variant), import_applications_weights)


def import_applications_weights(model, source, *, spec_name):
    """Copies keras.applications ResNet weights into `model` (our `variant`, built the same way).

    `source` is "imagenet" (keras.applications downloads the published file, or reads it from
    ~/.keras/models), the path of such an .h5 file, or a keras.applications model instance.
    keras.applications' convolutions carry a bias b and ours do not: batch norm computes
    gamma * (conv + b - mean) / sqrt(var + eps) + beta, so moving_mean - b in our batch norm gives
    exactly the same output at inference. Raises WeightsImportError when the source cannot be read or does
    not fit.
    """
    variant = spec_name
    application = APPLICATIONS[variant]
    layer_names = {layer.name for layer in model.layers}
    include_top = "predictions" in layer_names
    if isinstance(source, keras.Model):
        reference = source
    else:
        classes = model.get_layer("predictions").units if include_top else 1000
        build = getattr(keras.applications, application)
        where = "Keras' published ImageNet weights" if source == "imagenet" else repr(os.fspath(source))
        try:
            reference = build(weights=source if source == "imagenet" else os.fspath(source),
                              include_top=include_top, classes=classes, input_shape=None)
        except Exception as err:  # download failures, wrong files: one actionable message
            raise WeightsImportError(
                f"{variant}: could not load {where} into keras.applications.{application} ({err}). "
                f"Offline, put the keras.applications file ({_published(variant)[0].files[0 if include_top else 1]}) "
                f"in ~/.keras/models/ or pass its path as weights=. "
                f"Received: weights={source!r}") from None

    ours = {layer.name: layer for layer in model.layers if layer.weights}
    theirs = {layer.name: layer for layer in reference.layers if layer.weights}
    missing = sorted(set(ours) - set(theirs))
    extra = sorted(set(theirs) - set(ours) - {"predictions"})
    if missing or extra:
        raise WeightsImportError(
            f"{variant}: the source is not a keras.applications.{application} matching this model "
            f"(layers it lacks: {missing[:5]}, layers we lack: {extra[:5]}). With include_top=True the "
            f"source needs its classifier too. Received: weights={reference.name!r}")
    for layer_name, layer in ours.items():
        arrays = theirs[layer_name].get_weights()
        if isinstance(layer, keras.layers.Conv2D):
            arrays = arrays[:1]                       # the kernel; the bias goes into the batch norm
        elif isinstance(layer, keras.layers.BatchNormalization):
            conv = theirs[layer_name[:-len("_bn")] + "_conv"]
            if conv.use_bias:
                gamma, beta, mean, variance = arrays
                arrays = [gamma, beta, mean - conv.get_weights()[1], variance]
        try:
            layer.set_weights(arrays)
        except ValueError as err:
            raise WeightsImportError(
                f"{variant}: layer {layer_name} does not fit the source's ({err}). A classifier with "
                f"{model.get_layer('predictions').units if include_top else 0} classes needs a source "
                f"with as many; use include_top=False to keep only the trunk.") from None


def _register(variant, summary, cpu_bfloat16=None):
    """Registers the builder of CONFIGS[variant] and returns it (assigned to a module name below).

    summary: its docstring, the paper's block counts and the trainable parameters. cpu_bfloat16: its registry
    spec's, where a full run measured it (docs/training.md, "Precision")."""
    cifar = CONFIGS[variant].stem == "cifar"
    if cifar:
        spec = dict(family="resnet", paper=f"{PAPER}, section 4.2 (CIFAR-10)", input_shape=(32, 32, 3),
                    min_input_size=8, test_input_shape=(28, 28, 1), recipe="resnet_cifar", cpu_bfloat16=cpu_bfloat16,
                    deviations="option-A zero channels appended after the identity; Glorot-uniform init")
    else:
        spec = dict(family="resnet", paper=PAPER, input_shape=(224, 224, 3), min_input_size=32,
                    test_input_shape=(32, 32, 3), weights=_published(variant),
                    deviations="Glorot-uniform init (paper: He init); BN epsilon 1.001e-5 as keras.applications")

    @register_model(variant, **spec)
    def build(*, input_shape=None, num_classes=10 if cifar else 1000, include_top=True, pooling=None,
              classifier_activation="softmax", weights=None, name=variant):
        return _resnet(variant, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                       pooling=pooling, classifier_activation=classifier_activation, weights=weights, name=name)

    build.__name__ = build.__qualname__ = variant
    build.__doc__ = summary
    return build


# One line per variant, so that readers and linters see every builder the module defines.
resnet18 = _register("resnet18", "ResNet-18: basic blocks [2, 2, 2, 2], 11,689,512 trainable parameters.")
resnet34 = _register("resnet34", "ResNet-34: basic blocks [3, 4, 6, 3], 21,797,672 trainable parameters.")
resnet50 = _register(
    "resnet50", "ResNet-50: bottlenecks [3, 4, 6, 3], 25,557,032 trainable parameters; ImageNet weights.")
resnet101 = _register(
    "resnet101", "ResNet-101: bottlenecks [3, 4, 23, 3], 44,549,160 trainable parameters; ImageNet weights.")
resnet152 = _register(
    "resnet152", "ResNet-152: bottlenecks [3, 8, 36, 3], 60,192,808 trainable parameters; ImageNet weights.")
resnet20 = _register("resnet20", "CIFAR ResNet-20 (n=3): 269,722 trainable parameters with 10 classes.",
                     cpu_bfloat16="mixed_bfloat16")  # 1.50x float32's speed, same accuracy: docs/training.md
resnet32 = _register("resnet32", "CIFAR ResNet-32 (n=5): 464,154 trainable parameters with 10 classes.")
resnet44 = _register("resnet44", "CIFAR ResNet-44 (n=7): 658,586 trainable parameters with 10 classes.")
resnet56 = _register("resnet56", "CIFAR ResNet-56 (n=9): 853,018 trainable parameters with 10 classes.")
resnet110 = _register("resnet110", "CIFAR ResNet-110 (n=18): 1,727,962 trainable parameters with 10 classes.")
