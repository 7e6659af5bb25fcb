"""Export a trained model to SavedModel, TensorFlow Lite or ONNX, with a parity report beside it.

    python apps/export.py lenet5 --format savedmodel
    python apps/export.py saved_models/lenet5-fashion_mnist --format tflite --quantize int8 --calibration 200
    python apps/export.py resnet20 --format onnx --output /tmp/resnet20-onnx
    python apps/export.py vgg16 --weights imagenet --format tflite --quantize float16

MODEL is what apps/classify.py --model takes (a registry NAME, a model DIR or a .keras FILE). The output
directory (default build/exports/<model dir>/<format>[-<quantize>]/) gets the artifact (savedmodel/,
model.tflite or model.onnx), the model's metadata.json, and parity.json + parity.md: top-1 agreement and
max difference from the Keras model on test images, accuracy, file size and single-image latency.
Run the artifact with `python apps/classify.py IMAGE --model <artifact>`.
--format tflite also writes the mobile variant in <output>/mobile/ (model.tflite: uint8 pixels [1, H, W, C]
at the input size in, normalisation inside, probabilities out; labels.txt; metadata.json), in the same
--quantize mode (int8: full-integer, input still uint8); run it without TensorFlow with
`python -m keras_cnns.lite IMAGE --model <output>/mobile/model.tflite`.
A thin door over keras_cnns.export; a bad argument prints one line on stderr and exits with status 2.
"""

import os
import sys

from keras_cnns import cli
from keras_cnns.cli import USER_ERRORS, first_line

FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZE = ("none", "float16", "dynamic", "int8")


def parse_args(argv):
    p = cli.parser(__doc__)
    p.add_argument("model", metavar="MODEL", help="registry NAME, model DIR or .keras FILE")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--quantize", default="none", choices=QUANTIZE, help="TFLite only")
    p.add_argument("--calibration", type=int, default=100,
                   help="int8: number of training images that calibrate the activation ranges")
    p.add_argument("--output", default=None, help="output directory")
    p.add_argument("--weights", default=None, help='with a registry NAME: "imagenet" or a weights file')
    p.add_argument("--parity-images", type=int, default=500, help="test images in the parity report")
    p.add_argument("--no-uint8-signature", dest="uint8_endpoint", action="store_false",
                   help="SavedModel: leave out the uint8-in, probabilities-out 'classify_images' signature")
    p.add_argument("--no-mobile", dest="mobile", action="store_false",
                   help="TFLite: leave out the mobile variant (mobile/model.tflite + labels.txt)")
    args = p.parse_args(argv)
    if args.quantize != "none" and args.format != "tflite":
        p.error(f"--quantize applies to --format tflite only. Received: --format {args.format} "
                f"--quantize {args.quantize}")
    if args.calibration < 1 or args.parity_images < 1:
        p.error("--calibration and --parity-images must be at least 1.")
    return args


def main(argv=None):
    args = parse_args(argv)
    from keras_cnns import export
    from keras_cnns.export.onnx import OnnxUnavailable

    try:
        result = export.export_model(args.model, args.format, quantize=args.quantize,
                                     calibration=args.calibration, output=args.output, weights=args.weights,
                                     parity_images=args.parity_images, uint8_endpoint=args.uint8_endpoint,
                                     mobile=args.mobile)
    except (*USER_ERRORS, OnnxUnavailable, RuntimeError) as err:
        print(f"export.py: {first_line(err)}", file=sys.stderr)
        return 2
    report = result["report"]
    print(f"wrote {result['artifact']}")
    if result.get("mobile"):
        print(f"wrote {result['mobile']} (mobile: uint8 pixels in, probabilities out, labels.txt beside it)")
    if "same_detections" in report:  # a detector: its detections compared on test scenes
        print(f"{report['images']} test images: same detections {report['same_detections']}, largest box "
              f"difference {report['max_abs_box_difference']:.2g} px, score {report['max_abs_score_difference']:.2g}")
        print(f"report: {os.path.join(result['output'], 'parity.json')}")
        return 0
    print(export.parity.markdown(report), end="")
    print(f"report: {os.path.join(result['output'], 'parity.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
