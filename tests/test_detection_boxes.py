"""Faster R-CNN's box arithmetic (keras_cnns.layers.detection) against small NumPy references: anchors, IoU,
deltas, the RPN's and the RoI head's targets, NMS, and RoI pooling by crop-and-resize (gradients included)."""

import math

import numpy as np
import pytest
import tensorflow as tf

from keras_cnns.data.scenes import box_iou as numpy_iou
from keras_cnns.layers import detection as det


def numpy_anchors(h, w, stride, scales, ratios):
    rows = []
    for i in range(h):
        for j in range(w):
            cx, cy = (j + 0.5) * stride, (i + 0.5) * stride
            for s in scales:
                for r in ratios:
                    aw, ah = s / math.sqrt(r), s * math.sqrt(r)
                    rows.append([cx - aw / 2, cy - ah / 2, cx + aw / 2, cy + ah / 2])
    return np.array(rows)


def test_anchors_are_centred_on_their_cells_scale_major():
    got = det.anchor_grid(2, 3, 8, (16.0, 32.0), (0.5, 1.0, 2.0)).numpy()
    np.testing.assert_allclose(got, numpy_anchors(2, 3, 8, (16.0, 32.0), (0.5, 1.0, 2.0)), atol=1e-5)
    # cell (0, 0)'s 16-pixel square anchor covers pixels 0..11 (centre 4, 4): [-4, -4, 12, 12]
    np.testing.assert_allclose(got[1], [-4, -4, 12, 12], atol=1e-5)
    # a ratio-2 anchor (height / width) is twice as high as it is wide, with the scale's area
    w, h = got[2, 2] - got[2, 0], got[2, 3] - got[2, 1]
    assert h == pytest.approx(2 * w) and w * h == pytest.approx(256, rel=1e-5)


def test_iou_equals_the_scenes_numpy_iou_with_exclusive_maxima():
    rng = np.random.default_rng(0)
    a = np.sort(rng.uniform(0, 50, (7, 2, 2)), 1).transpose(0, 2, 1).reshape(7, 4)[:, [0, 2, 1, 3]]
    b = np.concatenate([a[:3] + 2.0, [[0, 0, 0, 0]]])          # an empty box: IoU 0, not NaN
    got = det.box_iou(tf.constant(a, tf.float32), tf.constant(b, tf.float32)).numpy()
    np.testing.assert_allclose(got, numpy_iou(a, b), atol=1e-6)
    # [0, 0, 10, 10] and [5, 0, 15, 10] share a 5x10 strip of 150 pixels: 50 / 150
    assert det.box_iou(tf.constant([[0., 0, 10, 10]]), tf.constant([[5., 0, 15, 10]])).numpy()[0, 0] == \
        pytest.approx(1 / 3)


def test_deltas_follow_the_paper_and_decode_inverts_encode():
    anchors = np.array([[0, 0, 16, 32], [10, 20, 50, 40]], np.float32)
    boxes = np.array([[2, 4, 22, 30], [0, 25, 60, 45]], np.float32)
    got = det.encode(tf.constant(boxes), tf.constant(anchors), (10, 10, 5, 5)).numpy()
    xa, ya = (anchors[:, 0] + anchors[:, 2]) / 2, (anchors[:, 1] + anchors[:, 3]) / 2
    wa, ha = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    x, y = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    want = np.stack([10 * (x - xa) / wa, 10 * (y - ya) / ha, 5 * np.log(w / wa), 5 * np.log(h / ha)], -1)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    back = det.decode(tf.constant(got), tf.constant(anchors), (10, 10, 5, 5)).numpy()
    np.testing.assert_allclose(back, boxes, atol=1e-4)


def test_smooth_l1_is_quadratic_inside_beta_and_linear_outside():
    x = tf.constant([-2.0, -0.05, 0.0, 0.05, 2.0])
    np.testing.assert_allclose(det.smooth_l1(x, 0.1).numpy(), [1.95, 0.0125, 0, 0.0125, 1.95], rtol=1e-5)


def numpy_anchor_labels(anchors, boxes, height, width, pos=0.7, neg=0.3):
    inside = (anchors[:, 0] >= 0) & (anchors[:, 1] >= 0) & (anchors[:, 2] <= width) & (anchors[:, 3] <= height)
    iou = numpy_iou(anchors, boxes) if len(boxes) else np.zeros((len(anchors), 0))
    iou[~inside] = -1
    best = iou.max(1) if len(boxes) else np.full(len(anchors), -1.0)
    labels = np.full(len(anchors), -1.0)
    labels[inside & (best < neg)] = 0
    labels[inside & (best >= pos)] = 1
    for g in range(len(boxes)):
        top = iou[:, g].max()
        if top > 0:
            labels[iou[:, g] == top] = 1
    return labels


def test_rpn_targets_follow_the_paper_rules_and_sample_at_most_half_positive():
    anchors = det.anchor_grid(8, 8, 8, (16.0, 24.0, 40.0), (0.5, 1.0, 2.0))
    boxes = np.array([[8, 8, 24, 24], [30, 20, 70, 40], [0, 0, 0, 0]], np.float32)
    valid = np.array([[True, True, False]])
    labels, deltas = det.anchor_targets(anchors, tf.constant(boxes[None]), tf.constant(valid), 64, 64,
                                        batch=10_000)
    want = numpy_anchor_labels(anchors.numpy(), boxes[:2], 64, 64)
    np.testing.assert_array_equal(labels.numpy()[0], want)
    # the deltas of a positive anchor take it to its box
    k = int(np.flatnonzero(want == 1)[0])
    back = det.decode(deltas[0, k], anchors[k]).numpy()
    assert any(np.allclose(back, b, atol=1e-3) for b in boxes[:2])

    small, _ = det.anchor_targets(anchors, tf.constant(boxes[None]), tf.constant(valid), 64, 64, batch=8)
    small = small.numpy()[0]
    assert (small >= 0).sum() == 8 and 1 <= (small == 1).sum() <= 4
    assert set(np.flatnonzero(small == 1)) <= set(np.flatnonzero(want == 1))
    assert set(np.flatnonzero(small == 0)) <= set(np.flatnonzero(want == 0))


def test_an_image_without_boxes_gives_only_negative_anchors_and_background_rois():
    anchors = det.anchor_grid(4, 4, 8, (16.0,), (1.0,))
    no_boxes, none = tf.zeros((1, 4, 4)), tf.zeros((1, 4), tf.bool)
    labels, deltas = det.anchor_targets(anchors, no_boxes, none, 32, 32, batch=256)
    assert set(np.unique(labels.numpy())) <= {0.0, -1.0} and np.isfinite(deltas.numpy()).all()
    rois = tf.constant([[[0., 0, 16, 16], [8, 8, 30, 30]]])
    picked, classes, targets, chosen = det.roi_targets(rois, tf.ones((1, 2), tf.bool), no_boxes,
                                                       tf.zeros((1, 4), tf.int32), none, batch=4)
    assert chosen.numpy().sum() == 2 and (classes.numpy() == 0).all() and np.isfinite(targets.numpy()).all()


def test_roi_sample_is_a_quarter_foreground_with_the_boxes_classes():
    gt = tf.constant([[[10., 10, 50, 50], [60, 60, 100, 100]]])
    rng = np.random.default_rng(1)
    jitter = rng.uniform(-3, 3, (40, 4)).astype(np.float32)
    near = np.concatenate([np.array([10, 10, 50, 50]) + jitter[:20], np.array([60, 60, 100, 100]) + jitter[20:]])
    far = np.array([[0, 100, 20, 120]] * 40, np.float32) + rng.uniform(0, 5, (40, 4)).astype(np.float32)
    rois = tf.constant(np.concatenate([near, far])[None].astype(np.float32))
    picked, classes, targets, chosen = det.roi_targets(
        rois, tf.ones((1, 80), tf.bool), gt, tf.constant([[3, 7]]), tf.ones((1, 2), tf.bool), batch=16)
    classes, picked = classes.numpy()[0], picked.numpy()[0]
    assert chosen.numpy().all() and (classes > 0).sum() == 4 and set(classes[classes > 0]) <= {3, 7}
    iou = numpy_iou(picked, gt.numpy()[0]).max(1)
    assert (iou[classes > 0] >= 0.5).all() and (iou[classes == 0] < 0.5).all()
    # a foreground RoI's targets, decoded with the head's weights, give its box back
    k = int(np.flatnonzero(classes == 3)[0])
    np.testing.assert_allclose(det.decode(targets[0, k], picked[k], (10, 10, 5, 5)).numpy(), [10, 10, 50, 50],
                               atol=1e-3)


def numpy_nms(boxes, scores, iou):
    order, keep = list(np.argsort(-scores)), []
    while order:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if numpy_iou(boxes[i:i + 1], boxes[j:j + 1])[0, 0] <= iou]
    return keep


def test_proposals_are_the_greedy_nms_of_the_decoded_anchors():
    rng = np.random.default_rng(2)
    anchors = det.anchor_grid(4, 4, 16, (24.0, 40.0), (1.0,))
    logits = rng.normal(size=(1, 32)).astype(np.float32)
    deltas = (0.1 * rng.normal(size=(1, 32, 4))).astype(np.float32)
    boxes, scores, valid = det.proposals(tf.constant(logits), tf.constant(deltas), anchors, 64, 64,
                                         pre_nms=32, post_nms=10, iou=0.5)
    decoded = np.clip(det.decode(tf.constant(deltas[0]), anchors).numpy(), 0, 64)
    keep = numpy_nms(decoded, logits[0], 0.5)[:10]
    n = int(valid.numpy().sum())
    assert n == len(keep)
    np.testing.assert_allclose(boxes.numpy()[0, :n], decoded[keep], atol=1e-4)
    np.testing.assert_allclose(scores.numpy()[0, :n], 1 / (1 + np.exp(-logits[0][keep])), atol=1e-5)


def numpy_bilinear(feature, y, x):
    h, w = feature.shape[:2]
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    fy, fx = y - y0, x - x0
    at = lambda i, j: feature[min(max(i, 0), h - 1), min(max(j, 0), w - 1)]  # noqa: E731
    return ((1 - fy) * (1 - fx) * at(y0, x0) + (1 - fy) * fx * at(y0, x0 + 1) + fy * (1 - fx) * at(y0 + 1, x0)
            + fy * fx * at(y0 + 1, x0 + 1))


def test_roi_pooling_samples_the_bin_centres_of_the_box_on_the_stride_s_map():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(1, 8, 8, 2)).astype(np.float32)
    rois = np.array([[12.0, 20.0, 60.0, 52.0], [0.0, 0.0, 64.0, 64.0], [56.0, 0.0, 64.0, 8.0]])  # 64x64 image
    got = det.RoICropAndResize(stride=8, size=4)([tf.constant(features), tf.constant(rois[None], tf.float32)])
    assert got.shape == (3, 4, 4, 2)
    for k, roi in enumerate(rois):
        bw, bh = (roi[2] - roi[0]) / 4, (roi[3] - roi[1]) / 4
        for i in range(4):
            for j in range(4):
                x, y = roi[0] + (j + 0.5) * bw, roi[1] + (i + 0.5) * bh    # bin centre, input pixels
                # cell c is centred on pixel (c + 0.5) * 8; the border's outer half cell reads the edge cell
                want = numpy_bilinear(features[0], y / 8 - 0.5, x / 8 - 0.5)
                np.testing.assert_allclose(got.numpy()[k, i, j], want, atol=1e-5)


def test_gradients_reach_the_trunk_through_roi_pooling():
    import keras

    image = keras.Input((32, 32, 1))
    trunk = keras.Model(image, keras.layers.Conv2D(4, 3, strides=4, padding="same", name="trunk")(image))
    x = tf.random.stateless_normal((2, 32, 32, 1), seed=(0, 1))
    rois = tf.constant([[[0., 0, 16, 16], [8, 4, 30, 28]], [[2., 2, 20, 30], [0, 0, 32, 32]]])
    pool = det.RoICropAndResize(stride=4, size=7)
    with tf.GradientTape() as tape:
        crops = pool([trunk(x), rois])
        loss = tf.reduce_sum(crops ** 2)
    grads = tape.gradient(loss, trunk.trainable_variables)
    assert crops.shape == (4, 7, 7, 4)
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)
