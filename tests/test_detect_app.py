"""apps/detect.py and the detector's SavedModel: boxes in the input image's pixels whatever its size and mode, the
JSON form of classify.py, bad inputs reported in one line, the same detections from the SavedModel export, and
(with the shipped detector) boxes on the items of a test scene."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from keras_cnns import metadata as md
from keras_cnns.data import scenes
from keras_cnns.registry import get_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "apps", "detect.py")


def run(*args):
    return subprocess.run([sys.executable, APP, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """A small detector with seeded weights in a model directory, as training.fit writes it (metadata.json)."""
    folder = tmp_path_factory.mktemp("frcnn")
    keras.utils.set_random_seed(0)
    model = get_model("frcnn_resnet_small", input_shape=(None, None, 1), num_classes=len(scenes.SCENE_CLASSES),
                      overrides={"score_threshold": 0.0})
    model.save(os.path.join(folder, md.MODEL_FILENAME))
    md.write(str(folder), {"model": "frcnn_resnet_small", "task": "detection", "dataset": "fashion_mnist_scenes",
                           "class_names": list(scenes.SCENE_CLASSES),
                           "input_shape": [None, None, 1], "output": "detections",
                           "preprocessing": scenes.scene_preprocessing().to_dict()})
    return model, str(folder)


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    """A test scene as a grey PNG, the same scene twice as large in RGB (nearest neighbour), and two bad inputs."""
    folder = tmp_path_factory.mktemp("images")
    scene = scenes.generate("test", 1).images[0]
    grey, big = os.path.join(folder, "scene.png"), os.path.join(folder, "scene_big.jpg")
    Image.fromarray(scene[..., 0]).save(grey)
    Image.fromarray(np.repeat(np.repeat(np.repeat(scene, 2, 0), 2, 1), 3, -1)).save(big.replace(".jpg", ".png"))
    text = os.path.join(folder, "notes.png")
    with open(text, "w") as f:
        f.write("not an image")
    return scene, grey, big.replace(".jpg", ".png"), text, os.path.join(folder, "missing.png")


def test_detect_app_gives_boxes_in_each_images_own_pixels_and_reports_bad_inputs(detector, scene_files, tmp_path):
    from keras_cnns.tasks import detection

    model, folder = detector
    scene, grey, big, text, missing = scene_files
    result = run(grey, text, big, missing, "--model", folder, "--threshold", "0", "--output", str(tmp_path),
                 "--json")
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("detect.py:")]
    assert len(errors) == 3 and "notes.png" in errors[0] and "missing.png" in errors[1]
    assert "2 of 4" in errors[2]
    records = json.loads(result.stdout)
    assert [r["path"] for r in records] == [grey, big]
    small, large = records[0]["detections"], records[1]["detections"]
    assert os.path.isfile(records[0]["annotated"]) and records[0]["annotated"].endswith("scene.boxes.png")
    assert small and [d["score"] for d in small] == sorted((d["score"] for d in small), reverse=True)
    assert set(small[0]) == {"box", "class", "score"} and small[0]["class"] in scenes.SCENE_CLASSES[1:]
    # the model's own boxes on the 128x128 scene ...
    x = np.asarray(scenes.scene_preprocessing().apply(scene), np.float32)[None]
    own = detection.unbatch({k: np.asarray(v) for k, v in model(x).items()})[0]
    np.testing.assert_allclose([d["box"] for d in small], own["boxes"][np.argsort(-own["scores"], kind="stable")],
                               atol=1e-3)
    # ... and twice as large on the 256x256 RGB copy: boxes in the input's own pixels
    np.testing.assert_allclose([d["box"] for d in large], 2 * np.array([d["box"] for d in small]), atol=0.05)
    assert [d["class"] for d in large] == [d["class"] for d in small]


def test_savedmodel_export_gives_the_same_detections(detector, scene_files, tmp_path):
    from keras_cnns import export

    _, folder = detector
    _, grey, _, _, _ = scene_files
    result = export.export_model(folder, "savedmodel", output=str(tmp_path / "export"))
    assert result["report"]["same_detections"] and result["report"]["max_abs_box_difference"] < 1e-3
    with pytest.raises(ValueError, match="CombinedNonMaxSuppression"):
        export.export_model(folder, "tflite", output=str(tmp_path / "lite"))
    from_keras = run(grey, "--model", folder, "--threshold", "0", "--output", str(tmp_path / "a"), "--json")
    from_saved = run(grey, "--model", result["artifact"], "--threshold", "0", "--output", str(tmp_path / "b"),
                     "--json")
    assert from_keras.returncode == 0 and from_saved.returncode == 0, from_saved.stderr
    a, b = json.loads(from_keras.stdout)[0]["detections"], json.loads(from_saved.stdout)[0]["detections"]
    assert [d["class"] for d in a] == [d["class"] for d in b]
    np.testing.assert_allclose([d["box"] for d in a], [d["box"] for d in b], atol=1e-3)


def test_a_classifier_is_refused_in_one_line(tmp_path):
    result = run(os.path.join(tmp_path, "x.png"), "--model", "lenet5")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


SHIPPED = os.path.join(ROOT, "saved_models", "frcnn_resnet_small-fashion_mnist_scenes")


@pytest.mark.skipif(not os.path.isfile(os.path.join(SHIPPED, md.MODEL_FILENAME)), reason="no shipped detector")
def test_the_shipped_detector_finds_the_items_of_test_scenes(tmp_path):
    from keras_cnns import inference
    from keras_cnns.tasks import detection

    predictor = inference.load(SHIPPED)
    s = scenes.generate("test", 20)
    hits = total = 0
    for i in range(len(s)):
        scene = s[i]
        found = detection.detect(predictor, scene.image, threshold=0.5)
        for box, label in zip(scene.boxes, scene.classes):
            total += 1
            hits += any(d["index"] == label and scenes.box_iou([d["box"]], [box])[0, 0] >= 0.5 for d in found)
    # the shipped model (test mAP@0.5 0.85 on 2,000 scenes) finds 39 of these 50 items with the right class at
    # IoU >= 0.5 and score >= 0.5; a broken export, box convention or class order finds almost none
    assert hits >= 0.7 * total
