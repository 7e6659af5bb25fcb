"""ImageNet (ILSVRC-2012) as a source of weights: the 1000 class names and the metadata that lets a model
built with ``weights="imagenet"`` (or a keras.applications model / weights file) be used like a trained one.

``imagenet_classes.json`` ships with the package (offline machines can't fetch Keras' copy). It holds the
standard class index used by keras.applications and every ILSVRC-2012 model: index i -> [WordNet id, name];
the indices follow the sorted WordNet ids (0 = n01440764 "tench", 999 = n15075141 "toilet_tissue"). Names
are the first synonym of each synset with spaces as underscores, so two synsets share a name ("crane" the
bird, 134, and the machine, 517; "maillot", 638 and 639): use the WordNet id when that matters.
"""

import functools
import json
import os

import numpy as np

from keras_cnns.data.preprocessing import Preprocessing

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
CLASS_INDEX_FILE = os.path.join(PACKAGE_DIR, "imagenet_classes.json")
NUM_CLASSES = 1000
WEIGHTS = "imagenet"  # the registry.Weights name of these weights (what weights= takes)


@functools.lru_cache(maxsize=None)
def class_index(path=CLASS_INDEX_FILE):
    """[(wordnet_id, name)] of a class index file (default: the 1000 ILSVRC-2012 classes), in the models'
    output order; a relative path is in the package (a registry.Weights' `classes`)."""
    with open(os.path.join(PACKAGE_DIR, path)) as f:
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


def models():
    """The registry names of the models that can import ImageNet weights (their spec's `weights`)."""
    from keras_cnns.registry import models_with_weights
    return models_with_weights(WEIGHTS)


def weights_of(name):
    """The ImageNet registry.Weights of model `name`; ValueError naming the models that have them if none."""
    from keras_cnns.registry import get_spec

    spec = get_spec(name)
    weights = spec.published_weights(WEIGHTS)
    if weights is None:
        raise ValueError(f"{spec.name} has no ImageNet weights to import; the models that have them: "
                         f"{', '.join(models())}. Received: {name!r}")
    return weights


def preprocessing(name):
    """The Preprocessing that goes with the ImageNet weights of model `name` (its spec's Weights)."""
    return Preprocessing(**weights_of(name).preprocessing)


def metadata(name, weights="imagenet", input_shape=None):
    """metadata.json content (see keras_cnns.metadata) for model `name` holding ImageNet weights."""
    from keras_cnns import metadata as metadata_lib
    from keras_cnns.registry import get_spec

    spec = get_spec(name)
    published = weights_of(spec.name)
    prep = Preprocessing(**published.preprocessing)
    shape = list(input_shape or (prep.size[0], prep.size[1], prep.channels))
    source = weights if isinstance(weights, str) else type(weights).__name__
    index = class_index(published.classes)
    return {
        "model": spec.name,
        "dataset": published.dataset,
        "class_names": [class_name for _, class_name in index],
        "wordnet_ids": [wnid for wnid, _ in index],
        "input_shape": shape,
        "output": spec.output,
        "preprocessing": prep.to_dict(),
        "recipe": published.origin,
        "weights": source,
        "epochs": None,
        "test_accuracy": None,
        "test_top5": None,
        "seed": None,
        "versions": metadata_lib.versions(),
        "git_commit": metadata_lib.git_commit(),
    }
