"""Local response normalisation against the paper's formula (Krizhevsky et al. 2012, section 3.3):

    b_c = a_c / (k + alpha * sum_{j = max(0, c - n/2)}^{min(C - 1, c + n/2)} a_j^2) ** beta

with k = 2, n = 5, alpha = 1e-4, beta = 0.75, computed here in NumPy, channel by channel.
"""

import keras
import numpy as np
import pytest

from keras_cnns.layers import LocalResponseNormalization


def paper_lrn(a, k=2.0, n=5, alpha=1e-4, beta=0.75):
    """The paper's formula, written out channel by channel (NHWC, float64)."""
    a = np.asarray(a, dtype=np.float64)
    channels = a.shape[-1]
    b = np.empty_like(a)
    for c in range(channels):
        lo, hi = max(0, c - n // 2), min(channels - 1, c + n // 2)
        squares = np.sum(a[..., lo:hi + 1] ** 2, axis=-1)
        b[..., c] = a[..., c] / (k + alpha * squares) ** beta
    return b


def _activations(shape, scale=100.0, seed=0):
    # ReLU outputs of the magnitude where alpha * sum(a^2) is comparable to k: here about 5 k.
    return np.abs(np.random.default_rng(seed).normal(scale=scale, size=shape)).astype("float32")


def test_matches_the_papers_formula_where_the_normalisation_matters():
    a = _activations((2, 6, 5, 16))
    b = np.asarray(LocalResponseNormalization()(a))
    expected = paper_lrn(a)
    np.testing.assert_allclose(b, expected, rtol=1e-5)
    # The neighbours really count: dividing by k ** beta alone would be far off.
    assert np.median(np.abs(a / 2.0 ** 0.75 - expected) / np.abs(expected)) > 0.5


def test_the_default_constants_are_the_papers():
    layer = LocalResponseNormalization()
    assert (layer.depth, layer.bias, layer.alpha, layer.beta) == (5, 2.0, 1e-4, 0.75)
    assert layer.weights == []


def test_edge_channels_sum_over_fewer_neighbours():
    # A constant 100 everywhere: channel 0 sees channels 0..2 (three squares of 10^4), channel 1 sees
    # 0..3 (four), the middle channels see five, the last two mirror the first two.
    a = np.full((1, 1, 1, 8), 100.0, dtype="float32")
    b = np.asarray(LocalResponseNormalization()(a))[0, 0, 0]
    neighbours = np.array([3, 4, 5, 5, 5, 5, 4, 3])
    np.testing.assert_allclose(b, 100.0 / (2.0 + 1e-4 * neighbours * 100.0 ** 2) ** 0.75, rtol=1e-5)
    assert b[0] == pytest.approx(100.0 / 5.0 ** 0.75, rel=1e-5)


def test_fewer_channels_than_the_window():
    a = _activations((3, 4, 4, 3), seed=1)
    np.testing.assert_allclose(np.asarray(LocalResponseNormalization()(a)), paper_lrn(a), rtol=1e-5)


@pytest.mark.parametrize("depth, bias, alpha, beta", [(3, 1.0, 2e-5, 0.75), (7, 2.0, 1e-3, 0.5), (1, 2.0, 1e-4, 1.0)])
def test_other_constants(depth, bias, alpha, beta):
    a = _activations((2, 3, 3, 12), scale=30.0, seed=depth)
    layer = LocalResponseNormalization(depth=depth, bias=bias, alpha=alpha, beta=beta)
    np.testing.assert_allclose(np.asarray(layer(a)), paper_lrn(a, k=bias, n=depth, alpha=alpha, beta=beta),
                               rtol=1e-5)


def test_config_round_trip():
    layer = LocalResponseNormalization(depth=3, bias=1.5, alpha=3e-4, beta=0.6, name="norm")
    clone = LocalResponseNormalization.from_config(layer.get_config())
    assert (clone.depth, clone.bias, clone.alpha, clone.beta, clone.name) == (3, 1.5, 3e-4, 0.6, "norm")
    a = _activations((1, 4, 4, 9), seed=2)
    np.testing.assert_array_equal(np.asarray(clone(a)), np.asarray(layer(a)))


def test_saves_and_loads_in_a_keras_file_with_safe_mode(tmp_path):
    inputs = keras.Input((4, 4, 9))
    model = keras.Model(inputs, LocalResponseNormalization(depth=3, name="norm")(inputs))
    model.save(tmp_path / "lrn.keras")
    loaded = keras.saving.load_model(tmp_path / "lrn.keras", safe_mode=True)
    assert isinstance(loaded.get_layer("norm"), LocalResponseNormalization)
    assert loaded.get_layer("norm").depth == 3
    a = _activations((2, 4, 4, 9), seed=3)
    np.testing.assert_array_equal(np.asarray(loaded(a)), np.asarray(model(a)))


@pytest.mark.parametrize("depth", [0, -1, 2, 4, 2.5])
def test_a_depth_that_is_not_a_positive_odd_integer_is_refused(depth):
    with pytest.raises(ValueError, match=f"odd.*Received: depth={depth}"):
        LocalResponseNormalization(depth=depth)


def test_the_keras_ops_formula_that_jax_and_pytorch_run_is_the_papers_too():
    from keras_cnns.layers.lrn import local_response_normalization

    for shape, seed in (((2, 6, 5, 16), 0), ((3, 4, 4, 3), 1)):
        a = _activations(shape, seed=seed)
        np.testing.assert_allclose(np.asarray(local_response_normalization(a)), paper_lrn(a), rtol=1e-5)
    a = _activations((1, 3, 3, 12), seed=2)
    np.testing.assert_allclose(np.asarray(local_response_normalization(a, depth=3, bias=1.0, alpha=1e-3, beta=0.5)),
                               paper_lrn(a, k=1.0, n=3, alpha=1e-3, beta=0.5), rtol=1e-5)


@pytest.mark.parametrize("policy, rtol", [("mixed_bfloat16", 2e-2), ("mixed_float16", 2e-3)])
def test_under_mixed_precision_it_returns_the_compute_dtype_and_the_papers_values(policy, rtol):
    # TensorFlow has no bfloat16 LRN kernel on a CPU (the call failed before), and its float16 kernel gave NaN
    # for ReLU outputs of a few hundred: the layer normalises in float32 and casts back.
    a = _activations((2, 6, 5, 16), scale=300.0, seed=4)
    layer = LocalResponseNormalization(dtype=policy)
    b = layer(a)
    assert keras.backend.standardize_dtype(b.dtype) == policy.removeprefix("mixed_")
    b = np.asarray(keras.ops.cast(b, "float32"))
    assert np.isfinite(b).all()
    np.testing.assert_allclose(b, paper_lrn(a), rtol=rtol)


def test_a_conv_and_lrn_net_trains_a_step_in_mixed_bfloat16():
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(8, 3, activation="relu", dtype="mixed_bfloat16")(inputs)
    h = LocalResponseNormalization(dtype="mixed_bfloat16")(h)
    outputs = keras.layers.Dense(2, activation="softmax", dtype="float32")(keras.layers.Flatten()(h))
    model = keras.Model(inputs, outputs)
    model.compile("sgd", "sparse_categorical_crossentropy")
    loss = model.train_on_batch(_activations((4, 8, 8, 3), scale=50.0, seed=5), np.array([0, 1, 0, 1]))
    assert np.isfinite(loss)


def test_float64_gives_the_papers_values_to_float64_round_off():
    a = _activations((2, 3, 3, 12), seed=6).astype("float64")
    b = LocalResponseNormalization(dtype="float64")(a)
    assert keras.backend.standardize_dtype(b.dtype) == "float64"
    np.testing.assert_allclose(np.asarray(b), paper_lrn(a), rtol=1e-12)
