"""Where a trained FCN's mean IoU is lost on the scene test split: item extent or item class (a diagnostic).

    python benchmarks/segmentation_errors.py saved_models/fcn8s_vgg16_quarter-fashion_mnist_scenes
    python benchmarks/segmentation_errors.py build/benchmarks/segmentation-flip-vgg16_slim/fcn8s_vgg16_slim \\
        --output benchmarks/results/segmentation-flip-vgg16_slim

Scores three masks per test scene with keras_cnns.tasks.segmentation.error_split: the model's own; "true extent"
(the true background/foreground, each item pixel the model's most likely item class: the IoU a perfect outline
would give, so what is still missing is confusion between classes); "true classes" (the model's own outline, each
item pixel it finds given its true class: what is still missing is extent, pixels missed or claimed). Then
each item as a whole: the class whose probabilities summed over the item's visible pixels are largest
(keras_cnns.data.scenes.item_masks), right or wrong, per class: how well the model recognises items, next to a
classifier's accuracy. A fourth mask is the model's own with its probabilities averaged with the mirror
image's (apps/segment.py --mirror: what the test-time average gains). Writes
<output>/segmentation_errors.{csv,md} and segmentation_items.csv.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [_ROOT] + [p for p in sys.path if os.path.abspath(p or ".") != os.path.join(_ROOT, "benchmarks")]
sys.path.append(os.path.join(_ROOT, "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402

import numpy as np  # noqa: E402

MASKS = {"predicted": "the model's mask", "true_extent": "true extent, the model's classes",
         "true_classes": "the model's extent, true classes"}
MIRRORED = "the model's mask, averaged with the mirror image's (segment.py --mirror)"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a trained FCN's folder (with model.keras) or .keras file")
    p.add_argument("--scenes", type=int, default=None, help="the first N test scenes only (quick checks)")
    p.add_argument("--output", default=os.path.join(_ROOT, "benchmarks", "results"))
    return p.parse_args(argv)


def item_votes(scene_list, probabilities, item_images):
    """K x K counts of items (row: true class, column: the item class whose probabilities, summed over the item's
    visible pixels, are largest) of scenes with per-pixel probabilities (B, H, W, K); items wholly covered by
    later ones are left out."""
    from keras_cnns.data import scenes

    k = probabilities.shape[-1]
    votes = np.zeros((k, k), np.int64)
    for scene, p in zip(scene_list, probabilities):
        for visible, c in zip(scenes.item_masks(scene, item_images), scene.classes):
            if visible.any():
                votes[c, 1 + np.argmax(p[visible][:, 1:].sum(0))] += 1
    return votes


def main(argv=None):
    args = parse_args(argv)
    import pandas as pd

    from keras_cnns import metadata as md
    from keras_cnns.data import load_source, scenes
    from keras_cnns.data.segmentation import load_segmentation, segmentation_dataset
    from keras_cnns.tasks import segmentation as seg
    from keras_cnns.models.common import load_keras_file
    from report import markdown_table

    model = load_keras_file(os.path.join(args.model, md.MODEL_FILENAME) if os.path.isdir(args.model) else args.model)
    predict = seg.model_predict(model)
    source = load_segmentation("fashion_mnist_scenes", counts={"test": args.scenes} if args.scenes else None)
    names = source.class_names
    k = len(names)
    matrices = {m: np.zeros((k, k), np.int64) for m in list(MASKS) + ["mirrored"]}
    test_scenes, first = source.scene_set("test"), 0
    item_images = load_source("fashion_mnist").arrays(scenes.SPLITS["test"].item_split)[0][..., 0]
    items = np.zeros((k, k), np.int64)   # true class x the class of the summed probabilities, per item
    for images, labels in segmentation_dataset(source, "test", batch_size=32):
        labels = np.asarray(labels)
        probabilities = predict(images)
        for m, mask in seg.error_split(labels, probabilities).items():
            matrices[m] += seg.confusion_matrix(labels, mask, k)
        mirrored = seg.mirror_average(predict, images, plain=probabilities)
        matrices["mirrored"] += seg.confusion_matrix(labels, np.argmax(mirrored, -1), k)
        items += item_votes([test_scenes[first + b] for b in range(len(labels))], probabilities, item_images)
        first += len(labels)
    scores = {m: seg.summarize(matrices[m], names) for m in matrices}
    labels_of = dict(MASKS, mirrored=MIRRORED)
    table = pd.DataFrame([{"mask": labels_of[m], "mean_iou": round(s["mean_iou"], 4),
                           "pixel_accuracy": round(s["pixel_accuracy"], 4),
                           **{n: round(v, 4) for n, v in s["per_class_iou"].items() if v is not None}}
                          for m, s in scores.items()])
    per_class = np.diag(items)[1:] / np.maximum(items[1:].sum(1), 1)
    item_table = pd.DataFrame([{"items": int(items.sum()), "accuracy": round(np.trace(items) / items.sum(), 4),
                                **{n: round(float(a), 4) for n, a in zip(names[1:], per_class)}}])
    text = (f"# Where the mean IoU is lost (benchmarks/segmentation_errors.py)\n\n`{args.model}` on "
            f"{source.size('test')} test scenes; IoU per class in the columns after pixel accuracy.\n\n"
            + markdown_table(table) + "\n\nItems classified whole (the class of the largest probability summed over "
            "an item's visible pixels; accuracy per true class after the overall one):\n\n"
            + markdown_table(item_table) + "\n")
    os.makedirs(args.output, exist_ok=True)
    table.to_csv(os.path.join(args.output, "segmentation_errors.csv"), index=False)
    item_table.to_csv(os.path.join(args.output, "segmentation_items.csv"), index=False)
    with open(os.path.join(args.output, "segmentation_errors.md"), "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
