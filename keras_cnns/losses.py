"""Losses and metrics for models whose output is a distance per class (LeNet-5's Euclidean RBF units,
spec.output == "rbf_distances"): the smallest distance is the predicted class.

* :class:`RBFEnergyLoss` is the paper's criterion (LeCun et al. 1998, section II-C, eq. 9):

      E = y_D + log(exp(-j) + sum_i exp(-y_i))

  y_D is the distance to the correct class's prototype. The first term pulls the F6 vector onto the
  right prototype; the second pushes it away from the others, and the constant j (a "rubbish" class)
  stops the push once every wrong distance is well above j. We use j = 1.0 (our choice).
  **The training recipe for lenet5 should use this loss** (it is the paper's, and it trains: see
  tests/test_lenet.py).
* :class:`RBFCrossEntropy` is the common stand-in: softmax cross-entropy over the negated distances
  (the energy loss without the j term). Equivalent when j is large.
* :func:`rbf_accuracy` / :class:`RBFAccuracy`: the fraction whose smallest distance is the true class.

Labels are integer class indices, shape (batch,) or (batch, 1). Everything is registered with Keras
(package "keras_cnns"), so a model compiled with them saves and loads.
"""

import keras
from keras import ops

PACKAGE = "keras_cnns"


def _labels(y_true):
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) > 1:
        y_true = ops.reshape(y_true, (-1,))
    return ops.cast(y_true, "int32")


def _true_distance(y_true, y_pred):
    onehot = ops.one_hot(_labels(y_true), ops.shape(y_pred)[-1], dtype=y_pred.dtype)
    return ops.sum(onehot * y_pred, axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class RBFEnergyLoss(keras.losses.Loss):
    """LeNet-5's energy loss (eq. 9) over distance outputs; see the module docstring."""

    def __init__(self, j=1.0, name="rbf_energy", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not j > 0:
            raise ValueError(f"RBFEnergyLoss: j must be a positive constant. Received: j={j!r}")
        self.j = float(j)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        rubbish = ops.full_like(y_pred[..., :1], -self.j)
        competition = ops.logsumexp(ops.concatenate([rubbish, -y_pred], axis=-1), axis=-1)
        return _true_distance(y_true, y_pred) + competition

    def get_config(self):
        config = super().get_config()
        config.update(j=self.j)
        return config


@keras.saving.register_keras_serializable(package=PACKAGE)
class RBFCrossEntropy(keras.losses.Loss):
    """Softmax cross-entropy over negated distances (logits = -distances)."""

    def __init__(self, name="rbf_cross_entropy", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(_labels(y_true), -ops.convert_to_tensor(y_pred),
                                                            from_logits=True)


@keras.saving.register_keras_serializable(package=PACKAGE)
def rbf_accuracy(y_true, y_pred):
    """1.0 where the smallest distance is the true class, else 0.0 (per example)."""
    predicted = ops.cast(ops.argmin(y_pred, axis=-1), "int32")
    return ops.cast(ops.equal(predicted, _labels(y_true)), "float32")


@keras.saving.register_keras_serializable(package=PACKAGE)
class RBFAccuracy(keras.metrics.MeanMetricWrapper):
    """Mean of :func:`rbf_accuracy`: classification accuracy for distance outputs (argmin)."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(rbf_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def loss_and_metric(output):
    """The loss and accuracy metric for a registry ``spec.output``: ("rbf_distances" or "probabilities").

    Probabilities get sparse categorical cross-entropy (on probabilities) and sparse categorical accuracy.
    """
    if output == "rbf_distances":
        return RBFEnergyLoss(), RBFAccuracy()
    if output == "probabilities":
        return keras.losses.SparseCategoricalCrossentropy(), keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    raise ValueError(f"loss_and_metric: output must be 'rbf_distances' or 'probabilities'. Received: output={output!r}")
