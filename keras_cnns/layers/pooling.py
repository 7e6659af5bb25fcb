"""Average pooling whose "same" padding means one thing on every Keras backend."""

import keras


@keras.saving.register_keras_serializable(package="keras_cnns")
class ExcludePaddingAveragePooling2D(keras.layers.AveragePooling2D):
    """keras.layers.AveragePooling2D in which a "same"-padded window averages only the input pixels it covers.

    That is TensorFlow's and JAX's rule, and the one the zoo's models (NIN's mlpconv2 pool) are trained and
    tested with. Keras's PyTorch backend cannot pad unevenly (torch pools pad both sides alike; Keras issue
    keras-team/keras#18452), so on it an odd total padding gave other values in the last row and column. Here,
    on that backend only, the input is zero-padded TensorFlow's way (the extra pixel at the bottom and right),
    summed over each window with a "valid" pool, and divided by the number of input pixels in the window.
    Every other backend, and "valid" padding, runs the parent's own kernel. channels_last only.
    """

    def call(self, inputs):
        if self.padding != "same" or keras.backend.backend() != "torch" or self.data_format != "channels_last":
            return super().call(inputs)
        return exclude_padding_average_pool(inputs, self.pool_size, self.strides)


def exclude_padding_average_pool(inputs, pool_size, strides):
    """"same" average pooling over NHWC `inputs` in keras.ops, each window divided by the number of input
    pixels it covers (TensorFlow's rule; the torch path of :class:`ExcludePaddingAveragePooling2D`)."""
    ops = keras.ops
    pads = [[0, 0]]
    for size, window, stride in zip(inputs.shape[1:3], pool_size, strides):
        total = max((-(-size // stride) - 1) * stride + window - size, 0)
        pads.append([total // 2, total - total // 2])
    area = float(pool_size[0] * pool_size[1])

    def window_sums(x):
        padded = ops.pad(x, pads + [[0, 0]])
        return ops.average_pool(padded, pool_size, strides=strides, padding="valid") * area

    return window_sums(inputs) / window_sums(ops.ones_like(inputs[..., :1]))
