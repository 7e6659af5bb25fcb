"""keras_cnns.export and apps/export.py: every export path on a small trained model, each with its parity
report against the issue's targets, and the exports run by apps/classify.py with the Keras top-1."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import _fixture_models as fm
from keras_cnns import export, inference, registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_app(name, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "apps", name), *args], capture_output=True,
                          text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return fm.train_small_cnn(str(tmp_path_factory.mktemp("small_cnn")), n_train=4000)


@pytest.fixture(scope="module")
def test_set(model_dir):
    raw, labels = fm.fashion_mnist("t10k", 400)
    return raw, np.asarray(fm.preprocessing().apply(raw), np.float32), labels


@pytest.fixture(scope="module")
def exports(model_dir, test_set, tmp_path_factory):
    """format-quantize -> export_model result, made once."""
    out = tmp_path_factory.mktemp("exports")
    _, images, labels = test_set
    cache = {}

    def get(fmt, quantize="none"):
        key = f"{fmt}-{quantize}"
        if key not in cache:
            cache[key] = export.export_model(model_dir, fmt, quantize=quantize, output=str(out / key),
                                             test_images=(images, labels), representative_images=images[:100],
                                             parity_images=len(images))
        return cache[key]
    return get


def test_savedmodel_float32_parity(exports):
    report = exports("savedmodel")["report"]
    assert report["top1_agreement"] == 1.0 and report["max_abs_diff"] <= 1e-4 and report["meets_target"]


def test_savedmodel_serving_signature_has_named_inputs_and_outputs(exports):
    loaded = tf.saved_model.load(exports("savedmodel")["artifact"])
    serving = loaded.signatures["serving_default"]
    assert list(serving.structured_input_signature[1]) == ["images"]
    assert list(serving.structured_outputs) == ["probabilities"]


def test_savedmodel_uint8_signature_does_the_preprocessing(exports, test_set, model_dir):
    raw, images, _ = test_set
    loaded = tf.saved_model.load(exports("savedmodel")["artifact"])
    out = loaded.signatures["classify_images"](images=tf.constant(raw[:16]))
    keras_probs = inference.load(model_dir).predict(images[:16])
    assert np.allclose(out["probabilities"].numpy(), keras_probs, atol=1e-5)
    assert list(out["class_index"].numpy()) == list(keras_probs.argmax(-1))


def test_tflite_float32_parity(exports):
    report = exports("tflite")["report"]
    assert report["runtime"] == "LiteRT interpreter"
    assert report["top1_agreement"] == 1.0 and report["max_abs_diff"] <= 1e-4 and report["meets_target"]


def test_tflite_float16_halves_the_file(exports):
    f16, f32 = exports("tflite", "float16")["report"], exports("tflite")["report"]
    assert f16["top1_agreement"] >= 0.999 and f16["meets_target"]
    assert f16["size_bytes"] < 0.75 * f32["size_bytes"]


def test_tflite_dynamic_range(exports):
    report = exports("tflite", "dynamic")["report"]
    assert report["top1_agreement"] >= 0.99 and report["accuracy_drop_points"] <= 1.0


def test_the_shipped_lenet5_in_int8_meets_the_target_of_99_percent_agreement(tmp_path):
    """The int8 target held at its real value, on a model trained to the end (the shipped LeNet-5, 90% accurate)
    and 1,000 Fashion-MNIST test images; the small fixture below sits too close to its decision boundaries."""
    shipped = os.path.join(ROOT, "saved_models", "lenet5-fashion_mnist")
    report = export.export_model(shipped, "tflite", quantize="int8", output=str(tmp_path / "int8"),
                                 parity_images=1000, mobile=False)["report"]
    assert report["n_images"] == 1000
    assert report["top1_agreement"] >= 0.99, report
    assert report["accuracy_drop_points"] <= 1.0, report


def test_tflite_int8_agrees_and_keeps_accuracy(exports):
    # The target (99% agreement) is asserted on the shipped LeNet-5 above (99.6% on 1,000 images); this
    # fixture (2 epochs on 4,000 images, ~77% accurate) sits close to many decision boundaries and measures
    # ~98% on 400 images, so here it checks the export path at 97%.
    report = exports("tflite", "int8")["report"]
    assert report["top1_agreement"] >= 0.97, report
    assert report["accuracy_drop_points"] <= 1.0, report
    assert report["float_ops"] == []  # every op of this CNN has an int8 kernel


def test_int8_calibrates_on_the_training_data_through_the_data_api(model_dir):
    from keras_cnns import data

    meta = inference.load(model_dir).metadata
    images, described = export.calibration_images(meta, fm.preprocessing(), n=8)
    expected = np.asarray(data.representative_images(data.load_source("fashion_mnist"), fm.preprocessing(),
                                                     n=8, seed=0))
    assert images.shape == (8, 32, 32, 1) and np.array_equal(images, expected)
    assert "fashion_mnist training images" in described


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed")
def test_onnx_parity(exports):
    report = exports("onnx")["report"]
    assert report["converter"] in ("tf2onnx", "keras") and report["runtime"] == "onnxruntime"
    assert report["top1_agreement"] == 1.0 and report["max_abs_diff"] <= 1e-4


def test_parity_report_is_written_beside_the_artifact(exports):
    result = exports("tflite")
    with open(os.path.join(result["output"], "parity.json")) as f:
        report = json.load(f)
    for key in ("max_abs_diff", "top1_agreement", "size_bytes", "latency_ms", "n_images", "accuracy_keras"):
        assert key in report
    assert report["n_images"] == 400 and report["size_bytes"] == os.path.getsize(result["artifact"])
    with open(os.path.join(result["output"], "parity.md")) as f:
        assert "top-1 agreement" in f.read()


@pytest.mark.parametrize("fmt", ["tflite", "savedmodel", "tflite-mobile"])
def test_classify_runs_the_export_with_the_keras_top1(exports, model_dir, test_set, tmp_path, fmt):
    raw = test_set[0][:6]
    paths = []
    for i, image in enumerate(raw):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image[..., 0]).save(paths[-1])
    keras_top1 = inference.load(model_dir).predict(test_set[1][:6]).argmax(-1)
    artifact = exports("tflite")["mobile"] if fmt == "tflite-mobile" else exports(fmt)["artifact"]
    done = run_app("classify.py", *paths, "--model", artifact, "--json", "--top", "1")
    assert done.returncode == 0, done.stderr
    assert [r["top"][0]["index"] for r in json.loads(done.stdout)] == list(keras_top1)


def test_lrn_and_grouped_convolutions_export_to_tflite(tmp_path):
    model_dir = fm.lrn_grouped_model(str(tmp_path / "lrn"))
    images = np.random.default_rng(0).normal(size=(40, 32, 32, 3)).astype(np.float32)
    f32 = export.export_model(model_dir, "tflite", output=str(tmp_path / "f32"), test_images=images)
    assert f32["report"]["max_abs_diff"] <= 1e-4 and f32["report"]["top1_agreement"] == 1.0
    # TFLite has no int8 kernel for LOCAL_RESPONSE_NORMALIZATION: it runs in float32 between
    # DEQUANTIZE and QUANTIZE; the grouped convolution is an int8 CONV_2D.
    int8 = export.export_model(model_dir, "tflite", quantize="int8", output=str(tmp_path / "int8"),
                               test_images=images, representative_images=images)
    assert int8["report"]["float_ops"] == ["LOCAL_RESPONSE_NORMALIZATION"]
    assert int8["report"]["max_abs_diff"] < 0.05


@pytest.mark.parametrize("name", ["alexnet", "googlenet", "vgg11_lrn"])
def test_models_with_lrn_and_grouped_convolutions_run_in_litert_at_a_small_input(tmp_path, name):
    from keras_cnns import metadata
    from keras_cnns.data.preprocessing import Preprocessing

    shape = registry.get_spec(name).test_input_shape
    model = registry.get_model(name, input_shape=shape, num_classes=5)
    model.save(str(tmp_path / "model.keras"))
    prep = Preprocessing(size=shape[:2], channels=3)
    metadata.write(str(tmp_path), {"model": name, "dataset": "random", "class_names": list("abcde"),
                                   "input_shape": list(shape), "output": "probabilities",
                                   "preprocessing": prep.to_dict()})
    images = np.random.default_rng(0).uniform(size=(8,) + tuple(shape)).astype(np.float32)
    report = export.export_model(str(tmp_path), "tflite", output=str(tmp_path / "out"), test_images=images)["report"]
    assert report["top1_agreement"] == 1.0 and report["max_abs_diff"] <= 1e-4


def test_export_app_writes_artifact_and_report(model_dir, tmp_path):
    done = run_app("export.py", model_dir, "--format", "tflite", "--output", str(tmp_path),
                   "--parity-images", "50")
    assert done.returncode == 0, done.stderr
    assert os.path.isfile(tmp_path / "model.tflite") and os.path.isfile(tmp_path / "parity.md")
    assert os.path.isfile(tmp_path / "mobile" / "model.tflite") and os.path.isfile(tmp_path / "mobile" / "labels.txt")
    assert "top-1 agreement" in done.stdout


def test_export_app_refuses_quantizing_a_savedmodel(model_dir):
    done = run_app("export.py", model_dir, "--format", "savedmodel", "--quantize", "int8")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--quantize applies to --format tflite only" in done.stderr
