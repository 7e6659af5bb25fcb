"""fit(): outputs, metadata, resume bookkeeping, NaN stop, seeds. Tiny data (a few hundred Fashion-MNIST
images) and LeNet-5, one or two epochs each."""

import csv
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import keras_cnns
from keras_cnns import data, metadata, training


@pytest.fixture(scope="module")
def small_source(small_fashion_arrays):
    train, test, names = small_fashion_arrays()
    return data.from_arrays(train, test, names, name="fashion_mnist_small")


@pytest.fixture(scope="module")
def two_epochs(small_source, tmp_path_factory):
    out = tmp_path_factory.mktemp("lenet5")
    result = training.fit("lenet5", small_source, epochs=2, batch_size=64, recipe="fast", output_dir=str(out),
                          verbose=0, log=lambda *_: None)
    return result, str(out)


def test_fit_writes_the_model_directory(two_epochs):
    result, out = two_epochs
    for name in ("model.keras", "metadata.json", "history.csv", "curves.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert os.path.isdir(os.path.join(out, "checkpoints"))


def test_metadata_has_every_key_of_the_schema(two_epochs):
    _, out = two_epochs
    meta = metadata.read(out)
    schema = {"format", "model", "dataset", "class_names", "input_shape", "output", "preprocessing", "recipe",
              "epochs", "test_accuracy", "test_top5", "seed", "versions", "git_commit"}
    assert schema <= set(meta)
    assert meta["model"] == "lenet5" and meta["output"] == "rbf_distances"
    assert meta["class_names"][0] == "T-shirt/top" and len(meta["class_names"]) == 10
    assert meta["input_shape"] == [32, 32, 1]
    assert data.Preprocessing.from_dict(meta["preprocessing"]).resize == "pad"
    assert 0.0 <= meta["test_top5"] <= 1.0 and meta["test_accuracy"] <= meta["test_top5"]
    assert set(meta["versions"]) == {"keras_cnns", "tensorflow", "keras"}


def test_history_has_one_row_per_epoch(two_epochs):
    result, out = two_epochs
    rows = training.read_history_csv(os.path.join(out, "history.csv"))
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} <= set(rows[0])
    assert rows == result.history


def test_saved_model_is_the_inference_model_and_reloads(two_epochs):
    result, out = two_epochs
    model, meta = training.evaluate.load_model_dir(out)
    x = np.random.default_rng(0).normal(size=(3, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), result.model.predict(x, verbose=0), rtol=1e-5)


def test_rerunning_a_finished_run_trains_nothing_more(two_epochs, small_source):
    _, out = two_epochs
    again = training.fit("lenet5", small_source, epochs=2, batch_size=64, recipe="fast", output_dir=out,
                         verbose=0, log=lambda *_: None)
    assert again.resumed_from == 2
    assert len(training.read_history_csv(os.path.join(out, "history.csv"))) == 2


def test_resuming_with_more_epochs_appends_and_keeps_the_best_value(two_epochs, small_source):
    _, out = two_epochs
    state_path = os.path.join(out, "checkpoints", "state.json")
    with open(state_path) as f:
        best_before = json.load(f)["best"]
    result = training.fit("lenet5", small_source, epochs=3, batch_size=64, recipe="fast", output_dir=out,
                          verbose=0, log=lambda *_: None)
    assert result.resumed_from == 2
    with open(os.path.join(out, "history.csv")) as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1, 2, 3]
    with open(state_path) as f:
        best_after = json.load(f)["best"]
    # the best-model checkpoint remembers its value: it only moves if epoch 3 beat it
    third = result.history[2]["val_accuracy"]
    assert best_after["value"] == max(best_before["value"], third)
    assert os.path.isfile(os.path.join(out, "checkpoints", best_after["weights"]))


def test_a_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(small_source, tmp_path):
    out = str(tmp_path / "nan")
    training.fit("lenet5_modern", small_source, epochs=1, batch_size=64, recipe="fast", output_dir=out,
                 verbose=0, log=lambda *_: None, limit=128)
    # The same run resumed with a step size that blows the weights up at once.
    exploding = training.Recipe(family="lenet", name="fast", optimizer="adam", learning_rate=1e30,
                                epochs=2, batch_size=64)
    with pytest.raises(training.TrainingDiverged, match="loss became .*last good checkpoint \\(epoch 1\\)"):
        training.fit("lenet5_modern", small_source, epochs=2, batch_size=64, recipe=exploding, output_dir=out,
                     verbose=0, log=lambda *_: None, limit=128)
    with open(os.path.join(out, "checkpoints", "state.json")) as f:
        state = json.load(f)
    assert state["epochs_done"] == 1
    assert os.path.isfile(os.path.join(out, "checkpoints", state["weights"]))
    assert len(training.read_history_csv(os.path.join(out, "history.csv"))) == 1


def test_a_checkpoint_of_another_model_is_refused(two_epochs, small_source):
    _, out = two_epochs
    with pytest.raises(ValueError, match="another run"):
        training.fit("lenet5_modern", small_source, epochs=1, batch_size=64, recipe="fast", output_dir=out,
                     verbose=0, log=lambda *_: None)


def test_the_same_seed_gives_the_same_weights(small_source, tmp_path):
    weights = []
    for run in ("a", "b"):
        result = training.fit("lenet5_modern", small_source, epochs=1, batch_size=64, recipe="fast",
                              output_dir=str(tmp_path / run), seed=3, verbose=0, log=lambda *_: None, limit=256)
        weights.append(result.model.get_weights())
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    other = training.fit("lenet5_modern", small_source, epochs=1, batch_size=64, recipe="fast",
                         output_dir=str(tmp_path / "c"), seed=4, verbose=0, log=lambda *_: None, limit=256)
    assert any(not np.array_equal(a, b) for a, b in zip(weights[0], other.model.get_weights()))


def test_steps_per_execution_runs_the_same_steps_to_the_same_weights(small_source, tmp_path):
    # 256 images at batch 64: 4 steps an epoch, so 3 a call leaves a last call of 1
    results = [training.fit("lenet5_modern", small_source, epochs=2, batch_size=64, recipe="fast", seed=3,
                            output_dir=str(tmp_path / str(spe)), steps_per_execution=spe, verbose=0,
                            log=lambda *_: None, limit=256) for spe in (1, 3)]
    for a, b in zip(*(r.model.get_weights() for r in results)):
        np.testing.assert_array_equal(a, b)
    assert [r.metadata["steps_per_execution"] for r in results] == [1, 3]
    assert [len(r.history) for r in results] == [2, 2]
    assert results[0].history[-1]["loss"] == results[1].history[-1]["loss"]


def test_a_run_trains_its_models_steps_per_execution_unless_told_and_says_so():
    import importlib
    fit_module = importlib.import_module("keras_cnns.training.fit")  # the module; training.fit is its function
    lines = []
    run = fit_module.resolve_run("lenet5_modern", log=lines.append)
    assert run.steps_per_execution == keras_cnns.get_spec("lenet5_modern").steps_per_execution == 8
    assert [line for line in lines if line.startswith("Steps per execution: 8, lenet5_modern's default")]
    lines.clear()
    assert fit_module.resolve_run("lenet5_modern", steps_per_execution=1, log=lines.append).steps_per_execution == 1
    assert fit_module.resolve_run("resnet50", log=lines.append).steps_per_execution == 1
    assert not [line for line in lines if line.startswith("Steps per execution")]  # nothing to say at 1


def test_the_zoo_trains_several_steps_a_call_only_where_the_speed_benchmark_measured_it_faster():
    # benchmarks/results/speed-amx-b32, -b128 and speed-spe-amx-b32, -b128 (docs/training.md, "Steps per
    # execution"): on the AMX Xeon 8 steps a call trained lenet5 1.06-1.18x and lenet5_modern 1.09-1.30x faster;
    # resnet20's step (30-50 ms) gained 0.99-1.05x but once (1.18x), so it and every larger model keep Keras' 1
    named = {name: keras_cnns.get_spec(name).steps_per_execution for name in keras_cnns.list_models()
             if keras_cnns.get_spec(name).steps_per_execution != 1}
    assert named == {"lenet5": 8, "lenet5_modern": 8}


def test_a_model_registers_only_a_positive_steps_per_execution():
    with pytest.raises(ValueError, match="steps_per_execution must be a positive integer. Received: "
                                         "steps_per_execution=0"):
        keras_cnns.registry.register_model("not_registered", family="lenet", paper="-", input_shape=(28, 28, 1),
                                           min_input_size=28, steps_per_execution=0)
    assert "not_registered" not in keras_cnns.list_models()


@pytest.mark.parametrize("spe", [0, -2, 1.5, True])
def test_steps_per_execution_must_be_a_positive_integer(small_source, spe):
    with pytest.raises(ValueError, match=f"Received: steps_per_execution={spe!r}"):
        training.fit("lenet5", small_source, epochs=1, steps_per_execution=spe)


def test_evaluate_gives_per_class_accuracy_and_a_confusion_matrix(two_epochs, tmp_path):
    _, out = two_epochs
    labels = np.array([0, 0, 1, 2, 2, 2])
    scores = np.eye(3)[[0, 1, 1, 2, 2, 0]]
    summary = training.summarize(labels, scores, ["a", "b", "c"])
    assert summary["accuracy"] == pytest.approx(4 / 6)
    assert summary["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": pytest.approx(2 / 3)}
    assert summary["confusion_matrix"][2] == [1, 0, 2]
    png = str(tmp_path / "cm.png")
    training.plot_confusion_matrix(summary["confusion_matrix"], summary["class_names"], png)
    assert os.path.getsize(png) > 0


def test_unknown_model_or_precision_raise_value_errors(small_source):
    with pytest.raises(ValueError, match="Unknown model"):
        training.fit("lenet6", small_source, epochs=1)
    with pytest.raises(ValueError, match="Received: precision='float8'"):
        training.fit("lenet5", small_source, epochs=1, precision="float8")


def test_onednn_amp_trains_a_float32_model_through_the_graph_rewrite_only_while_it_trains(small_source, tmp_path,
                                                                                           monkeypatch):
    import importlib

    fit_module = importlib.import_module("keras_cnns.training.fit")  # the module; training.fit is its function
    option = fit_module.GRAPH_REWRITES["onednn_amp"]
    seen, train_epochs = [], fit_module._train_epochs

    def spy(*args, **kwargs):
        seen.append(tf.config.optimizer.get_experimental_options().get(option, False))
        return train_epochs(*args, **kwargs)

    monkeypatch.setattr(fit_module, "_train_epochs", spy)
    monkeypatch.setattr(fit_module, "onednn_enabled", lambda: True)  # the pass is a no-op where oneDNN is off
    result = training.fit("lenet5_modern", small_source, epochs=1, batch_size=64, recipe="fast",
                          precision="onednn_amp", output_dir=str(tmp_path), verbose=0, log=lambda *_: None,
                          limit=256)
    assert seen == [True] and not tf.config.optimizer.get_experimental_options().get(option, False)
    assert np.isfinite(result.history[0]["loss"]) and result.metadata["precision"] == "onednn_amp"
    assert result.model.dtype_policy.name == "float32" and {w.dtype for w in result.model.weights} == {"float32"}
    monkeypatch.setattr(fit_module, "onednn_enabled", lambda: False)
    with pytest.raises(ValueError, match="TF_ENABLE_ONEDNN_OPTS=1"):
        training.fit("lenet5_modern", small_source, epochs=1, precision="onednn_amp", output_dir=str(tmp_path / "b"))


def test_every_registered_model_has_both_recipes():
    for name in keras_cnns.list_models(task="classification") + keras_cnns.list_models(task="segmentation"):
        spec = keras_cnns.get_spec(name)
        for recipe in ("paper", "fast"):
            assert training.get_recipe(spec, recipe).epochs > 0


def test_googlenet_trains_with_aux_losses_weighted_03_and_saves_without_aux_heads(tmp_path):
    rng = np.random.default_rng(0)
    source = data.from_arrays((rng.integers(0, 255, (64, 40, 40, 3)), rng.integers(0, 10, 64)),
                              (rng.integers(0, 255, (32, 40, 40, 3)), rng.integers(0, 10, 32)), name="noise")
    result = training.fit("googlenet", source, recipe="fast", epochs=1, batch_size=32, input_shape=(96, 96, 3),
                          augment=None, output_dir=str(tmp_path), verbose=0, log=lambda *_: None)
    row = result.history[0]
    assert row["loss"] == pytest.approx(row["predictions_loss"] + 0.3 * (row["aux1_loss"] + row["aux2_loss"]),
                                        rel=1e-3)
    model, _ = training.evaluate.load_model_dir(str(tmp_path))
    assert model.output_names == ["predictions"] and not any("aux" in layer.name for layer in model.layers)
