"""ImageNet (ILSVRC-2012) as a source of weights: the 1000 class names and the metadata that lets a model
built with ``weights="imagenet"`` (or a keras.applications model / weights file) be used like a trained one.

``imagenet_classes.json`` ships with the package (offline machines can't fetch Keras' copy). It holds the
standard class index used by keras.applications and every ILSVRC-2012 model: index i -> [WordNet id, name];
the indices follow the sorted WordNet ids (0 = n01440764 "tench", 999 = n15075141 "toilet_tissue"). Names
are the first synonym of each synset with spaces as underscores, so two synsets share a name ("crane" the
bird, 134, and the machine, 517; "maillot", 638 and 639): use the WordNet id when that matters.
"""

import functools
import importlib
import inspect
import json
import os

import numpy as np

from keras_cnns.data.preprocessing import Preprocessing

CLASS_INDEX_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "imagenet_classes.json")
NUM_CLASSES = 1000
# Models whose builders can import keras.applications' ImageNet weights.
MODELS = ("vgg16", "vgg19", "resnet50", "resnet101", "resnet152")
# keras.applications VGG and ResNet (v1) "caffe" mode: BGR order, ImageNet channel means subtracted, no
# scaling; evaluated on the central 224x224 crop of the image resized to a shorter side of 256.
CAFFE_PREPROCESSING = Preprocessing(size=(224, 224), channels=3, resize="crop", crop_from=256,
                                    mean=(103.939, 116.779, 123.68), std=(1.0,), channel_order="bgr")


@functools.lru_cache(maxsize=1)
def class_index():
    """[(wordnet_id, name)] for the 1000 ILSVRC-2012 classes, in the models' output order."""
    with open(CLASS_INDEX_FILE) as f:
        raw = json.load(f)
    return tuple((raw[str(i)][0], raw[str(i)][1]) for i in range(len(raw)))


def class_names():
    """The 1000 class names, index i = output unit i."""
    return [name for _, name in class_index()]


def wordnet_ids():
    return [wnid for wnid, _ in class_index()]


def decode_predictions(probabilities, top=5):
    """[batch, 1000] scores -> per image a list of (wordnet_id, name, score), best first."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape[1] != NUM_CLASSES:
        raise ValueError(f"decode_predictions expects a batch of {NUM_CLASSES} scores. "
                         f"Received: shape={probabilities.shape}")
    index = class_index()
    results = []
    for row in probabilities:
        best = np.argsort(-row, kind="stable")[:top]
        results.append([(index[i][0], index[i][1], float(row[i])) for i in best])
    return results


def preprocessing(name):
    """The preprocessing that goes with the ImageNet weights of model `name`.

    Asks the family module (``keras_cnns.models.<family>.imagenet_preprocessing``), which knows what
    its weights were trained with; falls back to keras.applications' "caffe" mode, which both VGG and
    ResNet v1 use.
    """
    from keras_cnns.registry import get_spec

    spec = get_spec(name)
    try:
        module = importlib.import_module(f"keras_cnns.models.{spec.family}")
    except ImportError:
        module = None
    make = getattr(module, "imagenet_preprocessing", None)
    if make is None:
        return CAFFE_PREPROCESSING
    params = inspect.signature(make).parameters
    result = make(spec.name) if params else make()
    return result if isinstance(result, Preprocessing) else Preprocessing.from_dict(dict(result))


def metadata(name, weights="imagenet", input_shape=None):
    """metadata.json content (see keras_cnns.metadata) for model `name` holding ImageNet weights."""
    from keras_cnns import metadata as metadata_lib
    from keras_cnns.registry import get_spec

    spec = get_spec(name)
    prep = preprocessing(spec.name)
    shape = list(input_shape or (prep.size[0], prep.size[1], prep.channels))
    source = weights if isinstance(weights, str) else type(weights).__name__
    return {
        "model": spec.name,
        "dataset": "imagenet",
        "class_names": class_names(),
        "wordnet_ids": wordnet_ids(),
        "input_shape": shape,
        "output": "probabilities",
        "preprocessing": prep.to_dict(),
        "recipe": "keras.applications",
        "weights": source,
        "epochs": None,
        "test_accuracy": None,
        "test_top5": None,
        "seed": None,
        "versions": metadata_lib.versions(),
        "git_commit": metadata_lib.git_commit(),
    }
