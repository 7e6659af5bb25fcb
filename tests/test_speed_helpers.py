"""The speed benchmark's helpers (benchmarks/speedlib.py, benchmarks/torch_twins.py, benchmarks/speed.py's
plan): FLOPs against hand counts, the PyTorch twins' parameter counts, the result tables. Nothing is timed."""

import argparse
import csv
import importlib.util
import os
import sys

import numpy as np
import pytest

from keras_cnns import get_model, machine
from keras_cnns.anatomy import count_params

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.append(os.path.join(ROOT, "benchmarks"))

import speedlib  # noqa: E402


def _speed_script():
    spec = importlib.util.spec_from_file_location("bench_speed", os.path.join(ROOT, "benchmarks", "speed.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_lenet5_forward_flops_are_twice_the_papers_connections():
    # LeCun et al. 1998 / the article's table: connections of each layer, the bias counted as one.
    c1 = (5 * 5 + 1) * 28 * 28 * 6                 # 122,304
    s2 = (2 * 2 + 1) * 14 * 14 * 6                 # 5,880: four inputs summed, one coefficient, one bias
    c3 = (60 * 5 * 5 + 16) * 10 * 10               # 151,600: Table I's 60 (S2, C3) pairs
    s4 = (2 * 2 + 1) * 5 * 5 * 16                  # 2,000
    c5 = (5 * 5 * 16 + 1) * 120                    # 48,120
    f6 = (120 + 1) * 84                            # 10,164
    rbf = 84 * 10                                  # 840: (x_j - w_ij)^2 summed, no bias
    assert (c1, s2, c3, s4, c5, f6, rbf) == (122_304, 5_880, 151_600, 2_000, 48_120, 10_164, 840)
    assert speedlib.flops_per_image(get_model("lenet5")) == 2 * (c1 + s2 + c3 + s4 + c5 + f6 + rbf) == 681_816


def test_resnet20_forward_flops_count_convolutions_and_the_classifier_only():
    # He et al. 2015, CIFAR ResNet-20 at 32x32x3: convolutions without bias (BN follows), option-A shortcuts
    # (no weights); BN, ReLU, the residual adds and global pooling are not multiply-adds.
    stem = 3 * 3 * 3 * 16 * 32 * 32                            # conv1: 442,368
    stage1 = 6 * (3 * 3 * 16 * 16 * 32 * 32)                   # six 3x3x16 -> 16 at 32x32
    stage2 = 3 * 3 * 16 * 32 * 16 * 16 + 5 * (3 * 3 * 32 * 32 * 16 * 16)   # entering conv stride 2, then five
    stage3 = 3 * 3 * 32 * 64 * 8 * 8 + 5 * (3 * 3 * 64 * 64 * 8 * 8)
    fc = (64 + 1) * 10
    multiply_adds = stem + stage1 + stage2 + stage3 + fc
    assert multiply_adds == 40_551_050                           # the "~41M" of the CIFAR ResNet-20
    assert speedlib.flops_per_image(get_model("resnet20")) == 2 * multiply_adds


def test_achieved_gflops_and_matmul_gflops():
    # 100 images/s of a 1 GFLOP network in training: 3 GFLOP per image (forward + two backward passes).
    assert speedlib.achieved_gflops(100, 1e9) == pytest.approx(300.0)
    assert speedlib.achieved_gflops(100, 1e9, training=False) == pytest.approx(100.0)
    assert speedlib.matmul_gflops(1000, 0.01) == pytest.approx(200.0)   # 2e9 FLOPs in 10 ms


def _torch_twins():
    if importlib.util.find_spec("torch") is None:
        pytest.skip("PyTorch is not installed (pip install -r benchmarks/requirements.txt): the twins need it")
    import torch_twins
    return torch_twins


def test_pytorch_twins_have_our_parameter_counts():
    torch_twins = _torch_twins()
    for name in ("lenet5", "lenet5_modern", "resnet20"):
        twin, shape = torch_twins.build(name)
        ours = get_model(name)
        assert torch_twins.count_parameters(twin) == count_params(ours), name
        assert (shape[1], shape[2], shape[0]) == tuple(ours.input_shape[1:]), name   # NCHW vs NHWC
        assert torch_twins.num_classes(name) == ours.output_shape[-1], name
    assert torch_twins.count_parameters(torch_twins.lenet5()) == 60_840   # 840 of them the fixed prototypes
    assert torch_twins.count_parameters(torch_twins.lenet5_modern()) == 61_706
    assert torch_twins.count_parameters(torch_twins.resnet20()) == 269_722


def test_lenet5_twin_reads_table_one_and_computes_our_distances_with_our_weights():
    import torch
    from keras_cnns.models.lenet import C3_TABLE, digit_prototypes

    torch_twins = _torch_twins()
    assert torch_twins.LENET5_C3_TABLE == C3_TABLE
    ours, twin = get_model("lenet5"), torch_twins.lenet5()
    w = {layer.name: [v.numpy() for v in layer.weights] for layer in ours.layers}
    as_torch = torch.from_numpy
    with torch.no_grad():
        for name in ("c1", "c5"):
            getattr(twin, name).weight.copy_(as_torch(w[name][0].transpose(3, 2, 0, 1)))   # HWIO -> OIHW
            getattr(twin, name).bias.copy_(as_torch(w[name][1]))
        for name in ("s2", "s4"):
            getattr(twin, name).coefficient.copy_(as_torch(w[name][0]))
            getattr(twin, name).bias.copy_(as_torch(w[name][1]))
        twin.c3.weight.copy_(as_torch(w["c3"][0].transpose(2, 0, 1)))   # one 5x5 kernel per pair
        twin.c3.bias.copy_(as_torch(w["c3"][1]))
        twin.f6.weight.copy_(as_torch(w["f6"][0].T))
        twin.f6.bias.copy_(as_torch(w["f6"][1]))
        twin.prototypes.copy_(as_torch(digit_prototypes(10)))
        images = np.random.default_rng(0).standard_normal((4, 32, 32, 1)).astype("float32")
        theirs = twin(as_torch(images.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(theirs, ours.predict_on_batch(images), rtol=1e-4, atol=1e-3)
    assert not twin.prototypes.requires_grad   # fixed, as in the paper and in ours


def test_lenet5_twin_trains_on_the_papers_energy_loss_as_ours_computes_it():
    import torch
    from keras_cnns.losses import RBFEnergyLoss

    torch_twins = _torch_twins()
    distances = np.random.default_rng(1).uniform(0.0, 60.0, (6, 10)).astype("float32")
    labels = np.array([0, 3, 9, 9, 5, 1])
    theirs = torch_twins.loss("lenet5")(torch.from_numpy(distances), torch.from_numpy(labels)).item()
    assert theirs == pytest.approx(float(RBFEnergyLoss()(labels, distances)), rel=1e-5)
    assert torch_twins.loss("resnet20") is torch.nn.functional.cross_entropy


def test_machine_header_names_the_cpu_versions_threads_and_says_how_to_get_pytorch():
    header = speedlib.machine_header({"TensorFlow": "2.21.0", "PyTorch": None}, [1, 2])
    assert header.startswith(f"Machine: {speedlib.cpu_model()} (") and f"{os.cpu_count()} cores" in header
    family = machine.cpu_family()
    assert family is None or f"({family}; " in header  # "AMD EPYC (family 26 model 2; avx512_bf16 ...)"
    assert "TensorFlow 2.21.0" in header and "threads 1,2" in header
    assert "PyTorch not installed: pip install -r benchmarks/requirements.txt" in header
    import report  # the probes' headers name the CPU the same way: two EPYCs of one model name differ in flags

    assert report.probe_header("benchmarks/conv_bias_xla.py", ["--models", "resnet50"], 4, 759.4) == (
        f"Machine: {speedlib.cpu_line()}; {os.cpu_count()} cores; "
        "run: python benchmarks/conv_bias_xla.py --models resnet50; 4 processes in 759 s")


def test_alternation_rotates_the_order_every_repeat():
    order = speedlib.alternation(["ours", "keras", "torch"], 3)
    assert [m for r, m in order if r == 0] == ["ours", "keras", "torch"]
    assert [m for r, m in order if r == 1] == ["keras", "torch", "ours"]
    assert [m for r, m in order if r == 2] == ["torch", "ours", "keras"]


def _row(framework, metric, value, repeat=0, precision="float32", impl="resnet20", jit=False, spe=1, section="model"):
    return {"section": section, "framework": framework, "model": "resnet20", "impl": impl, "precision": precision,
            "jit": jit, "spe": spe, "threads": 2, "batch": 32, "metric": metric, "value": value, "unit": "",
            "repeat": repeat, "note": ""}


def test_best_of_n_and_ratios_read_the_same_way_for_throughput_and_latency():
    rows = [_row("keras_cnns", "train_images_per_s", v, r) for r, v in enumerate((150.0, 200.0, 180.0))]
    rows += [_row("PyTorch", "train_images_per_s", 100.0, impl="twin resnet20"),
             _row("keras_cnns", "latency_b1_ms", 5.0), _row("keras_cnns", "latency_b1_ms", 4.0, 1),
             _row("PyTorch", "latency_b1_ms", 10.0, impl="twin resnet20"),
             # bfloat16 rows are compared with bfloat16 peers only; a jit row with no PyTorch peer at all
             _row("keras_cnns", "train_images_per_s", 300.0, precision="onednn_amp"),
             _row("PyTorch", "train_images_per_s", 600.0, precision="bf16_autocast", impl="twin resnet20"),
             _row("keras_cnns", "train_images_per_s", 50.0, jit=True)]
    best = speedlib.best_rows(rows)
    ours_train = [r for r in best if r["framework"] == "keras_cnns" and r["metric"] == "train_images_per_s"
                  and r["precision"] == "float32" and not r["jit"]]
    assert [(r["value"], r["repeats"], r["worst"]) for r in ours_train] == [(200.0, 3, 150.0)]
    ours_latency = next(r for r in best if r["framework"] == "keras_cnns" and r["metric"] == "latency_b1_ms")
    assert (ours_latency["value"], ours_latency["worst"]) == (4.0, 5.0)  # for a latency the worst is the highest
    # A row read back from an older CSV (best of 2, no worst column) leaves the worst unknown, not equal to the best.
    old = speedlib.best_rows([dict(_row("keras_cnns", "train_images_per_s", 90.0), repeats=2, worst="")])
    assert old[0]["worst"] is None
    assert speedlib.best_rows(old + [_row("keras_cnns", "train_images_per_s", 80.0)])[0]["worst"] is None
    # A copy of a peer's latency in another section (the LiteRT table) is not a second peer.
    torch_latency = next(r for r in best if r["framework"] == "PyTorch" and r["metric"] == "latency_b1_ms")
    best.append(dict(torch_latency, section="litert", impl="PyTorch eager twin resnet20", value=1.0))
    ratios = {(r["metric"], r["batch"], r["precision"], r["jit"]): r["ratio"] for r in speedlib.ratio_rows(best)}
    assert ratios == {("train_images_per_s", 32, "float32", False): 2.0,     # 200 / 100 images/s
                      ("latency_b1_ms", 1, "float32", False): 2.5,           # 10 ms / 4 ms: ours faster
                      ("train_images_per_s", 32, "onednn_amp", False): 0.5}  # 300 / 600


def test_best_against_best_takes_each_sides_fastest_setting_whatever_it_is():
    rows = [_row("keras_cnns", "train_images_per_s", 900.0), _row("keras_cnns", "train_images_per_s", 990.0, spe=8),
            _row("keras_cnns", "train_images_per_s", 1100.0, precision="mixed_bfloat16", spe=8),
            _row("keras_cnns", "train_images_per_s", 1000.0, precision="mixed_bfloat16"),
            _row("keras_cnns", "latency_b1_ms", 0.1),                                  # not a training speed
            _row("keras.applications", "train_images_per_s", 5000.0, impl="ResNet"),  # not PyTorch
            _row("PyTorch", "train_images_per_s", 800.0, impl="twin resnet20"),
            _row("PyTorch", "train_images_per_s", 1000.0, precision="bf16_autocast", impl="twin resnet20"),
            _row("PyTorch", "train_images_per_s", 950.0, 1, precision="bf16_autocast", impl="twin resnet20")]
    # low and high: the ratio had PyTorch's slower bf16 repeat (950) been the one kept
    assert speedlib.best_against_best(speedlib.best_rows(rows)) == [
        {"model": "resnet20", "batch": 32, "threads": 2, "ours_setting": "mixed_bfloat16 spe8", "ours": 1100.0,
         "pytorch_setting": "bf16_autocast (twin resnet20)", "pytorch": 1000.0, "ratio": 1.1,
         "low": 1.1, "high": 1.158}]
    # rows that were never collapsed into best rows say nothing of their spread
    assert speedlib.best_against_best(rows)[0]["ratio"] == 1.1 and speedlib.best_against_best(rows)[0]["low"] is None
    # a model no PyTorch peer ran beside has no line
    assert speedlib.best_against_best([r for r in rows if r["framework"] != "PyTorch"]) == []


def test_knob_rows_give_each_setting_over_the_models_float32_one_and_plot_them(tmp_path):
    rows = [_row("keras_cnns", "train_images_per_s", 200.0), _row("keras_cnns", "train_images_per_s", 150.0, 1),
            _row("keras_cnns", "train_images_per_s", 300.0, precision="mixed_bfloat16"),
            _row("keras_cnns", "train_images_per_s", 50.0, jit=True),
            _row("keras_cnns", "latency_b1_ms", 4.0),                       # not a training speed
            _row("PyTorch", "train_images_per_s", 400.0, impl="twin resnet20")]  # not ours
    knobs = {k["setting"]: (k["images_per_s"], k["speedup"]) for k in speedlib.knob_rows(rows)}
    assert knobs == {"float32": (200.0, 1.0), "mixed_bfloat16": (300.0, 1.5), "float32 jit": (50.0, 0.25)}
    assert speedlib.plot_knobs(rows, str(tmp_path / "knobs.png")) and (tmp_path / "knobs.png").stat().st_size > 0
    # One setting only, or no float32 base to divide by: nothing to draw
    assert speedlib.plot_knobs(rows[:2], str(tmp_path / "none.png")) is None
    assert speedlib.knob_rows(rows[2:3]) == []


def test_issue_targets_are_read_off_the_best_rows_with_the_pipeline_and_litert_rows_derived_from_them():
    def r50(*args, **kwargs):
        return dict(_row(*args, **kwargs), model="resnet50")

    rows = [r50("keras_cnns", "train_images_per_s", 10.0), r50("keras_cnns", "train_images_per_s", 9.0, 1),
            r50("keras_cnns", "train_images_per_s", 16.0, precision="mixed_bfloat16"),
            r50("keras.applications", "train_images_per_s", 9.5, impl="ResNet50"),
            r50("keras.applications", "train_images_per_s", 16.5, precision="mixed_bfloat16", impl="ResNet50"),
            r50("keras.applications", "train_images_per_s", 15.5, 1, precision="mixed_bfloat16", impl="ResNet50"),
            r50("PyTorch", "train_images_per_s", 5.0, impl="torchvision resnet50"),
            r50("PyTorch", "train_images_per_s", 10.0, precision="bf16_autocast", impl="torchvision resnet50"),
            r50("PyTorch", "latency_b1_ms", 40.0, impl="torchvision resnet50"),
            r50("tf.data", "pipeline_images_per_s", 2000.0, impl="Fashion-MNIST not cached", section="pipeline"),
            r50("LiteRT", "latency_b1_ms", 50.0, impl=speedlib.KERAS_PREDICT, section="litert"),
            r50("LiteRT", "latency_b1_ms", 38.0, impl=speedlib.LITERT_FLOAT32, section="litert"),
            r50("LiteRT", "latency_b1_ms", 5.0, precision="int8", impl=speedlib.LITERT_INT8, section="litert")]
    derived = speedlib.pipeline_headroom(rows) + speedlib.litert_torch_rows(rows)
    # the pipeline is held against the fastest training measured (mixed_bfloat16, 16 images/s), not float32's
    consumed, headroom = derived[:2]
    assert (consumed["metric"], consumed["value"], consumed["impl"]) == (
        "consumed_images_per_s", 16.0, "keras_cnns mixed_bfloat16 fit")
    assert (headroom["metric"], headroom["value"], headroom["worst"]) == ("headroom_x", 125.0, None)
    assert [(r["section"], r["impl"], r["value"]) for r in derived[2:]] == [
        ("litert", "PyTorch eager torchvision resnet50", 40.0)]
    targets = {(t["target"], t["model"]): (t["setting"], t["value"], t["range"], t["goal"], t["met"])
               for t in speedlib.target_rows(speedlib.best_rows(rows + derived))}
    assert targets == {
        # 10 / 9.5 in float32 and 16 / 16.5 in mixed_bfloat16: the lower stands for both. keras.applications'
        # repeats were 16.5 and 15.5, so the ratio could have been 16 / 15.5: the run cannot call it a miss.
        ("ours / keras.applications, train_images_per_s", "resnet50"):
            ("mixed_bfloat16 (lowest of 2 settings)", 0.97, "0.97-1.03", ">= 1", "no (within the repeats' spread)"),
        ("best ours / best PyTorch, train_images_per_s", "resnet50"):
            ("batch 32: mixed_bfloat16 / bf16_autocast (torchvision resnet50)", 1.6, "1.6-1.6", ">= 0.8", "yes"),
        ("LiteRT float32 / PyTorch eager, latency_b1_ms", "resnet50"): ("float32", 0.95, "0.95-0.95", "<= 1", "yes"),
        ("LiteRT int8 / Keras float32, latency_b1_ms", "resnet50"): ("int8", 0.1, "0.1-0.1", "<= 0.5", "yes"),
        ("tf.data images/s / fastest training images/s", "resnet50"):
            ("batch 32, Fashion-MNIST not cached", 125.0, "", ">= 5", "yes")}
    # the same miss with no spread to reach the goal is a plain no
    steady = [r for r in rows if not (r["framework"] == "keras.applications" and r["value"] == 15.5)]
    missed = {t["model"]: t["met"] for t in speedlib.target_rows(speedlib.best_rows(steady))
              if t["target"].startswith("ours / keras.applications")}
    assert missed == {"resnet50": "no"}
    assert speedlib.target_rows([]) == []


def test_result_writer_writes_csv_markdown_plot_and_the_readme_table(tmp_path):
    rows = [_row("keras_cnns", "train_images_per_s", 200.0), _row("keras_cnns", "train_images_per_s", 120.0, 1),
            _row("keras_cnns", "compile_s", 3.0),
            _row("keras_cnns", "peak_rss_mb", 900.0), _row("PyTorch", "train_images_per_s", 100.0, impl="twin"),
            {**_row("TensorFlow", "gflops", 50.0, section="matmul"), "model": "matmul 1024x1024"},
            {**_row("TensorFlow", "gflops", 40.0, repeat=1, section="matmul"), "model": "matmul 1024x1024"}]
    header = "Machine: test CPU; 2 cores"
    md, summary = speedlib.write_results(rows, str(tmp_path), header, ["a note"], flops={"resnet20": 1e8})
    with open(tmp_path / "speed.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 6 and table[0]["metric"] == "train_images_per_s" and float(table[0]["value"]) == 200.0
    assert (table[-1]["section"], table[-1]["model"], float(table[-1]["value"])) == ("flops", "resnet20", 1e8)
    text = open(md).read()
    assert header in text and "- a note" in text and "## The machine's limit: a large matmul" in text
    assert "| gflops | 50 |  | 2 |" in text  # best of the 2 repeats, which --from-csv keeps below
    # 200 images/s x 3 x 0.1 GFLOP = 60 GFLOP/s, 120 % of the 50 GFLOP/s matmul; ours/PyTorch = 2
    ours = [line for line in text.splitlines() if line.startswith("| resnet20 | keras_cnns")][0]
    assert "| 60 | 120 |" in ours
    # train_spread: best / worst of the training repeats, 200 / 120 images/s
    spread = [line for line in text.splitlines() if line.startswith("| model | framework")][0].split(" | ")
    assert spread[spread.index("train_images_per_s") + 1] == "train_spread"
    assert ours.split(" | ")[spread.index("train_spread")] == "1.67"
    # ratio 2, and 1.2 to 2 over the repeats (our slower one, 120 images/s, against PyTorch's only one)
    assert "| PyTorch twin | 200 | 100 | 2 | 1.2 | 2 |" in text
    assert "| resnet20 | 32 | 2 | float32 | 200 | float32 (twin) | 100 | 2 | 1.2 | 2 |" in text  # best against best
    target = ("| best ours / best PyTorch, train_images_per_s | resnet20 | batch 32: float32 / float32 (twin) | 2 "
              "| 1.2-2 | >= 1 | yes |")
    assert target in text and target in summary and summary.index(target) < summary.index("| model | framework")
    assert summary.startswith(header) and "| 2 |" in summary
    assert speedlib.plot_ratios(rows, str(tmp_path / "speed.png")) and (tmp_path / "speed.png").stat().st_size > 0
    bench = _speed_script()
    # --from-csv measures nothing: the same tables again from the CSV and the header and notes of the .md
    assert bench.main(["--from-csv", str(tmp_path / "speed.csv"), "--out", str(tmp_path / "again")]) == 0
    assert open(tmp_path / "again" / "speed.md").read() == text
    readme = tmp_path / "README.md"
    readme.write_text(f"## Performance\n{bench.README_BEGIN}\nnot run yet\n{bench.README_END}\n\n## Python API\n")
    from report import write_readme_section
    write_readme_section(str(readme), bench.README_BEGIN, bench.README_END, summary)
    assert readme.read_text().startswith(f"## Performance\n{bench.README_BEGIN}\n{header}\n")
    assert "not run yet" not in readme.read_text()


def test_quick_plan_pairs_each_model_with_its_peers_and_drops_pytorch_when_missing():
    bench = _speed_script()
    args = bench.parse_args(["--quick"])
    groups = bench.plan(args, torch_ok=True)
    by_model = {g[0]["model"]: [(t["kind"], t["framework"], t.get("impl")) for t in g] for g in groups
                if g[0]["kind"] in ("keras", "keras_shared")}
    # resnet50 is inference only: ours and keras.applications' predict in one child, alternated
    assert by_model["resnet50"] == [
        ("keras_shared", "Keras, one process", "keras_cnns resnet50, keras.applications ResNet50"),
        ("torch", "PyTorch", "torchvision resnet50")]
    assert by_model["resnet20"] == [("keras", "keras_cnns", "resnet20"), ("torch", "PyTorch", "twin resnet20")]
    assert not any(t.get("train") for g in groups for t in g if t.get("model") == "resnet50")
    no_torch = bench.plan(args, torch_ok=False)
    assert not any(t["framework"] == "PyTorch" for g in no_torch for t in g)


def test_the_full_plan_pairs_the_papers_lenet5_with_its_twin_and_measures_it_in_litert():
    bench = _speed_script()
    groups = bench.plan(bench.parse_args(["--models", "lenet5", "--precisions", "float32", "--jit", "off",
                                          "--spe", "1", "--no-matmul", "--no-pipeline"]), torch_ok=True)
    assert [(t["kind"], t["framework"], t.get("impl")) for t in groups[0]] == [
        ("keras", "keras_cnns", "lenet5"), ("torch", "PyTorch", "twin lenet5")]
    litert = [g[0]["model"] for g in groups if g[0]["kind"] == "litert"]   # by default, whatever --models says
    assert litert == ["lenet5", "lenet5_modern", "resnet20", "resnet50"]


def test_one_knob_at_a_time_varies_each_setting_alone_from_the_baseline():
    bench = _speed_script()
    argv = ["--precisions", "float32", "mixed_bfloat16", "--jit", "off", "on", "--spe", "1", "8", "32"]
    crossed = bench.settings(bench.parse_args(argv))
    assert len(crossed) == 2 * 2 * 3
    single = bench.settings(bench.parse_args(argv + ["--one-at-a-time"]))
    assert single == [("float32", False, 1), ("mixed_bfloat16", False, 1), ("float32", True, 1),
                      ("float32", False, 8), ("float32", False, 32)]
    groups = bench.plan(bench.parse_args(argv + ["--one-at-a-time", "--models", "resnet20", "--no-matmul",
                                                 "--no-pipeline", "--no-litert"]), torch_ok=True)
    # the PyTorch twin runs beside the two jit-off, steps_per_execution-1 settings, at the matching precision
    assert [[(t["framework"], t["precision"]) for t in g] for g in groups][:2] == [
        [("keras_cnns", "float32"), ("PyTorch", "float32")],
        [("keras_cnns", "mixed_bfloat16"), ("PyTorch", "bf16_autocast")]]
    assert len(groups) == 5


def test_spe_default_is_each_models_registry_steps_per_execution_measured_once():
    from keras_cnns.registry import get_spec

    bench = _speed_script()
    args = bench.parse_args(["--models", "lenet5_modern", "resnet20", "--precisions", "float32", "--jit", "off",
                             "--no-matmul", "--no-pipeline", "--no-litert"])
    assert args.spe == [1, "default"]                        # the full run's default: Keras' 1 and the model's own
    model_spe = {m: get_spec(m).steps_per_execution for m in args.models}
    assert model_spe["lenet5_modern"] > 1 and model_spe["resnet20"] == 1
    assert bench.settings(args, model_spe["lenet5_modern"]) == [("float32", False, 1),
                                                                ("float32", False, model_spe["lenet5_modern"])]
    assert bench.settings(args, model_spe["resnet20"]) == [("float32", False, 1)]    # 1 twice: measured once
    groups = bench.plan(args, torch_ok=True, model_spe=model_spe)
    # the PyTorch twins run beside the steps_per_execution-1 setting only
    assert [[(t["framework"], t["model"], t["spe"]) for t in g] for g in groups] == [
        [("keras_cnns", "lenet5_modern", 1), ("PyTorch", "lenet5_modern", 1)],
        [("keras_cnns", "lenet5_modern", model_spe["lenet5_modern"])],
        [("keras_cnns", "resnet20", 1), ("PyTorch", "resnet20", 1)]]
    assert bench.parse_args(["--spe", "8", "default"]).spe == [8, "default"]
    assert bench.parse_args(["--quick"]).spe == [1]
    for bad in ("0", "eight"):
        with pytest.raises(SystemExit):
            bench.parse_args(["--spe", bad])


def test_other_backends_join_the_float32_base_setting_as_peers_of_the_tensorflow_row():
    bench = _speed_script()
    argv = ["--models", "resnet20", "--precisions", "float32", "mixed_bfloat16", "--jit", "off", "on", "--no-matmul",
            "--no-pipeline", "--no-litert", "--no-peers", "--backends", "jax", "torch"]
    groups = bench.plan(bench.parse_args(argv), torch_ok=True, installed=lambda module: module == "jax")
    tasks = [(t["framework"], t["precision"], t["jit"], t.get("backend")) for g in groups for t in g]
    # JAX (installed) once, beside float32 with jit off, jit-compiled as that backend always is; PyTorch's
    # backend is left out because the stub says torch is not installed
    assert [t for t in tasks if t[3]] == [("keras_cnns (Keras on JAX)", "float32", True, "jax")]
    assert len(tasks) == 5
    row = {"section": "model", "model": "resnet20", "metric": "train_images_per_s", "batch": 32, "threads": 2,
           "spe": 1, "precision": "float32"}
    ratios = speedlib.ratio_rows([dict(row, framework="keras_cnns", impl="resnet20", jit=False, value=300.0),
                                  dict(row, framework="keras_cnns (Keras on JAX)", impl="resnet20", jit=True,
                                       value=200.0)])
    assert [(r["peer"], r["ratio"]) for r in ratios] == [("keras_cnns (Keras on JAX) resnet20", 1.5)]


def test_keras_batch_norm_peer_trains_the_same_model_with_keras_layers_at_our_exact_setting():
    bench = _speed_script()
    argv = ["--models", "resnet20", "lenet5_modern", "--precisions", "float32", "mixed_bfloat16", "--jit", "off",
            "--no-matmul", "--no-pipeline", "--no-litert", "--no-peers", "--keras-batch-norm", "resnet20"]
    groups = bench.plan(bench.parse_args(argv), torch_ok=True)
    tasks = [[(t["kind"], t["framework"], t["model"], t["precision"], t["infer"], t.get("steady", True)) for t in g]
             for g in groups]
    # each warms up in its own child (compile time, peak memory); the two train and predict in one, alternated
    assert tasks == [[("keras", "keras_cnns", "resnet20", p, False, False),
                      ("keras", speedlib.KERAS_BN, "resnet20", p, False, False),
                      ("keras_shared", "Keras, one process", "resnet20", p, True, True)]
                     for p in ("float32", "mixed_bfloat16")] + [
                        [("keras", "keras_cnns", "lenet5_modern", p, True, True)] for p in ("float32", "mixed_bfloat16")
                    ]
    assert all(g[2]["train"] for g in groups[:2])
    assert groups[0][2]["members"] == [dict(framework="keras_cnns", impl="resnet20"),
                                       dict(framework=speedlib.KERAS_BN, impl="resnet20")]
    rows = [_row("keras_cnns", "train_images_per_s", 1300.0, precision="mixed_bfloat16"),
            _row(speedlib.KERAS_BN, "train_images_per_s", 800.0, precision="mixed_bfloat16"),
            _row(speedlib.KERAS_BN, "train_images_per_s", 700.0, precision="onednn_amp")]
    ratios = speedlib.ratio_rows(rows)
    # matched at the same precision only (not at the same precision class, as PyTorch's autocast is)
    assert [(r["peer"], r["precision"], r["ratio"]) for r in ratios] == [
        ("keras_cnns (Keras BatchNormalization) resnet20", "mixed_bfloat16", 1.625)]


def test_keras_peers_train_and_predict_in_one_child_and_each_row_keeps_its_own_framework():
    """The keras_shared child on resnet20 with and without Keras's batch norm, the shortest timings: rows and
    parameter counts per member, ratios read off them as off separate children's; each member's own child warms
    up only (compile time and peak memory, no images/s). Asserts no speed."""
    bench = _speed_script()
    argv = ["--models", "resnet20", "--precisions", "float32", "--jit", "off", "--spe", "1", "--no-matmul",
            "--no-pipeline", "--no-litert", "--no-peers", "--keras-batch-norm", "resnet20", "--latency-repeats", "1",
            "--min-seconds", "0", "--warmup-steps", "2", "--batch", "4"]
    alone, _, task = bench.plan(bench.parse_args(argv), torch_ok=True)[0]
    result, error = bench.run_child(task, timeout=600)
    assert error is None
    rows = bench.to_rows(task, result, repeat=0)
    members = ("keras_cnns", speedlib.KERAS_BN)
    assert [(r["section"], r["framework"], r["impl"], r["metric"]) for r in rows] == [
        ("model", f, "resnet20", m) for m in ("train_images_per_s", "latency_b1_ms", "images_per_s_b32")
        for f in members]
    assert all(r["value"] > 0 and r["batch"] == 4 for r in rows) and result["note"] == ""
    params = count_params(get_model("resnet20"))  # He et al. 2015, Table 6: 0.27M
    assert result["member_params"] == [["keras_cnns", "resnet20", params], [speedlib.KERAS_BN, "resnet20", params]]
    assert result["flops_per_image"] == speedlib.flops_per_image(get_model("resnet20"))
    ratios = speedlib.ratio_rows(speedlib.best_rows(rows))
    assert {(r["metric"], r["peer"]) for r in ratios} == {
        (m, f"{speedlib.KERAS_BN} resnet20") for m in ("train_images_per_s", "latency_b1_ms", "images_per_s_b32")}
    result, error = bench.run_child(alone, timeout=600)
    assert error is None
    assert [r[0] for r in result["rows"]] == ["compile_s", "peak_rss_mb"] and result["params"] == params


def test_with_keras_batch_norm_swaps_every_fused_layer_and_keeps_the_weights():
    import keras

    from keras_cnns.layers import batch_norm

    model = get_model("resnet20")
    fused = [layer.name for layer in model.layers if isinstance(layer, batch_norm.BatchNormalization)]
    assert len(fused) == 19                      # one after each of resnet20's 19 convolutions
    copy = speedlib.with_keras_batch_norm(model)
    assert [type(copy.get_layer(n)) for n in fused] == [keras.layers.BatchNormalization] * 19
    assert [layer.name for layer in copy.layers[1:]] == [layer.name for layer in model.layers[1:]]  # past the input
    x = np.random.default_rng(0).standard_normal((2,) + tuple(model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(copy.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="no keras_cnns.layers.BatchNormalization"):
        speedlib.with_keras_batch_norm(get_model("lenet5_modern"))


def test_onednn_paths_run_with_onednn_on_and_share_one_pytorch_peer_per_precision(monkeypatch):
    bench = _speed_script()
    argv = ["--models", "resnet20", "--precisions", "float32", "onednn_float32", "mixed_bfloat16", "onednn_amp",
            "--jit", "off", "--no-pipeline", "--no-litert"]
    groups = bench.plan(bench.parse_args(argv), torch_ok=True)
    matmul = [(t["impl"], bench.uses_onednn(t)) for t in groups[0]]
    assert matmul == [("TensorFlow", False), ("TensorFlow oneDNN", True), ("PyTorch", False)]
    models = [[(t["framework"], t["precision"], bench.uses_onednn(t)) for t in g] for g in groups[1:]]
    # the PyTorch twin runs once per its own precision, beside the first of ours that maps to it
    assert models == [[("keras_cnns", "float32", False), ("PyTorch", "float32", False)],
                      [("keras_cnns", "onednn_float32", True)],
                      [("keras_cnns", "mixed_bfloat16", False), ("PyTorch", "bf16_autocast", False)],
                      [("keras_cnns", "onednn_amp", True)]]
    seen = []

    class Finished:
        returncode, stdout, stderr = 0, bench.RESULT_PREFIX + "{}", ""

    monkeypatch.setattr(bench.subprocess, "run", lambda cmd, env=None, **kw: seen.append(env) or Finished())
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    for task in groups[0][:2]:
        assert bench.run_child(task, timeout=5) == ({}, None)
    assert seen[0] is None or "TF_ENABLE_ONEDNN_OPTS" not in seen[0]   # TensorFlow's own default
    assert seen[1]["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert speedlib.PRECISION_CLASS["onednn_float32"] == "float32"


def test_the_progress_line_names_each_task_with_each_word_once():
    bench = _speed_script()
    assert bench.progress_label({"framework": "keras_cnns", "impl": "resnet20", "model": "resnet20",
                                 "precision": "float32"}) == "keras_cnns resnet20 float32"
    assert bench.progress_label({"framework": "keras.applications", "impl": "ResNet50", "model": "resnet50",
                                 "precision": "onednn_float32"}) == "keras.applications ResNet50 onednn_float32"
    assert bench.progress_label({"framework": "TensorFlow", "impl": "TensorFlow oneDNN"}) == "TensorFlow oneDNN"
    assert bench.progress_label({"framework": "PyTorch", "impl": "twin resnet20", "model": "resnet20",
                                 "precision": "float32"}) == "PyTorch twin resnet20 float32"


def test_autotune_benchmark_alternates_the_settings_and_counts_held_fit_calls(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_autotune", os.path.join(ROOT, "benchmarks",
                                                                                  "tf_data_autotune.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = argparse.Namespace(
        model="resnet20", batch=32, steps=60, calls=4, processes=2, fit_model="lenet5_modern", epochs=3,
        epoch_processes=1, pipeline_processes=0, no_pipelines=False)
    tasks = bench.plan(args)
    assert [(t["kind"], t["setting"]) for t in tasks] == [
        ("fit_wait", "on"), ("fit_wait", "off"), ("epochs", "on"), ("epochs", "off"),  # process 0: on first
        ("fit_wait", "off"), ("fit_wait", "on")]                                        # process 1: off first
    results = [(tasks[0], {"waits": [0.001, 2.5, 0.002, 2.4]}), (tasks[1], {"waits": [0.001, 0.003]}),
               (tasks[2], {"epoch_s": [4.0, 3.0, 5.5], "test_accuracy": 0.89}),
               (tasks[3], {"epoch_s": [3.9, 2.5, 2.6], "test_accuracy": 0.89})]
    rows = {(r["measurement"], r["setting"]): r for r in bench.summarize(results)}
    assert (rows["fit_wait", "on"]["n"], rows["fit_wait", "on"]["held"]) == (4, 2)  # waits over 0.1 s
    assert (rows["fit_wait", "off"]["n"], rows["fit_wait", "off"]["held"]) == (2, 0)
    later = rows["epoch_s lenet5_modern (after the first)", "on"]
    assert (later["n"], later["max"], later["values"]) == (2, 5.5, "3.00 5.50")  # the tracing epoch left out
    path = bench.write(list(rows.values()), str(tmp_path), "Machine: test")
    assert "| fit_wait | on | 4 | 2 |" in open(path).read()


def test_batch_norm_latency_benchmark_alternates_onednn_and_keeps_each_layers_best(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_bn", os.path.join(ROOT, "benchmarks",
                                                                           "batch_norm_latency.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    args = argparse.Namespace(models=["resnet20"], batches=[1, 32], repeats=5, processes=2, threads=2)
    tasks = bench.plan(args)
    assert [t["onednn"] for t in tasks] == ["1", "0", "0", "1"]  # process 0 oneDNN first, process 1 last
    zoo_bn, keras_bn = bench.LAYERS
    results = [(tasks[0], [{"impl": zoo_bn, "batch": 1, "ms": 30.0}, {"impl": keras_bn, "batch": 1, "ms": 6.0}]),
               (tasks[3], [{"impl": zoo_bn, "batch": 1, "ms": 24.0}, {"impl": keras_bn, "batch": 1, "ms": 8.0}])]
    row = bench.summarize(results).iloc[0]
    assert (row[zoo_bn], row[keras_bn], row[bench.RATIO]) == (24.0, 6.0, 4.0)  # each layer's lowest median
    path = bench.write(bench.summarize(results), str(tmp_path), "Machine: test")
    assert "| resnet20 | 1 | 1 | 24 | 6 |  | 4 |  |" in open(path).read()  # resnet20: no keras.applications twin
    resnet50 = dict(tasks[0], model="resnet50")
    results.append((resnet50, [{"impl": impl, "batch": 32, "ms": ms}
                               for impl, ms in ((zoo_bn, 3000.0), (keras_bn, 3100.0), (bench.PEER, 2500.0))]))
    row = bench.summarize(results).set_index("model").loc["resnet50"]
    assert row[bench.PEER_RATIO] == 1.2
    assert "| resnet50 | 1 | 32 | 3,000 | 3,100 | 2,500 | 0.968 | 1.2 |" in open(
        bench.write(bench.summarize(results), str(tmp_path), "Machine: test")).read()


def test_with_conv_bias_gives_every_convolution_of_resnet20_a_bias_and_takes_it_away_again():
    import keras

    model = get_model("resnet20")
    convs = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 19 and not any(model.get_layer(n).use_bias for n in convs)  # the paper's: no biases
    biased = speedlib.with_conv_bias(model, True)
    assert all(biased.get_layer(n).use_bias for n in convs)
    filters = sum(model.get_layer(n).filters for n in convs)          # one bias per output channel
    assert filters == 16 + 3 * 2 * 16 + 3 * 2 * 32 + 3 * 2 * 64 == 688  # the stem, then n = 3 blocks of two
    assert count_params(biased) == count_params(model) + 688
    assert count_params(speedlib.with_conv_bias(biased, False)) == count_params(model)
    assert [layer.name for layer in biased.layers[1:]] == [layer.name for layer in model.layers[1:]]
    dense_only = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)], name="mlp")
    with pytest.raises(ValueError, match="mlp has no Conv2D"):
        speedlib.with_conv_bias(dense_only, True)


def test_conv_bias_benchmark_cuts_each_resnet_stage_and_reports_speed_ratios(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_bias", os.path.join(ROOT, "benchmarks", "conv_bias_xla.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # resnet20's three stages of three basic blocks; resnet50's four (3, 4, 6, 3 blocks); none in lenet5
    assert bench.stage_outputs(get_model("resnet20")) == ["conv2_block3_out", "conv3_block3_out", "conv4_block3_out"]
    assert bench.stage_outputs(get_model("resnet50")) == [
        "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"]
    assert bench.stage_outputs(get_model("lenet5")) == []
    args = argparse.Namespace(models=["resnet50"], precisions=["mixed_bfloat16"], jit=["on", "off"], threads=2,
                              batch=32, rounds=5, min_seconds=10.0, warmup_steps=3, stages=True, stage_repeats=5,
                              processes=2)
    tasks = bench.plan(args)
    assert [(t["jit"], t["process"]) for t in tasks] == [(True, 0), (False, 0), (True, 1), (False, 1)]
    stage = "forward+backward ms up to conv3_block4_out"
    rows = lambda ours, biased, peer, ms: [  # noqa: E731
        {"measure": bench.TRAIN, "impl": bench.OURS, "value": ours},
        {"measure": bench.TRAIN, "impl": bench.OURS_BIAS, "value": biased},
        {"measure": bench.TRAIN, "impl": bench.PEER, "value": peer},
        {"measure": bench.TRAIN, "impl": bench.PEER_NO_BIAS, "value": 6.5},
        {"measure": stage, "impl": bench.OURS, "value": ms},
        {"measure": stage, "impl": bench.OURS_BIAS, "value": 1000.0}]
    table = bench.summarize([(tasks[0], rows(6.8, 7.5, 7.2, 1500.0)), (tasks[2], rows(7.0, 7.4, 7.0, 1250.0))])
    train, cut = table.iloc[0], table.iloc[1]  # training first
    assert (train["measure"], train[bench.OURS], train[bench.OURS_BIAS], train[bench.PEER]) == (bench.TRAIN, 7.0,
                                                                                                  7.5, 7.2)
    assert train[f"{bench.OURS} / {bench.PEER}"] == pytest.approx(7.0 / 7.2)  # each impl's best images/s
    assert (cut["measure"], cut[bench.OURS]) == (stage, 1250.0)          # the lowest milliseconds
    assert cut[f"{bench.OURS} / {bench.OURS_BIAS}"] == 0.8               # a speed ratio: 1000 ms / 1250 ms
    text = open(bench.write(table, str(tmp_path), "Machine: test")).read()
    assert f"| resnet50 | mixed_bfloat16 | True | {stage} | 1,250 | 1,000 |  |  | 0.8 |  |" in text


def test_median_ms_alternated_warms_each_function_once_then_alternates_their_calls():
    """The batch-norm probe times its two layers this way, so that a slow spell of the machine falls on both."""
    import report

    calls = []
    ms = report.median_ms_alternated({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert sorted(ms) == ["a", "b"] and min(ms.values()) >= 0.0
    calls.clear()  # the speed benchmark's training rounds: warmed up by the caller
    report.median_ms_alternated({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 2, warm=False)
    assert calls == ["a", "b"] * 2


def test_the_ratio_plots_tick_powers_of_two_around_parity():
    # 0.3x to 4.9x: from 0.25x to 8x, each tick a plain "0.5x", "2x" (no overlapping minor log labels)
    assert speedlib.ratio_ticks([0.3, 1.2, 4.9]) == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
    # every ratio above parity still starts the axis at 1x, and an exact power of two is its own end
    assert speedlib.ratio_ticks([1.5, 2.0]) == [1.0, 2.0]
    assert speedlib.ratio_ticks([0.9]) == [0.5, 1.0]


def test_resnet50_runs_53_convolutions_in_20_forms_that_carry_all_its_flops_but_the_classifiers():
    # He et al. 2015, Table 1 (50-layer): conv1 7x7, 64, stride 2; 3, 4, 6 and 3 bottleneck blocks of
    # 1x1, 3x3, 1x1; a 1x1 projection entering each stage: 1 + 3 * 16 + 4 = 53 convolutions.
    model = get_model("resnet50")
    shapes = speedlib.convolution_shapes(model)
    assert (len(shapes), sum(s["count"] for s in shapes)) == (20, 53)
    assert shapes[0] == dict(input=(230, 230, 3), filters=64, kernel_size=(7, 7), strides=(2, 2), padding="valid",
                             groups=1, dilation_rate=(1, 1), count=1, flops=2 * 7 * 7 * 3 * 64 * 112 * 112)
    three_by_three = {s["input"][0]: s["count"] for s in shapes if s["kernel_size"] == (3, 3)}
    assert three_by_three == {56: 3, 28: 4, 14: 6, 7: 3}
    # every 3x3 of a stage costs the same: channels double as the side halves
    assert {s["flops"] for s in shapes if s["kernel_size"] == (3, 3)} == {2 * 3 * 3 * 64 * 64 * 56 * 56}
    classifier = 2 * (2048 + 1) * 1000
    assert sum(s["count"] * s["flops"] for s in shapes) + classifier == speedlib.flops_per_image(model)


def test_lenet5_runs_c1_c3_through_its_table_and_c5_which_carry_all_its_flops_but_s2_s4_f6_and_the_rbfs():
    # LeCun et al. 1998, section II.B: C1 6 maps of 5x5 on 32x32, C3 16 maps reading 60 of the 6 x 16 (input,
    # output) pairs of Table I, C5 120 maps of 5x5 on 5x5; C3 runs as one dense 5x5 convolution (SparseConv2D)
    # and counts the connections of its table's pairs: 60 x 25 x 10 x 10 and one bias per map and position.
    model = get_model("lenet5")
    shapes = speedlib.convolution_shapes(model)
    assert [(s["input"], s["filters"], s.get("pairs"), s["count"], s["flops"]) for s in shapes] == [
        ((32, 32, 1), 6, None, 1, 2 * 122_304), ((14, 14, 6), 16, 60, 1, 2 * 151_600),
        ((5, 5, 16), 120, None, 1, 2 * 48_120)]
    assert _int8_kernels_script().describe(shapes[1]) == "5x5/1 6->16 at 14x14, 60 of 96 pairs"
    s2, s4, f6, rbf = 5_880, 2_000, 10_164, 840
    assert sum(s["flops"] for s in shapes) + 2 * (s2 + s4 + f6 + rbf) == speedlib.flops_per_image(model)


def _int8_kernels_script():
    spec = importlib.util.spec_from_file_location("bench_int8", os.path.join(ROOT, "benchmarks", "int8_kernels.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_int8_kernels_benchmark_weights_each_convolution_by_how_often_the_model_runs_it(tmp_path):
    bench = _int8_kernels_script()
    shape = dict(input=(56, 56, 64), filters=128, kernel_size=(3, 3), strides=(2, 2), padding="same", groups=2,
                 dilation_rate=(1, 1))
    assert bench.describe(shape) == "3x3/2 64->128 at 56x56, groups 2"
    rows = [dict(convolution="a", count=3, mflops=200.0, **{"float32 ms": 2.0, "int8 ms": 1.0}),
            dict(convolution="b", count=1, mflops=100.0, **{"float32 ms": 1.0, "int8 ms": 2.0})]
    table = bench.summarize([(dict(model="resnet50"), rows)]).set_index("convolution")
    total = table.loc[bench.TOTAL]
    assert (total["count"], total["mflops"], total["float32 ms"], total["int8 ms"]) == (4, 700.0, 7.0, 5.0)
    assert total["int8 / float32"] == pytest.approx(5 / 7)
    assert table.loc["a", "float32 GFLOP/s"] == 100.0 and table.loc["a", "int8 GOP/s"] == 200.0  # 200 MFLOP in 1 ms
    assert "int8 built-in / int8" not in table
    # with TensorFlow Lite's built-in kernels timed too: their own weighted totals, and built-in int8 over XNNPACK's
    for row, builtin in zip(rows, (6.0, 1.0)):
        row.update({"float32 built-in ms": 4.0, "int8 built-in ms": builtin})
    total = bench.summarize([(dict(model="resnet50"), rows)]).set_index("convolution").loc[bench.TOTAL]
    assert (total["float32 built-in ms"], total["int8 built-in ms"]) == (16.0, 19.0)
    assert total["int8 built-in / int8"] == pytest.approx(19 / 5)
    assert total["int8 built-in GOP/s"] == pytest.approx(700 / 19)


def test_int8_kernels_benchmark_converts_each_convolution_both_ways_in_a_child(tmp_path):
    """The whole script on lenet5 (C3 through its table) with the built-in kernels too, one call each: checks the
    conversions, the four forms and the table, asserts no speed."""
    bench = _int8_kernels_script()
    assert bench.main(["--models", "lenet5", "--repeats", "1", "--threads", "1", "--builtin-kernels",
                       "--out", str(tmp_path)]) == 0
    with open(tmp_path / "int8_kernels.csv") as f:
        rows = list(csv.DictReader(f))
    shapes = speedlib.convolution_shapes(get_model("lenet5"))
    assert [r["convolution"] for r in rows] == [bench.describe(s) for s in shapes] + [bench.TOTAL]
    assert [int(float(r["count"])) for r in rows] == [s["count"] for s in shapes] + [sum(s["count"] for s in shapes)]
    forms = ("float32", "int8", "float32 built-in", "int8 built-in")
    assert all(float(r[f"{form} ms"]) > 0 for r in rows for form in forms)
    assert "| lenet5 | all convolutions, weighted |" in (tmp_path / "int8_kernels.md").read_text()


def test_probe_scripts_refuse_a_count_below_one_with_exit_status_2(capsys):
    bench = _int8_kernels_script()
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--repeats", "0"])
    assert exit_.value.code == 2
    assert "--repeats must be 1 or more. Received: 0" in capsys.readouterr().err


def test_a_stopped_run_resumes_with_the_comparisons_it_finished_and_runs_an_unfinished_one_again_whole(
        tmp_path, monkeypatch, capsys):
    bench = _speed_script()
    calls = []

    def child(task, timeout, env=None):  # what a keras child reports, with no framework run
        calls.append(task["precision"])
        if len(calls) == 3:  # the first child of the second comparison: the machine goes away
            raise KeyboardInterrupt
        speed = {"float32": 100.0, "mixed_bfloat16": 150.0}[task["precision"]] + len(calls)
        return {"rows": [["train_images_per_s", speed, "images/s"]], "params": 269_722,
                "flops_per_image": 81_102_100}, None

    monkeypatch.setattr(bench, "run_child", child)
    argv = ["--models", "resnet20", "--precisions", "float32", "mixed_bfloat16", "--jit", "off", "--spe", "1",
            "--repeats", "2", "--no-peers", "--no-infer", "--no-pipeline", "--no-litert", "--no-matmul",
            "--out", str(tmp_path)]
    with pytest.raises(KeyboardInterrupt):
        bench.main(argv)
    assert calls == ["float32", "float32", "mixed_bfloat16"]
    progress = _progress(tmp_path)
    assert len(progress["plan"]) == 2 and len(progress["done"]) == 1 and len(progress["sittings"]) == 1

    calls.clear()
    assert bench.main(argv + ["--resume"]) == 0
    assert calls == ["mixed_bfloat16", "mixed_bfloat16"]  # the second comparison only, both its repeats
    with open(tmp_path / "speed.csv") as f:
        speeds = sorted((r["precision"], float(r["value"]), float(r["worst"]), float(r["repeats"]))
                        for r in csv.DictReader(f) if r["metric"] == "train_images_per_s")
    # best and worst of each comparison's two repeats: the first sitting's float32, the second's bfloat16
    assert speeds == [("float32", 102.0, 101.0, 2), ("mixed_bfloat16", 152.0, 151.0, 2)]
    md = (tmp_path / "speed.md").read_text()
    assert "4 of 4 configurations" in md and "over 2 sittings (speed.py --resume)" in md
    assert f"run: python benchmarks/speed.py {' '.join(argv)}" in md  # the command that started it
    assert "1 of 2 comparisons kept from earlier sittings" in capsys.readouterr().out


def _progress(out):
    """The progress record a speed.py run left under `out`."""
    import json

    with open(out / speedlib.PROGRESS_FILE) as f:
        return json.load(f)


def test_resume_refuses_another_plan_another_machine_or_no_run_and_says_what_to_do(tmp_path, monkeypatch, capsys):
    bench = _speed_script()
    monkeypatch.setattr(bench, "run_child", lambda task, timeout, env=None: (
        {"rows": [["train_images_per_s", 10.0, "images/s"]]}, None))
    argv = ["--models", "lenet5_modern", "--precisions", "float32", "--jit", "off", "--spe", "1", "--repeats", "1",
            "--no-peers", "--no-infer", "--no-pipeline", "--no-litert", "--no-matmul", "--out", str(tmp_path)]
    assert bench.main(argv + ["--resume"]) == 2
    assert "there is no stopped run to resume" in capsys.readouterr().err
    assert bench.main(argv) == 0
    other = [a if a != "lenet5_modern" else "resnet20" for a in argv]
    assert bench.main(other + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert "planned 1 comparisons and these arguments plan 1 (1 of them not in its plan)" in err
    assert f"Resume it with the arguments that started it: python benchmarks/speed.py {' '.join(argv)}" in err

    path = str(tmp_path / speedlib.PROGRESS_FILE)
    plan = _progress(tmp_path)["plan"]
    with pytest.raises(ValueError, match="was measured on\n  Machine: A\nand this is\n  Machine: B\n"):
        speedlib.save_progress(path, speedlib.new_progress("Machine: A", plan, "x"))
        speedlib.load_progress(path, "Machine: B", plan)
    assert not os.path.exists(path + ".partial")  # written whole, then moved into place
