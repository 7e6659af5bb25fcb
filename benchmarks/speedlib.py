"""What benchmarks/speed.py computes besides timings: FLOPs per image, the machine's description, the
alternation of peers, and the result tables (long CSV rows -> markdown tables with ours/peer ratios).

Nothing here times anything, so tests/test_speed_helpers.py can check all of it on any machine.

FLOP convention (:func:`flops_per_image`): a forward pass costs 2 FLOPs (one multiply, one add) per
*connection* of every layer that computes weighted sums of its inputs: convolutions, Dense, and the zoo's
layers that count their own connections (LeNet-5's SparseConv2D, Subsampling and EuclideanRBF). A
connection is what keras_cnns.anatomy counts and LeCun et al.'s table lists: one input edge of one unit,
a bias counting as one edge. Pooling, normalisation, activations, residual adds and concatenations are
not counted (they move memory more than they compute, and are a few per cent of the total at most). A
training step counts 3x the forward FLOPs (forward, gradient with respect to the inputs, gradient with
respect to the weights: the usual convention). Peers (keras.applications, PyTorch) are credited with the
FLOPs of our model of the same name, since they compute the same network.
"""

import json
import math
import os

from keras_cnns import machine
from keras_cnns.machine import cpu_model  # noqa: F401 (the header's, and the tests')
from keras_cnns.paths import atomic_write_text

TORCH_MISSING = "PyTorch not installed: pip install -r benchmarks/requirements.txt"
TRAIN_FLOPS_PER_FORWARD = 3
OURS = "keras_cnns"
OTHER_BACKENDS = {"jax": "keras_cnns (Keras on JAX)", "torch": "keras_cnns (Keras on PyTorch)"}  # speed.py --backends
# speed.py --keras-batch-norm: our model with keras.layers.BatchNormalization in place of the fused one
KERAS_BN = "keras_cnns (Keras BatchNormalization)"
# peers matched at our exact setting (precision, jit, steps_per_execution): the same framework's own paths
SAME_SETTING_PEERS = ("keras.applications", KERAS_BN)
PEER_FRAMEWORKS = ("keras.applications", "PyTorch", KERAS_BN, *OTHER_BACKENDS.values())
# The precision a row is compared at: our oneDNN graph rewrite computes in bfloat16 like Keras'
# mixed_bfloat16 policy and PyTorch's bfloat16 autocast; oneDNN's float32 kernels are float32.
PRECISION_CLASS = {"float32": "float32", "mixed_bfloat16": "bfloat16", "onednn_amp": "bfloat16",
                   "bf16_autocast": "bfloat16", "onednn_float32": "float32"}
# The rows of the LiteRT table: speed.py's child_litert writes the first three, :func:`litert_torch_rows` the last.
KERAS_PREDICT = "Keras predict_on_batch float32"
LITERT_FLOAT32 = "LiteRT float32 (XNNPACK)"
LITERT_INT8 = "LiteRT int8 (XNNPACK)"
# The LiteRT forms the benchmarks time (:func:`litert_interpreters`): precision -> keras_cnns.export.tflite's
# quantize mode.
LITERT_QUANTIZE = {"float32": "none", "int8": "int8"}
# The name suffix of a form opened without XNNPACK, on TensorFlow Lite's built-in kernels.
LITERT_BUILTIN = " built-in"
PYTORCH_EAGER = "PyTorch eager"
# Issue 10's targets (:func:`target_rows`): ours / keras.applications at the same setting; best ours / best
# PyTorch in training (the issue asks it at batch 16 for resnet50 and vgg16, 32 and 128 for the small models);
# LiteRT float32 over PyTorch eager and int8 over Keras float32 at batch 1; tf.data over what training consumes.
KERAS_APPLICATIONS_GOAL = 1.0
PYTORCH_TRAINING_GOALS = {"resnet50": 0.8, "vgg16": 0.8, "resnet20": 1.0, "lenet5_modern": 1.0}
LITERT_OVER_PYTORCH_GOAL = 1.0
INT8_OVER_KERAS_GOAL = 0.5
PIPELINE_HEADROOM_GOAL = 5.0


# --- FLOPs ---------------------------------------------------------------------------------------

def computes_weighted_sums(layer):
    """True for the layers whose connections count as multiply-adds (see the module docstring)."""
    import keras

    convolutions = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                    keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
    return (isinstance(layer, convolutions + (keras.layers.Dense,))
            or callable(getattr(layer, "count_connections", None)))


def _layer_rows(model):
    """(layer, its keras_cnns.anatomy row) for each layer call of a built Keras functional model, inputs left
    out."""
    from keras_cnns import anatomy

    for row in anatomy.analyze(model):
        if row.kind != "InputLayer":
            yield model.get_layer(row.name.split("#")[0]), row


def flops_per_image(model):
    """Forward FLOPs of one image through a built Keras functional model (2 per connection of the
    layers that compute weighted sums; keras_cnns.anatomy counts the connections)."""
    return sum(2 * row.connections for layer, row in _layer_rows(model) if computes_weighted_sums(layer))


def convolution_shapes(model):
    """Each distinct convolution of a built Keras functional model once, in the model's order, as a dict: input
    (H, W, C), filters, kernel_size, strides, padding, groups, dilation_rate, count (how many of the model's
    convolutions have that form) and flops (forward FLOPs of one of them on one image, counted as
    :func:`flops_per_image` counts them). The convolutions are the Conv2D layers and LeNet-5's C3
    (keras_cnns.layers.SparseConv2D), which runs as one dense valid convolution: its form adds `pairs`, the
    number of (input map, output map) pairs its table connects, and its flops count those pairs alone."""
    import keras

    from keras_cnns.layers import SparseConv2D

    shapes = {}
    for layer, row in _layer_rows(model):
        if isinstance(layer, SparseConv2D):
            form = dict(filters=layer.filters, kernel_size=layer.kernel_size, strides=layer.strides, padding="valid",
                        groups=1, dilation_rate=(1, 1), pairs=layer.num_pairs)
        elif isinstance(layer, keras.layers.Conv2D):
            form = dict(filters=layer.filters, kernel_size=layer.kernel_size, strides=layer.strides,
                        padding=layer.padding, groups=layer.groups, dilation_rate=layer.dilation_rate)
        else:
            continue
        form = dict(input=tuple(layer.input.shape[1:]), **form)
        key = tuple(form.values())
        shapes.setdefault(key, dict(form, count=0, flops=2 * row.connections))["count"] += 1
    return list(shapes.values())


def achieved_gflops(images_per_second, flops, training=True):
    """GFLOP/s a model achieves at `images_per_second` given its forward `flops` per image."""
    factor = TRAIN_FLOPS_PER_FORWARD if training else 1
    return images_per_second * flops * factor / 1e9


def matmul_gflops(n, seconds_per_product):
    """GFLOP/s of one n x n by n x n matrix product taking `seconds_per_product` (2 n^3 FLOPs)."""
    return 2.0 * n ** 3 / seconds_per_product / 1e9


# --- the machine ---------------------------------------------------------------------------------

def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The matrix-relevant flags the CPU reports (AMX, AVX-512 BF16/VNNI, AVX2), as one string."""
    wanted = ("amx_bf16", "amx_int8", "avx512_bf16", "avx512_vnni", "avx512f", "avx2")
    flags = machine.cpu_flags(cpuinfo)
    if flags is None:
        return "unknown"
    return " ".join(w for w in wanted if w in flags) or "none of " + "/".join(wanted)


def cpu_line():
    """The CPU as the benchmarks' headers name it: model, then family and the matrix-relevant flags in brackets
    ("AMD EPYC (family 26 model 2; avx512_bf16 avx512_vnni avx512f avx2)"), which tell apart two CPUs sold under
    one model name."""
    family = machine.cpu_family()
    return f"{cpu_model()} ({family + '; ' if family else ''}{cpu_flags()})"


def machine_header(versions, threads=None, omp_wait_policy="default"):
    """One line naming the machine: CPU model, family and flags, core count, framework versions, threads (left out when
    None: a benchmark that sets none).

    versions: {"TensorFlow": "2.21.0", "Keras": ..., "PyTorch": "2.13.0+cpu" or None}."""
    parts = [cpu_line(), f"{os.cpu_count()} cores"]
    for name, version in versions.items():
        missing = TORCH_MISSING if name == "PyTorch" else f"{name} not installed"
        parts.append(f"{name} {version}" if version else missing)
    if threads is not None:
        parts.append(f"threads {','.join(str(t) for t in threads)} (TF intra-op = inter-op = PyTorch = LiteRT), "
                     f"OMP_WAIT_POLICY {omp_wait_policy}")
    return "Machine: " + "; ".join(parts)


def set_tf_threads(threads):
    """TensorFlow's intra-op and inter-op pools both at `threads` (call before TensorFlow runs an op)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def litert_interpreters(savedmodel_dir, directory, calibration, threads, builtin_kernels=False):
    """{precision: LiteRT interpreter} for each of :data:`LITERT_QUANTIZE`: the SavedModel converted by
    keras_cnns.export.tflite.convert into <directory>/<precision>.tflite (int8: full integer, calibrated on
    `calibration`, float32 model inputs), opened with `threads` threads, its tensors allocated. With
    `builtin_kernels`, each file is opened a second time, under '<precision>' + :data:`LITERT_BUILTIN`, without
    the XNNPACK delegate LiteRT applies by default: TensorFlow Lite's own kernels (ruy's matrix products)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from keras_cnns.export import tflite as tflite_lib

    resolvers = {"": OpResolverType.AUTO}
    if builtin_kernels:
        resolvers[LITERT_BUILTIN] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreters = {}
    for precision, quantize in LITERT_QUANTIZE.items():
        path = tflite_lib.convert(savedmodel_dir, os.path.join(directory, f"{precision}.tflite"), quantize=quantize,
                                  representative_images=calibration if quantize == "int8" else None)
        for suffix, resolver in resolvers.items():
            interpreter = Interpreter(model_path=path, num_threads=threads, experimental_op_resolver_type=resolver)
            interpreter.allocate_tensors()
            interpreters[precision + suffix] = interpreter
    return interpreters


# --- running peers alternately -------------------------------------------------------------------

def alternation(members, repeats):
    """[(repeat, member)] running every member once per repeat, the order rotated each repeat, so no
    member always runs first (after an idle machine) or last (after a warm one)."""
    members = list(members)
    order = []
    for r in range(repeats):
        shift = r % len(members) if members else 0
        order += [(r, m) for m in members[shift:] + members[:shift]]
    return order


# The zoo models keras.applications also builds (the same math in the same framework), by builder name.
KERAS_APPLICATIONS = {"vgg16": "VGG16", "resnet50": "ResNet50"}


def keras_applications_model(name):
    """keras.applications' twin of zoo model `name` (a KERAS_APPLICATIONS key), random weights."""
    import keras

    return getattr(keras.applications, KERAS_APPLICATIONS[name])(weights=None)


def with_keras_batch_norm(model):
    """A copy of `model` (same weights) with every keras_cnns.layers.BatchNormalization replaced by
    keras.layers.BatchNormalization of the same config: what the zoo ran before the fused layer, for
    speed.py --keras-batch-norm. Raises ValueError when the model has none."""
    import keras

    from keras_cnns.layers import batch_norm

    if not any(isinstance(layer, batch_norm.BatchNormalization) for layer in model.layers):
        raise ValueError(f"{model.name} has no keras_cnns.layers.BatchNormalization to replace; "
                         f"--keras-batch-norm takes models with batch norm (the ResNets, vgg*_bn)")

    def replace(layer, config):
        if isinstance(layer, batch_norm.BatchNormalization):
            return keras.layers.BatchNormalization.from_config(config)
        return None
    copy = _rebuilt(model, replace)
    copy.set_weights(model.get_weights())
    return copy


def with_conv_bias(model, use_bias):
    """A copy of `model` whose Conv2D layers all have (use_bias=True) or lack (False) a bias, random weights:
    the zoo's bias-free convolutions against keras.applications' biased ones, for
    benchmarks/conv_bias_xla.py. Raises ValueError when the model has no Conv2D."""
    import keras

    if not any(isinstance(layer, keras.layers.Conv2D) for layer in model.layers):
        raise ValueError(f"{model.name} has no Conv2D layer to give or take a bias")

    def replace(layer, config):
        if isinstance(layer, keras.layers.Conv2D):
            return layer.__class__.from_config(dict(config, use_bias=bool(use_bias)))
        return None
    return _rebuilt(model, replace)


def _rebuilt(model, replace):
    """keras.models.clone_model with each layer rebuilt from its config, by replace(layer, config) where that
    returns a layer, else by the layer's own class."""
    import keras

    def clone(layer):
        config = layer.get_config()
        return replace(layer, config) or layer.__class__.from_config(config)
    return keras.models.clone_model(model, clone_function=clone)


# --- result tables ---------------------------------------------------------------------------------

# Best of N keeps the lowest of these and the highest of every other metric (throughputs; peak memory,
# where the highest is the honest worst case).
LOWER_IS_BETTER = ("latency_b1_ms", "compile_s")


def best_rows(rows):
    """Best of N: rows that differ only in `repeat` collapse into one holding the best value of each metric
    (highest throughput, lowest latency and compile time, highest peak memory), with `repeats` = how many
    there were (a row read back from a written CSV counts as its own `repeats`) and `worst` = the other end
    of the repeats (None where a row read back from an older CSV does not say it)."""
    keys = ("section", "framework", "model", "impl", "precision", "jit", "spe", "threads", "batch", "metric")
    best = {}
    for row in rows:
        key = tuple(row.get(k) for k in keys)
        count = int(row.get("repeats") or 1)
        worst = _number(row.get("worst"))
        if worst is None and count == 1:
            worst = row["value"]
        if key not in best:
            best[key] = dict(row, repeats=count, worst=worst)
            best[key].pop("repeat", None)
            continue
        kept = best[key]
        kept["repeats"] += count
        lower = row["metric"] in LOWER_IS_BETTER
        kept["value"] = (min if lower else max)(kept["value"], row["value"])
        if kept["worst"] is not None and worst is not None:
            kept["worst"] = (max if lower else min)(kept["worst"], worst)
        else:
            kept["worst"] = None
    return list(best.values())


def _number(value):
    """A float from a row's field, None for a missing, empty or NaN one (a CSV cell reads back as a string)."""
    if value is None or value == "":
        return None
    value = float(value)
    return None if math.isnan(value) else value


def ratio_rows(rows, metrics=("train_images_per_s", "images_per_s_b32", "latency_b1_ms")):
    """ours/peer speed ratios (> 1: ours faster) at the same model, batch, precision class and threads, from
    the model rows (the batch column is the one the metric was measured at).

    For throughputs the ratio is ours / peer; for latencies peer / ours, so every ratio reads the same
    way. A keras.applications or Keras-BatchNormalization peer is matched at the same precision, jit and
    steps_per_execution; a PyTorch peer (which has neither) against our base setting (jit off,
    steps_per_execution 1: Keras' compile() defaults; :func:`best_against_best` compares every setting)."""
    out = []
    ours = [r for r in rows if r["section"] == "model" and r["framework"] == OURS and r["metric"] in metrics]
    peers = [r for r in rows
             if r["section"] == "model" and r["framework"] in PEER_FRAMEWORKS and r["metric"] in metrics]
    for o in ours:
        for p in peers:
            same = (p["model"] == o["model"] and p["metric"] == o["metric"] and p["batch"] == o["batch"]
                    and p["threads"] == o["threads"]
                    and PRECISION_CLASS[p["precision"]] == PRECISION_CLASS[o["precision"]])
            if p["framework"] in SAME_SETTING_PEERS:
                same = same and p["jit"] == o["jit"] and p["spe"] == o["spe"] and p["precision"] == o["precision"]
            else:
                same = same and base_setting(o)
            if not same or not o["value"] or not p["value"]:
                continue
            num, den = (p, o) if o["metric"] in LOWER_IS_BETTER else (o, p)  # so that > 1 is ours faster
            low, high = quotient_span(num, den)
            batch = {"latency_b1_ms": 1, "images_per_s_b32": 32}.get(o["metric"], o["batch"])
            out.append({"model": o["model"], "metric": o["metric"], "batch": batch,
                        "precision": o["precision"], "peer_precision": p["precision"], "jit": o["jit"],
                        "spe": o["spe"], "threads": o["threads"], "peer": f"{p['framework']} {p['impl']}",
                        "ours": o["value"], "theirs": p["value"], "ratio": round(num["value"] / den["value"], 3),
                        "low": low, "high": high})
    return out


def quotient_span(numerator, denominator):
    """(lowest, highest) of numerator / denominator over the repeats of two best rows (:func:`best_rows`, each
    with its best `value` and the other end of its repeats, `worst`): the range a ratio could have taken had
    the repeats paired up differently. (None, None) where either side's worst is not known."""
    a = (numerator["value"], _number(numerator.get("worst")))
    b = (denominator["value"], _number(denominator.get("worst")))
    if None in a + b or not min(b):
        return None, None
    return round(min(a) / max(b), 3), round(max(a) / min(b), 3)


def best_against_best(rows, metric="train_images_per_s"):
    """The issue's training target read off a run: for each model, batch and thread count, our best setting
    (any precision, jit and steps_per_execution measured) against PyTorch's best (float32 or bf16 autocast),
    each named, with best ours / best PyTorch (> 1: ours faster). Models without a PyTorch row are left out.

    rows: best rows (:func:`best_rows`' output, as :func:`ratio_rows` takes them); each side's maximum is the
    same whether or not the repeats were collapsed first."""
    best = [r for r in rows if r["section"] == "model" and r["metric"] == metric and r["value"]]
    out = []
    for key in sorted({(r["model"], r["batch"], r["threads"]) for r in best if r["framework"] == OURS}, key=str):
        same = [r for r in best if (r["model"], r["batch"], r["threads"]) == key]
        ours = [r for r in same if r["framework"] == OURS]
        theirs = [r for r in same if r["framework"] == "PyTorch"]
        if not theirs:
            continue
        o, p = max(ours, key=lambda r: r["value"]), max(theirs, key=lambda r: r["value"])
        low, high = quotient_span(o, p)
        out.append({"model": key[0], "batch": key[1], "threads": key[2], "ours_setting": setting_name(o),
                    "ours": o["value"], "pytorch_setting": f"{p['precision']} ({p['impl']})", "pytorch": p["value"],
                    "ratio": round(o["value"] / p["value"], 3), "low": low, "high": high})
    return out


def pipeline_headroom(rows):
    """Rows of tf.data's images/s over the fastest our training consumes at the same model, batch and threads
    (any precision, jit and steps_per_execution measured: the most the pipeline has to deliver), with that
    consumption as a row of its own named by its setting."""
    best = best_rows(rows)
    consumed = {}
    for r in best:
        key = (r["model"], r["batch"], r["threads"])
        if r["section"] == "model" and r["framework"] == OURS and r["metric"] == "train_images_per_s" and (
                key not in consumed or r["value"] > consumed[key]["value"]):
            consumed[key] = r
    out = []
    for r in best:
        fit = consumed.get((r["model"], r["batch"], r["threads"]))
        if r["metric"] == "pipeline_images_per_s" and fit:
            out.append(dict(r, metric="consumed_images_per_s", value=fit["value"], repeats=fit["repeats"],
                            worst=fit["worst"], impl=f"keras_cnns {setting_name(fit)} fit"))
            out.append(dict(r, metric="headroom_x", value=r["value"] / fit["value"], unit="x", worst=None))
    return out


def litert_torch_rows(rows):
    """PyTorch eager batch-1 float32 latencies copied into the LiteRT table."""
    return [dict(r, section="litert", impl=f"{PYTORCH_EAGER} {r['impl']}", batch=1) for r in best_rows(rows)
            if r["framework"] == "PyTorch" and r["metric"] == "latency_b1_ms" and r["precision"] == "float32"]


def target_rows(rows):
    """Issue 10's targets read off a run's best rows (with the rows of :func:`pipeline_headroom` and
    :func:`litert_torch_rows`): one row per target and model with the figure measured, the range the repeats
    allow (:func:`quotient_span`), the goal and whether it is met. A target the run did not measure is left out;
    where a target holds at every precision (ours / keras.applications) the lowest ratio stands for all, its
    precision named. A figure that misses its goal while the range reaches it is "no (within the repeats'
    spread)": the run cannot tell it from a "yes"."""
    out = []

    def add(target, model, setting, value, goal, at_least=True, span=(None, None)):
        low, high = span
        if value >= goal if at_least else value <= goal:
            met = "yes"
        elif low is not None and (high >= goal if at_least else low <= goal):
            met = "no (within the repeats' spread)"
        else:
            met = "no"
        out.append({"target": target, "model": model, "setting": setting, "value": round(value, 3),
                    "range": "" if low is None else f"{low:.3g}-{high:.3g}",
                    "goal": f"{'>=' if at_least else '<='} {goal:g}", "met": met})

    ratios = ratio_rows(rows)
    for model in sorted({r["model"] for r in ratios}):
        for metric in ("train_images_per_s", "images_per_s_b32", "latency_b1_ms"):
            same = [r for r in ratios if r["model"] == model and r["metric"] == metric
                    and r["peer"].startswith("keras.applications")]
            if same:
                low = min(same, key=lambda r: r["ratio"])
                add(f"ours / keras.applications, {metric}", model,
                    f"{low['precision']} (lowest of {len(same)} settings)", low["ratio"], KERAS_APPLICATIONS_GOAL,
                    span=(low["low"], low["high"]))
    for v in best_against_best(rows):
        if v["model"] in PYTORCH_TRAINING_GOALS:
            add("best ours / best PyTorch, train_images_per_s", v["model"],
                f"batch {v['batch']}: {v['ours_setting']} / {v['pytorch_setting']}", v["ratio"],
                PYTORCH_TRAINING_GOALS[v["model"]], span=(v["low"], v["high"]))
    litert = [r for r in rows if r["section"] == "litert" and r["value"]]
    for model in sorted({r["model"] for r in litert}):
        latency = {r["impl"]: r for r in litert if r["model"] == model}
        torch = next((r for impl, r in latency.items() if impl.startswith(PYTORCH_EAGER)), None)
        for form, over, target, goal in (
                (LITERT_FLOAT32, torch, "LiteRT float32 / PyTorch eager", LITERT_OVER_PYTORCH_GOAL),
                (LITERT_INT8, latency.get(KERAS_PREDICT), "LiteRT int8 / Keras float32", INT8_OVER_KERAS_GOAL)):
            if form in latency and over:
                add(f"{target}, latency_b1_ms", model, latency[form]["precision"],
                    latency[form]["value"] / over["value"], goal, at_least=False,
                    span=quotient_span(latency[form], over))
    for r in rows:
        if r["section"] == "pipeline" and r["metric"] == "headroom_x":
            add("tf.data images/s / fastest training images/s", r["model"], f"batch {r['batch']}, {r['impl']}",
                r["value"], PIPELINE_HEADROOM_GOAL)
    return out


def model_table(rows, flops, limits):
    """One row per (framework, model, setting): training and inference metrics side by side, with the
    achieved GFLOP/s and its fraction of the machine's matmul limit at that precision class.

    flops: {model: forward FLOPs per image}; limits: {"float32": GFLOP/s, "bfloat16": GFLOP/s}."""
    import pandas as pd

    wanted = ("train_images_per_s", "train_spread", "compile_s", "peak_rss_mb", "latency_b1_ms", "images_per_s_b32")
    model_rows = [r for r in rows if r["section"] == "model" and r["metric"] in wanted]
    # best / worst of the repeats' training images/s, as a metric of its own (blank where the worst is unknown)
    model_rows += [dict(r, metric="train_spread", value=r["value"] / r["worst"]) for r in model_rows
                   if r["metric"] == "train_images_per_s" and r.get("worst")]
    frame = pd.DataFrame(model_rows)
    if frame.empty:
        return frame
    keys = ["model", "framework", "impl", "precision", "jit", "spe", "threads", "batch"]
    table = frame.pivot_table(index=keys, columns="metric", values="value", aggfunc="first").reset_index()
    table.columns.name = None
    for metric in wanted:
        if metric not in table:
            table[metric] = float("nan")
    gflops = [achieved_gflops(ips, flops.get(m, 0)) if flops.get(m) else float("nan")
              for ips, m in zip(table["train_images_per_s"], table["model"])]
    table["train_gflops"] = gflops
    table["pct_of_limit"] = [100.0 * g / limits[PRECISION_CLASS[p]] if limits.get(PRECISION_CLASS[p]) else float("nan")
                             for g, p in zip(gflops, table["precision"])]
    table = table[keys + list(wanted) + ["train_gflops", "pct_of_limit"]]
    if table["train_spread"].isna().all():  # a CSV written before the worst of the repeats was kept
        table = table.drop(columns="train_spread")
    return table.sort_values(["model", "framework", "precision", "jit", "spe"]).reset_index(drop=True)


def rounded(frame):
    """Three significant digits for the markdown tables (the CSV keeps every digit)."""
    def fmt(v):
        if isinstance(v, bool) or not isinstance(v, float):
            return v
        if math.isnan(v):
            return ""
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return frame.apply(lambda col: col.map(fmt))


def write_results(rows, out_dir, header, notes=(), flops=None, stem="speed"):
    """Writes <out_dir>/<stem>.csv (every row, long form, with the FLOPs counted per model as section "flops")
    and <stem>.md (header, notes, the model table,
    the ratio table and the matmul / pipeline / LiteRT tables); returns (md path, markdown summary for
    the README)."""
    import pandas as pd
    from report import markdown_table

    os.makedirs(out_dir, exist_ok=True)
    best = best_rows(rows)
    columns = ["section", "framework", "model", "impl", "precision", "jit", "spe", "threads", "batch", "metric",
               "value", "unit", "repeats", "worst", "note"]
    frame = pd.DataFrame(best, columns=columns)
    counted = [{"section": "flops", "framework": OURS, "model": m, "metric": "forward_flops_per_image",
                "value": f, "unit": "FLOP"} for m, f in sorted((flops or {}).items())]
    pd.concat([frame, pd.DataFrame(counted, columns=columns)]).to_csv(os.path.join(out_dir, f"{stem}.csv"),
                                                                      index=False)
    limits = {}
    for r in best:
        if r["section"] == "matmul":
            cls = PRECISION_CLASS.get(r["precision"], r["precision"])
            limits[cls] = max(limits.get(cls, 0.0), r["value"])
    table = model_table(best, flops or {}, limits)
    ratios = pd.DataFrame(ratio_rows(best))
    versus = pd.DataFrame(best_against_best(best))
    targets = pd.DataFrame(target_rows(best))
    parts = [f"# Speed (benchmarks/speed.py)\n\n{header}\n"]
    parts += [f"- {n}" for n in notes]
    summary = [header, ""]
    if not targets.empty:
        targets_md = markdown_table(rounded(targets))
        parts += ["\n## Issue 10's targets read off this run\n",
                  "value: the ratio the target is stated in (throughput ratios > 1 and latency ratios < 1: keras_cnns "
                  "faster), or tf.data's headroom.\n", targets_md]
        summary += ["Issue 10's targets read off this run:", "", targets_md, ""]
    if not versus.empty:
        versus_md = markdown_table(rounded(versus))
        parts += ["\n## Best keras_cnns setting against best PyTorch setting, training images/s\n",
                  "Each side's fastest setting measured in this run (ratio > 1: keras_cnns faster).\n", versus_md]
        summary += ["Best keras_cnns setting against best PyTorch setting, training images/s:", "", versus_md, ""]
    if not table.empty:
        models_md = markdown_table(rounded(table))
        parts += ["\n## Training (batch images/s, steady state) and inference\n",
                  "train_spread: the best of the repeats' training images/s over the worst (well above 1 in tables "
                  "written before session 15: tf.data's autotuner wait, docs/performance.md open question 1). "
                  "compile_s: the warm-up steps' extra time over steady state (tracing, compilation). "
                  "train_gflops: images/s x 3 x forward FLOPs; pct_of_limit: of the best large matmul at that "
                  "precision.\n", models_md]
        summary.append(models_md)
    if not ratios.empty:
        ratios_md = markdown_table(rounded(ratios))
        parts += ["\n## ours/peer (> 1: keras_cnns faster; latency ratios are peer/ours)\n", ratios_md]
        summary += ["", ratios_md]
    for section, title in (("matmul", "The machine's limit: a large matmul"),
                           ("pipeline", "tf.data input pipeline vs what the model consumes"),
                           ("litert", "Single-image latency: LiteRT (XNNPACK) vs Keras predict vs PyTorch eager")):
        sub = frame[frame["section"] == section].drop(columns=["section"]).dropna(axis=1, how="all")
        if not sub.empty:
            parts += [f"\n## {title}\n", markdown_table(rounded(sub))]
    md = os.path.join(out_dir, f"{stem}.md")
    with open(md, "w") as f:
        f.write("\n".join(parts) + "\n")
    return md, "\n".join(summary)


def plot_ratios(rows, path):
    """A horizontal bar chart of the ours/peer ratios (one bar per model, metric, precision and peer),
    with the parity line at 1; returns `path`, or None when there is no ratio to draw."""
    ratios = ratio_rows(best_rows(rows))
    if not ratios:
        return None
    labels = [f"{r['model']} {r['metric'].replace('_', ' ').replace(' b1', '').replace(' b32', '')} "
              f"b{r['batch']} {setting_name(r)} vs {r['peer']}" for r in ratios]
    return _bar_chart([r["ratio"] for r in ratios], labels, "ours / peer speed, log scale (> 1: keras_cnns faster)",
                      path)


def ratio_ticks(values):
    """The log axis's ticks for ratios: the powers of 2 from just below the smallest value (and 1) to just above
    the largest, so each reads as a plain "0.5x", "1x", "2x" (matplotlib's own log ticks between 0.3 and 3 are
    minor ones whose "3 x 10^-1" labels overlap)."""
    positive = [v for v in values if v > 0] + [1.0]
    low, high = math.floor(math.log2(min(positive))), math.ceil(math.log2(max(positive)))
    return [2.0 ** k for k in range(low, high + 1)]


def _bar_chart(values, labels, xlabel, path):
    """Horizontal bars from the parity line at 1 on a log axis (0.5x and 2x equally far from parity), green
    where a value is >= 1; written to `path`, which is returned."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(9, 0.35 * len(values) + 1.2))
    ax.barh(range(len(values)), [v - 1.0 for v in values], left=1.0,  # bars grow from parity
            color=["tab:green" if v >= 1 else "tab:red" for v in values])
    ax.set_xscale("log")
    ticks = ratio_ticks(values)
    ax.set_xticks(ticks, [f"{t:g}x" for t in ticks])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(values)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _figure(value):
    """3 significant figures without an exponent: 8,747 -> "8,747", 19.16 -> "19.2"."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def base_setting(row):
    """Whether a row ran at Keras' compile() defaults, jit off and steps_per_execution 1 (a model's registry spec
    may train with more steps per call: keras_cnns.registry.ModelSpec.steps_per_execution): what a PyTorch
    peer is compared with in the ratio table, and the base of :func:`knob_rows` in float32."""
    return not row["jit"] and row["spe"] == 1


def setting_name(row):
    """A row's precision, jit and steps_per_execution in a few words ("mixed_bfloat16 jit spe8")."""
    return f"{row['precision']}{' jit' if row['jit'] else ''}{'' if row['spe'] == 1 else ' spe' + str(row['spe'])}"


def knob_rows(rows):
    """Each of our models' best training images/s in every setting measured, over its float32, jit-off,
    steps_per_execution-1 setting at the same batch and threads: [{model, batch, setting, images_per_s,
    speedup}], the base setting included (1.0); a model measured without that setting has no rows."""
    ours = [r for r in best_rows(rows) if r["framework"] == OURS and r["metric"] == "train_images_per_s"]
    base = {(r["model"], r["batch"], r["threads"]): r["value"] for r in ours
            if r["precision"] == "float32" and base_setting(r)}
    return [{"model": r["model"], "batch": r["batch"], "setting": setting_name(r), "images_per_s": r["value"],
             "speedup": r["value"] / base[(r["model"], r["batch"], r["threads"])]}
            for r in ours if (r["model"], r["batch"], r["threads"]) in base]


def plot_knobs(rows, path):
    """A horizontal bar chart of :func:`knob_rows` (each setting's training speed over the model's float32
    one, log scale, parity at 1): which knob pays for which model, also in runs with no peer to draw a ratio
    against. Returns `path`, or None where no model was measured in more than one setting."""
    knobs = knob_rows(rows)
    if len(knobs) <= len({(k["model"], k["batch"]) for k in knobs}):
        return None
    labels = [f"{k['model']} b{k['batch']} {k['setting']} ({_figure(k['images_per_s'])} images/s)" for k in knobs]
    return _bar_chart([k["speedup"] for k in knobs], labels,
                      "training images/s over the model's float32 setting, log scale (> 1: faster)", path)


# --- a run over several sittings (speed.py --resume) ------------------------------------------------------

PROGRESS_FILE = "speed-progress.json"  # under --out, beside speed.csv


def group_key(group):
    """A comparison's identity from one sitting to the next: its tasks as JSON with sorted keys."""
    return json.dumps(group, sort_keys=True)


def new_progress(machine_line, keys, command):
    """The record of a run started afresh: the machine line it is measured on, its planned comparisons (their
    :func:`group_key` in order), the command that started it, no comparison finished, no sitting yet."""
    return {"machine": machine_line, "plan": list(keys), "command": command, "done": {}, "sittings": []}


def load_progress(path, machine_line, keys):
    """The record a stopped run left at `path`, for speed.py --resume. Raises ValueError, saying what differs
    and what to do, where there is none, or it was measured on another machine line (CPU, cores, versions,
    threads) or planned other comparisons: a resumed run's comparisons all come from one machine, and one plan."""
    if not os.path.exists(path):
        raise ValueError(f"there is no stopped run to resume: {path} does not exist. Start the run without --resume "
                         "(or give the --out of the run to resume).")
    with open(path) as f:
        progress = json.load(f)
    if progress["machine"] != machine_line:
        raise ValueError(f"the run in {path} was measured on\n  {progress['machine']}\nand this is\n  {machine_line}\n"
                         "Resume it on the same machine, versions and threads, or start afresh under another --out.")
    if progress["plan"] != list(keys):
        missing = sum(key not in progress["plan"] for key in keys)
        raise ValueError(f"the run in {path} planned {len(progress['plan'])} comparisons and these arguments plan "
                         f"{len(keys)} ({missing} of them not in its plan). Resume it with the arguments that "
                         f"started it: python benchmarks/speed.py {progress['command']}")
    return progress


def save_progress(path, progress):
    """Writes the record whole or not at all (keras_cnns.paths.atomic_write_text: a run killed while writing keeps
    the previous one)."""
    atomic_write_text(path, json.dumps(progress))


def sittings_note(sittings, measured, total):
    """The notes' line for the time a run took: `measured` of `total` configurations, wall and children's CPU
    seconds summed over its sittings, each sitting's date and share named when there was more than one (a
    comparison a sitting left unfinished is run again whole by the next, so the sittings' children can add up to
    more than `measured`; a sitting that ran none, resumed after the last comparison, is left out)."""
    sittings = [s for s in sittings if s["configs"]]
    wall = sum(s["wall_s"] for s in sittings)
    cpu = sum(s["cpu_s"] for s in sittings)
    line = f"{measured} of {total} configurations in {wall:.0f} s wall, {cpu:.0f} s CPU in the children"
    if len(sittings) > 1:
        line += f", over {len(sittings)} sittings (speed.py --resume): " + ", ".join(
            f"{s['started']} ({s['configs']} children in {s['wall_s']:.0f} s)" for s in sittings)
    return line
