"""Training speed of the zoo's bias-free convolutions against the same model with a bias on every convolution,
and of keras.applications' twin with and without its biases, jit-compiled or not (not a test; docs/performance.md).

    python benchmarks/conv_bias_xla.py [--models resnet50] [--precisions mixed_bfloat16 float32]
                                       [--jit on off] [--rounds 5] [--min-seconds 10] [--stages]
                                       [--processes 1] [--out benchmarks/results/conv-bias-xla]

The full speed run of sessions 36-37 left one ours / keras.applications ratio plainly below 1: resnet50 training
with jit on in mixed_bfloat16, 0.923 (0.877-0.969), at parity with jit on in the other precisions and 1.46-1.77x
with jit off. The two ResNet-50s differ in two ways: the zoo's batch norm (keras_cnns.layers.BatchNormalization;
speed.py --keras-batch-norm swaps it out) and its convolutions, which have no bias (a bias before a batch norm is
cancelled by the mean it subtracts; keras.applications' have one). Each process builds the zoo model, a copy of it
with a bias on every Conv2D (speedlib.with_conv_bias; random weights), and, where keras.applications has a twin
(speedlib.KERAS_APPLICATIONS), that twin and a copy of it without its biases; trains each with model.fit on one
in-memory batch of --batch images (speed.py's fit_steps: SGD with momentum, the setting's precision and jit), warms
each up, then times --rounds rounds of steps filling --min-seconds / --rounds each, the models' rounds alternated,
and keeps each one's median round. --stages also times one forward and backward pass (the gradient of the outputs'
sum) of the zoo model and its biased copy cut after each stage (the last "convN_blockK_out" layer of each ResNet
stage), alternated, median of --stage-repeats, to show where the difference lies. Writes
<out>/conv_bias_xla.{csv,md}; run it on an otherwise idle machine (docs/performance.md has session 38's runs).
"""

import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)  # report, speedlib, speed
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import report  # noqa: E402
import speedlib  # noqa: E402  (imports no TensorFlow)

OURS = speedlib.OURS
OURS_BIAS = f"{OURS} + conv bias"
PEER = "keras.applications"
PEER_NO_BIAS = f"{PEER} - conv bias"
IMPLS = (OURS, OURS_BIAS, PEER, PEER_NO_BIAS)
PRECISIONS = ("float32", "mixed_bfloat16")
TRAIN = "train_images_per_s"
STAGE_END = re.compile(r"conv(\d+)_block(\d+)_out$")


def stage_outputs(model):
    """The name of the last block's output layer of each ResNet stage, in order ([] for other models)."""
    last = {}
    for layer in model.layers:
        match = STAGE_END.match(layer.name)
        if match:
            last[int(match.group(1))] = layer.name
    return [last[stage] for stage in sorted(last)]


def _models(task):
    """{impl: (model, loss)} of the task's model: ours, ours with biases, and keras.applications' twin with and
    without its biases where there is one."""
    import keras

    import speed

    model, loss = speed.keras_model(dict(task, framework=OURS))
    models = {OURS: (model, loss), OURS_BIAS: (speedlib.with_conv_bias(model, True), loss)}
    if task["model"] in speedlib.KERAS_APPLICATIONS:
        twin = speedlib.keras_applications_model(task["model"])
        peer_loss = keras.losses.SparseCategoricalCrossentropy()
        models[PEER] = (twin, peer_loss)
        models[PEER_NO_BIAS] = (speedlib.with_conv_bias(twin, False), peer_loss)
    return models


def _stage_rows(task, models):
    """(measure, impl, milliseconds) of one forward and backward pass of ours and ours with biases, cut after
    each stage."""
    import keras
    import tensorflow as tf

    import speed

    x = tf.constant(speed.random_batch(models[OURS][0], task["batch"])[0])
    rows = []
    for name in stage_outputs(models[OURS][0]):
        steps = {}
        for impl in (OURS, OURS_BIAS):
            model = models[impl][0]
            cut = keras.Model(model.input, model.get_layer(name).output)

            @tf.function(jit_compile=bool(task["jit"]))
            def step(images, cut=cut):
                with tf.GradientTape() as tape:
                    total = tf.reduce_sum(tf.cast(cut(images, training=True), "float32"))
                return tape.gradient(total, cut.trainable_variables)
            steps[impl] = lambda step=step: step(x)[0].numpy()
            steps[impl]()  # tracing and compiling; median_ms_alternated warms up once more
        ms = report.median_ms_alternated(steps, task["stage_repeats"])
        rows += [(f"forward+backward ms up to {name}", impl, ms[impl]) for impl in steps]
    return rows


def child(task):
    import speed

    speed.keras_settings(task)
    models = _models(task)
    x, y = speed.random_batch(models[OURS][0], task["batch"])
    per_step, _ = speed.alternated_training(list(models.values()), x, y, dict(task, spe=1), task["rounds"])
    rows = [(TRAIN, impl, task["batch"] / per_step[i]) for i, impl in enumerate(models)]
    if task["stages"]:
        rows += _stage_rows(task, models)
    return [{"measure": m, "impl": impl, "value": value} for m, impl, value in rows]


def plan(args):
    return [dict(model=model, precision=precision, jit=jit == "on", threads=args.threads, batch=args.batch,
                 rounds=args.rounds, min_seconds=args.min_seconds, warmup_steps=args.warmup_steps,
                 max_step_seconds=1e9, stages=args.stages, stage_repeats=args.stage_repeats, process=p)
            for p in range(args.processes) for model in args.models
            for precision in args.precisions for jit in args.jit]


def summarize(results):
    """One row per model, precision, jit and measure: each impl's best over the processes (the highest images/s,
    the lowest milliseconds), and two speed ratios (> 1: the first is faster): ours over ours with biases, and
    ours over keras.applications (training only)."""
    import pandas as pd

    frame = pd.DataFrame([dict(row, model=t["model"], precision=t["precision"], jit=t["jit"])
                          for t, rows in results for row in rows])
    keys = ["model", "precision", "jit", "measure"]
    train = frame["measure"] == TRAIN
    best = pd.concat([frame[train].groupby(keys + ["impl"])["value"].max(),
                      frame[~train].groupby(keys + ["impl"])["value"].min()])
    table = best.unstack("impl").reindex(columns=[i for i in IMPLS if i in set(frame["impl"])]).reset_index()
    table = table.sort_values(keys, key=lambda c: c != TRAIN if c.name == "measure" else c, ignore_index=True)
    faster = table["measure"] == TRAIN  # images/s: higher is faster; milliseconds: lower is
    for label, peer in ((f"{OURS} / {OURS_BIAS}", OURS_BIAS), (f"{OURS} / {PEER}", PEER)):
        if peer in table:
            table[label] = (table[OURS] / table[peer]).where(faster, table[peer] / table[OURS])
    return table


def write(table, out, header):
    return report.write_csv_and_markdown(
        table, speedlib.rounded(table), out, "conv_bias_xla",
        "Convolution biases and XLA (benchmarks/conv_bias_xla.py)",
        header + f"\n\n{TRAIN}: model.fit at batch 32, each model's median of the alternated rounds, best over the "
        "processes; forward+backward ms: one pass of the model cut after that layer, median (blank: not "
        "measured). Ratios are speed ratios, > 1: keras_cnns (bias-free convolutions) faster.")


def main(argv=None):
    from keras_cnns import list_models

    p = report.probe_parser(__doc__, "conv-bias-xla", timeout=1800)
    p.add_argument("--models", nargs="+", default=["resnet50"])
    p.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=["mixed_bfloat16", "float32"])
    p.add_argument("--jit", nargs="+", choices=("on", "off"), default=["on", "off"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--min-seconds", type=float, default=10.0, help="the timed rounds of one model fill this")
    p.add_argument("--warmup-steps", type=int, default=3)
    p.add_argument("--stages", action="store_true", help="also time each ResNet stage's forward and backward")
    p.add_argument("--stage-repeats", type=int, default=5)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    if report.answer_child(args, child):
        return 0
    report.check_counts(p, args, ("batch", "rounds", "warmup_steps", "stage_repeats", "processes", "threads"))
    unknown = sorted(set(args.models) - set(list_models()))
    if unknown:
        p.error(f"unknown --models {unknown}; choose from {list_models()}")
    if args.min_seconds <= 0:
        p.error(f"--min-seconds must be positive. Received: {args.min_seconds}")
    return report.run_probe(
        p, argv, __file__, plan(args), args.timeout,
        lambda t: f"{t['model']} {t['precision']} jit={'on' if t['jit'] else 'off'}",
        lambda results, header: write(summarize(results), args.out, header), detail=f"threads {args.threads}",
        echo=True)


if __name__ == "__main__":
    sys.exit(main())
