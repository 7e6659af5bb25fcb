"""Autoencoders with a binary bottleneck, for image retrieval by Hamming distance.

Krizhevsky, Sutskever and Hinton (2012, sec. 6.1) suggest compressing AlexNet's 4096-d fc7 vectors with
"an auto-encoder ... to short binary codes" (as Krizhevsky and Hinton 2011 did on raw pixels) so that
similar images are found by Hamming distance. One builder serves both uses: its input is a vector,
either a network's features (fc7, f6, a globally pooled map) or an image's pixels flattened (the
article's baseline).

    vector (D) -> encoder_fc1..n (ReLU) -> code_logits (B) -> code_norm (batch-standardised)
               -> code: BinaryCode, noise in training, {-1, +1}^B
               -> decoder_fc1..n (ReLU) -> reconstruction (D, linear)

Krizhevsky and Hinton add noise to the inputs of the code units while fine-tuning, so that the units
become bimodal and rounding them loses little. We keep their noise (:data:`CODE_NOISE`, Gaussian, on
the code logits, in training only) and binarise with a straight-through estimator
(:class:`keras_cnns.layers.BinaryCode`). The logits are standardised over the batch first (a
BatchNormalization without scale or offset): without it, the same noise gained nothing in an ad-hoc run
(noise 0.5: precision@10 0.921 without, 0.926 with; free logits can simply outgrow the noise). On resnet20's
Fashion-MNIST features (benchmarks/code_noise.py) the noise made the units bimodal (logits within 0.25
standard deviations of their mean: 20% of them without it, 7% with it), cut the
bits an image's mirror image flips from 16% to 3%, and raised 64-bit precision@10 from 0.920 to 0.931; it did
not help on every source (README, Retrieval). ``code_noise=0`` builds the earlier model (no code_norm, no noise).

Deviations from Krizhevsky and Hinton 2011: no layer-wise RBM pre-training (the nets are shallow and
trained end to end with Adam on the mean squared error of standardised inputs); straight-through binary
codes rather than logistic units rounded after training; the noise is drawn afresh each step (theirs
was fixed per training case) and added to batch-standardised logits.
"""

import keras

from keras_cnns.layers.binary_code import BinaryCode
from keras_cnns.models.common import finish_model
from keras_cnns.registry import register_model

PAPER = ("Krizhevsky, Hinton 2011, Using very deep autoencoders for content-based image retrieval "
         "(codes for AlexNet's fc7, Krizhevsky et al. 2012 sec. 6.1)")
BITS = (32, 64, 128)
CODE_LAYER = "code"
CODE_NORM_LAYER = "code_norm"   # the batch standardisation of the code logits (models with code noise only)
CODE_NOISE = 2.0   # standard deviation of the noise on the standardised code logits (in training)


@register_model("feature_autoencoder", family="autoencoder", paper=PAPER, input_shape=(4096,), min_input_size=1,
                test_input_shape=(16,), task="retrieval",
                deviations="trained end to end (no RBM pre-training); straight-through binary codes; "
                           "fresh Gaussian noise on batch-standardised code logits")
def feature_autoencoder(*, input_shape=None, bits=64, hidden=(512,), code_noise=CODE_NOISE, weights=None,
                        name="feature_autoencoder"):
    """A binary-code autoencoder for vectors of length ``input_shape[0]`` (fc7: 4096, LeNet-5's f6: 84).

    Args:
      input_shape: (D,), the vector length.
      bits: the code length B (any positive integer; the article's range is 28 to 256).
      hidden: widths of the encoder's hidden layers; the decoder mirrors them.
      code_noise: standard deviation of the training noise on the standardised code logits; 0 = no
        noise and no standardisation (the model before 2026-11-30).
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
    code = BinaryCode(noise_stddev=code_noise, name=CODE_LAYER)                      # checks code_noise
    if code.noise_stddev:
        x = keras.layers.BatchNormalization(center=False, scale=False, name=CODE_NORM_LAYER)(x)
    x = code(x)                                                                      # (B,) in {-1, +1}
    for i, width in enumerate(reversed(hidden), start=1):
        x = keras.layers.Dense(width, activation="relu", name=f"decoder_fc{i}")(x)
    outputs = keras.layers.Dense(input_shape[0], name="reconstruction")(x)
    return finish_model(inputs, outputs, name=name, weights=weights)


def encoder(autoencoder):
    """The encoder half of a built or loaded autoencoder: vector -> code in {-1, +1}^B."""
    return keras.Model(autoencoder.inputs[0], autoencoder.get_layer(CODE_LAYER).output,
                       name=f"{autoencoder.name}_encoder")
