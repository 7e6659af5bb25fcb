"""The Fashion-MNIST scenes follow their specification (docs/data.md, Scenes): each scene is rebuilt here from its
recorded items, sides and corners and must equal the generator's pixels, labels and boxes; the TFDS builder gives
back the same scenes; image/mask folder pairs load in the same form and fail clearly on bad pairs."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_cnns import data
from keras_cnns.data import scenes, segmentation

from _fashion import needs_fashion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = [needs_fashion, pytest.mark.usefixtures("stats_in_tmp")]


@pytest.fixture(scope="module")
def many(fashion):
    """The first 3,000 training scenes."""
    return scenes.generate("train", 3000, source=fashion)


def _iou(a, b):
    w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _rebuild(scene, images, labels):
    """The canvas, labels and boxes the specification gives for the scene's recorded items, sides and corners
    (the resize is checked against TensorFlow's bilinear one below)."""
    canvas = np.zeros((128, 128), np.uint8)
    mask = np.zeros((128, 128), np.uint8)
    boxes = []
    for item, side, (x, y) in zip(scene.items, scene.sides, scene.origins):
        pixels = scenes.resize_item(images[item], side)
        own = np.zeros((128, 128), bool)
        own[y:y + side, x:x + side] = pixels >= 51
        canvas[y:y + side, x:x + side][own[y:y + side, x:x + side]] = pixels[own[y:y + side, x:x + side]]
        mask[own] = labels[item] + 1
        ys, xs = np.nonzero(own)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    return canvas, mask, np.array(boxes)


@pytest.mark.parametrize("split", ["train", "test"])
def test_pixels_labels_and_boxes_follow_the_specification(fashion, split):
    images, labels = fashion.arrays(scenes.SPLITS[split].item_split)
    images = images[..., 0]
    made = scenes.generate(split, 150, source=fashion)
    for i in range(len(made)):
        scene = made[i]
        canvas, mask, boxes = _rebuild(scene, images, labels)
        np.testing.assert_array_equal(scene.image[..., 0], canvas, err_msg=f"scene {i}")
        np.testing.assert_array_equal(scene.mask, mask, err_msg=f"scene {i}")
        np.testing.assert_array_equal(scene.boxes, boxes, err_msg=f"scene {i}")  # tight, of the whole own mask
        np.testing.assert_array_equal(scene.classes, labels[scene.items] + 1)
    assert made.masks.max() <= 10 and set(np.unique(made.masks)) - {0} <= set(range(1, 11))


def test_item_masks_show_each_item_where_no_later_item_covers_it(fashion):
    test = scenes.generate("test", 40, source=fashion)
    images = fashion.arrays("test")[0][..., 0]
    for i in range(len(test)):
        scene = test[i]
        visible = scenes.item_masks(scene, images)
        assert visible.shape == (len(scene.classes), 128, 128)
        assert (visible.sum(0) <= 1).all()                           # one item per pixel, the topmost
        np.testing.assert_array_equal(visible.any(0), scene.mask > 0)
        for j, c in enumerate(scene.classes):
            assert (scene.mask[visible[j]] == c).all()
        assert visible[-1].any()                                     # the last item drawn is never covered


def test_items_are_inside_sized_32_to_64_and_overlap_at_most_iou_0_3(many):
    assert 1 <= many.num_objects.min() and many.num_objects.max() <= 4
    for i in range(len(many)):
        scene = many[i]
        assert ((scene.sides >= 32) & (scene.sides <= 64)).all()
        assert (scene.origins >= 0).all() and (scene.origins + scene.sides[:, None] <= 128).all()
        assert (scene.boxes[:, :2] >= scene.origins).all()
        assert (scene.boxes[:, 2:] <= scene.origins + scene.sides[:, None]).all()
        for a in range(len(scene.boxes)):
            for b in range(a):
                assert _iou(scene.boxes[a], scene.boxes[b]) <= 0.3, (i, a, b)
    # padding rows
    pad = np.arange(4)[None, :] >= many.num_objects[:, None]
    assert (many.classes[pad] == 0).all() and (many.boxes[pad] == 0).all() and (many.items[pad] == -1).all()


def test_item_count_is_uniform_over_1_to_4(many):
    drawn = np.bincount(many.num_objects + many.dropped, minlength=5)[1:] / len(many)
    placed = np.bincount(many.num_objects, minlength=5)[1:] / len(many)
    # 3,000 draws: a fraction's standard deviation is about 0.008, so 0.04 is five of them
    assert np.abs(drawn - 0.25).max() < 0.04, drawn
    assert np.abs(placed - 0.25).max() < 0.04, placed


def test_resize_is_tensorflows_bilinear(fashion):
    images = fashion.arrays("train")[0][:20]
    for side in range(32, 65):
        theirs = tf.image.resize(images.astype(np.float32), (side, side), method="bilinear").numpy()[..., 0]
        ours = np.stack([scenes.bilinear_matrix(28, side) @ im.astype(np.float64) @ scenes.bilinear_matrix(28, side).T
                         for im in images[..., 0]])
        np.testing.assert_allclose(ours, theirs, atol=1e-3)
        rounded = np.stack([scenes.resize_item(im, side) for im in images[..., 0]]).astype(int)
        differ = rounded != np.rint(theirs)  # only where float32 rounding lands on the other side of a half
        assert (np.abs(theirs[differ] % 1 - 0.5) < 1e-3).all()


def test_seeded_reproducible_and_prefix_stable(fashion):
    a = scenes.generate("test", 20, source=fashion)
    b = scenes.generate("test", 20, source=fashion)
    assert a.images.tobytes() == b.images.tobytes() and a.masks.tobytes() == b.masks.tobytes()
    assert a.boxes.tobytes() == b.boxes.tobytes()
    other = scenes.generate("test", 20, seed=scenes.SPLITS["test"].seed + 1, source=fashion)
    assert other.images.tobytes() != a.images.tobytes()
    prefix = scenes.generate("test", 5, source=fashion)
    assert prefix.images.tobytes() == a.images[:5].tobytes()


def test_scenes_written_as_png_read_back_as_the_same_pixels(tmp_path, fashion):
    few = scenes.generate("test", 3, source=fashion)
    paths = scenes.save_images(tmp_path, few)
    assert [os.path.basename(p) for p in paths] == [f"scene-test-{i:04d}.png" for i in range(3)]
    for path, image in zip(paths, few.images):
        assert (np.asarray(Image.open(path)) == image[..., 0]).all()


def test_one_palette_background_black_classes_distinct_and_never_grey():
    from keras_cnns.colours import class_palette
    from keras_cnns.tasks.segmentation import palette

    colours = scenes.class_colours()
    assert colours.shape == (11, 3) and (colours[0] == 0).all()
    assert len({tuple(c) for c in colours}) == 11
    assert (colours[1:].max(1) - colours[1:].min(1) > 60).all()  # saturated: visible on grey scenes
    assert (palette(11) == colours).all() and (class_palette(11) == colours).all()
    assert len({tuple(c) for c in class_palette(31)}) == 31


def test_splits_draw_from_disjoint_items(fashion, many):
    train_pool, val_pool = scenes.item_pool("train"), scenes.item_pool("validation")
    assert not set(train_pool) & set(val_pool) and len(train_pool) + len(val_pool) == 60000
    assert len(val_pool) == 6000
    np.testing.assert_array_equal(val_pool, data.split_indices(60000, 0.1, 0)[1])
    validation = scenes.generate("validation", 300, source=fashion)
    test = scenes.generate("test", 300, source=fashion)
    used = {name: set(s.items[s.items >= 0].tolist()) for name, s in
            (("train", many), ("validation", validation), ("test", test))}
    assert used["train"] <= set(train_pool.tolist())
    assert used["validation"] <= set(val_pool.tolist())
    assert max(used["test"]) < 10000 and scenes.SPLITS["test"].item_split == "test"
    assert min(s.size for s in scenes.SPLITS.values()) >= 1000 and scenes.SPLITS["test"].size >= 1000
    assert len({s.seed for s in scenes.SPLITS.values()}) == 3


def test_tf_data_for_segmentation_and_detection(fashion):
    made = scenes.generate("validation", 10, source=fashion)
    prep = scenes.scene_preprocessing(source=fashion)
    images, masks = next(iter(scenes.scene_dataset(made, "segmentation", prep, batch_size=4)))
    assert images.shape == (4, 128, 128, 1) and images.dtype == tf.float32 and masks.dtype == tf.int32
    np.testing.assert_array_equal(masks.numpy(), made.masks[:4])
    np.testing.assert_allclose(images.numpy(), (made.images[:4] - prep.mean[0]) / prep.std[0], atol=1e-4)
    images, targets = next(iter(scenes.scene_dataset(made, "detection", prep, batch_size=4)))
    assert targets["boxes"].shape == (4, 4, 4) and targets["classes"].shape == (4, 4)
    np.testing.assert_array_equal(targets["boxes"].numpy(), made.boxes[:4].astype(np.float32))
    np.testing.assert_array_equal(targets["num_objects"].numpy(), made.num_objects[:4])
    rgb = scenes.scene_preprocessing(channels=3, source=fashion)
    assert next(iter(scenes.scene_dataset(made, "segmentation", rgb, batch_size=2)))[0].shape == (2, 128, 128, 3)
    # under a strategy of several replicas the last partial batch goes (10 scenes in batches of 4: 4, 4)
    for task in scenes.TASKS:
        kept = [len(b[0]) for b in scenes.scene_dataset(made, task, prep, batch_size=4, drop_remainder=True)]
        assert kept == [4, 4], task
    source = data.load_segmentation("fashion_mnist_scenes", counts={"validation": 10}, source=fashion)
    _, masks = next(iter(data.segmentation_dataset(source, "validation", batch_size=10)))
    np.testing.assert_array_equal(masks.numpy(), made.masks)


def test_tfds_builder_round_trip(tmp_path, fashion):
    import tensorflow_datasets as tfds

    subprocess.run([sys.executable, "-m", "keras_cnns.data.tfds_scenes", "--data-dir", str(tmp_path), "--config",
                    "mini"], check=True, cwd=ROOT, capture_output=True)
    from keras_cnns.data import tfds_scenes

    for split, count in tfds_scenes.MINI_COUNTS.items():
        made = scenes.generate(split, count, source=fashion)
        loaded = list(tfds.as_numpy(tfds.load("fashion_mnist_scenes/mini", split=split, data_dir=str(tmp_path),
                                              download=False)))
        assert len(loaded) == count
        for i, example in enumerate(loaded):
            scene = made[i]
            np.testing.assert_array_equal(example["image"], scene.image)
            np.testing.assert_array_equal(example["segmentation_mask"][..., 0], scene.mask)
            np.testing.assert_array_equal(tfds_scenes.pixel_boxes(example["objects"]["bbox"]), scene.boxes)
            np.testing.assert_array_equal(example["objects"]["label"], scene.classes)
            np.testing.assert_array_equal(example["objects"]["item"], scene.items)
    source = data.load_segmentation("tfds:fashion_mnist_scenes/mini", data_dir=str(tmp_path))
    assert source.class_names == scenes.SCENE_CLASSES and source.size("test") == 32
    _, masks = next(iter(data.segmentation_dataset(source, "test", batch_size=32)))
    np.testing.assert_array_equal(masks.numpy(), scenes.generate("test", 32, source=fashion).masks)


def test_tfds_segmentation_dataset_not_prepared_fails_at_once(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"oxford_iiit_pet.*download_and_prepare"):
        data.load_segmentation("tfds:oxford_iiit_pet", data_dir=str(tmp_path))


def _pair(root, stem, size=(20, 12), value=1, mode="L", mask_size=None, ext=".png"):
    os.makedirs(root / "images", exist_ok=True)
    os.makedirs(root / "masks", exist_ok=True)
    w, h = size
    image = np.random.default_rng(len(stem)).integers(0, 255, (h, w, 3), dtype=np.uint8)
    Image.fromarray(image).save(root / "images" / f"{stem}{ext}")
    mw, mh = mask_size or size
    mask = np.zeros((mh, mw), np.uint8)
    mask[: mh // 2] = value
    Image.fromarray(mask).convert(mode).save(root / "masks" / f"{stem}.png")
    return image, mask


def test_folder_pairs_load_as_image_and_mask(tmp_path):
    pairs = [_pair(tmp_path, "a", value=1), _pair(tmp_path, "b", value=2, ext=".jpg")]
    (tmp_path / "classes.txt").write_text("background\ncat\ndog\n")
    source = data.load_segmentation(str(tmp_path))
    assert source.class_names == ("background", "cat", "dog") and source.splits == ("train",)
    assert source.channels == 3 and source.image_size == (12, 20)
    examples = list(source.examples("train"))
    np.testing.assert_array_equal(examples[0][0].numpy(), pairs[0][0])
    for (image, mask), (_, expected) in zip(examples, pairs):
        np.testing.assert_array_equal(mask.numpy(), expected)
    prep = data.Preprocessing(size=(24, 40), channels=3, resize="resize")
    images, masks = next(iter(data.segmentation_dataset(source, "train", prep, batch_size=2)))
    assert images.shape == (2, 24, 40, 3) and masks.shape == (2, 24, 40)
    assert set(np.unique(masks.numpy()[1])) == {0, 2}


def test_folder_pairs_errors_name_the_file(tmp_path):
    _pair(tmp_path / "missing", "a")
    os.remove(tmp_path / "missing" / "masks" / "a.png")
    with pytest.raises(FileNotFoundError, match=r"No mask for the image .*a\.png.*masks/a\.png"):
        data.load_segmentation(str(tmp_path / "missing"))
    _pair(tmp_path / "size", "b", mask_size=(10, 12))
    with pytest.raises(ValueError, match=r"masks/b\.png is 10x12 but its image .*b\.png is 20x12"):
        data.load_segmentation(str(tmp_path / "size"))
    _pair(tmp_path / "colour", "c", mode="RGB")
    with pytest.raises(ValueError, match=r"masks/c\.png is RGB: a mask must be single-channel"):
        data.load_segmentation(str(tmp_path / "colour"))
    _pair(tmp_path / "value", "d", value=7)
    with pytest.raises(ValueError, match=r"masks/d\.png has the value 7, but only 3 class names"):
        data.load_segmentation(str(tmp_path / "value"), class_names=["background", "cat", "dog"])
