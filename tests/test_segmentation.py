"""Segmentation: FCN training on the scenes through fit(), its metrics against NumPy, and apps/segment.py."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import keras_cnns
from keras_cnns import training
from keras_cnns.data import scenes
from keras_cnns.data.segmentation import load_segmentation
from keras_cnns.tasks import segmentation as seg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEGMENT = os.path.join(ROOT, "apps", "segment.py")


def test_iou_of_a_hand_counted_example():
    labels = np.array([[0, 0, 1, 1], [0, 2, 2, 1]])
    predicted = np.array([[0, 1, 1, 1], [0, 2, 0, 1]])
    matrix = seg.confusion_matrix(labels, predicted, 3)
    assert matrix.tolist() == [[2, 1, 0], [0, 3, 0], [1, 0, 1]]
    result = seg.summarize(matrix, ["background", "a", "b"])
    # IoU: background 2/(3+3-2)=0.5, a 3/(4+3-3)=0.75, b 1/(1+2-1)=0.5
    assert result["per_class_iou"] == {"background": 0.5, "a": 0.75, "b": 0.5}
    assert result["mean_iou"] == pytest.approx((0.5 + 0.75 + 0.5) / 3)
    assert result["pixel_accuracy"] == pytest.approx(6 / 8)


def test_a_class_in_neither_labels_nor_predictions_is_left_out_of_the_mean():
    result = seg.summarize(seg.confusion_matrix([0, 1], [0, 1], 3), ["bg", "a", "b"])
    assert result["per_class_iou"]["b"] is None and result["mean_iou"] == 1.0


def test_the_error_split_fixes_the_extent_or_the_classes_with_the_truth():
    labels = np.array([[0, 1, 1, 2]])
    # pixel 0: background called class 2 (extent error); pixel 1: item 1 called background (extent error),
    # though class 1 is its best item class; pixel 2: item 1 called 2 (class error); pixel 3: right
    probabilities = np.array([[[.4, .1, .5], [.6, .3, .1], [.1, .2, .7], [.1, .1, .8]]])
    split = seg.error_split(labels, probabilities)
    assert split["predicted"].tolist() == [[2, 0, 2, 2]]
    assert split["true_extent"].tolist() == [[0, 1, 2, 2]]       # only the class confusion at pixel 2 is left
    assert split["true_classes"].tolist() == [[2, 0, 1, 2]]      # only the two extent errors are left
    with pytest.raises(ValueError, match="Received: probabilities"):
        seg.error_split(labels, probabilities[0])


def test_the_keras_mean_iou_metric_agrees_with_the_confusion_matrix():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, (2, 9, 7))
    probabilities = rng.random((2, 9, 7, 5)).astype("float32")
    metric = seg.compile_metrics(5)[1]
    metric.update_state(labels, probabilities)
    expected = seg.summarize(seg.confusion_matrix(labels, probabilities.argmax(-1), 5), list("abcde"))
    assert float(metric.result()) == pytest.approx(expected["mean_iou"], abs=1e-6)


def test_the_mirror_average_puts_each_pixels_mirrored_output_back_in_place():
    def column(x):       # the column index at every pixel: mirrored and put back, column j averages j and W-1-j
        return np.broadcast_to(np.arange(x.shape[2], dtype=np.float32)[None, None, :, None], x.shape[:3] + (2,))

    def per_pixel(x):    # a function of each pixel alone gives what it gave without the mirror
        return np.concatenate([x, -x], -1)

    np.testing.assert_array_equal(seg.mirror_average(column, np.zeros((3, 4, 7, 1))), np.full((3, 4, 7, 2), 3.0))
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 1)).astype(np.float32)
    np.testing.assert_allclose(seg.mirror_average(per_pixel, x), per_pixel(x), atol=1e-7)


def test_the_mirror_average_reuses_a_plain_output_it_is_given_and_predicts_only_the_mirror_images():
    calls = []

    def column(x):
        calls.append(x.copy())
        return np.broadcast_to(np.arange(x.shape[2], dtype=np.float32)[None, None, :, None], x.shape[:3] + (2,))

    x = np.random.default_rng(1).normal(size=(2, 4, 7, 1)).astype(np.float32)
    plain = column(x)
    calls.clear()
    np.testing.assert_array_equal(seg.mirror_average(column, x, plain=plain), np.full((2, 4, 7, 2), 3.0))
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], x[:, :, ::-1])


def test_masks_are_written_as_8_bit_class_indices(tmp_path):
    mask = np.array([[0, 3], [10, 1]], np.uint8)
    seg.write_mask(mask, tmp_path / "m.png")
    with Image.open(tmp_path / "m.png") as image:
        assert image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), mask)


@pytest.fixture(scope="module")
def trained_fcn(tmp_path_factory):
    """FCN-8s (slim) trained for three short epochs on 48 scenes: enough to see the loss fall."""
    out = tmp_path_factory.mktemp("fcn")
    source = load_segmentation("fashion_mnist_scenes", counts={"train": 48, "validation": 16, "test": 16})
    result = training.fit("fcn8s_vgg16_slim", source, recipe="fast", epochs=3, batch_size=16, output_dir=str(out),
                          verbose=0, log=lambda *_: None)
    return result


@pytest.mark.slow
def test_a_short_fcn_training_lowers_the_loss_and_writes_a_segmentation_model(trained_fcn):
    losses = [row["loss"] for row in trained_fcn.history]
    assert losses[-1] < losses[0]
    meta = trained_fcn.metadata
    assert meta["task"] == "segmentation" and meta["class_names"] == list(scenes.SCENE_CLASSES)
    assert meta["input_shape"] == [None, None, 1]
    assert 0.0 <= meta["test_mean_iou"] <= 1.0 and meta["test_pixel_accuracy"] > 0.5  # background dominates
    for name in ("model.keras", "metadata.json", "history.csv", "curves.png"):
        assert os.path.isfile(os.path.join(trained_fcn.output_dir, name))
    assert trained_fcn.model.input_shape == (None, None, None, 1)


def _segment(*args, cwd):
    return subprocess.run([sys.executable, SEGMENT, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.slow
def test_segment_app_writes_masks_of_each_images_size_and_reports_bad_inputs(trained_fcn, tmp_path):
    scene = scenes.generate("test", 1)[0]
    Image.fromarray(scene.image[..., 0]).save(tmp_path / "scene.png")
    Image.fromarray(scene.image[..., 0]).resize((75, 51)).convert("RGBA").save(tmp_path / "odd.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    proc = _segment(str(tmp_path / "scene.png"), str(tmp_path / "broken.jpg"), str(tmp_path / "odd.png"),
                    "--model", trained_fcn.output_dir, "--output", str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert proc.returncode == 2
    assert "broken.jpg" in proc.stderr and "Traceback" not in proc.stderr
    records = {os.path.basename(r["path"]): r for r in json.loads(proc.stdout)}
    assert set(records) == {"scene.png", "odd.png"}
    for name, size in (("scene.png", (128, 128)), ("odd.png", (51, 75))):
        record = records[name]
        with Image.open(record["mask"]) as mask:
            assert mask.mode == "L" and mask.size == size[::-1]
            assert np.asarray(mask).max() < len(scenes.SCENE_CLASSES)
        assert os.path.isfile(record["overlay"])
        assert sum(record["pixels"].values()) == size[0] * size[1]
        assert set(record["pixels"]) <= set(scenes.SCENE_CLASSES)


@pytest.mark.slow
def test_the_shipped_fcn8s_is_segment_apps_default_and_labels_test_scenes(tmp_path):
    test = scenes.generate("test", 8)
    paths = scenes.save_images(tmp_path, test)
    proc = _segment(*paths, "--output", str(tmp_path / "out"), "--json", cwd=tmp_path)  # no --model
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    with open(os.path.join(ROOT, "saved_models", "fcn8s_vgg16_quarter-fashion_mnist_scenes", "metadata.json")) as f:
        shipped = json.load(f)
    predicted = np.stack([np.asarray(Image.open(r["mask"])) for r in records])
    result = seg.summarize(seg.confusion_matrix(test.masks, predicted, 11), list(scenes.SCENE_CLASSES))
    # the shipped model's test-split mean IoU is 0.762 over 2,000 scenes (its metadata); eight scenes scatter
    assert shipped["model"] == "fcn8s_vgg16_quarter" and shipped["test_mean_iou"] > 0.74
    assert shipped["augment"] == "redraw" and shipped["backbone_weights"].endswith("vgg16_quarter/model.keras")
    assert result["pixel_accuracy"] > 0.9 and result["per_class_iou"]["background"] > 0.95
    assert result["mean_iou"] > 0.4


@pytest.mark.slow
def test_segment_app_refuses_a_classifier_and_a_missing_model_in_one_line(tmp_path):
    lenet = os.path.join(ROOT, "saved_models", "lenet5-fashion_mnist")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "a.png")
    for model, words in ((lenet, "not a segmentation model"), (str(tmp_path / "nothing.keras"), "no such")):
        proc = _segment(str(tmp_path / "a.png"), "--model", model, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert words in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_fcn_exports_with_a_dynamic_size_and_its_tflite_gives_the_keras_masks(trained_fcn, tmp_path):
    from keras_cnns import export, inference

    # The trained model's metadata with seeded random weights and unit-scale scores: masks that vary over the
    # image (the briefly trained FCN paints every pixel one class), so the comparison means something.
    keras.utils.set_random_seed(0)
    model = keras_cnns.get_model("fcn8s_vgg16_slim", input_shape=(None, None, 1), num_classes=11)
    for layer in model.layers:
        if layer.name.startswith("score"):
            kernel, bias = layer.get_weights()
            layer.set_weights([np.random.default_rng(2).normal(0, 1.0, kernel.shape), np.zeros_like(bias)])
    model.save(tmp_path / "model.keras")
    (tmp_path / "metadata.json").write_text(json.dumps(trained_fcn.metadata))
    saved = export.export_model(str(tmp_path), "savedmodel", output=str(tmp_path / "sm"), parity_images=8)
    lite = export.export_model(str(tmp_path), "tflite", output=str(tmp_path / "tfl"), parity_images=8)
    int8 = export.export_model(str(tmp_path), "tflite", quantize="int8", calibration=8,
                               output=str(tmp_path / "int8"), parity_images=8)
    assert lite["mobile"] is None  # an FCN's .tflite already takes any size
    assert saved["report"]["top1_agreement"] == 1.0 and lite["report"]["top1_agreement"] >= 0.99
    # int8 on random weights with near-tied scores agrees poorly by nature; here it must convert and run at
    # any size (its agreement on a trained FCN is benchmarks/segmentation.py's to measure).
    assert int8["report"]["n_images"] == 8
    reference = inference.load(str(tmp_path))
    runners = [inference.load(saved["artifact"]), inference.load(lite["artifact"])]
    image = scenes.generate("test", 1).images[0]
    for size in ((128, 128), (77, 101)):
        pixels = np.asarray(Image.fromarray(image[..., 0]).resize(size[::-1]))[..., None]
        expected, _ = seg.segment(reference, pixels)
        assert expected.shape == size and len(np.unique(expected)) > 1
        mirrored, probabilities = seg.segment(reference, pixels, mirror=True)   # --mirror: two passes averaged
        _, plain = seg.segment(reference, pixels)
        _, of_mirror = seg.segment(reference, np.ascontiguousarray(pixels[:, ::-1]))
        np.testing.assert_allclose(probabilities, (plain + of_mirror[:, ::-1]) / 2, atol=1e-6)
        for runner in runners:
            mask, _ = seg.segment(runner, pixels)
            assert mask.shape == size
            assert np.mean(mask == expected) >= 0.99, runner.kind
            assert np.mean(seg.segment(runner, pixels, mirror=True)[0] == mirrored) >= 0.99, runner.kind
        assert seg.segment(inference.load(int8["artifact"]), pixels)[0].shape == size
    Image.fromarray(image[..., 0]).save(tmp_path / "scene.png")
    proc = _segment(str(tmp_path / "scene.png"), "--model", lite["artifact"], "--output", str(tmp_path / "o"),
                    "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with Image.open(json.loads(proc.stdout)[0]["mask"]) as mask:
        np.testing.assert_array_equal(np.asarray(mask), seg.segment(reference, image)[0])
