"""Where images come from: Fashion-MNIST and MNIST (IDX files), a folder of images (one sub-folder per
class) and any TensorFlow Datasets dataset (``"tfds:NAME"``).

Every source answers the same questions (name, class names, raw channels, split sizes) and hands out its
examples as a ``tf.data.Dataset`` of ``(uint8 image (H, W, channels), int32 label)`` in a fixed order, so
that the pipelines in :mod:`keras_cnns.data.pipeline` can take a seeded validation split by index.

Where MNIST-style files are looked for, in order:
  1. the ``data_dir`` argument (``--data-dir`` on the command line),
  2. the directory named by the environment variable ``KERAS_CNNS_DATA_DIR``,
  3. the Debian package path (``apt-get install dataset-fashion-mnist`` -> /usr/share/datasets/fashion-mnist),
  4. the Keras cache (~/.keras/datasets/...),
  5. a ``keras.datasets`` download (needs the internet),
and otherwise a FileNotFoundError says how to get them.
"""

import abc
import dataclasses
import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from keras_cnns.data.preprocessing import convert_channels
from keras_cnns.images import (IMAGE_EXTENSIONS, dataset_convention, decode_for_training,  # noqa: F401  (one list)
                               read_image)
from keras_cnns.data.idx import read_idx
from keras_cnns.data.statistics import pca_of_covariance, stored_statistics

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "KERAS_CNNS_DATA_DIR"

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(d) for d in range(10))

# name -> class names, Debian package path, sub-folder names tried under a data dir and the Keras cache,
#         the keras.datasets module, the Keras cache's .npz file if it keeps one, the Debian package
_IDX_DATASETS = {
    "fashion_mnist": dict(classes=FASHION_MNIST_CLASSES, debian="/usr/share/datasets/fashion-mnist",
                          subdirs=("fashion-mnist", "fashion_mnist"), keras="fashion_mnist", npz=None,
                          package="dataset-fashion-mnist"),
    "mnist": dict(classes=MNIST_CLASSES, debian=None,  # Debian packages no MNIST
                  subdirs=("mnist",), keras="mnist", npz="mnist.npz", package=None),
}
_IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
              "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


class Source(abc.ABC):
    """A labelled image collection with a train and a test split.

    Attributes:
      name: the name given to :func:`load_source` ("fashion_mnist", a folder path, "tfds:cifar10").
      class_names: one name per label, label i is ``class_names[i]``.
      channels: channels of the raw images, 1 (grey) or 3 (RGB).
      image_size: (height, width) when every image has that size, else None.
      origin: where the examples were read from (a path, "keras.datasets", "tfds").
    """

    name: str
    class_names: Tuple[str, ...]
    channels: int
    image_size: Optional[Tuple[int, int]]
    origin: str

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def image_convention(self):
        """How its images look where photos differ (keras_cnns.images.DATASET_CONVENTIONS: Fashion-MNIST's and
        MNIST's light item on black filling a 28x28 frame), or None; training writes it into the metadata so
        that inference brings photos to it."""
        return dataset_convention(self.name)

    @abc.abstractmethod
    def size(self, split):
        """Number of examples in split ("train" or "test")."""

    @abc.abstractmethod
    def examples(self, split, indices=None):
        """tf.data.Dataset of (uint8 image (H, W, channels), int32 label), in the split's fixed order,
        restricted to ``indices`` (positions in the split, kept in the given order) when given."""

    @abc.abstractmethod
    def fingerprint(self):
        """A short string that changes when the examples change (keys the stored statistics)."""

    def is_in_memory(self):
        return False

    # -- statistics of the training split, computed once and stored ----------------------------------
    def statistics(self, max_images=None, seed=0):
        """Per-channel mean and std (0..255 scale) of the training images and, for RGB sources, the
        eigen-decomposition of their 3x3 RGB covariance (AlexNet's PCA colour augmentation, computed on
        pixel values scaled to [0, 1]).

        Computed over the whole training split when it is in memory or has at most ``max_images`` images
        (default 20,000 for sources read from files), else over a seeded sample of that many (a 3x3
        covariance is estimated well long before ImageNet's 1.2M images).
        Kept on the source and in a small JSON file under ``$KERAS_CNNS_CACHE_DIR`` (default
        ~/.keras/keras_cnns/stats), so a second run does not recompute it.
        """
        if max_images is None:
            max_images = self.size("train") if self.is_in_memory() else 20000
        key = f"{self.fingerprint()}-{max_images}-{seed}"
        cached = getattr(self, "_statistics", {})
        if key not in cached:
            self._statistics = {**cached, key: stored_statistics(
                self.name, key, lambda: self._compute_statistics(max_images, seed))}
        return self._statistics[key]

    def _compute_statistics(self, max_images, seed):
        n = self.size("train")
        indices = None
        if n > max_images:
            indices = np.sort(np.random.default_rng(seed).choice(n, max_images, replace=False))
        total = np.zeros(self.channels)
        total_sq = np.zeros(self.channels)
        outer = np.zeros((self.channels, self.channels))
        count = 0
        for images in self._image_chunks(indices):
            pixels = images.reshape(-1, self.channels).astype(np.float64)
            total += pixels.sum(0)
            total_sq += (pixels ** 2).sum(0)
            outer += pixels.T @ pixels
            count += len(pixels)
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
        stats = {"mean": mean.tolist(), "std": std.tolist(), "pixels": int(count)}
        if self.channels == 3:
            covariance = (outer / count - np.outer(mean, mean)) / 255.0 ** 2
            eigvals, eigvecs = pca_of_covariance(covariance)
            stats["pca_eigenvalues"] = eigvals.tolist()
            stats["pca_eigenvectors"] = eigvecs.tolist()
        return stats

    def _image_chunks(self, indices):
        """uint8 NumPy chunks of training images (the indices given, or all)."""
        for images, _ in self.examples("train", indices).batch(1 if self.image_size is None else 1024):
            yield images.numpy()

    def __repr__(self):
        return (f"<{type(self).__name__} {self.name!r}: {self.num_classes} classes, {self.channels} channel(s), "
                f"train={self.size('train')}, test={self.size('test')}, from {self.origin}>")


# -- in-memory arrays (MNIST, Fashion-MNIST, anything already loaded) ----------------------------------
class ArraySource(Source):
    """Examples held in NumPy arrays: uint8 images (N, H, W) or (N, H, W, C), integer labels (N,)."""

    def __init__(self, name, train, test, class_names, origin="arrays"):
        self.name = name
        self.origin = origin
        self._arrays = {"train": _check_arrays(train, "train"), "test": _check_arrays(test, "test")}
        self.channels = int(self._arrays["train"][0].shape[-1])
        if self.channels not in (1, 3):
            raise ValueError(f"Images must have 1 or 3 channels. Received: images of shape "
                             f"{self._arrays['train'][0].shape}")
        self.image_size = tuple(int(s) for s in self._arrays["train"][0].shape[1:3])
        self.class_names = tuple(class_names) if class_names is not None else tuple(
            str(i) for i in range(int(self._arrays["train"][1].max()) + 1))

    def arrays(self, split):
        """(uint8 images (N, H, W, C), int32 labels (N,)) of a split."""
        return self._arrays[split]

    def size(self, split):
        return len(self._arrays[split][1])

    def is_in_memory(self):
        return True

    def examples(self, split, indices=None):
        images, labels = self._arrays[split]
        if indices is not None:
            indices = np.asarray(indices, dtype=np.int64)
            images, labels = images[indices], labels[indices]
        return tf.data.Dataset.from_tensor_slices((images, labels))

    def _image_chunks(self, indices):
        images = self._arrays["train"][0]
        if indices is not None:
            images = images[indices]
        for start in range(0, len(images), 4096):
            yield images[start:start + 4096]

    def fingerprint(self):
        digest = hashlib.sha1()
        for split in ("train", "test"):
            images, labels = self._arrays[split]
            digest.update(repr(images.shape).encode())
            digest.update(images[:: max(1, len(images) // 64)].tobytes())
            digest.update(labels.tobytes())
        return digest.hexdigest()[:16]


def _check_arrays(pair, split):
    images, labels = pair
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int32).reshape(-1)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"The {split} split must be images (N, H, W[, C]) and labels (N,). Received: images of "
                         f"shape {images.shape} and {len(labels)} labels")
    if images.dtype != np.uint8:
        images = np.clip(np.round(images), 0, 255).astype(np.uint8)
    return images, labels


def from_arrays(train, test, class_names=None, name="arrays"):
    """A Source from ``(images, labels)`` pairs already in memory (uint8, 0..255)."""
    return ArraySource(name, train, test, class_names)


# -- IDX files ----------------------------------------------------------------------------------------
def _find_idx_dir(directory, spec):
    """The directory (directory itself or one of its dataset sub-folders) holding the four IDX files."""
    for candidate in (directory, *(os.path.join(directory, sub) for sub in spec["subdirs"])):
        if all(_idx_file(candidate, base) for pair in _IDX_FILES.values() for base in pair):
            return candidate
    return None


def _idx_file(directory, base):
    for suffix in (".gz", ""):
        path = os.path.join(directory, base + suffix)
        if os.path.isfile(path):
            return path
    return None


def _load_idx_dir(directory):
    splits = {}
    for split, (images, labels) in _IDX_FILES.items():
        splits[split] = (read_idx(_idx_file(directory, images)), read_idx(_idx_file(directory, labels)))
    return splits


def _load_npz(path):
    with np.load(path) as f:
        return {"train": (f["x_train"], f["y_train"]), "test": (f["x_test"], f["y_test"])}


def _load_idx_dataset(name, data_dir=None, download=True):
    spec = _IDX_DATASETS[name]
    keras_cache = os.path.join(os.path.expanduser("~"), ".keras", "datasets")
    places = [("data_dir", data_dir), (DATA_DIR_ENV, os.environ.get(DATA_DIR_ENV)),
              ("Debian package", spec["debian"]), ("Keras cache", keras_cache)]
    tried = []
    for label, directory in places:
        if not directory:
            continue
        directory = os.path.expanduser(directory)
        tried.append(f"{directory} ({label})")
        found = _find_idx_dir(directory, spec) if os.path.isdir(directory) else None
        if found:
            return ArraySource(name, *_as_splits(_load_idx_dir(found)), spec["classes"], origin=found)
        npz = os.path.join(directory, spec["npz"]) if spec["npz"] else None
        if npz and os.path.isfile(npz):
            return ArraySource(name, *_as_splits(_load_npz(npz)), spec["classes"], origin=npz)
    if download:
        import keras

        try:
            (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, spec["keras"]).load_data()
            return ArraySource(name, (x_train, y_train), (x_test, y_test), spec["classes"],
                               origin="keras.datasets")
        except Exception as err:  # no internet, proxy refusal, ...: fall through to the explanation
            tried.append(f"keras.datasets.{spec['keras']}.load_data() ({type(err).__name__}: {err})")
    how = [f"pass data_dir= (--data-dir) or set {DATA_DIR_ENV} to a directory holding "
           f"{', '.join(b + '.gz' for pair in _IDX_FILES.values() for b in pair)}"]
    if spec["package"]:
        how.insert(0, f"install the Debian package (sudo apt-get install {spec['package']})")
    how.append(f"or run keras.datasets.{spec['keras']}.load_data() once on a machine with internet access")
    raise FileNotFoundError(f"{name} not found. Looked in: {'; '.join(tried) or 'nowhere'}. To get it: "
                            + "; ".join(how) + ".")


def _as_splits(splits):
    return splits["train"], splits["test"]


# -- a folder of images ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FileCheck:
    """The result of checking the files of an image folder before training."""

    files: Tuple[str, ...]
    labels: Tuple[int, ...]
    grey: Tuple[bool, ...]
    sizes: Tuple[Tuple[int, int], ...]
    skipped: Tuple[Tuple[str, str], ...]  # (path, reason)


def _check_image(path):
    """(ok, grey, (h, w), reason): the file is decoded in full by keras_cnns.images.read_image, the decoder
    inference uses (EXIF orientation applied, so (h, w) is the size as displayed), so truncated files are
    caught too."""
    from PIL import Image

    try:
        pixels = read_image(path)
        grey = pixels.shape[-1] == 1
        if not grey:
            with Image.open(path) as image:  # the header only: a palette (GIF) whose colours are all grey
                palette = image.mode in ("P", "PA")
            grey = palette and bool((pixels[..., 0] == pixels[..., 1]).all() and
                                    (pixels[..., 1] == pixels[..., 2]).all())
        return True, grey, tuple(pixels.shape[:2]), ""
    except Exception as err:  # ImageError and anything else a bad file raises: all mean "skip it"
        return False, False, (0, 0), f"{type(err).__name__}: {err}"


def check_image_files(paths, labels, workers=8):
    """Decodes every file once (PIL, in threads); bad ones are logged with their path and left out."""
    from keras_cnns.progress import Progress

    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool, Progress(len(paths), "Checking image files") as bar:
        for result in pool.map(_check_image, paths):
            results.append(result)
            bar.add()
    keep = [i for i, r in enumerate(results) if r[0]]
    skipped = tuple((paths[i], results[i][3]) for i, r in enumerate(results) if not r[0])
    for path, reason in skipped:
        logger.warning("Skipping unreadable image %s (%s)", path, reason)
    if skipped:
        logger.warning("Skipped %d unreadable image(s) of %d.", len(skipped), len(paths))
    return FileCheck(files=tuple(paths[i] for i in keep), labels=tuple(labels[i] for i in keep),
                     grey=tuple(results[i][1] for i in keep), sizes=tuple(results[i][2] for i in keep),
                     skipped=skipped)


def _list_class_folders(root):
    classes = sorted(d for d in os.listdir(root)
                     if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    return classes


def _list_images(root, class_names):
    paths, labels = [], []
    for label, cls in enumerate(class_names):
        folder = os.path.join(root, cls)
        if not os.path.isdir(folder):
            continue
        for dirpath, _, files in sorted(os.walk(folder)):
            for f in sorted(files):
                if f.lower().endswith(IMAGE_EXTENSIONS):
                    paths.append(os.path.join(dirpath, f))
                    labels.append(label)
    return paths, labels


class FolderSource(Source):
    """Images in ``root/<class>/...`` (keras_cnns.images.IMAGE_EXTENSIONS: JPEG, PNG, BMP, GIF, WebP, TIFF,
    PGM/PPM), or in ``root/train/<class>`` and ``root/test/<class>`` (``val`` or ``validation`` also accepted
    for the test split).

    Files are decoded by keras_cnns.images.read_image, the decoder inference uses (EXIF orientation applied,
    alpha composited over black), so a photo trains as it is displayed and classified. Every file is decoded
    once up front: corrupt and truncated files are logged with their path and left out (``skipped`` lists
    them, ``len(skipped)`` counts them), so no epoch meets them. When no test folder exists, a seeded
    ``test_split`` fraction of the files is held out as the test split. Grey and colour files may be mixed:
    the source is RGB as soon as one file is colour, and every file is converted to that channel count.
    """

    def __init__(self, root, test_split=0.2, seed=0, name=None):
        root = os.path.abspath(os.path.expanduser(root))
        if not os.path.isdir(root):
            raise FileNotFoundError(f"Image folder not found: {root}")
        self.name = name or root
        self.origin = root
        sub = {d.lower(): d for d in _list_class_folders(root)}
        test_dir = next((sub[d] for d in ("test", "val", "validation") if d in sub), None)
        if "train" in sub and test_dir:
            train_root, test_root = os.path.join(root, sub["train"]), os.path.join(root, test_dir)
            self.class_names = tuple(_list_class_folders(train_root))
            splits = {"train": _list_images(train_root, self.class_names),
                      "test": _list_images(test_root, self.class_names)}
        else:
            self.class_names = tuple(_list_class_folders(root))
            paths, labels = _list_images(root, self.class_names)
            if not 0.0 < test_split < 1.0:
                raise ValueError(f"test_split must be in (0, 1) for a folder without a test sub-folder. "
                                 f"Received: test_split={test_split!r}")
            perm = np.random.default_rng(seed).permutation(len(paths))
            n_test = int(round(len(paths) * test_split))
            test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
            splits = {"train": ([paths[i] for i in train_idx], [labels[i] for i in train_idx]),
                      "test": ([paths[i] for i in test_idx], [labels[i] for i in test_idx])}
        if not self.class_names or not splits["train"][0]:
            raise ValueError(f"No images found in {root}: expected one sub-folder per class holding "
                             f"{'/'.join(e[1:] for e in IMAGE_EXTENSIONS)} files.")
        self._checks = {split: check_image_files(*splits[split]) for split in ("train", "test")}
        self.skipped = self._checks["train"].skipped + self._checks["test"].skipped
        all_grey = all(all(c.grey) for c in self._checks.values())
        self.channels = 1 if all_grey else 3
        sizes = {s for c in self._checks.values() for s in c.sizes}
        self.image_size = sizes.pop() if len(sizes) == 1 else None

    def files(self, split):
        """(paths, labels) of the readable files of a split."""
        return self._checks[split].files, self._checks[split].labels

    def size(self, split):
        return len(self._checks[split].files)

    def examples(self, split, indices=None):
        paths, labels = self.files(split)
        paths, labels = np.array(paths, dtype=object), np.array(labels, dtype=np.int32)
        if indices is not None:
            indices = np.asarray(indices, dtype=np.int64)
            paths, labels = paths[indices], labels[indices]
        channels = self.channels

        def decode(path, label):
            # The inference decoder (keras_cnns.images.read_image: EXIF orientation, alpha, palettes, 16-bit),
            # not tf.io.decode_image: a photo trains as it is displayed and as classify.py will read it.
            image = tf.numpy_function(decode_for_training, [path, channels], tf.uint8, stateful=False)
            image.set_shape([None, None, channels])
            return image, label

        ds = tf.data.Dataset.from_tensor_slices((paths.astype(str), labels))
        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        # The files were all decoded once already; this only guards against a file changed since.
        return ds.ignore_errors(log_warning=True)

    def fingerprint(self):
        digest = hashlib.sha1()
        for split in ("train", "test"):
            for path in self._checks[split].files:
                st = os.stat(path)
                digest.update(f"{path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return digest.hexdigest()[:16]


# -- TensorFlow Datasets --------------------------------------------------------------------------------
_TFDS_HELP = ("To prepare it: pip install tensorflow-datasets; then, on a machine with internet access, "
              "run `tfds.builder({name!r}, data_dir=DIR).download_and_prepare()` and copy DIR here; "
              "then pass data_dir=DIR (--data-dir DIR; default $TFDS_DATA_DIR or ~/tensorflow_datasets).")


def open_tfds_builder(name, data_dir=None, help_text=_TFDS_HELP):
    """The TFDS builder of a dataset already prepared under data_dir; nothing is downloaded. Fails at once,
    saying how to prepare it, when tensorflow_datasets is missing or the dataset is not prepared."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise ModuleNotFoundError(f"'tfds:{name}' needs the tensorflow_datasets package, which is not "
                                  f"installed. " + help_text.format(name=name)) from err
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        prepared = builder.is_prepared()
    except Exception as err:  # unknown name, unreadable data_dir, ...: one line, the help after it
        reason = (str(err).strip().splitlines() or [""])[0]
        raise FileNotFoundError(f"TFDS dataset {name!r} is not available under data_dir={data_dir!r} "
                                f"({type(err).__name__}: {reason}) " + help_text.format(name=name)) from err
    if not prepared:
        raise FileNotFoundError(f"TFDS dataset {name!r} is not prepared under data_dir={data_dir!r}. "
                                + help_text.format(name=name))
    return builder


class TfdsSource(Source):
    """A dataset prepared by TensorFlow Datasets, read with ``as_supervised=True``.

    Nothing is downloaded: a dataset that is not prepared under ``data_dir`` fails at once with a message
    saying how to prepare it. The test split is "test" (else "validation").
    """

    def __init__(self, name, data_dir=None):
        self.name = f"tfds:{name}"
        self._builder = builder = open_tfds_builder(name, data_dir)
        self.origin = f"tfds ({builder.data_dir})"
        info = builder.info
        self._splits = {"train": "train",
                        "test": next(s for s in ("test", "validation") if s in info.splits)}
        label_key, image_key = info.supervised_keys[1], info.supervised_keys[0]
        self.class_names = tuple(info.features[label_key].names)
        shape = info.features[image_key].shape
        self.channels = 3 if shape[-1] in (3, 4) or shape[-1] is None else int(shape[-1])
        self.image_size = (shape[0], shape[1]) if shape[0] and shape[1] else None

    def size(self, split):
        return int(self._builder.info.splits[self._splits[split]].num_examples)

    def examples(self, split, indices=None):
        ds = self._builder.as_dataset(split=self._splits[split], as_supervised=True, shuffle_files=False)
        channels = self.channels
        ds = ds.map(lambda image, label: (_to_channels(image, channels), tf.cast(label, tf.int32)))
        return ds if indices is None else at_positions(ds, self.size(split), indices)

    def fingerprint(self):
        return hashlib.sha1(f"{self.name}|{self._builder.data_dir}|{self.size('train')}".encode()).hexdigest()[:16]


def at_positions(ds, n, indices):
    """The elements of a dataset of n elements at the positions ``indices``, in the dataset's order."""
    keep = np.zeros(n, dtype=bool)
    keep[np.asarray(indices, dtype=np.int64)] = True
    keep = tf.constant(keep)

    def kept(i, element):
        return keep[i]

    def element_only(i, element):
        return element

    return ds.enumerate().filter(kept).map(element_only)


def _to_channels(image, channels):
    """A TFDS image as uint8 in `channels` (keras_cnns.data.preprocessing.convert_channels)."""
    return convert_channels(tf.cast(image, tf.uint8), channels)


# -- the one door ------------------------------------------------------------------------------------------
SOURCES = tuple(_IDX_DATASETS) + ("<image folder path>", "tfds:NAME")


def load_source(name, data_dir=None, download=True, **kwargs):
    """Opens a source: "fashion_mnist", "mnist", a folder of images, or "tfds:NAME".

    Args:
      name: the source's name or a directory path.
      data_dir: where to look first (MNIST-style IDX files, or the TFDS data_dir).
      download: for MNIST and Fashion-MNIST, whether ``keras.datasets`` may download them as a last resort.
      **kwargs: for a folder, ``test_split`` and ``seed`` (see :class:`FolderSource`).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be one of {SOURCES}. Received: name={name!r}")
    if name.startswith("tfds:"):
        return TfdsSource(name[len("tfds:"):], data_dir=data_dir)
    key = name.lower().replace("-", "_")
    if key in _IDX_DATASETS:
        return _load_idx_dataset(key, data_dir=data_dir, download=download)
    if os.path.isdir(os.path.expanduser(name)):
        return FolderSource(name, **kwargs)
    raise ValueError(f"Unknown data source: not a known dataset and not a directory. Allowed: "
                     f"{', '.join(SOURCES)}. Received: name={name!r}")
