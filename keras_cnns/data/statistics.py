"""Dataset statistics kept once computed: per-channel mean and std and the RGB covariance's eigen-decomposition
(AlexNet's PCA colour augmentation), stored as small JSON files under ``$KERAS_CNNS_CACHE_DIR/stats``
(default ~/.keras/keras_cnns/stats). :meth:`keras_cnns.data.Source.statistics` computes them and keeps its own
in-memory copy; this module only keeps the files."""

import json
import logging
import os

import numpy as np

from keras_cnns.paths import atomic_write_text

logger = logging.getLogger(__name__)

CACHE_DIR_ENV = "KERAS_CNNS_CACHE_DIR"


def stats_dir():
    """Where the statistics files go: $KERAS_CNNS_CACHE_DIR/stats, default ~/.keras/keras_cnns/stats."""
    base = os.environ.get(CACHE_DIR_ENV) or os.path.join(os.path.expanduser("~"), ".keras", "keras_cnns")
    return os.path.join(base, "stats")


def _safe_name(name):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[-60:]


def stored_statistics(name, key, compute):
    """The statistics of the source named `name` under `key`: from their file, else ``compute()`` and then
    written there (a file that cannot be written is a warning, not an error)."""
    path = os.path.join(stats_dir(), f"{_safe_name(name)}-{key}.json")
    stats = None
    if os.path.exists(path):
        try:
            with open(path) as f:
                stats = json.load(f)
        except (OSError, ValueError):
            stats = None
    if stats is None:
        stats = compute()
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write_text(path, json.dumps(stats, indent=1))
        except OSError as err:  # a read-only home is no reason to fail
            logger.warning("Could not store the dataset statistics in %s: %s", path, err)
    return stats


def pca_of_covariance(covariance):
    """Eigenvalues (descending) and eigenvectors (columns) of a symmetric covariance matrix."""
    eigvals, eigvecs = np.linalg.eigh(np.asarray(covariance, dtype=np.float64))
    order = np.argsort(eigvals)[::-1]
    return np.maximum(eigvals[order], 0.0), eigvecs[:, order]
