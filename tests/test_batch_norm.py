"""keras_cnns.layers.BatchNormalization: Keras's BatchNormalization to round-off, through TensorFlow's fused kernel."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from keras_cnns.layers import batch_norm


def _pair(input_shape, seed=0, **kwargs):
    """A keras_cnns.layers.BatchNormalization and a keras.layers.BatchNormalization built on input_shape with the same
    non-trivial weights (gamma, beta, moving mean, moving variance)."""
    ours, theirs = batch_norm.BatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
    ours.build(input_shape)
    theirs.build(input_shape)
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(w.shape).astype("float32") for w in theirs.get_weights()]
    weights[-1] = np.abs(weights[-1]) + 0.5                      # the moving variance is last and positive
    theirs.set_weights(weights)
    ours.set_weights(weights)
    return ours, theirs


def _images(shape=(4, 5, 6, 3), seed=1):
    return tf.constant(np.random.default_rng(seed).normal(2.0, 3.0, shape).astype("float32"))


def _graph(layer, x, training):
    return tf.function(lambda t: layer(t, training=training)).get_concrete_function(x).graph


def _graph_ops(layer, x, training):
    return {op.type for op in _graph(layer, x, training).get_operations()}


def _activation_casts(layer, x):
    """The inference graph's Cast ops on a rank-4 tensor (the activations, not the per-channel vectors)."""
    return [op for op in _graph(layer, x, False).get_operations()
            if op.type == "Cast" and op.outputs[0].shape.rank == 4]


def test_it_is_a_keras_batch_normalization_with_the_same_weights():
    ours, theirs = _pair((None, 5, 6, 3), epsilon=1.001e-5)
    assert isinstance(ours, keras.layers.BatchNormalization)
    assert [w.path.split("/")[-1] for w in ours.weights] == [w.path.split("/")[-1] for w in theirs.weights]
    assert ours.count_params() == theirs.count_params() == 4 * 3


@pytest.mark.parametrize("training", [True, False])
def test_outputs_equal_keras_in_training_and_inference(training):
    ours, theirs = _pair((None, 5, 6, 3), epsilon=1.001e-5)
    x = _images()
    np.testing.assert_allclose(ours(x, training=training), theirs(x, training=training), rtol=1e-5, atol=1e-5)


def test_training_updates_the_moving_statistics_as_keras_does():
    """Keras updates the moving variance with the biased batch variance; the fused kernel returns the
    unbiased one, which the layer un-corrects."""
    ours, theirs = _pair((None, 5, 6, 3), momentum=0.9)
    start_mean, start_var = ours.moving_mean.numpy(), ours.moving_variance.numpy()
    x = _images()
    ours(x, training=True)
    flat = x.numpy().reshape(-1, 3)
    np.testing.assert_allclose(ours.moving_mean.numpy(), 0.9 * start_mean + 0.1 * flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(ours.moving_variance.numpy(), 0.9 * start_var + 0.1 * flat.var(0), rtol=1e-5)
    for _ in range(3):
        theirs(x, training=True)
    for _ in range(2):
        ours(x, training=True)
    np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.moving_variance.numpy(), rtol=1e-5)


def test_gradients_equal_keras():
    ours, theirs = _pair((None, 5, 6, 3), epsilon=1.001e-5)
    x = _images()
    upstream = tf.constant(np.random.default_rng(2).standard_normal(x.shape).astype("float32"))
    grads = []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * upstream)
        grads.append(tape.gradient(loss, [x, layer.gamma.value, layer.beta.value]))
    for g_ours, g_theirs in zip(*grads):
        np.testing.assert_allclose(g_ours, g_theirs, rtol=1e-4, atol=1e-4)


def test_the_fused_kernel_is_what_trains_on_tensorflow():
    ours, theirs = _pair((None, 5, 6, 3))
    x = _images()
    assert "FusedBatchNormV3" in _graph_ops(ours, x, True)
    assert "FusedBatchNormV3" not in _graph_ops(theirs, x, True)


@pytest.mark.parametrize("batch", [1, 4])
def test_inference_is_a_multiply_add_without_the_fused_kernel_and_equals_keras(batch):
    """An inference FusedBatchNormV3 is fused by Grappler's remapper under oneDNN with the convolution before
    it, which made resnet50's batch-1 predict 11.8x slower; the multiply-add gives Keras's values."""
    ours, theirs = _pair((None, 5, 6, 3), epsilon=1.001e-5)
    x = _images((batch, 5, 6, 3))
    ops = _graph_ops(ours, x, False)
    assert "FusedBatchNormV3" not in ops and {"Mul", "AddV2"} <= ops
    np.testing.assert_allclose(ours(x, training=False), theirs(x, training=False), rtol=1e-5, atol=1e-5)


def test_mixed_bfloat16_keeps_bfloat16_activations_and_float32_statistics():
    x = _images()
    ours, theirs = _pair((None, 5, 6, 3), dtype="mixed_bfloat16")
    y_ours, y_theirs = ours(tf.cast(x, "bfloat16"), training=True), theirs(tf.cast(x, "bfloat16"), training=True)
    assert y_ours.dtype == y_theirs.dtype == tf.bfloat16
    assert ours.moving_mean.dtype == "float32" and ours.gamma.dtype == "float32"
    np.testing.assert_allclose(tf.cast(y_ours, "float32"), tf.cast(y_theirs, "float32"), atol=0.05)
    np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.moving_mean.numpy(), rtol=1e-2, atol=1e-2)


def test_mixed_bfloat16_inference_stays_in_bfloat16_where_keras_casts_the_activations_to_float32():
    x = tf.cast(_images(), "bfloat16")
    ours, theirs = _pair((None, 5, 6, 3), dtype="mixed_bfloat16")
    casts = {name: _activation_casts(layer, x) for name, layer in (("ours", ours), ("keras", theirs))}
    assert casts["ours"] == [] and len(casts["keras"]) == 2                     # bfloat16 -> float32 -> bfloat16
    y_ours, y_theirs = ours(x, training=False), theirs(x, training=False)
    assert y_ours.dtype == tf.bfloat16
    np.testing.assert_allclose(tf.cast(y_ours, "float32"), tf.cast(y_theirs, "float32"), rtol=0.02, atol=0.05)


@pytest.mark.parametrize("case, shape, kwargs", [
    ("a 2-D input (after a Dense layer)", (8, 3), {}),
    ("channels first", (4, 3, 5, 6), {"axis": 1}),
    ("an epsilon below the fused kernel's minimum", (4, 5, 6, 3), {"epsilon": 1e-6}),
    ("no scale or centre", (4, 5, 6, 3), {"center": False, "scale": False}),
])
def test_where_the_kernel_does_not_apply_or_has_no_weights_the_results_are_still_keras(case, shape, kwargs):
    ours, theirs = _pair((None,) + shape[1:], **kwargs)
    x = _images(shape)
    for training in (True, False):
        np.testing.assert_allclose(ours(x, training=training), theirs(x, training=training),
                                   rtol=1e-5, atol=1e-5, err_msg=case)
    np.testing.assert_allclose(ours.moving_variance.numpy(), theirs.moving_variance.numpy(), rtol=1e-5)
    fused = "FusedBatchNormV3" in _graph_ops(ours, x, True)
    assert fused == (len(shape) == 4 and kwargs.get("axis", -1) == -1 and kwargs.get("epsilon", 1e-3) >= 1.001e-5)


def test_inference_takes_the_multiply_add_at_any_epsilon_where_training_falls_back_to_keras():
    """The fused kernel's epsilon floor bounds training only: with epsilon 1e-6 the mixed_bfloat16 inference
    still stays in bfloat16 (no rank-4 Cast, where Keras's layer has 2) and equals Keras's."""
    x = tf.cast(_images(), "bfloat16")
    ours, theirs = _pair((None, 5, 6, 3), dtype="mixed_bfloat16", epsilon=1e-6)
    assert not _activation_casts(ours, x)
    assert "FusedBatchNormV3" not in _graph_ops(ours, x, True)
    np.testing.assert_allclose(tf.cast(ours(x, training=False), "float32"),
                               tf.cast(theirs(x, training=False), "float32"), rtol=0.02, atol=0.05)


def test_a_few_sgd_steps_train_the_same_weights_as_keras(tmp_path):
    """Three momentum-SGD steps of a small conv net: the same weights and moving statistics either way."""
    def net(bn):
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inputs)
        x = keras.layers.ReLU()(bn(name="bn")(x))
        outputs = keras.layers.Dense(2, name="fc")(keras.layers.GlobalAveragePooling2D()(x))
        model = keras.Model(inputs, outputs)
        model.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        return model

    keras.utils.set_random_seed(0)
    ours = net(batch_norm.BatchNormalization)
    theirs = net(keras.layers.BatchNormalization)
    theirs.set_weights(ours.get_weights())
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((16, 8, 8, 3)).astype("float32"), rng.integers(0, 2, 16)
    for model in (ours, theirs):
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)      # 2 steps
        model.train_on_batch(x[:8], y[:8])                                      # a third
    for w_ours, w_theirs in zip(ours.get_weights(), theirs.get_weights()):
        np.testing.assert_allclose(w_ours, w_theirs, rtol=1e-4, atol=1e-5)
    path = tmp_path / "fused.keras"
    ours.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.get_layer("bn")) is batch_norm.BatchNormalization
    assert loaded.get_layer("bn").get_config() == ours.get_layer("bn").get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), ours.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_weights_saved_with_keras_layer_load_into_a_model_rebuilt_with_ours_and_back(tmp_path):
    """A .keras weights file names each layer's weights by its class name in snake case; the layer keeps Keras's
    class name so that a model rebuilt from code on loading (the shipped Faster R-CNN detector, saved before the
    layer existed) finds its batch norms' weights."""
    def net(bn):
        inputs = keras.Input((8, 8, 3))
        x = bn(name="bn1")(keras.layers.Conv2D(4, 3, use_bias=False, name="conv1")(inputs))
        x = bn(name="bn2")(keras.layers.Conv2D(4, 3, use_bias=False, name="conv2")(x))
        return keras.Model(inputs, x)

    keras.utils.set_random_seed(1)
    theirs = net(keras.layers.BatchNormalization)
    theirs.set_weights([np.random.default_rng(4).uniform(0.5, 1.5, w.shape).astype("float32")
                        for w in theirs.get_weights()])
    for source, target in ((theirs, net(batch_norm.BatchNormalization)), (net(batch_norm.BatchNormalization), theirs)):
        if source is not theirs:
            source.set_weights(theirs.get_weights())
        path = str(tmp_path / "source.weights.h5")
        source.save_weights(path)
        target.load_weights(path)
        for a, b in zip(source.get_weights(), target.get_weights()):
            np.testing.assert_array_equal(a, b)
