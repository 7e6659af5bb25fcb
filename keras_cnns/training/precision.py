"""The precisions a model trains in, and which one a run gets when it asks for "auto".

"float32", "mixed_bfloat16" and "mixed_float16" are Keras dtype policies (float32 variables, arithmetic in 16
bits); "onednn_amp" is a float32 model whose training graph TensorFlow's grappler rewrites to bfloat16 where
oneDNN has kernels. The saved model is float32 in every case (keras_cnns.training.fit).

"auto" (apps/train.py's default) picks the model's ``cpu_bfloat16`` precision (its registry spec) on
a CPU with bfloat16 arithmetic (AVX-512 BF16 or AMX), TensorFlow's oneDNN kernels on and no GPU visible, and
float32 everywhere else: bfloat16 made every model 4-8x slower on a CPU without those instructions, and the
GPU defaults were never measured (docs/training.md, "Precision").
"""

AUTO = "auto"
PRECISIONS = (AUTO, "float32", "mixed_bfloat16", "mixed_float16", "onednn_amp")
# A float32 model whose training graph TensorFlow's grappler rewrites to bfloat16 where oneDNN has kernels
# (docs/performance.md, "The precision knobs"): no Keras dtype policy, a graph option while the model trains.
GRAPH_REWRITES = {"onednn_amp": "auto_mixed_precision_onednn_bfloat16"}
BFLOAT16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of CPUs with bfloat16 arithmetic


def onednn_enabled():
    """Whether this TensorFlow runs its oneDNN CPU kernels (TF_ENABLE_ONEDNN_OPTS, or the CPU's default)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # a TensorFlow without the probe: assume it can, the graph pass then decides
        return True
    return bool(_pywrap_util_port.IsMklEnabled())


def choose(spec, *, gpus, onednn, flags):
    """(precision, why) for precision="auto": the model's cpu_bfloat16 where this machine is one it was measured
    faster on at the same accuracy, else float32, with the reason in a few words.

    spec: the model's keras_cnns.registry.ModelSpec; gpus: how many GPUs TensorFlow sees; onednn: whether its
    oneDNN kernels are on; flags: the CPU's flags (keras_cnns.machine.cpu_flags; None: not known)."""
    wanted, name = spec.cpu_bfloat16, spec.name
    if wanted is None:
        return "float32", f"{name} names no bfloat16 precision, none being measured faster at the same accuracy"
    if gpus:
        return "float32", f"{gpus} GPU(s) visible, and {name}'s {wanted} was measured on CPUs only"
    present = [flag for flag in BFLOAT16_FLAGS if flag in (flags or ())]
    if not present:
        return "float32", (f"this CPU has no bfloat16 arithmetic ({' or '.join(BFLOAT16_FLAGS)}), without which "
                           f"{wanted} is slower")
    if not onednn:
        return "float32", f"TensorFlow's oneDNN kernels are off, and {name}'s {wanted} needs them to be fast"
    return wanted, f"{name}'s measured choice on a CPU with {' and '.join(present)}"
