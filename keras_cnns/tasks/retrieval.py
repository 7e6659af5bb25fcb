"""Image retrieval with a trained network: nearest neighbours of its feature vectors, exact or through
short binary codes.

Krizhevsky, Sutskever and Hinton (2012, sec. 6.1, fig. 4): images whose last hidden vectors (AlexNet's
4096-d fc7) are close in Euclidean distance look alike to the network, even when their pixels differ;
Euclidean search over long real vectors is slow, and an autoencoder that compresses them to short
binary codes (Krizhevsky and Hinton 2011, semantic hashing) should retrieve far better than one trained
on raw pixels. This module builds all of it on the zoo:

- :func:`feature_model` / :func:`extract_features`: the retrieval vector of any trained model, through
  :func:`keras_cnns.feature_extractor` (fc7 for AlexNet and VGG, f6 for LeNet-5, else the deepest end
  point globally average-pooled: ResNet's conv5, GoogLeNet's inception_5b, NIN's last mlpconv), batched
  through tf.data with a progress bar; with ``mirror=True`` the mean of the vectors of each image and of its
  mirror image (not in the article: a vector that ignores which way an item faces);
- :func:`knn_euclidean`: exact k nearest neighbours, in query batches so memory stays bounded;
- :func:`pack_codes` / :func:`hamming_distances` / :func:`knn_hamming`: bit-packed codes and a vectorised
  popcount;
- :func:`train_autoencoder`: the binary-code autoencoder (``get_model("feature_autoencoder")``) trained
  with the package's crash-safe epoch commits, history.csv and curves.png;
- :class:`RetrievalIndex`: a small directory (index.json, arrays.npz, autoencoder.keras) holding codes
  and/or features, labels, source ids and the metadata of the model that made them; it refuses to mix
  models or preprocessing;
- :func:`ranking_metrics`: exact mAP and precision@k over a whole database.

Ties: every ranking orders equal distances by database position (a stable sort), so results are
reproducible; this matters for Hamming distances, which are small integers.
"""

import json
import os
import shutil
import sys

import numpy as np

from keras_cnns.paths import atomic_write_text

INDEX_FORMAT = 1
INDEX_JSON = "index.json"
INDEX_ARRAYS = "arrays.npz"
AUTOENCODER_FILE = "autoencoder.keras"
VECTOR_ENDPOINTS = ("fc7", "f6")       # a network's last hidden vector, preferred in this order
FEATURE_DTYPES = ("float32", "float16")
# What must agree for two indexes (or an index and a query model) to be comparable.
# "mirror" is in an index's metadata only when true, so indexes from before it compare as before;
# "code_noise" is there whenever the index has codes (indexes from before it: absent, i.e. no noise).
IDENTITY_KEYS = ("model", "preprocessing", "endpoint", "feature_dim", "bits", "mirror", "code_noise")


class IndexMismatchError(ValueError):
    """Features or codes from different models, preprocessing or code lengths were about to be mixed."""


# ------------------------------------------------------------------------------------------- features

def retrieval_endpoint(model):
    """(end point name, pooled) of the vector used for retrieval: fc7 or f6 when the model has one, else
    its deepest end point, which is globally average-pooled (pooled=True)."""
    from keras_cnns.features import feature_layers

    available = feature_layers(model)
    for name in VECTOR_ENDPOINTS:
        if name in available:
            return name, False
    deepest = list(available)[-1]
    return deepest, len(model.get_layer(available[deepest]).output.shape) == 4


def feature_model(model):
    """A Model: the trained model's input -> its retrieval vector (batch, D)."""
    import keras

    from keras_cnns.features import feature_extractor

    endpoint, pooled = retrieval_endpoint(model)
    extractor = feature_extractor(model, [endpoint])
    x = extractor.outputs[0] if not isinstance(extractor.output, dict) else extractor.output[endpoint]
    if pooled:
        x = keras.layers.GlobalAveragePooling2D(name=f"{endpoint}_gap")(x)
    elif len(x.shape) > 2:
        x = keras.layers.Flatten(name=f"{endpoint}_flat")(x)
    return keras.Model(extractor.inputs, x, name=f"{model.name}_{endpoint}")


def _progress(total, progress):
    """A keras Progbar for `total` items, or None when off (progress=False, or None and not a tty)."""
    import keras

    if progress is None:
        progress = sys.stderr.isatty()
    return keras.utils.Progbar(total, unit_name="image") if progress else None


def extract_features(model, images, preprocessing, *, batch_size=256, dtype="float32", progress=None,
                     mirror=False):
    """Retrieval vectors of raw images.

    Args:
      model: a trained keras model of the zoo (its :func:`feature_model` is used).
      images: uint8 images as one array (N, H, W, C), a list of arrays of any sizes, or a tf.data.Dataset
        of single images.
      preprocessing: the model's :class:`keras_cnns.data.Preprocessing` (from its metadata).
      dtype: "float32" or "float16" (half the storage; distances change in the fourth digit).
      progress: a progress bar on stderr: True, False, or None (only on a terminal).
      mirror: average each vector with the one of the left-right mirrored model input (twice the work).
    Returns:
      (N, D) array of `dtype`.
    """
    import tensorflow as tf

    from keras_cnns.data.pipeline import tuning_options

    if dtype not in FEATURE_DTYPES:
        raise ValueError(f"dtype must be one of {FEATURE_DTYPES}. Received: dtype={dtype!r}")
    net = feature_model(model)
    if isinstance(images, tf.data.Dataset):
        total = int(images.cardinality())
        ds = images.map(preprocessing.apply, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
    elif isinstance(images, np.ndarray):
        total = len(images)
        ds = tf.data.Dataset.from_tensor_slices(images).batch(batch_size).map(
            preprocessing.apply, num_parallel_calls=tf.data.AUTOTUNE)
    else:  # images of different sizes: preprocess one by one, then batch
        total = len(images)
        ds = tf.data.Dataset.from_tensor_slices(
            np.stack([preprocessing.apply(image).numpy() for image in images])).batch(batch_size) \
            if total else None
    bar = _progress(max(total, 0) or None, progress)
    out = []
    for batch in (ds.prefetch(tf.data.AUTOTUNE).with_options(tuning_options()) if ds is not None else ()):
        vectors = net(batch, training=False)
        if mirror:
            vectors = (vectors + net(tf.image.flip_left_right(batch), training=False)) / 2
        out.append(np.asarray(vectors, dtype=dtype))
        if bar is not None:
            bar.add(len(out[-1]))
    dim = int(net.output_shape[-1])
    return np.concatenate(out) if out else np.zeros((0, dim), dtype)


def pixel_vectors(images):
    """The article's baseline representation: each image's pixels, flattened and scaled to [0, 1]."""
    images = np.asarray(images)
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


# ------------------------------------------------------------------------------------- Euclidean k-NN

def squared_norms(x):
    x = np.asarray(x, np.float32)
    return np.einsum("ij,ij->i", x, x)


def euclidean_distances(queries, database, database_sq=None):
    """(Q, N) Euclidean distances, from ||q||^2 - 2 q.d + ||d||^2 (one matmul), clipped at 0."""
    q = np.asarray(queries, np.float32)
    d = np.asarray(database, np.float32)
    d_sq = squared_norms(d) if database_sq is None else database_sq
    sq = squared_norms(q)[:, None] - 2.0 * (q @ d.T) + d_sq[None, :]
    np.maximum(sq, 0.0, out=sq)
    return np.sqrt(sq, out=sq)


def _smallest(distances, k):
    """(indices, distances) of the k smallest of each row, nearest first, equal distances by index."""
    k = min(k, distances.shape[1])
    part = np.argpartition(distances, k - 1, axis=1)[:, :k] if k < distances.shape[1] else \
        np.broadcast_to(np.arange(distances.shape[1]), distances.shape).copy()
    part_d = np.take_along_axis(distances, part, axis=1)
    order = np.lexsort((part, part_d), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(part_d, order, axis=1)


def knn_euclidean(queries, database, k=10, batch_size=512):
    """Exact k nearest neighbours by Euclidean distance: (indices (Q, k), distances (Q, k)).

    Queries go in batches of `batch_size`, so memory holds one (batch_size, N) distance block.
    """
    database = np.asarray(database, np.float32)
    d_sq = squared_norms(database)
    idx, dist = [], []
    for start in range(0, len(queries), batch_size):
        block = euclidean_distances(queries[start:start + batch_size], database, d_sq)
        i, d = _smallest(block, k)
        idx.append(i)
        dist.append(d)
    return np.concatenate(idx), np.concatenate(dist)


# ------------------------------------------------------------------------------------ binary codes

def pack_codes(codes):
    """Codes in {-1, +1} (or booleans, or {0, 1}) of shape (N, B) -> uint8 (N, ceil(B / 8)), bit = code > 0."""
    return np.packbits(np.asarray(codes) > 0, axis=1)


def unpack_codes(packed, bits):
    """The inverse of :func:`pack_codes`: (N, bits) booleans."""
    return np.unpackbits(np.asarray(packed, np.uint8), axis=1, count=bits).astype(bool)


def _words(packed):
    """The packed bytes viewed as the widest unsigned words that divide a row (fewer popcounts)."""
    packed = np.ascontiguousarray(packed, np.uint8)
    for dtype in (np.uint64, np.uint32, np.uint16):
        if packed.shape[1] % np.dtype(dtype).itemsize == 0:
            return packed.view(dtype)
    return packed


_BYTE_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def popcount(x):
    """Set bits of each element of an unsigned integer array (np.bitwise_count, else a byte table)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    x = np.ascontiguousarray(x)
    return _BYTE_POPCOUNT[x.view(np.uint8)].reshape(*x.shape, x.dtype.itemsize).sum(-1, dtype=np.uint8)


def hamming_distances(queries, database):
    """(Q, N) Hamming distances between packed codes (uint8, from :func:`pack_codes`), as uint16."""
    q, d = _words(queries), _words(database)
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"Codes of different lengths: {queries.shape[1] * 8} vs {database.shape[1] * 8} bits "
                         "(packed). Received: queries of shape {queries.shape}, database of shape {database.shape}")
    out = np.zeros((len(q), len(d)), np.uint16)
    for w in range(q.shape[1]):
        out += popcount(q[:, w, None] ^ d[None, :, w])
    return out


def _nearest_small_ints(row, k):
    """Positions of the k smallest of a row of small non-negative integers, nearest first, ties by
    position: a counting pass finds the k-th distance, then only the items up to it are sorted."""
    cumulative = np.cumsum(np.bincount(row))
    threshold = int(np.searchsorted(cumulative, k))
    candidates = np.flatnonzero(row <= threshold)          # already in position order
    return candidates[np.argsort(row[candidates], kind="stable")[:k]]


def knn_hamming(queries, database, k=10, batch_size=32):
    """k nearest packed codes by Hamming distance: (indices (Q, k), distances (Q, k)); ties by index."""
    k = min(k, len(database))
    idx, dist = [], []
    for start in range(0, len(queries), batch_size):
        block = hamming_distances(queries[start:start + batch_size], database)
        for row in block:
            nearest = _nearest_small_ints(row, k)
            idx.append(nearest)
            dist.append(row[nearest])
    if not idx:
        return np.zeros((0, k), np.int64), np.zeros((0, k), np.uint16)
    return np.stack(idx), np.stack(dist)


# ------------------------------------------------------------------------------------------ metrics

def ranking_metrics(distance_blocks, query_labels, database_labels, k=10):
    """Exact mAP and precision@k of whole-database rankings.

    Args:
      distance_blocks: an iterable of (Q_b, N) distance arrays, query batches in order.
      query_labels, database_labels: a neighbour is relevant when its label equals the query's.
    Each row is ranked with equal distances in database order (:func:`_stable_argsort`). AP = the mean, over
    the relevant items, of the precision at each one's rank; mAP = the mean AP over queries.
    Returns {"map": float, "precision_at_k": float, "k": k, "queries": Q}.
    """
    database_labels = np.asarray(database_labels)
    query_labels = np.asarray(query_labels)
    ranks = np.arange(1, len(database_labels) + 1, dtype=np.float64)
    ap_sum, p_sum, done = 0.0, 0.0, 0
    for block in distance_blocks:
        labels = query_labels[done:done + len(block)]
        order = _stable_argsort(block)
        relevant = database_labels[order] == labels[:, None]
        hits = np.cumsum(relevant, axis=1)
        count = hits[:, -1]
        ap = np.where(relevant, hits / ranks, 0.0).sum(axis=1) / np.maximum(count, 1)
        ap_sum += float(ap.sum())
        p_sum += float((hits[:, k - 1] / k).sum())
        done += len(block)
    return {"map": ap_sum / max(done, 1), "precision_at_k": p_sum / max(done, 1), "k": k, "queries": done}


def _stable_argsort(block):
    """argsort of each row, equal values in position order. Integer rows (Hamming distances) take NumPy's
    stable radix sort; float rows take the several times faster SIMD quicksort, and only the rare rows
    with equal values are sorted again stably, so the result is the stable order in every case."""
    if np.issubdtype(block.dtype, np.integer):
        return np.argsort(block, axis=1, kind="stable")
    order = np.argsort(block, axis=1)
    ranked = np.take_along_axis(block, order, axis=1)
    for row in np.flatnonzero((np.diff(ranked, axis=1) == 0).any(axis=1)):
        order[row] = np.argsort(block[row], kind="stable")
    return order


def euclidean_blocks(queries, database, batch_size=256):
    """Distance blocks for :func:`ranking_metrics` (Euclidean)."""
    d_sq = squared_norms(database)
    database = np.asarray(database, np.float32)
    for start in range(0, len(queries), batch_size):
        yield euclidean_distances(queries[start:start + batch_size], database, d_sq)


def hamming_blocks(queries, database, batch_size=64):
    """Distance blocks for :func:`ranking_metrics` (Hamming, uint16 -> radix-sorted)."""
    for start in range(0, len(queries), batch_size):
        yield hamming_distances(queries[start:start + batch_size], database)


# ------------------------------------------------------------------------------------- autoencoder

def standardiser(vectors):
    """(mean, std) per dimension for the autoencoder's inputs; std is floored so constant dimensions
    (the always-black corners of Fashion-MNIST) stay finite."""
    vectors = np.asarray(vectors, np.float32)
    mean = vectors.mean(axis=0)
    std = vectors.std(axis=0)
    return mean, np.maximum(std, 1e-2 * float(std.mean()) + 1e-6).astype(np.float32)


def train_autoencoder(vectors, bits=64, *, hidden=(512,), code_noise=None, epochs=30, batch_size=256,
                      learning_rate=1e-3, validation_split=0.1, seed=0, output_dir=None, name="features", verbose=0,
                      log=print):
    """Trains ``get_model("feature_autoencoder")`` to reconstruct standardised `vectors` through B bits.

    code_noise: the training noise on the code logits (None: the builder's default,
    keras_cnns.models.autoencoder.CODE_NOISE; 0: none).

    keras_cnns.training.fit() trains classifiers on image sources (labels, accuracy, test evaluation);
    an autoencoder on vectors needs none of that, so it trains with model.fit here, under the same
    conventions: seeded, Adam, the package's crash-safe per-epoch commits (RunState + EpochCommitter,
    monitoring val_loss), and history.csv + curves.png in `output_dir` when one is given.

    Returns (model, mean, std, history rows).
    """
    import keras

    from keras_cnns.registry import get_model
    from keras_cnns.training import callbacks as cb
    from keras_cnns.training.plots import plot_history

    vectors = np.asarray(vectors, np.float32)
    mean, std = standardiser(vectors)
    x = (vectors - mean) / std
    keras.utils.set_random_seed(seed)
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = int(round(len(x) * validation_split)) if len(x) > 10 else 0
    val, train = x[order[:n_val]], x[order[n_val:]]
    options = {} if code_noise is None else {"code_noise": code_noise}
    model = get_model("feature_autoencoder", input_shape=(x.shape[1],), bits=int(bits), hidden=hidden, **options)
    model.compile(keras.optimizers.Adam(learning_rate), loss="mse")
    noise = model.get_layer("code").noise_stddev
    callbacks, state = [], None
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        checkpoints = os.path.join(output_dir, "checkpoints")
        shutil.rmtree(checkpoints, ignore_errors=True)  # a new index: never resume another one's codes
        state = cb.RunState(checkpoints, os.path.join(output_dir, "history.csv"),
                            {"model": "feature_autoencoder", "dataset": name, "bits": int(bits),
                             "code_noise": noise},
                            monitor="val_loss" if n_val else "loss", mode="min")
        callbacks.append(cb.EpochCommitter(state))
    log(f"Autoencoder: {x.shape[1]} -> {bits} bits on {len(train)} vectors ({n_val} validation), "
        f"{epochs} epochs, code noise {noise:g}")
    history = model.fit(train, train, validation_data=(val, val) if n_val else None, epochs=epochs,
                        batch_size=batch_size, shuffle=True, callbacks=callbacks, verbose=verbose)
    rows = state.history if state else [
        dict({k: float(v[i]) for k, v in history.history.items()}, epoch=i + 1)
        for i in range(len(history.history["loss"]))]
    if output_dir:
        shutil.rmtree(checkpoints, ignore_errors=True)
        plot_history(rows, os.path.join(output_dir, "curves.png"), title=f"{bits}-bit autoencoder of {name}")
    return model, mean, std, rows


def encode(autoencoder, vectors, mean, std, batch_size=4096):
    """Vectors -> packed codes (uint8) through the autoencoder's encoder."""
    from keras_cnns.models.autoencoder import encoder

    enc = encoder(autoencoder)
    x = (np.asarray(vectors, np.float32) - mean) / std
    codes = [np.asarray(enc(x[s:s + batch_size], training=False)) for s in range(0, len(x), batch_size)]
    return pack_codes(np.concatenate(codes) if codes else np.zeros((0, enc.output_shape[-1])))


# ------------------------------------------------------------------------------------------- index

class RetrievalIndex:
    """Database vectors and/or codes with their labels, source ids and the metadata of what made them.

    Attributes:
      meta: dict with "model" (registry name), "model_source", "preprocessing" (dict), "endpoint",
        "feature_dim", "bits" (None without codes), "dataset", "split", "class_names", "count".
      labels, ids: (N,) int arrays (ids: positions in the dataset split).
      features: (N, D) float16/float32 or None; codes: (N, ceil(B/8)) uint8 or None.
      autoencoder, mean, std: the code's encoder and its input standardisation (None without codes).
    """

    def __init__(self, meta, labels, ids, features=None, codes=None, autoencoder=None, mean=None, std=None):
        self.meta = dict(meta)
        self.labels = np.asarray(labels)
        self.ids = np.asarray(ids)
        self.features = features
        self.codes = codes
        self.autoencoder = autoencoder
        self.mean = mean
        self.std = std
        self.meta["count"] = int(len(self.labels))

    @property
    def class_names(self):
        return list(self.meta["class_names"])

    def searches(self):
        return [s for s, have in (("hamming", self.codes is not None), ("euclidean", self.features is not None))
                if have]

    def check_compatible(self, other_meta, what="the query model"):
        """Raises IndexMismatchError when `other_meta` (another index's, or a model's metadata.json) differs
        in model, preprocessing or (for indexes) end point and code length."""
        keys = IDENTITY_KEYS if "endpoint" in other_meta else ("model", "preprocessing")
        for key in keys:
            mine, theirs = self.meta.get(key), other_meta.get(key)
            if mine != theirs:
                raise IndexMismatchError(
                    f"Cannot mix {what} with this index: its {key} is {theirs!r}, the index's is {mine!r} "
                    f"(index of {self.meta.get('model')} on {self.meta.get('dataset')}). Query with the model "
                    f"that built the index, or build a new index with `apps/retrieve.py build --model ...`.")

    def encode(self, features):
        if self.autoencoder is None:
            raise ValueError("This index has no codes (built with --bits 0): use --search euclidean.")
        return encode(self.autoencoder, features, self.mean, self.std)

    def search(self, features, k=10, search="hamming"):
        """(indices into the index, distances) of the k nearest database items of each query vector."""
        if search == "hamming":
            return knn_hamming(self.encode(features), self.codes, k)
        if search == "euclidean":
            if self.features is None:
                raise ValueError("This index holds codes only (built with --no-features): use --search "
                                 "hamming, or rebuild it with features.")
            return knn_euclidean(np.asarray(features, np.float32), self.features, k)
        raise ValueError(f"search must be 'hamming' or 'euclidean'. Received: search={search!r}")

    def save(self, directory):
        """Writes index.json, arrays.npz and (with codes) autoencoder.keras into `directory`."""
        os.makedirs(directory, exist_ok=True)
        arrays = {"labels": self.labels.astype(np.int32), "ids": self.ids.astype(np.int64)}
        if self.features is not None:
            arrays["features"] = self.features
        if self.codes is not None:
            arrays.update(codes=self.codes, mean=self.mean, std=self.std)
            self.autoencoder.save(os.path.join(directory, AUTOENCODER_FILE))
        np.savez_compressed(os.path.join(directory, INDEX_ARRAYS), **arrays)
        meta = dict(self.meta, format=INDEX_FORMAT,
                    feature_dtype=None if self.features is None else str(self.features.dtype))
        atomic_write_text(os.path.join(directory, INDEX_JSON), json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return directory

    @classmethod
    def load(cls, directory, expect=None):
        """Reads an index directory; with `expect` (a model's metadata or another index's meta), refuses a
        mismatch with IndexMismatchError. Other problems raise ValueError with what to do."""
        import keras

        from keras_cnns import layers as _  # noqa: F401  (BinaryCode must be registered before loading)

        path = os.path.join(directory, INDEX_JSON)
        if not os.path.isfile(path):
            raise ValueError(f"{directory}: not a retrieval index (no {INDEX_JSON}); build one with "
                             "`python apps/retrieve.py build`.")
        with open(path) as f:
            meta = json.load(f)
        if meta.get("format") != INDEX_FORMAT:
            raise ValueError(f"{path}: index format {meta.get('format')!r}, this code reads {INDEX_FORMAT}; "
                             "rebuild the index.")
        with np.load(os.path.join(directory, INDEX_ARRAYS)) as arrays:
            arrays = {k: arrays[k] for k in arrays.files}
        autoencoder = None
        if "codes" in arrays:
            autoencoder = keras.saving.load_model(os.path.join(directory, AUTOENCODER_FILE), compile=False,
                                                  safe_mode=True)
        index = cls(meta, arrays["labels"], arrays["ids"], arrays.get("features"), arrays.get("codes"),
                    autoencoder, arrays.get("mean"), arrays.get("std"))
        if expect is not None:
            index.check_compatible(expect)
        return index


def merge(indexes):
    """One index of several built by the same model, preprocessing, end point and code length (e.g. the
    shards of a large dataset); anything else raises IndexMismatchError. The first one's encoder is kept,
    so the shards must share it: build them with the same autoencoder."""
    first = indexes[0]
    for other in indexes[1:]:
        first.check_compatible(other.meta, what=f"an index of {other.meta.get('model')}")
    cat = (lambda name: None if getattr(first, name) is None else
           np.concatenate([getattr(i, name) for i in indexes]))
    return RetrievalIndex(first.meta, cat("labels"), cat("ids"), cat("features"), cat("codes"),
                          first.autoencoder, first.mean, first.std)


# ------------------------------------------------------------------------------------------ build

def load_feature_source(model_source=None):
    """(keras model, metadata, source string) of a trained model, from any source inference.load takes
    that is a Keras model (a registry name, a model directory, a .keras file)."""
    from keras_cnns import inference

    predictor = inference.load(model_source)
    if not isinstance(predictor, inference.KerasPredictor):
        raise ValueError(f"{predictor.source}: a {predictor.kind} model has no named layers to take features "
                         "from; give its model directory or .keras file.")
    return predictor.model, predictor.metadata, predictor.source


def _portable(path):
    """A path relative to the repository root when it lies inside it (so a shipped index travels)."""
    from keras_cnns.inference import REPO_ROOT

    path = os.path.abspath(path)
    return os.path.relpath(path, REPO_ROOT) if path.startswith(REPO_ROOT + os.sep) else path


def resolve_model_source(source):
    """The inverse of _portable: a relative model path is taken from the repository root if not found."""
    from keras_cnns.inference import REPO_ROOT

    if source and not os.path.isabs(source) and not os.path.exists(source):
        candidate = os.path.join(REPO_ROOT, source)
        if os.path.exists(candidate):
            return candidate
    return source


def dataset_arrays(dataset, split="train", limit=None, data_dir=None):
    """(uint8 images, labels, class names) of a dataset split (first `limit` images), from keras_cnns.data."""
    from keras_cnns import data

    source = data.load_source(dataset, data_dir=data_dir)
    n = source.size(split) if not limit else min(limit, source.size(split))
    if hasattr(source, "arrays"):
        images, labels = source.arrays(split)
        return images[:n], labels[:n], list(source.class_names)
    pairs = list(source.examples(split, np.arange(n)).as_numpy_iterator())
    return [p[0] for p in pairs], np.array([p[1] for p in pairs], np.int32), list(source.class_names)


def build_index(model_source=None, dataset=None, *, bits=64, split="train", limit=None, output=None,
                keep_features=True, feature_dtype="float16", epochs=30, hidden=(512,), code_noise=None,
                batch_size=256, seed=0, data_dir=None, mirror=False, progress=None, log=print):
    """Features of a dataset split from a trained model, an autoencoder's codes of them, as an index.

    Args:
      model_source: anything :func:`keras_cnns.inference.load` takes (default: the shipped LeNet-5).
      dataset: default the one the model was trained on (its metadata).
      bits: code length B; 0 for a Euclidean-only index (no autoencoder).
      code_noise: the autoencoder's training noise (:func:`train_autoencoder`).
      keep_features: store the real vectors too (for Euclidean search), as `feature_dtype`.
      mirror: vectors averaged with their mirror image's (:func:`extract_features`); queries follow the index.
      output: the index directory (written when given).
    """
    from keras_cnns.data.preprocessing import Preprocessing

    model, meta, source = load_feature_source(model_source)
    dataset = dataset or meta["dataset"]
    images, labels, class_names = dataset_arrays(dataset, split, limit, data_dir)
    prep = Preprocessing.from_dict(meta["preprocessing"])
    endpoint, pooled = retrieval_endpoint(model)
    log(f"Features: {meta['model']} {endpoint}{' (global average pool)' if pooled else ''}"
        f"{', averaged with the mirror image' if mirror else ''} of {len(labels)} {dataset} {split} images")
    features = extract_features(model, images, prep, batch_size=batch_size, progress=progress, mirror=mirror)
    index_meta = {"model": meta["model"], "model_source": _portable(source), "preprocessing": meta["preprocessing"],
                  "endpoint": endpoint, "feature_dim": int(features.shape[1]), "bits": int(bits) or None,
                  "dataset": dataset, "split": split, "class_names": list(meta.get("class_names") or class_names)}
    if mirror:
        index_meta["mirror"] = True
    codes = autoencoder = mean = std = None
    if bits:
        autoencoder, mean, std, _ = train_autoencoder(features, bits, hidden=hidden, code_noise=code_noise,
                                                      epochs=epochs, seed=seed, output_dir=output,
                                                      name=f"{meta['model']}-{dataset}", log=log)
        index_meta["code_noise"] = autoencoder.get_layer("code").noise_stddev
        codes = encode(autoencoder, features, mean, std)
    index = RetrievalIndex(index_meta, labels, np.arange(len(labels)),
                           features.astype(feature_dtype) if keep_features else None, codes, autoencoder, mean, std)
    if output:
        index.save(output)
        log(f"Wrote {output}: {len(labels)} items, " + ", ".join(index.searches()) + " search")
    return index


def default_index_dir():
    """The shipped index: 64-bit codes of the Fashion-MNIST training set from the shipped LeNet-5."""
    from keras_cnns import paths

    return paths.find_model_dir("lenet5-fashion_mnist-retrieval")


def database_images(index, data_dir=None):
    """The raw images of an index's items (from its dataset split), for showing neighbours."""
    images, _, _ = dataset_arrays(index.meta["dataset"], index.meta.get("split", "train"),
                                  int(index.ids.max()) + 1 if len(index.ids) else 0, data_dir)
    return images


# ------------------------------------------------------------------------------------------ pictures

def plot_neighbours(rows, path=None, title=None):
    """A grid: one row per query, the query image first, then its neighbours captioned with label and
    distance.

    Args:
      rows: [(query image (H, W, C) uint8, query caption, [(image or None, label, distance), ...]), ...].
    Returns the matplotlib Figure (written to `path` and closed when given).
    """
    from keras_cnns.training.plots import _finish, _pyplot

    plt = _pyplot()
    cols = 1 + max(len(r[2]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.3 * cols, 1.55 * len(rows)), squeeze=False)
    for ax_row, (query, caption, neighbours) in zip(axes, rows):
        cells = [(query, caption, "tab:blue")] + [
            (image, f"{label}\n{_format_distance(distance)}", "black") for image, label, distance in neighbours]
        for ax, (image, text, colour) in zip(ax_row, cells + [(None, "", "black")] * (cols - len(cells))):
            ax.set_xticks([])
            ax.set_yticks([])
            if image is not None:
                image = np.asarray(image)
                ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=255)
            else:
                ax.axis("off")
            ax.set_title(text, fontsize=7, color=colour)
    if title:
        fig.suptitle(title, fontsize=9)
    return _finish(plt, fig, path)


def _format_distance(distance):
    distance = float(distance)
    return f"d={int(distance)}" if distance.is_integer() else f"d={distance:.3f}"
