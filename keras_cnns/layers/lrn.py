"""Local response normalisation (Krizhevsky, Sutskever, Hinton 2012, section 3.3)."""

import keras

LOW_PRECISION = ("bfloat16", "float16")  # normalised in float32 (call)


@keras.saving.register_keras_serializable(package="keras_cnns")
class LocalResponseNormalization(keras.layers.Layer):
    """b_c = a_c / (k + alpha * sum_{j=c-n//2}^{c+n//2} a_j^2) ** beta, across channels (NHWC).

    The paper's constants are the defaults: k=2, n=5, alpha=1e-4, beta=0.75. alpha multiplies the
    *sum* of squares, as in the paper and tf.nn.local_response_normalization; Caffe and PyTorch
    divide alpha by n, so porting their constants needs alpha/n. Channels outside [0, C) are zero.
    Has no weights. In bfloat16 or float16 (mixed precision) it computes in float32 and returns the input's
    dtype; the paper's network had no reduced precision to deviate from.
    """

    def __init__(self, depth=5, bias=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(depth, (int, float)) or int(depth) != depth or depth < 1 or depth % 2 == 0:
            raise ValueError(f"LocalResponseNormalization: depth (n) must be a positive odd integer. "
                             f"Received: depth={depth!r}")
        self.depth = int(depth)
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        # Under mixed precision the activations arrive in bfloat16 or float16. TensorFlow has no bfloat16 LRN
        # kernel on a CPU and only a float32 one on a GPU, and in float16 the sum of squares overflows (ReLU
        # outputs of 300 gave NaN): the normalisation runs in float32 and its result goes back to the input's dtype.
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        x = keras.ops.cast(inputs, "float32") if dtype in LOW_PRECISION else inputs
        if keras.backend.backend() == "tensorflow" and dtype != "float64":
            import tensorflow as tf  # its fused kernel (see local_response_normalization), float32 only

            outputs = tf.nn.local_response_normalization(
                x, depth_radius=self.depth // 2, bias=self.bias, alpha=self.alpha, beta=self.beta)
        else:
            outputs = local_response_normalization(x, self.depth, self.bias, self.alpha, self.beta)
        return keras.ops.cast(outputs, dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(depth=self.depth, bias=self.bias, alpha=self.alpha, beta=self.beta)
        return config


def local_response_normalization(inputs, depth=5, bias=2.0, alpha=1e-4, beta=0.75):
    """The layer's formula in keras.ops, for every Keras backend: the squares are zero-padded by depth // 2
    channels on each side and the window is the sum of `depth` shifted channel slices.

    On TensorFlow the layer calls tf.nn.local_response_normalization instead, the same formula in one fused
    kernel that ran forward and backward about 3.5x faster in one timing (docs/performance.md);
    tests/test_lrn.py checks both against the paper's formula in NumPy. This one is what JAX and PyTorch run."""
    ops = keras.ops
    radius, channels = depth // 2, inputs.shape[-1]
    squares = ops.pad(ops.square(inputs), [[0, 0]] * (len(inputs.shape) - 1) + [[radius, radius]])
    window = squares[..., 0:channels]
    for shift in range(1, depth):
        window = window + squares[..., shift:shift + channels]
    return inputs / ops.power(bias + alpha * window, beta)
