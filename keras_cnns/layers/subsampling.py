"""LeNet-5's trainable subsampling (LeCun et al. 1998, section II-B, layers S2 and S4)."""

import keras


@keras.saving.register_keras_serializable(package="keras_cnns")
class Subsampling(keras.layers.Layer):
    """y_c = f(coefficient_c * (sum of the p x p block of map c) + bias_c), stride p, per map (NHWC).

    Two trainable parameters per feature map (12 for S2, 32 for S4), as in the paper. Blocks do not
    overlap; a trailing row or column that does not fill a block is dropped ("valid").

    Args:
      pool_size: the block side p (2 in LeNet-5).
      activation: the squashing function f; LeNet-5 uses the scaled tanh of
        :mod:`keras_cnns.layers.activations` (the paper's choice for every layer up to F6; the source
        article says "sigmoid" for S2, a loose name for the same sigmoidal family).
      coefficient_initializer, bias_initializer: initialisers of the two weights. The default
        coefficient draw is uniform in +/-2.4/F with F = p*p inputs per unit (the paper's rule).
    """

    def __init__(self, pool_size=2, activation=None, coefficient_initializer=None,
                 bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if int(pool_size) != pool_size or pool_size < 1:
            raise ValueError(f"Subsampling: pool_size must be a positive integer. Received: pool_size={pool_size!r}")
        self.pool_size = int(pool_size)
        self.strides = self.pool_size  # read by keras_cnns.anatomy for the receptive field
        self.activation = keras.activations.get(activation)
        limit = 2.4 / (self.pool_size ** 2)
        self.coefficient_initializer = keras.initializers.get(
            coefficient_initializer or keras.initializers.RandomUniform(-limit, limit))
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.coefficient = self.add_weight(name="coefficient", shape=(channels,),
                                           initializer=self.coefficient_initializer)
        self.bias = self.add_weight(name="bias", shape=(channels,), initializer=self.bias_initializer)

    def call(self, inputs):
        p = self.pool_size
        block_sums = keras.ops.average_pool(inputs, p, strides=p, padding="valid") * float(p * p)
        return self.activation(block_sums * self.coefficient + self.bias)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        p = self.pool_size
        return (n, None if h is None else h // p, None if w is None else w // p, c)

    def count_connections(self, input_shape, output_shape):
        """Multiply-accumulates as the paper and the article count them: p*p inputs plus the bias per unit."""
        _, h, w, c = output_shape
        return (self.pool_size ** 2 + 1) * h * w * c

    def get_config(self):
        config = super().get_config()
        config.update(
            pool_size=self.pool_size,
            activation=keras.activations.serialize(self.activation),
            coefficient_initializer=keras.initializers.serialize(self.coefficient_initializer),
            bias_initializer=keras.initializers.serialize(self.bias_initializer))
        return config
