"""Semantic segmentation with the zoo's FCNs (Long, Shelhamer, Darrell 2015): what training compiles with,
how a model is scored, and how a mask is made from an image and drawn.

* :func:`compile_metrics` -- pixel accuracy and mean IoU over all classes, background included
  (keras.metrics.MeanIoU on the argmax of the per-pixel probabilities);
* :func:`confusion_matrix`, :func:`summarize`, :func:`evaluate` -- the same numbers for a whole split, plus
  the IoU of every class: IoU_c = TP_c / (TP_c + FP_c + FN_c) from one K x K pixel confusion matrix (a
  class absent from both labels and predictions has no IoU and is left out of the mean);
* :func:`error_split` -- where the errors lie: two counterfactual masks, one with the true extent of the items
  and one with their true classes (benchmarks/segmentation_errors.py);
* :func:`segment` -- one uint8 image of any size -> a uint8 mask of the same height and width;
* :func:`overlay` -- the image with the mask's colours blended in, and a legend.
"""

import numpy as np

PIXEL_ACCURACY = "pixel_accuracy"
MEAN_IOU = "mean_iou"
OVERLAY_ALPHA = 0.5


def compile_metrics(num_classes):
    """Keras metrics for model.compile: pixel accuracy and mean IoU (from probabilities)."""
    import keras

    return [keras.metrics.SparseCategoricalAccuracy(name=PIXEL_ACCURACY),
            keras.metrics.MeanIoU(num_classes=num_classes, sparse_y_pred=False, name=MEAN_IOU)]


def loss():
    """Per-pixel softmax cross-entropy, averaged over the pixels of the batch (the paper sums them)."""
    import keras

    return keras.losses.SparseCategoricalCrossentropy()


def confusion_matrix(labels, predictions, num_classes):
    """K x K pixel counts: row = true class, column = predicted class."""
    labels = np.asarray(labels, np.int64).reshape(-1)
    predictions = np.asarray(predictions, np.int64).reshape(-1)
    if labels.size and (labels.max() >= num_classes or predictions.max() >= num_classes):
        raise ValueError(f"class indices must be below num_classes={num_classes}. Received: labels up to "
                         f"{labels.max()}, predictions up to {predictions.max()}")
    return np.bincount(labels * num_classes + predictions, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def summarize(matrix, class_names):
    """{mean_iou, pixel_accuracy, per_class_iou {name: IoU or None}, pixels, confusion_matrix} of a matrix."""
    matrix = np.asarray(matrix, np.float64)
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    total = matrix.sum()
    return {
        MEAN_IOU: float(np.nanmean(iou)) if np.any(union > 0) else float("nan"),
        PIXEL_ACCURACY: float(tp.sum() / total) if total else float("nan"),
        "per_class_iou": {name: (None if np.isnan(v) else float(v)) for name, v in zip(class_names, iou)},
        "pixels": int(total),
        "confusion_matrix": matrix.astype(np.int64).tolist(),
        "class_names": list(class_names),
    }


def evaluate(model, dataset, class_names, mirror=False):
    """:func:`summarize` of a model over a dataset of (images (B, H, W, C), masks (B, H, W)) batches
    (``mirror``: of the probabilities averaged with the mirror image's, :func:`pixel_probabilities`)."""
    k = len(class_names)
    matrix = np.zeros((k, k), np.int64)
    for images, masks in dataset:
        matrix += confusion_matrix(np.asarray(masks), np.argmax(pixel_probabilities(model, images, mirror), -1), k)
    return summarize(matrix, class_names)


def pixel_probabilities(model, images, mirror=False):
    """The per-pixel class probabilities (B, H, W, K) of a batch, as a NumPy array (a training graph's aux
    outputs dropped). ``mirror``: the mean of the images' probabilities and their mirror images' probabilities
    mirrored back (left-right; a test-time average, not in the FCN paper; models trained with flips gain most)."""
    predict = model_predict(model)
    return mirror_average(predict, images) if mirror else predict(images)


def model_predict(model):
    """A function (B, H, W, C) batch -> its per-pixel probabilities (B, H, W, K) as a NumPy array, from a Keras
    segmentation model (a training graph's aux outputs dropped): what :func:`mirror_average` takes."""
    def predict(x):
        probabilities = model(x, training=False)
        if isinstance(probabilities, dict):
            probabilities = probabilities["predictions"]
        return np.asarray(probabilities)

    return predict


def mirror_average(predict, images, plain=None):
    """(predict(images) + predict(the images mirrored left-right), mirrored back) / 2 for per-pixel outputs
    (B, H, W, K) of a function on (B, H, W, C) batches. ``plain``: predict(images) when the caller already has
    it (it is not computed again)."""
    images = np.asarray(images)
    mirrored = np.asarray(predict(np.ascontiguousarray(images[:, :, ::-1])))[:, :, ::-1]
    plain = predict(images) if plain is None else plain
    return (np.asarray(plain) + mirrored) / 2


def error_split(labels, probabilities, background=0):
    """Splits a model's errors in two by fixing one half with the truth (a diagnostic, not a metric of the paper).

    Returns {"predicted": argmax mask, "true_extent": the true background/foreground, each foreground pixel
    given the model's most likely non-background class (what errors remain are confusions between item
    classes), "true_classes": the model's own background/foreground, each pixel it puts on an item given the
    true class where there is one (what errors remain are extent errors: item pixels missed, background
    pixels claimed)}. ``probabilities`` (..., K) per pixel, ``labels`` the matching (...) true classes."""
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels, np.int64)
    if probabilities.shape[:-1] != labels.shape:
        raise ValueError(f"probabilities must be labels' shape plus a class axis. Received: probabilities "
                         f"{probabilities.shape}, labels {labels.shape}")
    predicted = np.argmax(probabilities, -1)
    others = np.delete(np.arange(probabilities.shape[-1]), background)
    best_item = others[np.argmax(np.take(probabilities, others, axis=-1), -1)]
    on_item = labels != background
    return {"predicted": predicted,
            "true_extent": np.where(on_item, best_item, background),
            "true_classes": np.where(on_item & (predicted != background), labels, predicted)}


def segment(predictor, image, mirror=False):
    """A uint8 image (H, W, C) of any size -> (uint8 mask (H, W), float32 probabilities (H, W, K)).

    ``predictor`` is a keras_cnns.inference Predictor of a segmentation model: the image is brought to the
    model's channels and normalised as in training, but keeps its own size (an FCN takes any size).
    ``mirror``: the probabilities averaged with the mirror image's (:func:`pixel_probabilities`).
    """
    prep = predictor.preprocessing
    x = np.asarray(prep.normalize(prep.convert_channels(np.asarray(image))), np.float32)[None]
    probabilities = np.asarray(mirror_average(predictor.predict, x) if mirror else predictor.predict(x))[0]
    if probabilities.shape[:2] != np.asarray(image).shape[:2]:
        raise ValueError(f"{predictor.source}: the model gave a {probabilities.shape[:2]} map for a "
                         f"{np.asarray(image).shape[:2]} image; is it a segmentation model (an FCN)?")
    return np.argmax(probabilities, -1).astype(np.uint8), probabilities


def palette(num_classes):
    """(K, 3) uint8 colours of K classes, background black (:func:`keras_cnns.colours.class_palette`)."""
    from keras_cnns.colours import class_palette

    return class_palette(num_classes)


def overlay(image, mask, class_names, path, title=None):
    """Writes a PNG: the image beside the image with the mask's colours blended in, and a legend of the
    classes present (with their pixel share)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    image = np.asarray(image)
    rgb = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image[..., :3]
    colours = palette(len(class_names))
    coloured = colours[mask]
    blended = np.where(mask[..., None] > 0, (1 - OVERLAY_ALPHA) * rgb + OVERLAY_ALPHA * coloured, rgb)
    h, w = mask.shape
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.6 * h / max(w, 1) + 0.8))
    axes[0].imshow(rgb.astype(np.uint8))
    axes[0].set_title("image")
    axes[1].imshow(blended.astype(np.uint8))
    axes[1].set_title(title or "segmentation")
    for ax in axes:
        ax.axis("off")
    counts = np.bincount(mask.reshape(-1), minlength=len(class_names))
    present = [i for i in range(len(class_names)) if counts[i]]
    handles = [Patch(facecolor=colours[i] / 255.0, edgecolor="grey",
                     label=f"{class_names[i]} {100.0 * counts[i] / mask.size:.1f}%") for i in present]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, max(len(handles), 1)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_mask(mask, path):
    """Writes a mask as an 8-bit single-channel PNG whose pixel values are the class indices."""
    from PIL import Image

    mask = np.asarray(mask)
    if mask.max(initial=0) > 255:
        raise ValueError(f"an 8-bit mask holds class indices up to 255. Received: a mask with {mask.max()}")
    Image.fromarray(mask.astype(np.uint8), mode="L").save(path)
    return path


def pixel_counts(mask, class_names):
    """{class name: pixel count} of the classes present in a mask."""
    counts = np.bincount(np.asarray(mask).reshape(-1), minlength=len(class_names))
    return {class_names[i]: int(c) for i, c in enumerate(counts) if c}
