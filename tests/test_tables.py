"""The tables evaluate.py prints and the accuracy benchmark writes, built with pandas."""

import importlib.util
import os

import numpy as np

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
