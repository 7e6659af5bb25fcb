"""LiteRT (XNNPACK) int8 against float32 on each of a model's own convolutions, batch 1 (not a test;
docs/performance.md).

    python benchmarks/int8_kernels.py [--models resnet50] [--repeats 15] [--threads 2] [--builtin-kernels]
                                      [--out build/benchmarks/int8-kernels]

Issue 10 asks LiteRT int8 for at most 0.5x Keras float32's batch-1 latency. speed.py times whole models; this
script asks the kernels underneath: how much faster XNNPACK's int8 convolution is than its float32 one on this
CPU, shape by shape. Each model runs in a child process of its own. For each distinct convolution of the model
(speedlib.convolution_shapes: input size, filters, kernel, strides, padding, groups; LeNet-5's C3 as the dense
convolution it runs, its FLOPs those of its table's pairs) the child builds a
one-layer Keras model (random weights, ReLU fused as in the zoo's exports), converts it with
keras_cnns.export.tflite.convert to float32 and to full int8 (calibrated on 8 random inputs), and times the
two interpreters' `invoke` calls alternated (report.median_ms_alternated: the median of --repeats calls after
one warm-up). Each call carries the interpreter's fixed cost of an invoke, so the smallest convolutions read
slow in both precisions. The last row of each model sums the shapes weighted by how often the model runs each:
its convolutions' int8 time over float32. Where that is near 1 (the AVX2 CPU of session 30), int8 <= 0.5x
Keras float32 needs Keras float32 itself at 2x or more of XNNPACK's float32 time; on CPUs with int8 dot-product
instructions whole int8 models ran at 0.10x (AMX) and 0.24x (AVX-512 VNNI) of Keras float32 in speed.py.
--builtin-kernels also opens both files without the XNNPACK delegate LiteRT applies by default (TensorFlow
Lite's own kernels, ruy's matrix products for int8) and times them, alternated with each other after XNNPACK's
pair: is there a faster int8 path than XNNPACK's on this CPU?
Writes <out>/int8_kernels.{csv,md}; run it on an otherwise idle machine.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)  # report, speedlib
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import report  # noqa: E402
import speedlib  # noqa: E402  (imports no TensorFlow)

CALIBRATION = 8
TOTAL = "all convolutions, weighted"


def describe(shape):
    """'3x3/2 64->128 at 56x56' (and ', groups 2' for a grouped convolution, ', 60 of 96 pairs' for a
    convolution over a connection table)."""
    (kh, kw), (sh, _), (h, w, c) = shape["kernel_size"], shape["strides"], shape["input"]
    groups = f", groups {shape['groups']}" if shape["groups"] > 1 else ""
    pairs = f", {shape['pairs']} of {c * shape['filters']} pairs" if "pairs" in shape else ""
    return f"{kh}x{kw}/{sh} {c}->{shape['filters']} at {h}x{w}{groups}{pairs}"


def child(task):
    import tempfile

    import keras
    import numpy as np

    from keras_cnns import get_model

    speedlib.set_tf_threads(task["threads"])
    rng = np.random.default_rng(0)
    rows = []
    shapes = speedlib.convolution_shapes(get_model(task["model"]))
    if not shapes:
        raise ValueError(f"{task['model']} has no convolution to time. Pass models with convolutions.")
    with tempfile.TemporaryDirectory() as tmp:
        for i, shape in enumerate(shapes):
            inputs = keras.Input(shape["input"])
            conv = keras.layers.Conv2D(shape["filters"], shape["kernel_size"], strides=shape["strides"],
                                       padding=shape["padding"], groups=shape["groups"],
                                       dilation_rate=shape["dilation_rate"], activation="relu")
            directory = os.path.join(tmp, f"conv{i}")
            saved = os.path.join(directory, "saved")
            keras.Model(inputs, conv(inputs)).export(saved, verbose=False)
            x = rng.standard_normal((CALIBRATION, *shape["input"])).astype("float32")
            interpreters = speedlib.litert_interpreters(saved, directory, x, task["threads"],
                                                        builtin_kernels=task["builtin_kernels"])
            for interpreter in interpreters.values():
                interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[:1])
            # XNNPACK's forms alternated, then the built-in ones: alternating the two libraries call by call slowed
            # XNNPACK's float32 1.8x on 2 cores (likely each thread pool spinning a while after its call).
            ms = {}
            for builtin in ([False, True] if task["builtin_kernels"] else [False]):
                forms = {p: i.invoke for p, i in interpreters.items() if p.endswith(speedlib.LITERT_BUILTIN) == builtin}
                ms.update(report.median_ms_alternated(forms, task["repeats"]))
            rows.append(dict(convolution=describe(shape), count=shape["count"], mflops=shape["flops"] / 1e6,
                             **{f"{p} ms": ms[p] for p in interpreters}))
            print(f"  {rows[-1]}", file=sys.stderr, flush=True)
    return rows


def summarize(results):
    """The shapes of each model, then its total: each shape's time times its count, summed; GFLOP/s (GOP/s for
    int8) and int8 / float32 on every row, and with the built-in kernels timed, built-in int8 / XNNPACK int8."""
    import pandas as pd

    tables = []
    for task, rows in results:
        frame = pd.DataFrame(rows)
        weighted = {c: (frame[c] * frame["count"]).sum() for c in frame.columns if c == "mflops" or c.endswith(" ms")}
        total = dict(weighted, convolution=TOTAL, count=frame["count"].sum())
        frame = pd.concat([frame, pd.DataFrame([total])], ignore_index=True)
        frame.insert(0, "model", task["model"])
        tables.append(frame)
    table = pd.concat(tables, ignore_index=True)
    forms = [c[:-len(" ms")] for c in table.columns if c.endswith(" ms")]
    for form in forms:
        unit = "FLOP" if form.startswith("float32") else "OP"
        table[f"{form} G{unit}/s"] = table["mflops"] / table[f"{form} ms"]  # MFLOP/ms = GFLOP/s
    table["int8 / float32"] = table["int8 ms"] / table["float32 ms"]
    builtin_int8 = "int8" + speedlib.LITERT_BUILTIN
    if builtin_int8 in forms:
        table[f"{builtin_int8} / int8"] = table[f"{builtin_int8} ms"] / table["int8 ms"]
    return table


def main(argv=None):
    p = report.probe_parser(__doc__, "int8-kernels", timeout=1800)
    p.add_argument("--models", nargs="+", default=["resnet50"])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--builtin-kernels", action="store_true",
                   help="also time each form without XNNPACK, on TensorFlow Lite's built-in kernels (ruy)")
    args = p.parse_args(argv)
    if report.answer_child(args, child):
        return 0
    report.check_counts(p, args, ("repeats", "threads"))
    tasks = [dict(model=m, repeats=args.repeats, threads=args.threads, builtin_kernels=args.builtin_kernels)
             for m in args.models]

    def write(results, header):
        table = summarize(results)
        return report.write_csv_and_markdown(
            table, speedlib.rounded(table), args.out, "int8_kernels",
            "XNNPACK int8 against float32, convolution by convolution (benchmarks/int8_kernels.py)",
            header + "\n\nMilliseconds per `invoke` at batch 1, the median of the alternated calls; count: how "
            f"many of the model's convolutions have that form; the \"{TOTAL}\" row sums count x time. int8 / "
            "float32 < 1: int8 is faster; built-in: TensorFlow Lite's own kernels, without XNNPACK.")
    return report.run_probe(p, argv, __file__, tasks, args.timeout, lambda task: task["model"], write,
                            detail=f"threads {args.threads}")


if __name__ == "__main__":
    sys.exit(main())
