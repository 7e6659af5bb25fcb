"""Detection data from TFDS, offline (keras_cnns.data.detection): a tiny VOC-like builder prepared into a temporary
data dir gives the scenes' detection targets: pixel boxes [x_min, y_min, x_max, y_max] of the resized image, the
background as class 0 (dataset classes + 1), padded rows; VOC's difficult objects dropped; a dataset without boxes
refused; an unprepared one is one line saying how to prepare it; Faster R-CNN trains on it through apps/train.py.

tensorflow_datasets.testing.mock_data is no use here (TFDS 4.9.10): with voc/2007 it reports the builder as not
prepared, with no splits, and fabricates objects whose bbox, label and is_difficult sequences differ in length and
whose boxes have min > max."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

from keras_cnns.data import Preprocessing, detection  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The hand-worked example, the first test image: 40 rows x 80 columns, a dog at normalised [ymin, xmin, ymax, xmax]
# = [0.25, 0.125, 0.75, 0.5], i.e. pixels x 10..40, y 10..30 of the original. Stretched to 64x64 (x by 64/80,
# y by 64/40) it is the pixel box [x_min, y_min, x_max, y_max] = [8, 16, 32, 48]. A second, difficult object.
DOG = [0.25, 0.125, 0.75, 0.5]
DOG_AT_64 = [8.0, 16.0, 32.0, 48.0]
SIZES = ((40, 80), (48, 48), (64, 32))


class TinyBoxes(tfds.core.GeneratorBasedBuilder):
    """VOC's feature layout on tiny images of three sizes: bright rectangles (cats and dogs) on a dark background;
    8 training and 4 test images, no validation split; every third image has a difficult object too, and the
    fourth training image only a difficult one."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, disable_shuffling=True, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3)),
            "image/filename": tfds.features.Text(),
            "objects": tfds.features.Sequence({
                "label": tfds.features.ClassLabel(names=["cat", "dog"]),
                "bbox": tfds.features.BBoxFeature(),
                "pose": tfds.features.ClassLabel(names=["left", "right"]),
                "is_difficult": np.bool_,
            }),
        }))  # example i of a split is the generator's i-th

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 8), "test": self._generate_examples(1, 4)}

    def _generate_examples(self, seed, n):
        rng = np.random.default_rng(seed)
        for i in range(n):
            h, w = SIZES[i % 3]
            image = rng.integers(0, 40, (h, w, 3)).astype(np.uint8)
            if seed == 1 and i == 0:
                boxes, labels = [DOG], [1]
            elif seed == 0 and i == 3:
                boxes, labels = [], []
            else:
                top, left = rng.uniform(0.0, 0.4, 2)
                boxes, labels = [[top, left, top + 0.5, left + 0.5]], [i % 2]
            difficult = [False] * len(boxes)
            if i % 3 == 0:
                boxes, labels, difficult = boxes + [[0.0, 0.0, 0.2, 0.2]], labels + [0], difficult + [True]
            for (y0, x0, y1, x1) in boxes:
                image[int(round(y0 * h)):int(round(y1 * h)), int(round(x0 * w)):int(round(x1 * w))] = 220
            yield i, {"image": image, "image/filename": f"{seed}-{i}.png", "objects": {
                "label": labels, "bbox": [tfds.features.BBox(*b) for b in boxes], "pose": [0] * len(boxes),
                "is_difficult": difficult}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tfds-detection")
    TinyBoxes(data_dir=str(directory)).download_and_prepare()
    return directory


def test_the_features_of_voc_and_coco_are_found_from_their_specs():
    """The real builders' feature specs (no data needed): voc's objects carry is_difficult, coco's is_crowd; the
    builders' configs say which test splits carry no boxes."""
    voc = tfds.builder("voc/2007").info.features
    assert detection.find_features(voc, "voc/2007") == detection.DetectionFeatures(
        image="image", objects="objects", bbox="bbox", label="label", flags=("is_difficult",))
    coco = tfds.builder("coco/2017").info.features
    assert detection.find_features(coco, "coco/2017").flags == ("is_crowd",)
    assert detection._unannotated_splits(tfds.builder("voc/2007")) == set()
    assert detection._unannotated_splits(tfds.builder("voc/2012")) == {"test"}
    assert detection._unannotated_splits(tfds.builder("coco/2017")) == {"test"}


def test_a_dataset_without_boxes_is_refused():
    features = tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(8, 8, 1)),
                                           "label": tfds.features.ClassLabel(names=["a", "b"])})
    with pytest.raises(ValueError, match="TFDS dataset 'mnist_like' has no boxes.*Received features: "
                                         r"\['image', 'label'\]"):
        detection.find_features(features, "mnist_like")


def test_an_unprepared_dataset_fails_at_once_naming_it_and_the_command_to_prepare_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        detection.load_detection("tfds:voc/2007", data_dir=str(tmp_path))
    message = str(err.value)
    assert "TFDS dataset 'voc/2007' is not prepared" in message
    assert "tfds.builder('voc/2007', data_dir=DIR).download_and_prepare()" in message and "--data-dir" in message


def test_the_train_app_says_so_in_one_line_and_exits_2(tmp_path, capsys):
    from keras_cnns.cli import train

    with pytest.raises(SystemExit) as exit_info:
        train.main(["--model", "frcnn_resnet_small", "--dataset", "tfds:voc/2007", "--data-dir", str(tmp_path),
                    "--output", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train.py: error: TFDS dataset 'voc/2007' is not prepared")


def test_the_source_shifts_classes_and_holds_out_validation(data_dir):
    source = detection.load_detection("tfds:tiny_boxes", data_dir=str(data_dir), validation_split=0.25, seed=0)
    assert source.class_names == ("background", "cat", "dog") and source.shift == 1
    assert source.splits == ("train", "validation", "test") and source.image_size is None
    assert (source.size("train"), source.size("validation"), source.size("test")) == (6, 2, 4)
    train, val = source.origin["train"][1], source.origin["validation"][1]
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(8))  # disjoint, all of train
    # the default training size of images of several sizes, or the size asked for
    assert detection.default_preprocessing(source).size == detection.DEFAULT_SIZE
    assert detection.default_preprocessing(source, (64, 64)).size == (64, 64)


def test_a_normalised_box_becomes_the_exact_pixel_box_of_the_resized_image(data_dir):
    source = detection.load_detection("tfds:tiny_boxes", data_dir=str(data_dir))
    prep = Preprocessing(size=(64, 64), channels=3, resize="resize", mean=0.0, std=255.0)
    splits = detection.detection_datasets(source, prep, batch_size=4, max_objects=5)
    images, targets = next(iter(splits.test))
    assert images.shape == (4, 64, 64, 3)
    boxes, classes, n = (targets[k].numpy() for k in ("boxes", "classes", "num_objects"))
    assert boxes.shape == (4, 5, 4) and classes.shape == (4, 5) and boxes.dtype == np.float32
    assert classes.dtype == np.int32 and n.dtype == np.int32
    np.testing.assert_array_equal(boxes[0, 0], DOG_AT_64)   # exact: 0.125 * 64 = 8, 0.25 * 64 = 16, ...
    assert classes[0, 0] == 2                                 # dog, ClassLabel 1, + 1 for the background
    assert n[0] == 1                                          # its difficult companion dropped
    assert not boxes[0, 1:].any() and not classes[0, 1:].any()  # padding rows: class 0, box [0, 0, 0, 0]
    assert n.tolist() == [1, 1, 1, 1]
    # the box lies on the bright rectangle drawn at it: inside bright, just outside dark
    x0, y0, x1, y1 = (int(v) for v in DOG_AT_64)
    assert images[0, y0 + 1:y1 - 1, x0 + 1:x1 - 1].numpy().min() > 0.8
    assert images[0, y1 + 2:y1 + 4, x0:x1].numpy().max() < 0.2
    # the training image with only a difficult object has no object left, and no NaN
    whole_train = detection.load_detection("tfds:tiny_boxes", data_dir=str(data_dir), validation_split=0)
    assert whole_train.splits == ("train", "test") and whole_train.size("train") == 8
    fourth = whole_train.examples("train").skip(3).take(1)
    _, train_targets = next(iter(detection.detection_batches(fourth, prep, 1)))
    assert train_targets["num_objects"].numpy().tolist() == [0]
    assert train_targets["boxes"].shape == (1, detection.MAX_OBJECTS, 4)


def test_the_flip_mirrors_images_and_boxes_of_the_training_split_only(data_dir):
    source = detection.load_detection("tfds:tiny_boxes", data_dir=str(data_dir), validation_split=0)
    prep = Preprocessing(size=(64, 64), channels=3, resize="resize", mean=0.0, std=255.0)
    plain = detection.detection_datasets(source, prep, batch_size=8, max_objects=5)
    flipped = detection.detection_datasets(source, prep, batch_size=8, max_objects=5, augment="flip", seed=3)
    assert plain.train.cardinality() == flipped.train.cardinality() and flipped.augment == "flip"
    # the batch is shuffled: each image is matched to its original (straight or mirrored) by content
    (images, targets), = flipped.train.take(1)
    images, boxes, n = images.numpy(), targets["boxes"].numpy(), targets["num_objects"].numpy()
    examples = list(source.examples("train").take(8))
    originals = [prep.resize_images(prep.convert_channels(e[0])).numpy() / 255.0 for e in examples]
    seen = {"straight": 0, "mirrored": 0}
    for image, box, count in zip(images, boxes, n):
        match = [(i, "straight") for i, o in enumerate(originals) if np.allclose(o, image, atol=1e-5)]
        match += [(i, "mirrored") for i, o in enumerate(originals) if np.allclose(o[:, ::-1], image, atol=1e-5)]
        assert match, "every training image is an original or its mirror"
        i, how = match[0]
        seen[how] += 1
        expected = detection.pixel_boxes(examples[i][1], prep.size).numpy()
        if how == "mirrored":
            expected = np.stack([64 - expected[:, 2], expected[:, 1], 64 - expected[:, 0], expected[:, 3]], axis=-1)
        np.testing.assert_allclose(box[:count], expected[:count], atol=1e-4)
        assert not box[count:].any()   # padding rows stay [0, 0, 0, 0]
    assert seen["straight"] and seen["mirrored"]
    (test_images, _), = flipped.test.take(1)
    (plain_images, _), = plain.test.take(1)
    np.testing.assert_array_equal(test_images.numpy(), plain_images.numpy())   # the test split is never flipped


def test_the_tfds_scenes_give_the_targets_of_scene_dataset(tmp_path, fashion):
    """tfds:fashion_mnist_scenes read as detection data: its ClassLabel already names the background first (no
    shift), and the batches equal scenes.scene_dataset(..., "detection")'s targets exactly."""
    from keras_cnns.data import scenes, tfds_scenes

    tfds_scenes.prepare(str(tmp_path), "mini")
    source = detection.load_detection("tfds:fashion_mnist_scenes/mini", data_dir=str(tmp_path))
    assert source.class_names == scenes.SCENE_CLASSES and source.shift == 0
    assert source.splits == ("train", "validation", "test") and source.size("test") == 32
    assert detection.default_preprocessing(source).size == (scenes.CANVAS, scenes.CANVAS)
    ours = detection.detection_datasets(source, batch_size=8, max_objects=scenes.MAX_ITEMS).test
    theirs = scenes.scene_dataset(scenes.generate("test", 32, source=fashion), "detection", batch_size=8)
    pairs = list(zip(ours, theirs))
    assert len(pairs) == 4
    for (_, mine), (_, expected) in pairs:
        for key in ("boxes", "classes", "num_objects"):
            assert mine[key].dtype == expected[key].dtype
            np.testing.assert_array_equal(mine[key].numpy(), expected[key].numpy())


def test_pixel_boxes_scale_x_by_the_width_and_y_by_the_height():
    box = detection.pixel_boxes([[0.25, 0.125, 0.75, 0.5]], (32, 48)).numpy()
    np.testing.assert_array_equal(box, [[6.0, 8.0, 24.0, 24.0]])


@pytest.mark.slow
def test_faster_rcnn_trains_one_epoch_on_it_through_the_train_app(data_dir, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "apps", "train.py"), "--model", "frcnn_resnet_small", "--dataset",
         "tfds:tiny_boxes", "--data-dir", str(data_dir), "--input-size", "64", "--recipe", "fast", "--epochs", "1",
         "--batch-size", "2", "--limit", "4", "--verbose", "0", "--output", str(out)],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Data: tfds:tiny_boxes: 4 training, 1 validation, 4 test images; 2 steps per epoch" in done.stdout
    assert "test_map50=" in done.stdout
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["task"] == "detection" and meta["dataset"] == "tfds:tiny_boxes"
    assert meta["class_names"] == ["background", "cat", "dog"]   # what apps/detect.py labels boxes with
    assert meta["preprocessing"]["size"] == [64, 64] and meta["input_shape"] == [None, None, 3]
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 2 and "val_loss" in history[0]
    loss = float(history[1].split(",")[history[0].split(",").index("loss")])
    assert np.isfinite(loss) and loss > 0
