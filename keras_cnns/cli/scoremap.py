"""Score maps: a classifier slid over whole images in one pass (its dense layers as convolutions).

    python apps/scoremap.py scene.png                                   # the shipped LeNet-5 (Fashion-MNIST)
    python apps/scoremap.py scene.png --class Trouser --output maps/    # one class's heat map
    python apps/scoremap.py photos/ --model saved_models/vgg_cifar-fashion_mnist --json

For each image, writes <stem>.scoremap.png into --output (default scoremap-out/): the image and one heat
map per class (the probability the classifier gives the crop centred on each cell). --json prints one
record per image, in classify.py's JSON form (a list of records keyed by "path"), with the map's shape,
stride, offset (centre of cell 0,0 in image pixels) and, per class, its maximum and where it is (x, y in
image pixels). Images are taken at their own scale; one image pixel is one training pixel.

--model takes what classify.py takes, as long as it is a Keras model (a registry NAME trained into
saved_models/<name>-*/, a model DIR or a .keras FILE). Every input that can't be read prints one line on
stderr; the other images are still done and the exit status is 2. An unknown --class prints the classes.
Installed: keras-cnns-scoremap. A thin door over keras_cnns.tasks.scoremap.
"""

import os
import sys

from keras_cnns import cli, results
from keras_cnns.cli import USER_ERRORS, first_line, quiet_native_logs, restore_native_logs

EXIT_BAD_INPUT = 2
DEFAULT_OUTPUT = "scoremap-out"


def parse_args(argv):
    p = cli.parser(__doc__)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or directories of images")
    p.add_argument("--model", default=None,
                   help="registry NAME, model DIR or .keras FILE (default: saved_models/lenet5-fashion_mnist)")
    p.add_argument("--class", dest="class_name", default=None, metavar="NAME",
                   help="draw and report only this class (a name from the model's metadata)")
    p.add_argument("--output", default=DEFAULT_OUTPUT, metavar="DIR",
                   help=f"where the PNGs go (default: {DEFAULT_OUTPUT}/)")
    p.add_argument("--json", action="store_true", help="one JSON record per image instead of text")
    p.add_argument("--global-pool", choices=("window", "drop"), default="window",
                   help="global-pooling models: 'window' (each cell = one trained-size crop, default) or "
                        "'drop' (one score per position of the last feature map)")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="refuse images with more pixels than this (default: keras_cnns.inference.MAX_PIXELS)")
    return p.parse_args(argv)


def format_text(record):
    lines = [f"{record['path']}: {record['map_shape'][0]}x{record['map_shape'][1]} map, stride "
             f"{record['stride'][0]}, written to {record['png']}"]
    width = max(len(e["class"]) for e in record["max"])
    for e in sorted(record["max"], key=lambda e: -e["probability"]):
        lines.append(f"  {e['class']:<{width}}  max {100 * e['probability']:6.2f}% at x={e['x']:g}, y={e['y']:g}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    quiet_native_logs()
    from keras_cnns import inference
    from keras_cnns.tasks import scoremap

    def fail(message):
        print(f"scoremap.py: {message}", file=sys.stderr, flush=True)

    try:
        mapper = scoremap.ScoreMapper(inference.load(args.model), global_pool=args.global_pool)
    except USER_ERRORS as err:  # ModelSourceError, a non-Keras artifact, an unconvertible model
        fail(first_line(err))
        return EXIT_BAD_INPUT
    restore_native_logs()
    classes = None
    if args.class_name is not None:
        try:
            classes = [mapper.class_index(args.class_name)]
        except ValueError as err:
            fail(str(err))
            return EXIT_BAD_INPUT
    os.makedirs(args.output, exist_ok=True)
    limit = args.max_pixels or inference.MAX_PIXELS
    paths = inference.list_images(args.images)
    records = []
    failed = results.FailureLog(fail)
    for path, image in inference.iter_images(paths, limit, on_error=failed):
        result = mapper(image)
        png = os.path.join(args.output, f"{os.path.splitext(os.path.basename(path))[0]}.scoremap.png")
        scoremap.plot_score_map(image, result, mapper.class_names, classes=classes, path=png,
                                title=f"{os.path.basename(path)}: {mapper.predictor.metadata.get('model', '')}")
        record = {"path": path, "png": png, "map_shape": list(result.probabilities.shape),
                  "stride": list(result.geometry.stride), "offset": list(result.centre(0, 0)),
                  "trained_size": list(result.geometry.trained_size),
                  "max": result.maxima(mapper.class_names, mapper.output, classes)}
        if args.json:
            records.append(record)
        else:
            print(format_text(record), flush=True)
    return results.finish(records, args.json, failed.count, len(paths), fail, "mapped")

