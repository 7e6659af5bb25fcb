"""What the tests on Debian's Fashion-MNIST files (package dataset-fashion-mnist) share: where the files are, the
mark that skips a test without them, and a scene preprocessing that keeps the pixel values as they are (so a
pipeline's images can be compared with the scene generator's canvases)."""

import os

import pytest

from keras_cnns.data.preprocessing import Preprocessing

FASHION_DIR = "/usr/share/datasets/fashion-mnist"
needs_fashion = pytest.mark.skipif(not os.path.isdir(FASHION_DIR), reason="apt-get install dataset-fashion-mnist")
RAW_SCENES = Preprocessing(size=(128, 128), channels=1, resize="resize", mean=0.0, std=1.0)
