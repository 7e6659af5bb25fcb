"""Issue 13, item 1: photos as people take them. Fashion-MNIST is a light item on black that fills its 28x28
frame (Xiao et al. 2017); a catalog photo is a dark item on white with a margin. keras_cnns.images.to_convention
brings a photo to the training data's convention (invert a light background, crop to the item, square it), and
every predictor applies it before the usual preprocessing."""

import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from PIL import Image

import _fixture_models as fm
from keras_cnns import images as im
from keras_cnns import inference

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = os.path.join(ROOT, "saved_models", "lenet5-fashion_mnist")
FASHION = im.DATASET_CONVENTIONS["fashion_mnist"]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_catalog_photos",
                                                  os.path.join(ROOT, "benchmarks", "catalog_photos.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


# ------------------------------------------------------------------ the conversion on synthetic images

def _bright_block(h, w, top, left, size, value=200):
    image = np.zeros((h, w), np.uint8)
    image[top:top + size[0], left:left + size[1]] = value
    return image


def test_a_light_background_is_inverted_and_the_item_cropped_to_fill_the_frame():
    photo = 255 - _bright_block(120, 200, 10, 130, (40, 20))  # a dark 40x20 item near the top right
    out = im.to_convention(np.repeat(photo[..., None], 3, axis=-1), FASHION)
    assert out.shape == (28, 28, 1)
    rows, cols = np.nonzero(out[..., 0] > 100)
    assert rows.min() == 0 and rows.max() == 27  # the longer side fills the frame, as Fashion-MNIST's
    assert (cols.min() + cols.max()) / 2 == pytest.approx(13.5, abs=1)  # centred across
    assert 12 <= cols.max() - cols.min() + 1 <= 16  # aspect kept: 20/40 of 28
    assert out[0, 0, 0] == 0 and out[27, 0, 0] == 0  # the background is black


def test_a_dark_background_is_not_inverted_and_a_grey_background_is_levelled_to_black():
    dark = _bright_block(100, 100, 60, 5, (30, 15)) + 20  # a light 30x15 item on a dark grey (20) background
    out = im.to_convention(dark[..., None], FASHION)[..., 0]
    assert out.shape == (28, 28) and out.max() == 200 and out[0, 0] == 0


def test_an_image_already_in_the_convention_comes_out_unchanged():
    item = _bright_block(28, 28, 0, 8, (28, 12))  # fills the frame top to bottom, like a trouser
    assert np.array_equal(im.to_convention(item[..., None], FASHION), item[..., None])
    assert np.array_equal(im.to_convention(item[..., None], None), item[..., None])


def test_mnist_keeps_its_margin_and_a_blank_image_has_no_item_to_crop():
    photo = 255 - _bright_block(200, 200, 50, 50, (100, 50))
    out = im.to_convention(photo[..., None], im.DATASET_CONVENTIONS["mnist"])[..., 0]
    rows = np.nonzero(out > 100)[0]
    assert 3 <= rows.min() <= 5 and 22 <= rows.max() <= 24  # the middle 20 of 28
    blank = np.full((50, 60, 3), 250, np.uint8)
    assert im.to_convention(blank, FASHION).shape == (50, 60, 1)


def test_the_convention_is_recorded_for_fashion_mnist_and_derived_for_older_metadata():
    from keras_cnns import data

    assert data.from_arrays((np.zeros((2, 4, 4), np.uint8), np.zeros(2, int)),
                            (np.zeros((2, 4, 4), np.uint8), np.zeros(2, int)),
                            name="fashion_mnist").image_convention == FASHION
    assert data.from_arrays((np.zeros((2, 4, 4), np.uint8), np.zeros(2, int)),
                            (np.zeros((2, 4, 4), np.uint8), np.zeros(2, int))).image_convention is None
    with open(os.path.join(SHIPPED, "metadata.json")) as f:
        shipped = json.load(f)
    assert "image_convention" not in shipped and im.image_convention(shipped) == FASHION
    assert im.image_convention({"dataset": "cifar10"}) is None
    written = {"dataset": "x", "image_convention": im.DATASET_CONVENTIONS["mnist"]}
    assert im.image_convention(written) == im.DATASET_CONVENTIONS["mnist"]


# ------------------------------------------------------------------ the shipped model on catalog photos

@pytest.fixture(scope="module")
def sample():
    images, labels = fm.fashion_mnist("t10k", 200)
    with tempfile.TemporaryDirectory() as tmp:
        photos = _bench().catalog_photos(images[..., 0], tmp, seed=1)
    return images, labels, photos


def test_the_shipped_model_reads_catalog_photos_almost_as_well_as_the_test_images(sample):
    bench = _bench()
    images, labels, photos = sample
    predictor = inference.load(SHIPPED)
    assert predictor.convention == FASHION
    plain_off = bench.accuracy(predictor, list(images), labels, convert=False)
    plain_on = bench.accuracy(predictor, list(images), labels, convert=True)
    photos_off = bench.accuracy(predictor, photos, labels, convert=False)
    photos_on = bench.accuracy(predictor, photos, labels, convert=True)
    assert plain_on >= plain_off  # the test images are already in the convention: no drop
    assert plain_on - photos_on <= 0.08
    assert photos_on - photos_off >= 0.4  # without it the model sees a white square


def test_classify_app_names_a_rendered_item_on_a_light_background(tmp_path, sample):
    images, labels, _ = sample
    predictor = inference.load(SHIPPED)
    predictor.convention = None
    # an item the model gets right as a test image (the photo can only be as right as the item)
    i = next(i for i in range(len(labels))
             if predictor.classify([images[i]], top=1)[0][0]["index"] == labels[i] and labels[i] == 9)
    photo = _bench().render_catalog_photo(images[i][..., 0], np.random.default_rng(3))
    path = tmp_path / "boot.jpg"
    Image.fromarray(photo).save(path, quality=85)
    run = subprocess.run([sys.executable, os.path.join(ROOT, "apps", "classify.py"), str(path), "--model", SHIPPED,
                          "--json", "--top", "1"], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    record = record[0] if isinstance(record, list) else record
    assert record["top"][0]["class"] == "Ankle boot"


def test_fit_writes_the_convention_of_a_fashion_mnist_source(tmp_path):
    from keras_cnns import data, metadata, training

    x, y = fm.fashion_mnist("train", 192)
    source = data.from_arrays((x[:128], y[:128]), (x[128:], y[128:]), fm.CLASS_NAMES, name="fashion_mnist")
    training.fit("lenet5", source, epochs=1, batch_size=64, recipe="fast", output_dir=str(tmp_path), verbose=0,
                 log=lambda *_: None)
    assert metadata.read(str(tmp_path))["image_convention"] == FASHION
    assert inference.load(str(tmp_path)).convention == FASHION
