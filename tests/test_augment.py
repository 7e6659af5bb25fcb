"""The papers' augmentations, checked against NumPy or by their properties."""

import numpy as np
import pytest
import tensorflow as tf

from keras_cnns import data
from keras_cnns.data import augment as aug
from keras_cnns.data.statistics import pca_of_covariance


def _seed(i):
    return tf.constant([i, 7], tf.int64)


def _windows(big, small):
    """Every (top, left) where small appears in big."""
    bh, bw = big.shape[:2]
    h, w = small.shape[:2]
    return [(t, l) for t in range(bh - h + 1) for l in range(bw - w + 1)
            if np.array_equal(big[t:t + h, l:l + w], small)]


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(0).integers(0, 256, size=(40, 48, 3)).astype(np.float32)


@pytest.mark.parametrize("crop", [224, 227])
def test_alexnet_crops_of_256_have_the_crop_size(crop):
    big = tf.zeros([256, 256, 3])
    assert aug.random_crop_flip(big, crop, _seed(0)).shape == (crop, crop, 3)


def test_random_crop_flip_is_a_window_of_the_image_or_of_its_mirror(image):
    flipped_seen = straight_seen = False
    for i in range(12):
        out = aug.random_crop_flip(image, (24, 30), _seed(i)).numpy()
        assert out.shape == (24, 30, 3)
        straight, mirrored = _windows(image, out), _windows(image, out[:, ::-1])
        assert straight or mirrored
        straight_seen |= bool(straight)
        flipped_seen |= bool(mirrored)
    assert straight_seen and flipped_seen


def test_flip_is_identity_or_mirror_and_the_same_seed_gives_the_same_image(image):
    for i in range(6):
        out = aug.random_flip(image, _seed(i)).numpy()
        assert np.array_equal(out, image) or np.array_equal(out, image[:, ::-1])
        assert np.array_equal(out, aug.random_flip(image, _seed(i)).numpy())


def test_cifar_pad_4_and_crop_keeps_the_size_and_shifts_at_most_4_pixels(image):
    padded = np.pad(image, [(4, 4), (4, 4), (0, 0)])
    offsets = set()
    for i in range(30):
        out = aug.pad_crop_flip(image, _seed(i)).numpy()
        assert out.shape == image.shape
        found = _windows(padded, out) or _windows(padded, out[:, ::-1])
        assert found
        offsets.update(found)
    assert all(0 <= t <= 8 and 0 <= l <= 8 for t, l in offsets)
    assert len(offsets) > 5  # the crop really moves


def test_pca_of_a_known_covariance_gives_its_eigenvectors():
    rotation, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    covariance = rotation @ np.diag([0.04, 0.01, 0.0025]) @ rotation.T
    eigvals, eigvecs = pca_of_covariance(covariance)
    np.testing.assert_allclose(eigvals, [0.04, 0.01, 0.0025], rtol=1e-9)
    np.testing.assert_allclose(covariance @ eigvecs, eigvecs * eigvals, atol=1e-12)
    np.testing.assert_allclose(eigvecs.T @ eigvecs, np.eye(3), atol=1e-12)


def test_training_set_pca_recovers_the_colour_covariance_of_the_images(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_CNNS_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(2)
    direction = np.array([1.0, 1.0, 1.0]) / np.sqrt(3)  # brightness: the classic first component
    # pixel = 128 + a * direction (a ~ N(0, 30)) + small noise along R-B
    a = rng.normal(0, 30, size=(200, 16, 16, 1))
    b = rng.normal(0, 5, size=(200, 16, 16, 1))
    pixels = 128 + a * direction + b * np.array([1.0, 0.0, -1.0]) / np.sqrt(2)
    images = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    source = data.from_arrays((images, np.zeros(200)), (images[:4], np.zeros(4)), name="colours")
    stats = source.statistics()
    eigvals, eigvecs = np.array(stats["pca_eigenvalues"]), np.array(stats["pca_eigenvectors"])
    assert abs(abs(eigvecs[:, 0] @ direction) - 1) < 1e-3
    np.testing.assert_allclose(eigvals[0], (30 / 255) ** 2, rtol=0.05)
    np.testing.assert_allclose(eigvals[1], (5 / 255) ** 2, rtol=0.1)
    assert eigvals[2] < eigvals[1] / 10


def test_pca_colour_adds_one_colour_along_the_eigenvectors_scaled_by_the_eigenvalues():
    rotation, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))
    eigvals = np.array([0.05, 0.02, 0.0])  # rank 2: the shift must stay in the span of the first two
    image = np.full((5, 6, 3), 100.0, np.float32)
    coefficients = []
    for i in range(400):
        shift = aug.pca_colour(image, eigvals, rotation, _seed(i)).numpy() - image
        np.testing.assert_allclose(shift, np.broadcast_to(shift[0, 0], shift.shape), atol=1e-4)  # one colour
        projected = rotation.T @ (shift[0, 0] / 255.0)  # coordinates along p_1, p_2, p_3
        assert abs(projected[2]) < 1e-5
        coefficients.append(projected[:2] / eigvals[:2])  # = alpha_1, alpha_2
    alphas = np.array(coefficients)
    np.testing.assert_allclose(alphas.std(0), [0.1, 0.1], rtol=0.2)  # alpha ~ N(0, 0.1)
    np.testing.assert_allclose(alphas.mean(0), [0.0, 0.0], atol=0.03)


def test_pca_colour_refuses_grey_images():
    with pytest.raises(ValueError, match="needs RGB"):
        aug.pca_colour(tf.zeros([8, 8, 1]), [1.0, 0.5, 0.1], np.eye(3), _seed(0))


def test_scale_jitter_crops_from_a_shorter_side_drawn_in_the_range():
    # A horizontal ramp: after scaling by s, neighbouring columns differ by 1/s, which reveals S.
    width, height = 60, 40
    ramp = np.tile(np.arange(width, dtype=np.float32), (height, 1))[..., None].repeat(3, axis=2)
    sides = []
    for i in range(40):
        out = aug.scale_jitter(ramp, 16, _seed(i), min_side=48, max_side=96).numpy()
        assert out.shape == (16, 16, 3)
        step = np.abs(np.diff(out[8, 2:-2, 0])).mean()
        sides.append(height / step)
    sides = np.array(sides)
    assert sides.min() >= 48 * 0.95 and sides.max() <= 96 * 1.05
    assert sides.max() - sides.min() > 24  # S really varies


def test_scale_jitter_refuses_a_range_below_the_crop():
    with pytest.raises(ValueError, match="Received"):
        aug.scale_jitter(tf.zeros([300, 300, 3]), 224, _seed(0), min_side=200, max_side=512)


def test_placed_items_are_the_scenes_sizes_anywhere_on_black_and_mirrored_half_the_time():
    """A white 28x28 item with a dark left column on a 64x64 canvas: its box is a square of side 32..64 fully
    inside, the rest black; the dark column shows which way it faces."""
    item = np.full((28, 28, 1), 255.0, np.float32)
    item[:, :7] = 40.0
    out = aug.place_items(np.stack([item] * 200), 64, _seed(3)).numpy()
    assert out.shape == (200, 64, 64, 1)
    sides, lefts, mirrored = [], [], []
    for canvas in out[..., 0]:
        rows, cols = np.nonzero(canvas > 1.0)
        top, left, bottom, right = rows.min(), cols.min(), rows.max() + 1, cols.max() + 1
        assert abs((bottom - top) - (right - left)) <= 2      # a square (each edge may blend into one more pixel)
        sides.append(right - left)
        lefts.append(left)
        assert canvas[top:bottom, left:right].max() == pytest.approx(255.0, abs=1e-3)
        centre = canvas[(top + bottom) // 2, left:right]
        mirrored.append(centre[:len(centre) // 8].mean() > centre[-(len(centre) // 8):].mean())
    sides = np.array(sides)
    assert 31 <= sides.min() < 36 and 60 < sides.max() <= 66              # s ~ U[32, 64], edges blended
    assert min(lefts) <= 2 and max(lefts) >= 20                          # placed anywhere it fits
    assert 0.35 < np.mean(mirrored) < 0.65                                 # mirrored half the time
    np.testing.assert_array_equal(aug.place_items(np.stack([item] * 200), 64, _seed(3)).numpy(), out)
    # one image, exactly at the canvas size without a mirror: tf.image.resize's half-pixel bilinear inside
    single = aug.place_items(item, 28, _seed(0), min_fraction=1.0).numpy()
    assert single.shape == (28, 28, 1)
    np.testing.assert_allclose(single[1:-1, 1:-1], item[1:-1, 1:-1] if single[14, 2] < 100 else
                               item[:, ::-1][1:-1, 1:-1], atol=1e-3)


def test_ten_crop_is_four_corners_centre_and_their_mirrors():
    images = np.random.default_rng(4).normal(size=(2, 9, 11, 3)).astype(np.float32)
    crops = data.ten_crop(images, (5, 6)).numpy()
    assert crops.shape == (2, 10, 5, 6, 3)
    expected = [images[:, :5, :6], images[:, :5, -6:], images[:, -5:, :6], images[:, -5:, -6:],
                images[:, 2:7, 2:8]]
    for k, crop in enumerate(expected):
        np.testing.assert_array_equal(crops[:, k], crop)
        np.testing.assert_array_equal(crops[:, k + 5], crop[:, :, ::-1])


def test_ten_crop_of_alexnet_227_crops_of_256():
    assert data.ten_crop(tf.zeros([1, 256, 256, 3]), 227).shape == (1, 10, 227, 227, 3)
    with pytest.raises(ValueError, match="Received: crop_size=300"):
        data.ten_crop(tf.zeros([1, 256, 256, 3]), 300)


def test_in_a_batch_every_image_gets_its_own_crop_flip_and_colour(image):
    batch = np.repeat(image[None], 16, axis=0)
    crops = aug.pad_crop_flip(batch, _seed(0)).numpy()
    assert crops.shape == batch.shape
    assert len({c.tobytes() for c in crops}) > 8
    shifts = aug.pca_colour(batch, [0.05, 0.02, 0.01], np.eye(3), _seed(0)).numpy() - batch
    assert len({tuple(np.round(s[0, 0], 4)) for s in shifts}) == 16
