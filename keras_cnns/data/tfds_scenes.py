"""The Fashion-MNIST scenes (:mod:`keras_cnns.data.scenes`) as a TensorFlow Datasets builder,
``fashion_mnist_scenes``, built offline from the Fashion-MNIST files the package already reads (nothing is
downloaded).

Features of one example:
  image              uint8 (128, 128, 1), PNG
  segmentation_mask  uint8 (128, 128, 1), PNG, pixel value = class index into SCENE_CLASSES (0 = background)
  objects            Sequence of
    bbox             tfds BBoxFeature: normalised [ymin, xmin, ymax, xmax] = [y_min, x_min, y_max, x_max] / 128
                     of the pixel box [x_min, y_min, x_max, y_max] (max exclusive, so the normalised box spans
                     the pixel edges exactly; multiply by 128 to get the pixel box back, exactly: see
                     :func:`pixel_boxes`)
    label            ClassLabel over SCENE_CLASSES (values 1..10, the same numbers as the mask)
    item             int64, the item's position in its Fashion-MNIST split
Splits train / validation / test, each in the generator's order (example i is scene i); configs "full" (the
sizes of ``scenes.SPLITS``) and "mini" (64 / 16 / 32 scenes, the first scenes of the same splits, for smoke tests).

Prepare:  python -m keras_cnns.data.tfds_scenes --data-dir ~/tensorflow_datasets [--config mini]
          [--fashion-mnist-dir DIR]
Load:     import keras_cnns.data.tfds_scenes  # registers the builder
          tfds.load("fashion_mnist_scenes", data_dir=..., download=False)
"""

import argparse
import dataclasses
from typing import Dict, Optional

import numpy as np
import tensorflow_datasets as tfds

from keras_cnns.data import scenes
from keras_cnns.data.sources import load_source

NAME = "fashion_mnist_scenes"
MINI_COUNTS = {"train": 64, "validation": 16, "test": 32}


@dataclasses.dataclass
class ScenesConfig(tfds.core.BuilderConfig):
    """counts: scenes per split (None: the fixed sizes of ``scenes.SPLITS``)."""

    counts: Optional[Dict[str, int]] = None


def normalised_boxes(boxes):
    """Pixel boxes (N, 4) [x_min, y_min, x_max, y_max] -> TFDS's normalised [ymin, xmin, ymax, xmax] (float32)."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return boxes[:, [1, 0, 3, 2]] / np.float32(scenes.CANVAS)


def pixel_boxes(bbox):
    """TFDS's normalised [ymin, xmin, ymax, xmax] (N, 4) -> pixel [x_min, y_min, x_max, y_max] (float32)."""
    bbox = np.asarray(bbox, dtype=np.float32).reshape(-1, 4)
    return bbox[:, [1, 0, 3, 2]] * np.float32(scenes.CANVAS)


# Run as a script (python -m), this file is __main__: its copy of the class is not registered, and main() uses the
# package module's, so the name is registered once, by keras_cnns.data.tfds_scenes.
class FashionMnistScenes(tfds.core.GeneratorBasedBuilder, skip_registration=__name__ == "__main__"):
    """Fashion-MNIST scenes for segmentation and detection (keras_cnns, docs/data.md "Scenes")."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "The specification of docs/data.md, Scenes."}
    BUILDER_CONFIGS = [ScenesConfig(name="full", description="The fixed split sizes of keras_cnns.data.scenes."),
                       ScenesConfig(name="mini", description="The first scenes of each split, for smoke tests.",
                                    counts=MINI_COUNTS)]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Nothing to download: the scenes are generated from Fashion-MNIST's IDX files, looked for where "
        "keras_cnns.data.load_source('fashion_mnist') looks (or in the manual_dir / --fashion-mnist-dir).")

    def _info(self):
        side = scenes.CANVAS
        return self.dataset_info_from_configs(
            description=__doc__.split("\n\n")[0],
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(side, side, 1), dtype=np.uint8, encoding_format="png"),
                "segmentation_mask": tfds.features.Image(shape=(side, side, 1), dtype=np.uint8,
                                                         encoding_format="png"),
                "objects": tfds.features.Sequence({
                    "bbox": tfds.features.BBoxFeature(),
                    "label": tfds.features.ClassLabel(names=list(scenes.SCENE_CLASSES)),
                    "item": np.int64,
                }),
            }),
            supervised_keys=("image", "segmentation_mask"),
            disable_shuffling=True,  # example i of a split is scene i of the generator
        )

    def _split_generators(self, dl_manager):
        manual = None
        try:
            manual = str(dl_manager.manual_dir) if dl_manager.manual_dir.exists() else None
        except Exception:  # no manual_dir configured
            manual = None
        source = load_source("fashion_mnist", data_dir=manual, download=False)
        counts = self.builder_config.counts or {}
        return {split: self._generate_examples(split, counts.get(split), source) for split in scenes.SPLITS}

    def _generate_examples(self, split, count, source):
        made = scenes.generate(split, count, source=source)
        for i in range(len(made)):
            scene = made[i]
            yield i, {"image": scene.image, "segmentation_mask": scene.mask[..., None],
                      "objects": {"bbox": normalised_boxes(scene.boxes), "label": scene.classes.astype(np.int64),
                                  "item": scene.items.astype(np.int64)}}


def prepare(data_dir, config="full", fashion_mnist_dir=None):
    """Builds the dataset under data_dir (offline); returns the builder."""
    builder = FashionMnistScenes(data_dir=data_dir, config=config)
    download_config = tfds.download.DownloadConfig(manual_dir=fashion_mnist_dir) if fashion_mnist_dir else None
    builder.download_and_prepare(download_config=download_config)
    return builder


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Build the fashion_mnist_scenes TFDS dataset offline from Fashion-MNIST's IDX files.",
        epilog="examples:\n  python -m keras_cnns.data.tfds_scenes --data-dir ~/tensorflow_datasets\n"
               "  python -m keras_cnns.data.tfds_scenes --data-dir /tmp/tfds --config mini",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True, help="the TFDS data_dir to write into")
    parser.add_argument("--config", default="full", choices=[c.name for c in FashionMnistScenes.BUILDER_CONFIGS])
    parser.add_argument("--fashion-mnist-dir", help="where the Fashion-MNIST IDX files are (default: the usual "
                                                    "places of load_source('fashion_mnist'))")
    args = parser.parse_args(argv)
    from keras_cnns.data import tfds_scenes  # the registered module, also when this file runs as __main__

    builder = tfds_scenes.prepare(args.data_dir, args.config, args.fashion_mnist_dir)
    print(f"{NAME}/{args.config} prepared in {builder.data_dir}: "
          + ", ".join(f"{k}={v.num_examples}" for k, v in builder.info.splits.items()))


if __name__ == "__main__":
    main()
