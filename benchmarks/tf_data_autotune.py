"""tf.data's model-based autotuner on and off: how long model.fit waits after its last step, epoch times
through keras_cnns.training.fit, and what the package's pipelines deliver (not a test; docs/training.md).

    python benchmarks/tf_data_autotune.py [--processes 3] [--calls 4] [--steps 60] [--epochs 4]
                                          [--out benchmarks/results/tf-data-autotune]

Each measurement runs in its own process, the two settings alternated, on one in-memory batch (fit) or the
Fashion-MNIST files (pipelines):
- fit_wait: `model.fit(steps_per_epoch=--steps)` of --model, --calls times per process; the seconds from the
  last step's end (a callback) to fit's return, when Keras destroys the iterator. A wait over 0.1 s counts as
  held (the autotuner's thread wakes 2.55 s, 5.11 s, ... after the iterator began).
- epoch_s: `keras_cnns.training.fit(--fit-model, recipe="fast", epochs=--epochs)`, each epoch's seconds from
  its history (the first epoch traces the graph).
- pipeline: `keras_cnns.data.measure_pipeline` images/s of vgg16's 224x224 input (not cached) and resnet20's
  32x32 input (cached, a whole epoch), as benchmarks/speed.py's pipeline rows.
Writes <out>/tf_data_autotune.{csv,md}; run it on an otherwise idle machine.
"""

import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)  # input_pipeline, report, speedlib
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import report  # noqa: E402

SETTINGS = ("on", "off")
HELD_SECONDS = 0.1


def _set_autotune(setting):
    from keras_cnns.data import pipeline
    pipeline.TF_DATA_AUTOTUNE = setting == "on"
    return pipeline


def child_fit_wait(task):
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_cnns import get_model, get_spec
    from keras_cnns.losses import loss_and_metric

    pipeline = _set_autotune(task["setting"])
    spec = get_spec(task["model"])
    model = get_model(spec.name)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=loss_and_metric(spec.output)[0])
    shape = tuple(model.input_shape[1:])
    x = np.random.default_rng(0).standard_normal((task["batch"],) + shape).astype("float32")
    data = tf.data.Dataset.from_tensors((x, np.zeros(task["batch"], "int32"))).repeat()
    data = data.with_options(pipeline.tuning_options())
    model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # tracing
    last = {}

    class LastStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            last["end"] = time.perf_counter()

    waits, steps_s = [], []
    for _ in range(task["calls"]):
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=task["steps"], epochs=1, verbose=0, callbacks=[LastStep()])
        returned = time.perf_counter()
        waits.append(returned - last["end"])
        steps_s.append(last["end"] - start)
    return {"waits": waits, "steps_s": steps_s}


def child_epochs(task):
    from keras_cnns import training

    _set_autotune(task["setting"])
    with tempfile.TemporaryDirectory() as out:
        result = training.fit(task["model"], recipe="fast", epochs=task["epochs"], output_dir=out, verbose=0,
                              tensorboard=False, log=lambda *a, **k: None)
    return {"epoch_s": [row["seconds"] for row in result.history],
            "test_accuracy": result.evaluation["accuracy"]}


def child_pipeline(task):
    import input_pipeline

    from keras_cnns import data, get_spec

    _set_autotune(task["setting"])
    spec = get_spec(task["model"])
    source = data.load_source("fashion_mnist")
    result, _ = input_pipeline.model_input_throughput(source, spec.input_shape, task["batch"], task["batches"])
    return {"images_per_s": result["images_per_second"]}


CHILDREN = {"fit_wait": child_fit_wait, "epochs": child_epochs, "pipeline": child_pipeline}


def plan(args):
    """The tasks in order: each kind's two settings alternated, the first setting rotated every process."""
    tasks = []
    for p in range(args.processes):
        order = SETTINGS if p % 2 == 0 else SETTINGS[::-1]
        for setting in order:
            tasks.append(dict(kind="fit_wait", setting=setting, model=args.model, batch=args.batch,
                              steps=args.steps, calls=args.calls, process=p))
        if args.epochs and p < args.epoch_processes:
            for setting in order:
                tasks.append(dict(kind="epochs", setting=setting, model=args.fit_model, epochs=args.epochs,
                                  process=p))
        if not args.no_pipelines and p < args.pipeline_processes:
            for model, batches in (("vgg16", 100), ("resnet20", 300)):
                for setting in order:
                    tasks.append(dict(kind="pipeline", setting=setting, model=model, batch=32, batches=batches,
                                      process=p))
    return tasks


def summarize(results):
    """Rows of the table: one per (measurement, setting), from the children's results."""
    import numpy as np

    rows = []
    for setting in SETTINGS:
        waits = [w for t, r in results if t["kind"] == "fit_wait" and t["setting"] == setting for w in r["waits"]]
        if waits:
            held = [w for w in waits if w > HELD_SECONDS]
            rows.append({"measurement": "fit_wait", "setting": setting, "n": len(waits),
                         "held": len(held), "median": float(np.median(waits)), "max": float(max(waits)),
                         "values": " ".join(f"{w:.3f}" for w in waits), "unit": "s after the last step"})
        epochs = [(t["model"], r["epoch_s"], r["test_accuracy"]) for t, r in results
                  if t["kind"] == "epochs" and t["setting"] == setting]
        if epochs:
            later = [s for _, run, _ in epochs for s in run[1:]]  # the first epoch traces the graph
            rows.append({"measurement": f"epoch_s {epochs[0][0]} (after the first)", "setting": setting,
                         "n": len(later),
                         "held": None, "median": float(np.median(later)), "max": float(max(later)),
                         "values": " ".join(f"{s:.2f}" for s in later),
                         "unit": "s; test accuracy " + " ".join(f"{a:.4f}" for _, _, a in epochs)})
        for model in ("vgg16", "resnet20"):
            speeds = [r["images_per_s"] for t, r in results
                      if t["kind"] == "pipeline" and t["setting"] == setting and t["model"] == model]
            if speeds:
                rows.append({"measurement": f"pipeline {model}", "setting": setting, "n": len(speeds),
                             "held": None, "median": float(np.median(speeds)), "max": float(max(speeds)),
                             "values": " ".join(f"{s:,.0f}" for s in speeds), "unit": "images/s"})
    return rows


def write(rows, out, header):
    import pandas as pd

    frame = pd.DataFrame(rows)
    shown = frame.copy()
    for column in ("median", "max"):
        shown[column] = [f"{v:,.3g}" if v < 1000 else f"{v:,.0f}" for v in shown[column]]
    shown["held"] = [("" if v is None or v != v else int(v)) for v in shown["held"]]
    return report.write_csv_and_markdown(frame, shown, out, "tf_data_autotune",
                                         "tf.data's autotuner on and off (benchmarks/tf_data_autotune.py)", header)


def main(argv=None):
    p = report.probe_parser(__doc__, "tf-data-autotune")
    p.add_argument("--model", default="resnet20", help="the fit_wait model")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--calls", type=int, default=4)
    p.add_argument("--processes", type=int, default=3)
    p.add_argument("--fit-model", default="lenet5_modern")
    p.add_argument("--epochs", type=int, default=4, help="0 leaves out the training.fit runs")
    p.add_argument("--epoch-processes", type=int, default=2)
    p.add_argument("--pipeline-processes", type=int, default=2)
    p.add_argument("--no-pipelines", action="store_true")
    args = p.parse_args(argv)
    if report.answer_child(args, lambda task: CHILDREN[task["kind"]](task)):
        return 0
    report.check_counts(p, args, ("batch", "steps", "calls", "processes"))
    return report.run_probe(
        p, argv, __file__, plan(args), args.timeout,
        lambda task: f"{task['kind']} {task.get('model')} autotune {task['setting']}",
        lambda results, header: write(summarize(results), args.out, header), echo=True)


if __name__ == "__main__":
    sys.exit(main())
