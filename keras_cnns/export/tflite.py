"""SavedModel -> TensorFlow Lite, always through the SavedModel (never TFLiteConverter.from_keras_model,
which Keras 3 models do not support reliably), with the quantisation modes of the TFLite converter:

- "none": float32.
- "float16": weights stored as float16, computed in float32 (dequantised at load).
- "dynamic": weights int8, activations quantised on the fly where a kernel exists.
- "int8": weights and activations int8, calibrated on a representative dataset (float32 [1, H, W, C]
  images preprocessed exactly as in training). Inputs and outputs stay float32 so the same caller works;
  ops with no int8 kernel (LOCAL_RESPONSE_NORMALIZATION, for one) stay float32 between a DEQUANTIZE and a
  QUANTIZE: :func:`float_ops` lists them.

The mobile variant (:func:`write_mobile`, in ``mobile/`` beside model.tflite) is converted from the
SavedModel's ``classify_mobile`` signature: uint8 pixels [1, H, W, C] at the model's input size in, the
normalisation (channel order, mean/std) inside, ``probabilities`` out (softmax of the negative distances for
LeNet-5's RBF output), with ``labels.txt`` (one class name a line, in index order) and metadata.json beside
it. Its int8 form is full-integer, calibrated on the same training images as model.tflite expressed as the
pixels they came from (:func:`to_pixels`); its input stays uint8 pixels and its output float32. The
TFLite Metadata flatbuffer (tflite-support's writers) is not written: that package is not installed here.
"""

import os

import numpy as np
import tensorflow as tf

from keras_cnns import metadata as metadata_lib
from keras_cnns.export.savedmodel import MOBILE

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
MOBILE_DIR = "mobile"
LABELS_FILENAME = "labels.txt"


def convert(savedmodel_dir, path, *, quantize="none", representative_images=None, signature="serving_default"):
    """Converts the SavedModel's `signature` to a .tflite file at `path`; returns the path."""
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES}. Received: quantize={quantize!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(savedmodel_dir, signature_keys=[signature])
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if representative_images is None or len(representative_images) == 0:
            raise ValueError("int8 quantisation needs representative images (preprocessed as in training).")
        images = np.asarray(representative_images)
        images = images if images.dtype == np.uint8 else images.astype(np.float32)  # uint8: mobile input

        def representative():
            for image in images:
                yield [image[None]]

        converter.representative_dataset = representative
    data = converter.convert()
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_mobile(savedmodel_dir, directory, metadata, *, quantize="none", representative_images=None):
    """Writes the mobile variant in `directory` (model.tflite, labels.txt, metadata.json) from a SavedModel
    exported with ``mobile_endpoint=True``; returns the .tflite path.

    representative_images: int8 only, float32 model inputs preprocessed as in training (as for
    :func:`convert`); they are turned back into the uint8 pixels the mobile model takes."""
    from keras_cnns.data.preprocessing import Preprocessing

    os.makedirs(directory, exist_ok=True)
    pixels = None
    if representative_images is not None:
        pixels = to_pixels(Preprocessing.from_dict(metadata["preprocessing"]), representative_images)
    path = convert(savedmodel_dir, os.path.join(directory, "model.tflite"), quantize=quantize,
                   representative_images=pixels, signature=MOBILE)
    write_labels(directory, metadata["class_names"])
    export = dict(metadata.get("export", {}), variant="mobile", artifact="model.tflite",
                  input="uint8 pixels [1, H, W, C] at the input size", labels=LABELS_FILENAME)
    metadata_lib.write(directory, dict(metadata, output="probabilities", export=export))
    return path


def to_pixels(preprocessing, images):
    """float32 model inputs preprocessed as in training -> the uint8 pixels they were normalised from
    (the inverse of Preprocessing.normalize, rounded): what the mobile variant takes."""
    x = np.asarray(images, np.float32) * np.asarray(preprocessing.std, np.float32)
    x = x + np.asarray(preprocessing.mean, np.float32)
    if preprocessing.channel_order == "bgr":
        x = x[..., ::-1]
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def write_labels(directory, class_names):
    """labels.txt: one class name a line, in the order of the model's output."""
    names = [str(n) for n in class_names]
    bad = [n for n in names if "\n" in n or "\r" in n]
    if bad:
        raise ValueError(f"class names must fit on one line for labels.txt. Received: {bad[:3]}")
    path = os.path.join(directory, LABELS_FILENAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(n + "\n" for n in names))
    return path


def float_ops(predictor):
    """Names of the ops that run in float32 in a quantised .tflite (its TFLitePredictor), sorted."""
    skip = {"QUANTIZE", "DEQUANTIZE"}
    return sorted({name for name, dtype in predictor.ops() if dtype == "float32" and name not in skip})


def unsupported_ops(message):
    """The TensorFlow op names a TFLite ConverterError lists as unsupported (e.g. CombinedNonMaxSuppression)."""
    import re

    found = re.findall(r"'tf\.([A-Z][A-Za-z0-9_]*)' op is neither", message)
    return sorted(set(found))
