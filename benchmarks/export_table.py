"""Writes the table of export results (size, parity, latency) that the README shows.

    python benchmarks/export_table.py                                    # saved_models/lenet5-fashion_mnist
    python benchmarks/export_table.py --model resnet20 --output benchmarks/results/export_table.md

Exports MODEL to every format and TFLite quantisation (keras_cnns.export.export_model, artifacts under
build/exports/), then writes one markdown row per export from its parity report. A format that cannot
be exported here gets a row saying why instead of numbers.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(_HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402

RUNS = (("savedmodel", "none"), ("tflite", "none"), ("tflite", "float16"), ("tflite", "dynamic"),
        ("tflite", "int8"), ("onnx", "none"))
HEADER = ("| format | quantize | size (MB) | top-1 agreement | max abs diff | accuracy (Keras -> export) "
          "| latency, 1 image (ms) | target |\n|---|---|---|---|---|---|---|---|")


def row(fmt, quantize, report=None, error=None):
    if error is not None:
        return f"| {fmt} | {quantize} | - | - | - | - | - | not exported: {error} |"
    r = report
    accuracy = (f"{r['accuracy_keras']:.2%} -> {r['accuracy_export']:.2%}" if "accuracy_keras" in r else "-")
    return (f"| {fmt} | {quantize} | {r['size_bytes'] / 1e6:.3f} | {r['top1_agreement']:.2%} | "
            f"{r['max_abs_diff']:.2g} | {accuracy} | {r['latency_ms']:.2f} ({r['runtime']}) | "
            f"{'met' if r['meets_target'] else 'NOT met'} |")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="as apps/export.py MODEL; default: the shipped LeNet-5")
    p.add_argument("--output", default=os.path.join(_HERE, "results", "export_table.md"))
    p.add_argument("--parity-images", type=int, default=1000)
    p.add_argument("--calibration", type=int, default=200)
    args = p.parse_args(argv)
    from keras_cnns import export, inference

    model = args.model or inference.default_model_dir()
    rows, keras_ms, name = [], None, model
    for fmt, quantize in RUNS:
        try:
            result = export.export_model(model, fmt, quantize=quantize, calibration=args.calibration,
                                         parity_images=args.parity_images)
        except Exception as err:  # noqa: BLE001  (one failed format must not hide the others)
            rows.append(row(fmt, quantize, error=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"))
            continue
        report = result["report"]
        keras_ms, name = report["keras_latency_ms"], f"{report['model']} ({report['dataset']})"
        rows.append(row(fmt, quantize, report))
        print(rows[-1], flush=True)
    text = (f"Exports of {name}, measured on {args.parity_images} test images "
            f"(`python benchmarks/export_table.py`). Keras single-image latency: "
            f"{keras_ms if keras_ms is None else round(keras_ms, 2)} ms.\n\n" + HEADER + "\n"
            + "\n".join(rows) + "\n")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        f.write(text)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
