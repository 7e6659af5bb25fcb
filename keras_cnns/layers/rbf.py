"""LeNet-5's output layer: Euclidean radial basis function units (LeCun et al. 1998, section II-B, eq. 7)."""

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="keras_cnns")
class EuclideanRBF(keras.layers.Layer):
    """y_i = sum_j (x_j - w_ij)^2: the squared distance from the input to each class prototype w_i.

    The prototypes are fixed (a non-trainable weight, as in the paper, where they are hand-drawn
    7x12 bitmaps); the smallest output wins. They are part of the config, so a saved model rebuilds
    them exactly, and of the weights, so they count in ``count_params`` (840 for LeNet-5).

    Args:
      prototypes: array-like (units, dim), one row per class.
      trainable_prototypes: let training move them (the paper keeps them fixed).
    """

    def __init__(self, prototypes, trainable_prototypes=False, **kwargs):
        super().__init__(**kwargs)
        prototypes = np.asarray(prototypes, dtype="float32")
        if prototypes.ndim != 2 or 0 in prototypes.shape:
            raise ValueError("EuclideanRBF: prototypes must be a non-empty 2-D array (units, dim). "
                             f"Received: prototypes with shape {prototypes.shape}")
        self._initial = prototypes
        self.units, self.dim = prototypes.shape
        self.trainable_prototypes = bool(trainable_prototypes)

    def build(self, input_shape):
        if input_shape[-1] != self.dim:
            raise ValueError(f"EuclideanRBF {self.name}: the prototypes have {self.dim} entries, the input has "
                             f"{input_shape[-1]}. Received: input_shape={input_shape!r}")
        self.prototypes = self.add_weight(
            name="prototypes", shape=self._initial.shape, trainable=self.trainable_prototypes,
            initializer=keras.initializers.Constant(self._initial))

    def call(self, inputs):
        difference = keras.ops.expand_dims(inputs, -2) - self.prototypes
        return keras.ops.sum(keras.ops.square(difference), axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def count_connections(self, input_shape, output_shape):
        """One (x_j - w_ij)^2 accumulation per input per unit, no bias: 84 x 10 = 840 in LeNet-5."""
        return self.units * self.dim

    def get_config(self):
        config = super().get_config()
        config.update(prototypes=self._initial.tolist(), trainable_prototypes=self.trainable_prototypes)
        return config
