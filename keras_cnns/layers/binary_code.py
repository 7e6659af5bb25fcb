"""A binary bottleneck trained with a straight-through estimator (semantic hashing's binary codes)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cnns")
class BinaryCode(keras.layers.Layer):
    """Logits -> codes in {-1, +1}, with the gradient of tanh passed straight through the sign.

    Krizhevsky and Hinton (2011, "Using very deep autoencoders for content-based image retrieval") make
    the code units of a deep autoencoder binary by adding noise to their logistic inputs during
    fine-tuning: to resist the noise, the units' activities become bimodal, and rounding them loses little.
    We binarise with the straight-through estimator instead (Bengio, Leonard, Courville 2013): the
    forward pass is sign(tanh(x)) (0 maps to +1), the backward pass is the derivative of tanh(x),
    1 - tanh(x)^2, as if the sign were not there. The codes are therefore exactly binary in training
    and at inference alike; bit i of an image is ``code[i] > 0``.

    Args:
      noise_stddev: Gaussian noise of this standard deviation is added to the logits in training only
        (their noise, drawn afresh each step rather than fixed per training case). It needs logits of a
        fixed scale (the autoencoder standardises them first): free logits can outgrow the noise. What it does
        to retrieval is measured, not assumed: see keras_cnns.models.autoencoder. 0 (the default) adds none,
        and the layer has no state.
      seed: the noise's seed.
    """

    def __init__(self, noise_stddev=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(noise_stddev, (int, float)) or isinstance(noise_stddev, bool) or noise_stddev < 0:
            raise ValueError(f"BinaryCode: noise_stddev must be a number >= 0. Received: {noise_stddev!r}")
        self.noise_stddev = float(noise_stddev)
        self.seed = seed
        # only with noise: a layer saved without it has no seed state to load
        self.seed_generator = keras.random.SeedGenerator(seed) if self.noise_stddev else None

    def call(self, inputs, training=None):
        if training and self.noise_stddev:
            inputs = inputs + keras.random.normal(ops.shape(inputs), stddev=self.noise_stddev,
                                                  dtype=inputs.dtype, seed=self.seed_generator)
        soft = ops.tanh(inputs)
        hard = ops.where(soft >= 0, ops.ones_like(soft), -ops.ones_like(soft))
        return soft + ops.stop_gradient(hard - soft)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return dict(super().get_config(), noise_stddev=self.noise_stddev, seed=self.seed)
