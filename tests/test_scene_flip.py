"""Joint augmentation of the scenes and backbones from a classifier (issues 7 and 8).

A horizontal flip must move the pixel labels and the boxes with the image: a flipped scene is still a scene of
the specification (labels set exactly where the canvas is lit, each box the tight box of its item's own mask), only
the training split is flipped, the same seed flips the same scenes. FCN and Faster R-CNN runs can start their
backbone from a trained classifier's .keras file (Long et al. 2015 start FCN from a trained VGG-16).
"""

import importlib
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_cnns import training
from keras_cnns.data import augment as aug
from keras_cnns.data import scenes
from keras_cnns.models import faster_rcnn, resnet, vgg

from _fashion import RAW_SCENES, needs_fashion

fit_module = importlib.import_module("keras_cnns.training.fit")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = [needs_fashion, pytest.mark.usefixtures("stats_in_tmp")]
COUNT = 16


@pytest.fixture(scope="module")
def few(fashion):
    return scenes.generate("train", COUNT, source=fashion)


def _first_batch(ds):
    images, labels = next(iter(ds))
    return images.numpy()[..., 0], labels


def _flipped(images, originals):
    """bool per scene: mirrored (True) or untouched (False); anything else fails."""
    out = []
    for image, original in zip(images, originals[..., 0].astype(np.float32)):
        mirrored = np.array_equal(image, original[:, ::-1])
        assert mirrored or np.array_equal(image, original)
        out.append(mirrored)
    return np.array(out)


def test_a_flipped_scene_keeps_its_labels_on_its_pixels(few):
    images, masks = _first_batch(scenes.scene_dataset(few, "segmentation", RAW_SCENES, batch_size=COUNT, seed=3,
                                                      augment="flip"))
    masks = masks.numpy()
    flipped = _flipped(images, few.images)
    assert 0 < flipped.sum() < COUNT                        # some scenes mirrored, some not
    for i in range(COUNT):
        expected = few.masks[i][:, ::-1] if flipped[i] else few.masks[i]
        np.testing.assert_array_equal(masks[i], expected)
        # pixel for pixel: a label exactly where an item is drawn (its pixels >= 51), background 0 elsewhere
        np.testing.assert_array_equal(masks[i] > 0, images[i] > 0)
        assert images[i][masks[i] > 0].min() >= scenes.MASK_THRESHOLD


def test_flipped_boxes_are_the_tight_boxes_of_the_flipped_item_masks_and_padding_stays_zero(fashion, few):
    item_images = fashion.arrays("train")[0][..., 0]
    images, targets = _first_batch(scenes.scene_dataset(few, "detection", RAW_SCENES, batch_size=COUNT, seed=3,
                                                       augment="flip"))
    boxes = targets["boxes"].numpy()
    flipped = _flipped(images, few.images)
    assert 0 < flipped.sum() < COUNT
    np.testing.assert_array_equal(targets["classes"].numpy(), few.classes)
    np.testing.assert_array_equal(targets["num_objects"].numpy(), few.num_objects)
    for i in range(COUNT):
        scene, n = few[i], few.num_objects[i]
        for j, own in enumerate(scenes.own_masks(scene, item_images)):
            np.testing.assert_array_equal(boxes[i, j], scenes.tight_box(own[:, ::-1] if flipped[i] else own))
        assert not boxes[i, n:].any()                       # padding rows: class 0, box [0, 0, 0, 0]
        if flipped[i]:                                       # x_min' = W - x_max, x_max' = W - x_min
            np.testing.assert_array_equal(boxes[i, :n, 0], 128 - few.boxes[i, :n, 2])
            np.testing.assert_array_equal(boxes[i, :n, 2], 128 - few.boxes[i, :n, 0])
    # one draw per image: masks and boxes of the same seed flip the same scenes
    seg_images, _ = _first_batch(scenes.scene_dataset(few, "segmentation", RAW_SCENES, batch_size=COUNT, seed=3,
                                                      augment="flip"))
    np.testing.assert_array_equal(_flipped(seg_images, few.images), flipped)


def test_flip_boxes_on_the_border_columns():
    # column 0 alone -> column 127 alone; the whole width stays the whole width
    np.testing.assert_array_equal(aug.flip_boxes(np.array([[0., 5., 1., 9.], [0., 0., 128., 3.]]), 128).numpy(),
                                  [[127., 5., 128., 9.], [0., 0., 128., 3.]])


def test_the_same_seed_flips_the_same_scenes_and_each_epoch_draws_again(few):
    def flips(seed, epochs=2):
        ds = scenes.scene_dataset(few, "segmentation", RAW_SCENES, batch_size=COUNT, seed=seed, augment="flip")
        return [_flipped(_first_batch(ds)[0], few.images) for _ in range(epochs)]

    first, again, other = flips(3), flips(3), flips(4)
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert not np.array_equal(first[0], first[1])           # epoch 2 has its own draws
    assert not np.array_equal(first[0], other[0])


def test_validation_and_test_never_flip_in_scene_datasets_and_in_fit(fashion):
    made = scenes.scene_datasets("detection", RAW_SCENES, batch_size=8, seed=3, counts={s: 8 for s in scenes.SPLITS},
                                 source=fashion, augment="flip")
    assert made.augment == "flip"
    for split in ("validation", "test"):
        images, _ = _first_batch(getattr(made, split))
        assert not _flipped(images, scenes.generate(split, 8, source=fashion).images).any()
    for model in ("fcn8s_vgg16_slim", "frcnn_resnet_small"):
        run = fit_module.resolve_run(model, recipe="fast", batch_size=8, limit=8, augment="flip", log=lambda *_: None)
        data = fit_module.make_datasets(run, "fashion_mnist_scenes", log=lambda *_: None)
        for split in ("validation", "test"):
            images = next(iter(getattr(data, split)))[0].numpy()
            expected = data.preprocessing.apply(scenes.generate(split, 8, source=fashion).images).numpy()
            np.testing.assert_allclose(images, expected, atol=1e-6)


@pytest.mark.parametrize("model, augment, words", [
    ("fcn8s_vgg16_slim", "cifar", "pixel labels would no longer match"),
    ("frcnn_resnet_small", "scale_jitter", "boxes would no longer match"),
    ("fcn8s_vgg16_slim", lambda image, seed: image, "without its pixel labels"),
    ("fcn8s_vgg16_slim", "mirror", "no augmentation name"),
])
def test_an_augmentation_that_moves_the_image_alone_is_refused(model, augment, words):
    with pytest.raises(ValueError, match=words):
        fit_module.resolve_run(model, augment=augment, log=lambda *_: None)


def test_the_recipes_of_fcn_and_frcnn_still_train_without_augmentation():
    for family in ("fcn", "frcnn"):
        for name in ("paper", "fast"):
            assert training.recipes.RECIPES[(family, name)].augment is None


# -- backbones from a classifier --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    """Two tiny Fashion-MNIST-shaped classifiers saved as .keras files: a VGG-16 (D) trunk at the slim FCN's
    width 1/8, and the small detector's ResNet-10 at width 1/4, each with a pooled softmax head."""
    folder = tmp_path_factory.mktemp("backbones")
    keras.utils.set_random_seed(7)
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.GlobalAveragePooling2D()(vgg.trunk(inputs, "D", width=1 / 8)[-1])
    vgg_slim = keras.Model(inputs, keras.layers.Dense(10, name="predictions")(x), name="vgg16_slim_classifier")
    config = faster_rcnn.CONFIGS["frcnn_resnet_small"]
    inputs = keras.Input((32, 32, 1))
    x = resnet.stem(inputs, config.resnet, config.width)
    for index in range(len(config.resnet.blocks)):
        x = resnet.stage(x, config.resnet, index, width=config.width)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    resnet10 = keras.Model(inputs, keras.layers.Dense(10, name="predictions")(x), name="resnet10_quarter")
    paths = {"vgg": str(folder / "vgg16_slim.keras"), "resnet": str(folder / "resnet10.keras")}
    vgg_slim.save(paths["vgg"])
    resnet10.save(paths["resnet"])
    return paths, vgg_slim, resnet10


def test_a_short_fcn_fit_starts_from_the_classifiers_convolutions_and_records_it(classifiers, tmp_path,
                                                                                 monkeypatch):
    paths, vgg_slim, _ = classifiers
    before = {}
    real_run_fit = fit_module.run_fit

    def spy(run, net, *args, **kwargs):  # the model fit() is about to train
        before.update({layer.name: [w.numpy() for w in layer.weights] for layer in net.layers
                       if layer.name.startswith("block") and layer.weights})
        return real_run_fit(run, net, *args, **kwargs)

    monkeypatch.setattr(fit_module, "run_fit", spy)
    lines = []
    result = training.fit("fcn8s_vgg16_slim", recipe="fast", epochs=1, batch_size=8, limit=8, augment="flip",
                          backbone_weights=paths["vgg"], output_dir=str(tmp_path), tensorboard=False, verbose=0,
                          log=lines.append)
    assert len(before) == 13                                # VGG-16's 13 convolutions, every one copied
    np.testing.assert_array_equal(before["block1_conv1"][0], vgg_slim.get_layer("block1_conv1").kernel.numpy())
    np.testing.assert_array_equal(before["block5_conv3"][1], vgg_slim.get_layer("block5_conv3").bias.numpy())
    assert f"Backbone: weights copied by layer name from {paths['vgg']}" in lines
    assert result.metadata["backbone_weights"] == paths["vgg"] and result.metadata["augment"] == "flip"
    assert result.metadata["recipe_details"]["augment"] is None   # the recipe unchanged; the run asked for flip

    # resuming: the checkpoints win; another backbone than the run started from is ambiguous and refused
    lines.clear()
    training.fit("fcn8s_vgg16_slim", recipe="fast", epochs=1, batch_size=8, limit=8, augment="flip",
                 backbone_weights=paths["vgg"], output_dir=str(tmp_path), tensorboard=False, verbose=0,
                 log=lines.append)
    assert any("the checkpoints' weights win" in line for line in lines)
    assert not any(line.startswith("Backbone: weights copied") for line in lines)
    other = str(tmp_path / "other.keras")
    shutil.copy(paths["vgg"], other)
    with pytest.raises(ValueError, match="holds checkpoints of a run started from .*--no-resume"):
        training.fit("fcn8s_vgg16_slim", recipe="fast", epochs=2, batch_size=8, limit=8,
                     backbone_weights=other, output_dir=str(tmp_path), tensorboard=False, verbose=0,
                     log=lambda *_: None)


def test_the_small_detector_starts_its_trunk_and_conv5_from_a_resnet_classifier(classifiers, tmp_path):
    paths, _, resnet10 = classifiers
    run = fit_module.resolve_run("frcnn_resnet_small", recipe="fast", batch_size=8, limit=8,
                                 backbone_weights=paths["resnet"], log=lambda *_: None)
    data = fit_module.make_datasets(run, "fashion_mnist_scenes", log=lambda *_: None)
    heads = fit_module.plan_heads(run, data, log=lambda *_: None)
    state = fit_module.run_state(run, data, heads, str(tmp_path), resume=False, log=lambda *_: None)
    net = fit_module.build_model(run, data, heads, state, log=lambda *_: None)
    for part, name in ((net.backbone, "conv1_conv"), (net.backbone, "conv4_block1_2_conv"),
                       (net.box_head, "conv5_block1_1_conv")):
        np.testing.assert_array_equal(part.get_layer(name).kernel.numpy(), resnet10.get_layer(name).kernel.numpy())
    # a VGG shares no layer with a ResNet detector
    run = fit_module.resolve_run("frcnn_resnet_small", recipe="fast", batch_size=8, limit=8,
                                 backbone_weights=paths["vgg"], log=lambda *_: None)
    state = fit_module.run_state(run, data, heads, str(tmp_path / "vgg"), resume=False, log=lambda *_: None)
    with pytest.raises(ValueError, match="do not fit frcnn_resnet_small.*shares no layer"):
        fit_module.build_model(run, data, heads, state, log=lambda *_: None)


def _train(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "apps", "train.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT))


def test_train_app_refuses_a_missing_or_foreign_backbone_and_a_crop_for_scenes_in_one_line(classifiers, tmp_path):
    paths, _, _ = classifiers
    cases = [
        (("--model", "fcn8s_vgg16_slim", "--backbone-weights", tmp_path / "missing.keras"),
         "Backbone weights not found"),
        (("--model", "lenet5", "--backbone-weights", paths["vgg"]), "lenet5 has no backbone"),
        (("--model", "fcn8s_vgg16_slim", "--augment", "alexnet"), "segmentation data takes augment="),
        (("--model", "fcn8s_vgg16_slim", "--backbone-weights", paths["resnet"], "--limit", "8", "--batch-size", "8",
          "--output", tmp_path / "out"), "shares no convolution"),
    ]
    for args, words in cases:
        done = _train(*args)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert lines[-1].startswith("train.py: error: ") and words in lines[-1], lines
        assert "Traceback" not in done.stderr
