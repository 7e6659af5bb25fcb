"""LeNet-5's squashing function (LeCun et al. 1998, Appendix A): f(a) = 1.7159 * tanh(2a/3).

A = 1.7159 and S = 2/3 make f(1) = 1 and f(-1) = -1, so targets of +/-1 sit where the second
derivative is largest and the gain is close to one. Registered with Keras, so a layer built with
``activation=scaled_tanh`` saves and loads with safe_mode on.
"""

import keras

AMPLITUDE = 1.7159
SLOPE = 2.0 / 3.0


@keras.saving.register_keras_serializable(package="keras_cnns")
def scaled_tanh(x):
    """1.7159 * tanh(2x/3), elementwise."""
    return AMPLITUDE * keras.ops.tanh(SLOPE * x)
