"""What a model of the zoo outputs, in one place for training, evaluation, inference and export:

- :func:`main_output`: a model with several outputs (GoogLeNet built with its auxiliary heads gives a dict)
  answers with its classifier, the layer every builder names ``predictions`` (keras_cnns.models.common);
- :func:`looks_like_probabilities`: whether raw scores already are class probabilities (a softmax head) or
  logits, with one tolerance: an int8 softmax sums to 1 only within its quantisation steps.

numpy only (works on tensors too: they are only indexed, or converted by np.asarray).
"""

import numpy as np

MAIN_OUTPUT = "predictions"
# |sum - 1| allowed for a softmax row: int8 outputs (steps of 1/256 over up to 1000 classes) drift this far;
# a float softmax is within 1e-6, and logits are almost never all >= 0 summing to 1 within it.
PROBABILITY_SUM_TOLERANCE = 0.05


def main_output(out):
    """The main output of a model call: out["predictions"] of a dict (else its first value), the first of a
    list or tuple, or `out` itself."""
    if isinstance(out, dict):
        return out[MAIN_OUTPUT] if MAIN_OUTPUT in out else next(iter(out.values()))
    if isinstance(out, (list, tuple)):
        return out[0]
    return out


def looks_like_probabilities(raw):
    """Whether every row of `raw` (..., classes) is a distribution: no negative entry and a sum of 1 within
    PROBABILITY_SUM_TOLERANCE."""
    raw = np.asarray(raw, dtype=np.float64)
    return bool(np.all(raw >= -1e-6) and np.allclose(raw.sum(axis=-1), 1.0, atol=PROBABILITY_SUM_TOLERANCE))
