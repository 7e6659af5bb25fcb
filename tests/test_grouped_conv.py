"""keras_cnns.layers.grouped_conv.Conv2D against keras.layers.Conv2D: AlexNet's two towers (Krizhevsky et al.
2012, Figure 2) as one split convolution per group, with Keras's weights and results, and no XLA function."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cnns
from keras_cnns.layers import grouped_conv


def _pair(groups=2, in_channels=8, filters=6, **kwargs):
    """Keras's layer and ours, built on the same input, ours holding Keras's weights."""
    theirs = keras.layers.Conv2D(filters, 3, groups=groups, padding="same", **kwargs)
    ours = grouped_conv.Conv2D(filters, 3, groups=groups, padding="same", **kwargs)
    theirs.build((None, 7, 7, in_channels))
    ours.build((None, 7, 7, in_channels))
    ours.set_weights(theirs.get_weights())
    return theirs, ours


def _x(shape=(2, 7, 7, 8), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _graph_def(layer):
    """The GraphDef of `layer` traced on (None, 7, 7, 8) inputs, its functions in its library."""
    return tf.function(layer).get_concrete_function(tf.TensorSpec((None, 7, 7, 8))).graph.as_graph_def()


@pytest.mark.parametrize("groups, strides", [(2, 1), (2, 2), (4, 1)])
def test_outputs_and_gradients_are_keras_grouped_convolutions(groups, strides):
    theirs, ours = _pair(groups=groups, filters=8, strides=strides, activation="relu")
    x = tf.constant(_x())
    results = []
    for layer in (theirs, ours):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * _x(y.shape, seed=1))             # a weighted sum: every output counts
        results.append([y, *tape.gradient(loss, [x, layer.kernel, layer.bias])])
    for a, b in zip(*results):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-5)


def test_each_group_reads_only_its_own_input_maps():
    _, ours = _pair(groups=2)
    x = _x()
    changed = x.copy()
    changed[..., 4:] += 1.0                                    # the second tower's input maps only
    before, after = np.asarray(ours(x)), np.asarray(ours(changed))
    np.testing.assert_array_equal(after[..., :3], before[..., :3])
    assert not np.allclose(after[..., 3:], before[..., 3:])


def test_the_traced_graph_has_one_convolution_per_group_and_no_xla_function():
    _, ours = _pair(groups=2)
    graph = _graph_def(ours)
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    assert sum(n.op == "Conv2D" for n in nodes) == 2
    compiled = [f.signature.name for f in graph.library.function if f.attr["_XlaMustCompile"].b]
    compiled += [n.name for n in nodes if n.attr["_XlaMustCompile"].b]
    assert not compiled


def test_keras_own_grouped_layer_does_take_the_xla_function():
    # The reason for the layer: if Keras stops compiling grouped convolutions, this test says so.
    theirs, _ = _pair(groups=2)
    graph = _graph_def(theirs)
    assert any(f.attr["_XlaMustCompile"].b for f in graph.library.function) or any(
        n.attr["_XlaMustCompile"].b for n in graph.node)


def test_mixed_bfloat16_gives_bfloat16_outputs_close_to_float32():
    theirs, _ = _pair(groups=2)
    ours = grouped_conv.Conv2D(6, 3, groups=2, padding="same", dtype="mixed_bfloat16")
    ours.build((None, 7, 7, 8))
    ours.set_weights(theirs.get_weights())
    y = ours(_x())
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    np.testing.assert_allclose(np.asarray(tf.cast(y, "float32")), np.asarray(theirs(_x())), rtol=5e-2, atol=5e-2)


def test_weights_saved_with_keras_layer_load_into_ours_and_back(tmp_path):
    def model(layer_class):
        inputs = keras.Input((7, 7, 8))
        return keras.Model(inputs, layer_class(6, 3, groups=2, name="conv2")(inputs))

    keras_model, our_model = model(keras.layers.Conv2D), model(grouped_conv.Conv2D)
    keras_model.save_weights(tmp_path / "keras.weights.h5")
    our_model.load_weights(tmp_path / "keras.weights.h5")
    np.testing.assert_allclose(np.asarray(our_model(_x())), np.asarray(keras_model(_x())), rtol=1e-5, atol=1e-5)
    our_model.save(tmp_path / "ours.keras")
    loaded = keras.saving.load_model(tmp_path / "ours.keras", safe_mode=True)
    assert type(loaded.get_layer("conv2")) is grouped_conv.Conv2D
    np.testing.assert_array_equal(np.asarray(loaded(_x())), np.asarray(our_model(_x())))


def test_alexnet_builds_its_grouped_towers_with_it():
    model = keras_cnns.get_model("alexnet", include_top=False)
    grouped = {layer.name for layer in model.layers if getattr(layer, "groups", 1) > 1}
    assert grouped == {"conv2", "conv4", "conv5"}
    assert all(type(model.get_layer(name)) is grouped_conv.Conv2D for name in grouped)
