"""Classify images with a mobile .tflite file using only LiteRT (ai-edge-litert), numpy and Pillow: no
TensorFlow, no Keras. What a phone-side app does, in Python.

    python -m keras_cnns.lite shirt.png boot.jpg --model build/exports/lenet5-fashion_mnist/tflite/mobile/model.tflite
    python -m keras_cnns.lite photos/ --model mobile/model.tflite --top 3 --json

    from keras_cnns import lite
    classifier = lite.LiteClassifier("mobile/model.tflite")
    classifier.classify_files(["shirt.png"], top=3)   # [[{"index", "class", "probability"}, ...]]

The model is the mobile variant that apps/export.py --format tflite writes in ``mobile/``: uint8 pixels
[1, H, W, C] at the model's input size in (the normalisation is inside), probabilities out. An image goes
through :func:`keras_cnns.images.read_image` (Pillow: EXIF orientation, alpha, palette, 16-bit, pixel
limit) and :func:`keras_cnns.images.to_model_pixels` (to the model's channels and input size, by the rule of
its training preprocessing: LeNet-5 centres a 28x28 image on a 32x32 canvas; other models stretch or crop).
Class names come from ``labels.txt`` beside the model; the resize rule from ``metadata.json`` beside it when
present (else the image is stretched to the input size, what a plain mobile app does), and with it the image
convention of the training data: a photo of a Fashion-MNIST model is first brought to Fashion-MNIST's light
item on black, filling the frame (:func:`keras_cnns.images.to_convention`; the graph's ops cannot crop to an
item, so the runner does it).

Importing this module imports neither TensorFlow nor Keras (keras_cnns/__init__.py is lazy).
"""

import argparse
import json
import os
import sys

import numpy as np

from keras_cnns import results as results_lib
from keras_cnns.images import (MAX_PIXELS, ImageError, image_convention, list_images, read_image, to_convention,
                               to_model_pixels)

LABELS_FILENAME = "labels.txt"
METADATA_FILENAME = "metadata.json"


class LiteClassifier:
    """A mobile .tflite model with its labels, ready to classify decoded images or image files.

    Attributes:
      size: (H, W) of the input; channels: 1 or 3; class_names: from labels.txt.
      resize, crop_from: how an image reaches the input size (see keras_cnns.images.to_model_pixels).
    """

    def __init__(self, model_path, labels=None, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        model_path = os.fspath(model_path)
        if not os.path.isfile(model_path):
            raise ValueError(f"{model_path}: no such .tflite file; export one with "
                             "`python apps/export.py MODEL --format tflite` and give its mobile/model.tflite.")
        try:
            self.interpreter = Interpreter(model_path=model_path, num_threads=num_threads)
        except ValueError as err:
            first_line = str(err).splitlines()[0]
            raise ValueError(f"{model_path}: not a TFLite model LiteRT can load ({first_line}).") from None
        self.interpreter.allocate_tensors()
        self.path = model_path
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        shape = tuple(int(d) for d in self._input["shape"])
        if self._input["dtype"] != np.uint8 or self._input["quantization"][0] != 0.0 or len(shape) != 4:
            raise ValueError(
                f"{model_path}: not a mobile model (its input is {np.dtype(self._input['dtype']).name} "
                f"{list(shape)}, expected uint8 pixels [1, H, W, C]); use the mobile/model.tflite that "
                "apps/export.py --format tflite writes beside model.tflite.")
        self.size, self.channels = shape[1:3], shape[3]
        directory = os.path.dirname(os.path.abspath(model_path))
        self.class_names = read_labels(labels or os.path.join(directory, LABELS_FILENAME))
        n_out = int(np.prod(self._output["shape"][1:]))
        if len(self.class_names) != n_out:
            raise ValueError(f"{model_path}: the model has {n_out} outputs but its labels file has "
                             f"{len(self.class_names)} lines; give the labels.txt exported with it.")
        metadata = _metadata_beside(directory)
        prep = dict(metadata.get("preprocessing") or {})
        self.convention = image_convention(metadata)
        self.resize = prep.get("resize", "resize")
        self.crop_from = prep.get("crop_from")

    def prepare(self, image):
        """A decoded uint8 image (H, W, 1|3|4), any size -> uint8 (H, W, C) at the model's input size, brought
        first to its training data's convention (a catalog photo inverted and cropped to the item)."""
        return to_model_pixels(to_convention(image, self.convention), self.size, self.channels, self.resize,
                               self.crop_from)

    def probabilities(self, pixels):
        """uint8 [H, W, C] at the input size -> probabilities [classes] (float32)."""
        self.interpreter.set_tensor(self._input["index"], np.asarray(pixels, np.uint8)[None])
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self._output["index"])
        if self._output["dtype"] != np.float32:  # a quantised output: back to probabilities
            scale, zero = self._output["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return np.asarray(y, np.float32).reshape(-1)

    def classify(self, images, top=5):
        """Decoded uint8 images (each (H, W, 1|3|4), any size) -> per image its top-k
        [{"index", "class", "probability"}], best first."""
        results = []
        for image in images:
            p = self.probabilities(self.prepare(image))
            best = np.argsort(-p, kind="stable")[:top]
            results.append([{"index": int(i), "class": self.class_names[i], "probability": float(p[i])}
                            for i in best])
        return results

    def classify_files(self, paths, top=5, max_pixels=MAX_PIXELS):
        """Image files -> per file its top-k, decoded by keras_cnns.images.read_image; raises ImageError."""
        return self.classify([read_image(path, max_pixels=max_pixels) for path in paths], top=top)


def read_labels(path):
    """labels.txt -> class names, one a line (blank trailing lines ignored)."""
    if not os.path.isfile(path):
        raise ValueError(f"{path}: no labels file; export the model with apps/export.py (it writes labels.txt "
                         "beside mobile/model.tflite) or pass --labels.")
    with open(path, encoding="utf-8") as f:
        names = f.read().splitlines()
    while names and not names[-1].strip():
        names.pop()
    return names


def _metadata_beside(directory):
    path = os.path.join(directory, METADATA_FILENAME)
    if not os.path.isfile(path):
        return {}
    try:
        with open(path) as f:
            return dict(json.load(f))
    except (OSError, ValueError):
        return {}


# ------------------------------------------------------------------------------------------------- CLI

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m keras_cnns.lite", description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  python -m keras_cnns.lite shirt.png "
               "--model build/exports/lenet5-fashion_mnist/tflite/mobile/model.tflite\n"
               "  python -m keras_cnns.lite photos/ --model mobile/model.tflite --top 3 --json")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or directories of images")
    p.add_argument("--model", required=True, help="a mobile .tflite file (mobile/model.tflite of an export)")
    p.add_argument("--labels", default=None, help="labels file (default: labels.txt beside the model)")
    p.add_argument("--top", type=int, default=5, help="how many classes to show per image (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON record per image instead of text")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help="refuse larger images")
    args = p.parse_args(argv)
    if args.top < 1:
        p.error(f"--top must be at least 1. Received: --top {args.top}")
    return args


def main(argv=None):
    args = parse_args(argv)

    def fail(message):
        print(f"keras_cnns.lite: {message}", file=sys.stderr)

    try:
        classifier = LiteClassifier(args.model, labels=args.labels)
    except ValueError as err:
        fail(str(err).splitlines()[0])
        return results_lib.EXIT_BAD_INPUT
    top = min(args.top, len(classifier.class_names))
    paths = list_images(args.images)
    records, failed = [], 0
    for path in paths:
        try:
            entries = classifier.classify_files([path], top=top, max_pixels=args.max_pixels)[0]
        except ImageError as err:
            fail(str(err))
            failed += 1
            continue
        if args.json:
            records.append({"path": path, "top": entries})
        else:
            print(results_lib.format_text(path, entries), flush=True)
    return results_lib.finish(records, args.json, failed, len(paths), fail)


if __name__ == "__main__":
    sys.exit(main())
