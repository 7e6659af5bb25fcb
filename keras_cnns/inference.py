"""Use a trained model: load it from wherever it lives, decode images safely, and classify them.

One door, :func:`load`, takes any model source and returns a :class:`Predictor` with one interface:

- a registry name ("lenet5", "inception"): the newest ``<name>-*/`` trained by apps/train.py in the saved-models
  home (keras_cnns.paths: $KERAS_CNNS_HOME, the checkout's saved_models/, or a per-user data directory);
  with ``weights=`` ("imagenet", a keras.applications weights file or model) the model is built with
  those weights instead, with the 1000 ImageNet class names and the weights' preprocessing;
- a model directory (model.keras + metadata.json), a ``.keras`` file, a SavedModel directory or a
  ``.tflite`` file; exported artifacts find their metadata.json beside them (apps/export.py puts it there).
  A ``.keras`` or ``.tflite`` file with no metadata.json (a model trained elsewhere) still loads: class names
  from ``labels=`` (a file, one name per line) or numbered, and preprocessing read from its input shape
  (resize to its height and width, its channels, pixels scaled to [0, 1]), with a warning that says so.

Loading never runs code from a model file: ``.keras`` files load with ``safe_mode=True``, so only Keras'
own layers and the layers registered by keras_cnns can appear in them.

Images are decoded by :mod:`keras_cnns.images` (Pillow, no TensorFlow; read_image, list_images, ImageError
and MAX_PIXELS are re-exported here): JPEG, PNG, BMP, GIF, WebP, TIFF; grey, RGBA, palette, CMYK, 16-bit;
EXIF orientation applied; a pixel limit that stops decompression bombs; every failure is an
:class:`ImageError` that says what was wrong and what to do.
"""

import abc
import glob
import os
import time

import numpy as np

from keras_cnns import metadata as metadata_lib
from keras_cnns import paths
from keras_cnns.data.preprocessing import Preprocessing
from keras_cnns.images import (IMAGE_EXTENSIONS, MAX_PIXELS, ImageError, image_convention,  # noqa: F401
                               iter_images, list_images, read_image, read_images, to_convention,
                               to_model_pixels)
from keras_cnns.outputs import looks_like_probabilities, main_output

SAVED_MODELS_ENV = paths.HOME_ENV
REPO_ROOT = paths.REPO_ROOT
TRAIN_DATASET = "fashion_mnist"


class ModelSourceError(ValueError):
    """A model source that cannot be loaded; the message says why and what to do."""


saved_models_dir = paths.saved_models_dir


def default_model_dir():
    """The shipped default: LeNet-5 trained on Fashion-MNIST (in the home, else the installed copy's)."""
    return paths.find_model_dir("lenet5-fashion_mnist")


# ------------------------------------------------------------------------------------------- backends

class Predictor(abc.ABC):
    """A loaded model with its class names and preprocessing, whatever format it came from.

    Attributes:
      kind: "keras", "savedmodel" or "tflite".
      source: where it was loaded from.
      class_names, preprocessing, output ("probabilities" | "rbf_distances"), metadata.
      convention: the image convention of its training data (keras_cnns.images.image_convention), e.g.
        Fashion-MNIST's light item on black filling the frame; :meth:`preprocess` brings photos to it first.
    """

    kind = "keras"

    def __init__(self, source, metadata):
        self.source = source
        self.metadata = dict(metadata)
        self.preprocessing = Preprocessing.from_dict(self.metadata["preprocessing"])
        self.output = self.metadata.get("output", "probabilities")
        self.class_names = list(self.metadata["class_names"])
        self.convention = image_convention(self.metadata)

    @abc.abstractmethod
    def predict(self, inputs):
        """Preprocessed float32 [B, H, W, C] -> the model's raw output [B, classes] (numpy)."""

    def outputs(self, inputs):
        """Preprocessed float32 [B, H, W, C] -> every named output of the model as numpy ({name: array}): a
        detector's boxes, scores, classes and num_detections (keras_cnns.tasks.detection)."""
        raise ModelSourceError(f"{self.source}: a {self.kind} model gives one output here, not named outputs; "
                               "use the model directory or its SavedModel export.")

    def preprocess(self, images):
        """uint8 images (each (H, W, C), any size) -> float32 [B, H, W, C] model inputs: each brought to the
        training data's convention (:meth:`conform`), then the training preprocessing."""
        return np.stack([self.preprocessing.apply(image).numpy()
                         for image in self.conform(images)]).astype(np.float32)

    def conform(self, images):
        """Images brought to :attr:`convention` (keras_cnns.images.to_convention; unchanged if none)."""
        return [to_convention(image, self.convention) for image in images]

    def probabilities(self, raw):
        """Raw output -> probabilities: softmax(-d) for RBF distances, softmax for logits, else as is."""
        raw = np.asarray(raw, dtype=np.float64)
        if self.output == "rbf_distances":
            return softmax(-raw)
        if looks_like_probabilities(raw):  # a softmax head; else logits
            return raw
        return softmax(raw)

    def classify(self, images, top=5, batch_size=32):
        """uint8 images -> per image a list of dicts {index, class, probability[, distance]}, best first."""
        results = []
        for start in range(0, len(images), batch_size):
            raw = self.predict(self.preprocess(images[start:start + batch_size]))
            probs = self.probabilities(raw)
            for r, p in zip(np.asarray(raw), probs):
                best = np.argsort(-p, kind="stable")[:top]
                entries = []
                for i in best:
                    entry = {"index": int(i), "class": self.class_names[i], "probability": float(p[i])}
                    if self.output == "rbf_distances":
                        entry["distance"] = float(r[i])
                    entries.append(entry)
                results.append(entries)
        return results

    def latency_ms(self, repeats=20):
        """Median wall time of one single-image prediction, in milliseconds."""
        h, w = self.preprocessing.size
        return median_latency_ms(self.predict, (h, w, self.preprocessing.channels), repeats)


def median_latency_ms(predict, shape, repeats=20):
    """Median wall time of predict() on one zero image of `shape` (H, W, C), after one warm-up call."""
    x = np.zeros((1,) + tuple(shape), np.float32)
    predict(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(x)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def softmax(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class KerasPredictor(Predictor):
    kind = "keras"

    def __init__(self, model, source, metadata):
        super().__init__(source, metadata)
        self.model = model

    def predict(self, inputs):
        return np.asarray(main_output(self.model(np.asarray(inputs, np.float32), training=False)))

    def outputs(self, inputs):
        out = self.model(np.asarray(inputs, np.float32), training=False)
        return {k: np.asarray(v) for k, v in out.items()} if isinstance(out, dict) else {"predictions": np.asarray(out)}


class SavedModelPredictor(Predictor):
    kind = "savedmodel"

    def __init__(self, path, metadata):
        import tensorflow as tf

        super().__init__(path, metadata)
        self._loaded = tf.saved_model.load(path)
        if "serving_default" not in self._loaded.signatures:
            raise ModelSourceError(f"{path}: the SavedModel has no serving_default signature; export it "
                                   "with apps/export.py.")
        self._fn = self._loaded.signatures["serving_default"]
        _, kwargs = self._fn.structured_input_signature
        self._input_name = next(iter(kwargs))
        outputs = sorted(self._fn.structured_outputs)
        self._output_name = self.output if self.output in outputs else outputs[0]

    def predict(self, inputs):
        import tensorflow as tf

        out = self._fn(**{self._input_name: tf.constant(np.asarray(inputs, np.float32))})
        return out[self._output_name].numpy()

    def outputs(self, inputs):
        import tensorflow as tf

        out = self._fn(**{self._input_name: tf.constant(np.asarray(inputs, np.float32))})
        return {k: v.numpy() for k, v in out.items()}


class TFLitePredictor(Predictor):
    """Runs a .tflite file in LiteRT's interpreter, one image at a time (quantised inputs handled).

    A model whose input is unquantised uint8 (the mobile variant written by keras_cnns.export) takes raw
    pixels at its input size with the normalisation inside: :meth:`preprocess` then only brings images to
    that size (keras_cnns.images.to_model_pixels, as keras_cnns.lite does) and :meth:`predict` takes uint8.
    """

    kind = "tflite"

    def __init__(self, path, metadata, labels=None, warn=None):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=path)
        self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        if metadata is None:  # a bare .tflite: what its tensors say
            metadata = bare_metadata(path, self._input["shape"][1:], int(self._output["shape"][-1]), labels, warn)
        super().__init__(path, metadata)
        expected = tuple(int(d) for d in self._input["shape"][1:])
        h, w = self.preprocessing.size
        if expected != (h, w, self.preprocessing.channels):
            # A (None, None, C) input converts as [1, 1, 1, C]: size it for our preprocessing.
            self.interpreter.resize_tensor_input(self._input["index"], [1, h, w, self.preprocessing.channels])
            self.interpreter.allocate_tensors()
            self._input = self.interpreter.get_input_details()[0]
            self._output = self.interpreter.get_output_details()[0]
        self.takes_pixels = self._input["dtype"] == np.uint8 and self._input["quantization"][0] == 0.0

    def preprocess(self, images):
        if not self.takes_pixels:
            return super().preprocess(images)
        p = self.preprocessing
        return np.stack([to_model_pixels(image, p.size, p.channels, p.resize, p.crop_from)
                         for image in self.conform(images)])

    def predict(self, inputs):
        outs = []
        for x in np.asarray(inputs):
            x = x[None]
            dtype = self._input["dtype"]
            scale, zero = self._input["quantization"]
            if dtype != np.float32:
                info = np.iinfo(dtype)
                x = x if scale == 0.0 else x.astype(np.float32) / scale + zero  # 0: raw pixels, not quantised
                x = np.clip(np.round(x), info.min, info.max).astype(dtype)
            else:
                x = x.astype(np.float32)
            if tuple(x.shape) != tuple(self._input["shape"]):
                # A fully convolutional model (an FCN) takes each image at its own size.
                self.interpreter.resize_tensor_input(self._input["index"], list(x.shape))
                self.interpreter.allocate_tensors()
                self._input = self.interpreter.get_input_details()[0]
                self._output = self.interpreter.get_output_details()[0]
            self.interpreter.set_tensor(self._input["index"], x)
            self.interpreter.invoke()
            y = self.interpreter.get_tensor(self._output["index"])
            if self._output["dtype"] != np.float32:
                scale, zero = self._output["quantization"]
                y = (y.astype(np.float32) - zero) * scale
            outs.append(np.asarray(y, np.float32)[0])
        return np.stack(outs)

    def ops(self):
        """[(op name, dtype of its first input)] of the graph, to tell which ops run in float."""
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        # Without the default XNNPACK delegate, which would fold the graph into one DELEGATE op.
        plain = Interpreter(model_path=self.source,
                            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        plain.allocate_tensors()
        ops = []
        details = plain._get_ops_details()  # no public equivalent in LiteRT 2.x
        tensors = {t["index"]: t for t in plain.get_tensor_details()}
        for op in details:
            first = [i for i in op["inputs"] if i >= 0]
            dtype = np.dtype(tensors[first[0]]["dtype"]).name if first and first[0] in tensors else "?"
            ops.append((op["op_name"], dtype))
        return ops


# --------------------------------------------------------------------------------------------- loading

def load(source=None, weights=None, labels=None, warn=None):
    """Any model source -> a :class:`Predictor`. See the module docstring. Raises ModelSourceError.

    labels: a text file of class names, one per line, replacing the metadata's (or naming the classes of a
    model file without metadata). warn: where the one-line warning about a model without metadata goes
    (default: the logging module)."""
    from keras_cnns import layers as _  # noqa: F401  (registers our layers before any .keras loads)
    from keras_cnns.registry import load_families

    load_families()  # and our Model classes (models.faster_rcnn.FasterRCNN)

    if source is None and weights is None:
        source = default_model_dir()
        if not os.path.isdir(source):
            raise ModelSourceError(
                f"The default model {source} is not there; train it with "
                f"`python apps/train.py --model lenet5 --dataset {TRAIN_DATASET}` or pass --model.")
    source = os.fspath(source)
    if weights is not None:
        return _with_labels(_load_with_weights(source, weights), labels)
    if os.path.exists(source):
        return _with_labels(_load_path(source, labels, warn), labels)
    if _looks_like_path(source):
        raise ModelSourceError(f"{source}: no such model file or directory; check the path.")
    return _with_labels(_load_name(source), labels)


def _looks_like_path(source):
    return os.sep in source or "/" in source or source.lower().endswith((".keras", ".tflite", ".h5"))


def _load_name(name):
    from keras_cnns.registry import get_spec

    try:
        spec = get_spec(name)
    except ValueError as err:
        raise ModelSourceError(f"{err} (or give a model directory, a .keras, SavedModel or .tflite "
                               "path).") from None
    for base in paths.model_search_path():  # the home first; the newest of the first folder that has one
        candidates = sorted(glob.glob(os.path.join(base, f"{spec.name}-*", metadata_lib.MODEL_FILENAME)),
                            key=os.path.getmtime, reverse=True)
        if candidates:
            return _load_path(os.path.dirname(candidates[0]))
    raise ModelSourceError(untrained_message(spec))


def untrained_message(spec):
    """What to do about a registry model with no trained copy: a training command that finishes on a CPU
    (the fast recipe at a small input size), and ImageNet weights where the model has them."""
    from keras_cnns.training.recipes import cpu_train_command

    return (f"{spec.name} has no trained weights (no {os.path.join(saved_models_dir(), spec.name)}-*/): "
            f"train it on a CPU with `{cpu_train_command(spec)}`"
            + (", or use ImageNet weights with --weights imagenet" if _has_imagenet(spec.name) else "") + ".")


def _has_imagenet(name):
    from keras_cnns.registry import get_spec
    return get_spec(name).published_weights("imagenet") is not None


def _load_with_weights(name, weights):
    """A registry model built with foreign weights ("imagenet", a keras.applications file or model)."""
    from keras_cnns import imagenet
    from keras_cnns.registry import get_model, get_spec

    try:
        spec = get_spec(name)
    except ValueError as err:
        raise ModelSourceError(f"--weights needs a registry name as the model: {err}") from None
    if not _has_imagenet(spec.name):
        raise ModelSourceError(
            f"{spec.name} has no ImageNet weights to import; the models that have them: "
            f"{', '.join(imagenet.models())}. Without --weights, {spec.name} is loaded from "
            f"{saved_models_dir()}/{spec.name}-*/.")
    if isinstance(weights, (str, os.PathLike)) and weights != "imagenet" and not os.path.exists(weights):
        raise ModelSourceError(f"{weights}: no such weights file; give 'imagenet' or the path of a "
                               "keras.applications weights file.")
    try:
        model = get_model(spec.name, weights=weights)
    except Exception as err:  # network errors, bad files: tell, don't trace
        raise ModelSourceError(
            f"{spec.name}: could not get the weights {weights!r} ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). Offline, put Keras' weight file in "
            "~/.keras/models/ or pass its path with --weights.") from None
    meta = imagenet.metadata(spec.name, weights=weights, input_shape=model.input_shape[1:])
    return KerasPredictor(model, f"{spec.name} ({weights if isinstance(weights, str) else 'model'})", meta)


def find_metadata(path, required=True):
    """metadata.json of a model path: inside it (a directory), beside it, or one level up. Without one:
    ModelSourceError, or None when not ``required``."""
    path = os.path.abspath(path)
    start = path if os.path.isdir(path) else os.path.dirname(path)
    for directory in (start, os.path.dirname(start)):
        if os.path.isfile(os.path.join(directory, metadata_lib.FILENAME)):
            return metadata_lib.read(directory)
    if not required:
        return None
    raise ModelSourceError(
        f"{path}: no {metadata_lib.FILENAME} beside it, so its class names and preprocessing are unknown; "
        "use a model directory written by apps/train.py or an artifact written by apps/export.py.")


def read_labels(path, num_classes):
    """Class names from a text file, one per line (blank lines ignored); their count must be the model's."""
    try:
        with open(path, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
    except OSError as err:
        raise ModelSourceError(f"{path}: cannot read the labels file ({err.strerror}); give a text file with "
                               "one class name per line.") from None
    if len(names) != num_classes:
        raise ModelSourceError(f"{path}: {len(names)} class name(s) for a model with {num_classes} outputs; give "
                               "one class name per line, in the order of the model's outputs.")
    return names


def bare_metadata(path, input_shape, num_classes, labels=None, warn=None):
    """The metadata of a model file that has none beside it (trained elsewhere): class names from `labels`
    (a file) or "0".."N-1"; preprocessing from its input shape (H, W, C): resized to H x W, C channels,
    pixels scaled to [0, 1]. `warn` (default: logging) gets one line saying so."""
    # a (None, None, C) input converts to TFLite as [1, 1, C]: a side of 1 is unknown too
    shape = [None if d is None or (i < 2 and int(d) <= 1) else int(d) for i, d in enumerate(input_shape)]
    if len(shape) != 3 or None in shape[:2] or shape[2] not in (1, 3):
        raise ModelSourceError(
            f"{path}: no {metadata_lib.FILENAME} beside it and its input shape {list(input_shape)} does not say "
            "what images it takes (need height, width and 1 or 3 channels); put the metadata.json of its "
            "training run beside it.")
    h, w, c = shape
    names = read_labels(labels, num_classes) if labels else [str(i) for i in range(num_classes)]
    message = (f"{path}: no {metadata_lib.FILENAME} beside it; assuming its input {h}x{w}x{c} takes images "
               f"resized to it with pixels scaled to [0, 1], and class names "
               f"{'from ' + os.fspath(labels) if labels else 'numbered 0..' + str(num_classes - 1)}.")
    if warn is None:
        import logging
        logging.getLogger(__name__).warning(message)
    else:
        warn(message)
    prep = Preprocessing(size=(h, w), channels=c, resize="resize", mean=(0.0,), std=(255.0,))
    return {"model": os.path.basename(path), "class_names": names, "input_shape": [h, w, c],
            "output": "probabilities", "preprocessing": prep.to_dict(), "metadata": "assumed"}


def _with_labels(predictor, labels):
    """The predictor with the class names of a labels file in place of its metadata's."""
    if labels and predictor.metadata.get("metadata") != "assumed":  # (a bare file read them already)
        predictor.class_names = read_labels(labels, len(predictor.class_names))
        predictor.metadata["class_names"] = list(predictor.class_names)
    return predictor


def _load_path(path, labels=None, warn=None):
    import keras

    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "saved_model.pb")):
            return SavedModelPredictor(path, find_metadata(path))
        model_file = os.path.join(path, metadata_lib.MODEL_FILENAME)
        if not os.path.isfile(model_file):
            raise ModelSourceError(
                f"{path}: not a model directory (no {metadata_lib.MODEL_FILENAME} and no saved_model.pb).")
        path = model_file
    if path.endswith(".tflite"):
        meta = find_metadata(path, required=False)
        return TFLitePredictor(path, meta, labels, warn)
    if not path.endswith(".keras"):
        raise ModelSourceError(f"{path}: unknown model format; give a .keras file, a .tflite file, a "
                               "SavedModel directory or a model directory.")
    meta = find_metadata(path, required=False)
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # a corrupt file or a layer nobody registered: say so in one line
        raise ModelSourceError(
            f"{path}: cannot load the model ({type(err).__name__}: {str(err).splitlines()[0][:300]}). Only "
            "Keras and keras_cnns layers load (safe_mode is on); re-train or re-save it.") from None
    if meta is None:  # a bare .keras file: what its input and output say
        out_shape = model.output_shape[0] if isinstance(model.output_shape, list) else model.output_shape
        meta = bare_metadata(path, model.input_shape[1:], int(out_shape[-1]), labels, warn)
    return KerasPredictor(model, path, meta)
