"""Steps per epoch are the batches the training pipeline really yields: an image folder with a corrupt file,
a validation split and a last partial batch trains with no "Your input ran out of data" warning."""

import os
import warnings

import numpy as np
import tensorflow as tf

from keras_cnns import data, training


def write_folder(root, per_class=12, size=12):
    """Three classes of tiny grey PNGs (each class its own brightness) and one corrupt file."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for c, cls in enumerate(("dark", "mid", "light")):
        os.makedirs(os.path.join(root, cls), exist_ok=True)
        for i in range(per_class):
            pixels = np.full((size, size), 30 + 90 * c, np.uint8) + rng.integers(0, 20, (size, size), np.uint8)
            Image.fromarray(pixels).save(os.path.join(root, cls, f"{i}.png"))
    with open(os.path.join(root, "dark", "corrupt.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n not an image after all")
    return str(root)


def test_folder_with_a_corrupt_file_trains_without_running_out_of_data(tmp_path):
    source = data.load_source(write_folder(tmp_path / "images"))
    assert len(source.skipped) == 1 and source.size("train") + source.size("test") == 36
    lines = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = training.fit("lenet5", source, epochs=2, batch_size=8, recipe="fast", output_dir=str(tmp_path / "out"),
                              verbose=0, tensorboard=False, log=lines.append)
    ran_out = [str(w.message) for w in caught if "ran out of data" in str(w.message)]
    assert ran_out == []
    splits = data.make_datasets(source, input_shape=(32, 32, 1), batch_size=8, validation_split=0.1)
    yielded = sum(1 for _ in splits.train)
    assert splits.steps_per_epoch == yielded == -(-splits.train_size // 8)
    assert any(f"; {yielded} steps per epoch" in line for line in lines), lines
    assert [r["epoch"] for r in result.history] == [1, 2]


def test_drop_remainder_and_a_filtered_source_count_what_they_yield():
    images = np.zeros((50, 8, 8, 1), np.uint8)
    source = data.from_arrays((images, np.arange(50) % 2), (images[:10], np.arange(10) % 2))
    splits = data.make_datasets(source, batch_size=16, validation_split=0.2, drop_remainder=True)
    assert splits.steps_per_epoch == sum(1 for _ in splits.train) == 40 // 16
    # a source whose examples lose the count (filtered, as a TFDS subset is) still states it
    filtered = data.pipeline.counted_examples(_Filtered(source), "train", np.arange(7))
    assert int(filtered.cardinality()) == 7 == sum(1 for _ in filtered)
    assert int(filtered.batch(3).cardinality()) == 3


class _Filtered(data.Source):
    def __init__(self, inner):
        self.inner, self.name, self.class_names = inner, "filtered", inner.class_names
        self.channels, self.image_size, self.origin = inner.channels, inner.image_size, "test"

    def size(self, split):
        return self.inner.size(split)

    def examples(self, split, indices=None):
        ds = self.inner.examples(split, indices).filter(lambda image, label: tf.constant(True))
        assert int(ds.cardinality()) < 0
        return ds

    def fingerprint(self):
        return "filtered"
