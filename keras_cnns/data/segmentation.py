"""Segmentation data: (image, mask) pairs from the Fashion-MNIST scenes, from image/mask folder pairs or from a
TFDS segmentation dataset, all handed to ``model.fit`` in one form (FCN, Long et al. 2015, trains on it):

  (float32 image (B, H, W, C) through a :class:`Preprocessing`, int32 mask (B, H, W)), mask value = class index.

Folder pairs: ``root/images/NAME.jpg|png|...`` with ``root/masks/NAME.png`` (same stem; the mask a single-channel
or palette PNG whose pixel value is the class index, the image's width and height). With ``root/train``,
``root/validation`` (or ``val``) and ``root/test`` sub-folders each holding ``images/`` and ``masks/``, those are
the splits; otherwise ``root`` itself is the one split "train". Class names come from ``class_names=``, else from
``root/classes.txt`` (one per line, line i names value i), else "0".."K" for the largest value K found.
"""

import abc
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from keras_cnns.data import augment as aug
from keras_cnns.data.pipeline import tuning_options
from keras_cnns.data.preprocessing import Preprocessing
from keras_cnns.data.sources import IMAGE_EXTENSIONS, _to_channels, check_image_files, open_tfds_builder
from keras_cnns.images import decode_for_training

AUTOTUNE = tf.data.AUTOTUNE
SCENES = "fashion_mnist_scenes"
_SPLIT_FOLDERS = {"train": ("train",), "validation": ("validation", "val"), "test": ("test",)}
_MASK_MODES = ("L", "P", "I", "I;16", "I;16B", "I;16L", "1")
# Mask values of TFDS datasets whose features do not name them.
_TFDS_MASK_CLASSES = {"oxford_iiit_pet": ("unused", "pet", "background", "border")}  # the dataset's trimap 1, 2, 3
_TFDS_SEG_HELP = ("To prepare it: pip install tensorflow-datasets; then, on a machine with internet access, run "
                  "`tfds.builder({name!r}, data_dir=DIR).download_and_prepare()` and copy DIR here; then pass "
                  "data_dir=DIR. (fashion_mnist_scenes is built offline: python -m keras_cnns.data.tfds_scenes "
                  "--data-dir DIR.)")


class SegmentationSource(abc.ABC):
    """Images with per-pixel class masks. Attributes: name, class_names, channels (1 or 3), image_size
    ((H, W) or None when sizes vary), splits (the split names it has)."""

    name: str
    class_names: Tuple[str, ...]
    channels: int
    image_size: Optional[Tuple[int, int]]
    splits: Tuple[str, ...]
    # No single-item photo convention (keras_cnns.images.to_convention): a scene or a photo holds many things.
    image_convention = None

    @property
    def num_classes(self):
        return len(self.class_names)

    @abc.abstractmethod
    def size(self, split):
        """Number of examples in a split."""

    @abc.abstractmethod
    def examples(self, split):
        """tf.data.Dataset of (uint8 image (H, W, channels), uint8 mask (H, W)) in the split's fixed order."""

    def _check_split(self, split):
        if split not in self.splits:
            raise ValueError(f"{self.name} has the splits {self.splits}. Received: split={split!r}")

    def __repr__(self):
        sizes = ", ".join(f"{s}={self.size(s)}" for s in self.splits)
        return f"<{type(self).__name__} {self.name!r}: {self.num_classes} classes, {sizes}>"


class SceneSegmentationSource(SegmentationSource):
    """The Fashion-MNIST scenes (:mod:`keras_cnns.data.scenes`), generated on first use of a split."""

    def __init__(self, counts=None, source=None):
        from keras_cnns.data import scenes

        self._scenes, self._counts, self._source, self._made = scenes, dict(counts or {}), source, {}
        self.name, self.class_names, self.channels = SCENES, scenes.SCENE_CLASSES, 1
        self.image_size, self.splits = (scenes.CANVAS, scenes.CANVAS), tuple(scenes.SPLITS)

    def scene_set(self, split):
        self._check_split(split)
        if split not in self._made:
            self._made[split] = self._scenes.generate(split, self._counts.get(split), source=self._source)
        return self._made[split]

    def size(self, split):
        self._check_split(split)
        return self._counts.get(split, self._scenes.SPLITS[split].size)

    def examples(self, split):
        s = self.scene_set(split)
        return tf.data.Dataset.from_tensor_slices((s.images, s.masks))

    def redrawn_examples(self, split, seed=0):
        """``size(split)`` scenes of the split's specification and items, drawn afresh every epoch
        (:func:`keras_cnns.data.scenes.redrawn_examples`: ``augment="redraw"``)."""
        self._check_split(split)
        return self._scenes.redrawn_examples(split, self.size(split), seed=seed, source=self._source)


class FolderPairSource(SegmentationSource):
    """Image/mask folder pairs (see the module docstring). Every pair is checked when the source is opened:
    a missing mask, a mask of another size than its image, a colour mask or a value without a class name raises
    an error naming the file; unreadable images are logged and left out (as in image-folder sources)."""

    def __init__(self, root, class_names=None):
        root = os.path.abspath(os.path.expanduser(root))
        if not os.path.isdir(root):
            raise FileNotFoundError(f"Segmentation folder not found: {root}")
        self.name = root
        split_roots = {}
        for split, names in _SPLIT_FOLDERS.items():
            found = next((os.path.join(root, n) for n in names if os.path.isdir(os.path.join(root, n, "images"))),
                         None)
            if found:
                split_roots[split] = found
        if not split_roots:
            split_roots = {"train": root}
        self.splits = tuple(split_roots)
        pairs = {split: _list_pairs(folder) for split, folder in split_roots.items()}
        if class_names is None and os.path.isfile(os.path.join(root, "classes.txt")):
            with open(os.path.join(root, "classes.txt")) as f:
                class_names = [line.strip() for line in f if line.strip()]
        self._files, channels, sizes, largest = {}, set(), set(), 0
        for split, (images, masks) in pairs.items():
            check = check_image_files(images, list(range(len(images))))
            masks = [masks[i] for i in check.labels]
            with ThreadPoolExecutor(max_workers=8) as pool:
                found = list(pool.map(_check_mask, masks, check.sizes, check.files))
            largest = max([largest] + found)
            self._files[split] = (check.files, tuple(masks))
            channels.update(1 if g else 3 for g in check.grey)
            sizes.update(check.sizes)
        if class_names is not None and largest >= len(class_names):
            bad = next(m for split in self.splits for m in self._files[split][1] if _mask_max(m) >= len(class_names))
            raise ValueError(f"Mask {bad} has the value {_mask_max(bad)}, but only {len(class_names)} class names "
                             f"are given (values 0..{len(class_names) - 1}). Fix the mask or give every class a "
                             f"name (class_names= or classes.txt).")
        self.class_names = tuple(class_names) if class_names is not None else tuple(str(i) for i in
                                                                                  range(largest + 1))
        self.channels = 3 if 3 in channels else 1
        self.image_size = sizes.pop() if len(sizes) == 1 else None

    def files(self, split):
        """(image paths, mask paths) of a split."""
        self._check_split(split)
        return self._files[split]

    def size(self, split):
        return len(self.files(split)[0])

    def examples(self, split):
        images, masks = self.files(split)
        channels = self.channels

        def decode(image_path, mask_path):
            # the package's one decoder (keras_cnns.images.read_image, as inference): EXIF orientation applied,
            # so a mask is drawn over the image as displayed
            image = tf.numpy_function(decode_for_training, [image_path, channels], tf.uint8, stateful=False)
            image.set_shape([None, None, channels])
            mask = tf.numpy_function(_read_mask, [mask_path], tf.uint8, stateful=False)
            mask.set_shape([None, None])
            return image, mask

        ds = tf.data.Dataset.from_tensor_slices((list(images), list(masks)))
        return ds.map(decode, num_parallel_calls=AUTOTUNE, deterministic=True)


def _list_pairs(folder):
    image_dir, mask_dir = os.path.join(folder, "images"), os.path.join(folder, "masks")
    for d in (image_dir, mask_dir):
        if not os.path.isdir(d):
            raise FileNotFoundError(f"A segmentation folder needs images/ and masks/ side by side. Missing: {d}")
    mask_by_stem = {}
    for f in sorted(os.listdir(mask_dir)):
        stem, ext = os.path.splitext(f)
        if ext.lower() in IMAGE_EXTENSIONS and (stem not in mask_by_stem or ext.lower() == ".png"):
            mask_by_stem[stem] = os.path.join(mask_dir, f)
    images, masks = [], []
    for f in sorted(os.listdir(image_dir)):
        stem, ext = os.path.splitext(f)
        if ext.lower() not in IMAGE_EXTENSIONS:
            continue
        if stem not in mask_by_stem:
            raise FileNotFoundError(f"No mask for the image {os.path.join(image_dir, f)}: expected "
                                    f"{os.path.join(mask_dir, stem + '.png')} (same stem, pixel value = class index).")
        images.append(os.path.join(image_dir, f))
        masks.append(mask_by_stem[stem])
    if not images:
        raise ValueError(f"No images found in {image_dir} ({'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} files).")
    return images, masks


def _read_mask(path):
    from PIL import Image

    path = path.decode() if isinstance(path, bytes) else path
    with Image.open(path) as mask:
        if mask.mode not in _MASK_MODES:
            raise ValueError(f"Mask {path} is {mask.mode}: a mask must be single-channel (grey or palette PNG) "
                             f"with pixel value = class index.")
        values = np.asarray(mask)
    if values.ndim != 2 or values.min() < 0 or values.max() > 255:
        raise ValueError(f"Mask {path} must be 2-D with class indices in 0..255. Received: shape {values.shape}, "
                         f"values {values.min()}..{values.max()}")
    return values.astype(np.uint8)


def _mask_max(path):
    return int(_read_mask(path).max())


def _check_mask(path, image_size, image_path):
    """The largest class index in a mask, after checking it decodes, is single-channel and has its image's size."""
    try:
        values = _read_mask(path)
    except ValueError:
        raise
    except Exception as err:  # PIL raises many types for bad files
        raise ValueError(f"Mask {path} cannot be read ({type(err).__name__}: {err}).") from err
    if values.shape != tuple(image_size):
        raise ValueError(f"Mask {path} is {values.shape[1]}x{values.shape[0]} but its image {image_path} is "
                         f"{image_size[1]}x{image_size[0]} (width x height): a mask must have its image's size.")
    return int(values.max())


class TfdsSegmentationSource(SegmentationSource):
    """A TFDS dataset with ``image`` and ``segmentation_mask`` features, prepared under data_dir (nothing is
    downloaded: an unprepared dataset fails at once saying how to prepare it)."""

    def __init__(self, name, data_dir=None, class_names=None):
        self._builder = builder = open_tfds_builder(name, data_dir, help_text=_TFDS_SEG_HELP)
        self.name = f"tfds:{name}"
        features = builder.info.features
        for key in ("image", "segmentation_mask"):
            if key not in features:
                raise ValueError(f"TFDS dataset {name!r} has no {key!r} feature, so it is no segmentation dataset. "
                                 f"Received features: {sorted(features.keys())}")
        if class_names is None:
            class_names = _TFDS_MASK_CLASSES.get(name)
        if class_names is None and "objects" in features and "label" in features["objects"].feature:
            names = features["objects"]["label"].names
            class_names = names if names and names[0] == "background" else None
        if class_names is None:
            raise ValueError(f"The mask values of TFDS dataset {name!r} are not named by its features: pass "
                             f"class_names= (value i is class_names[i]).")
        self.class_names = tuple(class_names)
        shape = features["image"].shape
        self.channels = 1 if shape[-1] == 1 else 3
        self.image_size = (shape[0], shape[1]) if shape[0] and shape[1] else None
        self.splits = tuple(s for s in ("train", "validation", "test") if s in builder.info.splits) or tuple(
            builder.info.splits)

    def size(self, split):
        self._check_split(split)
        return int(self._builder.info.splits[split].num_examples)

    def examples(self, split):
        self._check_split(split)
        channels = self.channels
        ds = self._builder.as_dataset(split=split, shuffle_files=False)
        return ds.map(lambda ex: (_to_channels(ex["image"], channels),
                                  tf.cast(ex["segmentation_mask"][..., 0], tf.uint8)),
                      num_parallel_calls=AUTOTUNE, deterministic=True)


def load_segmentation(name, data_dir=None, class_names=None, **kwargs):
    """Opens segmentation data: "fashion_mnist_scenes" (``counts=`` for fewer scenes), a folder of image/mask
    pairs, or "tfds:NAME" (a TFDS dataset prepared under data_dir, e.g. tfds:oxford_iiit_pet or the scenes built
    by keras_cnns.data.tfds_scenes)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be {SCENES!r}, a folder of images/ and masks/, or 'tfds:NAME'. "
                         f"Received: name={name!r}")
    if name == SCENES:
        return SceneSegmentationSource(**kwargs)
    if name.startswith("tfds:"):
        if name[len("tfds:"):].split("/")[0] == SCENES:
            import keras_cnns.data.tfds_scenes  # noqa: F401  registers the builder with TFDS
        return TfdsSegmentationSource(name[len("tfds:"):], data_dir=data_dir, class_names=class_names)
    if os.path.isdir(os.path.expanduser(name)):
        return FolderPairSource(name, class_names=class_names)
    raise ValueError(f"Unknown segmentation data: not {SCENES!r}, not 'tfds:NAME' and not a directory. "
                     f"Received: name={name!r}")


def resize_mask(mask, preprocessing):
    """uint8 mask (H, W) -> (size[0], size[1]) with the image's geometry under ``preprocessing`` (nearest
    neighbour; padding is background 0)."""
    h, w = preprocessing.size
    m = mask[..., None]
    if preprocessing.resize == "resize":
        m = tf.image.resize(m, (h, w), method="nearest")
    elif preprocessing.resize == "pad":
        shape = tf.shape(m)
        fits = tf.logical_and(shape[0] <= h, shape[1] <= w)
        m = tf.cond(fits, lambda: tf.image.resize_with_crop_or_pad(m, h, w),
                    lambda: tf.cast(tf.image.resize_with_pad(m, h, w, method="nearest"), m.dtype))
    else:
        side = preprocessing.crop_from or max(h, w)
        shape = tf.shape(m)
        ih, iw = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
        scale = side / tf.minimum(ih, iw)
        new = tf.cast(tf.round(tf.stack([ih * scale, iw * scale])), tf.int32)
        m = tf.image.resize_with_crop_or_pad(tf.image.resize(m, tf.maximum(new, [h, w]), method="nearest"), h, w)
    return tf.cast(m[..., 0], tf.uint8)


def segmentation_batches(examples, preprocessing, batch_size=32, shuffle=False, seed=0, size=None,
                         drop_remainder=False, augment=None):
    """(uint8 image, uint8 mask) examples -> batches of (float32 image, int32 mask) at the Preprocessing's size.

    Order: resize image (the Preprocessing's way) and mask (nearest) -> cache -> shuffle (seeded, each epoch) ->
    batch -> ``augment`` (None or "flip": image and mask mirrored together, each image its own draw from one
    stateless seed per batch per epoch, drawn from ``seed``) -> normalise -> prefetch. Give ``augment`` to the
    training split only. With ``augment="redraw"`` the examples are new every epoch
    (:meth:`SceneSegmentationSource.redrawn_examples`): neither cached nor shuffled, then flipped.
    """
    prep = preprocessing
    random = aug.joint_augmentation(augment, "segmentation")
    redrawn = augment == aug.REDRAW

    def fixed(image, mask):
        return prep.resize_images(prep.convert_channels(image)), resize_mask(mask, prep)

    ds = examples.map(fixed, num_parallel_calls=AUTOTUNE, deterministic=True)
    if redrawn:
        shuffle = False
    else:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(size or 10_000, seed=seed, reshuffle_each_iteration=True)
    ds = aug.augment_batches(ds.batch(batch_size, drop_remainder=drop_remainder), random, seed)
    ds = ds.map(lambda images, masks: (prep.normalize(images), tf.cast(masks, tf.int32)),
                num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE).with_options(tuning_options())


def default_preprocessing(source, size=None):
    """The :class:`Preprocessing` of a :class:`SegmentationSource`: the scenes' own
    (:func:`keras_cnns.data.scenes.scene_preprocessing`) for the scenes, otherwise the images' size (or
    ``size`` (H, W), which sources whose image sizes vary need) scaled to [0, 1] (mean 0, std 255)."""
    if isinstance(source, SceneSegmentationSource) and size is None:
        from keras_cnns.data.scenes import scene_preprocessing

        return scene_preprocessing(source=source._source)
    size = size or source.image_size
    if size is None:
        raise ValueError(f"{source.name} has images of several sizes: pass the size to train at (e.g. "
                         f"--input-size 256, or preprocessing= a Preprocessing). Received: no size")
    return Preprocessing(size=tuple(size), channels=source.channels, resize="resize", mean=0.0, std=255.0)


def segmentation_dataset(source, split, preprocessing=None, batch_size=32, shuffle=False, seed=0,
                         drop_remainder=False, augment=None):
    """Batches of (float32 image (B, H, W, C), int32 mask (B, H, W)) of one split of a :class:`SegmentationSource`
    (``preprocessing`` defaults to :func:`default_preprocessing`; ``augment`` None, "flip" or, for the scenes,
    "redraw", for the training split, see :func:`segmentation_batches`)."""
    if preprocessing is None:
        preprocessing = default_preprocessing(source)
    if augment == aug.REDRAW and not isinstance(source, SceneSegmentationSource):
        raise ValueError(f"augment={aug.REDRAW!r} draws new Fashion-MNIST scenes every epoch: it needs the "
                         f"{SCENES!r} source; for other data use 'flip'. Received: {source.name}")
    examples = source.redrawn_examples(split, seed) if augment == aug.REDRAW else source.examples(split)
    # the count stated, as for classification (data.pipeline.counted_examples): Keras's steps come from it
    examples = examples.apply(tf.data.experimental.assert_cardinality(source.size(split)))
    return segmentation_batches(examples, preprocessing, batch_size, shuffle=shuffle, seed=seed,
                                size=source.size(split), drop_remainder=drop_remainder, augment=augment)
