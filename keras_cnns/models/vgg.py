"""VGG: Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition"
(ICLR 2015, arXiv:1409.1556).

Configurations A, A-LRN, B, C, D and E come from one table written as the paper's Table 1
("conv3-64" = 64 filters 3x3, stride 1, padding 1; "conv1-256" = a 1x1 convolution; "LRN"; every
block ends in a 2x2 max-pool with stride 2), followed by FC-4096, FC-4096 (ReLU, dropout 0.5) and the
classifier. Layer names follow keras.applications (block1_conv1 ... block5_pool, predictions) except
the hidden fully connected layers, named fc6 and fc7 as in the paper's lineage (keras.applications:
fc1, fc2), so a vgg16/vgg19 built here holds the same weights, in the same order, as
keras.applications.VGG16/VGG19 and can import its ImageNet weights (``weights="imagenet"``).

Deviations from the paper:
- Initialisation: Keras' Glorot-uniform weights and zero biases, the procedure the paper itself
  reports (section 3.1) to work without pre-training; the paper trained A from N(0, 0.01) and
  initialised the deeper nets from A.
- vgg*_bn: BatchNormalization (Ioffe & Szegedy 2015, later work) between every convolution and its
  ReLU; the convolution then has no bias (the batch norm's beta plays its role).
- vgg_cifar: the D trunk with batch norm on 32x32 inputs, and a shrunk head FC-512, FC-512 (dropout
  0.5) for small data sets; not in the paper.
- include_top=False / pooling and num_classes != 1000 are additions for reuse.
"""

import os

import keras

from keras_cnns.features import register_endpoints
from keras_cnns.layers import batch_norm as fused_bn
from keras_cnns.layers.lrn import LocalResponseNormalization
from keras_cnns.models.common import check_args, classifier, finish_model, keras_applications_weights, pool_features
from keras_cnns.registry import WeightsImportError, register_model

PAPER = ("Simonyan, Zisserman 2014, Very Deep Convolutional Networks for Large-Scale Image "
         "Recognition")

# The paper's Table 1, one tuple per block (each block ends in a 2x2/2 max-pool).
CONFIGS = {
    "A": (("conv3-64",), ("conv3-128",), ("conv3-256",) * 2, ("conv3-512",) * 2, ("conv3-512",) * 2),
    "A-LRN": (("conv3-64", "LRN"), ("conv3-128",), ("conv3-256",) * 2, ("conv3-512",) * 2,
              ("conv3-512",) * 2),
    "B": (("conv3-64",) * 2, ("conv3-128",) * 2, ("conv3-256",) * 2, ("conv3-512",) * 2,
          ("conv3-512",) * 2),
    "C": (("conv3-64",) * 2, ("conv3-128",) * 2, ("conv3-256", "conv3-256", "conv1-256"),
          ("conv3-512", "conv3-512", "conv1-512"), ("conv3-512", "conv3-512", "conv1-512")),
    "D": (("conv3-64",) * 2, ("conv3-128",) * 2, ("conv3-256",) * 3, ("conv3-512",) * 3,
          ("conv3-512",) * 3),
    "E": (("conv3-64",) * 2, ("conv3-128",) * 2, ("conv3-256",) * 4, ("conv3-512",) * 4,
          ("conv3-512",) * 4),
}
IMAGENET_HEAD = (4096, 4096)
CIFAR_HEAD = (512, 512)
DROPOUT = 0.5
# Five 2x2/2 max-pools: 32x32 is the smallest input that leaves a 1x1 map.
MIN_INPUT_SIZE = 2 ** len(CONFIGS["D"])

# keras.applications names of the hidden FC layers, for the ImageNet import.
APPLICATIONS_NAMES = {"fc6": "fc1", "fc7": "fc2", "predictions": "predictions"}
# The variants whose ImageNet weights keras.applications publishes: registry name -> its builder.
APPLICATIONS_BUILDERS = {"vgg16": "VGG16", "vgg19": "VGG19"}


def scaled(units, width):
    """`units` times the width multiplier, at least 1 (width=1.0: the paper's widths)."""
    return max(1, int(round(units * width)))


def _block(x, block, layers, batch_norm, width=1.0):
    """One block of Table 1: its convolutions (+ LRN) then the 2x2/2 max-pool."""
    i = 0
    for layer in layers:
        if layer == "LRN":
            # The paper uses Krizhevsky et al.'s LRN constants (the layer's defaults).
            x = LocalResponseNormalization(name=f"block{block}_lrn")(x)
            continue
        i += 1
        kernel, filters = (int(v) for v in layer[len("conv"):].split("-"))
        filters = scaled(filters, width)
        conv_name = f"block{block}_conv{i}"
        if batch_norm:
            x = keras.layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=conv_name)(x)
            x = fused_bn.BatchNormalization(name=f"{conv_name}_bn")(x)
            x = keras.layers.ReLU(name=f"{conv_name}_relu")(x)
        else:
            x = keras.layers.Conv2D(filters, kernel, padding="same", activation="relu", name=conv_name)(x)
    return keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)


def trunk(x, config, batch_norm=False, width=1.0):
    """The five blocks of Table 1's configuration `config` on tensor `x`: [block1_pool, ..., block5_pool].

    width multiplies every convolution's filter count (1.0: the paper's); FCN's small CPU variants use
    it. Layer names are those of the classifiers, so weights copy between them by name.
    """
    pools = []
    for block, layers in enumerate(CONFIGS[config], start=1):
        x = _block(x, block, layers, batch_norm, width)
        pools.append(x)
    return pools


def _vgg(*, spec_name, config, batch_norm, head, default_shape, small_variant, input_shape, num_classes,
         include_top, pooling, classifier_activation, weights, name, width=1.0, head_width=None):
    published = _published(spec_name)
    input_shape = check_args(
        spec_name, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
        pooling=pooling, classifier_activation=classifier_activation, weights=weights,
        default_shape=default_shape, min_size=MIN_INPUT_SIZE, small_variant=small_variant,
        published=published)
    inputs = keras.Input(input_shape, name="image")
    x = trunk(inputs, config, batch_norm, width)[-1]
    # block5_pool: 7x7x512 at 224x224, 1x1x512 at 32x32.
    if include_top:
        x = keras.layers.Flatten(name="flatten")(x)
        for i, units in enumerate(head, start=6):
            x = keras.layers.Dense(scaled(units, width if head_width is None else head_width), activation="relu",
                                   name=f"fc{i}")(x)
            x = keras.layers.Dropout(DROPOUT, name=f"drop{i}")(x)
        x = classifier(x, num_classes, classifier_activation)
    else:
        x = pool_features(x, pooling)
    return finish_model(inputs, x, name=name, weights=weights, published=published)


def _published(spec_name):
    """The registry.Weights of `spec_name`: keras.applications' ImageNet set for vgg16 and vgg19."""
    return keras_applications_weights(spec_name, APPLICATIONS_BUILDERS.get(spec_name), import_applications_weights)


def _applications_model(spec_name, source, include_top):
    """The keras.applications model that holds `source`'s weights."""
    if isinstance(source, keras.Model):
        return source
    build = getattr(keras.applications, APPLICATIONS_BUILDERS[spec_name])
    if source == "imagenet":
        # Keras downloads the file once, then reads it from ~/.keras/models.
        try:
            return build(weights="imagenet", include_top=include_top)
        except Exception as err:  # Keras raises a bare Exception when the download fails.
            raise WeightsImportError(
                f"{spec_name}: Keras could not fetch its ImageNet weights ({str(err).splitlines()[0]}). "
                f"Go online once (Keras caches the file in ~/.keras/models), or pass weights= the path "
                f"of a local copy of keras.applications' {APPLICATIONS_BUILDERS[spec_name]} weights file.") from None
    path = os.fspath(source)
    failures = []
    # A file with the top layers also serves include_top=False (its trunk is copied).
    for with_top in ((True,) if include_top else (False, True)):
        try:
            return build(weights=path, include_top=with_top)
        except ValueError as err:
            failures.append(str(err).splitlines()[0])
    kind = "with the top layers (fc1, fc2, predictions)" if include_top else "with or without the top"
    raise WeightsImportError(
        f"{spec_name}: {path!r} is not a keras.applications {APPLICATIONS_BUILDERS[spec_name]} weights file {kind} "
        f"({'; '.join(failures)}). Received: weights={source!r}")


def import_applications_weights(model, source, *, spec_name):
    """Loads keras.applications VGG16/VGG19 weights into our `model` (built by `spec_name`).

    `source` is "imagenet", the path of a keras.applications .h5 weights file, or a
    keras.applications model instance. The conv layers carry the same names; fc6, fc7 and
    predictions take fc1, fc2 and predictions. With include_top=True the model must have 1000
    classes and a 224x224 input (the size fc1 was trained on); with include_top=False any input
    size works and only the conv trunk is copied.
    """
    ours = [layer for layer in model.layers if layer.weights]
    include_top = any(layer.name == "predictions" for layer in ours)
    if include_top and model.get_layer("predictions").units != 1000:
        raise WeightsImportError(
            f"{spec_name}: ImageNet weights have 1000 classes; build with num_classes=1000, or with "
            f"include_top=False and your own head. Received: num_classes="
            f"{model.get_layer('predictions').units}")
    src = _applications_model(spec_name, source, include_top)
    src_layers = {layer.name: layer for layer in src.layers if layer.weights}
    wanted = {layer.name: APPLICATIONS_NAMES.get(layer.name, layer.name) for layer in ours}
    src_trunk = {n for n in src_layers if n.startswith("block")}
    our_trunk = {n for n in wanted.values() if n.startswith("block")}
    missing = sorted(set(wanted.values()) - set(src_layers))
    if missing or src_trunk != our_trunk:
        raise WeightsImportError(
            f"{spec_name}: the weights source does not match this model: it lacks {missing or 'nothing'} "
            f"and has conv layers {sorted(src_trunk - our_trunk) or 'none'} that {spec_name} lacks. Pass "
            f"keras.applications.{APPLICATIONS_BUILDERS[spec_name]} weights"
            f"{' with the top (include_top=True)' if include_top else ''}. Received: weights={source!r}")
    for layer in ours:
        values = src_layers[wanted[layer.name]].get_weights()
        shapes = [tuple(v.shape) for v in values]
        expected = [tuple(w.shape) for w in layer.weights]
        if shapes != expected:
            hint = (" The ImageNet fc6 expects a 224x224 input; use include_top=False for other sizes."
                    if layer.name == "fc6" else "")
            raise WeightsImportError(
                f"{spec_name}: layer {layer.name} has weights of shapes {expected}, the source "
                f"{wanted[layer.name]} has {shapes}.{hint} Received: weights={source!r}")
        layer.set_weights(values)


# Registry name -> (Table 1 configuration, batch norm, what differs from the paper).
VARIANTS = {
    "vgg11": ("A", False, "Glorot initialisation (the paper's section 3.1 alternative to pre-training)"),
    "vgg11_lrn": ("A-LRN", False, "Glorot initialisation"),
    "vgg13": ("B", False, "Glorot initialisation"),
    "vgg16_c": ("C", False, "Glorot initialisation"),
    "vgg16": ("D", False, "Glorot initialisation; FC layers named fc6/fc7 (keras.applications: fc1/fc2)"),
    "vgg19": ("E", False, "Glorot initialisation; FC layers named fc6/fc7 (keras.applications: fc1/fc2)"),
}
for _name, _config in (("vgg11", "A"), ("vgg13", "B"), ("vgg16", "D"), ("vgg19", "E")):
    VARIANTS[f"{_name}_bn"] = (_config, True, "BatchNorm after every conv (later work), convs without bias")


def _register(spec_name):
    """Registers the builder of VARIANTS[spec_name] and returns it (assigned to a module name below)."""
    config, batch_norm, deviations = VARIANTS[spec_name]

    @register_model(spec_name, family="vgg", paper=PAPER, input_shape=(224, 224, 3),
                    min_input_size=MIN_INPUT_SIZE, test_input_shape=(32, 32, 3), deviations=deviations,
                    weights=_published(spec_name))
    def build(*, input_shape=None, num_classes=1000, include_top=True, pooling=None,
              classifier_activation="softmax", weights=None, name=spec_name):
        return _vgg(spec_name=spec_name, config=config, batch_norm=batch_norm, head=IMAGENET_HEAD,
                    default_shape=(224, 224, 3), small_variant="vgg_cifar", input_shape=input_shape,
                    num_classes=num_classes, include_top=include_top, pooling=pooling,
                    classifier_activation=classifier_activation, weights=weights, name=name)

    build.__name__ = build.__qualname__ = spec_name
    build.__doc__ = (
        f"VGG configuration {config}{' with batch norm' if batch_norm else ''} (Simonyan & Zisserman "
        f"2014): 224x224x3 -> five conv blocks -> fc6, fc7 (4096) -> num_classes. Deviations: "
        f"{deviations}.")
    return build


# One line per variant, so that readers and linters see every builder the module defines.
vgg11 = _register("vgg11")
vgg11_lrn = _register("vgg11_lrn")
vgg13 = _register("vgg13")
vgg16_c = _register("vgg16_c")
vgg16 = _register("vgg16")
vgg19 = _register("vgg19")
vgg11_bn = _register("vgg11_bn")
vgg13_bn = _register("vgg13_bn")
vgg16_bn = _register("vgg16_bn")
vgg19_bn = _register("vgg19_bn")


@register_model("vgg_cifar", family="vgg", paper=PAPER, input_shape=(32, 32, 3), min_input_size=MIN_INPUT_SIZE,
                test_input_shape=(32, 32, 3), recipe="vgg_cifar",
                deviations="not in the paper: D trunk with BatchNorm on 32x32 inputs, FC head 512-512")
def vgg_cifar(*, input_shape=None, num_classes=10, include_top=True, pooling=None,
              classifier_activation="softmax", weights=None, name="vgg_cifar"):
    """VGG-16 (configuration D, Simonyan & Zisserman 2014) for 32x32 images (CIFAR style).

    Not in the paper: BatchNormalization between every convolution and its ReLU, and the head
    shrunk to FC-512, FC-512 (dropout 0.5) -> num_classes, since block5_pool is 1x1x512 here.
    28x28 Fashion-MNIST digits are padded to 32x32 (Preprocessing(resize="pad")) and may stay grey:
    input_shape=(32, 32, 1).
    """
    return _vgg(spec_name="vgg_cifar", config="D", batch_norm=True, head=CIFAR_HEAD,
                default_shape=(32, 32, 3), small_variant=None, input_shape=input_shape,
                num_classes=num_classes, include_top=include_top, pooling=pooling,
                classifier_activation=classifier_activation, weights=weights, name=name)


# The CPU-sized twins of VGG-16 (not in the paper): registry suffix -> (trunk width, fc6/fc7 width), each a
# fraction of the paper's. The FCNs' variants of the same suffix share them (keras_cnns.models.fcn).
SMALL_WIDTHS = {
    "slim": (1 / 8, 1 / 8),     # 8, 16, 32, 64, 64 filters; fc6/fc7 512
    "quarter": (1 / 4, 1 / 8),  # 16, 32, 64, 128, 128 filters; fc6/fc7 512 (an FCN-8s's 7x7 fc6 stays ~3 M weights)
}


def _small_twin(suffix, summary, cpu_bfloat16=None):
    """Registers vgg16_<suffix>, the 32x32 Fashion-MNIST classifier twin of the FCNs' _<suffix> variants
    (cpu_bfloat16: its registry spec's, where a full run measured it)."""
    width, head_width = SMALL_WIDTHS[suffix]
    spec_name = f"vgg16_{suffix}"

    @register_model(spec_name, family="vgg", paper=PAPER, input_shape=(32, 32, 1), min_input_size=MIN_INPUT_SIZE,
                    test_input_shape=(32, 32, 1), recipe="vgg_slim", cpu_bfloat16=cpu_bfloat16,
                    deviations=f"not in the paper: configuration D with {summary} (the trunk of the FCNs' "
                               f"_{suffix} variants), Glorot initialisation")
    def build(*, input_shape=None, num_classes=10, include_top=True, pooling=None,
              classifier_activation="softmax", weights=None, name=spec_name):
        return _vgg(spec_name=spec_name, config="D", batch_norm=False, head=IMAGENET_HEAD,
                    default_shape=(32, 32, 1), small_variant=None, input_shape=input_shape,
                    num_classes=num_classes, include_top=include_top, pooling=pooling,
                    classifier_activation=classifier_activation, weights=weights, name=name, width=width,
                    head_width=head_width)

    filters = ", ".join(str(scaled(int(block[0].split("-")[1]), width)) for block in CONFIGS["D"])
    build.__name__ = build.__qualname__ = spec_name
    build.__doc__ = (
        f"VGG-16 (configuration D, Simonyan & Zisserman 2014) with {summary}: convolutions of {filters} "
        f"filters, fc6 and fc7 of {scaled(IMAGENET_HEAD[0], head_width)} units.\n\n"
        f"    Not in the paper. It is the classifier twin of ``fcn8s_vgg16_{suffix}`` and the other _{suffix} FCNs: "
        "the same layer names and shapes, so a trained copy starts an FCN's backbone (``backbone_weights=``, the "
        "FCN paper's way) on a CPU. Its default input, 32x32x1, is Fashion-MNIST padded as for LeNet-5: items "
        "about the size of the scenes' smallest (32..64 pixels, docs/data.md), on the same black background.")
    return build


# One line per twin, so that readers and linters see every builder the module defines.
vgg16_slim = _small_twin("slim", "every width / 8",
                         cpu_bfloat16="mixed_bfloat16")  # 1.02-1.22x float32's speed, same accuracy: docs/training.md
vgg16_quarter = _small_twin("quarter", "the convolutions' widths / 4 and fc6/fc7's / 8",
                            cpu_bfloat16="mixed_bfloat16")  # 1.6-1.7x float32's speed, same accuracy: docs/training.md


register_endpoints("vgg", [(f"block{b}", rf"block{b}_pool") for b in range(1, 6)]
                   + [("fc6", r"fc6"), ("fc7", r"fc7")])
