"""tf.data pipelines from a :class:`~keras_cnns.data.sources.Source` to ``model.fit``.

Training pipeline order (each step only where it applies):

  examples (uint8, decoded with an explicit channel count)
  -> convert channels and resize/pad to the model input (or the augmentation's working size)  [parallel map,
     in batches of 256 when all images share one size]
  -> cache (memory, or a file when ``cache`` is a path): everything before is deterministic. An in-memory
     cache that would take more than half the machine's memory (Fashion-MNIST at 224x224: 54,000 float32
     images of 602 KB, 32.5 GB with validation and test) is not made: that work is then redone every epoch,
     and the shuffle moves before it (a shuffle buffer of the prepared images would not fit either)
  -> shuffle (seeded, reshuffled every epoch)
  -> batch (``drop_remainder`` for distribution strategies)
  -> random augmentation, each image its own draws from one stateless seed per batch per epoch, then
     normalise  [parallel map over batches; scale jittering and custom functions run per image before batch]
  -> prefetch

Validation and test run the same :class:`Preprocessing` without augmentation, are cached, batched and
prefetched. The validation split is a seeded random subset of the *training* split; the test split is never
touched for it.
"""

import dataclasses
import os
import time
from typing import Callable, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

from keras_cnns.data import augment as aug
from keras_cnns.data.preprocessing import Preprocessing
from keras_cnns.data.sources import Source

AUTOTUNE = tf.data.AUTOTUNE
# ImageNet's protocol: 224 (or 227) crops of images whose shorter side is 256.
_IMAGENET_CROP, _IMAGENET_SIDE = 224, 256


@dataclasses.dataclass
class Datasets:
    """The three pipelines made by :func:`make_datasets` and what describes them.

    ``train_indices`` and ``validation_indices`` are positions in the source's training split (disjoint);
    ``validation`` is None when ``validation_split`` is 0.
    """

    train: tf.data.Dataset
    validation: Optional[tf.data.Dataset]
    test: tf.data.Dataset
    class_names: Tuple[str, ...]
    train_size: int
    validation_size: int
    test_size: int
    preprocessing: Preprocessing
    batch_size: int
    augment: Union[str, Callable, None]
    train_indices: np.ndarray
    validation_indices: np.ndarray
    drop_remainder: bool = False
    cache_note: str = ""

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def steps_per_epoch(self):
        """The batches the training pipeline really yields in one epoch: its cardinality (known for every
        source, see :func:`counted_examples`), after skipped files, the validation split and drop_remainder."""
        steps = int(self.train.cardinality())
        if steps >= 0:
            return steps
        return self.train_size // self.batch_size if self.drop_remainder else -(-self.train_size // self.batch_size)


def split_indices(n, validation_split, seed):
    """(train, validation) positions in a training split of n examples: a seeded random ``validation_split``
    fraction for validation, each list sorted (so the sources read their files in order)."""
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1). Received: validation_split={validation_split!r}")
    n_val = int(round(n * validation_split))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def default_preprocessing(source, input_shape):
    """The Preprocessing for feeding ``source`` to a model with ``input_shape`` (H, W[, C]).

    Images no larger than the input are padded (Fashion-MNIST 28x28 -> LeNet-5's 32x32); inputs of 224 and
    more get the ImageNet protocol (shorter side 256, central crop); anything else is resized. mean and std are
    the per-channel statistics of the source's training split (:meth:`Source.statistics`), in the model's
    channel count.
    """
    if len(input_shape) not in (2, 3):
        raise ValueError(f"input_shape must be (height, width) or (height, width, channels). "
                         f"Received: input_shape={input_shape!r}")
    h, w = int(input_shape[0]), int(input_shape[1])
    channels = int(input_shape[2]) if len(input_shape) == 3 else source.channels
    crop_from = None
    if source.image_size is not None and source.image_size[0] <= h and source.image_size[1] <= w:
        resize = "pad"
    elif min(h, w) >= _IMAGENET_CROP:
        resize = "crop"
        crop_from = _IMAGENET_SIDE if max(h, w) <= _IMAGENET_SIDE else int(round(max(h, w) * 256 / 224))
    else:
        resize = "resize"
    mean, std = _stats_for_channels(source.statistics(), source.channels, channels)
    return Preprocessing(size=(h, w), channels=channels, resize=resize, crop_from=crop_from,
                         mean=tuple(mean), std=tuple(max(s, 1e-3) for s in std))


def _stats_for_channels(stats, source_channels, channels):
    mean, std = np.asarray(stats["mean"]), np.asarray(stats["std"])
    if source_channels == channels:
        return mean, std
    if source_channels == 1:  # grey copied into R, G and B
        return np.repeat(mean, 3), np.repeat(std, 3)
    # RGB -> grey with tf.image.rgb_to_grayscale's weights: mean and std of a weighted sum
    weights = np.array([0.2989, 0.5870, 0.1140])
    eigvals, eigvecs = np.asarray(stats["pca_eigenvalues"]), np.asarray(stats["pca_eigenvectors"])
    covariance = eigvecs @ np.diag(eigvals) @ eigvecs.T * 255.0 ** 2
    return np.array([weights @ mean]), np.array([np.sqrt(weights @ covariance @ weights)])


def representative_images(source, preprocessing, n=100, seed=0):
    """float32 [n, H, W, C]: a seeded sample of training images, preprocessed exactly as in training
    (without augmentation): what int8 TFLite calibration needs."""
    total = source.size("train")
    n = min(int(n), total)
    indices = np.sort(np.random.default_rng(seed).choice(total, n, replace=False))
    ds = source.examples("train", indices).map(lambda image, label: preprocessing.apply(image),
                                               num_parallel_calls=AUTOTUNE, deterministic=True)
    return np.stack([image.numpy() for image in ds]).astype(np.float32)


def _check_augment(augment, source, preprocessing):
    if callable(augment):
        return
    if augment not in aug.AUGMENTATIONS:
        raise ValueError(f"augment must be one of {aug.AUGMENTATIONS} or a function (image, seed) -> image. "
                         f"Received: augment={augment!r}")
    if augment == "alexnet" and (preprocessing.channels != 3 or source.channels != 3):
        raise ValueError(f"augment='alexnet' includes PCA colour augmentation, which needs RGB data; "
                         f"{source.name} has {source.channels} channel(s) and the model takes "
                         f"{preprocessing.channels}. Use augment='flip', 'cifar' or 'scale_jitter'. "
                         f"Received: augment={augment!r}")


def _jitter_range(size):
    scale = min(size) / _IMAGENET_CROP
    return int(round(256 * scale)), int(round(512 * scale))


def _train_stages(source, prep, augment):
    """(deterministic stage run before the cache, random stage run after it, whether the random stage takes
    whole batches) for one augmentation."""
    size = prep.size

    def to_model_size(image):
        return prep.resize_images(prep.convert_channels(image))

    if augment == "alexnet":
        side = prep.crop_from or int(round(max(size) * _IMAGENET_SIDE / _IMAGENET_CROP))
        eigenvalues = source.statistics()["pca_eigenvalues"]
        eigenvectors = source.statistics()["pca_eigenvectors"]

        def fixed(image):  # the paper: shorter side to 256, central 256x256
            image = aug.resize_shorter_side(prep.convert_channels(image), side)
            return tf.image.resize_with_crop_or_pad(image, side, side)

        def random(image, seed):
            seeds = aug.split_seed(seed, 2)
            image = aug.random_crop_flip(image, size, seeds[0])
            return aug.pca_colour(image, eigenvalues, eigenvectors, seeds[1])

        return fixed, random, True
    if augment == "scale_jitter":
        low, high = _jitter_range(size)

        def fixed(image):
            return tf.cast(prep.convert_channels(image), tf.float32)

        def random(image, seed):
            return aug.scale_jitter(image, size, seed, min_side=low, max_side=high)

        return fixed, random, False
    if augment == "scene_items":  # the item at its own size, then shrunk or grown onto the model's canvas

        def fixed(image):
            return tf.cast(prep.convert_channels(image), tf.float32)

        def random(image, seed):
            return aug.place_items(image, size, seed)

        return fixed, random, False
    if callable(augment):
        return to_model_size, augment, False
    randoms = {None: None, "flip": aug.random_flip, "cifar": aug.pad_crop_flip}
    return to_model_size, randoms[augment], True


TF_DATA_AUTOTUNE = False
"""Whether the package's pipelines run tf.data's model-based autotuning (:func:`tuning_options`). Off by
default; ``apps/train.py --tf-data-autotune`` (or setting this to True before a run) turns it back on."""


def tuning_options():
    """The tf.data options every pipeline of the package ends with: model-based autotuning as
    :data:`TF_DATA_AUTOTUNE` says (off by default).

    Why off: the autotuner's optimisation thread, started with each iterator, sleeps between rounds for 10 ms,
    then twice as long each time up to a minute (it wakes 2.55 s, 5.11 s, 10.23 s, ... after the iterator
    began). Destroying the iterator waited for that thread's next wake in about half of the iterators measured
    on a 2-core CPU with TensorFlow 2.21 (6 of 12 `model.fit` calls returned 2.4-2.5 s after their last step),
    and Keras destroys the training iterator at the end of every epoch. lenet5_modern's fast recipe ran epochs
    of 2.5-2.7 s with it off and 2.5-5.2 s with it on, to the same weights; the pipelines delivered as much or
    more without it (benchmarks/tf_data_autotune.py; docs/training.md). The stages keep
    ``num_parallel_calls=AUTOTUNE`` and ``prefetch(AUTOTUNE)``: without the autotuner those run at TensorFlow's
    default sizes."""
    options = tf.data.Options()
    options.autotune.enabled = bool(TF_DATA_AUTOTUNE)
    return options


def _options():
    options = tuning_options()
    # Every source is split by element: the in-memory arrays and file lists have no files to shard by.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.deterministic = True
    return options


MEMORY_CACHE_FRACTION = 0.5
"""The largest in-memory cache :func:`make_datasets` makes, as a fraction of the machine's physical memory."""


def physical_memory_bytes():
    """The machine's physical memory in bytes (None where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def _image_bytes(ds):
    """Bytes of one image of a dataset of (image, label) elements, or 0 when its shape is not static."""
    spec = ds.element_spec[0]
    return spec.shape.num_elements() * spec.dtype.size if spec.shape.is_fully_defined() else 0


def _memory_cache_note(train, train_count, eval_count, prep):
    """The empty string when the in-memory caches of the three splits fit in MEMORY_CACHE_FRACTION of the
    machine's memory, else the sentence saying why they are not made."""
    eval_bytes = prep.size[0] * prep.size[1] * prep.channels * 4   # float32 model inputs
    need = _image_bytes(train) * train_count + eval_bytes * eval_count
    total = physical_memory_bytes()
    if total is None or need <= MEMORY_CACHE_FRACTION * total:
        return ""
    return (f"no in-memory cache: the prepared images would take {need / 2**30:.1f} GiB, more than "
            f"{MEMORY_CACHE_FRACTION:.0%} of this machine's {total / 2**30:.1f} GiB; they are prepared again "
            f"every epoch "
            f"(pass cache=PATH for a file cache)")


def _prepared_fitting(ds, wanted):
    """How many of a dataset's prepared images (at most `wanted`) fit in MEMORY_CACHE_FRACTION of the machine's
    memory: the largest shuffle buffer of them that is safe."""
    size, total = _image_bytes(ds), physical_memory_bytes()
    if not size or total is None:
        return wanted
    return min(wanted, int(MEMORY_CACHE_FRACTION * total // size))


def _cached(ds, cache):
    if cache is True:
        return ds.cache()
    if isinstance(cache, str):
        return ds.cache(cache)
    return ds


def _map_fixed(ds, fn, same_size):
    """ds.map(fn) on the images; in batches of 256 (the same ops, far fewer calls) when all share one size."""
    if same_size:
        count = int(ds.cardinality())
        ds = ds.batch(256).map(lambda images, labels: (fn(images), labels), num_parallel_calls=AUTOTUNE,
                               deterministic=True).unbatch()
        # unbatch() forgets the count; Keras wants it for its progress bar and steps per epoch
        return ds.apply(tf.data.experimental.assert_cardinality(count)) if count >= 0 else ds
    return ds.map(lambda image, label: (fn(image), label), num_parallel_calls=AUTOTUNE, deterministic=True)


def counted_examples(source, split, indices=None):
    """source.examples(split, indices) with its number of examples stated (tf.data cardinality).

    Every source knows how many examples it hands out (an image folder's unreadable files are left out when it
    is opened), but a filtered TFDS split or a folder's error-guarded decoding loses the count, and Keras then
    finds the end of each epoch by running out of data ("Your input ran out of data"). Stated here, batching
    keeps it, so steps per epoch, progress bars and learning-rate schedules use the batches really yielded.
    A source that yields fewer (a file damaged after the folder was opened) fails with an error naming both
    counts rather than silently training on fewer."""
    count = source.size(split) if indices is None else len(indices)
    return source.examples(split, indices).apply(tf.data.experimental.assert_cardinality(count))


def _eval_pipeline(source, split, indices, prep, batch_size, cache, tag):
    ds = _map_fixed(counted_examples(source, split, indices), prep.apply, source.image_size is not None)
    ds = _cached(ds, cache if cache is True or not cache else f"{cache}-{tag}")
    ds = ds.batch(batch_size, num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.prefetch(AUTOTUNE).with_options(_options())


def make_datasets(source, preprocessing=None, batch_size=128, augment=None, validation_split=0.1, seed=0,
                  drop_remainder=False, cache=True, shuffle_buffer=None, input_shape=None):
    """Train, validation and test pipelines of (float32 image batch, int32 label batch).

    Args:
      source: a :class:`Source` (see :func:`load_source`).
      preprocessing: raw image -> model input; default :func:`default_preprocessing` for ``input_shape``.
      batch_size: the global batch size.
      augment: one of ``AUGMENTATIONS`` (None, "flip", "cifar", "alexnet", "scale_jitter", "scene_items") or a
        function ``(image, seed) -> image`` on one float image (H, W, C) in the 0..255 scale at the model's size,
        ``seed`` a shape-[2] tensor for stateless random ops. "scene_items" (:func:`augment.place_items`) trains on
        items 1/2 to 1 of the input's side at random places; validation and test keep the preprocessing's view.
      validation_split: the fraction of the training split held out (seeded) for validation; 0 for none.
      seed: seeds the validation split, the shuffle order and the augmentations.
      drop_remainder: drop the last partial training batch (distribution strategies want equal batches).
        Validation and test always keep every example.
      cache: True (memory, unless the prepared images would take more than MEMORY_CACHE_FRACTION of the
        machine's memory: then none, and the returned ``cache_note`` says so), False, or a file path prefix;
        the cache holds only deterministic work.
      shuffle_buffer: default the whole training split when it is in memory, else 10,000 images. A buffer of
        prepared images that would take more than MEMORY_CACHE_FRACTION of the memory is never made: without a
        cache the source's examples are shuffled before they are prepared, with a file cache the buffer is cut
        to what fits (``cache_note`` says so).
      input_shape: only used when ``preprocessing`` is None.
    """
    if not isinstance(source, Source):
        raise ValueError(f"source must be a Source from load_source(). Received: source={source!r}")
    if preprocessing is None:
        if input_shape is None:
            if source.image_size is None:
                raise ValueError("make_datasets needs preprocessing= or input_shape= for a source whose images "
                                 "vary in size. Received: preprocessing=None, input_shape=None")
            input_shape = (*source.image_size, source.channels)
        preprocessing = default_preprocessing(source, input_shape)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    _check_augment(augment, source, preprocessing)
    prep = preprocessing
    train_idx, val_idx = split_indices(source.size("train"), validation_split, seed)
    fixed, random, batched = _train_stages(source, prep, augment)

    examples = counted_examples(source, "train", train_idx)
    same_size = source.image_size is not None
    train = _map_fixed(examples, fixed, same_size)
    cache_note = ""
    if cache is True:
        cache_note = _memory_cache_note(train, len(train_idx), len(val_idx) + source.size("test"), prep)
        cache = not cache_note
    if shuffle_buffer is None:
        shuffle_buffer = len(train_idx) if source.is_in_memory() else 10_000
    buffer = max(1, min(shuffle_buffer, len(train_idx)))
    fitting = _prepared_fitting(train, buffer)
    if cache_note or (not cache and fitting < buffer):
        # A shuffle buffer of prepared images would not fit: shuffle the source's examples, then prepare.
        train = _map_fixed(examples.shuffle(buffer, seed=seed, reshuffle_each_iteration=True), fixed, same_size)
    else:
        train = _cached(train, cache if cache is True or not cache else f"{cache}-train-{seed}")
        if fitting < buffer:  # a file cache: its prepared images are shuffled in a buffer that fits
            cache_note = (f"shuffle buffer of {fitting:,} prepared images, not {buffer:,}: more would take over "
                          f"{MEMORY_CACHE_FRACTION:.0%} of this machine's memory")
            buffer = max(1, fitting)
        train = train.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    # One stateless seed per batch (or per image) per epoch, each image its own draws: the same run seed gives
    # the same augmentations, every epoch new ones.
    seeds = aug.batch_seeds(seed)
    if random is not None and not batched:
        train = tf.data.Dataset.zip((train, seeds)).map(
            lambda example, image_seed: (random(example[0], image_seed), example[1]),
            num_parallel_calls=AUTOTUNE, deterministic=True)
    train = train.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE, deterministic=True)
    if random is not None and batched:
        train = tf.data.Dataset.zip((train, seeds)).map(
            lambda batch, batch_seed: (prep.normalize(random(batch[0], batch_seed)), batch[1]),
            num_parallel_calls=AUTOTUNE, deterministic=True)
    else:
        train = train.map(lambda images, labels: (prep.normalize(images), labels),
                          num_parallel_calls=AUTOTUNE, deterministic=True)
    train = train.prefetch(AUTOTUNE).with_options(_options())

    validation = None
    if len(val_idx):
        validation = _eval_pipeline(source, "train", val_idx, prep, batch_size, cache, f"validation-{seed}")
    test = _eval_pipeline(source, "test", None, prep, batch_size, cache, "test")
    return Datasets(train=train, validation=validation, test=test, class_names=tuple(source.class_names),
                    train_size=len(train_idx), validation_size=len(val_idx), test_size=source.size("test"),
                    preprocessing=prep, batch_size=int(batch_size), augment=augment,
                    train_indices=train_idx, validation_indices=val_idx, drop_remainder=bool(drop_remainder),
                    cache_note=cache_note)


def measure_pipeline(ds, batches=100, warmup=10):
    """Images per second delivered by a batched dataset (repeated as needed), after ``warmup`` batches.

    Returns a dict: images_per_second, images, batches, seconds. To time a cached pipeline in its steady
    state, make ``warmup`` at least one epoch of batches (the first epoch fills the cache).
    """
    iterator = iter(ds.repeat())
    for _ in range(warmup):
        next(iterator)
    images = 0
    start = time.perf_counter()
    for _ in range(batches):
        batch = next(iterator)
        images += int(batch[0].shape[0])  # an eager batch's shape is known: no op run to read it
    seconds = time.perf_counter() - start
    return {"images_per_second": images / seconds, "images": images, "batches": batches, "seconds": seconds}
