"""Sources and pipelines: Fashion-MNIST from the Debian package, MNIST from IDX files, image folders with
broken files, TFDS when it cannot work, and the seeded validation split."""

import io
import logging
import os
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_cnns import data
from keras_cnns.data import sources

from _fashion import FASHION_DIR, needs_fashion

pytestmark = pytest.mark.usefixtures("stats_in_tmp")


def _id_images(ids, size=4):
    """Images that carry their id in their first two pixels (ids up to 65,535)."""
    images = np.zeros((len(ids), size, size, 1), np.uint8)
    images[:, 0, 0, 0] = np.asarray(ids) // 256
    images[:, 0, 1, 0] = np.asarray(ids) % 256
    return images


def _ids(images):
    images = np.rint(np.asarray(images)).astype(np.int64)
    return images[:, 0, 0, 0] * 256 + images[:, 0, 1, 0]


def _id_source(n_train=200, n_test=30):
    train_ids, test_ids = np.arange(n_train), np.arange(n_train, n_train + n_test)
    return data.from_arrays((_id_images(train_ids), train_ids % 3), (_id_images(test_ids), test_ids % 3),
                            class_names=["a", "b", "c"], name="ids")


def _raw_prep(size=4):  # pixels unchanged, so the ids survive the pipeline
    return data.Preprocessing(size=(size, size), channels=1, resize="pad", mean=(0.0,), std=(1.0,))


def _all_ids(ds):
    return np.concatenate([_ids(x.numpy()) for x, _ in ds]) if ds is not None else np.array([], int)


# -- Fashion-MNIST and MNIST ------------------------------------------------------------------------------
@needs_fashion
def test_fashion_mnist_comes_from_the_debian_package_with_its_class_names(fashion):
    assert fashion.origin == FASHION_DIR
    assert (fashion.size("train"), fashion.size("test")) == (60000, 10000)
    assert fashion.class_names[:3] == ("T-shirt/top", "Trouser", "Pullover")
    assert fashion.class_names[-1] == "Ankle boot" and fashion.num_classes == 10
    assert fashion.channels == 1 and fashion.image_size == (28, 28)
    images, labels = fashion.arrays("train")
    assert images.dtype == np.uint8 and images.shape == (60000, 28, 28, 1)
    assert np.bincount(labels).tolist() == [6000] * 10  # Fashion-MNIST is balanced


def _write_mnist(directory, n_train=12, n_test=5, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(directory, exist_ok=True)
    arrays = {"train": (rng.integers(0, 256, (n_train, 28, 28)), rng.integers(0, 10, n_train)),
              "test": (rng.integers(0, 256, (n_test, 28, 28)), rng.integers(0, 10, n_test))}
    for split, (images, labels) in arrays.items():
        prefix = "train" if split == "train" else "t10k"
        suffix = ".gz" if gz else ""
        data.write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte{suffix}"), images)
        data.write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte{suffix}"), labels)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_files_from_data_dir(tmp_path, gz):
    arrays = _write_mnist(str(tmp_path), gz=gz)
    source = data.load_source("mnist", data_dir=str(tmp_path), download=False)
    assert source.class_names == tuple("0123456789") and source.origin == str(tmp_path)
    images, labels = source.arrays("test")
    np.testing.assert_array_equal(images[..., 0], arrays["test"][0])
    np.testing.assert_array_equal(labels, arrays["test"][1])


def test_data_dir_comes_before_the_environment_variable_which_comes_before_the_rest(tmp_path, monkeypatch):
    _write_mnist(str(tmp_path / "arg"), n_train=7)
    _write_mnist(str(tmp_path / "env" / "mnist"), n_train=9)  # a dataset sub-folder is found too
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "env"))
    assert data.load_source("mnist", download=False).size("train") == 9
    assert data.load_source("mnist", data_dir=str(tmp_path / "arg"), download=False).size("train") == 7


def test_the_environment_variable_comes_before_the_debian_package_which_comes_before_the_keras_cache(
        tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    _write_mnist(str(tmp_path / "home" / ".keras" / "datasets" / "fashion-mnist"), n_train=5)
    monkeypatch.setitem(sources._IDX_DATASETS["fashion_mnist"], "debian", str(tmp_path / "no-package"))
    assert data.load_source("fashion_mnist", download=False).size("train") == 5  # the Keras cache
    _write_mnist(str(tmp_path / "package"), n_train=6)
    monkeypatch.setitem(sources._IDX_DATASETS["fashion_mnist"], "debian", str(tmp_path / "package"))
    assert data.load_source("fashion_mnist", download=False).size("train") == 6
    _write_mnist(str(tmp_path / "env"), n_train=8)
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "env"))
    assert data.load_source("fashion_mnist", download=False).size("train") == 8


def test_a_truncated_idx_file_is_an_error_naming_it(tmp_path):
    _write_mnist(str(tmp_path), gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte is truncated"):
        data.load_source("mnist", data_dir=str(tmp_path), download=False)


def test_missing_dataset_says_how_to_get_it_after_the_download_fails(tmp_path, monkeypatch):
    import keras

    monkeypatch.setenv("HOME", str(tmp_path))  # no Keras cache
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path / "nothing"))
    monkeypatch.setitem(sources._IDX_DATASETS["fashion_mnist"], "debian", str(tmp_path / "no-package"))

    def offline():
        raise OSError("no internet")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    with pytest.raises(FileNotFoundError) as info:
        data.load_source("fashion_mnist")
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "--data-dir" in message and "KERAS_CNNS_DATA_DIR" in message
    assert "no internet" in message and str(tmp_path / "no-package") in message


def test_unknown_source_lists_what_is_allowed():
    with pytest.raises(ValueError, match=r"fashion_mnist.*tfds:NAME.*Received: name='cifar11'"):
        data.load_source("cifar11")


# -- image folders ---------------------------------------------------------------------------------------
def _image_bytes(array, fmt):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture
def image_folder(tmp_path):
    """Two classes, every common format, grey and RGB mixed, one corrupt and two truncated files."""
    rng = np.random.default_rng(0)
    files = {
        "cat/a.png": _image_bytes(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8), "PNG"),
        "cat/b.jpg": _image_bytes(rng.integers(0, 256, (30, 20), dtype=np.uint8), "JPEG"),  # grey
        "cat/c.bmp": _image_bytes(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "BMP"),
        "cat/d.webp": _image_bytes(rng.integers(0, 256, (18, 18, 3), dtype=np.uint8), "WEBP"),
        "dog/e.gif": _image_bytes(rng.integers(0, 256, (22, 22), dtype=np.uint8), "GIF"),
        "dog/f.png": _image_bytes(rng.integers(0, 256, (25, 25), dtype=np.uint8), "PNG"),  # grey
        "dog/g.jpeg": _image_bytes(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8), "JPEG"),
        "dog/h.PNG": _image_bytes(rng.integers(0, 256, (12, 30, 3), dtype=np.uint8), "PNG"),
        "dog/notes.txt": b"not an image, not listed",
    }
    files["dog/corrupt.jpg"] = b"\xff\xd8\xff" + rng.bytes(500)
    whole = _image_bytes(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "PNG")
    files["cat/truncated.png"] = whole[: len(whole) // 2]
    photo = _image_bytes(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), "JPEG")
    files["dog/cut.jpg"] = photo[: len(photo) * 2 // 3]
    for name, content in files.items():
        path = tmp_path / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return tmp_path / "images"


def test_image_folder_skips_corrupt_and_truncated_files_with_their_paths(image_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="keras_cnns.data.sources"):
        source = data.load_source(str(image_folder), test_split=0.25)
    skipped = sorted(os.path.relpath(path, image_folder) for path, _ in source.skipped)
    assert skipped == ["cat/truncated.png", "dog/corrupt.jpg", "dog/cut.jpg"]
    assert str(image_folder / "dog" / "corrupt.jpg") in caplog.text
    counts = [int(line.split("Skipped ")[1].split()[0]) for line in caplog.text.splitlines() if "Skipped " in line]
    assert sum(counts) == 3  # a count per split
    assert source.class_names == ("cat", "dog")
    assert source.size("train") + source.size("test") == 8
    assert source.channels == 3 and source.image_size is None  # grey and colour mixed, sizes vary


def test_image_folder_trains_two_epochs_on_mixed_grey_and_rgb(image_folder):
    source = data.load_source(str(image_folder), test_split=0.25)
    prep = data.Preprocessing(size=(16, 16), channels=3, resize="resize")
    ds = data.make_datasets(source, prep, batch_size=4, augment="flip", validation_split=0.0)
    for _ in range(2):  # no epoch meets a broken file
        seen = sum(int(x.shape[0]) for x, _ in ds.train)
        assert seen == source.size("train")
    x, y = next(iter(ds.test))
    assert x.shape[1:] == (16, 16, 3) and x.dtype == tf.float32 and y.dtype == tf.int32


def test_image_folder_with_train_and_test_sub_folders_all_grey(tmp_path):
    formats = ("PNG", "GIF", "BMP")  # TensorFlow decodes GIF and BMP only as RGB: they must come back grey
    for split, n in (("train", 3), ("test", 2)):
        for cls in ("x", "y"):
            for i in range(n):
                path = tmp_path / split / cls / f"{i}.{formats[i].lower()}"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(_image_bytes(np.full((8, 8), 40 * i + 1, np.uint8), formats[i]))
    source = data.load_source(str(tmp_path))
    assert source.class_names == ("x", "y") and source.channels == 1 and source.image_size == (8, 8)
    assert (source.size("train"), source.size("test")) == (6, 4)
    values = sorted(int(image[0, 0, 0]) for image, _ in source.examples("train"))
    assert values == [1, 1, 41, 41, 81, 81]  # every file decoded, grey values kept exactly


# -- TFDS ------------------------------------------------------------------------------------------------
def test_tfds_without_the_package_fails_at_once_saying_how_to_prepare(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError) as info:
        data.load_source("tfds:cifar10", data_dir="/data/tfds")
    message = str(info.value)
    assert "pip install tensorflow-datasets" in message
    assert "download_and_prepare" in message and "data_dir" in message


def test_tfds_dataset_not_prepared_offline_fails_at_once_without_downloading(monkeypatch, tmp_path):
    calls = []

    class Builder:
        def is_prepared(self):
            return False

        def download_and_prepare(self, *args, **kwargs):  # would hang offline: must never be called
            calls.append("download")

    fake = types.SimpleNamespace(builder=lambda name, data_dir=None: Builder())
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    with pytest.raises(FileNotFoundError, match=r"not prepared under data_dir=.*download_and_prepare"):
        data.load_source("tfds:cifar10", data_dir=str(tmp_path))
    assert calls == []


# -- pipelines -------------------------------------------------------------------------------------------
def test_validation_comes_from_the_training_split_disjoint_and_reproducible():
    source = _id_source()
    ds = data.make_datasets(source, _raw_prep(), batch_size=16, validation_split=0.2, seed=5)
    train, val, test = _all_ids(ds.train), _all_ids(ds.validation), _all_ids(ds.test)
    assert (len(train), len(val), len(test)) == (ds.train_size, ds.validation_size, ds.test_size) == (160, 40, 30)
    assert not set(train) & set(val)
    assert set(train) | set(val) == set(range(200))  # all of the training split, none of the test split
    assert set(test) == set(range(200, 230))
    again = data.make_datasets(source, _raw_prep(), batch_size=16, validation_split=0.2, seed=5)
    assert np.array_equal(_all_ids(again.validation), val)
    other = data.make_datasets(source, _raw_prep(), batch_size=16, validation_split=0.2, seed=6)
    assert set(_all_ids(other.validation)) != set(val)


def test_training_order_is_seeded_and_reshuffled_every_epoch():
    source = _id_source()
    ds = data.make_datasets(source, _raw_prep(), batch_size=32, validation_split=0.0, seed=1)
    epoch1, epoch2 = _all_ids(ds.train), _all_ids(ds.train)
    assert sorted(epoch1) == sorted(epoch2) == list(range(200)) and not np.array_equal(epoch1, epoch2)
    same = data.make_datasets(source, _raw_prep(), batch_size=32, validation_split=0.0, seed=1)
    assert np.array_equal(_all_ids(same.train), epoch1)
    assert np.array_equal(_all_ids(ds.test), _all_ids(ds.test))  # evaluation is never shuffled


def test_no_memory_cache_nor_shuffle_of_prepared_images_when_they_would_not_fit(monkeypatch):
    from keras_cnns.data import pipeline

    source = _id_source()
    cached = data.make_datasets(source, _raw_prep(), batch_size=32, validation_split=0.1, seed=3)
    assert cached.cache_note == ""
    # 230 images of 4x4x1 float32 = 14,720 bytes: a "machine" of 20,000 bytes has room for half of that only
    monkeypatch.setattr(pipeline, "physical_memory_bytes", lambda: 20_000)
    uncached = data.make_datasets(source, _raw_prep(), batch_size=32, validation_split=0.1, seed=3)
    assert "no in-memory cache" in uncached.cache_note and "0.0 GiB" in uncached.cache_note
    for split in ("validation", "test"):
        assert np.array_equal(_all_ids(getattr(cached, split)), _all_ids(getattr(uncached, split)))
    # the shuffle runs on the source's examples, before they are prepared: the same images, seeded, every epoch anew
    epoch1, epoch2 = _all_ids(uncached.train), _all_ids(uncached.train)
    assert sorted(epoch1) == sorted(epoch2) == sorted(_all_ids(cached.train)) and not np.array_equal(epoch1, epoch2)
    again = data.make_datasets(source, _raw_prep(), batch_size=32, validation_split=0.1, seed=3)
    assert np.array_equal(_all_ids(again.train), epoch1)


def _shuffle_inputs(dataset):
    """The op types upstream of a tf.data pipeline's shuffle (its serialised graph, walked back)."""
    graph = tf.compat.v1.GraphDef.FromString(tf.raw_ops.DatasetToGraphV2(input_dataset=dataset._variant_tensor).numpy())
    nodes = {n.name: n for n in graph.node}
    todo = [n.name for n in graph.node if n.op.startswith("ShuffleDataset")]
    assert len(todo) == 1
    seen = set()
    while todo:
        for name in nodes[todo.pop()].input:
            name = name.split(":")[0].lstrip("^")  # "node:output" or "^control input" -> node
            if name in nodes and name not in seen:
                seen.add(name)
                todo.append(name)
    return {nodes[n].op for n in seen}


def test_no_shuffle_buffer_of_prepared_images_that_would_not_fit_without_a_cache_or_with_a_file_cache(
        monkeypatch, tmp_path):
    from keras_cnns.data import pipeline

    source = _id_source()
    # fitting: the images are prepared (batches of 256, unbatched), then shuffled
    plain = data.make_datasets(source, _raw_prep(), batch_size=32, validation_split=0.1, seed=3, cache=False)
    assert "UnbatchDataset" in _shuffle_inputs(plain.train) and plain.cache_note == ""
    # 180 training images of 4x4x1 float32 = 11,520 bytes; half of a 20,000-byte "machine" holds 156 of them
    monkeypatch.setattr(pipeline, "physical_memory_bytes", lambda: 20_000)
    uncached = data.make_datasets(source, _raw_prep(), batch_size=32, validation_split=0.1, seed=3, cache=False)
    assert "UnbatchDataset" not in _shuffle_inputs(uncached.train)  # the source's examples are shuffled
    assert sorted(_all_ids(uncached.train)) == sorted(_all_ids(plain.train))
    filed = data.make_datasets(source, _raw_prep(), batch_size=32, validation_split=0.1, seed=3,
                               cache=str(tmp_path / "c"))
    assert filed.cache_note.startswith("shuffle buffer of 156 prepared images, not 180:")
    epoch1, epoch2 = _all_ids(filed.train), _all_ids(filed.train)
    assert sorted(epoch1) == sorted(epoch2) == sorted(_all_ids(plain.train)) and not np.array_equal(epoch1, epoch2)


def test_drop_remainder_gives_full_static_batches_and_the_shard_policy_is_explicit():
    ds = data.make_datasets(_id_source(), _raw_prep(), batch_size=32, validation_split=0.1, drop_remainder=True)
    assert ds.train.element_spec[0].shape == (32, 4, 4, 1)
    assert sum(1 for _ in ds.train) == ds.steps_per_epoch == int(ds.train.cardinality()) == 180 // 32
    assert sum(int(x.shape[0]) for x, _ in ds.validation) == 20  # evaluation keeps every example
    policy = ds.train.options().experimental_distribute.auto_shard_policy
    assert policy == tf.data.experimental.AutoShardPolicy.DATA


def _rgb_source(n=24, size=40):
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (n, size, size, 3)).astype(np.uint8)
    return data.from_arrays((images, np.arange(n) % 2), (images[:6], np.arange(6) % 2), ["even", "odd"], "rgb")


@pytest.mark.parametrize("augment", ["flip", "cifar", "alexnet", "scale_jitter", "scene_items"])
def test_augmentations_are_seeded_change_every_epoch_and_run_after_the_cache(augment):
    source = _rgb_source()
    prep = data.Preprocessing(size=(32, 32), channels=3, resize="resize", mean=(128.0,), std=(64.0,))

    def epochs(seed):
        ds = data.make_datasets(source, prep, batch_size=8, augment=augment, validation_split=0.0, seed=seed,
                                cache=True)
        return [np.concatenate([x.numpy() for x, _ in ds.train]) for _ in range(2)]

    first, second = epochs(0)
    assert first.shape == (24, 32, 32, 3) and np.isfinite(first).all()
    assert not np.allclose(first, second)  # cached data, fresh augmentation each epoch
    np.testing.assert_array_equal(epochs(0)[0], first)  # the same seed, the same images


def test_alexnet_augmentation_is_refused_on_grey_data():
    with pytest.raises(ValueError, match="PCA colour augmentation, which needs RGB data"):
        data.make_datasets(_id_source(), _raw_prep(), augment="alexnet")
    with pytest.raises(ValueError, match="Received: augment='mixup'"):
        data.make_datasets(_id_source(), _raw_prep(), augment="mixup")


@needs_fashion
def test_fashion_mnist_pipeline_pads_28_to_32_with_training_statistics(fashion):
    prep = data.default_preprocessing(fashion, (32, 32, 1))
    images = fashion.arrays("train")[0].astype(np.float64)
    assert prep.resize == "pad" and prep.size == (32, 32)
    np.testing.assert_allclose(prep.mean, [images.mean()], rtol=1e-6)
    np.testing.assert_allclose(prep.std, [images.std()], rtol=1e-6)
    ds = data.make_datasets(fashion, prep, batch_size=64, augment="cifar")
    x, y = next(iter(ds.train))
    assert x.shape == (64, 32, 32, 1) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert ds.class_names[0] == "T-shirt/top"
    assert (ds.train_size, ds.validation_size, ds.test_size) == (54000, 6000, 10000)
    rgb = data.default_preprocessing(fashion, (32, 32, 3))  # grey copied to three channels
    assert rgb.channels == 3 and len(set(rgb.mean)) == 1 and len(rgb.mean) == 3


def test_statistics_are_computed_once_and_stored_beside_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_CNNS_CACHE_DIR", str(tmp_path))
    stats = _rgb_source().statistics()
    assert len(stats["pca_eigenvalues"]) == 3
    assert list((tmp_path / "stats").glob("rgb-*.json"))

    def recompute(*args):
        raise AssertionError("statistics recomputed")

    monkeypatch.setattr(sources.Source, "_compute_statistics", recompute)
    assert _rgb_source().statistics() == stats  # a new Source object reads the stored JSON


def test_representative_images_are_training_images_preprocessed_as_in_training():
    source = _id_source()
    prep = data.Preprocessing(size=(6, 6), channels=1, resize="pad", mean=(0.0,), std=(1.0,))
    sample = data.representative_images(source, prep, n=20, seed=0)
    assert sample.shape == (20, 6, 6, 1) and sample.dtype == np.float32
    ds = data.make_datasets(source, prep, batch_size=50, validation_split=0.0)
    training = {x.tobytes() for batch, _ in ds.train for x in batch.numpy()}
    assert all(image.tobytes() in training for image in sample)
    np.testing.assert_array_equal(data.representative_images(source, prep, n=20, seed=0), sample)


def test_measure_pipeline_counts_images():
    ds = data.make_datasets(_id_source(), _raw_prep(), batch_size=10, validation_split=0.0)
    result = data.measure_pipeline(ds.train, batches=5, warmup=1)
    assert result["images"] == 50 and result["images_per_second"] > 0


@needs_fashion
def test_the_example_in_docs_data_md_runs(capsys):
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "data.md")
    text = open(path).read()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    exec(compile(example, path, "exec"), {})
    expected = example.split("# ('T-shirt/top'", 1)[1].splitlines()[0]
    assert capsys.readouterr().out.strip() == "('T-shirt/top'" + expected


# -- tf.data's model-based autotuning ---------------------------------------------------------------------
def test_every_pipeline_turns_tf_datas_autotuner_off_unless_asked(monkeypatch):
    """Its thread held up the end of an iterator, so of every epoch (pipeline.tuning_options); the training,
    validation, test, scene and retrieval pipelines end with it off, and TF_DATA_AUTOTUNE turns it back on."""
    from keras_cnns.data import pipeline, scenes

    ds = data.make_datasets(_id_source(), _raw_prep(), batch_size=16, validation_split=0.2, seed=0)
    few = scenes.generate("train", 2)
    pipelines = {"train": ds.train, "validation": ds.validation, "test": ds.test,
                 "segmentation scenes": scenes.scene_dataset(few, "segmentation", batch_size=2),
                 "detection scenes": scenes.scene_dataset(few, "detection", batch_size=2)}
    from keras_cnns.data.detection import detection_batches
    from keras_cnns.data.segmentation import segmentation_batches
    image = tf.zeros((8, 8, 1), tf.uint8)
    pipelines["segmentation folder or TFDS"] = segmentation_batches(
        tf.data.Dataset.from_tensors((image, tf.zeros((8, 8), tf.uint8))), _raw_prep(8), batch_size=1)
    pipelines["detection TFDS"] = detection_batches(
        tf.data.Dataset.from_tensors((image, tf.constant([[0.1, 0.1, 0.5, 0.5]]), tf.constant([1], tf.int64))),
        data.Preprocessing(size=(8, 8), channels=1, resize="resize", mean=(0.0,), std=(1.0,)), batch_size=1)
    assert {name: p.options().autotune.enabled for name, p in pipelines.items()} == dict.fromkeys(pipelines, False)
    assert all(len(next(iter(p))) == 2 for p in pipelines.values())  # and each still yields (images, targets)
    assert ds.train.options().deterministic is True  # the options merge with the pipeline's own
    monkeypatch.setattr(pipeline, "TF_DATA_AUTOTUNE", True)
    again = data.make_datasets(_id_source(), _raw_prep(), batch_size=16, validation_split=0.0)
    assert again.train.options().autotune.enabled is True
