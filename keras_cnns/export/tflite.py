"""SavedModel -> TensorFlow Lite, always through the SavedModel (never TFLiteConverter.from_keras_model,
which Keras 3 models do not support reliably), with the quantisation modes of the TFLite converter:

- "none": float32.
- "float16": weights stored as float16, computed in float32 (dequantised at load).
- "dynamic": weights int8, activations quantised on the fly where a kernel exists.
- "int8": weights and activations int8, calibrated on a representative dataset (float32 [1, H, W, C]
  images preprocessed exactly as in training). Inputs and outputs stay float32 so the same caller works;
  ops with no int8 kernel (LOCAL_RESPONSE_NORMALIZATION, for one) stay float32 between a DEQUANTIZE and a
  QUANTIZE: :func:`float_ops` lists them.
"""

import numpy as np
import tensorflow as tf

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")


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
        images = np.asarray(representative_images, np.float32)

        def representative():
            for image in images:
                yield [image[None]]

        converter.representative_dataset = representative
    data = converter.convert()
    with open(path, "wb") as f:
        f.write(data)
    return path


def float_ops(predictor):
    """Names of the ops that run in float32 in a quantised .tflite (its TFLitePredictor), sorted."""
    skip = {"QUANTIZE", "DEQUANTIZE"}
    return sorted({name for name, dtype in predictor.ops() if dtype == "float32" and name not in skip})
