"""Faster R-CNN on the zoo's ResNet (Ren et al. 2015; He et al. 2015 "C4"): the shapes the article draws, the
trunk shared by the RPN and RoI pooling, training inside model.fit, saving, and the SavedModel round trip."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_cnns.models import faster_rcnn
from keras_cnns.registry import get_model, get_spec, list_models

SCENE_CLASSES = 11  # background + the 10 Fashion-MNIST classes


def targets(boxes, classes):
    """A batch's targets in the scenes' form: padded to 4 rows, num_objects per image."""
    b = np.zeros((len(boxes), 4, 4), np.float32)
    c = np.zeros((len(boxes), 4), np.int32)
    for i, (bx, cl) in enumerate(zip(boxes, classes)):
        b[i, :len(bx)], c[i, :len(cl)] = np.reshape(bx, (-1, 4)), cl
    return {"boxes": tf.constant(b), "classes": tf.constant(c), "num_objects": tf.constant([len(x) for x in boxes])}


@pytest.fixture(scope="module")
def small():
    keras.utils.set_random_seed(0)
    return get_model("frcnn_resnet_small", input_shape=(None, None, 1), num_classes=SCENE_CLASSES)


def test_the_detectors_are_registered_for_the_detection_task():
    assert list_models(task="detection") == ["frcnn_resnet101", "frcnn_resnet50", "frcnn_resnet_small"]
    assert get_spec("frcnn_resnet101").family == "frcnn"


def test_small_detector_has_stride_8_trunk_14x14_rois_and_a_7x7_conv5(small):
    assert small.backbone.output_shape == (None, None, None, 64)      # conv4_x at 1/4 of ResNet's 256
    assert small.backbone.get_layer("conv4_block1_1_conv").strides == (1, 1)   # stride 8, not 16
    features = small.backbone(np.zeros((1, 128, 128, 1), np.float32))
    assert features.shape == (1, 16, 16, 64)
    assert small.box_head.input_shape == (None, 14, 14, 64)
    assert small.box_head.get_layer("conv5_block1_out").output.shape[1:3] == (7, 7)
    assert small.box_head.get_layer("class_logits").units == SCENE_CLASSES
    assert small.box_head.get_layer("box_deltas").units == 4 * (SCENE_CLASSES - 1)  # class-specific
    assert small.config.num_anchors == 9


def test_inference_gives_sorted_boxes_inside_the_image(small):
    out = small(np.random.default_rng(0).normal(size=(2, 96, 128, 1)).astype(np.float32))
    assert out["boxes"].shape == (2, 20, 4) and out["num_detections"].shape == (2,)
    boxes, scores = out["boxes"].numpy(), out["scores"].numpy()
    assert (boxes[..., 0] >= 0).all() and (boxes[..., 2] <= 128).all() and (boxes[..., 3] <= 96).all()
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    n = out["num_detections"].numpy()
    assert all((out["classes"].numpy()[i, :k] >= 1).all() for i, k in enumerate(n))


def test_losses_are_finite_for_an_image_without_boxes_and_gradients_reach_the_trunk(small):
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 64, 64, 1)).astype(np.float32))
    batch = targets([[[8, 8, 40, 48]], []], [[3], []])
    with tf.GradientTape() as tape:
        losses = small.losses_on(x, batch)
    assert all(np.isfinite(float(v)) for v in losses.values())
    # the head's classification loss alone reaches conv1 through RoI pooling
    grads = tape.gradient(losses["head_class"], small.backbone.trainable_variables)
    assert all(g is not None for g in grads) and float(tf.reduce_sum(tf.abs(grads[0]))) > 0
    empty = small.losses_on(x, targets([[], []], [[], []]))
    assert all(np.isfinite(float(v)) for v in empty.values()) and float(empty["head_box"]) == 0.0


def test_training_in_model_fit_lowers_the_loss_and_the_model_saves_and_loads(tmp_path):
    from keras_cnns.data import scenes
    from keras_cnns.models.common import load_keras_file

    keras.utils.set_random_seed(1)
    model = get_model("frcnn_resnet_small", input_shape=(None, None, 1), num_classes=SCENE_CLASSES)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = scenes.scene_dataset(scenes.generate("train", 4), "detection", batch_size=4)
    # (the training-mode loss: batch norm's moving statistics need far more than these 15 steps)
    # (the head's box loss may rise meanwhile: a better RPN gives it more foreground RoIs to regress)
    history = model.fit(data.repeat(5), epochs=3, verbose=0).history
    assert history["loss"][2] < 0.7 * history["loss"][0]
    assert history["rpn_objectness"][2] < history["rpn_objectness"][1] < history["rpn_objectness"][0]
    assert history["head_class"][2] < history["head_class"][0]
    path = os.path.join(tmp_path, "detector.keras")
    model.save(path)
    again = load_keras_file(path)
    x = next(iter(data))[0]
    np.testing.assert_allclose(again(x)["scores"].numpy(), model(x)["scores"].numpy(), atol=1e-6)


def test_resnet50_detector_builds_with_the_papers_stride_16_and_anchors():
    model = get_model("frcnn_resnet50", input_shape=(None, None, 3), num_classes=21)
    assert model.config.trunk_stride == 16 and model.config.anchor_scales == (128.0, 256.0, 512.0)
    assert model.backbone.output_shape[-1] == 1024 and model.box_head.get_layer("avg_pool").output.shape[-1] == 2048
    assert model.backbone(np.zeros((1, 64, 96, 3), np.float32)).shape == (1, 4, 6, 1024)
    bn = model.backbone.get_layer("conv2_block1_1_bn")
    assert not bn.trainable  # frozen batch norm (ImageNet starts)


@pytest.mark.slow
def test_resnet101_detector_runs_one_forward_pass_at_600x600():
    """About a minute on two busy CPU cores, hence slow."""
    model = get_model("frcnn_resnet101", input_shape=(None, None, 3), num_classes=21)
    assert len([l for l in model.backbone.layers if l.name.endswith("_out")]) == 3 + 4 + 23  # conv2..conv4_x
    out = model(np.zeros((1, 600, 600, 3), np.float32))
    assert model.backbone(np.zeros((1, 600, 600, 3), np.float32)).shape == (1, 38, 38, 1024)
    assert out["boxes"].shape == (1, 100, 4) and out["scores"].shape == (1, 100)


def test_unknown_settings_are_refused():
    with pytest.raises(ValueError, match=r"frcnn_resnet_small \(detector\): unknown settings \[.anchors.\]"):
        faster_rcnn.detector_config("frcnn_resnet_small", {"anchors": 3})


def test_anchors_set_for_a_run_are_trained_saved_and_held_to_on_resume(tmp_path):
    """fit(overrides=...) (train.py --anchor-scales/--anchor-ratios): the model trains with two anchors per cell,
    saves them in model.keras and metadata.json, and a resume with other anchors is refused before any step."""
    import json

    from keras_cnns import training
    from keras_cnns.models.common import load_keras_file

    anchors = {"anchor_scales": [16, 48], "anchor_ratios": [1]}
    out = str(tmp_path / "run")
    options = dict(recipe="fast", batch_size=4, limit=8, output_dir=out, tensorboard=False, verbose=0,
                   log=lambda *_: None)
    result = training.fit("frcnn_resnet_small", epochs=1, overrides=anchors, **options)
    saved = load_keras_file(os.path.join(out, "model.keras"))
    assert saved.config.anchor_scales == (16.0, 48.0) and saved.config.num_anchors == 2
    assert saved.rpn.output_shape[0][-1] == 2                     # objectness: one map per anchor
    assert json.load(open(os.path.join(out, "metadata.json")))["overrides"] == anchors
    assert result.metadata["test_images"] > 0
    with pytest.raises(ValueError, match=r"holds checkpoints of a run with overrides=.*Received: overrides=None"):
        training.fit("frcnn_resnet_small", epochs=2, **options)


def test_anchor_flags_are_for_detectors_and_take_positive_numbers(capsys):
    from keras_cnns.cli import train

    for args, said in ((["--model", "lenet5", "--anchor-scales", "32"],
                        "are for Faster R-CNN (frcnn*: --anchor-scales, --anchor-ratios) and FCN"),
                       (["--model", "frcnn_resnet_small", "--anchor-ratios", "1", "-2"],
                        "--anchor-ratios takes positive numbers. Received: 1 -2")):
        with pytest.raises(SystemExit) as exit_info:
            train.main(args + ["--limit", "8", "--epochs", "1"])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1 and said in err[0], err
