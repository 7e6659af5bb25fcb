"""Faster R-CNN (Ren, He, Girshick, Sun 2015, "Faster R-CNN: Towards Real-Time Object Detection with Region
Proposal Networks") on the zoo's ResNet, in the "C4" form of He et al. 2015 (sec. 4.3 and appendix A), as the
source article draws it for ResNet-101:

    image (H, W, C)
      -> conv1 .. conv4_x of the ResNet (models.resnet: its stem and stages)   shared map (H/s, W/s, C4)
      -> RPN: 3x3 conv + ReLU, 1x1 objectness (A per cell) and 1x1 deltas (4A per cell)
      -> proposals: the best pre_nms anchors moved by their deltas, clipped, NMS at 0.7, post_nms kept
      -> RoI pooling: crop-and-resize of the shared map to 14x14 per proposal    (R, 14, 14, C4)
      -> conv5_x on every RoI, its first block striding to 7x7, average pooling   (R, C5)
      -> K + 1 class logits and class-specific box deltas (4K)
      -> softmax, decoding, per-class NMS and a score threshold:
         {"boxes" (B, D, 4), "scores" (B, D), "classes" (B, D), "num_detections" (B,)}

Boxes are pixel [x_min, y_min, x_max, y_max] with the max one past the last pixel, in the input's coordinates
(the package's one convention; keras_cnns.layers.detection converts once for TensorFlow's ops). ``classes``
index the dataset's class names (0 = background, never detected; padding rows past num_detections are 0).

Registered: ``frcnn_resnet101`` (the article's), ``frcnn_resnet50`` (stride 16, anchors 128/256/512 x ratios
1:2, 1:1, 2:1: the paper's for PASCAL/COCO-size images) and ``frcnn_resnet_small``, which trains on a CPU on the
Fashion-MNIST scenes (128x128, items 32..64 pixels): a ResNet-10 (one basic block per stage) at a quarter of
the width, whose trunk has output stride 8 instead of 16 (conv4_x's first block does not stride, so the
128x128 scenes give a 16x16 shared map rather than 8x8), anchors 24/40/64 pixels x ratios 1:2, 1:1, 2:1
(``DetectorConfig``), 150 proposals in training and 50 at test (a scene holds at most 4 items), 16 RoIs
per image in the head's batch (4 foreground).

Training (:meth:`FasterRCNN.train_step` inside model.fit; under MultiWorkerMirroredStrategy the custom loop of
keras_cnns.training.loop, both on :meth:`FasterRCNN.losses_on`) is the approximate joint training of the paper
(sec. 3.2): RPN and head losses summed, proposals treated as constants. Targets and losses
(keras_cnns.layers.detection):
  * RPN: anchors with IoU >= 0.7 positive, < 0.3 negative, each box's best anchor positive, anchors crossing
    the border ignored; 256 sampled per image, at most half positive. Loss = sigmoid cross-entropy over the
    sampled anchors / their number + smooth L1 (beta 1/9) of the positive anchors' deltas / the number of
    sampled anchors (the paper's lambda = 10 with N_reg ~ 2,400 locations is about the same weight).
  * Head: 64 RoIs per image (16 for the small one), 25% foreground (IoU >= 0.5), background IoU in [0, 0.5),
    the ground-truth boxes added to the proposals; deltas divided by (0.1, 0.1, 0.2, 0.2). Loss = softmax
    cross-entropy over the sampled RoIs / their number + smooth L1 (beta 1) of the foreground RoIs' deltas of
    their own class / the number of sampled RoIs.
  Images without boxes give only negatives and background (every normaliser is at least 1: no NaN).

Deviations from the paper: sigmoid objectness (one logit per anchor) instead of a 2-way softmax (the same
model); RoI pooling by bilinear crop-and-resize to 14x14 instead of RoI max pooling; no minimum proposal size;
ground-truth boxes added to the RoI candidates; ImageNet-pretrained trunks are optional (``backbone_weights=``:
"imagenet" for 50/101, or a trained classifier of the same ResNet); batch norm frozen for the 50/101 trunks
(as the paper, for ImageNet starts) and trained for the small one, which starts from scratch.
"""

import dataclasses
import os
from typing import Tuple

import keras
import tensorflow as tf

from keras_cnns.layers import detection as det
from keras_cnns.models import resnet
from keras_cnns.models.common import check_args, load_keras_file, load_weights, replace_settings
from keras_cnns.registry import register_model

PAPER = 'Ren et al. 2015, "Faster R-CNN"; He et al. 2015 (ResNet), sec. 4.3 "C4"'
CONV5 = 3  # index of conv5_x among the stages (conv2_x is 0)


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """One detector: its trunk and every constant of the paper's recipe.

    Attributes:
      resnet: the ResNet row (models.resnet.ResNetConfig) and ``width`` its filter multiplier.
      trunk_stride: output stride of the shared map (16 in the paper; 8 keeps conv4_x at stride 8).
      anchor_scales, anchor_ratios: anchor sides in input pixels (sqrt of the area) and height/width ratios.
      rpn_channels: filters of the RPN's 3x3 convolution (512 in the paper for VGG/ResNet).
      rpn_batch, rpn_positive_fraction, rpn_positive_iou, rpn_negative_iou: RPN sampling and labels.
      pre_nms_train, post_nms_train, pre_nms_test, post_nms_test, proposal_iou: proposals.
      roi_size: RoI pooling output (14: conv5_x's first block strides it to 7).
      roi_batch, foreground_fraction, foreground_iou, background_iou: RoI sampling.
      box_weights: the head's delta multipliers (1 / (0.1, 0.1, 0.2, 0.2)).
      score_threshold, detection_iou, max_per_class, max_detections: inference.
      frozen_batch_norm: batch norm of the trunk and conv5_x kept at its statistics (ImageNet starts).
    """

    resnet: resnet.ResNetConfig
    width: float = 1.0
    trunk_stride: int = 16
    anchor_scales: Tuple[float, ...] = (128.0, 256.0, 512.0)
    anchor_ratios: Tuple[float, ...] = (0.5, 1.0, 2.0)
    rpn_channels: int = 512
    rpn_batch: int = 256
    rpn_positive_fraction: float = 0.5
    rpn_positive_iou: float = 0.7
    rpn_negative_iou: float = 0.3
    pre_nms_train: int = 12000
    post_nms_train: int = 2000
    pre_nms_test: int = 6000
    post_nms_test: int = 300
    proposal_iou: float = 0.7
    roi_size: int = 14
    roi_batch: int = 64
    foreground_fraction: float = 0.25
    foreground_iou: float = 0.5
    background_iou: Tuple[float, float] = (0.0, 0.5)
    box_weights: Tuple[float, ...] = (10.0, 10.0, 5.0, 5.0)
    score_threshold: float = 0.05
    detection_iou: float = 0.5
    max_per_class: int = 100
    max_detections: int = 100
    frozen_batch_norm: bool = True

    @property
    def num_anchors(self):
        return len(self.anchor_scales) * len(self.anchor_ratios)


# The scenes' items are 32..64-pixel squares whose tight boxes are 12..64 pixels a side: anchors of 24, 40 and
# 64 pixels at three ratios cover them at IoU >= 0.5 (trousers 1:2, bags 2:1).
SMALL_RESNET = resnet.ResNetConfig("basic", (1, 1, 1, 1), (64, 128, 256, 512), "imagenet", "B")
CONFIGS = {
    "frcnn_resnet101": DetectorConfig(resnet.CONFIGS["resnet101"]),
    "frcnn_resnet50": DetectorConfig(resnet.CONFIGS["resnet50"]),
    "frcnn_resnet_small": DetectorConfig(
        SMALL_RESNET, width=0.25, trunk_stride=8, anchor_scales=(24.0, 40.0, 64.0), rpn_channels=128,
        pre_nms_train=1000, post_nms_train=150, pre_nms_test=300, post_nms_test=50, roi_batch=16,
        max_per_class=20, max_detections=20, frozen_batch_norm=False),
}
# The classifier whose trunk each detector can start from (backbone_weights="imagenet").
BACKBONES = {"frcnn_resnet101": "resnet101", "frcnn_resnet50": "resnet50", "frcnn_resnet_small": None}
LOSSES = ("rpn_objectness", "rpn_box", "head_class", "head_box")


def detector_config(variant, overrides=None):
    """The CONFIGS row of `variant` with some fields replaced (``overrides``: {field: value})."""
    config = replace_settings(CONFIGS[variant], overrides, f"{variant} (detector)", fixed=("resnet",))
    if config.trunk_stride not in (8, 16):
        raise ValueError(f"{variant}: trunk_stride must be 8 or 16. Received: trunk_stride={config.trunk_stride!r}")
    return config


def _trunk(config, channels):
    """conv1 .. conv4_x: (H, W, C) -> (H/s, W/s, C4), s = config.trunk_stride."""
    inputs = keras.Input((None, None, channels), name="image")
    x = resnet.stem(inputs, config.resnet, config.width)                          # (H/4, W/4, 64w)
    for index in range(CONV5):
        strides = None if index < 2 or config.trunk_stride == 16 else 1
        x = resnet.stage(x, config.resnet, index, strides=strides, width=config.width)
    return keras.Model(inputs, x, name="backbone")                                # (H/s, W/s, C4)


def _rpn(config, channels):
    """The RPN head: (h, w, C4) -> objectness (h, w, A) and deltas (h, w, 4A). 1x1 layers start N(0, 0.01)."""
    inputs = keras.Input((None, None, channels), name="features")
    x = keras.layers.Conv2D(config.rpn_channels, 3, padding="same", activation="relu", name="rpn_conv")(inputs)
    small = keras.initializers.RandomNormal(stddev=0.01)
    logits = keras.layers.Conv2D(config.num_anchors, 1, kernel_initializer=small, name="rpn_objectness")(x)
    deltas = keras.layers.Conv2D(4 * config.num_anchors, 1, kernel_initializer=small, name="rpn_deltas")(x)
    return keras.Model(inputs, [logits, deltas], name="rpn")


def _head(config, channels, num_classes):
    """conv5_x on each pooled RoI (first block strides 14 -> 7), average pooling, K + 1 logits, 4K deltas."""
    inputs = keras.Input((config.roi_size, config.roi_size, channels), name="roi")
    x = resnet.stage(inputs, config.resnet, CONV5, strides=2, width=config.width)   # (7, 7, C5)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    logits = keras.layers.Dense(num_classes, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                                name="class_logits")(x)
    deltas = keras.layers.Dense(4 * (num_classes - 1), kernel_initializer=keras.initializers.RandomNormal(
        stddev=0.001), name="box_deltas")(x)
    return keras.Model(inputs, [logits, deltas], name="box_head")


@keras.saving.register_keras_serializable(package="keras_cnns")
class FasterRCNN(keras.Model):
    """A Faster R-CNN detector (see the module docstring). Calling it on float32 images (B, H, W, C),
    preprocessed as in training, gives the detections dict; model.fit on (images, {"boxes" (B, G, 4),
    "classes" (B, G), "num_objects" (B,)}) trains it with :meth:`train_step`.

    Args:
      variant: a CONFIGS name; overrides: {DetectorConfig field: value} (tests use small settings).
      num_classes: K + 1, background included (class 0).
      channels: input channels.
    """

    def __init__(self, variant, num_classes, channels=3, overrides=None, **kwargs):
        super().__init__(**kwargs)
        if num_classes < 2:
            raise ValueError(f"{variant}: num_classes counts the background too, so it is at least 2. "
                             f"Received: num_classes={num_classes!r}")
        self.variant, self.num_classes, self.channels = variant, int(num_classes), int(channels)
        self.overrides = dict(overrides or {})
        self.config = config = detector_config(variant, self.overrides)
        self.backbone = _trunk(config, self.channels)
        c4 = resnet.stage_channels(config.resnet, CONV5 - 1, config.width)
        self.rpn = _rpn(config, c4)
        self.roi_pool = det.RoICropAndResize(config.trunk_stride, config.roi_size, name="roi_pool")
        self.box_head = _head(config, c4, self.num_classes)
        if config.frozen_batch_norm:
            for model in (self.backbone, self.box_head):
                for layer in model.layers:
                    if isinstance(layer, keras.layers.BatchNormalization):
                        layer.trainable = False
        self._trackers = {name: keras.metrics.Mean(name=name) for name in ("loss",) + LOSSES}
        self.built = True

    def build(self, input_shape=None):  # every weight exists once __init__ has built the sub-models
        self.built = True

    # -- the graph ----------------------------------------------------------------------------------------------
    def _rpn_outputs(self, features, training):
        logits, deltas = self.rpn(features, training=training)
        b = tf.shape(logits)[0]
        return tf.reshape(tf.cast(logits, tf.float32), [b, -1]), tf.reshape(tf.cast(deltas, tf.float32), [b, -1, 4])

    def _anchors(self, features):
        shape = tf.shape(features)
        c = self.config
        return det.anchor_grid(shape[1], shape[2], c.trunk_stride, c.anchor_scales, c.anchor_ratios)

    def _head_outputs(self, features, rois, training):
        crops = self.roi_pool([features, rois])
        logits, deltas = self.box_head(crops, training=training)
        b, r = tf.shape(rois)[0], tf.shape(rois)[1]
        return (tf.reshape(tf.cast(logits, tf.float32), [b, r, self.num_classes]),
                tf.reshape(tf.cast(deltas, tf.float32), [b, r, 4 * (self.num_classes - 1)]))

    def call(self, images, training=False):
        c = self.config
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        features = self.backbone(images, training=False)
        logits, deltas = self._rpn_outputs(features, False)
        rois, _, valid = det.proposals(logits, deltas, self._anchors(features), height, width,
                                       pre_nms=c.pre_nms_test, post_nms=c.post_nms_test, iou=c.proposal_iou)
        class_logits, box_deltas = self._head_outputs(features, rois, False)
        return det.detections(class_logits, box_deltas, rois, valid, height, width, weights=c.box_weights,
                              score_threshold=c.score_threshold, iou=c.detection_iou,
                              max_per_class=c.max_per_class, max_total=c.max_detections)

    def losses_on(self, images, targets, training=True):
        """The four losses of a batch (module docstring) as a dict of scalars, each normalised over the whole
        batch. The one place they are computed: train_step and test_step (model.fit) call it, and so does the
        strategy.run loop of keras_cnns.training.loop under MultiWorkerMirroredStrategy."""
        c = self.config
        height, width = tf.shape(images)[1], tf.shape(images)[2]
        gt_boxes = tf.cast(targets["boxes"], tf.float32)
        gt_classes = tf.cast(targets["classes"], tf.int32)
        gt_valid = tf.range(tf.shape(gt_boxes)[1])[None] < tf.cast(targets["num_objects"], tf.int32)[:, None]
        gt_valid = gt_valid & (gt_classes > 0)

        features = self.backbone(images, training=training)
        logits, deltas = self._rpn_outputs(features, training)
        anchors = self._anchors(features)
        labels, anchor_deltas = det.anchor_targets(
            anchors, gt_boxes, gt_valid, height, width, positive_iou=c.rpn_positive_iou,
            negative_iou=c.rpn_negative_iou, batch=c.rpn_batch, positive_fraction=c.rpn_positive_fraction)
        sampled = tf.cast(labels >= 0, tf.float32)
        positive = tf.cast(labels > 0, tf.float32)
        n_anchors = tf.maximum(tf.reduce_sum(sampled), 1.0)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.maximum(labels, 0.0), logits=logits)
        rpn_objectness = tf.reduce_sum(bce * sampled) / n_anchors
        rpn_box = tf.reduce_sum(
            tf.reduce_sum(det.smooth_l1(deltas - anchor_deltas, 1.0 / 9), -1) * positive) / n_anchors

        rois, _, valid = det.proposals(tf.stop_gradient(logits), tf.stop_gradient(deltas), anchors, height, width,
                                       pre_nms=c.pre_nms_train, post_nms=c.post_nms_train, iou=c.proposal_iou)
        rois, classes, roi_deltas, chosen = det.roi_targets(
            rois, valid, gt_boxes, gt_classes, gt_valid, batch=c.roi_batch, foreground_fraction=c.foreground_fraction,
            foreground_iou=c.foreground_iou, background_iou=c.background_iou, weights=c.box_weights)
        class_logits, box_deltas = self._head_outputs(features, rois, training)
        chosen = tf.cast(chosen, tf.float32)
        n_rois = tf.maximum(tf.reduce_sum(chosen), 1.0)
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=classes, logits=class_logits)
        head_class = tf.reduce_sum(ce * chosen) / n_rois
        b, r = tf.shape(rois)[0], tf.shape(rois)[1]
        own = tf.gather(tf.reshape(box_deltas, [b, r, -1, 4]), tf.maximum(classes - 1, 0), batch_dims=2)
        foreground = chosen * tf.cast(classes > 0, tf.float32)
        head_box = tf.reduce_sum(tf.reduce_sum(det.smooth_l1(own - roi_deltas, 1.0), -1) * foreground) / n_rois
        return {"rpn_objectness": rpn_objectness, "rpn_box": rpn_box, "head_class": head_class,
                "head_box": head_box}

    # -- model.fit ---------------------------------------------------------------------------------------------
    @property
    def metrics(self):
        return list(self._trackers.values())

    def _record(self, losses, total):
        self._trackers["loss"].update_state(total)
        for name in LOSSES:
            self._trackers[name].update_state(losses[name])
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    def train_step(self, data):
        images, targets = data[0], data[1]
        with tf.GradientTape() as tape:
            losses = self.losses_on(images, targets, training=True)
            total = tf.add_n(list(losses.values()))
            # under a strategy the replicas' gradients are summed: each replica's loss is its share of the mean
            scaled = total / tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, total.dtype)
            scaled = self.optimizer.scale_loss(scaled) if hasattr(self.optimizer, "scale_loss") else scaled
        variables = self.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._record(losses, total)

    def test_step(self, data):
        images, targets = data[0], data[1]
        losses = self.losses_on(images, targets, training=False)
        return self._record(losses, tf.add_n(list(losses.values())))

    # -- saving -----------------------------------------------------------------------------------------------
    def get_config(self):
        return {"variant": self.variant, "num_classes": self.num_classes, "channels": self.channels,
                "overrides": self.overrides, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def load_backbone(model, source):
    """Copies a ResNet classifier's weights into the detector's trunk and conv5_x, layer by layer by name.

    `source`: a keras.Model, a .keras file of the zoo, or "imagenet" (keras.applications' weights, the 50/101
    trunks only). Returns the names of the layers copied.
    """
    if isinstance(source, str) and source == "imagenet":
        name = BACKBONES.get(model.variant)
        if name is None:
            raise ValueError(f"{model.variant} has no ImageNet trunk; pass a trained classifier of the same ResNet. "
                             f"Received: backbone_weights='imagenet'")
        from keras_cnns.registry import get_model

        source = get_model(name, include_top=False, weights="imagenet", input_shape=(None, None, 3))
    elif not isinstance(source, keras.Model):
        source = load_keras_file(os.fspath(source))
    theirs = {layer.name: layer for layer in source.layers if layer.weights}
    copied = []
    for part in (model.backbone, model.box_head):
        for layer in part.layers:
            if layer.weights and layer.name in theirs and layer.name.startswith("conv"):
                values = theirs[layer.name].get_weights()
                if [tuple(v.shape) for v in values] != [tuple(w.shape) for w in layer.weights]:
                    raise ValueError(f"{model.variant}: layer {layer.name} of the backbone has other shapes than "
                                     f"the detector's; pass a classifier of the same ResNet and channels. "
                                     f"Received: backbone_weights from {source.name!r}")
                layer.set_weights(values)
                copied.append(layer.name)
    if not copied:
        raise ValueError(f"{model.variant}: the backbone {source.name!r} shares no layer with this detector. "
                         f"Received: backbone_weights={source.name!r}")
    return copied


def _register(variant, deviations):
    @register_model(variant, family="frcnn", paper=PAPER, input_shape=(None, None, 3), min_input_size=32,
                    test_input_shape=(64, 64, 1), deviations=deviations, output="detections", task="detection",
                    backends=("tensorflow",))
    def build(*, input_shape=None, num_classes=11, include_top=True, pooling=None, classifier_activation="softmax",
              weights=None, backbone_weights=None, overrides=None, name=variant):
        shape = check_args(variant, input_shape=input_shape, num_classes=num_classes, include_top=include_top,
                           pooling=pooling, classifier_activation=classifier_activation, weights=weights,
                           default_shape=(None, None, 3), min_size=32, any_size_top=True)
        model = FasterRCNN(variant, num_classes, channels=shape[-1], overrides=overrides, name=name)
        if not include_top:
            return model.backbone
        if weights is not None:
            load_weights(model, weights)
        elif backbone_weights is not None:
            load_backbone(model, backbone_weights)
        return model

    build.__name__ = build.__qualname__ = variant
    build.__doc__ = (f"Faster R-CNN ({PAPER}), {variant}: (H, W, C) -> boxes, scores, classes, num_detections. "
                     f"Deviations: {deviations}.")
    return build


_COMMON = "crop-and-resize RoI pooling; sigmoid objectness; ground-truth boxes among the RoI candidates"
for _variant, _deviations in {
        "frcnn_resnet101": _COMMON,
        "frcnn_resnet50": _COMMON,
        "frcnn_resnet_small": _COMMON + "; ResNet-10 at 1/4 width, trunk stride 8, anchors 24/40/64 (not in the paper)",
}.items():
    globals()[_variant] = _register(_variant, _deviations)
