"""Evaluate a saved model directory.

    python apps/evaluate.py saved_models/lenet5-fashion_mnist
    python apps/evaluate.py saved_models/vgg_cifar-fashion_mnist --ten-crop --confusion-png cm.png

Prints test accuracy, top-5 and a per-class table (images, accuracy, the class each is most confused
with), and writes a confusion-matrix PNG (default <model dir>/confusion_matrix.png). --ten-crop averages the
scores of 10 crops (corners, centre and their mirror images). Bad arguments print one line and exit with status 2.
TensorFlow's oneDNN CPU kernels are on unless --no-onednn or TF_ENABLE_ONEDNN_OPTS=0 says otherwise.
"""

import json
import os
import sys

from keras_cnns import cli
from keras_cnns.cli import USER_ERRORS, first_line


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("model_dir", nargs="?", default=None,
                   help="a directory written by apps/train.py (model.keras + metadata.json); default: "
                        "lenet5-fashion_mnist in the saved-models home (keras_cnns.paths)")
    p.add_argument("--dataset", default=None, help="default: the dataset the model was trained on")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--ten-crop", action="store_true", help="10-crop evaluation")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--limit", type=int, default=None, help="evaluate on at most N test images")
    p.add_argument("--confusion-png", default=None, help="default: <model_dir>/confusion_matrix.png")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars (there are none unless stderr is a terminal)")
    cli.add_onednn_argument(p)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.model_dir is None:
        from keras_cnns.paths import find_model_dir
        args.model_dir = find_model_dir("lenet5-fashion_mnist")
    if not os.path.isdir(args.model_dir):
        print(f"evaluate.py: error: no model directory at {args.model_dir!r} (train one with apps/train.py)",
              file=sys.stderr)
        return 2
    if args.batch_size < 1:
        print(f"evaluate.py: error: --batch-size must be positive. Received: {args.batch_size}", file=sys.stderr)
        return 2
    kernels = cli.choose_onednn(args.onednn)  # before TensorFlow is imported
    if kernels and not args.json:
        print(cli.kernels_line(kernels), flush=True)
    from keras_cnns.progress import set_enabled
    from keras_cnns.training.evaluate import evaluate_dir, per_class_table

    set_enabled(not args.quiet)
    png = args.confusion_png or os.path.join(args.model_dir, "confusion_matrix.png")
    try:
        result = evaluate_dir(args.model_dir, args.dataset, data_dir=args.data_dir, ten_crop=args.ten_crop,
                              batch_size=args.batch_size, limit=args.limit, confusion_png=png)
    except USER_ERRORS as err:  # a bad value, a missing file, tensorflow_datasets or a dataset absent
        print(f"evaluate.py: error: {first_line(err)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    top5 = "n/a" if result["top5"] is None else f"{result['top5']:.4f}"
    print(f"{result['model']} on {result['dataset']} ({result['examples']} test images"
          f"{', 10-crop' if result['ten_crop'] else ''}): accuracy {result['accuracy']:.4f}, top-5 {top5}")
    print(per_class_table(result).to_string(float_format=lambda x: f"{x:.4f}"))
    print(f"confusion matrix: {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
