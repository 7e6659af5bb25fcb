"""Box arithmetic of Faster R-CNN (Ren, He, Girshick, Sun 2015, "Faster R-CNN: Towards Real-Time Object
Detection with Region Proposal Networks") in TensorFlow ops, for the graph: anchors, IoU, box encoding and
decoding, target assignment with sampling, smooth L1, proposals with NMS, and RoI pooling by crop-and-resize.

One box convention, the package's (the scenes', keras_cnns.data.scenes): pixel ``[x_min, y_min, x_max, y_max]``
in continuous coordinates where pixel (i, j) covers [j, j + 1) x [i, i + 1), so x_max and y_max are one past the
last pixel and a box is x_max - x_min pixels wide. Everything here takes and returns that form; it is converted
exactly once where TensorFlow wants another (``_yx``: [y1, x1, y2, x2] for the NMS ops, ``roi_align_boxes``:
normalised sample positions for tf.image.crop_and_resize).

Box deltas (the paper's eq. 2): t_x = (x - x_a) / w_a, t_y = (y - y_a) / h_a, t_w = log(w / w_a),
t_h = log(h / h_a) from centres and sizes, each multiplied by ``weights`` (the RoI head's (10, 10, 5, 5), i.e. the
deltas divided by their usual standard deviations (0.1, 0.1, 0.2, 0.2); the RPN's (1, 1, 1, 1)).

Anchors of feature cell (i, j) at output stride s are centred on ((j + 0.5) s, (i + 0.5) s), the centre of the
cell's s x s patch of input pixels; an anchor of scale a and ratio r (height / width) is a / sqrt(r) wide and
a * sqrt(r) high (area a^2).
"""

import math

import keras
import tensorflow as tf

# exp() of a width delta is capped here (log(1000 / 16), the common bound) so a wild early prediction
# gives a huge box, not inf.
MAX_LOG_SCALE = math.log(1000.0 / 16)


# -- anchors, IoU, deltas --------------------------------------------------------------------------------------
def anchor_shapes(scales, ratios):
    """(A, 2) float32 [width, height] of the anchors at one position, scale-major: for each scale, each ratio."""
    rows = [(s / math.sqrt(r), s * math.sqrt(r)) for s in scales for r in ratios]
    return tf.constant(rows, tf.float32)


def anchor_grid(height, width, stride, scales, ratios):
    """(height * width * A, 4) anchors of a feature map, row-major over cells, then the A shapes of a cell."""
    shapes = anchor_shapes(scales, ratios)
    ys = (tf.cast(tf.range(height), tf.float32) + 0.5) * stride
    xs = (tf.cast(tf.range(width), tf.float32) + 0.5) * stride
    cy, cx = tf.meshgrid(ys, xs, indexing="ij")
    centres = tf.reshape(tf.stack([cx, cy], -1), (-1, 1, 2))           # (HW, 1, 2)
    half = shapes[None] / 2.0                                          # (1, A, 2)
    return tf.reshape(tf.concat([centres - half, centres + half], -1), (-1, 4))


def box_area(boxes):
    return tf.maximum(boxes[..., 2] - boxes[..., 0], 0.0) * tf.maximum(boxes[..., 3] - boxes[..., 1], 0.0)


def box_iou(a, b):
    """IoU of boxes (..., N, 4) with boxes (..., M, 4) -> (..., N, M); 0 where the union is empty."""
    a, b = a[..., :, None, :], b[..., None, :, :]
    w = tf.maximum(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]), 0.0)
    h = tf.maximum(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = w * h
    union = box_area(a) + box_area(b) - inter
    return tf.math.divide_no_nan(inter, union)


def _centres(boxes):
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    return boxes[..., 0] + 0.5 * w, boxes[..., 1] + 0.5 * h, w, h


def encode(boxes, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    """Deltas (..., 4) [t_x, t_y, t_w, t_h] that take `anchors` to `boxes` (both (..., 4), broadcast)."""
    x, y, w, h = _centres(boxes)
    xa, ya, wa, ha = _centres(anchors)
    wa, ha = tf.maximum(wa, 1e-6), tf.maximum(ha, 1e-6)
    wx, wy, ww, wh = weights
    return tf.stack([wx * (x - xa) / wa, wy * (y - ya) / ha,
                     ww * tf.math.log(tf.maximum(w, 1e-6) / wa), wh * tf.math.log(tf.maximum(h, 1e-6) / ha)], -1)


def decode(deltas, anchors, weights=(1.0, 1.0, 1.0, 1.0)):
    """The inverse of :func:`encode`: boxes (..., 4) from deltas and anchors."""
    xa, ya, wa, ha = _centres(anchors)
    wx, wy, ww, wh = weights
    x = xa + deltas[..., 0] / wx * wa
    y = ya + deltas[..., 1] / wy * ha
    w = wa * tf.exp(tf.minimum(deltas[..., 2] / ww, MAX_LOG_SCALE))
    h = ha * tf.exp(tf.minimum(deltas[..., 3] / wh, MAX_LOG_SCALE))
    return tf.stack([x - 0.5 * w, y - 0.5 * h, x + 0.5 * w, y + 0.5 * h], -1)


def clip_boxes(boxes, height, width):
    """Boxes cut to the image [0, width] x [0, height] (`height`, `width` scalars)."""
    height, width = tf.cast(height, boxes.dtype), tf.cast(width, boxes.dtype)
    x1, y1, x2, y2 = tf.unstack(boxes, axis=-1)
    return tf.stack([tf.clip_by_value(x1, 0.0, width), tf.clip_by_value(y1, 0.0, height),
                     tf.clip_by_value(x2, 0.0, width), tf.clip_by_value(y2, 0.0, height)], -1)


def smooth_l1(x, beta=1.0):
    """Elementwise smooth L1 (Girshick 2015): 0.5 x^2 / beta where |x| < beta, else |x| - 0.5 beta."""
    ax = tf.abs(x)
    return tf.where(ax < beta, 0.5 * ax * ax / beta, ax - 0.5 * beta)


def _yx(boxes):
    """[x1, y1, x2, y2] -> [y1, x1, y2, x2], the order of TensorFlow's NMS ops."""
    return tf.gather(boxes, [1, 0, 3, 2], axis=-1)


# -- sampling and targets ----------------------------------------------------------------------------------------
def sample(candidates, counts, seed=None):
    """A random subset of each row's True entries: at most counts[b] of row b (candidates (B, N) bool)."""
    keys = tf.random.uniform(tf.shape(candidates), seed=seed)
    keys = tf.where(candidates, keys, 2.0)                  # non-candidates rank last
    ranks = tf.argsort(tf.argsort(keys, axis=-1), axis=-1)  # rank of every entry in its row
    return tf.logical_and(candidates, ranks < tf.cast(counts, ranks.dtype)[:, None])


def anchor_targets(anchors, gt_boxes, gt_valid, height, width, *, positive_iou=0.7, negative_iou=0.3,
                   batch=256, positive_fraction=0.5, seed=None):
    """The RPN's training targets (paper sec. 3.1.2).

    Positive: IoU >= positive_iou with some box, or the anchor (one of the anchors) of highest IoU for a box;
    negative: IoU < negative_iou with every box and not positive; anchors crossing the image border are
    ignored. ``batch`` anchors are sampled per image, at most ``positive_fraction`` of them positive, the rest
    negative. An image without boxes gets only negatives.

    Args: anchors (N, 4); gt_boxes (B, G, 4); gt_valid (B, G) bool; height, width of the input.
    Returns: labels (B, N) float32: 1 positive, 0 negative, -1 not sampled; deltas (B, N, 4) towards each
      anchor's best box (meaningful where the label is 1).
    """
    inside = ((anchors[:, 0] >= 0) & (anchors[:, 1] >= 0) & (anchors[:, 2] <= tf.cast(width, tf.float32))
              & (anchors[:, 3] <= tf.cast(height, tf.float32)))[None]                       # (1, N)
    iou = box_iou(tf.broadcast_to(anchors[None], [tf.shape(gt_boxes)[0], tf.shape(anchors)[0], 4]), gt_boxes)
    iou = tf.where(gt_valid[:, None, :] & inside[..., None], iou, -1.0)                        # (B, N, G)
    best_iou = tf.reduce_max(iou, -1)                                                          # (B, N)
    best_box = tf.argmax(iou, -1, output_type=tf.int32)
    box_best = tf.reduce_max(iou, 1, keepdims=True)                                            # (B, 1, G)
    is_box_best = tf.reduce_any((iou >= box_best) & (box_best > 0) & gt_valid[:, None, :], -1)
    positive = (inside & (best_iou >= positive_iou)) | is_box_best
    negative = inside & (best_iou < negative_iou) & ~positive
    n_pos = tf.minimum(tf.reduce_sum(tf.cast(positive, tf.int32), -1), int(batch * positive_fraction))
    positive = sample(positive, n_pos, seed)
    n_pos = tf.reduce_sum(tf.cast(positive, tf.int32), -1)
    negative = sample(negative, batch - n_pos, seed)
    labels = tf.where(positive, 1.0, tf.where(negative, 0.0, -1.0))
    matched = tf.gather(gt_boxes, best_box, batch_dims=1)                                      # (B, N, 4)
    return labels, encode(matched, anchors[None])


def roi_targets(rois, roi_valid, gt_boxes, gt_classes, gt_valid, *, batch=64, foreground_fraction=0.25,
                foreground_iou=0.5, background_iou=(0.0, 0.5), weights=(10.0, 10.0, 5.0, 5.0), seed=None):
    """The RoI head's training sample (Fast R-CNN, Girshick 2015, sec. 2.3): per image ``batch`` RoIs, at most
    ``foreground_fraction`` of them foreground (IoU >= foreground_iou with a box: its class, its deltas), the
    rest background (IoU in [background_iou[0], background_iou[1])): class 0. The ground-truth boxes are added to
    the proposals first (as common implementations do), so early in training there are foreground RoIs.

    Args: rois (B, R, 4); roi_valid (B, R) bool; gt_boxes (B, G, 4); gt_classes (B, G) int (1..K);
      gt_valid (B, G) bool.
    Returns: sampled rois (B, batch, 4), their classes (B, batch) int32, deltas (B, batch, 4) (weighted),
      and a mask (B, batch) of the rows that hold a sampled RoI (fewer candidates than ``batch`` leave padding).
    """
    rois = tf.concat([rois, gt_boxes], 1)
    valid = tf.concat([roi_valid, gt_valid], 1)
    iou = tf.where(gt_valid[:, None, :], box_iou(rois, gt_boxes), -1.0)                      # (B, R + G, G)
    best_iou = tf.reduce_max(iou, -1)
    best_box = tf.argmax(iou, -1, output_type=tf.int32)
    lo, hi = background_iou
    foreground = valid & (best_iou >= foreground_iou)
    background = valid & ~foreground & (tf.maximum(best_iou, 0.0) >= lo) & (best_iou < hi)
    n_fg = tf.minimum(tf.reduce_sum(tf.cast(foreground, tf.int32), -1), int(round(batch * foreground_fraction)))
    foreground = sample(foreground, n_fg, seed)
    n_fg = tf.reduce_sum(tf.cast(foreground, tf.int32), -1)
    background = sample(background, batch - n_fg, seed)
    chosen = foreground | background
    # the chosen rows first (foreground before background), padding after: a stable sort on a key
    key = tf.where(foreground, 0, tf.where(background, 1, 2))
    order = tf.argsort(key, axis=-1, stable=True)[:, :batch]
    take = lambda t: tf.gather(t, order, batch_dims=1)  # noqa: E731
    picked = take(rois)
    classes = tf.where(take(foreground), tf.gather(gt_classes, take(best_box), batch_dims=1), 0)
    deltas = encode(tf.gather(gt_boxes, take(best_box), batch_dims=1), picked, weights)
    return picked, tf.cast(classes, tf.int32), deltas, take(chosen)


# -- proposals and detections ------------------------------------------------------------------------------------
def proposals(logits, deltas, anchors, height, width, *, pre_nms, post_nms, iou):
    """The RPN's proposals (paper sec. 3.3): the ``pre_nms`` best-scored anchors per image, moved by their deltas,
    clipped to the image, reduced by NMS at ``iou`` to at most ``post_nms``.

    Args: logits (B, N) objectness; deltas (B, N, 4); anchors (N, 4).
    Returns: boxes (B, post_nms, 4), scores (B, post_nms) (sigmoid), valid (B, post_nms) bool (rows past the
      number kept are zero padding).
    """
    k = tf.minimum(pre_nms, tf.shape(logits)[1])
    scores, index = tf.math.top_k(logits, k=k)
    boxes = decode(tf.gather(deltas, index, batch_dims=1), tf.gather(anchors, index))
    boxes = clip_boxes(boxes, height, width)
    boxes, scores, _, kept = tf.image.combined_non_max_suppression(
        _yx(boxes)[:, :, None, :], tf.sigmoid(scores)[..., None], max_output_size_per_class=post_nms,
        max_total_size=post_nms, iou_threshold=iou, score_threshold=0.0, clip_boxes=False)
    valid = tf.range(post_nms)[None] < kept[:, None]
    return _yx(boxes), scores, valid


def detections(class_logits, box_deltas, rois, roi_valid, height, width, *, weights, score_threshold, iou,
               max_per_class, max_total):
    """Final detections: softmax over the K + 1 classes, each RoI's class-specific boxes decoded and clipped,
    per-class NMS at ``iou`` and a score threshold (tf.image.combined_non_max_suppression).

    Args: class_logits (B, R, K + 1); box_deltas (B, R, 4K); rois (B, R, 4); roi_valid (B, R).
    Returns {"boxes": (B, D, 4) pixel [x_min, y_min, x_max, y_max], "scores": (B, D), "classes": (B, D) int32 in
      1..K (0 in padding rows), "num_detections": (B,) int32}, D = max_total, best first.
    """
    probabilities = tf.nn.softmax(tf.cast(class_logits, tf.float32), -1)
    probabilities = tf.where(roi_valid[..., None], probabilities, 0.0)
    b, r = tf.shape(box_deltas)[0], tf.shape(box_deltas)[1]
    deltas = tf.reshape(tf.cast(box_deltas, tf.float32), [b, r, -1, 4])                      # (B, R, K, 4)
    boxes = clip_boxes(decode(deltas, rois[:, :, None, :], weights), height, width)
    boxes, scores, classes, count = tf.image.combined_non_max_suppression(
        _yx(boxes), probabilities[..., 1:], max_output_size_per_class=max_per_class, max_total_size=max_total,
        iou_threshold=iou, score_threshold=score_threshold, clip_boxes=False)
    present = tf.range(max_total)[None] < count[:, None]
    classes = tf.where(present, tf.cast(classes, tf.int32) + 1, 0)
    return {"boxes": _yx(boxes), "scores": scores, "classes": classes, "num_detections": count}


# -- RoI pooling ---------------------------------------------------------------------------------------------------
def roi_align_boxes(rois, feature_height, feature_width, stride, size, pad=0):
    """Pixel boxes (..., 4) -> the normalised [y1, x1, y2, x2] that make tf.image.crop_and_resize sample a
    size x size grid at the centres of the box's size x size bins.

    crop_and_resize samples y1 (H - 1) ... y2 (H - 1) in feature-cell coordinates, ends included; cell i of a
    stride-s map is centred on input pixel coordinate (i + 0.5) s, so input coordinate y is cell coordinate
    y / s - 0.5. The first and last bin centres are y_min + h / (2 size) and y_max - h / (2 size). ``pad``: cells
    added before the map's first row and column (the feature_height and feature_width given include them).
    """
    x1, y1, x2, y2 = tf.unstack(rois, axis=-1)
    hx, hy = (x2 - x1) / (2.0 * size), (y2 - y1) / (2.0 * size)
    fh = tf.maximum(tf.cast(feature_height, tf.float32) - 1.0, 1.0)
    fw = tf.maximum(tf.cast(feature_width, tf.float32) - 1.0, 1.0)
    return tf.stack([((y1 + hy) / stride - 0.5 + pad) / fh, ((x1 + hx) / stride - 0.5 + pad) / fw,
                     ((y2 - hy) / stride - 0.5 + pad) / fh, ((x2 - hx) / stride - 0.5 + pad) / fw], -1)


@keras.saving.register_keras_serializable(package="keras_cnns")
class RoICropAndResize(keras.layers.Layer):
    """RoI pooling by bilinear crop-and-resize (as common Faster R-CNN implementations, instead of the paper's
    RoI max pooling): [features (B, H, W, C) at ``stride``, rois (B, R, 4) pixel boxes] -> (B * R, size, size, C),
    image b's RoIs first. Gradients flow to the features (not to the boxes' coordinates)."""

    def __init__(self, stride, size=14, **kwargs):
        super().__init__(**kwargs)
        self.stride, self.size = int(stride), int(size)

    def call(self, inputs):
        features, rois = inputs
        # The outer half cell of the map (a box at the image border samples it) would read crop_and_resize's
        # extrapolation value, 0; with the edge cells repeated once around the map it reads the edge instead.
        padded = tf.pad(tf.cast(features, tf.float32), [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
        shape = tf.shape(padded)
        b, r = tf.shape(rois)[0], tf.shape(rois)[1]
        boxes = roi_align_boxes(tf.stop_gradient(tf.cast(rois, tf.float32)), shape[1], shape[2], self.stride,
                                self.size, pad=1)
        index = tf.repeat(tf.range(b), r)
        crops = tf.image.crop_and_resize(padded, tf.reshape(boxes, [-1, 4]), index, [self.size, self.size])
        return tf.cast(crops, features.dtype)

    def compute_output_shape(self, input_shape):
        features, _ = input_shape
        return (None, self.size, self.size, features[-1])

    def get_config(self):
        return {**super().get_config(), "stride": self.stride, "size": self.size}
