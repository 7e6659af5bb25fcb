"""Batch normalisation (Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep Network Training by
Reducing Internal Covariate Shift", Algorithm 1) through TensorFlow's fused kernel where it applies."""

import keras

# TensorFlow's fused kernel refuses a smaller epsilon (tf.compat.v1.nn.fused_batch_norm raises it to this).
FUSED_MIN_EPSILON = 1.001e-5
_FUSED_DTYPES = ("float32", "bfloat16", "float16")


@keras.saving.register_keras_serializable(package="keras_cnns")
class BatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization, the same weights, arguments and results, trained on TensorFlow
    through one fused kernel (FusedBatchNormV3 forward, FusedBatchNormGradV3 backward) instead of Keras 3's
    moments, casts and element-wise ops, and run in inference as one per-channel multiply-add in the
    activations' dtype.

    It keeps Keras's class name on purpose: a .keras file stores a layer's weights under its class name in
    snake case ("batch_normalization_3"), so a model whose layers are rebuilt from code when it loads (the
    Faster R-CNN detector) reads weights saved with Keras's layer, and the other way round, only under the
    same name. It is registered as "keras_cnns>BatchNormalization".

    Keras 3 computes a batch norm as about twenty small graph ops (tf.nn.moments, tf.nn.batch_normalization,
    and under mixed precision a cast of the activations to float32 and back); TensorFlow's fused kernel,
    with oneDNN on a CPU, does it in one call in the activations' own dtype, with float32 statistics.
    Training resnet20 at batch 32 on a 2-core AVX-512 BF16 CPU went from 806 to 1,259 images/s in
    mixed_bfloat16 and from 756 to 1,010 in float32 (`python benchmarks/speed.py --models resnet20
    --keras-batch-norm resnet20 ...`; docs/performance.md has the main run's numbers).

    Results are Keras's to round-off: the output is x_hat * gamma + beta with the batch's mean and biased
    variance in training and the moving statistics otherwise, and the moving variance is updated with
    the biased batch variance as Keras does (the fused kernel returns the unbiased one, which is
    un-corrected here). Keras's own code runs where neither applies: other backends, inputs that are not
    4-D with the normalised axis last, a mask, renorm, synchronized, float64, or in training an epsilon
    below FUSED_MIN_EPSILON (the multiply-add serves any epsilon). tests/test_batch_norm.py checks
    outputs, gradients and moving statistics against keras.layers.BatchNormalization.

    Inference does not use the fused kernel: under oneDNN, Grappler's remapper fuses an inference
    FusedBatchNormV3 with the convolution before it, and that fused kernel made resnet50's batch-1 predict
    11.8x slower than with Keras's layer on an AVX2 CPU (1,270 against 107 ms; 155 ms with the remapper
    off), and with TensorFlow's Eigen kernels the fused kernel was 11-13% slower than Keras's at batch
    32. The multiply-add, x * (gamma / sqrt(var + eps)) + (beta - mean * gamma / sqrt(var + eps)) with the
    two per-channel vectors computed in float32, is Keras's own inference arithmetic without its casts of
    the activations to float32 and back (`python benchmarks/batch_norm_latency.py`; docs/performance.md).
    The TFLite converter folds it into the convolution before it, as it did the fused kernel.
    """

    def _own_code_applies(self, inputs, mask, fused):
        """Whether this layer's code runs (the fused kernel if `fused`, else the multiply-add), not Keras's."""
        if keras.backend.backend() != "tensorflow" or mask is not None:
            return False
        if self.renorm or self.synchronized or (fused and self.epsilon < FUSED_MIN_EPSILON):
            return False
        rank = len(inputs.shape)
        return rank == 4 and self.axis in (-1, rank - 1) and keras.backend.standardize_dtype(
            inputs.dtype) in _FUSED_DTYPES

    def call(self, inputs, training=None, mask=None):
        fused = bool(training and self.trainable)
        if not self._own_code_applies(inputs, mask, fused):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        scale = tf.cast(self.gamma.value, "float32") if self.scale else tf.ones([channels], "float32")
        offset = tf.cast(self.beta.value, "float32") if self.center else tf.zeros([channels], "float32")
        if fused:
            outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, scale, offset, epsilon=self.epsilon, is_training=True)
            count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], "float32")
            variance = variance * ((count - 1.0) / tf.maximum(count, 1.0))     # unbiased -> Keras's biased
            momentum = self.momentum
            self.moving_mean.assign(self.moving_mean.value * momentum + mean * (1.0 - momentum))
            self.moving_variance.assign(self.moving_variance.value * momentum + variance * (1.0 - momentum))
        else:  # a per-channel multiply-add: see the class docstring for why not the fused kernel
            multiplier = scale * tf.math.rsqrt(tf.cast(self.moving_variance.value, "float32") + self.epsilon)
            shift = offset - tf.cast(self.moving_mean.value, "float32") * multiplier
            outputs = inputs * tf.cast(multiplier, inputs.dtype) + tf.cast(shift, inputs.dtype)
        return tf.cast(outputs, self.compute_dtype)
