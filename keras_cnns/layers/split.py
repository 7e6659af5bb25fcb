"""Channel split: one tensor in, equal channel groups out (AlexNet's two towers without groups=)."""

import keras


@keras.saving.register_keras_serializable(package="keras_cnns")
class ChannelSplit(keras.layers.Layer):
    """Splits an NHWC tensor into `num_splits` equal parts along the channel axis.

    With a Conv2D per part and a Concatenate after them it computes exactly what one Conv2D with
    ``groups=num_splits`` computes, using only ops every runtime has (TFLite int8 and GPU delegates
    lack grouped convolution). Has no weights.
    """

    def __init__(self, num_splits=2, **kwargs):
        super().__init__(**kwargs)
        if int(num_splits) != num_splits or num_splits < 1:
            raise ValueError(f"ChannelSplit: num_splits must be a positive integer. "
                             f"Received: num_splits={num_splits!r}")
        self.num_splits = int(num_splits)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels % self.num_splits:
            raise ValueError(f"ChannelSplit: the channel count must be a known multiple of "
                             f"num_splits={self.num_splits}. Received: input_shape={tuple(input_shape)}")

    def call(self, inputs):
        return keras.ops.split(inputs, self.num_splits, axis=-1)

    def compute_output_shape(self, input_shape):
        part = tuple(input_shape[:-1]) + (input_shape[-1] // self.num_splits,)
        return [part] * self.num_splits

    def get_config(self):
        config = super().get_config()
        config.update(num_splits=self.num_splits)
        return config
