"""apps/classify.py and keras_cnns.inference: every image format and mode the issue names, every bad input
(one line on stderr, exit code 2, no traceback, the other images still classified), every model source."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import _fixture_models as fm
from keras_cnns import inference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSIFY = os.path.join(ROOT, "apps", "classify.py")


def run_classify(*args, env=None):
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(env or {}))
    return subprocess.run([sys.executable, CLASSIFY, *args], capture_output=True, text=True, env=full_env,
                          timeout=300)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return fm.train_small_cnn(str(tmp_path_factory.mktemp("small_cnn")), n_train=4000)


@pytest.fixture(scope="module")
def predictor(model_dir):
    return inference.load(model_dir)


@pytest.fixture(scope="module")
def samples():
    images, labels = fm.fashion_mnist("t10k", 8)
    return images, labels


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory, samples):
    """Eight Fashion-MNIST test images, one per format/mode the issue lists."""
    d = tmp_path_factory.mktemp("images")
    grey = [Image.fromarray(im[..., 0]) for im in samples[0]]
    grey[0].save(d / "0_grey.png")
    grey[1].convert("RGB").save(d / "1_rgb.jpg", quality=95)
    grey[2].save(d / "2_grey.bmp")
    grey[3].convert("P").save(d / "3_palette.gif")
    grey[4].convert("RGB").save(d / "4_rgb.webp", lossless=True)
    rgba = grey[5].convert("RGBA")
    rgba.putalpha(255)
    rgba.save(d / "5_rgba.png")
    grey[6].convert("CMYK").save(d / "6_cmyk.jpg", quality=95)
    Image.fromarray(samples[0][7][..., 0].astype(np.uint16) * 257).save(d / "7_16bit.png")
    return d


def test_every_format_and_mode_decodes_to_the_same_pixels(image_dir, samples):
    for path, expected in zip(inference.list_images([str(image_dir)]), samples[0]):
        image = inference.read_image(path)
        grey = image if image.shape[-1] == 1 else np.round(image.astype(float).mean(-1, keepdims=True))
        tolerance = 12 if path.endswith(".jpg") else 0  # JPEG is lossy
        assert grey.shape == (28, 28, 1), path
        assert np.abs(grey.astype(int) - expected.astype(int)).max() <= tolerance, path


def test_16_bit_image_is_scaled_not_clipped(tmp_path):
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "white.png")
    Image.fromarray(np.full((4, 4), 32896, np.uint16)).save(tmp_path / "grey.png")
    assert inference.read_image(tmp_path / "white.png").max() == 255
    assert inference.read_image(tmp_path / "grey.png").max() == 128


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(np.zeros((10, 30, 3), np.uint8))  # 30 wide, 10 high
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image.save(tmp_path / "rotated.jpg", exif=exif)
    assert inference.read_image(tmp_path / "rotated.jpg").shape == (30, 10, 3)


@pytest.mark.parametrize("pixels", [1200 * 1000, 3000 * 3000])
def test_decompression_bomb_is_refused(tmp_path, pixels):
    # Just over the limit and far over it (where Pillow's own check would warn, then raise): both refused.
    Image.new("L", (pixels // 1000, 1000)).save(tmp_path / "bomb.png")
    pillows_limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(inference.ImageError, match="larger than the limit"):
        inference.read_image(tmp_path / "bomb.png", max_pixels=1_000_000)
    assert Image.MAX_IMAGE_PIXELS == pillows_limit  # Pillow's process-wide limit is never touched


def test_classify_gives_probabilities_best_first(predictor, samples):
    results = predictor.classify(list(samples[0]), top=3)
    keras_top1 = predictor.predict(predictor.preprocess(list(samples[0]))).argmax(-1)
    assert [r[0]["index"] for r in results] == list(keras_top1)
    for entries in results:
        probs = [e["probability"] for e in entries]
        assert probs == sorted(probs, reverse=True) and 0 <= probs[-1] <= probs[0] <= 1
        assert entries[0]["class"] == fm.CLASS_NAMES[entries[0]["index"]]


def test_rbf_model_reports_distances_and_smallest_wins(tmp_path, samples):
    rbf = inference.load(fm.rbf_model(str(tmp_path / "rbf")))
    raw = rbf.predict(rbf.preprocess(list(samples[0][:4])))
    for row, entries in zip(raw, rbf.classify(list(samples[0][:4]), top=10)):
        assert entries[0]["index"] == int(np.argmin(row))
        assert np.allclose([e["distance"] for e in entries], np.sort(row), rtol=1e-5)
        expected = np.exp(-row) / np.exp(-row).sum()  # softmax of the negative distances
        assert np.allclose([e["probability"] for e in entries], np.sort(expected)[::-1], atol=1e-6)
    spec = importlib.util.spec_from_file_location("classify_app", CLASSIFY)
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    assert "distance" in app.format_text("x.png", entries, "rbf_distances")


def test_registry_name_and_default_model_come_from_saved_models(tmp_path, model_dir, monkeypatch):
    shutil.copytree(model_dir, tmp_path / "lenet5-fashion_mnist")
    monkeypatch.setenv(inference.SAVED_MODELS_ENV, str(tmp_path))
    by_name = inference.load("lenet5")
    default = inference.load()
    assert by_name.source == default.source == str(tmp_path / "lenet5-fashion_mnist" / "model.keras")


# ---------------------------------------------------------------- the command line, good and bad inputs

@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, model_dir, image_dir):
    """One call with a directory of good images and every kind of bad file."""
    bad = tmp_path_factory.mktemp("bad")
    (bad / "not_an_image.png").write_text("this is text, not a PNG")
    (bad / "empty.jpg").write_bytes(b"")
    png = (image_dir / "0_grey.png").read_bytes()
    (bad / "truncated.png").write_bytes(png[: len(png) // 2])
    Image.new("L", (3000, 1000)).save(bad / "bomb.png")
    args = [str(image_dir), str(bad / "missing.jpg"), str(bad / "not_an_image.png"), str(bad / "empty.jpg"),
            str(bad / "truncated.png"), str(bad / "bomb.png"), "--model", model_dir, "--json", "--top", "3",
            "--max-pixels", "1000000"]
    return run_classify(*args)


@pytest.mark.parametrize("name, why", [
    ("missing.jpg", "no such file"), ("not_an_image.png", "not an image"), ("empty.jpg", "empty"),
    ("truncated.png", "truncated"), ("bomb.png", "larger than the limit")])
def test_bad_input_is_one_line_exit_2_no_traceback(mixed_run, name, why):
    assert mixed_run.returncode == 2
    assert "Traceback" not in mixed_run.stderr
    lines = [line for line in mixed_run.stderr.splitlines() if name in line]
    assert len(lines) == 1 and why in lines[0], mixed_run.stderr


def test_other_images_are_still_classified(mixed_run, predictor, image_dir):
    records = json.loads(mixed_run.stdout)
    paths = inference.list_images([str(image_dir)])
    assert [r["path"] for r in records] == paths
    expected = predictor.classify([inference.read_image(p) for p in paths], top=3)
    assert [[e["class"] for e in r["top"]] for r in records] == [[e["class"] for e in x] for x in expected]


def test_text_output_names_classes_with_percentages(model_dir, image_dir):
    done = run_classify(str(image_dir / "0_grey.png"), str(image_dir / "1_rgb.jpg"), "--model", model_dir,
                        "--top", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("0_grey.png") and lines[3].endswith("1_rgb.jpg") and len(lines) == 6
    assert all(line.rstrip().endswith("%") for line in lines[1:3])


def test_unknown_model_name(image_dir):
    done = run_classify(str(image_dir / "0_grey.png"), "--model", "lenet99")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Unknown model 'lenet99'" in done.stderr


def test_model_without_trained_weights_prints_the_training_command(image_dir, tmp_path):
    done = run_classify(str(image_dir / "0_grey.png"), "--model", "inception",
                        env={inference.SAVED_MODELS_ENV: str(tmp_path)})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "googlenet has no trained weights" in done.stderr
    assert "python apps/train.py --model googlenet --dataset fashion_mnist" in done.stderr
