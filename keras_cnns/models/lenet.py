"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998, "Gradient-based learning applied to document
recognition", Proc. IEEE 86(11), section II-B) and a modern variant for comparison.

``lenet5`` follows the paper layer by layer (NHWC):

    input 32x32x1
    c1  6 conv 5x5 + scaled tanh                       -> 28x28x6     156 params
    s2  trainable 2x2 subsampling + scaled tanh        -> 14x14x6      12
    c3  16 conv 5x5 over Table I's 60 (S2, C3) pairs   -> 10x10x16  1,516
    s4  trainable 2x2 subsampling + scaled tanh        -> 5x5x16       32
    c5  120 conv 5x5 + scaled tanh                     -> 1x1x120  48,120
    (flatten)
    f6  84 units + scaled tanh                         -> 84       10,164
    output  10 Euclidean RBF units over fixed 7x12 +/-1 digit bitmaps -> 10 squared distances (840, fixed)

60,840 parameters, 840 of them the non-trainable prototypes. The output is a *distance*: the predicted
class is the smallest one (keras_cnns.losses.rbf_accuracy; train with keras_cnns.losses.RBFEnergyLoss).

Deviations from the paper (also in docs/lenet5.md):
  * The 7x12 prototype bitmaps are our own drawings of the digits 0-9 (the paper's images are not
    published as data). For num_classes != 10 the first num_classes digits are used, and classes 10
    and up get deterministic pseudo-random +/-1 codes (see :func:`digit_prototypes`).
  * A Flatten layer sits between c5 and f6 (c5 is 1x1 at 32x32, so it changes nothing there); a
    larger input gives c5 a larger map and f6 more weights.
  * The paper's input normalisation (background -0.1, foreground 1.175) is left to the data pipeline
    (keras_cnns.data.Preprocessing), which pads 28x28 images to 32x32.
  * The paper trains with a diagonal Levenberg-Marquardt method; that is a training-recipe matter.

``lenet5_modern``: the same sizes with what replaced the paper's parts: ReLU, 2x2 max-pooling, a full
C3 (every S2 map, 2,416 params), c1 padded "same" so 28x28 images fit without padding, and a softmax
head of ``num_classes`` units. Default input 28x28x1; 61,706 parameters with 10 classes.
"""

import dataclasses
from typing import Optional

import keras
import numpy as np

from keras_cnns.features import register_endpoints
from keras_cnns.layers.activations import scaled_tanh
from keras_cnns.layers.rbf import EuclideanRBF
from keras_cnns.layers.sparse_conv import SparseConv2D
from keras_cnns.layers.subsampling import Subsampling
from keras_cnns.models.common import check_args, finish_model, pool_features
from keras_cnns.registry import register_model

PAPER = "LeCun et al. 1998, Gradient-based learning applied to document recognition"

# Table I of the paper, by C3 map: the S2 maps it reads.
C3_TABLE = (
    *[tuple(sorted((j + k) % 6 for k in range(3))) for j in range(6)],   # maps 0-5: three contiguous
    *[tuple(sorted((j + k) % 6 for k in range(4))) for j in range(6)],   # maps 6-11: four contiguous
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),                           # maps 12-14: four, non-contiguous
    (0, 1, 2, 3, 4, 5),                                                 # map 15: all six
)

BITMAP_ROWS, BITMAP_COLS = 12, 7

# Our 7-wide, 12-tall drawings of the digits ("#" = +1, ink; "." = -1, background), used as the
# RBF prototypes. Rendered in docs/lenet5_bitmaps.png.
DIGIT_BITMAPS = {

    0: """
.......
..###..
.#...#.
#.....#
#.....#
#.....#
#.....#
#.....#
#.....#
.#...#.
..###..
.......""",
    1: """
.......
...#...
..##...
.#.#...
...#...
...#...
...#...
...#...
...#...
...#...
.#####.
.......""",
    2: """
.......
.####..
#....#.
.....#.
.....#.
....#..
...#...
..#....
.#.....
#......
######.
.......""",
    3: """
.......
.####..
#....#.
.....#.
.....#.
..###..
.....#.
.....#.
.....#.
#....#.
.####..
.......""",
    4: """
.......
....#..
...##..
..#.#..
.#..#..
#...#..
#######
....#..
....#..
....#..
....#..
.......""",
    5: """
.......
######.
#......
#......
#......
#####..
.....#.
.....#.
.....#.
#....#.
.####..
.......""",
    6: """
.......
..###..
.#.....
#......
#......
#.###..
##...#.
#....#.
#....#.
.#...#.
..###..
.......""",
    7: """
.......
#######
......#
.....#.
....#..
...#...
...#...
..#....
..#....
..#....
..#....
.......""",
    8: """
.......
..###..
.#...#.
.#...#.
.#...#.
..###..
.#...#.
#.....#
#.....#
.#...#.
..###..
.......""",
    9: """
.......
..###..
.#...#.
#....#.
#....#.
.#..##.
..##.#.
.....#.
.....#.
....#..
.###...
.......""",}


def digit_bitmaps():
    """(10, 12, 7) array of +/-1: the bitmap of each digit 0-9."""
    return np.array([[[1.0 if c == "#" else -1.0 for c in row] for row in DIGIT_BITMAPS[d].strip("\n").split("\n")]
                     for d in range(10)], dtype="float32")


def plot_digit_bitmaps(path):
    """Draws the ten bitmaps side by side (+1 black, -1 white, as in the paper's figure) into `path`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 10, figsize=(10, 2.2))
    for digit, (ax, bitmap) in enumerate(zip(axes, digit_bitmaps())):
        ax.imshow(bitmap, cmap="gray_r", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(str(digit))
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("LeNet-5 RBF prototypes: 7x12 bitmaps, +1 black, -1 white")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def digit_prototypes(num_classes=10):
    """(num_classes, 84) +/-1 prototypes for the RBF output.

    Rule: class k < 10 gets the flattened bitmap of digit k (so num_classes=7 uses digits 0-6);
    classes 10 and up get +/-1 codes drawn from a fixed-seed generator (numpy default_rng(1998)),
    one after another, each redrawn until it differs from every earlier prototype in at least
    ``84 // 8`` places. The result depends only on num_classes.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError("digit_prototypes: num_classes must be a positive integer. "
                         f"Received: num_classes={num_classes!r}")
    codes = list(digit_bitmaps().reshape(10, -1)[:num_classes])
    rng = np.random.default_rng(1998)
    dim = BITMAP_ROWS * BITMAP_COLS
    while len(codes) < num_classes:
        code = rng.choice(np.array([-1.0, 1.0], dtype="float32"), size=dim)
        if all(np.sum(code != c) >= dim // 8 for c in codes):
            codes.append(code)
    return np.stack(codes).astype("float32")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the family table."""
    activation: object           # squashing of c1..f6
    pool: str                    # "subsampling" (trainable, paper) or "max"
    c3_table: Optional[tuple]    # the partial table, or None for a full convolution
    c1_padding: str
    head: str                    # "rbf" (distances) or "softmax"
    paper_init: bool             # uniform +/-2.4/fan_in (the paper's rule), else Keras defaults
    default_shape: tuple
    min_size: int


VARIANTS = {
    "lenet5": Variant(activation=scaled_tanh, pool="subsampling", c3_table=C3_TABLE, c1_padding="valid",
                      head="rbf", paper_init=True, default_shape=(32, 32, 1), min_size=32),
    "lenet5_modern": Variant(activation="relu", pool="max", c3_table=None, c1_padding="same",
                             head="softmax", paper_init=False, default_shape=(28, 28, 1), min_size=28),
}

# The trunk, stage by stage: (layer name, kind, filters, kernel).
TRUNK = (("c1", "conv", 6, 5), ("s2", "pool", None, 2), ("c3", "c3", 16, 5), ("s4", "pool", None, 2),
         ("c5", "conv", 120, 5))
F6_UNITS = 84


def _init(variant, fan_in):
    if not variant.paper_init:
        return "glorot_uniform"
    limit = 2.4 / fan_in
    return keras.initializers.RandomUniform(-limit, limit)


def _lenet(variant_name, *, input_shape, num_classes, include_top, pooling, classifier_activation,
           weights, name):
    variant = VARIANTS[variant_name]
    if variant.head == "rbf" and classifier_activation is not None:
        raise ValueError(
            f"{variant_name} ends in Euclidean RBF units whose outputs are distances (smallest wins), so it takes "
            "no classifier activation: pass classifier_activation=None (use lenet5_modern for a softmax head). "
            f"Received: classifier_activation={classifier_activation!r}")
    input_shape = check_args(
        variant_name, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
        pooling=pooling, classifier_activation=classifier_activation, weights=weights,
        default_shape=variant.default_shape, min_size=variant.min_size,
        activations=(None,) if variant.head == "rbf" else ("softmax", None, "linear"))
    inputs = keras.Input(shape=input_shape, name="input")
    x = inputs
    channels = input_shape[-1]
    for layer_name, kind, filters, size in TRUNK:
        if kind == "pool":
            if variant.pool == "subsampling":
                x = Subsampling(size, activation=variant.activation, name=layer_name)(x)
            else:
                x = keras.layers.MaxPooling2D(size, name=layer_name)(x)
            continue
        if kind == "c3" and variant.c3_table is not None:
            x = SparseConv2D(variant.c3_table, size, activation=variant.activation,
                             kernel_initializer=None if variant.paper_init else "glorot_uniform",
                             name=layer_name)(x)
        else:
            padding = variant.c1_padding if layer_name == "c1" else "valid"
            x = keras.layers.Conv2D(filters, size, padding=padding, activation=variant.activation,
                                    kernel_initializer=_init(variant, size * size * channels), name=layer_name)(x)
        channels = filters
    # x: (H/4 - 7) x (W/4 - 7) x 120 for lenet5 (1x1x120 at 32x32).
    if not include_top:
        return finish_model(inputs, pool_features(x, pooling), name=name or variant_name, weights=weights)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(F6_UNITS, activation=variant.activation, name="f6",
                           kernel_initializer=_init(variant, x.shape[-1]))(x)
    if variant.head == "rbf":
        outputs = EuclideanRBF(digit_prototypes(num_classes), name="output")(x)
    else:
        outputs = keras.layers.Dense(num_classes, activation=classifier_activation, name="output")(x)
    return finish_model(inputs, outputs, name=name or variant_name, weights=weights)


@register_model("lenet5", family="lenet", paper=PAPER, input_shape=(32, 32, 1), min_input_size=32,
                test_input_shape=(32, 32, 1), output="rbf_distances",
                steps_per_execution=8,  # 1.06-1.18x faster, the same weights: docs/training.md
                deviations="our own 7x12 digit bitmaps as RBF prototypes; 28x28 images padded to 32x32 by the "
                           "data pipeline; trained with Adam instead of diagonal Levenberg-Marquardt")
def lenet5(*, input_shape=None, num_classes=10, include_top=True, pooling=None, classifier_activation=None,
           weights=None, name=None):
    """LeNet-5 as in the paper (see the module docstring): outputs squared distances to the class prototypes."""
    return _lenet("lenet5", input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                  pooling=pooling, classifier_activation=classifier_activation, weights=weights, name=name)


@register_model("lenet5_modern", family="lenet", paper=PAPER, input_shape=(28, 28, 1), min_input_size=28,
                test_input_shape=(28, 28, 1), cpu_bfloat16="mixed_bfloat16",  # 1.3x, same accuracy: docs/training.md
                steps_per_execution=8,  # 1.15-1.30x faster, the same weights: docs/training.md
                deviations="ReLU, max-pooling, full C3, softmax head, c1 padded 'same' for 28x28 input")
def lenet5_modern(*, input_shape=None, num_classes=10, include_top=True, pooling=None,
                  classifier_activation="softmax", weights=None, name=None):
    """LeNet-5's layout with ReLU, max-pooling, a full C3 and a softmax head (see the module docstring)."""
    return _lenet("lenet5_modern", input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                  pooling=pooling, classifier_activation=classifier_activation, weights=weights, name=name)


register_endpoints("lenet", [(point, point) for point in ("c1", "s2", "c3", "s4", "c5", "f6")])
