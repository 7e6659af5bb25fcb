"""precision="auto": the recipe's bfloat16 precision on a CPU with bfloat16 arithmetic, float32 everywhere else."""

import dataclasses
import importlib

import pytest

import keras_cnns
from keras_cnns import data, get_spec, machine, registry, training
from keras_cnns.cli import train as train_cli
from keras_cnns.training import precision

AVX512_BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})
AVX2 = frozenset({"avx2", "fma"})
AVX512_NO_BF16 = frozenset({"avx2", "avx512f", "avx512_vnni"})  # the session-18 Xeon: bf16 emulated, 0.26-0.48x


def _with(precision_name):
    return dataclasses.replace(get_spec("lenet5_modern"), cpu_bfloat16=precision_name)


def test_auto_takes_the_recipes_bfloat16_precision_on_a_bfloat16_cpu_with_onednn_and_no_gpu():
    chosen, why = precision.choose(_with("mixed_bfloat16"), gpus=0, onednn=True, flags=AVX512_BF16)
    assert chosen == "mixed_bfloat16" and "avx512_bf16" in why
    assert precision.choose(_with("onednn_amp"), gpus=0, onednn=True, flags={"amx_bf16"})[0] == "onednn_amp"


@pytest.mark.parametrize("gpus, onednn, flags, reason", [
    (1, True, AVX512_BF16, "GPU"),                  # never measured on a GPU
    (0, True, AVX2, "no bfloat16 arithmetic"),      # 4-8x slower there (docs/training.md)
    (0, True, AVX512_NO_BF16, "no bfloat16 arithmetic"),  # AVX-512 alone is not enough (docs/performance.md)
    (0, True, None, "no bfloat16 arithmetic"),      # no /proc/cpuinfo: not known, so not assumed
    (0, False, AVX512_BF16, "oneDNN"),              # Eigen's bfloat16 kernels are not the fast ones
])
def test_auto_stays_float32_where_bfloat16_was_not_measured_faster(gpus, onednn, flags, reason):
    chosen, why = precision.choose(_with("mixed_bfloat16"), gpus=gpus, onednn=onednn, flags=flags)
    assert chosen == "float32" and reason in why


def test_a_model_without_a_bfloat16_precision_trains_in_float32_on_any_machine():
    chosen, why = precision.choose(_with(None), gpus=0, onednn=True, flags=AVX512_BF16)
    assert chosen == "float32" and "lenet5_modern names no bfloat16 precision" in why


def test_a_model_registers_only_a_bfloat16_precision():
    with pytest.raises(ValueError, match="cpu_bfloat16 must be None or one of .*Received: cpu_bfloat16='float16'"):
        registry.register_model("not_registered", family="lenet", paper="-", input_shape=(28, 28, 1),
                                min_input_size=28, cpu_bfloat16="float16")
    assert "not_registered" not in keras_cnns.list_models()


def test_the_cpu_flags_come_from_proc_cpuinfo_and_are_none_without_it(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                    "processor\t: 1\nflags\t\t: fpu avx2 avx512_bf16\n")
    assert machine.cpu_flags(str(info)) == {"fpu", "avx2", "avx512_bf16"}
    assert machine.cpu_model(str(info)) == "Some CPU"
    assert machine.cpu_flags(str(tmp_path / "missing")) is None


def test_the_cpu_family_and_model_name_its_generation_where_the_model_name_is_bare(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n"
                    "model name\t: AMD EPYC\n\nprocessor\t: 1\ncpu family\t: 25\nmodel\t\t: 1\n")
    assert machine.cpu_family(str(info)) == "family 26 model 2"  # the first CPU's, "model name" not taken for it
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\n")  # not x86: no family to give
    assert machine.cpu_family(str(info)) is None
    assert machine.cpu_family(str(tmp_path / "missing")) is None


def test_train_py_asks_for_auto_unless_told_and_keeps_the_list_of_training():
    assert train_cli.parse_args(["--model", "lenet5"]).precision == "auto"
    assert train_cli.parse_args(["--model", "lenet5", "--precision", "float32"]).precision == "float32"
    assert train_cli.PRECISIONS == precision.PRECISIONS == training.PRECISIONS


@pytest.mark.parametrize("flags, expected", [(AVX512_BF16, "mixed_bfloat16"), (AVX2, "float32")])
def test_fit_resolves_auto_once_logs_why_and_records_the_precision_it_used(small_fashion_arrays, tmp_path,
                                                                           monkeypatch, flags, expected):
    fit_module = importlib.import_module("keras_cnns.training.fit")  # the module; training.fit is its function
    monkeypatch.setattr(fit_module, "cpu_flags", lambda: flags)
    monkeypatch.setattr(fit_module, "onednn_enabled", lambda: True)
    train, test, names = small_fashion_arrays()
    lines = []
    result = training.fit("lenet5_modern", data.from_arrays(train, test, names, name="small"), epochs=1,
                          batch_size=64, recipe="fast", precision="auto", limit=256,
                          output_dir=str(tmp_path), verbose=0, log=lines.append)
    assert result.metadata["precision"] == expected
    assert [line for line in lines if line.startswith("Precision: ")] == [line for line in lines if "by auto: " in line]
    assert len([line for line in lines if line.startswith(f"Precision: {expected}, chosen by auto: ")]) == 1
    assert result.model.dtype_policy.name == "float32"  # the saved model is float32 either way


def test_the_zoo_names_bfloat16_only_where_a_full_run_measured_it_faster_at_the_same_accuracy():
    # benchmarks/results/accuracy-cpu-bfloat16 and accuracy-fused-bn (docs/training.md, "Precision"): lenet5 (slower
    # in bfloat16) stays float32; resnet20, as fast in bfloat16 as in float32 with Keras's batch norm, is 1.50x
    # faster with the fused one; resnet56 was 1.41-1.44x faster but less accurate in both seeds (0.0029 and 0.0007:
    # accuracy-resnet56-bf16 and -seed1), so it stays float32; the other ResNets were not run
    named = {name: get_spec(name).cpu_bfloat16 for name in keras_cnns.list_models() if get_spec(name).cpu_bfloat16}
    assert named == {"lenet5_modern": "mixed_bfloat16", "vgg16_quarter": "mixed_bfloat16",
                     "vgg16_slim": "mixed_bfloat16", "resnet20": "mixed_bfloat16"}
