"""The mobile TFLite variant (uint8 pixels in, probabilities out, labels.txt beside it) of the shipped
LeNet-5 and the TensorFlow-free runner keras_cnns.lite: run where `import tensorflow` and `import keras`
fail, its top-1 agrees with the Keras model on 1,000 Fashion-MNIST test images (float32: all of them;
int8: at least 99%)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import _fixture_models as fm
from keras_cnns import export, inference, metadata
from keras_cnns.data.preprocessing import Preprocessing
from keras_cnns.images import to_model_pixels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "saved_models", "lenet5-fashion_mnist")
N_TEST = 1000

# Run first in the subprocess: any import of tensorflow or keras (or a submodule) raises ImportError.
NO_TENSORFLOW = """
import sys
class _Blocked:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError(f"{name} is blocked: this process must run without TensorFlow")
sys.meta_path.insert(0, _Blocked())
"""


def run_without_tensorflow(code, *args):
    return subprocess.run([sys.executable, "-c", NO_TENSORFLOW + code, *args], capture_output=True, text=True,
                          cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2"), timeout=300)


@pytest.fixture(scope="module")
def mobile(tmp_path_factory):
    """quantize -> the mobile .tflite of the shipped LeNet-5 (int8 calibrated on 100 training images
    preprocessed as in training, through keras_cnns.data)."""
    out = tmp_path_factory.mktemp("mobile")
    return {q: export.export_model(SHIPPED, "tflite", quantize=q, output=str(out / q), parity_images=50)["mobile"]
            for q in ("none", "int8")}


@pytest.fixture(scope="module")
def test_pngs(tmp_path_factory):
    """(paths of the first 1,000 Fashion-MNIST test images as 28x28 grey PNGs, the Keras model's top-1)."""
    raw, _ = fm.fashion_mnist("t10k", N_TEST)
    directory = tmp_path_factory.mktemp("pngs")
    paths = []
    for i, image in enumerate(raw):
        paths.append(str(directory / f"{i:04d}.png"))
        Image.fromarray(image[..., 0]).save(paths[-1])
    keras_model = inference.load(SHIPPED)
    distances = keras_model.predict(np.asarray(keras_model.preprocessing.apply(raw), np.float32))
    keras_top1 = distances.argmin(-1)  # LeNet-5's RBF units: the smallest distance wins
    return paths, keras_top1


def test_runner_without_tensorflow_agrees_with_keras_on_1000_test_images(mobile, test_pngs, tmp_path):
    paths, keras_top1 = test_pngs
    list_file = tmp_path / "paths.json"
    list_file.write_text(json.dumps({"paths": paths, "models": mobile}))
    done = run_without_tensorflow("""
import json
from keras_cnns import lite
job = json.load(open(sys.argv[1]))
top1 = {q: [r[0]["index"] for r in lite.LiteClassifier(path).classify_files(job["paths"], top=1)]
        for q, path in job["models"].items()}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print(json.dumps({"top1": top1, "loaded": loaded}))
""", str(list_file))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["loaded"] == []
    float32 = np.mean(np.asarray(result["top1"]["none"]) == keras_top1)
    int8 = np.mean(np.asarray(result["top1"]["int8"]) == keras_top1)
    assert float32 == 1.0, float32
    assert int8 >= 0.99, int8


def test_runner_cli_without_tensorflow_prints_json_and_reports_a_bad_file(mobile, test_pngs, tmp_path):
    paths, keras_top1 = test_pngs
    bad = tmp_path / "not_an_image.png"
    bad.write_text("hello")
    done = run_without_tensorflow("import runpy; sys.argv[0] = 'lite'; "
                                  "runpy.run_module('keras_cnns.lite', run_name='__main__')",
                                  paths[0], str(bad), paths[1], "--model", mobile["none"], "--json", "--top", "3")
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("keras_cnns.lite:")]
    assert len(errors) == 2 and "not_an_image.png: not an image" in errors[0] and "Traceback" not in done.stderr
    records = json.loads(done.stdout)
    assert [r["path"] for r in records] == [paths[0], paths[1]]
    assert [r["top"][0]["index"] for r in records] == list(keras_top1[:2])
    assert all(len(r["top"]) == 3 and r["top"][0]["probability"] >= r["top"][1]["probability"] for r in records)


def test_mobile_variant_takes_uint8_pixels_and_has_the_models_labels(mobile):
    meta = metadata.read(SHIPPED)
    for path in mobile.values():
        directory = os.path.dirname(path)
        with open(os.path.join(directory, "labels.txt"), encoding="utf-8") as f:
            assert f.read().splitlines() == meta["class_names"]
        mobile_meta = metadata.read(directory)
        assert mobile_meta["output"] == "probabilities" and mobile_meta["export"]["variant"] == "mobile"
        predictor = inference.load(path)
        assert predictor.takes_pixels
        details = predictor.interpreter.get_input_details()[0]
        assert details["dtype"] == np.uint8 and list(details["shape"]) == [1, 32, 32, 1]


def test_int8_mobile_variant_is_full_integer_but_for_the_negation_before_the_softmax(mobile):
    report = json.load(open(os.path.join(os.path.dirname(os.path.dirname(mobile["int8"])), "parity.json")))
    # LeNet-5's probabilities are softmax(-distances); TFLite runs that NEG in float32 between a DEQUANTIZE
    # and a QUANTIZE. The pixel normalisation is folded into the first convolution.
    assert report["mobile"]["float_ops"] == ["NEG"]
    assert report["mobile"]["size_bytes"] < 0.4 * os.path.getsize(
        os.path.join(os.path.dirname(os.path.dirname(mobile["none"])), "mobile", "model.tflite"))


@pytest.mark.parametrize("shape", [(28, 28, 1), (40, 20, 1), (17, 31, 3)])
def test_to_model_pixels_pads_like_the_training_preprocessing(shape):
    image = np.random.default_rng(0).integers(1, 256, size=shape, dtype=np.uint8)
    prep = Preprocessing(size=(32, 32), channels=1, resize="pad")
    ours = to_model_pixels(image, prep.size, 1, "pad")
    theirs = prep.resize_images(prep.convert_channels(tf.constant(image))).numpy()
    assert ours.shape == theirs.shape == (32, 32, 1) and ours.dtype == np.uint8
    assert np.array_equal(ours == 0, theirs == 0)  # the same canvas, the image at the same place
    if shape[0] <= 32 and shape[1] <= 32:  # no resampling: exactly training's pixels
        assert np.array_equal(ours, theirs)


def test_runner_and_tflite_predictor_bring_catalog_photos_to_fashion_mnists_convention(mobile, tmp_path):
    """Issue 13: a dark item on white, off-centre, JPEG: inverted and cropped to the item before the model."""
    import importlib.util

    from keras_cnns import lite
    from keras_cnns.images import DATASET_CONVENTIONS

    spec = importlib.util.spec_from_file_location("bench_catalog_photos",
                                                  os.path.join(ROOT, "benchmarks", "catalog_photos.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    images, labels = fm.fashion_mnist("t10k", 100)
    photos = bench.catalog_photos(images[..., 0], str(tmp_path), seed=2)
    runner = lite.LiteClassifier(mobile["none"])
    assert runner.convention == DATASET_CONVENTIONS["fashion_mnist"]
    predictor = inference.load(mobile["none"])
    assert predictor.takes_pixels and predictor.convention == runner.convention
    for classify in (runner.classify, predictor.classify):
        right = np.mean([r[0]["index"] == y for r, y in zip(classify(photos, top=1), labels)])
        plain = np.mean([r[0]["index"] == y for r, y in zip(classify(list(images), top=1), labels)])
        assert right >= plain - 0.08 and right > 0.7
    runner.convention = None
    assert np.mean([r[0]["index"] == y for r, y in zip(runner.classify(photos, top=1), labels)]) < 0.4
