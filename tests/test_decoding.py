"""One decoder and one extension list for training and inference: an image-folder source reads its files with
keras_cnns.images.read_image (as classify.py does), so a photo with an EXIF rotation trains as it is
displayed, and a TIFF that classify.py reads is trained on too."""

import os

import numpy as np
from PIL import Image

from keras_cnns import data, images
from keras_cnns.data import sources

ROTATE_90_CW = 6  # EXIF Orientation: the stored pixels are shown turned 90 degrees clockwise


def _stored(seed):
    """A 6x10 (H x W) grey picture, bright on its left: after the turn the bright part is on top."""
    pixels = np.random.default_rng(seed).integers(0, 60, (6, 10), dtype=np.uint8)
    pixels[:, :4] += 180
    return pixels


def _save(path, pixels, orientation=None):
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif)


def test_a_photo_with_an_exif_rotation_trains_as_it_is_displayed(tmp_path):
    raw = {}
    for label, cls in enumerate(("a", "b")):
        os.makedirs(tmp_path / cls)
        for i in range(4):
            raw[(cls, i)] = _stored(10 * label + i)
            _save(tmp_path / cls / f"{i}.png", raw[(cls, i)], ROTATE_90_CW)
    source = data.load_source(str(tmp_path), test_split=0.25)
    assert source.image_size == (10, 6)          # displayed: 10 high, 6 wide; stored: 6 high, 10 wide
    paths, _ = source.files("train")
    for path, (image, _) in zip(paths, source.examples("train")):
        cls, name = path.split(os.sep)[-2:]
        shown = np.rot90(raw[(cls, int(name[0]))], k=-1)[..., None]
        np.testing.assert_array_equal(image.numpy(), shown)
        np.testing.assert_array_equal(image.numpy(), images.read_image(path))   # what classify.py reads
    assert (image.numpy()[:4] > 150).all() and (image.numpy()[4:] < 100).all()


def test_training_reads_the_extensions_inference_reads(tmp_path):
    assert sources.IMAGE_EXTENSIONS is images.IMAGE_EXTENSIONS
    for cls in ("x", "y"):
        os.makedirs(tmp_path / cls)
        for i, ext in enumerate((".tif", ".pgm", ".png")):
            _save(tmp_path / cls / f"{i}{ext}", _stored(i))
    source = data.load_source(str(tmp_path), test_split=0.5)
    assert source.size("train") + source.size("test") == 6 and not source.skipped
    assert sorted(os.path.splitext(p)[1] for p in images.list_images([str(tmp_path / "x")])) == [
        ".pgm", ".png", ".tif"]
