"""`--dataset tfds:NAME` offline: any dataset already prepared in a TFDS data dir trains and evaluates, even
one whose builder code the training process never imports; a missing tensorflow_datasets or an
unprepared dataset is one line with instructions and exit status 2 in every app (the regression of issue 9)."""

import os
import subprocess
import sys

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class TinyShapes(tfds.core.GeneratorBasedBuilder):
    """8x8 grey images: dark (values 0-99) and light (150-249), 64 training and 16 test images."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(8, 8, 1)),
                                                 "label": tfds.features.ClassLabel(names=["dark", "light"])}),
            supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 64), "test": self._generate_examples(1, 16)}

    def _generate_examples(self, seed, n):
        rng = np.random.default_rng(seed)
        for i in range(n):
            image = rng.integers(0, 100, (8, 8, 1)) + 150 * (i % 2)
            yield i, {"image": image.astype(np.uint8), "label": i % 2}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tfds")
    TinyShapes(data_dir=str(directory)).download_and_prepare()
    return directory


def _app(name, *args, cwd=None, env=None):
    full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run([sys.executable, os.path.join(ROOT, "apps", f"{name}.py"), *map(str, args)], cwd=cwd,
                          env=full_env, capture_output=True, text=True, timeout=300)


def test_a_prepared_tfds_dataset_trains_and_evaluates_by_name(data_dir, tmp_path):
    done = _app("train", "--model", "lenet5_modern", "--dataset", "tfds:tiny_shapes", "--data-dir", data_dir,
                "--recipe", "fast", "--epochs", 1, "--batch-size", 16, "--verbose", 0,
                cwd=tmp_path, env={"KERAS_CNNS_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stderr[-2000:]
    out = tmp_path / "home" / "lenet5_modern-tiny_shapes"
    assert "64 training" not in done.stdout and "16 test images" in done.stdout  # 10% of train held out
    assert (out / "model.keras").is_file()
    done = _app("evaluate", out, "--data-dir", data_dir, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"examples": 16' in done.stdout and '"dataset": "tfds:tiny_shapes"' in done.stdout


def test_an_unprepared_tfds_dataset_is_one_line_and_exit_2(tmp_path):
    done = _app("train", "--model", "lenet5", "--dataset", "tfds:not_prepared_here", "--data-dir", tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("train.py: error: TFDS dataset 'not_prepared_here' is not available")
    assert "download_and_prepare()" in lines[-1] and "--data-dir" in lines[-1]


def test_without_tensorflow_datasets_train_and_evaluate_say_so_in_one_line(tmp_path, capsys, monkeypatch):
    """The bug: train.py and evaluate.py caught too few exception types, so this ended in a traceback."""
    from keras_cnns.cli import evaluate, train

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)   # `import tensorflow_datasets` fails
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--model", "lenet5", "--dataset", "tfds:cifar10", "--output", str(tmp_path / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs the tensorflow_datasets package" in err
    assert "pip install tensorflow-datasets" in err
    shipped = os.path.join(ROOT, "saved_models", "lenet5-fashion_mnist")
    assert evaluate.main([shipped, "--dataset", "tfds:fashion_mnist"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("evaluate.py: error: 'tfds:fashion_mnist' needs the")
