import os
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
