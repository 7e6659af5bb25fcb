"""LeNet-5 as LeCun et al. (1998) describe it, and the pieces it is made of."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cnns
from keras_cnns import losses
from keras_cnns.layers import EuclideanRBF, SparseConv2D, Subsampling
from keras_cnns.layers.activations import scaled_tanh
from keras_cnns.models.lenet import C3_TABLE, digit_bitmaps, digit_prototypes

# Table I of the paper, typed from the paper: row = S2 map, column = C3 map, "X" = connected.
PAPER_TABLE_I = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""


@pytest.fixture(scope="module")
def lenet5():
    return keras_cnns.get_model("lenet5")


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_the_layers_have_the_papers_parameter_counts(lenet5):
    counts = {layer.name: layer.count_params() for layer in lenet5.layers}
    paper = {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164, "output": 840}
    assert {name: counts[name] for name in paper} == paper
    assert lenet5.count_params() == 60840


def test_only_the_840_rbf_prototypes_are_fixed(lenet5):
    fixed = lenet5.non_trainable_weights
    assert [w.path for w in fixed] == ["output/prototypes"]
    assert int(np.prod(fixed[0].shape)) == 840


def test_the_maps_have_the_papers_sizes(lenet5):
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in lenet5.layers}
    assert shapes["c1"] == (28, 28, 6) and shapes["s2"] == (14, 14, 6)
    assert shapes["c3"] == (10, 10, 16) and shapes["s4"] == (5, 5, 16)
    assert shapes["c5"] == (1, 1, 120) and shapes["f6"] == (84,) and shapes["output"] == (10,)


def test_c3_reads_exactly_the_s2_maps_of_table_i(lenet5):
    rows = [line for line in PAPER_TABLE_I.split() if line]
    paper = [{s2 for s2 in range(6) if rows[s2][c3] == "X"} for c3 in range(16)]
    assert sum(len(maps) for maps in paper) == 60
    assert [set(maps) for maps in lenet5.get_layer("c3").connections] == paper
    assert [set(maps) for maps in C3_TABLE] == paper


def test_c3_has_1516_parameters_stored_compactly(lenet5):
    c3 = lenet5.get_layer("c3")
    assert tuple(c3.kernel.shape) == (5, 5, 60) and tuple(c3.bias.shape) == (16,)
    assert c3.count_params() == 60 * 25 + 16 == 1516


def test_a_c3_map_gets_exactly_zero_gradient_from_the_s2_maps_it_does_not_read(lenet5):
    c3 = lenet5.get_layer("c3")
    s2 = tf.constant(_rng(1).normal(size=(2, 14, 14, 6)).astype("float32"))
    for c3_map, read in enumerate(c3.connections):
        with tf.GradientTape() as tape:
            tape.watch(s2)
            out = c3(s2)[..., c3_map]
        grad = tape.gradient(out, s2).numpy()
        per_s2_map = np.abs(grad).sum(axis=(0, 1, 2))
        for s2_map in range(6):
            if s2_map in read:
                assert per_s2_map[s2_map] > 0, (c3_map, s2_map)
            else:
                assert per_s2_map[s2_map] == 0.0, (c3_map, s2_map)


def test_sparse_conv_equals_a_numpy_convolution_over_the_table():
    table = [(0, 2), (1,), (0, 1, 2)]
    layer = SparseConv2D(table, kernel_size=3, activation="tanh")
    x = _rng(2).normal(size=(2, 6, 7, 3)).astype("float32")
    y = layer(x).numpy()
    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    expected = np.zeros((2, 4, 5, 3))
    pair = 0
    for j, row in enumerate(table):
        for i in row:
            for r in range(4):
                for c in range(5):
                    expected[:, r, c, j] += np.sum(x[:, r:r + 3, c:c + 3, i] * kernel[:, :, pair], axis=(1, 2))
            pair += 1
    np.testing.assert_allclose(y, np.tanh(expected + bias), rtol=1e-5, atol=1e-5)


def test_subsampling_is_coefficient_times_the_2x2_sum_plus_bias_then_squashed():
    layer = Subsampling(2, activation=scaled_tanh,
                        coefficient_initializer=keras.initializers.RandomUniform(-1, 1, seed=3),
                        bias_initializer=keras.initializers.RandomUniform(-1, 1, seed=4))
    x = _rng(3).normal(size=(2, 6, 6, 4)).astype("float32")
    y = layer(x).numpy()
    sums = x.reshape(2, 3, 2, 3, 2, 4).sum(axis=(2, 4))
    expected = 1.7159 * np.tanh(2.0 / 3.0 * (sums * layer.coefficient.numpy() + layer.bias.numpy()))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert layer.count_params() == 2 * 4


def test_the_scaled_tanh_maps_plus_and_minus_one_to_themselves():
    values = np.asarray(scaled_tanh(np.array([-1.0, 0.0, 1.0], dtype="float32")))
    np.testing.assert_allclose(values, [-1.0, 0.0, 1.0], atol=1e-4)


def test_rbf_outputs_squared_euclidean_distances_to_the_prototypes():
    prototypes = np.where(_rng(4).random((5, 12)) > 0.5, 1.0, -1.0)
    x = _rng(5).normal(size=(3, 12)).astype("float32")
    y = EuclideanRBF(prototypes)(x).numpy()
    expected = ((x[:, None, :] - prototypes[None]) ** 2).sum(-1)
    np.testing.assert_allclose(y, expected, rtol=1e-5)


def test_the_bitmaps_are_ten_distinct_7x12_pictures_of_plus_and_minus_one():
    bitmaps = digit_bitmaps()
    assert bitmaps.shape == (10, 12, 7)
    assert set(np.unique(bitmaps)) == {-1.0, 1.0}
    flat = bitmaps.reshape(10, -1)
    assert len({tuple(row) for row in flat}) == 10


def test_the_prototypes_are_the_bitmaps_and_stay_fixed(lenet5):
    np.testing.assert_array_equal(lenet5.get_layer("output").prototypes.numpy(),
                                  digit_bitmaps().reshape(10, 84))


def test_the_smallest_distance_wins_when_f6_draws_a_digit():
    model = keras_cnns.get_model("lenet5")
    rbf = model.get_layer("output")
    distances = rbf(digit_bitmaps().reshape(10, 84)).numpy()
    assert list(np.argmin(distances, axis=1)) == list(range(10))
    assert np.all(np.diag(distances) == 0)


@pytest.mark.parametrize("num_classes", [7, 10, 13])
def test_other_class_counts_use_the_first_digits_then_fixed_codes(num_classes):
    prototypes = digit_prototypes(num_classes)
    assert prototypes.shape == (num_classes, 84)
    first = min(num_classes, 10)
    np.testing.assert_array_equal(prototypes[:first], digit_bitmaps().reshape(10, 84)[:first])
    assert set(np.unique(prototypes)) == {-1.0, 1.0}
    assert len({tuple(p) for p in prototypes}) == num_classes
    np.testing.assert_array_equal(prototypes, digit_prototypes(num_classes))   # deterministic
    model = keras_cnns.get_model("lenet5", num_classes=num_classes)
    np.testing.assert_array_equal(model.get_layer("output").prototypes.numpy(), prototypes)


def test_lenet5_takes_no_classifier_activation():
    with pytest.raises(ValueError, match="distances.*Received: classifier_activation='softmax'"):
        keras_cnns.get_model("lenet5", classifier_activation="softmax")


def test_lenet5_accepts_larger_inputs_and_names_its_minimum():
    assert keras_cnns.get_model("lenet5", input_shape=(36, 40, 1)).output.shape[-1] == 10
    with pytest.raises(ValueError, match="at least 32x32"):
        keras_cnns.get_model("lenet5", input_shape=(28, 28, 1))


def test_lenet5_modern_keeps_the_layout_with_relu_max_pooling_and_a_full_c3():
    model = keras_cnns.get_model("lenet5_modern")
    assert tuple(model.input.shape[1:]) == (28, 28, 1)
    assert model.get_layer("c3").count_params() == 16 * (6 * 25 + 1)
    assert isinstance(model.get_layer("s2"), keras.layers.MaxPooling2D)
    assert model.get_layer("output").activation is keras.activations.softmax
    assert model.get_layer("c5").output.shape[1:] == (1, 1, 120)


def test_f6_is_a_named_feature_map(lenet5):
    assert keras_cnns.feature_layers(lenet5)["f6"] == "f6"


def _toy_problem(n=64, classes=4, seed=6):
    rng = _rng(seed)
    y = rng.integers(0, classes, n)
    x = 0.3 * rng.normal(size=(n, 32, 32, 1)).astype("float32")
    for k in range(classes):   # each class has a bright bar in its own place
        x[y == k, 4 + 6 * k:8 + 6 * k, 8:24, 0] += 1.5
    return x, y


@pytest.mark.parametrize("loss", [losses.RBFEnergyLoss(), losses.RBFCrossEntropy()], ids=["energy", "softmax"])
def test_a_few_hundred_adam_steps_reduce_the_loss_on_a_toy_problem(loss):
    keras.utils.set_random_seed(0)
    x, y = _toy_problem()
    model = keras_cnns.get_model("lenet5", num_classes=4)
    model.compile(keras.optimizers.Adam(1e-3), loss=loss, metrics=[losses.RBFAccuracy()])
    before = model.evaluate(x, y, verbose=0, return_dict=True)
    model.fit(x, y, batch_size=16, epochs=50, verbose=0)   # 200 steps
    after = model.evaluate(x, y, verbose=0, return_dict=True)
    assert after["loss"] < 0.5 * before["loss"]
    assert after["accuracy"] > before["accuracy"] and after["accuracy"] >= 0.9


def test_the_energy_loss_is_eq_9_of_the_paper():
    distances = np.array([[3.0, 0.5, 7.0], [1.0, 2.0, 0.2]], dtype="float32")
    labels = np.array([1, 0])
    j = 2.0
    expected = [d[c] + np.log(np.exp(-j) + np.exp(-d).sum()) for d, c in zip(distances, labels)]
    got = losses.RBFEnergyLoss(j=j)(labels, distances).numpy()
    np.testing.assert_allclose(got, np.mean(expected), rtol=1e-6)
    np.testing.assert_array_equal(losses.rbf_accuracy(labels, distances).numpy(), [1.0, 0.0])


def test_losses_and_metric_survive_serialisation():
    for obj in (losses.RBFEnergyLoss(j=3.0), losses.RBFCrossEntropy(), losses.RBFAccuracy()):
        again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
        assert type(again) is type(obj) and again.get_config() == obj.get_config()
