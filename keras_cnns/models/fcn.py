"""FCN: Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic Segmentation" (CVPR 2015;
PAMI 2017), on the zoo's VGG-16 (configuration D).

The classifier's fully connected layers become convolutions (fc6 a 7x7 convolution over the pool5 map,
fc7 a 1x1 convolution), a 1x1 ``score_fr`` gives one map per class at stride 32, and transposed
convolutions initialised to bilinear interpolation bring the scores back to the input's size:

    fcn32s   score_fr -> x32 (upscore32)
    fcn16s   score_fr -> x2 (upscore2) + score_pool4 -> x16 (upscore16)
    fcn8s    score_fr -> x2 + score_pool4 -> x2 (upscore_pool4) + score_pool3 -> x8 (upscore8)

then a per-pixel softmax over the classes (float32 under mixed precision). Shapes for a 128x128x1 input,
full width: block3_pool 16x16x256, block4_pool 8x8x512, block5_pool 4x4x512, fc7 4x4x4096, output
128x128xK.

Registered names: ``fcn32s_vgg16``, ``fcn16s_vgg16``, ``fcn8s_vgg16`` (the paper's widths) and the same
with ``_slim`` (every width divided by 8: the trunk's filters and fc6/fc7's 4096) and ``_quarter`` (the trunk's
filters divided by 4, fc6/fc7 by 8), which train on a CPU: the widths of the VGG-16 twins ``vgg16_slim`` and
``vgg16_quarter`` (``vgg.SMALL_WIDTHS``).

Deviations from the paper:
  * any input size through padding the image at its bottom and right to a multiple of 32 and cropping
    the scores back (layers.spatial), instead of Caffe's 100-pixel pad and fixed crop offsets;
  * fc6 uses "same" padding (the paper's pool5 is 7x7 for its padded inputs; small images give smaller
    maps);
  * the final upsampling layer is trainable like the others (the paper kept some fixed); all score
    layers start at zero (the paper zero-initialises score_fr and the skip scores);
  * the ``_slim`` and ``_quarter`` variants are not in the paper.
A run may set the dropout rate after fc6 and fc7 (``overrides={"dropout": rate}``: fit's ``overrides=``,
train.py ``--dropout``); the default is the paper's 0.5.
The backbone can start from a trained VGG classifier's weights (``backbone_weights=``, the paper's way):
convolutions are copied by name and a Dense fc6/fc7 is reshaped into the convolution (a classifier whose pool5
is 1x1, as the 32x32 vgg16_slim, gives fc6 as the convolution's centre tap).
"""

import dataclasses

import keras
import numpy as np

from keras_cnns.features import register_endpoints
from keras_cnns.layers.spatial import BilinearUpsampling, CropToReference, PadToMultiple
from keras_cnns.models import vgg
from keras_cnns.models.common import check_args, finish_model, load_keras_file, replace_settings
from keras_cnns.registry import register_model

PAPER = 'Long, Shelhamer, Darrell 2015, "Fully Convolutional Networks for Semantic Segmentation"'
OUTPUT_STRIDE = 32
FC_UNITS = 4096
FC6_KERNEL = 7
DROPOUT = 0.5


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a run may change in an FCN (``overrides``): the dropout rate after fc6 and fc7 (the paper's 0.5)."""

    dropout: float = DROPOUT


def fcn_settings(spec_name, overrides=None):
    """The :class:`Settings` of a run: the paper's, with ``overrides`` ({field: value}) replaced and checked."""
    settings = replace_settings(Settings(), overrides, f"{spec_name} (FCN)")
    if isinstance(settings.dropout, bool) or not isinstance(settings.dropout, (int, float)) \
            or not 0 <= settings.dropout < 1:
        raise ValueError(f"{spec_name}: dropout must be a number in [0, 1) (the paper's is {DROPOUT}). "
                         f"Received: dropout={settings.dropout!r}")
    return settings


# Registry stem -> the pools whose scores are fused, deepest first (FCN-32s fuses none).
VARIANTS = {
    "fcn32s": (),
    "fcn16s": ("block4_pool",),
    "fcn8s": ("block4_pool", "block3_pool"),
}
# The paper's short names of the fused pools (score_pool4, fuse_pool4, ...).
_SKIP_NAMES = {"block4_pool": "pool4", "block3_pool": "pool3"}


def _upsample(x, num_classes, factor, name):
    """A Conv2DTranspose with kernel 2*factor and stride factor, initialised to bilinear interpolation."""
    return keras.layers.Conv2DTranspose(
        num_classes, 2 * factor, strides=factor, padding="same", use_bias=False,
        kernel_initializer=BilinearUpsampling(), name=name)(x)


def _score(x, num_classes, name):
    return keras.layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name=name)(x)


def _fcn(*, spec_name, skips, width, fc_width, input_shape, num_classes, include_top, pooling, classifier_activation,
         weights, backbone_weights, overrides, name):
    settings = fcn_settings(spec_name, overrides)
    input_shape = check_args(
        spec_name, input_shape=input_shape, num_classes=num_classes, include_top=include_top, pooling=pooling,
        classifier_activation=classifier_activation, weights=weights, default_shape=(None, None, 3),
        min_size=1, any_size_top=True)
    inputs = keras.Input(input_shape, name="image")
    padded = PadToMultiple(OUTPUT_STRIDE, name="pad")(inputs)
    pools = dict(zip((f"block{b}_pool" for b in range(1, 6)), vgg.trunk(padded, "D", width=width)))
    if not include_top:
        return finish_model(inputs, pools["block5_pool"], name=name, weights=weights)
    units = vgg.scaled(FC_UNITS, fc_width)
    x = keras.layers.Conv2D(units, FC6_KERNEL, padding="same", activation="relu", name="fc6")(pools["block5_pool"])
    x = keras.layers.Dropout(settings.dropout, name="drop6")(x)
    x = keras.layers.Conv2D(units, 1, activation="relu", name="fc7")(x)
    x = keras.layers.Dropout(settings.dropout, name="drop7")(x)
    x = _score(x, num_classes, "score_fr")
    stride = OUTPUT_STRIDE
    previous = "2"
    for skip in skips:
        short = _SKIP_NAMES[skip]
        x = _upsample(x, num_classes, 2, name=f"upscore{previous}")  # upscore2, then upscore_pool4
        previous = f"_{short}"
        stride //= 2
        skip_score = _score(pools[skip], num_classes, f"score_{short}")
        x = CropToReference(name=f"crop_{short}")([x, skip_score])
        x = keras.layers.Add(name=f"fuse_{short}")([x, skip_score])
    x = _upsample(x, num_classes, stride, name=f"upscore{stride}")
    x = CropToReference(name="crop")([x, inputs])
    if classifier_activation in (None, "linear"):
        outputs = keras.layers.Activation("linear", dtype="float32", name="predictions")(x)
    else:
        outputs = keras.layers.Activation(classifier_activation, dtype="float32", name="predictions")(x)
    model = finish_model(inputs, outputs, name=name, weights=weights)
    if backbone_weights is not None and weights is None:
        load_backbone(model, backbone_weights)
    return model


def load_backbone(model, source):
    """Copies a trained VGG classifier's weights into an FCN (the paper's start): every convolution by
    name, fc6/fc7 from Dense layers reshaped to (k, k, C, units) in Flatten's order when the shapes allow; a
    Dense fc6 over a 1x1 pool5 map (a classifier trained at 32x32, as vgg16_slim) becomes the centre tap of the
    kxk fc6, the other taps zero (the same function at every cell).

    `source` is a keras.Model or the path of a .keras file of a VGG-D classifier without batch norm (vgg16, or a
    trunk of the same width): the batch-norm variants (vgg16_bn, vgg_cifar) have convolutions without a bias and
    are refused. Returns the names of the layers copied.
    """
    if not isinstance(source, keras.Model):
        source = load_keras_file(source)
    theirs = {layer.name: layer for layer in source.layers if layer.weights}
    copied = []
    for layer in model.layers:
        if not layer.weights or layer.name not in theirs:
            continue
        values = theirs[layer.name].get_weights()
        expected = [tuple(w.shape) for w in layer.weights]
        if len(values) == 2 and len(expected) == 2 and values[0].ndim == 2 and len(expected[0]) == 4:
            kernel = values[0]
            k_h, k_w, channels, units = expected[0]
            if kernel.shape == (k_h * k_w * channels, units):
                kernel = kernel.reshape(k_h, k_w, channels, units)
            elif kernel.shape == (channels, units) and k_h % 2 and k_w % 2:
                # a Dense over a 1x1 pool5 (a classifier trained at 32x32): the "same" kxk convolution whose
                # centre tap is that kernel and every other tap zero computes it at every cell
                centred = np.zeros(expected[0], kernel.dtype)
                centred[k_h // 2, k_w // 2] = kernel
                kernel = centred
            else:
                continue  # a Dense fc6 trained on another map size: left at its initial values
            values = [kernel, values[1]]
        if [tuple(np.shape(v)) for v in values] != expected:
            raise ValueError(
                f"{model.name}: layer {layer.name} has weights of shapes {expected}, the backbone's has "
                f"{[tuple(np.shape(v)) for v in values]}. Build the FCN with the backbone's width. "
                f"Received: backbone_weights from {source.name!r}")
        layer.set_weights(values)
        copied.append(layer.name)
    if not any(name.startswith("block") for name in copied):
        raise ValueError(f"{model.name}: the backbone {source.name!r} shares no convolution with this FCN; pass "
                         "a VGG-16 (configuration D) classifier. Received: backbone_weights=" + repr(source.name))
    return copied


def _register(stem, small=None):
    """Registers the FCN of VARIANTS[stem] at the paper's widths, or at those of the VGG-16 twin
    ``vgg16_<small>`` (vgg.SMALL_WIDTHS), and returns its builder."""
    skips = VARIANTS[stem]
    spec_name = f"{stem}_vgg16" + (f"_{small}" if small else "")
    width, fc_width = vgg.SMALL_WIDTHS[small] if small else (1.0, 1.0)
    narrowed = (f"the trunk's widths x {width:g} and fc6/fc7's x {fc_width:g}, as vgg16_{small} (not in the paper)"
                if small else "")
    deviations = ("input padded to a multiple of 32 and scores cropped back (Caffe: 100-pixel pad); fc6 'same' "
                  "padding; trainable final upsampling" + (f"; {narrowed}" if small else ""))

    @register_model(spec_name, family="fcn", paper=PAPER, input_shape=(None, None, 3), min_input_size=1,
                    test_input_shape=(40, 40, 1), deviations=deviations, output="pixel_probabilities",
                    task="segmentation")
    def build(*, input_shape=None, num_classes=21, include_top=True, pooling=None,
              classifier_activation="softmax", weights=None, backbone_weights=None, overrides=None,
              name=spec_name):
        return _fcn(spec_name=spec_name, skips=skips, width=width, fc_width=fc_width, input_shape=input_shape,
                    num_classes=num_classes, include_top=include_top, pooling=pooling,
                    classifier_activation=classifier_activation, weights=weights,
                    backbone_weights=backbone_weights, overrides=overrides, name=name)

    build.__name__ = build.__qualname__ = spec_name
    build.__doc__ = (f"{stem.upper()} (Long et al. 2015) on VGG-16{f' with {narrowed}' if small else ''}: "
                     f"(H, W, C) -> (H, W, num_classes) per-pixel probabilities. Deviations: {deviations}.")
    return build


# One line per variant, so that readers and linters see every builder the module defines.
fcn32s_vgg16 = _register("fcn32s")
fcn32s_vgg16_slim = _register("fcn32s", small="slim")
fcn32s_vgg16_quarter = _register("fcn32s", small="quarter")
fcn16s_vgg16 = _register("fcn16s")
fcn16s_vgg16_slim = _register("fcn16s", small="slim")
fcn16s_vgg16_quarter = _register("fcn16s", small="quarter")
fcn8s_vgg16 = _register("fcn8s")
fcn8s_vgg16_slim = _register("fcn8s", small="slim")
fcn8s_vgg16_quarter = _register("fcn8s", small="quarter")

register_endpoints("fcn", [(f"block{b}", rf"block{b}_pool") for b in range(1, 6)]
                   + [("fc6", r"fc6"), ("fc7", r"fc7"), ("score", r"score_fr")])
