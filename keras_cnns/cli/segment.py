"""Segment images with a trained FCN: a mask and a colour overlay per image.

    python apps/segment.py scene.png                                 # the shipped FCN-8s (Fashion-MNIST scenes)
    python apps/segment.py photos/ --output masks/ --json            # every image of a folder, JSON records
    python apps/segment.py scene.png --model saved_models/fcn32s_vgg16_slim-fashion_mnist_scenes
    python apps/segment.py scene.png --model build/exports/fcn8s_vgg16_quarter-fashion_mnist_scenes/tflite/model.tflite
    python apps/segment.py scene.png --mirror                        # averaged with the mirror image's probabilities

For each image it writes <stem>.mask.png (8-bit, the image's width and height, pixel value = class index,
0 = background) and <stem>.overlay.png (the image with the classes' colours and a legend) into --output.
--model takes a registry NAME (a model trained into the saved-models home, e.g. fcn8s_vgg16_quarter), a model
DIR, or a FILE (.keras, a SavedModel directory, .tflite from apps/export.py); class names and preprocessing
come from its metadata.json. Images of any size and mode are converted the way the model was trained (its
channels, its normalisation) and keep their size. An input that can't be read prints one line on stderr; the
other images are still segmented and the exit status is 2.
"""

import argparse
import os
import sys

from keras_cnns import results
from keras_cnns.cli import load_task_model, make_output_folder, quiet_native_logs, restore_native_logs

EXIT_BAD_INPUT = 2
DEFAULT_MODEL = "fcn8s_vgg16_quarter"
DEFAULT_OUTPUT = "segment-out"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or directories of images")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"registry NAME, model DIR, or FILE (.keras, SavedModel dir, .tflite) (default: "
                        f"{DEFAULT_MODEL}, the shipped FCN-8s)")
    p.add_argument("--output", default=DEFAULT_OUTPUT, help=f"folder for the PNGs (default: {DEFAULT_OUTPUT}/)")
    p.add_argument("--json", action="store_true", help="one JSON record per image instead of text")
    p.add_argument("--mirror", action="store_true",
                   help="average each image's per-pixel probabilities with its mirror image's (two passes; "
                        "what it gains: benchmarks/segmentation_errors.py)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse images with more pixels than this (default: keras_cnns.inference.MAX_PIXELS)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    quiet_native_logs()
    from keras_cnns import inference
    from keras_cnns.tasks import segmentation

    def fail(message):
        print(f"segment.py: {message}", file=sys.stderr)

    predictor = load_task_model(args.model, "segmentation", fail, "an FCN", DEFAULT_MODEL)
    if predictor is None or not make_output_folder(args.output, fail):
        return EXIT_BAD_INPUT
    restore_native_logs()
    limit = args.max_pixels or inference.MAX_PIXELS
    paths = inference.list_images(args.images)
    names = predictor.class_names
    records = []
    failed = results.FailureLog(fail)
    for path, image in inference.iter_images(paths, limit, on_error=failed):
        mask, _ = segmentation.segment(predictor, image, mirror=args.mirror)
        stem = os.path.join(args.output, os.path.splitext(os.path.basename(path))[0])
        mask_path, overlay_path = f"{stem}.mask.png", f"{stem}.overlay.png"
        segmentation.write_mask(mask, mask_path)
        segmentation.overlay(image, mask, names, overlay_path, title=predictor.metadata.get("model"))
        pixels = segmentation.pixel_counts(mask, names)
        if args.json:
            records.append({"path": path, "mask": mask_path, "overlay": overlay_path, "pixels": pixels})
        else:
            found = ", ".join(f"{k} {v}" for k, v in sorted(pixels.items(), key=lambda kv: -kv[1]) if k != names[0])
            print(f"{path}: {mask_path}, {overlay_path}; {found or 'nothing but ' + names[0]}", flush=True)
    return results.finish(records, args.json, failed.count, len(paths), fail, "segmented")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
