"""How a raw image becomes a model input: one description, used by training, evaluation,
classification, export (inside a SavedModel) and int8 calibration alike.

A :class:`Preprocessing` is plain data (it round-trips through ``metadata.json``) and
:meth:`Preprocessing.apply` is written in TensorFlow ops, so the very same code runs in a tf.data
pipeline, in ``apps/classify.py`` and inside an exported serving function.
"""

import dataclasses
from typing import Optional, Tuple

import tensorflow as tf

RESIZE_METHODS = ("resize", "pad", "crop")


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """raw uint8 image (H, W, 1|3) -> float32 model input (size[0], size[1], channels).

    Attributes:
      size: (height, width) of the model input.
      channels: 1 (grey) or 3 (RGB); the image is converted to this.
      resize: "pad" centres the image on a zero canvas (LeNet-5's 28 -> 32 padding), shrinking it first,
        aspect kept, when it is larger; "resize" stretches to size; "crop" resizes the shorter side to
        ``crop_from`` then takes the central size crop (the ImageNet evaluation protocol).
      crop_from: shorter side before a "crop" (256 for 224 crops).
      mean, std: per-channel statistics in the 0..255 scale, in the model's channel order (after any
        BGR flip): x = (pixel - mean) / std. Scalars or
        one value per channel. mean=0, std=255 gives [0, 1].
      channel_order: "rgb", or "bgr" for weights trained in Caffe's order (keras.applications VGG and
        ResNet "caffe" mode).
    """

    size: Tuple[int, int]
    channels: int = 3
    resize: str = "resize"
    crop_from: Optional[int] = None
    mean: Tuple[float, ...] = (0.0,)
    std: Tuple[float, ...] = (255.0,)
    channel_order: str = "rgb"

    def __post_init__(self):
        if self.channels not in (1, 3):
            raise ValueError(f"Preprocessing: channels must be 1 or 3. Received: channels={self.channels!r}")
        if self.resize not in RESIZE_METHODS:
            raise ValueError(f"Preprocessing: resize must be one of {RESIZE_METHODS}. "
                             f"Received: resize={self.resize!r}")
        if self.channel_order not in ("rgb", "bgr"):
            raise ValueError(f"Preprocessing: channel_order must be 'rgb' or 'bgr'. "
                             f"Received: channel_order={self.channel_order!r}")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "mean", tuple(float(m) for m in _as_tuple(self.mean)))
        object.__setattr__(self, "std", tuple(float(s) for s in _as_tuple(self.std)))

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config):
        return cls(**config)

    def convert_channels(self, images):
        """uint8/float (..., H, W, 1|3|4) -> (..., H, W, self.channels); alpha is dropped."""
        return convert_channels(images, self.channels)

    def resize_images(self, images):
        """Float (..., H, W, C) in 0..255 -> (..., size[0], size[1], C)."""
        h, w = self.size
        images = tf.cast(images, tf.float32)
        if self.resize == "resize":
            return tf.image.resize(images, (h, w))
        if self.resize == "pad":
            shape = tf.shape(images)
            ih, iw = shape[-3], shape[-2]
            fits = tf.logical_and(ih <= h, iw <= w)
            return tf.cond(fits,
                           lambda: tf.image.resize_with_crop_or_pad(images, h, w),
                           lambda: tf.image.resize_with_pad(images, h, w))
        side = self.crop_from or max(h, w)
        shape = tf.shape(images)
        ih, iw = tf.cast(shape[-3], tf.float32), tf.cast(shape[-2], tf.float32)
        scale = side / tf.minimum(ih, iw)
        new = tf.cast(tf.round(tf.stack([ih * scale, iw * scale])), tf.int32)
        images = tf.image.resize(images, tf.maximum(new, [h, w]))
        return tf.image.resize_with_crop_or_pad(images, h, w)

    def normalize(self, images):
        """Float pixels in 0..255 (already sized, self.channels deep) -> model input."""
        images = tf.cast(images, tf.float32)
        if self.channel_order == "bgr":
            images = images[..., ::-1]
        return (images - tf.constant(self.mean)) / tf.constant(self.std)

    def apply(self, images):
        """Raw image(s), uint8 (or float in 0..255), any size, 1/3/4 channels -> model input."""
        images = tf.convert_to_tensor(images)
        return self.normalize(self.resize_images(self.convert_channels(images)))


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def convert_channels(images, channels):
    """uint8/float (..., H, W, 1|3|4) -> (..., H, W, channels) in TensorFlow ops, dtype kept: alpha dropped, grey
    repeated to RGB, RGB to grey with tf.image.rgb_to_grayscale's weights, rounded (keras_cnns.images.
    convert_channels is the numpy twin for the TensorFlow-free readers)."""
    c = images.shape[-1]
    if c == 4:
        images = images[..., :3]
        c = 3
    if c == channels:
        return images
    if channels == 1:
        return tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(images, tf.float32))), images.dtype)
    return tf.image.grayscale_to_rgb(images)
