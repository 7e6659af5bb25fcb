"""Network in Network (Lin, Chen, Yan 2013, "Network In Network").

An mlpconv block is a spatial convolution followed by two 1x1 convolutions (a two-layer perceptron
shared across positions), ReLU after each. There is no fully connected layer: the last mlpconv
outputs one map per class and global average pooling turns each map into that class's score.

Two models from one table of named rows:

* nin (ImageNet, 224x224x3), the layout of the authors' Caffe model-zoo release:
  (96@11x11/4, 96, 96) max-pool 3/2; (256@5x5, 256, 256) max-pool 3/2; (384@3x3, 384, 384) max-pool 3/2,
  dropout 0.5; (1024@3x3, 1024, classes) global average pool. 7,595,176 parameters with 1000 classes.
  Maps (NHWC): 224 -> 54 -> 26 -> 12 -> 5 -> 5x5x1000.
* nin_cifar (CIFAR-10, 32x32x3), the paper's section 4.2 model:
  (192@5x5, 160, 96) max-pool 3/2, dropout 0.5; (192@5x5, 192, 192) avg-pool 3/2, dropout 0.5;
  (192@3x3, 192, classes) global average pool. 966,986 parameters with 10 classes.
  Maps: 32 -> 16 -> 8 (28 -> 14 -> 7 for Fashion-MNIST, which it takes as 28x28x1).

Layers are named mlpconv{i}_conv, mlpconv{i}_mlp1, mlpconv{i}_mlp2, mlpconv{i}_pool,
mlpconv{i}_dropout, then avg_pool and predictions (the softmax). End points mlpconv1..mlpconv4
(nin_cifar: ..mlpconv3) are the blocks' last ReLU outputs, before their pooling.

include_top=False keeps every layer except the class-map 1x1 convolution, so the trunk ends with the
last mlpconv's first 1x1 layer (5x5x1024 for nin, 8x8x192 for nin_cifar), optionally pooled.

Deviations from the paper:
* The class maps are not rectified. The paper (and Caffe's model) puts a ReLU on them too; then a
  class whose maps start out negative everywhere gets no gradient and never learns, and the scores
  could not be negative logits. Everything else has its ReLU.
* Pooling: Caffe rounds pooled sizes up. nin_cifar pools with "same" padding, which gives Caffe's
  sizes (32 -> 16 -> 8); Keras' "same" average pool ignores the padded zeros where Caffe counts them.
  nin uses "valid" pooling (54 -> 26 -> 12 -> 5 where Caffe has 27 -> 13 -> 6); the global average
  pool makes the parameters and the head the same.
* Keras' default (Glorot uniform) initialisation rather than Caffe's Gaussians.
"""

import dataclasses
from typing import Optional, Tuple

import keras

from keras_cnns.features import register_endpoints
from keras_cnns.layers.pooling import ExcludePaddingAveragePooling2D
from keras_cnns.models.common import check_args, finish_model, pool_features
from keras_cnns.registry import register_model

PAPER = "Lin, Chen, Yan 2013, Network In Network"
CLASSES = "classes"  # stands for num_classes in a row's mlp widths


@dataclasses.dataclass(frozen=True)
class MlpConv:
    """One mlpconv block and what follows it.

    Attributes:
      filters, kernel_size, strides, padding: the spatial convolution.
      mlp: widths of the two 1x1 layers (CLASSES for the class maps).
      pool: "max", "avg" or None (the last block: global average pooling follows).
      pool_padding: "valid" or "same" for the 3/2 pool.
      dropout: rate after the pool (0 for none).
    """

    filters: int
    kernel_size: int
    strides: int
    padding: str
    mlp: Tuple[object, object]
    pool: Optional[str] = None
    pool_padding: str = "valid"
    dropout: float = 0.0


CONFIGS = {
    "nin": (
        MlpConv(96, 11, 4, "valid", (96, 96), pool="max"),
        MlpConv(256, 5, 1, "same", (256, 256), pool="max"),
        MlpConv(384, 3, 1, "same", (384, 384), pool="max", dropout=0.5),
        MlpConv(1024, 3, 1, "same", (1024, CLASSES)),
    ),
    "nin_cifar": (
        MlpConv(192, 5, 1, "same", (160, 96), pool="max", pool_padding="same", dropout=0.5),
        MlpConv(192, 5, 1, "same", (192, 192), pool="avg", pool_padding="same", dropout=0.5),
        MlpConv(192, 3, 1, "same", (192, CLASSES)),
    ),
}

register_endpoints("nin", [(f"mlpconv{i}", rf"mlpconv{i}_mlp[12]") for i in range(1, 5)])

_POOLS = {"max": keras.layers.MaxPooling2D, "avg": ExcludePaddingAveragePooling2D}  # the same on every backend


def _mlpconv(x, row, num_classes, include_top, name):
    """conv -> 1x1 -> 1x1 (ReLU after each but the class maps) -> pool -> dropout."""
    x = keras.layers.Conv2D(row.filters, row.kernel_size, strides=row.strides, padding=row.padding,
                            activation="relu", name=f"{name}_conv")(x)
    for index, width in enumerate(row.mlp, start=1):
        if width == CLASSES:
            if not include_top:
                break
            x = keras.layers.Conv2D(num_classes, 1, name=f"{name}_mlp{index}")(x)
        else:
            x = keras.layers.Conv2D(width, 1, activation="relu", name=f"{name}_mlp{index}")(x)
    if row.pool:
        x = _POOLS[row.pool](3, strides=2, padding=row.pool_padding, name=f"{name}_pool")(x)
    if row.dropout:
        x = keras.layers.Dropout(row.dropout, name=f"{name}_dropout")(x)
    return x


def _nin(variant, *, input_shape, num_classes, include_top, pooling, classifier_activation, weights,
         name):
    """Builds `variant` from its CONFIGS rows."""
    cifar = variant == "nin_cifar"
    input_shape = check_args(
        variant, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
        pooling=pooling, classifier_activation=classifier_activation, weights=weights,
        default_shape=(32, 32, 3) if cifar else (224, 224, 3), min_size=8 if cifar else 67,
        small_variant=None if cifar else "nin_cifar", any_size_top=True)
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for index, row in enumerate(CONFIGS[variant], start=1):
        x = _mlpconv(x, row, num_classes, include_top, f"mlpconv{index}")
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        outputs = keras.layers.Activation(classifier_activation or "linear", name="predictions")(x)
    else:
        outputs = pool_features(x, pooling)
    return finish_model(inputs, outputs, name=name, weights=weights)


@register_model("nin", family="nin", paper=PAPER, input_shape=(224, 224, 3), min_input_size=67,
                test_input_shape=(67, 67, 3), deviations="linear class maps (no ReLU before the softmax)")
def nin(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
        classifier_activation="softmax", weights=None, name="nin"):
    """NIN for ImageNet (Caffe model-zoo layout): four mlpconv blocks, 7,595,176 parameters."""
    return _nin("nin", input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                pooling=pooling, classifier_activation=classifier_activation, weights=weights, name=name)


@register_model("nin_cifar", family="nin", paper=f"{PAPER}, section 4.2 (CIFAR-10)",
                input_shape=(32, 32, 3), min_input_size=8, test_input_shape=(28, 28, 1), recipe="nin_cifar",
                deviations="linear class maps (no ReLU before the softmax)")
def nin_cifar(*, input_shape=None, num_classes=10, include_top=True, pooling=None,
              classifier_activation="softmax", weights=None, name="nin_cifar"):
    """NIN for CIFAR-10: three mlpconv blocks, 966,986 parameters; takes 28x28x1 Fashion-MNIST."""
    return _nin("nin_cifar", input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                pooling=pooling, classifier_activation=classifier_activation, weights=weights, name=name)
