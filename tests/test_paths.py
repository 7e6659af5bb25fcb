"""Where trained models live (keras_cnns.paths): training writes where classify looks, from any working
directory; a registry alias finds its model; the hints for untrained models give commands a CPU finishes."""

import os
import subprocess
import sys

import pytest

import keras_cnns
from keras_cnns import inference, metadata, paths
from keras_cnns.data.preprocessing import Preprocessing
from keras_cnns.training.recipes import cpu_input_size, cpu_train_command

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_home_is_the_environment_variable_else_the_checkouts_saved_models(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.HOME_ENV, raising=False)
    monkeypatch.delenv(paths.LEGACY_ENV, raising=False)
    assert paths.in_checkout()
    assert paths.saved_models_dir() == os.path.join(ROOT, "saved_models")
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    assert paths.saved_models_dir() == str(tmp_path) == paths.model_search_path()[0]
    from keras_cnns.training import default_output_dir
    assert default_output_dir("lenet5", "tfds:tiny_shapes") == str(tmp_path / "lenet5-tiny_shapes")
    # a TFDS config keeps its dataset's name; a folder is named by its last component
    assert default_output_dir("frcnn_resnet_small", "tfds:voc/2007") == str(tmp_path / "frcnn_resnet_small-voc_2007")
    assert default_output_dir("lenet5", "path/to/my images/") == str(tmp_path / "lenet5-my_images")


def test_outside_a_checkout_the_home_is_a_per_user_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.HOME_ENV, raising=False)
    monkeypatch.delenv(paths.LEGACY_ENV, raising=False)
    monkeypatch.setattr(paths, "REPO_ROOT", str(tmp_path))           # no pyproject.toml here
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(sys, "platform", "linux")
    assert not paths.in_checkout()
    assert paths.saved_models_dir() == str(tmp_path / "data" / "keras_cnns" / "saved_models")


@pytest.mark.parametrize("name, size", [("googlenet", 32), ("resnet50", 32), ("vgg_cifar", 32), ("nin_cifar", 32),
                                        ("resnet20", 32), ("lenet5", 32), ("lenet5_modern", 28), ("alexnet", 67)])
def test_cpu_training_size_is_small_and_accepted_by_the_architecture(name, size):
    spec = keras_cnns.get_spec(name)
    assert cpu_input_size(spec) == size and size >= spec.min_input_size


def test_no_trained_weights_hint_is_the_fast_recipe_at_a_cpu_size(monkeypatch, tmp_path):
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    with pytest.raises(inference.ModelSourceError) as info:
        inference.load("inception")
    message = str(info.value)
    assert "googlenet has no trained weights" in message and "\n" not in message
    assert "`python apps/train.py --model googlenet --dataset fashion_mnist --recipe fast --input-size 32`" in message
    with pytest.raises(inference.ModelSourceError, match="--input-size 32`, or use ImageNet weights"):
        inference.load("resnet50")


def test_imagenet_weights_error_names_the_models_that_have_them():
    with pytest.raises(inference.ModelSourceError) as info:
        inference.load("alexnet", weights="imagenet")
    message = str(info.value)
    assert message.startswith("alexnet has no ImageNet weights")
    assert "resnet50, resnet101, resnet152" in message and "vgg16, vgg19" in message


def test_the_alias_inception_finds_a_googlenet_in_the_home(monkeypatch, tmp_path):
    """The card's `classify.py img.jpg --model inception` loads saved googlenet-fashion_mnist/."""
    model = keras_cnns.get_model("googlenet", input_shape=(32, 32, 1), num_classes=10)
    folder = tmp_path / "googlenet-fashion_mnist"
    folder.mkdir()
    model.save(str(folder / metadata.MODEL_FILENAME))
    prep = Preprocessing(size=(32, 32), channels=1)
    metadata.write(str(folder), {"model": "googlenet", "dataset": "fashion_mnist", "input_shape": [32, 32, 1],
                                 "class_names": [str(i) for i in range(10)], "preprocessing": prep.to_dict()})
    monkeypatch.setenv(paths.HOME_ENV, str(tmp_path))
    predictor = inference.load("inception")
    assert predictor.source == str(folder / metadata.MODEL_FILENAME)
    assert len(predictor.classify([inference.read_image(os.path.join(ROOT, "docs", "lenet5_bitmaps.png"))],
                                  top=3)[0]) == 3


def _run(args, cwd, home):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **{paths.HOME_ENV: str(home)})
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_train_from_one_directory_classify_from_another(tmp_path):
    home, here, there = tmp_path / "home", tmp_path / "a", tmp_path / "b"
    here.mkdir(), there.mkdir()
    done = _run([os.path.join(ROOT, "apps", "train.py"), "--model", "lenet5", "--recipe", "fast", "--epochs", 1,
                 "--batch-size", 64, "--limit", 256, "--verbose", 0], here, home)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"output={home / 'lenet5-fashion_mnist'}" in done.stdout
    assert not os.path.exists(here / "saved_models")          # nothing relative to the working directory
    image = os.path.join(ROOT, "docs", "lenet5_bitmaps.png")
    done = _run([os.path.join(ROOT, "apps", "classify.py"), image, "--model", "lenet5", "--json"], there, home)
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"path"' in done.stdout and '"probability"' in done.stdout
