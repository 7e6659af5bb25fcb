import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


import pytest  # noqa: E402


@pytest.fixture
def stats_in_tmp(tmp_path_factory, monkeypatch):
    """Dataset statistics cached in the session's temporary folder, not under ~/.keras (modules opt in)."""
    monkeypatch.setenv("KERAS_CNNS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def fashion():
    """The Fashion-MNIST source (Debian's files), once per module."""
    from keras_cnns import data

    return data.load_source("fashion_mnist")


# -- small Fashion-MNIST data and the train.py runner, for the training tests -----------------------------------
def _small_arrays(n_train=512, n_test=128):
    from keras_cnns import data

    source = data.load_source("fashion_mnist")
    (x, y), (xt, yt) = source.arrays("train"), source.arrays("test")
    return (x[:n_train], y[:n_train]), (xt[:n_test], yt[:n_test]), source.class_names


def _write_small_fashion_mnist(directory, n_train=512, n_test=128):
    from keras_cnns import data

    (x, y), (xt, yt), _ = _small_arrays(n_train, n_test)
    os.makedirs(directory, exist_ok=True)
    for name, array in (("train-images-idx3-ubyte", x[..., 0]), ("train-labels-idx1-ubyte", y),
                        ("t10k-images-idx3-ubyte", xt[..., 0]), ("t10k-labels-idx1-ubyte", yt)):
        data.write_idx(os.path.join(directory, name + ".gz"), array)
    return str(directory)


def _app_env(env=None):
    return dict(os.environ if env is None else env, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT)


def _train_cli(*args, env=None, **kwargs):
    return subprocess.run([sys.executable, os.path.join(ROOT, "apps", "train.py"), *map(str, args)],
                          capture_output=True, text=True, env=_app_env(env), **kwargs)


def _train_popen(*args, **kwargs):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "apps", "train.py"), *map(str, args)],
                            env=_app_env(), **kwargs)


@pytest.fixture(scope="session")
def small_fashion_arrays():
    """(n_train=512, n_test=128) -> ((x, y), (x_test, y_test), class names): the first images of Fashion-MNIST's
    train and test splits."""
    return _small_arrays


@pytest.fixture(scope="session")
def small_fashion_mnist():
    """(directory, n_train=512, n_test=128) -> a Fashion-MNIST data dir (the four IDX files) holding only the
    first images: for subprocess runs."""
    return _write_small_fashion_mnist


@pytest.fixture(scope="session")
def train_cli():
    """(*args, env=None, **subprocess.run keywords) -> the CompletedProcess of apps/train.py, TensorFlow quiet."""
    return _train_cli


@pytest.fixture(scope="session")
def train_popen():
    """(*args, **subprocess.Popen keywords) -> apps/train.py running (a run to watch, kill or race)."""
    return _train_popen
