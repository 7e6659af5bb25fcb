"""metadata.json: what travels beside a trained model so that classify, evaluate and export can use it
without knowing how it was trained.

Schema (every key is written by training; readers must tolerate extra keys):

    {
      "format": 1,
      "model": "lenet5",                 # registry name
      "dataset": "fashion_mnist",
      "class_names": ["T-shirt/top", ...],
      "input_shape": [32, 32, 1],
      "output": "probabilities" | "rbf_distances",
      "preprocessing": {...},            # keras_cnns.data.Preprocessing.to_dict()
      "recipe": "paper" | "fast" | ...,
      "epochs": 10,
      "test_accuracy": 0.9, "test_top5": 0.99,
      "seed": 0,
      "versions": {"keras_cnns": ..., "tensorflow": ..., "keras": ...},
      "git_commit": "abc123" | null,
      "image_convention": {"background": "dark", ...}  # Fashion-MNIST/MNIST only (keras_cnns.images)
    }

Training also writes (among others) "augment" (the run's augmentation name or null) and "backbone_weights" (the
classifier file an FCN's or detector's backbone started from, or null).
"""

import json
import os
import subprocess

from keras_cnns.paths import atomic_write_text
from keras_cnns.version import __version__

FILENAME = "metadata.json"
MODEL_FILENAME = "model.keras"


def write(directory, metadata):
    """Writes metadata.json atomically (a temporary file, then a rename)."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, FILENAME)
    atomic_write_text(path, json.dumps(dict(metadata, format=1), indent=2, sort_keys=True) + "\n")
    return path


def read(directory):
    """Reads a model directory's metadata.json; a clear ValueError if it is missing or not JSON."""
    path = os.path.join(directory, FILENAME)
    if not os.path.isfile(path):
        raise ValueError(f"{directory!r} has no {FILENAME}: it is not a model directory written by "
                         "apps/train.py.")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}).") from None


def versions():
    import keras
    import tensorflow as tf

    return {"keras_cnns": __version__, "tensorflow": tf.__version__, "keras": keras.__version__}


def git_commit():
    """The repository's HEAD commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=os.path.dirname(os.path.abspath(__file__)))
        return out.stdout.strip() or None if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None
