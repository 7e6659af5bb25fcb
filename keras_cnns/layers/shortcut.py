"""The parameter-free "option A" shortcut of the CIFAR ResNets (He et al. 2015, "Deep Residual Learning
for Image Recognition", sections 3.3 and 4.2)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_cnns")
class ZeroPadShortcut(keras.layers.Layer):
    """Identity shortcut across a change of shape: subsample, then pad the new channels with zeros.

    (N, H, W, C) -> (N, ceil(H / strides), ceil(W / strides), filters). The input is taken at every
    `strides`-th row and column starting from the first, the positions a 3x3 convolution with
    stride 2 and one pixel of zero padding on each side is centred on, so the shortcut and the
    residual branch stay aligned. The identity fills the first C output channels; the extra
    ``filters - C`` channels are zero (the paper does not say on which side; we append them).
    Has no weights, so the CIFAR ResNets keep the paper's parameter counts.
    """

    def __init__(self, filters, strides=2, **kwargs):
        super().__init__(**kwargs)
        if int(filters) != filters or filters < 1:
            raise ValueError(f"ZeroPadShortcut: filters must be a positive integer. Received: filters={filters!r}")
        if int(strides) != strides or strides < 1:
            raise ValueError(f"ZeroPadShortcut: strides must be a positive integer. Received: strides={strides!r}")
        self.filters = int(filters)
        self.strides = int(strides)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels > self.filters:
            raise ValueError(
                f"ZeroPadShortcut: the input may have at most filters={self.filters} channels. "
                f"Received: input_shape={tuple(input_shape)!r}")
        super().build(input_shape)

    def call(self, inputs):
        s = self.strides
        x = inputs[:, ::s, ::s, :] if s > 1 else inputs
        extra = self.filters - inputs.shape[-1]
        if extra:
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])
        return x

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        s = self.strides

        def shrink(d):
            return None if d is None else -(-d // s)

        return (n, shrink(h), shrink(w), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides)
        return config
