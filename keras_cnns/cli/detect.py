"""Detect objects with a trained Faster R-CNN: labelled boxes drawn on each image, and their coordinates.

    python apps/detect.py scene.png                                  # the shipped detector (Fashion-MNIST scenes)
    python apps/detect.py photos/ --output boxes/ --json             # every image of a folder, JSON records
    python apps/detect.py scene.png --threshold 0.3 --model saved_models/frcnn_resnet_small-fashion_mnist_scenes
    python apps/detect.py scene.png --model build/exports/frcnn_resnet_small-fashion_mnist_scenes/savedmodel

For each image it writes <stem>.boxes.png (the image with a coloured box, class name and score per detection)
into --output. --json prints one record per image: {"path", "annotated", "detections": [{"box": [x_min, y_min,
x_max, y_max], "class", "score"}, ...]}, boxes in the image's own pixel coordinates (floats, x_max and y_max one
past the last pixel), best score first. --model takes a registry NAME (a detector trained into the saved-models
home, e.g. frcnn_resnet_small), a model DIR, or a FILE (.keras, a SavedModel directory from apps/export.py);
class names and preprocessing come from its metadata.json. Images of any size and mode are converted the way
the model was trained (its channels, its size, its normalisation). An input that can't be read prints one line
on stderr; the other images are still processed and the exit status is 2.
"""

import os
import sys

from keras_cnns import cli, results
from keras_cnns.cli import load_task_model, make_output_folder, quiet_native_logs, restore_native_logs

EXIT_BAD_INPUT = 2
DEFAULT_MODEL = "frcnn_resnet_small"
DEFAULT_OUTPUT = "detect-out"
DEFAULT_THRESHOLD = 0.5


def parse_args(argv):
    p = cli.parser(__doc__)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or directories of images")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"registry NAME, model DIR, or FILE (.keras, SavedModel dir) (default: {DEFAULT_MODEL}, "
                        "the shipped detector)")
    p.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"keep detections scoring at least this, 0..1 (default: {DEFAULT_THRESHOLD})")
    p.add_argument("--output", default=DEFAULT_OUTPUT, help=f"folder for the PNGs (default: {DEFAULT_OUTPUT}/)")
    p.add_argument("--json", action="store_true", help="one JSON record per image instead of text")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse images with more pixels than this (default: keras_cnns.inference.MAX_PIXELS)")
    args = p.parse_args(argv)
    if not 0.0 <= args.threshold <= 1.0:
        p.error(f"--threshold is a score between 0 and 1. Received: --threshold {args.threshold}")
    return args


def main(argv=None):
    args = parse_args(argv)
    quiet_native_logs()
    from keras_cnns import inference
    from keras_cnns.tasks import detection

    def fail(message):
        print(f"detect.py: {message}", file=sys.stderr)

    predictor = load_task_model(args.model, "detection", fail, "a Faster R-CNN model directory or its SavedModel",
                                DEFAULT_MODEL)
    if predictor is None or not make_output_folder(args.output, fail):
        return EXIT_BAD_INPUT
    restore_native_logs()
    limit = args.max_pixels or inference.MAX_PIXELS
    paths = inference.list_images(args.images)
    records = []
    failed = results.FailureLog(fail)
    for path, image in inference.iter_images(paths, limit, on_error=failed):
        found = detection.detect(predictor, image, threshold=args.threshold)
        annotated = os.path.join(args.output, os.path.splitext(os.path.basename(path))[0] + ".boxes.png")
        detection.draw(image, found, predictor.class_names, annotated)
        shown = [{"box": d["box"], "class": d["class"], "score": d["score"]} for d in found]
        if args.json:
            records.append({"path": path, "annotated": annotated, "detections": shown})
        else:
            listed = "; ".join(f"{d['class']} {d['score']:.2f} at [{', '.join(f'{v:.0f}' for v in d['box'])}]"
                               for d in shown)
            print(f"{path}: {annotated}; {listed or 'nothing above ' + str(args.threshold)}", flush=True)
    return results.finish(records, args.json, failed.count, len(paths), fail, "processed")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
