"""GoogLeNet / Inception v1 (Szegedy et al. 2014, "Going deeper with convolutions").

The network of the paper's Table 1, channels last (NHWC), shapes given for a 224x224x3 input:

    stem       7x7/2 conv 64, 3x3/2 max-pool, LRN, 1x1 conv 64, 3x3 conv 192, LRN, 3x3/2 max-pool  28x28x192
    stage 3    inception 3a, 3b, 3x3/2 max-pool                                                  14x14x480
    stage 4    inception 4a .. 4e, 3x3/2 max-pool                                                7x7x832
    stage 5    inception 5a, 5b                                                                  7x7x1024
    head       7x7 average pool, dropout 0.4, linear, softmax                                    1000

Every inception module concatenates four branches: 1x1; 1x1 reduce -> 3x3; 1x1 reduce -> **5x5** (a true
5x5, not the 3x3 that torchvision and TF-Slim keep for checkpoint compatibility); 3x3/1 max-pool -> 1x1
"pool proj". Every convolution is followed by a ReLU. Their widths come from :data:`INCEPTION_TABLE`, one
row per module with the paper's named columns.

Training form: ``get_model("googlenet", aux_heads=True)`` adds the two auxiliary classifiers on the outputs
of 4a and 4d (5x5/3 average pool, 1x1 conv 128 + ReLU, FC 1024 + ReLU, dropout 0.7, linear + softmax) and
returns a model with three named outputs, a dict {"predictions", "aux1", "aux2"}; the paper adds the
auxiliary losses with weight 0.3 (:data:`LOSS_WEIGHTS`). :func:`inference_model` drops the heads again,
sharing every layer and weight. The default ``get_model("googlenet")`` is the inference form.

Deviations from the paper:
  * the 7x7/1 average pool is a global average pool: the same operation on the 7x7 map of a 224x224 input,
    and it lets the inference model take any input of at least :data:`MIN_INPUT_SIZE` (even None x None);
  * every convolution and pool uses "same" padding; the spatial sizes at 224x224 are the paper's;
  * the paper gives no LRN constants: the LRN layers use AlexNet's (k=2, n=5, alpha=1e-4, beta=0.75);
  * the paper gives no initialisation: Glorot-uniform (Xavier) weights, as Caffe reproductions use, and
    zero biases;
  * the auxiliary heads need the 4a/4d map to hold their 5x5 pool, so with aux_heads=True the input must be
    at least :data:`AUX_MIN_INPUT_SIZE`; the paper's photometric and scale augmentations live in the data
    pipeline, not here.
"""

from typing import NamedTuple

import keras

from keras_cnns.features import register_endpoints
from keras_cnns.layers.lrn import LocalResponseNormalization
from keras_cnns.models.common import check_args, classifier, finish_model, pool_features
from keras_cnns.registry import register_alias, register_model

PAPER = 'Szegedy et al. 2014, "Going deeper with convolutions"'


class Inception(NamedTuple):
    """One row of the paper's Table 1: the filters of each branch of one inception module."""

    name: str          # "3a" .. "5b"
    n1x1: int          # "#1x1"
    n3x3_reduce: int   # "#3x3 reduce"
    n3x3: int          # "#3x3"
    n5x5_reduce: int   # "#5x5 reduce"
    n5x5: int          # "#5x5"
    pool_proj: int     # "pool proj"

    @property
    def out_channels(self):
        """Depth of the concatenated output."""
        return self.n1x1 + self.n3x3 + self.n5x5 + self.pool_proj


INCEPTION_TABLE = (
    #          name  #1x1 #3x3red #3x3 #5x5red #5x5 poolproj
    Inception("3a",   64,    96,  128,    16,   32,    32),
    Inception("3b",  128,   128,  192,    32,   96,    64),
    Inception("4a",  192,    96,  208,    16,   48,    64),
    Inception("4b",  160,   112,  224,    24,   64,    64),
    Inception("4c",  128,   128,  256,    24,   64,    64),
    Inception("4d",  112,   144,  288,    32,   64,    64),
    Inception("4e",  256,   160,  320,    32,  128,   128),
    Inception("5a",  256,   160,  320,    32,  128,   128),
    Inception("5b",  384,   192,  384,    48,  128,   128),
)
"""The nine inception modules, in order (the paper's Table 1)."""

POOL_AFTER = {"3b": "pool3", "4e": "pool4"}
"""The 3x3/2 max-pools between stages: module after which each sits, and its layer name."""

AUX_AFTER = {"4a": "aux1", "4d": "aux2"}
"""The auxiliary classifiers: module whose output each reads, and its output name."""

LOSS_WEIGHTS = {"predictions": 1.0, "aux1": 0.3, "aux2": 0.3}
"""The paper's loss weights for the training model's outputs (the auxiliary losses count 0.3)."""

AUX_POOL = (5, 3)  # the auxiliary heads' average pool: 5x5 window, stride 3
STRIDED_LAYERS = 5  # conv1, pool1, pool2, pool3, pool4: total stride 32

# Each stride-2 layer ("same" padding) maps a size s to ceil(s / 2). The inference model accepts the
# smallest input for which all five still reduce their map, i.e. pool4 sees at least 2x2:
# ceil(s / 16) >= 2  <=>  s >= 17. (28x28 Fashion-MNIST images fit: 14, 7, 4, 2, 1.)
MIN_INPUT_SIZE = 2 ** (STRIDED_LAYERS - 1) + 1
# The auxiliary heads read the 4a/4d map, ceil(s / 16) on a side, which must hold their 5x5 pool:
# ceil(s / 16) >= 5  <=>  s >= 65 (at 224 the map is 14x14 and the pool gives 4x4).
AUX_MIN_INPUT_SIZE = 16 * (AUX_POOL[0] - 1) + 1


def _conv(x, filters, kernel_size, name, strides=1):
    """Convolution + ReLU, "same" padding, Glorot-uniform weights and zero biases."""
    return keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same", activation="relu",
                               name=name)(x)


def inception_module(x, row):
    """Tensor in, tensor out: the four branches of one inception module, concatenated.

    Layers are named after the row: inception_3a_1x1, inception_3a_3x3_reduce, inception_3a_3x3,
    inception_3a_5x5_reduce, inception_3a_5x5, inception_3a_pool, inception_3a_pool_proj, and the
    concatenated output inception_3a.
    """
    name = f"inception_{row.name}"
    branch_1x1 = _conv(x, row.n1x1, 1, f"{name}_1x1")
    branch_3x3 = _conv(x, row.n3x3_reduce, 1, f"{name}_3x3_reduce")
    branch_3x3 = _conv(branch_3x3, row.n3x3, 3, f"{name}_3x3")
    branch_5x5 = _conv(x, row.n5x5_reduce, 1, f"{name}_5x5_reduce")
    branch_5x5 = _conv(branch_5x5, row.n5x5, 5, f"{name}_5x5")
    branch_pool = keras.layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch_pool = _conv(branch_pool, row.pool_proj, 1, f"{name}_pool_proj")
    return keras.layers.Concatenate(name=name)([branch_1x1, branch_3x3, branch_5x5, branch_pool])


def _aux_head(x, num_classes, classifier_activation, name):
    """An auxiliary classifier; at 224x224: 14x14xC -> 4x4xC -> 4x4x128 -> 2048 -> 1024 -> classes."""
    size, stride = AUX_POOL
    x = keras.layers.AveragePooling2D(size, strides=stride, padding="valid", name=f"{name}_pool")(x)
    x = _conv(x, 128, 1, f"{name}_conv")
    x = keras.layers.Flatten(name=f"{name}_flatten")(x)
    x = keras.layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    x = keras.layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return classifier(x, num_classes, classifier_activation, name=name)


def _googlenet(*, input_shape, num_classes, include_top, pooling, classifier_activation, weights, name,
               aux_heads):
    h, w, channels = check_args(
        "googlenet", input_shape=input_shape, num_classes=num_classes, include_top=include_top,
        pooling=pooling, classifier_activation=classifier_activation, weights=weights,
        default_shape=(224, 224, 3), min_size=MIN_INPUT_SIZE, any_size_top=True)
    if not isinstance(aux_heads, bool):
        raise ValueError(f"googlenet: aux_heads must be True or False. Received: aux_heads={aux_heads!r}")
    if aux_heads and not include_top:
        raise ValueError("googlenet: the auxiliary heads are classifiers, so aux_heads=True needs "
                         f"include_top=True. Received: include_top={include_top!r}, aux_heads=True")
    if aux_heads and (h is None or w is None or min(h, w) < AUX_MIN_INPUT_SIZE):
        raise ValueError(
            f"googlenet with aux_heads=True needs fixed inputs of at least {AUX_MIN_INPUT_SIZE}x"
            f"{AUX_MIN_INPUT_SIZE} (the 5x5/3 pool of the auxiliary heads must fit the 4a/4d map); "
            f"resize the images or train without the heads. Received: input_shape={(h, w, channels)!r}")

    inputs = keras.Input((h, w, channels), name="input")
    # Stem: 224x224x3 -> 28x28x192.
    x = _conv(inputs, 64, 7, "conv1", strides=2)                                         # 112x112x64
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)          # 56x56x64
    x = LocalResponseNormalization(name="norm1")(x)
    x = _conv(x, 64, 1, "conv2_reduce")
    x = _conv(x, 192, 3, "conv2")                                                         # 56x56x192
    x = LocalResponseNormalization(name="norm2")(x)
    x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)          # 28x28x192

    # Inception stages: 28x28x256 (3a) .. 7x7x1024 (5b).
    aux_outputs = {}
    for row in INCEPTION_TABLE:
        x = inception_module(x, row)
        if aux_heads and row.name in AUX_AFTER:
            aux_name = AUX_AFTER[row.name]
            aux_outputs[aux_name] = _aux_head(x, num_classes, classifier_activation, aux_name)
        if row.name in POOL_AFTER:
            x = keras.layers.MaxPooling2D(3, strides=2, padding="same", name=POOL_AFTER[row.name])(x)

    if not include_top:
        return finish_model(inputs, pool_features(x, pooling), name=name, weights=weights)
    # Head: the paper's 7x7/1 average pool over the 7x7x1024 map, written as a global average.
    x = keras.layers.GlobalAveragePooling2D(name="pool5")(x)                              # 1024
    x = keras.layers.Dropout(0.4, name="dropout")(x)
    outputs = classifier(x, num_classes, classifier_activation)
    if aux_heads:
        outputs = {"predictions": outputs, **aux_outputs}
    return finish_model(inputs, outputs, name=name, weights=weights)


def inference_model(training_model):
    """The inference form of a GoogLeNet built with aux_heads=True: the same input, layers and weights,
    and only the main output ("predictions"). A model without auxiliary heads is returned unchanged.

    Works on a training model loaded from a .keras file too (the layer names survive the round trip).
    """
    names = {layer.name for layer in training_model.layers}
    if "predictions" not in names:
        raise ValueError(
            "inference_model needs a GoogLeNet with its classifier (built with include_top=True). "
            f"Received: a model {training_model.name!r} with no layer named 'predictions'")
    if not names & set(AUX_AFTER.values()):
        return training_model
    return keras.Model(training_model.input, training_model.get_layer("predictions").output,
                       name=training_model.name)


@register_model(
    "googlenet", family="googlenet", paper=PAPER, input_shape=(224, 224, 3),
    min_input_size=MIN_INPUT_SIZE, test_input_shape=(96, 96, 3), aux_min_input_size=AUX_MIN_INPUT_SIZE,
    deviations=("7x7 average pool written as a global average pool (same at 224); 'same' padding; "
                "AlexNet's LRN constants and Glorot init (the paper gives neither); auxiliary heads only "
                "in the training model (aux_heads=True)"))
def googlenet(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
              classifier_activation="softmax", weights=None, name="googlenet", aux_heads=False):
    """GoogLeNet (Szegedy et al. 2014), 22 layers with weights; see the module docstring for deviations.

    Args:
      aux_heads: False (default) builds the inference model, one output. True builds the training
        model with the two auxiliary classifiers on 4a and 4d: outputs {"predictions", "aux1", "aux2"},
        to compile with ``loss_weights=LOSS_WEIGHTS``; :func:`inference_model` drops the heads.
      The other keywords are those of every keras_cnns builder (see keras_cnns.models.common).
    """
    return _googlenet(input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                      pooling=pooling, classifier_activation=classifier_activation, weights=weights,
                      name=name, aux_heads=aux_heads)


register_alias("inception", "googlenet")
register_endpoints("googlenet", [(f"inception_{row.name}", f"inception_{row.name}") for row in INCEPTION_TABLE])
