"""Training and inference speed of the zoo side by side with keras.applications and PyTorch on this machine
(a benchmark, not a test: run it on an idle machine).

    python benchmarks/speed.py --quick                      # a subset that checks the whole script (minutes)
    python benchmarks/speed.py                              # everything: hours on 2 CPU cores
    python benchmarks/speed.py --models resnet20 lenet5_modern --precisions float32 mixed_bfloat16
    python benchmarks/speed.py --write-readme README.md     # also the README's Performance table
    python benchmarks/speed.py --resume                     # go on with a stopped run (the same arguments)

What it measures, each configuration in its own child process (a fresh TensorFlow or PyTorch; peers are
run alternately, the order rotated each repeat, and the best of --repeats kept; the Keras models of one name
that can share a process, ours and keras.applications' or ours with Keras's batch norm, train and predict in one
child with their calls alternated, while each also warms up alone in a child of its own for its compile time and
peak memory):
- training images/s in the steady state after warm-up (synthetic data in memory; the warm-up's extra
  time over the steady state is reported apart as compile_s), peak resident memory of the model's own child
  after training (ru_maxrss; after the warm-up for a model timed in a shared child), inference latency at
  batch 1 (predict_on_batch / eager, median) and images/s at batch 32, for lenet5, alexnet, vgg16, resnet50,
  googlenet, nin, resnet20 at their input sizes;
- peers: keras.applications VGG16 and ResNet50 (the same math in the same framework), torchvision vgg16
  and resnet50, and PyTorch twins of lenet5, lenet5_modern and resnet20 (benchmarks/torch_twins.py; their
  parameter counts are printed next to ours);
- knobs: jit_compile on/off; float32, the mixed_bfloat16 policy, and TensorFlow's oneDNN
  auto-mixed-precision graph rewrite (grappler's auto_mixed_precision_onednn_bfloat16: float32 model,
  bfloat16 arithmetic; PyTorch's peer is bfloat16 autocast); steps_per_execution (by default 1 and each
  model's own from its registry spec, what apps/train.py trains it with); thread count;
- the machine's limit: a large float32 and bfloat16 matmul in TensorFlow and PyTorch (GFLOP/s), and each
  model's achieved training GFLOP/s as a fraction of it (FLOP convention: benchmarks/speedlib.py);
- tf.data: the package's Fashion-MNIST pipeline at each model's input size (benchmarks/input_pipeline.py)
  against the images/s the model consumes;
- LiteRT (ai_edge_litert, XNNPACK) float32 and int8 against Keras predict at batch 1 (the .tflite files
  come from keras_cnns.export), next to PyTorch eager's batch-1 latency from the model rows;
- --keras-batch-norm resnet20 resnet50: those models also with Keras 3's own BatchNormalization in place of
  the zoo's keras_cnns.layers.BatchNormalization (TensorFlow's fused kernel), a peer at the same setting;
- --backends jax torch: our own models on Keras 3's JAX and PyTorch backends (float32, each backend's
  default compilation: JAX jit-compiled, PyTorch eager), in the ratio table as peers of the TensorFlow rows.

Writes benchmarks/results/speed.csv (long form: one metric a row), speed.md (opening with issue 10's targets read
off the run: speedlib.target_rows), speed.png (ours/peer ratios) and
speed-knobs.png (each setting's training speed over the model's float32 one), and speed-progress.json (the machine
line, the plan and each finished comparison: what --resume goes on from). Without PyTorch the PyTorch rows are
replaced by a note saying how to install it.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_HERE = os.path.join(_ROOT, "benchmarks")
sys.path[:] = [_ROOT] + [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.append(_HERE)  # report.py, speedlib.py, torch_twins.py, input_pipeline.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import speedlib  # noqa: E402
import torch_twins  # noqa: E402  (imports torch only when a peer is built)
from keras_cnns.cli import ONEDNN_ENV  # noqa: E402  (imports no TensorFlow)

MODELS = ("lenet5", "lenet5_modern", "alexnet", "vgg16", "resnet50", "googlenet", "nin", "resnet20")
PRECISIONS = ("float32", "mixed_bfloat16", "onednn_amp", "onednn_float32")
TORCH_PRECISION = {"float32": "float32", "mixed_bfloat16": "bf16_autocast", "onednn_amp": "bf16_autocast",
                   "onednn_float32": "float32"}
# TensorFlow runs its oneDNN kernels by default only on CPUs with AVX-512 VNNI, AVX-512 BF16 or AMX (elsewhere
# its own Eigen kernels); these paths set TF_ENABLE_ONEDNN_OPTS=1 in the child, whatever the CPU. The bfloat16
# graph rewrite (onednn_amp) is a oneDNN pass, so it runs with oneDNN on.
ONEDNN_PRECISIONS = ("onednn_amp", "onednn_float32")
LITERT_MODELS = ("lenet5", "lenet5_modern", "resnet20", "resnet50")
RESULT_PREFIX = "SPEED_RESULT "
README_BEGIN = "<!-- speed-table: written by benchmarks/speed.py -->"
README_END = "<!-- /speed-table -->"
DEFAULT_SPE = "default"  # --spe's word for each model's own steps_per_execution (its registry spec)
SHARED_LABEL = "Keras, one process"  # a keras_shared task's framework (its rows carry each member's)
SHARED_ROUNDS = 3  # a keras_shared child's alternated training rounds: each fills --min-seconds / SHARED_ROUNDS


# --- child processes: one configuration each ----------------------------------------------------------

def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kilobytes


def steps_filling(seconds, seconds_per_step, unit_steps=1):
    """The number of steps, a multiple of unit_steps and at least one unit, that fills `seconds`."""
    return max(unit_steps, -(-int(seconds / max(seconds_per_step, 1e-6)) // unit_steps) * unit_steps)


def _steady(run_steps, unit_steps, min_seconds):
    """(seconds per step, steps timed): one probe of `unit_steps`, then enough steps (a multiple of
    unit_steps) to fill `min_seconds`."""
    start = time.perf_counter()
    run_steps(unit_steps)
    probe = (time.perf_counter() - start) / unit_steps
    steps = steps_filling(min_seconds, probe, unit_steps)
    start = time.perf_counter()
    run_steps(steps)
    return (time.perf_counter() - start) / steps, steps


def warm_up(run_steps, unit, task):
    """(seconds per step of the first steady unit, compile seconds, note) after warming a training loop up.

    The first `unit` steps trace and compile; the second `unit` is the first steady one, and compile_s is
    the first's excess over it. If that second unit already took more than task["max_step_seconds"] a
    step (a path this CPU has no fast kernels for), the note says so and it is the measurement; otherwise
    the rest of task["warmup_steps"] runs and the note is empty."""
    start = time.perf_counter()
    run_steps(unit)
    first = time.perf_counter() - start
    start = time.perf_counter()
    run_steps(unit)
    second = (time.perf_counter() - start) / unit
    compile_s = max(0.0, first - second * unit)
    if second > task["max_step_seconds"]:
        return second, compile_s, f"one step took {second:.0f} s (> --max-step-seconds): timed on {unit} step(s)"
    extra = task["warmup_steps"] - 2 * unit
    if extra > 0:
        run_steps(-(-extra // unit) * unit)
    return second, compile_s, ""


def warm_then_time(run_steps, unit, task):
    """(seconds per step, compile seconds, note) of a training loop: :func:`warm_up`, then the steady state."""
    second, compile_s, note = warm_up(run_steps, unit, task)
    if note:
        return second, compile_s, note
    per_step, _ = _steady(run_steps, unit, task["min_seconds"])
    return per_step, compile_s, ""


def fit_steps(model, x, y, loss, task):
    """Compiles `model` for training at the task's setting (SGD with momentum, jit, steps per execution) and
    returns run_steps(n): model.fit over n steps of the one in-memory batch (x, y)."""
    import keras
    import tensorflow as tf
    from keras_cnns.data.pipeline import tuning_options

    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=loss,
                  jit_compile=bool(task["jit"]), steps_per_execution=task["spe"])
    # tf.data's autotuner off, as in the package's pipelines: with it on, the end of each fit() call (one
    # timing window) waited in about half of the calls for the tuner thread's next wake (10.23 s after the
    # window began for a 10 s window), the "slow level" of docs/performance.md's open question 1
    data = tf.data.Dataset.from_tensors((x, y)).repeat().with_options(tuning_options())

    def run_steps(n):
        model.fit(data, steps_per_epoch=n, epochs=1, verbose=0, shuffle=False)
    return run_steps


def random_batch(model, batch, seed=0):
    """A random batch (images, labels) of `batch` for `model`'s input and classes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + tuple(model.input_shape[1:])).astype("float32")
    return x, rng.integers(0, model.output_shape[-1], size=(batch,)).astype("int32")


def keras_model(task):
    import keras
    if task["framework"] == "keras.applications":
        return speedlib.keras_applications_model(task["model"]), keras.losses.SparseCategoricalCrossentropy()
    from keras_cnns import get_model, get_spec
    from keras_cnns.losses import loss_and_metric
    spec = get_spec(task["model"])
    model = get_model(spec.name)
    if task["framework"] == speedlib.KERAS_BN:
        model = speedlib.with_keras_batch_norm(model)
    return model, loss_and_metric(spec.output)[0]


def keras_settings(task):
    """A Keras child's thread count and precision (its dtype policy and graph rewrite)."""
    import keras
    import tensorflow as tf
    from keras_cnns.training.fit import GRAPH_REWRITES

    speedlib.set_tf_threads(task["threads"])  # tf.data feeds every backend
    if keras.backend.backend() == "torch":
        import torch
        torch.set_num_threads(task["threads"])
    if task["precision"] in GRAPH_REWRITES:  # the same grappler option as training.fit(precision="onednn_amp")
        tf.config.optimizer.set_experimental_options({GRAPH_REWRITES[task["precision"]]: True})
    keras.config.set_dtype_policy("mixed_bfloat16" if task["precision"] == "mixed_bfloat16" else "float32")


def child_keras(task):
    """Ours or keras.applications: train (fit on an in-memory batch), then predict; returns metric rows.
    task["steady"] False (a member of a keras_shared task, which times its training): warm-up only, for compile_s
    and the peak memory of this model alone."""
    import keras
    import numpy as np
    from keras_cnns.anatomy import count_params
    from keras_cnns.inference import median_latency_ms

    keras_settings(task)
    model, loss = keras_model(task)
    rows, batch, spe = [], task["batch"], task["spe"]
    shape = tuple(model.input_shape[1:])
    x, y = random_batch(model, batch)
    assert keras.backend.backend() == task.get("backend", "tensorflow"), keras.backend.backend()
    out = {"flops_per_image": speedlib.flops_per_image(model) if task["framework"] == speedlib.OURS else None,
           "params": count_params(model)}
    if task["train"]:
        run_steps = fit_steps(model, x, y, loss, task)
        if task.get("steady", True):
            per_step, compile_s, out["note"] = warm_then_time(run_steps, spe, task)
            rows.append(("train_images_per_s", batch / per_step, "images/s"))
        else:
            _, compile_s, _ = warm_up(run_steps, spe, task)
        rows += [("compile_s", compile_s, "s"), ("peak_rss_mb", _peak_rss_mb(), "MB")]
    if task["infer"]:
        rows.append(("latency_b1_ms", median_latency_ms(model.predict_on_batch, shape, task["latency_repeats"]),
                     "ms"))
    if task["infer"] and task.get("batch32", True):
        x32 = np.random.default_rng(1).standard_normal((32,) + shape).astype("float32")
        model.predict_on_batch(x32)
        per_step, _ = _steady(lambda n: [model.predict_on_batch(x32) for _ in range(n)], 1, task["min_seconds"])
        rows.append(("images_per_s_b32", 32 / per_step, "images/s"))
    out["rows"] = rows
    return out


def alternated_training(built, x, y, task, rounds):
    """({i: seconds per training step}, {i: note}) of the (model, loss) pairs in `built` on the batch (x, y) at the
    task's setting (:func:`fit_steps`): each warmed up (:func:`warm_up`), then `rounds` rounds of its steps that fill
    --min-seconds / rounds, the models' rounds alternated (report.median_ms_alternated), the median round kept. A
    model too slow to repeat keeps its first steady unit as the measurement, and its note says so."""
    from report import median_ms_alternated

    per_step, steps, timed, notes = {}, {}, {}, {}
    for i, (model, loss) in enumerate(built):
        run_steps = fit_steps(model, x, y, loss, task)
        per_step[i], _, note = warm_up(run_steps, task["spe"], task)
        if note:
            notes[i] = note
            continue
        steps[i] = steps_filling(task["min_seconds"] / rounds, per_step[i], task["spe"])
        timed[i] = lambda run_steps=run_steps, n=steps[i]: run_steps(n)
    for i, ms in median_ms_alternated(timed, rounds, warm=False).items():
        per_step[i] = ms / 1000.0 / steps[i]
    return per_step, notes


def child_keras_shared(task):
    """The Keras models of one name in task["members"] (ours, keras.applications', ours with Keras's batch norm:
    frameworks that can share a process) in one child, timed alternately (report.median_ms_alternated), so one
    machine state falls on all of them: training images/s (each warmed up first, then SHARED_ROUNDS rounds of
    its steps that fill --min-seconds / SHARED_ROUNDS, the median round kept), batch-1 latency and batch-32
    images/s. Rows: (metric, value, unit, framework, impl); member_params: [framework, impl, parameters] of each.
    Each member's compile_s and peak memory come from a child of its own (child_keras, task["steady"] False)."""
    import numpy as np
    from keras_cnns.anatomy import count_params
    from report import median_ms_alternated

    keras_settings(task)
    built = [keras_model(dict(task, **member)) for member in task["members"]]
    models = [model for model, _ in built]
    shape = tuple(models[0].input_shape[1:])
    rows, notes = [], []
    if task["train"]:
        x, y = random_batch(models[0], task["batch"])
        per_step, slow = alternated_training(built, x, y, task, SHARED_ROUNDS)
        notes += [f"{task['members'][i]['framework']}: {note}" for i, note in slow.items()]
        rows += [("train_images_per_s", task["batch"] / per_step[i], "images/s", m["framework"], m["impl"])
                 for i, m in enumerate(task["members"])]
    else:
        for model in models:  # predict jit-compiled or not as the setting says (Keras's "auto" picks XLA on a GPU)
            model.compile(jit_compile=bool(task["jit"]))
    if task["infer"]:
        x1 = np.zeros((1,) + shape, np.float32)  # as keras_cnns.inference.median_latency_ms times
        ms = median_ms_alternated({i: lambda m=m: m.predict_on_batch(x1) for i, m in enumerate(models)},
                                  task["latency_repeats"])
        rows += [("latency_b1_ms", ms[i], "ms", m["framework"], m["impl"]) for i, m in enumerate(task["members"])]
    if task["infer"] and task.get("batch32", True):
        x32 = np.random.default_rng(1).standard_normal((32,) + shape).astype("float32")
        models[0].predict_on_batch(x32)
        start = time.perf_counter()
        models[0].predict_on_batch(x32)
        calls = max(3, steps_filling(task["min_seconds"], time.perf_counter() - start))  # --min-seconds each
        ms = median_ms_alternated({i: lambda m=m: m.predict_on_batch(x32) for i, m in enumerate(models)}, calls)
        rows += [("images_per_s_b32", 32000.0 / ms[i], "images/s", m["framework"], m["impl"])
                 for i, m in enumerate(task["members"])]
    ours = [m for member, m in zip(task["members"], models) if member["framework"] == speedlib.OURS]
    return {"rows": rows, "note": "; ".join(notes),
            "flops_per_image": speedlib.flops_per_image(ours[0]) if ours else None,
            "member_params": [[m["framework"], m["impl"], count_params(model)]
                              for m, model in zip(task["members"], models)]}


def child_torch(task):
    """A PyTorch peer: train (SGD, the peer's loss: torch_twins.loss), then eager inference; returns metric
    rows."""
    import torch
    from report import median_ms

    torch.set_num_threads(task["threads"])
    model, shape = torch_twins.build(task["model"])
    bf16 = task["precision"] == "bf16_autocast"
    autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else (lambda: torch.autocast(
        "cpu", enabled=False))
    batch, rows = task["batch"], []
    out = {"params": torch_twins.count_parameters(model), "flops_per_image": None}
    if task["train"]:
        model.train()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x = torch.randn((batch,) + shape)
        criterion = torch_twins.loss(task["model"])
        y = torch.randint(0, torch_twins.num_classes(task["model"]), (batch,))

        def run_steps(n):
            for _ in range(n):
                optimizer.zero_grad(set_to_none=True)
                with autocast():
                    loss = criterion(model(x), y)
                loss.backward()
                optimizer.step()

        per_step, compile_s, out["note"] = warm_then_time(run_steps, 1, task)
        rows += [("train_images_per_s", batch / per_step, "images/s"), ("compile_s", compile_s, "s"),
                 ("peak_rss_mb", _peak_rss_mb(), "MB")]
    if task["infer"]:
        model.eval()

        def predict(images):
            with torch.inference_mode(), autocast():
                return model(images)

        x1 = torch.zeros((1,) + shape)  # NCHW, PyTorch's own layout: no conversion is timed
        rows.append(("latency_b1_ms", median_ms(lambda: predict(x1), task["latency_repeats"]), "ms"))
    if task["infer"] and task.get("batch32", True):
        x32 = torch.zeros((32,) + shape)
        predict(x32)
        per_step, _ = _steady(lambda n: [predict(x32) for _ in range(n)], 1, task["min_seconds"])
        rows.append(("images_per_s_b32", 32 / per_step, "images/s"))
    out["rows"] = rows
    return out


def child_matmul(task):
    """GFLOP/s of a large square matmul in float32 and bfloat16 (TensorFlow or PyTorch).

    n is task["n"], or smaller where one product would take more than task["min_seconds"] (a probe at
    n = 512 estimates the rate: a dtype without fast kernels gets a smaller matrix, not an hour)."""
    rows = []
    if task["framework"] == "TensorFlow":
        import tensorflow as tf
        speedlib.set_tf_threads(task["threads"])

        def product_of(n, dtype):
            a = tf.cast(tf.random.normal((n, n)), dtype)
            product = tf.function(lambda m: tf.reduce_sum(tf.cast(tf.matmul(m, m)[0, :1], "float32")))
            product(a)
            return lambda k: [product(a).numpy() for _ in range(k)]
    else:
        import torch
        torch.set_num_threads(task["threads"])

        def product_of(n, dtype):
            a = torch.randn(n, n).to(getattr(torch, dtype))
            torch.matmul(a, a)
            return lambda k: [torch.matmul(a, a) for _ in range(k)]
    for dtype in ("float32", "bfloat16"):
        probe_n = min(512, task["n"])
        per, _ = _steady(product_of(probe_n, dtype), 1, 0.2)
        rate = speedlib.matmul_gflops(probe_n, per)
        n = max(probe_n, min(task["n"], int((rate * 1e9 * task["min_seconds"] / 2) ** (1 / 3)) // 256 * 256))
        per, _ = _steady(product_of(n, dtype), 1, task["min_seconds"])
        rows.append(("gflops", speedlib.matmul_gflops(n, per), "GFLOP/s", dtype, n))
    return {"rows": rows}


def child_pipeline(task):
    """The package's Fashion-MNIST tf.data pipeline at the model's input size, images/s at the batch."""
    import input_pipeline
    from keras_cnns import data, get_spec
    speedlib.set_tf_threads(task["threads"])
    spec = get_spec(task["model"])
    source = data.load_source("fashion_mnist")
    result, cache = input_pipeline.model_input_throughput(source, spec.input_shape, task["batch"], task["batches"])
    return {"rows": [("pipeline_images_per_s", result["images_per_second"], "images/s", cache)]}


def child_litert(task):
    """Batch-1 latency of our model as LiteRT float32 and int8 (via keras_cnns.export) and Keras predict."""
    import tempfile

    import numpy as np
    from keras_cnns import get_model, get_spec
    from keras_cnns.data.preprocessing import Preprocessing
    from keras_cnns.export.savedmodel import export_savedmodel
    from keras_cnns.inference import median_latency_ms

    speedlib.set_tf_threads(task["threads"])
    spec = get_spec(task["model"])
    model = get_model(spec.name)
    h, w, c = spec.input_shape
    rows = [("latency_b1_ms", median_latency_ms(model.predict_on_batch, (h, w, c), task["latency_repeats"]), "ms",
             speedlib.KERAS_PREDICT)]
    calibration = np.random.default_rng(0).standard_normal((8, h, w, c)).astype("float32")
    with tempfile.TemporaryDirectory() as tmp:
        saved = export_savedmodel(model, os.path.join(tmp, "saved"), output="probabilities", uint8_endpoint=False,
                                  preprocessing=Preprocessing(size=(h, w), channels=c))
        interpreters = speedlib.litert_interpreters(saved, tmp, calibration, task["threads"])
        for precision, label in (("float32", speedlib.LITERT_FLOAT32), ("int8", speedlib.LITERT_INT8)):
            interpreter = interpreters[precision]
            inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]

            def predict(images, interpreter=interpreter, inp=inp, outp=outp):
                interpreter.set_tensor(inp["index"], images)
                interpreter.invoke()
                return interpreter.get_tensor(outp["index"])

            rows.append(("latency_b1_ms", median_latency_ms(predict, (h, w, c), task["latency_repeats"]), "ms", label))
    return {"rows": rows}


def child_specs(task):
    """The registry's steps_per_execution of each model in task["models"] (a child, so that the parent
    imports no framework)."""
    from keras_cnns.registry import get_spec

    return {"rows": [], "steps_per_execution": {m: get_spec(m).steps_per_execution for m in task["models"]}}


CHILDREN = {"keras": child_keras, "keras_shared": child_keras_shared, "torch": child_torch, "matmul": child_matmul,
            "pipeline": child_pipeline, "litert": child_litert, "specs": child_specs}


def child_main(task_json):
    task = json.loads(task_json)
    result = CHILDREN[task["kind"]](task)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# --- the parent: plan, run alternately, write ---------------------------------------------------------

def uses_onednn(task):
    """Whether a task's child runs TensorFlow's oneDNN kernels: the oneDNN precisions, and the matmul row
    that says so (a matmul task has no precision)."""
    return bool(task.get("onednn")) or task.get("precision") in ONEDNN_PRECISIONS


def run_child(task, timeout, env=None):
    """Runs one task in a fresh interpreter; returns (result dict or None, error text or None)."""
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(task)]
    if task.get("backend"):
        env = dict(os.environ if env is None else env, KERAS_BACKEND=task["backend"])
    if uses_onednn(task):
        env = dict(os.environ if env is None else env, **{ONEDNN_ENV: "1"})
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout} s"
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):]), None
    tail = (proc.stderr or proc.stdout).strip().splitlines()
    return None, f"exit {proc.returncode}: {tail[-1] if tail else 'no output'}"


def settings(args, default_spe=1):
    """The (precision, jit, steps_per_execution) settings a model is measured at: every combination of
    --precisions, --jit and --spe, or with --one-at-a-time the first of each (the baseline) and then each
    knob's other values with the others at the baseline (what one knob does, in a fraction of the time).

    --spe's word "default" is `default_spe`, the model's own steps per call (its registry spec's
    steps_per_execution: what apps/train.py trains it with); a setting met twice that way is measured once."""
    spe = list(dict.fromkeys(default_spe if s == DEFAULT_SPE else s for s in args.spe))
    if not args.one_at_a_time:
        return [(p, j, s) for p in args.precisions for j in args.jit for s in spe]
    p0, j0, s0 = args.precisions[0], args.jit[0], spe[0]
    return ([(p0, j0, s0)] + [(p, j0, s0) for p in args.precisions[1:]]
            + [(p0, j, s0) for j in args.jit[1:]] + [(p0, j0, s) for s in spe[1:]])


def registry_spe(args, timeout):
    """{model: its registry spec's steps_per_execution} where --spe names "default" (read in a child), else {}."""
    if DEFAULT_SPE not in args.spe:
        return {}
    result, error = run_child({"kind": "specs", "models": list(args.models)}, timeout)
    if error:
        raise SystemExit(f"speed.py: could not read the models' steps_per_execution from the registry: {error}")
    return result["steps_per_execution"]


def plan(args, torch_ok, installed=lambda module: importlib.util.find_spec(module) is not None, model_spe=None):
    """The groups of tasks; the members of a group are run alternately, --repeats times. model_spe: {model:
    steps_per_execution} for --spe's "default" (:func:`registry_spe`; a model not in it: 1)."""
    base = {"batch": args.batch, "warmup_steps": args.warmup_steps, "min_seconds": args.min_seconds,
            "latency_repeats": args.latency_repeats, "max_step_seconds": args.max_step_seconds}
    groups = []
    for threads in args.threads:
        if not args.no_matmul:
            matmul = dict(kind="matmul", n=args.matmul_n, threads=threads, min_seconds=args.min_seconds)
            groups.append([dict(matmul, framework="TensorFlow", impl="TensorFlow"),
                           dict(matmul, framework="TensorFlow", impl="TensorFlow oneDNN", onednn=True)]
                          + [dict(matmul, framework="PyTorch", impl="PyTorch")] * torch_ok)
        for model in args.models:
            infer_only = model in args.infer_only
            for precision, jit, spe in settings(args, (model_spe or {}).get(model, 1)):
                common = dict(base, model=model, precision=precision, jit=jit, spe=spe, threads=threads,
                              train=True, infer=not args.no_infer)
                if infer_only:
                    if jit or spe != 1 or speedlib.PRECISION_CLASS[precision] != "float32":
                        continue
                    common["train"] = False
                    common["batch32"] = not args.quick  # --quick: batch-1 latency only
                group = [dict(common, kind="keras", framework=speedlib.OURS, impl=model)]
                if model in speedlib.KERAS_APPLICATIONS and not args.no_peers:
                    group.append(dict(common, kind="keras", framework="keras.applications",
                                      impl=speedlib.KERAS_APPLICATIONS[model]))
                if model in args.keras_batch_norm and not infer_only:
                    group.append(dict(common, kind="keras", framework=speedlib.KERAS_BN, impl=model))
                if len(group) > 1:  # the Keras peers are timed in one child, alternated; each one's
                    # compile time and peak memory come from a child of its own
                    members = [dict(framework=t["framework"], impl=t["impl"]) for t in group]
                    group = [dict(t, infer=False, steady=False) for t in group if t["train"]] + [dict(
                        common, kind="keras_shared", framework=SHARED_LABEL, members=members,
                        impl=", ".join(f"{m['framework']} {m['impl']}" for m in members))]
                first_setting = not jit and spe == 1
                torch_precision = TORCH_PRECISION[precision]
                # one PyTorch peer per PyTorch precision: the first of our precisions that maps to it gets it
                peer_owner = next(p for p in args.precisions if TORCH_PRECISION[p] == torch_precision)
                if (model in torch_twins.PEERS and torch_ok and first_setting and not args.no_peers
                        and precision == peer_owner):
                    impl = f"torchvision {model}" if model in torch_twins.TORCHVISION else f"twin {model}"
                    group.append(dict(common, kind="torch", framework="PyTorch", impl=impl,
                                      precision=torch_precision, jit=False, spe=1))
                if first_setting and precision == "float32":
                    # Keras 3's other backends: float32, each backend's default (JAX jit-compiles every step,
                    # PyTorch runs eagerly), fed by the same tf.data pipeline, which Keras converts per batch
                    group += [dict(common, kind="keras", framework=speedlib.OTHER_BACKENDS[b], impl=model, backend=b,
                                   jit=b == "jax") for b in args.backends if installed(b)]
                groups.append(group)
        if not args.no_pipeline:
            groups += [[dict(kind="pipeline", framework="tf.data", model=m, batch=args.batch,
                             batches=args.pipeline_batches, threads=threads)]
                       for m in args.models if m not in args.infer_only]
        if not args.no_litert:
            groups += [[dict(kind="litert", framework="LiteRT", model=m, threads=threads,
                             latency_repeats=args.latency_repeats)] for m in args.litert_models]
    return groups


def to_rows(task, result, repeat):
    """The child's metrics as long rows of the CSV."""
    rows = []
    common = {"framework": task["framework"], "model": task.get("model", ""), "impl": task.get("impl", ""),
              "precision": task.get("precision", ""), "jit": task.get("jit", ""), "spe": task.get("spe", ""),
              "threads": task["threads"], "batch": task.get("batch", ""), "repeat": repeat,
              "note": result.get("note", "")}
    for item in result["rows"]:
        metric, value, unit = item[:3]
        row = dict(common, section="model" if task["kind"] in ("keras", "keras_shared", "torch") else task["kind"],
                   metric=metric, value=float(value), unit=unit)
        if task["kind"] == "keras_shared":
            row.update(framework=item[3], impl=item[4])
        elif task["kind"] == "matmul":
            row.update(precision=item[3], model=f"matmul {item[4]}x{item[4]}", impl=task["impl"],
                       batch="")
        elif task["kind"] == "pipeline":
            row.update(impl=f"Fashion-MNIST {item[3]}", precision="float32")
        elif task["kind"] == "litert":
            row.update(impl=item[3], precision="int8" if "int8" in item[3] else "float32", batch=1)
        rows.append(row)
    return rows


def versions():
    """Installed versions, read from the package metadata (no framework is imported in the parent)."""
    from importlib import metadata

    def version(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None
    return {"TensorFlow": version("tensorflow"), "Keras": version("keras"), "PyTorch": version("torch")}


QUICK = dict(models=["lenet5_modern", "resnet20", "resnet50"], infer_only=["resnet50"], repeats=1,
             warmup_steps=2, min_seconds=1.0, latency_repeats=20, matmul_n=1024, pipeline_batches=20,
             litert_models=["lenet5_modern"], spe=[1], jit=[False], precisions=["float32"],
             # PyTorch's OpenMP threads spin while they wait; on a busy machine (where a check may run) they
             # then crawl, so the check lets them sleep. The full run keeps the library's default.
             omp_wait_policy="PASSIVE")


def _spe_value(text):
    """One --spe value: a positive integer or the word "default"."""
    if text == DEFAULT_SPE:
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or {DEFAULT_SPE!r}, received {text!r}")
    return value


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="examples:\n  python benchmarks/speed.py --quick\n"
                                       "  python benchmarks/speed.py --models resnet20 --jit off on --spe 1 8\n"
                                       "  python benchmarks/speed.py --write-readme README.md")
    p.add_argument("--quick", action="store_true",
                   help="lenet5_modern and resnet20 (train + infer) vs their PyTorch twins, resnet50 inference vs "
                        "keras.applications and torchvision, the knobs on lenet5_modern, 1 repeat")
    p.add_argument("--models", nargs="+", default=None, choices=MODELS)
    p.add_argument("--infer-only", nargs="*", default=None, choices=MODELS,
                   help="models measured at inference only (float32 math: the float32 and onednn_float32 settings)")
    p.add_argument("--precisions", nargs="+", default=None, choices=PRECISIONS)
    p.add_argument("--jit", nargs="+", default=None, choices=("off", "on"))
    p.add_argument("--spe", nargs="+", type=_spe_value, default=None, metavar="SPE",
                   help=f"steps_per_execution values (positive integers), or {DEFAULT_SPE!r}: each model's own, "
                        "from its registry spec, what apps/train.py trains it with (default: 1 and "
                        f"{DEFAULT_SPE}; --quick: 1)")
    p.add_argument("--one-at-a-time", action="store_true",
                   help="vary one of --precisions, --jit, --spe at a time from the first value of each "
                        "(default: every combination)")
    p.add_argument("--no-matmul", action="store_true", help="leave out the matmul limit")
    p.add_argument("--threads", nargs="+", type=int, default=[os.cpu_count()])
    p.add_argument("--omp-wait-policy", choices=("ACTIVE", "PASSIVE"), default=None,
                   help="OMP_WAIT_POLICY of the children (PyTorch's OpenMP threads; default: the library's)")
    p.add_argument("--batch", type=int, default=32, help="training batch (peak memory is measured at it)")
    p.add_argument("--repeats", type=int, default=None, help="best of N (default 3; --quick 1)")
    p.add_argument("--warmup-steps", type=int, default=None)
    p.add_argument("--min-seconds", type=float, default=None, help="each steady-state timing lasts at least this")
    p.add_argument("--latency-repeats", type=int, default=None)
    p.add_argument("--max-step-seconds", type=float, default=120.0,
                   help="a training step slower than this (after compilation) is timed once, not repeated")
    p.add_argument("--matmul-n", type=int, default=None)
    p.add_argument("--pipeline-batches", type=int, default=None)
    p.add_argument("--litert-models", nargs="*", default=None, choices=MODELS)
    p.add_argument("--backends", nargs="*", default=[], choices=sorted(speedlib.OTHER_BACKENDS),
                   help="also our models on these Keras 3 backends (float32; one not installed is left out)")
    p.add_argument("--keras-batch-norm", nargs="*", default=[], choices=MODELS, metavar="MODEL",
                   help="also train these models (with batch norm) with keras.layers.BatchNormalization in place "
                        "of the zoo's keras_cnns.layers.BatchNormalization, as a peer at the same setting")
    p.add_argument("--no-peers", action="store_true")
    p.add_argument("--no-infer", action="store_true")
    p.add_argument("--no-pipeline", action="store_true")
    p.add_argument("--no-litert", action="store_true")
    p.add_argument("--timeout", type=int, default=3600, help="seconds one child may run")
    p.add_argument("--out", default=os.path.join(_HERE, "results"))
    p.add_argument("--resume", action="store_true",
                   help=f"go on with the stopped run under --out (its {speedlib.PROGRESS_FILE}): the comparisons it "
                        "finished are kept, an unfinished one is run again whole. Give the arguments that started it; "
                        "it must be the same machine, versions and threads")
    p.add_argument("--write-readme", metavar="README", default=None,
                   help=f"write the summary between {README_BEGIN} and {README_END} in this file")
    p.add_argument("--from-csv", metavar="CSV", default=None,
                   help="measure nothing: rewrite speed.md and the plots under --out (and --write-readme) from the "
                        "speed.csv of an earlier run")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    full = dict(models=list(MODELS), infer_only=[], repeats=3, omp_wait_policy=None,
                warmup_steps=3, min_seconds=10.0, latency_repeats=30, matmul_n=4096, pipeline_batches=100,
                litert_models=list(LITERT_MODELS), spe=[1, DEFAULT_SPE], jit=[False, True],
                precisions=list(PRECISIONS))
    defaults = QUICK if args.quick else full
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.jit = [j in (True, "on") for j in args.jit]
    return args


def quick_knobs(args):
    """--quick's knob groups on lenet5_modern: jit on, steps_per_execution 8, mixed_bfloat16 and the oneDNN
    rewrite (float32 jit-off is in the main plan), each against the PyTorch twin where precisions match."""
    base = {"batch": args.batch, "warmup_steps": args.warmup_steps, "min_seconds": args.min_seconds,
            "latency_repeats": args.latency_repeats, "max_step_seconds": args.max_step_seconds,
            "threads": args.threads[0], "train": True, "infer": False,
            "kind": "keras", "framework": speedlib.OURS, "model": "lenet5_modern", "impl": "lenet5_modern"}
    groups = [[dict(base, precision="float32", jit=True, spe=1)], [dict(base, precision="float32", jit=False, spe=8)],
              [dict(base, precision="mixed_bfloat16", jit=False, spe=1)],
              [dict(base, precision="onednn_amp", jit=False, spe=1)]]
    if importlib.util.find_spec("torch"):
        groups[2].append(dict(base, kind="torch", framework="PyTorch", impl="twin lenet5_modern",
                              precision="bf16_autocast", jit=False, spe=1))
    return groups


def _quick_order(group):
    """--quick's order: lenet5_modern float32 against its twin, LiteRT, the pipeline, the matmul, the rest."""
    task = group[0]
    if task["kind"] == "matmul":
        return 3
    if task.get("model") != "lenet5_modern":
        return 4
    if task["kind"] == "keras":
        return 0 if task["precision"] == "float32" and not task["jit"] and task["spe"] == 1 else 4
    return {"litert": 1, "pipeline": 2}[task["kind"]]


def progress_label(task):
    """The words naming a task in the progress line, each once: "keras_cnns resnet20 float32",
    "keras.applications ResNet50 float32", "TensorFlow oneDNN" (a word already in an earlier one is left out)."""
    words = []
    for key in ("framework", "impl", "model", "precision"):
        value = str(task.get(key) or "")
        if not value:
            continue
        if any(value.lower() in w.lower() for w in words):
            continue
        if words and value.lower().startswith(words[-1].lower()):
            words[-1] = value  # "TensorFlow" then "TensorFlow oneDNN": keep the longer
        else:
            words.append(value)
    return " ".join(words)


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child_main(args.child)
    if args.from_csv:
        return rewrite_from_csv(args)
    started = time.time()
    torch_ok = importlib.util.find_spec("torch") is not None
    groups = plan(args, torch_ok, model_spe=registry_spe(args, args.timeout))
    if args.quick:
        # Every kind of measurement once before the rest, so a check stopped early has still run each part.
        groups += quick_knobs(args)
        groups.sort(key=_quick_order)
    env = dict(os.environ)
    if args.omp_wait_policy:
        env["OMP_WAIT_POLICY"] = args.omp_wait_policy
    machine_line = speedlib.machine_header(versions(), args.threads, env.get("OMP_WAIT_POLICY", "default"))
    keys = [speedlib.group_key(group) for group in groups]
    os.makedirs(args.out, exist_ok=True)
    progress_path = os.path.join(args.out, speedlib.PROGRESS_FILE)
    if args.resume:
        try:
            progress = speedlib.load_progress(progress_path, machine_line, keys)
        except ValueError as e:
            print(f"speed.py --resume: {e}", file=sys.stderr)
            return 2
    else:
        command = " ".join(a for a in (sys.argv[1:] if argv is None else argv))
        progress = speedlib.new_progress(machine_line, keys, command)
    # what was run (a subset of models or knobs, the repeats) travels with the table it made
    header = f"{machine_line}; best of {args.repeats}; run: python benchmarks/speed.py {progress['command']}".rstrip()
    print(header, flush=True)
    sitting = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "configs": 0, "wall_s": 0.0, "cpu_s": 0.0}
    progress["sittings"].append(sitting)
    cpu_before = _children_cpu_seconds()
    kept = [progress["done"][key] for key in keys if key in progress["done"]]
    if kept:
        print(f"resuming {progress_path}: {len(kept)} of {len(keys)} comparisons kept from earlier sittings; "
              f"an unfinished one is run again whole", flush=True)
    total = sum(len(g) for g in groups) * args.repeats
    done = sum(len(g) for key, g in zip(keys, groups) if key in progress["done"]) * args.repeats
    for key, group in zip(keys, groups):
        if key in progress["done"]:
            continue
        record = {"rows": [], "params": [], "flops": {}, "errors": []}
        for repeat, task in speedlib.alternation(group, args.repeats):
            done += 1
            label = progress_label(task)
            timed = task["kind"] in ("keras", "keras_shared", "torch")
            extra = f" jit={task['jit']} spe={task['spe']}" if timed else ""
            print(f"[{done}/{total} {time.time() - started:.0f}s] {task['kind']}: {label}{extra} "
                  f"threads={task['threads']}", flush=True)
            result, error = run_child(task, args.timeout, env)
            if error:
                print(f"  failed: {error}", flush=True)
                record["errors"].append(f"{task['kind']} {label}: {error}")
            else:
                new = fold_result(record, task, result, repeat)
                print("  " + ", ".join(f"{r['metric']} {r['value']:.4g}" for r in new), flush=True)
            sitting.update(configs=sitting["configs"] + 1, wall_s=time.time() - started,
                           cpu_s=_children_cpu_seconds() - cpu_before)
            # After every child: a long run that is stopped keeps what it measured (the tables), and
            # --resume keeps every comparison it finished (the progress file).
            speedlib.save_progress(progress_path, progress)
            summary = write_run(args, kept + [record], header, torch_ok, progress["sittings"], done, total, plot=False)
        progress["done"][key] = record
        kept.append(record)
        speedlib.save_progress(progress_path, progress)
    summary = write_run(args, kept, header, torch_ok, progress["sittings"], done, total)
    if args.write_readme:
        from report import write_readme_section
        write_readme_section(args.write_readme, README_BEGIN, README_END, summary)
        print(f"wrote the table into {args.write_readme}")
    return 0


def _children_cpu_seconds():
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def fold_result(record, task, result, repeat):
    """Adds one child's rows, parameter counts and FLOPs to its comparison's record (JSON-ready, for --resume);
    returns the rows added."""
    if result.get("flops_per_image"):
        record["flops"][task["model"]] = result["flops_per_image"]
    if "params" in result:
        record["params"].append([task["framework"], task.get("impl", task.get("model")), result["params"]])
    record["params"] += [list(member) for member in result.get("member_params", ())]
    new = to_rows(task, result, repeat)
    record["rows"] += new
    return new


def write_run(args, records, header, torch_ok, sittings, done, total, plot=True):
    """The tables (and with plot=True the plots) of the comparisons' records so far; returns the README summary."""
    rows, flops, params, errors = [], {}, {}, []
    for record in records:
        rows += record["rows"]
        flops.update(record["flops"])
        params.update({(framework, impl): count for framework, impl, count in record["params"]})
        errors += record["errors"]
    return write(args, rows, header, run_notes(args, torch_ok, params, flops, errors, sittings, done, total),
                 flops, plot=plot)


def run_notes(args, torch_ok, params, flops, errors, sittings, done, total):
    """The notes under the header: PyTorch's absence, parameter counts, FLOPs, failures, time used."""
    notes = [] if torch_ok else [speedlib.TORCH_MISSING]
    notes += [f"parameters: {framework} {impl}: {count:,}" for (framework, impl), count in sorted(params.items())]
    notes += [f"{model}: {f:,} FLOPs forward per image (speedlib.flops_per_image)"
              for model, f in sorted(flops.items())]
    notes += errors
    notes.append(speedlib.sittings_note(sittings, done, total)
                 + (" (--quick: a check of the script, not a measurement)" if args.quick else ""))
    return notes


def rewrite_from_csv(args):
    """--from-csv: the tables, plot and README summary again from a written speed.csv (its own rows, without
    the ones write() derives), with the header and notes of its speed.md."""
    import csv

    with open(args.from_csv) as f:
        rows = [dict(r, value=float(r["value"])) for r in csv.DictReader(f)]
    for r in rows:
        r["jit"] = {"True": True, "False": False}.get(r["jit"], "")
        for key in ("spe", "threads", "batch", "repeats"):
            r[key] = int(float(r[key])) if r[key] else ""  # pandas may have written 2 as 2.0
    rows = [r for r in rows if r["metric"] not in ("consumed_images_per_s", "headroom_x")
            and not (r["section"] == "litert" and r["framework"] == "PyTorch")]
    md = os.path.join(os.path.dirname(os.path.abspath(args.from_csv)), "speed.md")
    lines = open(md).read().splitlines() if os.path.exists(md) else []
    header = next((line for line in lines if line.startswith("Machine: ")), "Machine: unknown")
    notes = [line[2:] for line in lines if line.startswith("- ")]
    flops = {r["model"]: int(r["value"]) for r in rows if r["section"] == "flops"}
    rows = [r for r in rows if r["section"] != "flops"]
    summary = write(args, rows, header, notes, flops)
    if args.write_readme:
        from report import write_readme_section
        write_readme_section(args.write_readme, README_BEGIN, README_END, summary)
    return 0


def write(args, rows, header, notes, flops, plot=True):
    """speed.csv, speed.md and (plot=True) speed.png under --out; returns the README summary."""
    rows = rows + speedlib.pipeline_headroom(rows) + speedlib.litert_torch_rows(rows)
    md, summary = speedlib.write_results(rows, args.out, header, notes, flops)
    if plot:
        paths = [speedlib.plot_ratios(rows, os.path.join(args.out, "speed.png")),
                 speedlib.plot_knobs(rows, os.path.join(args.out, "speed-knobs.png"))]
        print("\n".join(notes))
        print(", ".join([f"wrote {md}", os.path.join(args.out, "speed.csv"), *filter(None, paths)]))
    return summary


if __name__ == "__main__":
    sys.exit(main())
