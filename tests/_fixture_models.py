"""Small trained models for the classify/export tests, made here so those tests don't depend on
apps/train.py or on a committed saved_models/ entry: a few seconds of training on Fashion-MNIST
(Debian's dataset-fashion-mnist files), saved exactly as training saves (model.keras + metadata.json)."""

import gzip
import os

import keras
import numpy as np

from keras_cnns import metadata
from keras_cnns.data.preprocessing import Preprocessing

from _fashion import FASHION_DIR

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]


def fashion_mnist(split, n):
    """First n (uint8 images [n, 28, 28, 1], int labels [n]) of the "train" or "t10k" split."""
    with gzip.open(os.path.join(FASHION_DIR, f"{split}-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)[:n]
    with gzip.open(os.path.join(FASHION_DIR, f"{split}-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)[:n].astype(np.int32)
    return images, labels


def preprocessing():
    return Preprocessing(size=(32, 32), channels=1, resize="pad", mean=(72.94,), std=(90.02,))


def _metadata(model_name, output, prep, input_shape, class_names=CLASS_NAMES, dataset="fashion_mnist"):
    return {"model": model_name, "dataset": dataset, "class_names": list(class_names),
            "input_shape": list(input_shape), "output": output, "preprocessing": prep.to_dict(),
            "recipe": "test", "epochs": 1, "test_accuracy": None, "test_top5": None, "seed": 0,
            "versions": metadata.versions(), "git_commit": None}


def train_small_cnn(directory, *, n_train=6000, epochs=2, seed=0):
    """A 2-conv CNN trained briefly on Fashion-MNIST (~80% test accuracy), saved to `directory`."""
    keras.utils.set_random_seed(seed)
    prep = preprocessing()
    images, labels = fashion_mnist("train", n_train)
    x = np.asarray(prep.apply(images), np.float32)
    inputs = keras.Input((32, 32, 1), name="images")
    h = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    h = keras.layers.MaxPooling2D(name="pool1")(h)
    h = keras.layers.Conv2D(16, 3, activation="relu", name="conv2")(h)
    h = keras.layers.MaxPooling2D(name="pool2")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(h)
    model = keras.Model(inputs, outputs, name="small_cnn")
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, labels, batch_size=128, epochs=epochs, verbose=0)
    os.makedirs(directory, exist_ok=True)
    model.save(os.path.join(directory, metadata.MODEL_FILENAME))
    metadata.write(directory, _metadata("small_cnn", "probabilities", prep, (32, 32, 1)))
    return directory


def rbf_model(directory):
    """An untrained model whose output is read as RBF distances (non-negative, smallest wins)."""
    keras.utils.set_random_seed(1)
    prep = preprocessing()
    inputs = keras.Input((32, 32, 1))
    h = keras.layers.Conv2D(4, 5, strides=2, activation="tanh")(inputs)
    h = keras.layers.Flatten()(h)
    outputs = keras.layers.Dense(10, activation="softplus", name="rbf")(h)
    model = keras.Model(inputs, outputs, name="fake_rbf")
    os.makedirs(directory, exist_ok=True)
    model.save(os.path.join(directory, metadata.MODEL_FILENAME))
    metadata.write(directory, _metadata("fake_rbf", "rbf_distances", prep, (32, 32, 1)))
    return directory


def lrn_grouped_model(directory, size=32):
    """An untrained AlexNet-like model: LRN and a two-group convolution, RGB input."""
    from keras_cnns.layers import LocalResponseNormalization

    keras.utils.set_random_seed(2)
    prep = Preprocessing(size=(size, size), channels=3, resize="resize", mean=(127.5,), std=(64.0,))
    inputs = keras.Input((size, size, 3))
    h = keras.layers.Conv2D(8, 5, strides=2, activation="relu", name="conv1")(inputs)
    h = LocalResponseNormalization(name="lrn1")(h)
    h = keras.layers.Conv2D(16, 3, groups=2, activation="relu", name="conv2")(h)
    h = LocalResponseNormalization(name="lrn2")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(5, activation="softmax", name="predictions")(h)
    model = keras.Model(inputs, outputs, name="lrn_grouped")
    os.makedirs(directory, exist_ok=True)
    model.save(os.path.join(directory, metadata.MODEL_FILENAME))
    metadata.write(directory, _metadata("lrn_grouped", "probabilities", prep, (size, size, 3),
                                        class_names=[f"class{i}" for i in range(5)], dataset="random"))
    return directory
