"""Grouped 2-D convolution (Krizhevsky, Sutskever, Hinton 2012, section 3.5 and Figure 2: the two GPU towers
of conv2, conv4 and conv5) without the XLA detour Keras takes for it on TensorFlow."""

import keras


@keras.saving.register_keras_serializable(package="keras_cnns")
class Conv2D(keras.layers.Conv2D):
    """keras.layers.Conv2D, the same weights, arguments and results; with ``groups`` > 1 on TensorFlow
    (channels last) it convolves each group's input maps with its own slice of the kernel and concatenates
    the outputs, instead of one grouped convolution.

    TensorFlow's own kernels (oneDNN or Eigen on a CPU) do not do grouped convolutions, so Keras 3 runs
    them through a function compiled with XLA, whose CPU convolutions are far slower. Training AlexNet
    (groups=2 in conv2, conv4, conv5) at batch 32 on a 2-core AVX-512 CPU ran at 17.8-18.6 images/s that way
    and 68.2-70.1 through split convolutions (docs/performance.md). The kernel keeps Keras's grouped
    layout (kh, kw, in_channels / groups, filters): output maps [g * filters / groups, (g + 1) * filters /
    groups) read input maps [g * in / groups, (g + 1) * in / groups), as in Keras, so weights move between
    the two layers unchanged.

    It keeps Keras's class name, like keras_cnns.layers.BatchNormalization: a .keras or .weights.h5 file
    stores a layer's weights under its class name in snake case, so a model rebuilt from code reads weights
    saved with Keras's layer. Registered as "keras_cnns>Conv2D". With groups=1, channels first or another
    backend it is Keras's layer. tests/test_grouped_conv.py checks outputs and gradients against Keras's.
    """

    def convolution_op(self, inputs, kernel):
        if (self.groups == 1 or self.data_format != "channels_last"
                or keras.backend.backend() != "tensorflow"):
            return super().convolution_op(inputs, kernel)
        ops = keras.ops
        parts = zip(ops.split(inputs, self.groups, axis=-1), ops.split(kernel, self.groups, axis=-1))
        return ops.concatenate(
            [ops.conv(x, k, strides=list(self.strides), padding=self.padding, dilation_rate=self.dilation_rate,
                      data_format=self.data_format) for x, k in parts], axis=-1)
