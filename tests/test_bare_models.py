"""A model trained elsewhere: a .keras or .tflite file with no metadata.json beside it classifies with
--labels FILE, its preprocessing read from its input shape (size and channels, pixels scaled to [0, 1]),
after a one-line warning."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = ("circle", "square", "star")


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """A tiny 8x8 grey classifier saved as a .keras file and converted to a .tflite file, each alone in its
    folder; an image; a labels file; the model's own probabilities for that image scaled to [0, 1]."""
    import keras
    import tensorflow as tf

    base = tmp_path_factory.mktemp("bare")
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    os.makedirs(base / "k")
    model.save(base / "k" / "theirs.keras")
    model.export(str(base / "sm"), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(base / "sm"))
    os.makedirs(base / "t")
    (base / "t" / "theirs.tflite").write_bytes(converter.convert())
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(pixels).save(base / "item.png")
    (base / "labels.txt").write_text("\n".join(CLASSES) + "\n")
    expected = model.predict(pixels[None, ..., None].astype(np.float32) / 255.0, verbose=0)[0]
    return base, expected


@pytest.mark.parametrize("artifact", ["k/theirs.keras", "t/theirs.tflite"])
def test_a_bare_model_file_classifies_with_labels(bare, artifact):
    base, expected = bare
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)
    done = subprocess.run([sys.executable, os.path.join(ROOT, "apps", "classify.py"), str(base / "item.png"),
                           "--model", str(base / artifact), "--labels", str(base / "labels.txt"), "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    warning = [line for line in done.stderr.splitlines() if line.startswith("classify.py")]
    assert len(warning) == 1 and "no metadata.json" in warning[0] and "8x8x1" in warning[0], done.stderr
    top = json.loads(done.stdout)[0]["top"]
    assert [e["class"] for e in top] == [CLASSES[i] for i in np.argsort(-expected, kind="stable")]
    np.testing.assert_allclose([e["probability"] for e in top], np.sort(expected)[::-1], atol=1e-4)


def test_numbered_classes_without_labels_and_a_wrong_count_refused(bare, tmp_path):
    from keras_cnns import inference

    base, _ = bare
    warned = []
    predictor = inference.load(str(base / "k" / "theirs.keras"), warn=warned.append)
    assert predictor.class_names == ["0", "1", "2"] and len(warned) == 1
    assert predictor.preprocessing.size == (8, 8) and predictor.preprocessing.channels == 1
    (tmp_path / "two.txt").write_text("a\nb\n")
    with pytest.raises(inference.ModelSourceError, match="2 class name.*3 outputs"):
        inference.load(str(base / "t" / "theirs.tflite"), labels=str(tmp_path / "two.txt"), warn=warned.append)
