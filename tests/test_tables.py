"""The tables evaluate.py prints and the accuracy benchmark writes, built with pandas."""

import importlib.util
import os
import sys

import numpy as np
import pytest

from keras_cnns.training.evaluate import per_class_table, summarize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_per_class_table_reads_the_confusion_matrix():
    # 4 cats (3 right, 1 called dog), 2 dogs (both right), 2 birds (1 right, 1 called cat)
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 1, 2, 0])
    table = per_class_table(summarize(labels, np.eye(3)[pred], ["cat", "dog", "bird"]))
    assert list(table.index) == ["cat", "dog", "bird"] and list(table["images"]) == [4, 2, 2]
    assert list(table["accuracy"]) == [0.75, 1.0, 0.5]
    assert list(table["confused_with"]) == ["dog", "", "cat"] and list(table["times"]) == [1, 0, 1]


def test_accuracy_benchmark_writes_csv_and_markdown_with_mixed_rows(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_accuracy", os.path.join(ROOT, "benchmarks", "accuracy.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = [{"kind": "accuracy", "model": "lenet5", "test_accuracy": 0.8924, "target": 0.89},
            {"kind": "speed", "model": "resnet20", "test_accuracy": 0.51, "target": ""}]
    bench.write(rows, str(tmp_path))
    csv_lines = (tmp_path / "accuracy.csv").read_text().splitlines()
    assert csv_lines == ["kind,model,test_accuracy,target", "accuracy,lenet5,0.8924,0.89", "speed,resnet20,0.51,"]
    md = (tmp_path / "accuracy.md").read_text().splitlines()
    assert md[2] == "| kind | model | test_accuracy | target |" and md[4] == "| accuracy | lenet5 | 0.8924 | 0.89 |"


def test_accuracy_benchmark_trains_each_run_in_each_precision_asked_for_and_heads_its_table(tmp_path):
    bench = _bench("accuracy")
    args = bench.parse_args(["--models", "resnet20", "--precisions", "float32", "mixed_bfloat16", "--skip-speed"])
    runs = bench.planned_runs(args, "work")
    assert [(fn.__name__, a[0], a[-2]) for fn, a in runs] == [("run_accuracy", "resnet20", "float32"),
                                                               ("run_accuracy", "resnet20", "mixed_bfloat16")]
    spe = bench.planned_runs(bench.parse_args(["--models", "lenet5", "--steps-per-execution", "1", "8",
                                               "--skip-speed"]), "work")
    assert [(a[0], a[-2], a[-1]) for _, a in spe] == [("lenet5", "float32", 1), ("lenet5", "float32", 8)]
    with_speed = bench.planned_runs(bench.parse_args(["--models", "lenet5"]), "work")
    assert [fn.__name__ for fn, _ in with_speed] == ["run_accuracy"] + ["run_speed"] * 8
    bench.write([{"kind": "accuracy", "model": "resnet20"}], str(tmp_path), header="Machine: x; run: y")
    assert (tmp_path / "accuracy.md").read_text().splitlines()[2] == "Machine: x; run: y"


def _bench(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(ROOT, "benchmarks", f"{name}.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_segmentation_benchmark_tables_say_whether_the_papers_order_and_the_target_hold(tmp_path):
    bench = _bench("segmentation")
    rows = [{"model": m, "epochs": 12, "test_scenes": 2000, "mean_iou": iou, "pixel_accuracy": 0.9,
             "train_minutes": 1.0, "inference_images_per_second": 10.0, "parameters": 1, "output": "x",
             "iou_background": 0.99, "iou_Bag": None}
            for m, iou in zip(bench.MODELS, (0.61, 0.7, 0.76))]
    text = bench.write(rows, str(tmp_path))
    assert "FCN-32s < FCN-16s < FCN-8s: holds (0.61 < 0.7 < 0.76)" in text
    assert "FCN-8s mean IoU 0.76 against the target 0.75: met.\n" in text
    rows[2]["mean_iou_mirrored"] = 0.77
    assert ("FCN-8s mean IoU 0.76 against the target 0.75: met (averaged with the mirror image, segment.py "
            "--mirror: 0.77).") in bench.write(rows, str(tmp_path))
    assert "| background | 0.99 | 0.99 | 0.99 |" in text and "| Bag |  |  |  |" in text
    rows[1]["mean_iou"] = 0.5
    assert "does not hold" in bench.write(rows, str(tmp_path))
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{bench.BEGIN}\nold\n{bench.END}\nb\n")
    sys.path.append(os.path.join(ROOT, "benchmarks"))
    from report import write_readme_section
    write_readme_section(str(readme), bench.BEGIN, bench.END, "new table\n")
    assert readme.read_text() == f"a\n{bench.BEGIN}\nnew table\n{bench.END}\nb\n"
    rows[1]["mean_iou"] = 0.7
    bench.write(rows, str(tmp_path))
    kept = bench.earlier_rows(str(tmp_path))
    assert [r["model"] for r in kept] == list(bench.MODELS)
    assert kept[1]["mean_iou"] == 0.7 and kept[0]["iou_Bag"] is None and kept[0]["iou_background"] == 0.99
    assert bench.earlier_rows(str(tmp_path / "none")) == []
    # a new FCN-8s run of the same setting replaces its row; one of another setting is added beside it
    again = dict(rows[2], mean_iou=0.74)
    assert [r["mean_iou"] for r in bench.replace(kept, again)] == [0.61, 0.7, 0.74]
    longer = dict(rows[2], mean_iou=0.78, epochs=30, augment="redraw", backbone="vgg16_slim")
    both = bench.replace(kept, longer)
    assert [r["mean_iou"] for r in both] == [0.61, 0.7, 0.76, 0.78]
    text = bench.write(both, str(tmp_path))
    assert "FCN-8s (none, scratch, 12 epochs): holds (0.61 < 0.7 < 0.76)" in text
    assert "Best FCN-8s mean IoU 0.78 (redraw, vgg16_slim, 30 epochs) against the target 0.75: met" in text
    assert "| class | fcn32s_vgg16_slim (none, scratch, 12 epochs) |" in text
    # --from-csv measures nothing: two runs' files in one table, a later file's row replacing the same setting's
    first, second = tmp_path / "first", tmp_path / "second"
    bench.write(rows, str(first))
    bench.write([longer, dict(rows[0], mean_iou=0.6)], str(second))
    assert bench.main(["--from-csv", str(first / "segmentation.csv"), str(second / "segmentation.csv"),
                       "--results", str(tmp_path / "merged")]) == 0
    merged = bench.earlier_rows(str(tmp_path / "merged"))
    assert [(r["model"], r["mean_iou"]) for r in merged] == [
        ("fcn32s_vgg16_slim", 0.6), ("fcn16s_vgg16_slim", 0.7), ("fcn8s_vgg16_slim", 0.76),
        ("fcn8s_vgg16_slim", 0.78)]


def test_the_segmentation_benchmark_holds_each_twin_to_the_papers_order_and_names_the_best_fcn8s(tmp_path):
    bench = _bench("segmentation")
    assert bench.parse_args(["--models", "fcn8s_vgg16_quarter"]).models == ["fcn8s_vgg16_quarter"]
    with pytest.raises(SystemExit) as exit_info:   # --ship with models that don't include the shipped one
        bench.parse_args(["--ship"])
    assert exit_info.value.code == 2 and bench.parse_args(["--ship", "--models", bench.SHIPPED]).ship
    assert [bench.twin(m) for m in bench.CHOICES] == ["slim"] * 3 + ["quarter"] * 3
    base = {"epochs": 30, "test_scenes": 2000, "augment": "redraw", "iou_background": 0.99}
    rows = [dict(base, model=m, mean_iou=iou, backbone="vgg16_slim") for m, iou in zip(bench.MODELS, (0.6, 0.67, 0.71))]
    rows += [dict(base, model=m.replace("_slim", "_quarter"), mean_iou=iou, backbone="vgg16_slim")
             for m, iou in zip(bench.MODELS, (0.62, 0.73, 0.7))]
    text = bench.write(rows, str(tmp_path))
    assert "FCN-32s < FCN-16s < FCN-8s (vgg16_slim): holds (0.6 < 0.67 < 0.71)" in text
    assert "FCN-32s < FCN-16s < FCN-8s (vgg16_quarter): does not hold (0.62 < 0.73 < 0.7)" in text
    assert "Best FCN-8s mean IoU 0.71 (fcn8s_vgg16_slim) against the target 0.75: not met.\n" in text


def test_the_task_benchmarks_say_how_each_run_started(tmp_path):
    sys.path.append(os.path.join(ROOT, "benchmarks"))
    from report import start_columns, training_benchmark_parser, training_options

    parser = training_benchmark_parser("doc\n\nusage", "segmentation", "fcn8s_vgg16_slim", "segment.py")
    assert training_options(parser.parse_args([])) == {"augment": "recipe", "backbone_weights": None,
                                                       "precision": "float32"}
    chosen = parser.parse_args(["--augment", "none", "--backbone-weights", "runs/vgg16_slim/model.keras",
                                "--precision", "mixed_bfloat16"])
    assert training_options(chosen) == {"augment": None, "backbone_weights": "runs/vgg16_slim/model.keras",
                                        "precision": "mixed_bfloat16"}
    assert start_columns({"augment": None, "backbone_weights": None}) == {"augment": "none", "backbone": "scratch",
                                                                          "precision": "float32"}
    assert start_columns({"augment": "flip", "backbone_weights": "/w/runs/vgg16_slim/model.keras",
                          "precision": "mixed_bfloat16"}) == {
        "augment": "flip", "backbone": "vgg16_slim", "precision": "mixed_bfloat16"}
    bench = _bench("segmentation")
    row = {"model": "fcn8s_vgg16_slim", "epochs": 12, "test_scenes": 2000, "mean_iou": 0.7, "pixel_accuracy": 0.9,
           "train_minutes": 1.0, "inference_images_per_second": 10.0, "parameters": 1, "output": "x",
           "augment": "flip", "backbone": "vgg16_slim", "iou_background": 0.99}
    assert "| fcn8s_vgg16_slim | 12 | flip | vgg16_slim | 0.5 | 2000 | 0.7 |" in bench.write([row], str(tmp_path))
    # a run in bfloat16 is its own setting, and only then has the table a precision column
    text = bench.write([row, {**row, "mean_iou": 0.69, "precision": "mixed_bfloat16"}], str(tmp_path))
    assert "| fcn8s_vgg16_slim | 12 | flip | vgg16_slim | 0.5 | mixed_bfloat16 | 2000 | 0.69 |" in text
    assert "fcn8s_vgg16_slim (flip, vgg16_slim, 12 epochs, mixed_bfloat16)" in text


def test_the_segmentation_benchmark_tells_runs_without_dropout_apart(tmp_path):
    from keras_cnns.models import fcn, vgg

    bench = _bench("segmentation")
    assert bench.PAPER_DROPOUT == fcn.DROPOUT
    assert bench.TWINS == tuple(vgg.SMALL_WIDTHS)  # its copy, kept for a --help that loads no TensorFlow
    assert bench.parse_args(["--dropout", "0"]).dropout == 0.0 and bench.parse_args([]).dropout is None
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--dropout", "1"])
    assert exit_info.value.code == 2
    older = {"model": "fcn8s_vgg16_slim", "epochs": 30, "test_scenes": 2000, "mean_iou": 0.7, "augment": "redraw",
             "backbone": "vgg16_slim", "iou_background": 0.99}        # written before the dropout column
    without = dict(older, mean_iou=0.72, dropout=0.0)
    rows = bench.replace([older], without)
    assert [r["mean_iou"] for r in rows] == [0.7, 0.72]                # another setting: both rows kept
    text = bench.write(rows, str(tmp_path))
    assert "| fcn8s_vgg16_slim | 30 | redraw | vgg16_slim | 0.5 | 2000 | 0.7 |" in text
    assert "| fcn8s_vgg16_slim | 30 | redraw | vgg16_slim | 0.0 | 2000 | 0.72 |" in text
    assert "Best FCN-8s mean IoU 0.72 (redraw, vgg16_slim, 30 epochs, dropout 0) against the target" in text
    assert "| class | fcn8s_vgg16_slim (redraw, vgg16_slim, 30 epochs) | " in text
    assert [bench.dropout(r) for r in bench.earlier_rows(str(tmp_path))] == [0.5, 0.0]


def test_code_noise_statistics_of_a_hand_set_encoder_whose_code_is_the_sign_of_the_vector():
    import keras_cnns

    sys.path.append(os.path.join(ROOT, "benchmarks"))
    bench = _bench("code_noise")
    # code logits = the vector itself (identity kernel, no hidden layer): class 0 codes 1111, class 1 codes 0011
    model = keras_cnns.get_model("feature_autoencoder", input_shape=(4,), bits=4, hidden=(), code_noise=0)
    model.get_layer("code_logits").set_weights([np.eye(4, dtype=np.float32), np.zeros(4, np.float32)])
    labels = np.array([0, 1] * 4)
    database = np.where(labels[:, None] == 0, [1.0, 2.0, 3.0, 5.0], [-1.0, -2.0, 1.0, 1.0]).astype(np.float32)
    mirrored = database.copy()
    mirrored[:2, 0] *= -1                      # the mirror image changes bit 0 of two images: 2 of 32 bits
    originals = 2 * database - mirrored
    stats = bench.code_statistics(model, 0.0, 1.0, database, originals, mirrored, labels, bits=4, pairs=500)
    assert stats["same_class"] == 0.0 and stats["other_class"] == 2.0   # codes differ in bits 0 and 1
    assert stats["balance"] == (0.5, 1.0)                               # bits 0, 1 set for half; 2, 3 for all
    assert stats["near_zero"] == 0.0                                    # every standardised logit is +-1
    assert stats["mirror_flips"] == 2 / 32


def test_items_are_classified_whole_by_the_probabilities_summed_over_their_visible_pixels(fashion):
    from keras_cnns.data import scenes

    sys.path.append(os.path.join(ROOT, "benchmarks"))
    bench = _bench("segmentation_errors")
    test = scenes.generate("test", 12, source=fashion)
    images = fashion.arrays("test")[0][..., 0]
    truth = np.eye(11, dtype=np.float32)[test.masks]                  # the true class at every pixel
    votes = bench.item_votes([test[i] for i in range(12)], truth, images)
    shown = sum(int(v.any()) for i in range(12) for v in scenes.item_masks(test[i], images))
    assert votes.sum() == shown and np.trace(votes) == shown          # every item right
    everywhere_bag = np.zeros_like(truth)
    everywhere_bag[..., 9] = 1.0                                       # "Bag" on every pixel
    votes = bench.item_votes([test[i] for i in range(12)], everywhere_bag, images)
    assert (votes[:, 9] == votes.sum(1)).all() and votes[9, 9] == votes[9].sum()


def test_the_precisions_offered_before_tensorflow_loads_are_the_ones_fit_trains_in():
    # train.py and benchmarks/accuracy.py keep their own copy so that --help loads no TensorFlow
    from keras_cnns.cli import train
    from keras_cnns.training.fit import PRECISIONS

    assert train.PRECISIONS == _bench("accuracy").PRECISIONS == PRECISIONS
