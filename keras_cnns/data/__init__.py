"""Data: sources (Fashion-MNIST, MNIST, image folders, TFDS), tf.data pipelines, the papers'
augmentations and the one preprocessing description shared by training and inference."""

from keras_cnns.data.preprocessing import Preprocessing  # noqa: F401
