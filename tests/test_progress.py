"""Progress bars on the long loops that are not model.fit: drawn on stderr when it is a terminal, never on
stdout, and off with --quiet (progress.set_enabled(False)) or when stderr is not a terminal."""

import io
import sys

import numpy as np
import pytest
from PIL import Image

from keras_cnns import progress
from keras_cnns.data import sources


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def images(tmp_path):
    paths = []
    for i in range(6):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(np.full((4, 4), 20 * i, np.uint8)).save(paths[-1])
    return paths


def test_the_folder_scan_shows_a_bar_on_a_terminal_stderr_only(images, monkeypatch, capsys):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    sources.check_image_files(images, [0] * 6)
    assert "Checking image files" in terminal.getvalue() and "6/6" in terminal.getvalue()
    assert capsys.readouterr().out == ""          # stdout stays the results'


def test_quiet_or_a_pipe_means_no_bar(images, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress.set_enabled(False)
    try:
        sources.check_image_files(images, [0] * 6)
    finally:
        progress.set_enabled(True)
    assert terminal.getvalue() == ""
    piped = io.StringIO()                          # not a terminal
    monkeypatch.setattr(sys, "stderr", piped)
    sources.check_image_files(images, [0] * 6)
    assert piped.getvalue() == ""


def test_evaluation_counts_its_batches(monkeypatch):
    import keras
    import tensorflow as tf

    from keras_cnns.training.evaluate import predict_scores

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(), keras.layers.Dense(2)])
    data = tf.data.Dataset.from_tensor_slices((np.zeros((24, 4, 4, 1), np.float32), np.zeros(24, np.int32)))
    labels, scores = predict_scores(model, data.batch(4))
    assert scores.shape == (24, 2) and "Evaluating" in terminal.getvalue() and "6/6" in terminal.getvalue()
