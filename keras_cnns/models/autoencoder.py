"""Autoencoders with a binary bottleneck, for image retrieval by Hamming distance.

Krizhevsky, Sutskever and Hinton (2012, sec. 6.1) suggest compressing AlexNet's 4096-d fc7 vectors with
"an auto-encoder ... to short binary codes" (as Krizhevsky and Hinton 2011 did on raw pixels) so that
similar images are found by Hamming distance. One builder serves both uses: its input is a vector,
either a network's features (fc7, f6, a globally pooled map) or an image's pixels flattened (the
article's baseline).

    vector (D) -> encoder_fc1..n (ReLU) -> code_logits (B) -> code: BinaryCode, {-1, +1}^B
               -> decoder_fc1..n (ReLU) -> reconstruction (D, linear)

Deviations from Krizhevsky and Hinton 2011: no layer-wise RBM pre-training (the nets are shallow and
trained end to end with Adam on the mean squared error of standardised inputs), and the code is made
binary by a straight-through estimator (:class:`keras_cnns.layers.BinaryCode`) rather than by noise
added to logistic code units.
"""

import keras

from keras_cnns.layers.binary_code import BinaryCode
from keras_cnns.models.common import finish_model
from keras_cnns.registry import register_model

PAPER = ("Krizhevsky, Hinton 2011, Using very deep autoencoders for content-based image retrieval "
         "(codes for AlexNet's fc7, Krizhevsky et al. 2012 sec. 6.1)")
BITS = (32, 64, 128)
CODE_LAYER = "code"


@register_model("feature_autoencoder", family="autoencoder", paper=PAPER, input_shape=(4096,), min_input_size=1,
                test_input_shape=(16,), task="retrieval",
                deviations="trained end to end (no RBM pre-training); straight-through binary codes")
def feature_autoencoder(*, input_shape=None, bits=64, hidden=(512,), weights=None, name="feature_autoencoder"):
    """A binary-code autoencoder for vectors of length ``input_shape[0]`` (fc7: 4096, LeNet-5's f6: 84).

    Args:
      input_shape: (D,), the vector length.
      bits: the code length B (any positive integer; the article's range is 28 to 256).
      hidden: widths of the encoder's hidden layers; the decoder mirrors them.
      weights: None or a .weights.h5 / .keras file of the same architecture.
    """
    input_shape = tuple(input_shape or (4096,))
    if len(input_shape) != 1 or not isinstance(input_shape[0], int) or input_shape[0] < 1:
        raise ValueError(f"feature_autoencoder takes vectors: input_shape must be (length,). "
                         f"Received: input_shape={input_shape!r}")
    if not isinstance(bits, int) or isinstance(bits, bool) or bits < 1:
        raise ValueError(f"feature_autoencoder: bits must be a positive integer. Received: bits={bits!r}")
    hidden = tuple(int(h) for h in hidden)
    inputs = keras.Input(shape=input_shape, name="vector")
    x = inputs
    for i, width in enumerate(hidden, start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"encoder_fc{i}")(x)
    x = keras.layers.Dense(bits, name="code_logits")(x)
    x = BinaryCode(name=CODE_LAYER)(x)                                               # (B,) in {-1, +1}
    for i, width in enumerate(reversed(hidden), start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"decoder_fc{i}")(x)
    outputs = keras.layers.Dense(input_shape[0], name="reconstruction")(x)
    return finish_model(inputs, outputs, name=name, weights=weights)


def encoder(autoencoder):
    """The encoder half of a built or loaded autoencoder: vector -> code in {-1, +1}^B."""
    return keras.Model(autoencoder.inputs[0], autoencoder.get_layer(CODE_LAYER).output,
                       name=f"{autoencoder.name}_encoder")
