"""Detection data from TensorFlow Datasets: a prepared detection dataset (``tfds:voc/2007``, ``tfds:coco/2017``,
``tfds:fashion_mnist_scenes``, ...) handed to ``model.fit`` in the targets the Fashion-MNIST scenes give
(:func:`keras_cnns.data.scenes.scene_dataset` with task "detection"), so Faster R-CNN (Ren et al. 2015;
keras_cnns.models.faster_rcnn) trains on either:

  (float32 image (B, H, W, C) through a :class:`Preprocessing`,
   {"boxes": float32 (B, M, 4), "classes": int32 (B, M), "num_objects": int32 (B,)})

Boxes are in the package's one convention (docs/detection.md, "Box convention"): pixel ``[x_min, y_min, x_max,
y_max]`` of the *resized* image, x_max and y_max one past the last pixel. Rows past num_objects are padding
(class 0, box [0, 0, 0, 0]); M is ``max_objects`` (default :data:`MAX_OBJECTS`).

What is read from the builder's features (found by type, not by a fixed layout):
  * the image: the ``Image`` feature (``image`` when there are several);
  * the objects: a ``Sequence`` holding a ``BBoxFeature`` (TFDS's normalised [ymin, xmin, ymax, xmax];
    ``bbox`` when there are several) and a ``ClassLabel`` (``label`` when there are several). A dataset without
    such a sequence is refused: it has no boxes to train a detector on.
Classes: 0 is the background, so the dataset's ClassLabel value v becomes class v + 1 and the class names are
"background" followed by the ClassLabel's names (a ClassLabel whose first name already is "background", as in
tfds:fashion_mnist_scenes, is kept as it is).

Conversion: the image is resized to the Preprocessing's size (``resize="resize"``: height and width each stretched,
the aspect not kept) and the normalised box multiplied by that size: x_min = xmin * W, y_min = ymin * H,
x_max = xmax * W, y_max = ymax * H. That is the original pixel box scaled by the resize factors W / w and
H / h, since TFDS normalises by the original w and h. TFDS's VOC builder divides VOC's 1-based pixel numbers by
the size as they are, so a VOC box's max edge lands one past its last pixel (our convention) and its min edge
one pixel inside; that one-pixel shift of the builder is not corrected here.

Objects left out of the targets, in every split: those flagged ``is_difficult`` (VOC: its own evaluation ignores
them; here they are dropped, so a detection of one counts as a false positive in the package's mAP, a little
below VOC's official number) and ``is_crowd`` (COCO's crowd regions, not one object each). An image with more
than M remaining objects keeps its first M.

Splits: train, validation and test as the builder has them, less the splits the builder says carry no boxes
(COCO's test splits, VOC 2012's test). Without a validation split, a seeded ``validation_split`` fraction of
train is held out for it (as the classification sources do); without an annotated test split, the validation
split is the test split (and validation is then held out of train), else the test split is train itself.

Nothing is downloaded: a dataset not prepared under data_dir fails at once, in one line, saying how to prepare it
(:func:`keras_cnns.data.sources.open_tfds_builder`).
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from keras_cnns.data.augment import augment_batches, joint_augmentation
from keras_cnns.data.pipeline import Datasets, _memory_cache_note, split_indices, tuning_options
from keras_cnns.data.preprocessing import Preprocessing
from keras_cnns.data.sources import _to_channels, at_positions, open_tfds_builder

AUTOTUNE = tf.data.AUTOTUNE
BACKGROUND = "background"
MAX_OBJECTS = 100  # COCO's most boxes in one training image is 93, VOC's 42
# Images of several sizes are trained at this size unless one is given: Faster R-CNN rescales the shorter side to
# 600 (Ren et al. sec. 3.3); here both sides go to 600, since one fixed size batches.
DEFAULT_SIZE = (600, 600)
DROPPED_FLAGS = ("is_difficult", "is_crowd")
SCENES = "fashion_mnist_scenes"
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class DetectionFeatures:
    """Where a TFDS detection dataset keeps its parts: ``example[image]``, ``example[objects][bbox]``,
    ``example[objects][label]`` and the boolean object flags whose objects are dropped (``flags``)."""

    image: str
    objects: str
    bbox: str
    label: str
    flags: Tuple[str, ...]


def _pick(keys, preferred, what, name):
    if preferred in keys:
        return preferred
    if len(keys) == 1:
        return keys[0]
    raise ValueError(f"TFDS dataset {name!r} has several {what} features and none named {preferred!r}: cannot "
                     f"tell which to use. Received: {sorted(keys)}")


def find_features(features, name):
    """The :class:`DetectionFeatures` of a builder's ``info.features`` (see the module docstring); a ValueError
    names the dataset when it has no image or no boxes."""
    import tensorflow_datasets as tfds

    tf_features = tfds.features
    images = [k for k, f in features.items() if isinstance(f, tf_features.Image)]
    if not images:
        raise ValueError(f"TFDS dataset {name!r} has no Image feature, so it is no detection dataset. "
                         f"Received features: {sorted(features.keys())}")
    candidates = []
    for key, feature in features.items():
        inner = getattr(feature, "feature", None) if isinstance(feature, tf_features.Sequence) else None
        if not isinstance(inner, tf_features.FeaturesDict):
            continue
        boxes = [k for k, f in inner.items() if isinstance(f, tf_features.BBoxFeature)]
        labels = [k for k, f in inner.items() if isinstance(f, tf_features.ClassLabel)]
        if boxes and labels:
            candidates.append((key, boxes, labels, inner))
    if not candidates:
        raise ValueError(f"TFDS dataset {name!r} has no boxes: a detection dataset needs a Sequence feature "
                         f"holding a BBoxFeature and a ClassLabel (as voc's and coco's objects/bbox and "
                         f"objects/label). Received features: {sorted(features.keys())}")
    objects = _pick([c[0] for c in candidates], "objects", "box sequence", name)
    _, boxes, labels, inner = next(c for c in candidates if c[0] == objects)
    flags = tuple(k for k in DROPPED_FLAGS if k in inner.keys())
    return DetectionFeatures(image=_pick(images, "image", "Image", name), objects=objects,
                             bbox=_pick(boxes, "bbox", f"{objects}/BBoxFeature", name),
                             label=_pick(labels, "label", f"{objects}/ClassLabel", name), flags=flags)


def _unannotated_splits(builder):
    """The splits a builder's config says carry no boxes: VOC 2012's test (``has_test_annotations``), COCO's
    test splits (annotation type "none")."""
    config = builder.builder_config
    found = set()
    if config is not None and getattr(config, "has_test_annotations", True) is False:
        found.add("test")
    for split in getattr(config, "splits", None) or ():
        if getattr(split, "annotation_type", None) == "none":
            found.add(str(getattr(split, "name", "")))
    return found


class TfdsDetectionSource:
    """A TFDS detection dataset prepared under data_dir (see the module docstring).

    Attributes: name ("tfds:NAME"), class_names ("background" first), channels (1 or 3), image_size ((H, W), or
    None when sizes vary), splits (train, validation, test: the ones it has), features (DetectionFeatures),
    shift (added to the ClassLabel values: 1, or 0 when the ClassLabel already names the background first) and
    ``origin``: for each split, (the builder's split, the positions read from it, or None for all of it).
    """

    # No single-item photo convention (keras_cnns.images.to_convention): an image holds many things.
    image_convention = None

    def __init__(self, name, data_dir=None, validation_split=0.1, seed=0):
        if name.split("/")[0] == SCENES:
            import keras_cnns.data.tfds_scenes  # noqa: F401  registers the builder with TFDS
        self._builder = builder = open_tfds_builder(name, data_dir)
        self.name = f"tfds:{name}"
        info = builder.info
        self.features = find_features(info.features, name)
        names = tuple(info.features[self.features.objects].feature[self.features.label].names)
        self.shift = 0 if names and names[0] == BACKGROUND else 1
        self.class_names = names if self.shift == 0 else (BACKGROUND,) + names
        shape = info.features[self.features.image].shape
        self.channels = 1 if shape[-1] == 1 else 3
        self.image_size = (shape[0], shape[1]) if shape[0] and shape[1] else None

        annotated = [s for s in info.splits if s not in _unannotated_splits(builder)]
        if "train" not in annotated:
            raise ValueError(f"TFDS dataset {name!r} has no train split with boxes. Received: splits "
                             f"{sorted(info.splits)}, of which without boxes {sorted(_unannotated_splits(builder))}")
        origin = {"train": ("train", None)}
        test = next((s for s in ("test", "validation") if s in annotated), "train")
        if "validation" in annotated and test != "validation":
            origin["validation"] = ("validation", None)
        elif validation_split:
            train_idx, val_idx = split_indices(self._split_size("train"), validation_split, seed)
            origin["train"], origin["validation"] = ("train", train_idx), ("train", val_idx)
        origin["test"] = origin["train"] if test == "train" else (test, None)
        self.origin = origin
        self.splits = tuple(s for s in SPLITS if s in origin)

    @property
    def num_classes(self):
        return len(self.class_names)

    def _split_size(self, split):
        return int(self._builder.info.splits[split].num_examples)

    def _check_split(self, split):
        if split not in self.splits:
            raise ValueError(f"{self.name} has the splits {self.splits}. Received: split={split!r}")

    def size(self, split):
        """Number of images in a split."""
        self._check_split(split)
        read, indices = self.origin[split]
        return self._split_size(read) if indices is None else len(indices)

    def examples(self, split):
        """tf.data.Dataset of (uint8 image (h, w, channels), float32 normalised bbox (N, 4) [ymin, xmin, ymax,
        xmax], int32 class (N,) with the background shift) in the split's fixed order, flagged objects dropped;
        its cardinality stated."""
        self._check_split(split)
        read, indices = self.origin[split]
        f, channels, shift = self.features, self.channels, self.shift
        ds = self._builder.as_dataset(split=read, shuffle_files=False)
        if indices is not None:
            ds = at_positions(ds, self._split_size(read), indices)

        def parts(example):
            objects = example[f.objects]
            kept = tf.ones_like(objects[f.label], dtype=tf.bool)
            for flag in f.flags:
                kept = tf.logical_and(kept, tf.logical_not(tf.cast(objects[flag], tf.bool)))
            bbox = tf.boolean_mask(tf.reshape(tf.cast(objects[f.bbox], tf.float32), [-1, 4]), kept)
            classes = tf.boolean_mask(tf.cast(objects[f.label], tf.int32), kept) + shift
            return _to_channels(example[f.image], channels), bbox, classes

        ds = ds.map(parts, num_parallel_calls=AUTOTUNE, deterministic=True)
        return ds.apply(tf.data.experimental.assert_cardinality(self.size(split)))

    def __repr__(self):
        sizes = ", ".join(f"{s}={self.size(s)}" for s in self.splits)
        return f"<TfdsDetectionSource {self.name!r}: {self.num_classes} classes, {sizes}>"


def load_detection(name, data_dir=None, validation_split=0.1, seed=0):
    """Opens "tfds:NAME", a TFDS detection dataset prepared under data_dir (e.g. tfds:voc/2007)."""
    if not isinstance(name, str) or not name.startswith("tfds:") or name == "tfds:":
        raise ValueError(f"Detection data from TFDS is named 'tfds:NAME' (e.g. 'tfds:voc/2007'). "
                         f"Received: name={name!r}")
    return TfdsDetectionSource(name[len("tfds:"):], data_dir=data_dir, validation_split=validation_split, seed=seed)


def default_preprocessing(source, size=None):
    """The :class:`Preprocessing` of a detection source: ``size`` (H, W), else the images' own size when they
    share one, else :data:`DEFAULT_SIZE`; stretched to it (``resize="resize"``, so boxes scale by the same
    factors) and scaled to [0, 1] (mean 0, std 255)."""
    size = tuple(size or source.image_size or DEFAULT_SIZE)
    return Preprocessing(size=size, channels=source.channels, resize="resize", mean=0.0, std=255.0)


def pixel_boxes(bbox, size):
    """TFDS's normalised [ymin, xmin, ymax, xmax] (N, 4) -> pixel [x_min, y_min, x_max, y_max] of an image of
    ``size`` (H, W), float32."""
    h, w = float(size[0]), float(size[1])
    bbox = tf.reshape(tf.cast(bbox, tf.float32), [-1, 4])
    return tf.gather(bbox, [1, 0, 3, 2], axis=1) * tf.constant([w, h, w, h], tf.float32)


def padded_targets(boxes, classes, max_objects=MAX_OBJECTS):
    """Boxes (N, 4) and classes (N,) -> {"boxes" (M, 4), "classes" (M,), "num_objects"}: the first M objects,
    then zero rows (class 0, box [0, 0, 0, 0])."""
    n = tf.minimum(tf.shape(classes)[0], max_objects)
    pad = max_objects - n
    return {"boxes": tf.ensure_shape(tf.pad(boxes[:n], [[0, pad], [0, 0]]), [max_objects, 4]),
            "classes": tf.ensure_shape(tf.pad(tf.cast(classes[:n], tf.int32), [[0, pad]]), [max_objects]),
            "num_objects": tf.cast(n, tf.int32)}


def detection_batches(examples, preprocessing, batch_size=8, max_objects=MAX_OBJECTS, shuffle=False, seed=0,
                      size=None, cache=True, drop_remainder=False, augment=None):
    """(uint8 image, normalised bbox, class) examples -> batches of (float32 image, targets) at the
    Preprocessing's size (the module docstring's form).

    Order: resize the image and scale its boxes -> cache (when ``cache``) -> shuffle (seeded, each epoch) ->
    batch -> augment (None or "flip": images and boxes mirrored together, seeded) -> normalise -> prefetch.
    Without the cache the shuffle comes first (a buffer of the raw images).
    """
    random = joint_augmentation(augment, "detection")
    prep = preprocessing
    if prep.resize != "resize":
        raise ValueError(f"Detection boxes are scaled with the image: the Preprocessing must stretch it "
                         f"(resize='resize'). Received: resize={prep.resize!r}")

    def fixed(image, bbox, classes):
        image = prep.resize_images(prep.convert_channels(image))
        return image, padded_targets(pixel_boxes(bbox, prep.size), classes, max_objects)

    ds = examples
    if shuffle and not cache:
        ds = ds.shuffle(min(size or 1000, 1000), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(fixed, num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
        if shuffle:
            ds = ds.shuffle(size or 10_000, seed=seed, reshuffle_each_iteration=True)
    ds = augment_batches(ds.batch(batch_size, drop_remainder=drop_remainder), random, seed)
    ds = ds.map(lambda images, targets: (prep.normalize(images), targets), num_parallel_calls=AUTOTUNE,
                deterministic=True)
    return ds.prefetch(AUTOTUNE).with_options(tuning_options())


def detection_datasets(source, preprocessing=None, batch_size=8, seed=0, limit=None, max_objects=MAX_OBJECTS,
                       drop_remainder=False, augment=None) -> Datasets:
    """Train (shuffled), validation and test pipelines of a :class:`TfdsDetectionSource` as a
    :class:`~keras_cnns.data.Datasets` (validation None when the source has none); ``augment`` (None or "flip")
    applies to the training split only. ``limit``: the first
    ``limit`` images of each split only (quick runs). The prepared images are cached in memory unless they would
    take more than half of it (:data:`keras_cnns.data.pipeline.MEMORY_CACHE_FRACTION`); then they are prepared
    again every epoch."""
    prep = default_preprocessing(source) if preprocessing is None else preprocessing
    sizes = {s: min(source.size(s), int(limit)) if limit else source.size(s) for s in source.splits}
    examples = {s: source.examples(s).take(sizes[s]) for s in source.splits}
    prepared = tf.data.Dataset.from_tensors((tf.zeros((*prep.size, prep.channels)), 0))  # one prepared image
    note = _memory_cache_note(prepared, sizes["train"], sizes.get("validation", 0) + sizes["test"], prep)
    made = {s: detection_batches(examples[s], prep, batch_size, max_objects, shuffle=s == "train", seed=seed,
                                 size=sizes[s], cache=not note, drop_remainder=drop_remainder and s == "train",
                                 augment=augment if s == "train" else None) for s in source.splits}
    return Datasets(train=made["train"], validation=made.get("validation"), test=made["test"],
                    class_names=tuple(source.class_names), train_size=sizes["train"],
                    validation_size=sizes.get("validation", 0), test_size=sizes["test"], preprocessing=prep,
                    batch_size=int(batch_size), augment=augment, train_indices=np.arange(sizes["train"]),
                    validation_indices=np.arange(sizes.get("validation", 0)), drop_remainder=bool(drop_remainder),
                    cache_note=note)
