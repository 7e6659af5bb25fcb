"""Evaluation of a trained model: accuracy, top-5, per-class accuracy, confusion matrix, optional
10-crop (AlexNet sec. 4.1: the four corners and the centre, and their mirror images, scores averaged).

Works on both kinds of output in the zoo: class probabilities (highest wins) and LeNet-5's RBF distances
(smallest wins; scored as their negation).
"""

import dataclasses
import math
import os

import numpy as np
import tensorflow as tf

from keras_cnns.outputs import main_output

TEN_CROP_RATIO = 256 / 224   # evaluation images are this much larger than the crops (AlexNet/VGG)


def scores_from_outputs(outputs, output="probabilities"):
    """Model outputs -> scores where higher is better (RBF distances are negated)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    return -outputs if output == "rbf_distances" else outputs


def predict_scores(model, dataset, output="probabilities", ten_crop=False, limit_batches=None):
    """Runs `model` over a dataset of (images, labels) batches; returns (labels [N], scores [N, K]).

    With ten_crop=True the images must be larger than the model input; each is cut into 10 crops of the
    model's input size (keras_cnns.data.ten_crop) and the outputs of the crops are averaged.
    """
    size = tuple(model.input_shape[1:3])
    labels, scores = [], []

    @tf.function(reduce_retracing=True)
    def run(images):
        if ten_crop:
            from keras_cnns import data
            crops = data.ten_crop(images, size)                    # [B, 10, h, w, C]
            b = tf.shape(crops)[0]
            flat = tf.reshape(crops, tf.concat([[-1], tf.shape(crops)[2:]], 0))
            out = model(flat, training=False)
            return tf.reduce_mean(tf.reshape(tf.cast(out, tf.float32), [b, 10, -1]), axis=1)
        return tf.cast(model(images, training=False), tf.float32)

    from keras_cnns.progress import Progress

    batches = int(dataset.cardinality())
    batches = min(batches, limit_batches) if batches >= 0 and limit_batches is not None else batches
    bar = Progress(batches if batches >= 0 else None, "Evaluating", unit="batches", min_total=5)
    for i, (images, y) in enumerate(dataset):
        if limit_batches is not None and i >= limit_batches:
            break
        bar.add()
        out = run(images)
        out = main_output(out)
        labels.append(np.asarray(y).reshape(-1))
        scores.append(scores_from_outputs(out, output))
    return np.concatenate(labels).astype(np.int64), np.concatenate(scores)


def summarize(labels, scores, class_names):
    """Accuracy, top-5 (when there are more than 5 classes), per-class accuracy and confusion matrix."""
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    k = scores.shape[1]
    pred = scores.argmax(axis=1)
    top = min(5, k)
    top5 = np.argsort(-scores, axis=1)[:, :top]
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (labels, pred), 1)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    per_class = {}
    for i, name in enumerate(names):
        total = matrix[i].sum()
        per_class[name] = float(matrix[i, i] / total) if total else float("nan")
    return {
        "examples": int(labels.size),
        "accuracy": float(np.mean(pred == labels)),
        "top5": float(np.mean(np.any(top5 == labels[:, None], axis=1))) if k > 5 else None,
        "per_class_accuracy": per_class,
        "confusion_matrix": matrix.tolist(),
        "class_names": names,
    }


def per_class_table(result):
    """A summarize() result -> a pandas DataFrame, one row per class: test images, accuracy, and the class
    it is most often mistaken for (with how many), read off the confusion matrix (rows = true classes)."""
    import pandas as pd

    names = result["class_names"]
    matrix = pd.DataFrame(result["confusion_matrix"], index=names, columns=names)
    errors = matrix.where(~np.eye(len(names), dtype=bool), 0)  # off-diagonal counts only
    table = pd.DataFrame({"images": matrix.sum(axis=1),
                          "accuracy": pd.Series(result["per_class_accuracy"]).reindex(names),
                          "confused_with": errors.idxmax(axis=1).where(errors.max(axis=1) > 0, ""),
                          "times": errors.max(axis=1)})
    table.index.name = "class"
    return table


def evaluate_model(model, dataset, class_names=None, output="probabilities", ten_crop=False):
    """summarize() of a model on a dataset of (images, labels) batches."""
    labels, scores = predict_scores(model, dataset, output=output, ten_crop=ten_crop)
    return summarize(labels, scores, class_names)


def load_model_dir(model_dir):
    """(model, metadata) of a directory written by keras_cnns.training.fit / apps/train.py."""
    import keras

    from keras_cnns import layers as _  # noqa: F401  (registers the custom layers before loading)
    from keras_cnns import metadata as md
    meta = md.read(model_dir)
    path = os.path.join(model_dir, md.MODEL_FILENAME)
    if not os.path.isfile(path):
        raise ValueError(f"{model_dir!r} has metadata.json but no {md.MODEL_FILENAME}.")
    return keras.saving.load_model(path, compile=False, safe_mode=True), meta


def evaluate_dir(model_dir, dataset=None, *, data_dir=None, ten_crop=False, batch_size=256, limit=None,
                 confusion_png=None):
    """Evaluates a saved model directory on the test split of `dataset` (default: the one it was trained on).

    Returns summarize()'s dict plus "model", "dataset" and "ten_crop"; writes the confusion-matrix PNG
    to `confusion_png` when given.
    """
    from keras_cnns import data
    from keras_cnns.data import Preprocessing
    from keras_cnns.training.plots import plot_confusion_matrix

    model, meta = load_model_dir(model_dir)
    dataset = dataset or meta["dataset"]
    source = data.load_source(dataset, data_dir=data_dir)
    num_outputs = model.output_shape[-1]
    if source.num_classes != num_outputs:
        raise ValueError(f"The model in {model_dir!r} has {num_outputs} classes but dataset {dataset!r} has "
                         f"{source.num_classes}. Received: dataset={dataset!r}")
    prep = Preprocessing.from_dict(meta["preprocessing"])
    if ten_crop:
        h, w = prep.size
        prep = dataclasses.replace(prep, size=(math.ceil(h * TEN_CROP_RATIO), math.ceil(w * TEN_CROP_RATIO)))
    splits = data.make_datasets(source, preprocessing=prep, batch_size=batch_size, augment=None,
                                validation_split=0.0, seed=0, drop_remainder=False, cache=False)
    test = splits.test
    if limit:
        test = test.take(math.ceil(limit / batch_size))
    result = evaluate_model(model, test, class_names=meta.get("class_names") or source.class_names,
                            output=meta.get("output", "probabilities"), ten_crop=ten_crop)
    result.update(model=meta.get("model"), dataset=dataset, ten_crop=bool(ten_crop))
    if confusion_png:
        plot_confusion_matrix(result["confusion_matrix"], result["class_names"], confusion_png,
                              title=f"{meta.get('model')} on {dataset}: accuracy {result['accuracy']:.4f}")
    return result
