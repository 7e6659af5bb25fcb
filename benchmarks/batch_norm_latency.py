"""Predict latency of the zoo's batch norm (keras_cnns.layers.BatchNormalization) against Keras's own
layer, and of the zoo's model against keras.applications' twin where there is one (resnet50), at small
batches, with TensorFlow's oneDNN kernels on and off (not a test; docs/performance.md).

    python benchmarks/batch_norm_latency.py [--models resnet20 resnet50] [--batches 1 2 8 32]
                                            [--repeats 15] [--processes 2]
                                            [--out benchmarks/results/batch-norm-latency]

The speed benchmark's AVX2 main run (session 26) measured resnet50's batch-1 predict at 1,127 ms with the
zoo's layer under oneDNN against 85 ms with Keras's, and resnet20's at 24.3 against 3.91 ms, while batch 32 was
faster with the zoo's layer. This script isolated that (Grappler's remapper fusing the inference fused batch
norm with the convolution before it; since session 27 the layer infers with a multiply-add, see its docstring)
and keeps watch on it: each process builds one model (random weights), copies it with Keras's batch norm
(benchmarks/speedlib.with_keras_batch_norm: same weights), builds keras.applications' twin where one exists
(speedlib.KERAS_APPLICATIONS), and times `predict_on_batch` on a random batch of each size (median of
--repeats after two warm-up calls), the models' calls alternated within the process. On a VM whose speed
drifts, that compares ours with keras.applications more tightly than speed.py's separate processes (session
28, resnet50's batch-1 predict under oneDNN: ours 199 against 162 ms there, 140 against 145 here, in the same
hour). TF_ENABLE_ONEDNN_OPTS is 1 or 0 per process
(set before TensorFlow is imported), the two settings alternated over --processes. Writes
<out>/batch_norm_latency.{csv,md}; run it on an otherwise idle machine.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)  # report, speedlib
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import report  # noqa: E402
import speedlib  # noqa: E402  (imports no TensorFlow)

ONEDNN = ("1", "0")
LAYERS = ("keras_cnns", "keras.layers")
RATIO = "keras_cnns / keras"  # the first layer's time over the second's
PEER = "keras.applications"   # the same network built by keras.applications, where it builds one
PEER_RATIO = "keras_cnns / keras.applications"


def child(task):
    import numpy as np

    from keras_cnns import get_model

    speedlib.set_tf_threads(task["threads"])
    zoo = get_model(task["model"])
    models = dict(zip(LAYERS, (zoo, speedlib.with_keras_batch_norm(zoo))))
    if task["model"] in speedlib.KERAS_APPLICATIONS:
        models[PEER] = speedlib.keras_applications_model(task["model"])
    shape = tuple(zoo.input_shape[1:])
    rng = np.random.default_rng(0)
    rows = []
    for batch in task["batches"]:
        x = rng.standard_normal((batch,) + shape).astype("float32")
        for model in models.values():
            model.predict_on_batch(x)  # tracing; median_ms_alternated warms up once more
        ms = report.median_ms_alternated(
            {impl: (lambda m=model: m.predict_on_batch(x)) for impl, model in models.items()}, task["repeats"])
        rows += [{"impl": impl, "batch": batch, "ms": ms[impl]} for impl in models]
    return rows


def plan(args):
    """Every model in every process, the two oneDNN settings alternated, the first one rotated."""
    tasks = []
    for p in range(args.processes):
        for onednn in (ONEDNN if p % 2 == 0 else ONEDNN[::-1]):
            for model in args.models:
                tasks.append(dict(model=model, onednn=onednn, batches=args.batches, repeats=args.repeats,
                                  threads=args.threads, process=p))
    return tasks


def summarize(results):
    """One row per model, oneDNN setting and batch: each model's best (lowest) median over the processes,
    the zoo's time over the copy with Keras's layer, and over keras.applications' twin (NaN without one)."""
    import pandas as pd

    frame = pd.DataFrame([dict(row, model=task["model"], onednn=task["onednn"])
                          for task, rows in results for row in rows])
    table = frame.groupby(["model", "onednn", "batch", "impl"])["ms"].min().unstack("impl")
    table = table.reindex(columns=[*LAYERS, PEER]).reset_index()
    table[RATIO] = table[LAYERS[0]] / table[LAYERS[1]]
    table[PEER_RATIO] = table[LAYERS[0]] / table[PEER]
    return table.sort_values(["model", "onednn", "batch"], ascending=[True, False, True])


def write(table, out, header):
    shown = speedlib.rounded(table)  # a model without a keras.applications twin: blank cells
    return report.write_csv_and_markdown(
        table, shown, out, "batch_norm_latency", "Batch norm predict latency (benchmarks/batch_norm_latency.py)",
        header + "\n\nMilliseconds per `predict_on_batch` call, best of the processes' medians; "
        f"{RATIO} > 1: the zoo's layer is slower; {PEER_RATIO} > 1: the zoo's model is slower than "
        f"{PEER}' twin (blank: none).")


def main(argv=None):
    p = report.probe_parser(__doc__, "batch-norm-latency")
    p.add_argument("--models", nargs="+", default=["resnet20", "resnet50"])
    p.add_argument("--batches", nargs="+", type=int, default=[1, 2, 8, 32])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if report.answer_child(args, child):
        return 0
    report.check_counts(p, args, ("repeats", "processes", "threads"))
    if min(args.batches) < 1:
        p.error(f"--batches must be 1 or more. Received: {args.batches}")
    return report.run_probe(
        p, argv, __file__, plan(args), args.timeout, lambda task: f"{task['model']} oneDNN={task['onednn']}",
        lambda results, header: write(summarize(results), args.out, header), detail=f"threads {args.threads}",
        env=lambda task: dict(os.environ, TF_ENABLE_ONEDNN_OPTS=task["onednn"]),
        hint=". --models takes zoo models with batch norm (the ResNets, vgg*_bn)")


if __name__ == "__main__":
    sys.exit(main())
