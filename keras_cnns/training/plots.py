"""PNG plots of a run: training curves and a confusion matrix (matplotlib with the Agg backend, so they
work on machines without a display)."""

import os

import numpy as np


def _pyplot():
    import sys

    import matplotlib
    if "matplotlib.pyplot" not in sys.modules:   # a notebook has already chosen its (inline) backend
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_history(history, path=None, title=None):
    """Loss and accuracy per epoch, training and validation, side by side; saved to `path` if given.

    Args:
      history: rows (dicts with "epoch", "loss", "val_loss", "accuracy", ...), a keras History, or the
        path of a history.csv.
    Returns:
      the matplotlib Figure.
    """
    from keras_cnns.training.callbacks import read_history_csv
    if isinstance(history, (str, os.PathLike)):
        history = read_history_csv(history)
    elif hasattr(history, "history"):
        h = history.history
        history = [dict({k: v[i] for k, v in h.items()}, epoch=i + 1) for i in range(len(h.get("loss", [])))]
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [row["epoch"] for row in history]
    keys = sorted({k for row in history for k in row})
    acc = next((k for k in ("accuracy", "predictions_accuracy", "mean_iou") if k in keys), None)
    for ax, metric in zip(axes, ("loss", acc)):
        if metric is None:
            ax.set_visible(False)
            continue
        for key, style in ((metric, "-o"), ("val_" + metric, "--o")):
            if key in keys:
                ax.plot(epochs, [row.get(key, np.nan) for row in history], style, label=key, markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _finish(plt, fig, path)


def plot_confusion_matrix(matrix, class_names, path=None, title="Confusion matrix"):
    """Row-normalised confusion matrix (rows: true class, columns: predicted) with the counts written in."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    n = len(class_names)
    size = max(5, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    norm = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title(title)
    return _finish(plt, fig, path)


def _finish(plt, fig, path):
    """Lays the figure out and, given a path, writes it as a PNG and closes it."""
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
