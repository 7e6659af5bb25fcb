"""Classify images with a trained model.

    python apps/classify.py shirt.png                                  # the shipped LeNet-5 (Fashion-MNIST)
    python apps/classify.py photos/ --model resnet20 --top 3           # saved_models/resnet20-*/
    python apps/classify.py a.jpg --model build/exports/lenet5-fashion_mnist/tflite/model.tflite
    python apps/classify.py cat.jpg --model vgg16 --weights imagenet --json

--model takes a registry NAME (a model trained into saved_models/<name>-*/; "inception" = googlenet), a
model DIR, or a FILE: a .keras file, a SavedModel directory or a .tflite file (an export from
apps/export.py). The preprocessing and class names come from the model's metadata.json. A .keras or .tflite
file without one (trained elsewhere) is classified with --labels FILE (one class name per line; else the
classes are numbered) and the preprocessing its input shape implies (resize to its input, its channels,
pixels scaled to [0, 1]), after a one-line warning:

    python apps/classify.py photo.jpg --model their_model.tflite --labels labels.txt

Every input that can't be classified (a missing file, not an image, a damaged or empty file, an image over
the pixel limit) prints one line on stderr saying what is wrong; the other images are still classified and
the exit status is 2. A model that can't be loaded prints one line and exits with 2 too.
A thin door over keras_cnns.inference.
"""

import sys

from keras_cnns import cli, results
from keras_cnns.cli import USER_ERRORS, first_line, quiet_native_logs, restore_native_logs

EXIT_BAD_INPUT = 2


def parse_args(argv):
    p = cli.parser(__doc__)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or directories of images")
    p.add_argument("--model", default=None,
                   help="registry NAME, model DIR, or FILE (.keras, SavedModel dir, .tflite); "
                        "default: saved_models/lenet5-fashion_mnist")
    p.add_argument("--weights", default=None,
                   help='with --model NAME: "imagenet" or a keras.applications weights file')
    p.add_argument("--labels", default=None, metavar="FILE",
                   help="class names, one per line, in the order of the model's outputs: for a .keras or "
                        ".tflite file without metadata.json (else its classes are numbered), or to rename")
    p.add_argument("--top", type=int, default=5, help="how many classes to show per image")
    p.add_argument("--json", action="store_true", help="one JSON record per image instead of text")
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none unless stderr is a terminal)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse images with more pixels than this (decompression bombs); "
                        "default: keras_cnns.inference.MAX_PIXELS")
    args = p.parse_args(argv)
    if args.top < 1:
        p.error(f"--top must be at least 1. Received: --top {args.top}")
    if args.batch_size < 1:
        p.error(f"--batch-size must be at least 1. Received: --batch-size {args.batch_size}")
    if args.weights is not None and args.model is None:
        from keras_cnns.registry import models_with_weights  # loads the models: only on this error

        p.error(f"--weights needs --model NAME, one of {', '.join(models_with_weights('imagenet'))}")
    return args



def format_text(path, entries, output=None):
    """classify.py's text for one image (entries carry "distance" for RBF outputs)."""
    return results.format_text(path, entries)


def main(argv=None):
    args = parse_args(argv)
    quiet_native_logs()
    from keras_cnns import inference
    from keras_cnns.progress import Progress, set_enabled

    set_enabled(not args.quiet)

    def fail(message):
        print(f"classify.py: {message}", file=sys.stderr)

    try:
        predictor = inference.load(args.model, weights=args.weights, labels=args.labels,
                                   warn=lambda message: print(f"classify.py: warning: {message}", file=sys.stderr))
    except USER_ERRORS as err:  # ModelSourceError and friends: one line, no traceback
        fail(first_line(err))
        return EXIT_BAD_INPUT
    restore_native_logs()
    limit = args.max_pixels or inference.MAX_PIXELS
    top = min(args.top, len(predictor.class_names))
    paths = inference.list_images(args.images)
    failed = 0
    records = []
    # a bar only with --json (text results stream to stdout as they come) and not --quiet, on a terminal
    bar = Progress(len(paths) if args.json else None, "Classifying", min_total=2 * args.batch_size)
    for start in range(0, len(paths), args.batch_size):
        bar.add(len(paths[start:start + args.batch_size]))
        good, images = [], []
        for path in paths[start:start + args.batch_size]:
            try:
                images.append(inference.read_image(path, max_pixels=limit))
                good.append(path)
            except inference.ImageError as err:
                fail(str(err))
                failed += 1
        if not images:
            continue
        for path, entries in zip(good, predictor.classify(images, top=top)):
            if args.json:
                records.append({"path": path, "top": entries})
            else:
                print(format_text(path, entries, predictor.output), flush=True)
    return results.finish(records, args.json, failed, len(paths), fail, "classified")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
