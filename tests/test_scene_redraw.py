"""augment="redraw": FCN training on Fashion-MNIST scenes drawn afresh every epoch (issue 7).

The fixed training split places each of the 54,000 training items about half a time. Redrawn, the scene generator
makes a new split's worth of scenes every epoch from the same items and the same specification: every redrawn
scene is still a scene of the specification, with labels exactly where the canvas is lit, and it is flipped as
"flip" flips. The same seed gives the same scenes, epoch by epoch. Validation and test keep their fixed scenes,
and data that is not the scenes (and detection, for now) refuse it.
"""

import importlib

import numpy as np
import pytest
import tensorflow as tf

from keras_cnns.data import scenes
from keras_cnns.data.segmentation import load_segmentation, segmentation_dataset

from _fashion import RAW_SCENES, needs_fashion

fit_module = importlib.import_module("keras_cnns.training.fit")
pytestmark = [needs_fashion, pytest.mark.usefixtures("stats_in_tmp")]
COUNT = 32


@pytest.fixture(scope="module")
def source(fashion):
    return load_segmentation("fashion_mnist_scenes", counts={"train": COUNT, "validation": 8, "test": 8},
                             source=fashion)


def _epochs(source, seed, epochs=2, batch_size=8):
    ds = segmentation_dataset(source, "train", RAW_SCENES, batch_size=batch_size, seed=seed, augment="redraw")
    out = []
    for _ in range(epochs):
        images, masks = zip(*[(i.numpy()[..., 0], m.numpy()) for i, m in ds])
        out.append((np.concatenate(images), np.concatenate(masks)))
    return ds, out


def test_a_split_of_new_scenes_every_epoch_the_same_for_the_same_seed(source):
    ds, (first, second) = _epochs(source, seed=3)
    assert ds.cardinality().numpy() == COUNT // 8 and len(first[0]) == COUNT   # the split's size: same steps
    assert not np.array_equal(first[1], second[1])                              # epoch 2 has its own scenes
    _, (again, again_second) = _epochs(source, seed=3)
    np.testing.assert_array_equal(first[1], again[1])
    np.testing.assert_array_equal(second[1], again_second[1])
    _, [other] = _epochs(source, seed=4, epochs=1)
    assert not np.array_equal(first[1], other[1])


def test_redrawn_scenes_are_scenes_of_the_specification_but_not_the_fixed_ones(source):
    _, (first, _) = _epochs(source, seed=0)
    images, masks = first
    np.testing.assert_array_equal(masks > 0, images > 0)        # labels exactly where the canvas is lit
    assert masks.max() <= 10 and images.dtype == np.float32
    lit = (images > 0).mean(axis=(1, 2))
    assert lit.min() > 0                                         # every scene holds an item
    fixed = source.scene_set("train").masks
    assert not any(np.array_equal(m, f) for m in masks for f in fixed)


def test_the_redrawn_stream_draws_scenes_with_the_generator_of_the_split(fashion):
    # no flip at this level: scene j of the stream is make_scene of its own generator over the split's items
    keys = [int(k) for k in tf.data.Dataset.random(seed=5, rerandomize_each_iteration=True).take(3)]
    got = [(i.numpy(), m.numpy()) for i, m in scenes.redrawn_examples("train", 3, seed=5, source=fashion)]
    images, labels = fashion.arrays("train")
    pool = scenes.item_pool("train", len(labels))
    for key, (image, mask) in zip(keys, got):
        rng = np.random.default_rng((scenes.SPLITS["train"].seed, scenes.REDRAW_STREAM, key % 2 ** 63))
        want_image, want_mask, placed, _ = scenes.make_scene(rng, images[..., 0], labels, pool)
        np.testing.assert_array_equal(image[..., 0], want_image)
        np.testing.assert_array_equal(mask, want_mask)
        assert all(item in set(pool.tolist()) for item, *_ in placed)


def test_fit_redraws_the_training_scenes_only(fashion):
    run = fit_module.resolve_run("fcn8s_vgg16_slim", recipe="fast", batch_size=8, limit=8, augment="redraw",
                                 log=lambda *_: None)
    assert run.augment == "redraw"
    data = fit_module.make_datasets(run, "fashion_mnist_scenes", log=lambda *_: None)
    train = [next(iter(data.train))[1].numpy() for _ in range(2)]
    assert not np.array_equal(*train)
    for split in ("validation", "test"):
        images = next(iter(getattr(data, split)))[0].numpy()
        expected = data.preprocessing.apply(scenes.generate(split, 8, source=fashion).images).numpy()
        np.testing.assert_allclose(images, expected, atol=1e-6)


def test_redraw_is_refused_where_it_cannot_draw_scenes(tmp_path, few_pairs):
    with pytest.raises(ValueError, match="segmentation training"):
        fit_module.resolve_run("frcnn_resnet_small", augment="redraw", log=lambda *_: None)
    with pytest.raises(ValueError, match="SceneSet holds fixed scenes"):
        scenes.scene_dataset(scenes.generate("train", 2), "segmentation", RAW_SCENES, augment="redraw")
    with pytest.raises(ValueError, match="needs the 'fashion_mnist_scenes' source"):
        segmentation_dataset(load_segmentation(few_pairs), "train", augment="redraw")


@pytest.fixture
def few_pairs(tmp_path):
    from PIL import Image

    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "images" / "a.png")
    Image.fromarray(np.ones((8, 8), np.uint8)).save(tmp_path / "masks" / "a.png")
    return str(tmp_path)
