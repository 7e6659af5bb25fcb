"""Keras model -> TensorFlow SavedModel, through Keras 3's export API (model.save no longer writes one).

Signatures:
  serving_default: float32 ``images`` [batch, H, W, C], preprocessed as in training -> ``probabilities``
    (or ``rbf_distances`` for LeNet-5's RBF output, ``pixel_probabilities`` for an FCN): the model's own
    output, named. A fully convolutional model (an FCN) keeps H and W dynamic.
  classify_images (with ``uint8_endpoint=True``): uint8 ``images`` [batch, h, w, C] of any size, the
    training preprocessing (resize/pad, normalisation) inside -> ``probabilities`` (softmax of the
    negative distances for RBF models) and ``class_index`` (int32 argmax). For an FCN: uint8 images of any
    size, normalised inside and kept at their size -> ``probabilities`` [batch, h, w, K] and ``mask``.
  For a detector (``output="detections"``, Faster R-CNN): serving_default takes float32 ``images`` [batch, H, W,
    C] of any size -> ``boxes`` [batch, D, 4] (pixel [x_min, y_min, x_max, y_max] of the input), ``scores``,
    ``classes`` (int32 class indices, 0 in padding rows) and ``num_detections``, NMS inside; detect_images (with
    ``uint8_endpoint=True``) takes uint8 images of any size, resized and normalised inside, and gives the boxes in
    the uint8 image's own pixels.
  classify_mobile (with ``mobile_endpoint=True``): uint8 ``images`` [1, H, W, C] at the model's input
    size -> ``probabilities``; what the mobile TFLite variant is converted from. A fixed-size input leaves
    nothing for the resize/pad step to do, so only the pixel half of the preprocessing is inside
    (channel order, mean/std); the caller brings images to H x W (keras_cnns.images.to_model_pixels).
"""

import keras
import tensorflow as tf

from keras_cnns.outputs import main_output

SERVING = "serving_default"
RAW_IMAGES = "classify_images"
DETECT_IMAGES = "detect_images"
MOBILE = "classify_mobile"


def export_savedmodel(model, directory, *, preprocessing, output="probabilities", uint8_endpoint=True,
                      mobile_endpoint=False):
    """Writes `model` as a SavedModel in `directory`; returns the directory."""
    if output == "detections":
        return _export_detector(model, directory, preprocessing, uint8_endpoint)
    h, w = preprocessing.size
    c = preprocessing.channels
    if model.input_shape[1] is None:  # fully convolutional (an FCN): any height and width
        h = w = None
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images):
        return {output: main_output(model(images, training=False))}

    archive.add_endpoint(SERVING, serve,
                         input_signature=[tf.TensorSpec([None, h, w, c], tf.float32, name="images")])
    if uint8_endpoint and output == "pixel_probabilities":
        def segment_images(images):
            pixels = preprocessing.convert_channels(tf.cast(images, tf.float32))
            probs = main_output(model(preprocessing.normalize(pixels), training=False))
            return {"probabilities": probs, "mask": tf.argmax(probs, axis=-1, output_type=tf.int32)}

        archive.add_endpoint(RAW_IMAGES, segment_images,
                             input_signature=[tf.TensorSpec([None, None, None, c], tf.uint8, name="images")])
    elif uint8_endpoint:
        def classify_images(images):
            probs = _probabilities(model(preprocessing.apply(images), training=False), output)
            return {"probabilities": probs, "class_index": tf.argmax(probs, axis=-1, output_type=tf.int32)}

        archive.add_endpoint(RAW_IMAGES, classify_images,
                             input_signature=[tf.TensorSpec([None, None, None, c], tf.uint8, name="images")])
    if mobile_endpoint:
        def classify_mobile(images):
            pixels = tf.cast(images, tf.float32)
            return {"probabilities": _probabilities(model(preprocessing.normalize(pixels), training=False),
                                                    output)}

        archive.add_endpoint(MOBILE, classify_mobile,
                             input_signature=[tf.TensorSpec([1, h, w, c], tf.uint8, name="images")])
    archive.write_out(directory, verbose=False)
    return directory


def _export_detector(model, directory, preprocessing, uint8_endpoint):
    archive = keras.export.ExportArchive()
    archive.track(model)
    c = preprocessing.channels

    def serve(images):
        return dict(model(images, training=False))

    archive.add_endpoint(SERVING, serve, input_signature=[tf.TensorSpec([None, None, None, c], tf.float32,
                                                                        name="images")])
    if uint8_endpoint:
        def detect_images(images):
            found = dict(model(preprocessing.apply(images), training=False))
            shape = tf.cast(tf.shape(images), tf.float32)
            h, w = preprocessing.size
            scale = tf.stack([shape[2] / w, shape[1] / h, shape[2] / w, shape[1] / h])
            found["boxes"] = found["boxes"] * scale
            return found

        archive.add_endpoint(DETECT_IMAGES, detect_images,
                             input_signature=[tf.TensorSpec([None, None, None, c], tf.uint8, name="images")])
    archive.write_out(directory, verbose=False)
    return directory


def _probabilities(out, output):
    """The model's main output as probabilities: softmax of the negative distances for an RBF output."""
    scores = main_output(out)
    return tf.nn.softmax(-scores) if output == "rbf_distances" else scores


