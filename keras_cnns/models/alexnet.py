"""AlexNet: Krizhevsky, Sutskever, Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks" (NIPS 2012).

Five convolutions and three fully connected layers, 60,965,224 parameters at 227x227x3 with 1000
classes. The paper split the network over two GPUs: conv2, conv4 and conv5 see only the maps of their
own GPU ("tower"), conv3 and the fully connected layers read both. Here the towers are one model on
one device, built either as grouped convolutions (``towers="grouped"``, the default) or as
split -> two convolutions -> concatenate (``towers="split"``); the two forms compute the same function
and :func:`copy_tower_weights` moves weights between them.

Deviations from the paper:
- Input 227x227x3 instead of the 224x224 the paper states (224 does not give its 55x55 conv1 maps).
- One device: the towers are channel groups, not GPUs; there is no cross-GPU communication to model.
- include_top=False / pooling and num_classes != 1000 are additions for reuse.
"""

import collections

import keras
import numpy as np

from keras_cnns.features import register_endpoints
from keras_cnns.layers import grouped_conv
from keras_cnns.layers.lrn import LocalResponseNormalization
from keras_cnns.layers.split import ChannelSplit
from keras_cnns.models.common import check_args, classifier, finish_model, pool_features
from keras_cnns.registry import register_model

PAPER = "Krizhevsky, Sutskever, Hinton 2012, ImageNet Classification with Deep Convolutional Neural Networks"
TOWERS = ("grouped", "split")

# One row per convolution, as in the paper's Figure 2 and section 3.5. `groups` is 2 where a layer
# reads only its own tower; `bias` is the constant the paper initialises the biases with.
Conv = collections.namedtuple("Conv", "name filters kernel stride padding groups bias lrn pool")
CONVS = (
    Conv("conv1", 96, 11, 4, "valid", 1, 0.0, True, True),    # 227 -> 55x55x96 -> pool 27
    Conv("conv2", 256, 5, 1, "same", 2, 1.0, True, True),     # 27x27x256 -> pool 13
    Conv("conv3", 384, 3, 1, "same", 1, 0.0, False, False),   # 13x13x384, reads both towers
    Conv("conv4", 384, 3, 1, "same", 2, 1.0, False, False),   # 13x13x384
    Conv("conv5", 256, 3, 1, "same", 2, 1.0, False, True),    # 13x13x256 -> pool 6
)
# Hidden fully connected layers: (name, units); the paper initialises their biases to 1.
FULLY_CONNECTED = (("fc6", 4096), ("fc7", 4096))
DROPOUT = 0.5
# Overlapping pooling (section 3.4): z=3, s=2.
POOL_SIZE, POOL_STRIDE = 3, 2
# LRN constants of section 3.3: k=2, n=5, alpha=1e-4, beta=0.75 (alpha multiplies the sum).
LRN = dict(depth=5, bias=2.0, alpha=1e-4, beta=0.75)
WEIGHT_STDDEV = 0.01


def minimum_input_size():
    """Smallest H (= W) for which pool5 still has one position: 67 (pool5 is then 1x1x256)."""
    size = 1
    for conv in reversed(CONVS):
        if conv.pool:
            size = (size - 1) * POOL_STRIDE + POOL_SIZE
        if conv.padding == "valid":
            size = (size - 1) * conv.stride + conv.kernel
    return size


def _weight_init():
    # A fresh initializer per layer so that every layer draws its own values.
    return keras.initializers.RandomNormal(mean=0.0, stddev=WEIGHT_STDDEV)


def _conv(x, conv, towers):
    """One convolution with ReLU; conv.groups > 1 reads only its own tower of the input."""
    kwargs = dict(kernel_size=conv.kernel, strides=conv.stride, padding=conv.padding, activation="relu",
                  bias_initializer=keras.initializers.Constant(conv.bias))
    if conv.groups == 1 or towers == "grouped":
        return grouped_conv.Conv2D(conv.filters, groups=conv.groups, kernel_initializer=_weight_init(),
                                   name=conv.name, **kwargs)(x)
    parts = ChannelSplit(conv.groups, name=f"{conv.name}_split")(x)
    outs = [keras.layers.Conv2D(conv.filters // conv.groups, kernel_initializer=_weight_init(),
                                name=f"{conv.name}_tower{i + 1}", **kwargs)(part)
            for i, part in enumerate(parts)]
    return keras.layers.Concatenate(axis=-1, name=conv.name)(outs)


def _alexnet(*, spec_name, input_shape, num_classes, include_top, pooling, classifier_activation,
             weights, name, towers):
    if towers not in TOWERS:
        raise ValueError(f"{spec_name}: towers must be one of {TOWERS}. Received: towers={towers!r}")
    input_shape = check_args(
        spec_name, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
        pooling=pooling, classifier_activation=classifier_activation, weights=weights,
        default_shape=(227, 227, 3), min_size=minimum_input_size())
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for conv in CONVS:
        x = _conv(x, conv, towers)
        stage = conv.name[len("conv"):]
        if conv.lrn:
            x = LocalResponseNormalization(**LRN, name=f"norm{stage}")(x)
        if conv.pool:
            x = keras.layers.MaxPooling2D(POOL_SIZE, strides=POOL_STRIDE, name=f"pool{stage}")(x)
    # pool5: 6x6x256 at 227x227.
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        for fc_name, units in FULLY_CONNECTED:
            x = keras.layers.Dense(units, activation="relu", kernel_initializer=_weight_init(),
                                   bias_initializer=keras.initializers.Constant(1.0), name=fc_name)(x)
            x = keras.layers.Dropout(DROPOUT, name=f"drop{fc_name[len('fc'):]}")(x)
        x = classifier(x, num_classes, classifier_activation, kernel_initializer=_weight_init(),
                       bias_initializer="zeros")
    else:
        x = pool_features(x, pooling)
    return finish_model(inputs, x, name=name, weights=weights)


@register_model("alexnet", family="alexnet", paper=PAPER, input_shape=(227, 227, 3),
                min_input_size=minimum_input_size(), test_input_shape=(67, 67, 3),
                deviations="227x227 input (the paper says 224); the two GPU towers are channel groups on "
                           "one device (towers='split' builds them without grouped convolutions)")
def alexnet(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
            classifier_activation="softmax", weights=None, name="alexnet", towers="grouped"):
    """AlexNet (Krizhevsky et al. 2012): 227x227x3 -> conv1..conv5 -> fc6, fc7 (4096) -> num_classes.

    Args:
      towers: "grouped" builds conv2/4/5 as Conv2D(groups=2) (keras_cnns.layers.grouped_conv: on
        TensorFlow one split convolution per group, where Keras's layer takes a slow XLA function on a
        CPU); "split" builds each as ChannelSplit ->
        two Conv2D -> Concatenate, the same function with ops every runtime supports (TFLite int8,
        GPU delegates). :func:`copy_tower_weights` converts trained weights between the forms.
      The other keywords are those of every builder in the zoo (see keras_cnns.models.common).
    """
    return _alexnet(spec_name="alexnet", input_shape=input_shape, num_classes=num_classes,
                    include_top=include_top, pooling=pooling, classifier_activation=classifier_activation,
                    weights=weights, name=name, towers=towers)


def _tower_weights(model, conv):
    """[(kernel, bias)] of each tower of `conv` in `model`, whichever form the model was built in."""
    layer = model.get_layer(conv.name)
    if layer.weights:
        kernel, bias = layer.get_weights()
        return list(zip(np.split(kernel, conv.groups, axis=-1), np.split(bias, conv.groups)))
    return [tuple(model.get_layer(f"{conv.name}_tower{i + 1}").get_weights()) for i in range(conv.groups)]


def copy_tower_weights(source, target):
    """Copies every weight of the AlexNet `source` into `target`, built in either tower form.

    Both must have been built with the same input_shape, num_classes and include_top. A grouped
    kernel (kh, kw, C/2, F) holds tower 1 in output channels [0, F/2) and tower 2 in [F/2, F), so it is
    cut (or joined) along its last axis.
    """
    grouped = {conv.name: conv for conv in CONVS if conv.groups > 1}
    for conv in grouped.values():
        parts = _tower_weights(source, conv)
        layer = target.get_layer(conv.name)
        if layer.weights:
            layer.set_weights([np.concatenate([p[0] for p in parts], axis=-1),
                               np.concatenate([p[1] for p in parts])])
        else:
            for i, part in enumerate(parts):
                target.get_layer(f"{conv.name}_tower{i + 1}").set_weights(list(part))
    for layer in target.layers:
        owner = layer.name.split("_tower")[0]
        if layer.weights and owner not in grouped:
            layer.set_weights(source.get_layer(layer.name).get_weights())


register_endpoints("alexnet", [
    ("pool1", r"pool1"), ("pool2", r"pool2"), ("conv3", r"conv3"), ("conv4", r"conv4"),
    ("pool5", r"pool5"), ("fc6", r"fc6"), ("fc7", r"fc7"),
])
