"""Layers that let a fully convolutional network (Long, Shelhamer, Darrell 2015, "Fully Convolutional
Networks for Semantic Segmentation") take an input of any size and give an output of the same size.

The Caffe FCN padded conv1_1 by 100 pixels and cropped the upsampled scores back with fixed offsets. We
pad the image at its bottom and right to a multiple of the network's output stride instead
(:class:`PadToMultiple`), so that every pool halves exactly and every x2 upsampling meets its skip at
the same size, then crop the scores back to the input's own height and width (:class:`CropToReference`).
Both work on dynamic shapes (None x None inputs), in a SavedModel and in TFLite.

:func:`bilinear_kernel` / :class:`BilinearUpsampling` give the initial weights of FCN's transposed
convolutions: bilinear interpolation, one class channel to the same class channel.
"""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cnns")
class PadToMultiple(keras.layers.Layer):
    """Zero-pads (N, H, W, C) at the bottom and right to (N, ceil(H/m)*m, ceil(W/m)*m, C)."""

    def __init__(self, multiple, **kwargs):
        super().__init__(**kwargs)
        if int(multiple) != multiple or multiple < 1:
            raise ValueError(f"PadToMultiple: multiple must be a positive integer. Received: multiple={multiple!r}")
        self.multiple = int(multiple)

    def call(self, inputs):
        # Zeros concatenated below and to the right, rather than a pad with computed amounts: the result
        # keeps its static channel count, which TFLite's convolutions need on a dynamic-size input.
        n, h, w = ops.shape(inputs)[0], ops.shape(inputs)[1], ops.shape(inputs)[2]
        c = inputs.shape[-1]
        m = self.multiple
        pad_h = (m - h % m) % m
        pad_w = (m - w % m) % m
        x = ops.concatenate([inputs, ops.zeros((n, pad_h, w, c), dtype=inputs.dtype)], axis=1)
        return ops.concatenate([x, ops.zeros((n, h + pad_h, pad_w, c), dtype=inputs.dtype)], axis=2)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        m = self.multiple

        def up(d):
            return None if d is None else -(-d // m) * m

        return (n, up(h), up(w), c)

    def get_config(self):
        config = super().get_config()
        config.update(multiple=self.multiple)
        return config


@keras.saving.register_keras_serializable(package="keras_cnns")
class CropToReference(keras.layers.Layer):
    """[x, reference] -> x cropped to the reference's height and width, from the top-left corner.

    x must be at least as large as the reference (FCN: the upsampled scores of a padded image, cropped
    to the input image or to a skip's score map); the channels are x's.
    """

    def call(self, inputs):
        x, reference = inputs
        shape = ops.shape(reference)
        return x[:, :shape[1], :shape[2], :]

    def compute_output_shape(self, input_shape):
        x_shape, reference_shape = input_shape
        return (x_shape[0], reference_shape[1], reference_shape[2], x_shape[3])


def bilinear_kernel(size, channels):
    """A (size, size, channels, channels) Conv2DTranspose kernel that upsamples each channel by bilinear
    interpolation (factor size // 2 for an even size) and never mixes channels."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    grid = np.arange(size, dtype="float64")
    profile = 1.0 - np.abs(grid - center) / factor
    kernel2d = np.outer(profile, profile).astype("float32")
    kernel = np.zeros((size, size, channels, channels), dtype="float32")
    for c in range(channels):
        kernel[:, :, c, c] = kernel2d
    return kernel


@keras.saving.register_keras_serializable(package="keras_cnns")
class BilinearUpsampling(keras.initializers.Initializer):
    """Initialises a Conv2DTranspose kernel (k, k, C, C) to bilinear interpolation (FCN, section 3.3)."""

    def __call__(self, shape, dtype=None):
        size, size_w, out_channels, in_channels = shape
        if size != size_w or out_channels != in_channels:
            raise ValueError("BilinearUpsampling initialises square kernels with as many output as input "
                             f"channels. Received: shape={tuple(shape)!r}")
        return ops.convert_to_tensor(bilinear_kernel(size, in_channels), dtype=dtype or "float32")

    def get_config(self):
        return {}
