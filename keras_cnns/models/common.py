"""What every builder shares: the keras.applications-style keywords, validated the same way, and the
pieces of head that are not specific to one paper.

Every builder in the zoo calls :func:`check_args` first, builds its trunk on ``keras.Input``, then ends
with either its own classifier or :func:`pool_features` (include_top=False), and finally
:func:`finish_model`, which names the model and loads weights.
"""

import dataclasses
import functools
import os
import types

import keras

from keras_cnns.registry import Weights

POOLINGS = (None, "avg", "max")

# keras.applications' "caffe" mode, which its VGG and ResNet (v1) ImageNet weights expect, as the keywords of a
# keras_cnns.data.Preprocessing: the shorter side resized to 256 and the central 224x224 crop (the evaluation
# protocol), RGB -> BGR, the per-channel ImageNet mean (B, G, R) subtracted, no scaling.
CAFFE_PREPROCESSING = types.MappingProxyType({
    "size": (224, 224), "channels": 3, "resize": "crop", "crop_from": 256,
    "mean": (103.939, 116.779, 123.68), "std": (1.0, 1.0, 1.0), "channel_order": "bgr"})


@functools.lru_cache(maxsize=None)
def keras_applications_weights(spec_name, application, importer):
    """The registry.Weights our `spec_name` can import, as a spec's `weights` tuple: none when keras.applications
    publishes no ImageNet weights for it (`application` None), else its set for `application` ("VGG16"):
    "caffe" preprocessing, the 1000 ILSVRC-2012 classes, the two files Keras caches in ~/.keras/models/ (with
    the top, without it), imported by ``importer(model, source, spec_name=...)``. One object per model.
    """
    if application is None:
        return ()
    stem = f"{spec_name}_weights_tf_dim_ordering_tf_kernels"
    return (Weights(name="imagenet", dataset="imagenet", origin=f"keras.applications.{application}",
                    files=(f"{stem}.h5", f"{stem}_notop.h5"), preprocessing=CAFFE_PREPROCESSING,
                    classes="imagenet_classes.json", num_classes=1000,
                    importer=functools.partial(importer, spec_name=spec_name)),)


def replace_settings(settings, overrides, owner, fixed=()):
    """The dataclass `settings` with the fields named in ``overrides`` ({field: value}, as fit's ``overrides=``
    and a model's saved config give them: lists become tuples) replaced. An unknown field, or one of `fixed`,
    raises a ValueError that names `owner` and the fields a run may set."""
    if not overrides:
        return settings
    fields = sorted({f.name for f in dataclasses.fields(settings)} - set(fixed))
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ValueError(f"{owner}: unknown settings {unknown}; known: {fields}. Received: overrides={overrides!r}")
    return dataclasses.replace(settings, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()})


def check_args(spec_name, *, input_shape, num_classes, include_top, pooling, classifier_activation,
               weights, default_shape, min_size, channels=None, small_variant=None,
               activations=("softmax", None, "linear", "sigmoid"), any_size_top=False,
               published=()):
    """Validates the common keywords and returns the input shape (H, W, C) to build with.

    Args:
      spec_name: the model's registry name, used in messages.
      default_shape: (H, W, C) used when input_shape is None.
      min_size: smallest H and W the architecture accepts (with include_top=True; with
        include_top=False the trunk still needs the same minimum).
      channels: if set, the only channel count the model accepts.
      small_variant: registry name to suggest when the input is too small.
      activations: classifier_activation values this model accepts.
      any_size_top: True when the classifier works on any spatial size (a global-pooling head), so
        include_top=True allows input_shape=(None, None, C).
      published: the model's registry.Weights (its spec's `weights`); then weights may also be one of
        their names ("imagenet"), the path of a file they come in, or the publisher's model instance
        (see finish_model).
    """
    if input_shape is None:
        input_shape = tuple(default_shape)
    try:
        input_shape = tuple(None if d is None else int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"{spec_name}: input_shape must be a tuple (height, width, channels). "
            f"Received: input_shape={input_shape!r}") from None
    if len(input_shape) != 3:
        raise ValueError(
            f"{spec_name}: input_shape must have 3 entries (height, width, channels), channels last. "
            f"Received: input_shape={input_shape!r}")
    h, w, c = input_shape
    if c is None or c < 1:
        raise ValueError(f"{spec_name}: the channel count must be known and positive. "
                         f"Received: input_shape={input_shape!r}")
    if channels is not None and c != channels:
        raise ValueError(f"{spec_name} takes {channels}-channel images. Received: input_shape={input_shape!r}")
    for d in (h, w):
        if d is not None and d < min_size:
            hint = f" For small images use {small_variant!r}." if small_variant else ""
            raise ValueError(
                f"{spec_name} needs inputs of at least {min_size}x{min_size}.{hint} "
                f"Received: input_shape={input_shape!r}")
    if include_top and (h is None or w is None) and not any_size_top:
        raise ValueError(
            f"{spec_name}: with include_top=True the height and width must be fixed. "
            f"Received: input_shape={input_shape!r}")
    if not isinstance(include_top, bool):
        raise ValueError(f"{spec_name}: include_top must be True or False. Received: include_top={include_top!r}")
    if include_top:
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"{spec_name}: num_classes must be a positive integer. "
                             f"Received: num_classes={num_classes!r}")
    if pooling not in POOLINGS:
        raise ValueError(f"{spec_name}: pooling must be one of {POOLINGS}. Received: pooling={pooling!r}")
    if pooling is not None and include_top:
        raise ValueError(f"{spec_name}: pooling applies only with include_top=False. "
                         f"Received: include_top=True, pooling={pooling!r}")
    if classifier_activation not in activations:
        raise ValueError(f"{spec_name}: classifier_activation must be one of {activations}. "
                         f"Received: classifier_activation={classifier_activation!r}")
    if weights is None or (isinstance(weights, (str, os.PathLike)) and os.path.exists(weights)):
        return input_shape
    if published and (any(weights == w.name for w in published) or isinstance(weights, keras.Model)):
        return input_shape
    allowed = "None or the path of an existing weights file (.weights.h5 or .keras)"
    if published:
        allowed += f", {', '.join(repr(w.name) for w in published)}, or a keras.applications model instance"
    raise ValueError(f"{spec_name}: weights must be {allowed}. Received: weights={weights!r}")


def pool_features(x, pooling, name="pool"):
    """include_top=False: the feature map itself (None), or its global "avg" / "max" pool."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name=f"avg_{name}")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name=f"max_{name}")(x)
    return x


def classifier(x, num_classes, classifier_activation, name="predictions", **dense_kwargs):
    """The final linear layer with its activation (None / "linear" give logits)."""
    return keras.layers.Dense(num_classes, activation=classifier_activation, name=name, **dense_kwargs)(x)


def finish_model(inputs, outputs, *, name, weights, published=()):
    """Wraps the graph in a Model and loads `weights` when given.

    A keras_cnns weights file is loaded directly; published weights (a name such as "imagenet", a
    keras.applications weights file or model) go to the importer of the matching registry.Weights.
    """
    model = keras.Model(inputs, outputs, name=name)
    if weights is None:
        return model
    chosen = published_weights_for(weights, published)
    if chosen is not None:
        chosen.importer(model, weights)
    else:
        load_weights(model, weights)
    return model


def is_foreign_weights(weights, published=()):
    """Whether `weights` are somebody else's: the name of one of the `published` registry.Weights
    ("imagenet"), a keras.applications model, or a plain .h5 file (ours are .weights.h5 or .keras)."""
    if weights is None:
        return False
    if isinstance(weights, keras.Model) or any(weights == w.name for w in published):
        return True
    path = os.fspath(weights)
    return path.endswith(".h5") and not path.endswith(".weights.h5")


def published_weights_for(weights, published):
    """The registry.Weights of `published` that `weights` asks for (by name, or the first for a foreign file
    or model instance); None for our own weights files or a model without published weights."""
    if not published or not is_foreign_weights(weights, published):
        return None
    named = [w for w in published if isinstance(weights, str) and weights == w.name]
    return named[0] if named else published[0]


def load_keras_file(path):
    """A .keras file of the zoo as an uncompiled model, loaded with safe_mode on."""
    import importlib

    from keras_cnns import layers as _  # noqa: F401  (registers the custom layers)
    importlib.import_module("keras_cnns.models")  # and the Model classes (FasterRCNN)
    return keras.saving.load_model(os.fspath(path), compile=False, safe_mode=True)


def load_weights(model, path):
    """Loads our own weights file into `model`: a .weights.h5, or the weights of a .keras file."""
    path = os.fspath(path)
    try:
        if path.endswith(".keras"):
            source = load_keras_file(path)
            if len(source.weights) != len(model.weights):
                raise ValueError(f"{path} holds {len(source.weights)} weight arrays, the model has "
                                 f"{len(model.weights)}")
            model.set_weights(source.get_weights())
        else:
            model.load_weights(path)
    except ValueError as err:
        raise ValueError(
            f"{model.name}: the weights in {path!r} do not fit this model ({err}). Build the model with the "
            "same arguments (input_shape, num_classes, include_top) it was trained with.") from None
