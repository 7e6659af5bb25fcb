"""keras_cnns: the classic convolutional networks (LeNet-5, AlexNet, VGG, ResNet, Network in Network,
GoogLeNet) in Keras 3, faithful to their papers, with training, classification and export.

Importing the package is cheap: the names below (and the ``layers`` and ``models`` subpackages) load on
first use (PEP 562), so ``import keras_cnns.lite`` or ``keras_cnns.images`` never imports TensorFlow or
Keras. The registry loads every model family the first time it is asked for one.

The custom layers register with Keras (so `.keras` files load with safe_mode on) when keras_cnns.layers is
imported: by any model builder, by keras_cnns.inference.load, and here at once when Keras is already
imported in this process (``import keras`` then ``import keras_cnns``, then keras.saving.load_model works).
"""

import importlib
import sys

from keras_cnns.version import __version__  # noqa: F401

# public name -> module that defines it
_LAZY = {
    "get_model": "keras_cnns.registry",
    "get_spec": "keras_cnns.registry",
    "list_aliases": "keras_cnns.registry",
    "list_models": "keras_cnns.registry",
    "feature_extractor": "keras_cnns.features",
    "feature_layers": "keras_cnns.features",
    "convolutionalize": "keras_cnns.tasks.scoremap",
}
_SUBPACKAGES = ("layers", "models")

__all__ = ["get_model", "list_models", "list_aliases", "get_spec", "feature_extractor", "feature_layers",
           "convolutionalize"]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_SUBPACKAGES))


if "keras" in sys.modules:  # Keras is loaded anyway: register the layers now, as an eager import did
    from keras_cnns import layers  # noqa: E402,F401
