"""A binary bottleneck trained with a straight-through estimator (semantic hashing's binary codes)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cnns")
class BinaryCode(keras.layers.Layer):
    """Logits -> codes in {-1, +1}, with the gradient of tanh passed straight through the sign.

    Krizhevsky and Hinton (2011, "Using very deep autoencoders for content-based image retrieval") make
    the code units of a deep autoencoder binary by adding noise to their logistic inputs during
    fine-tuning. We use the straight-through estimator instead (Bengio, Leonard, Courville 2013): the
    forward pass is sign(tanh(x)) (0 maps to +1), the backward pass is the derivative of tanh(x),
    1 - tanh(x)^2, as if the sign were not there. The codes are therefore exactly binary in training
    and at inference alike; bit i of an image is ``code[i] > 0``. Has no weights.
    """

    def call(self, inputs):
        soft = ops.tanh(inputs)
        hard = ops.where(soft >= 0, ops.ones_like(soft), -ops.ones_like(soft))
        return soft + ops.stop_gradient(hard - soft)

    def compute_output_shape(self, input_shape):
        return input_shape
