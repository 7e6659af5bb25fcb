"""fit(): train any model of the zoo on any source, evaluate it and write a model directory.

One function for notebooks and for apps/train.py (a thin argparse door over it), made of steps that a
new task reuses:
  1. resolve_run: the recipe's defaults filled in and checked, the distribution strategy made (a Run);
  2. make_datasets: the task's data step (TASK_STEPS: classification, segmentation) builds the tf.data
     pipelines (keras_cnns.data) with the global batch size (per-replica batch x replicas; the last partial
     training batch dropped under a strategy), cut to `limit` for quick runs (a RunData);
  3. plan_heads, run_state, build_model: the loss and metrics of the task (auxiliary heads where they fit),
     the crash-safe state in checkpoints/, and the model built and compiled inside strategy.scope(),
     resumed from checkpoints/ when an earlier run of the same command was interrupted;
  4. run_fit with make_callbacks: model.fit (a custom strategy.run loop under MultiWorkerMirroredStrategy,
     see keras_cnns.training.loop);
  5. finish: evaluates the inference form of the model (GoogLeNet without its auxiliary heads) on the test
     split with the task's evaluation and writes model.keras, metadata.json, history.csv and curves.png to
     the output directory; TensorBoard logs go to logs/ and checkpoints to checkpoints/ under it.
The run holds a lock on its output directory (keras_cnns.training.lock): a second run into it is refused.
A new task adds one TaskSteps entry to TASK_STEPS (data, compile, monitor, evaluate).
"""

import contextlib
import dataclasses
import importlib.util
import inspect
import json
import math
import os
import shutil
import tempfile
import time
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from keras_cnns import metadata as md
from keras_cnns.machine import cpu_flags
from keras_cnns.paths import replaced_atomically, saved_models_dir
from keras_cnns.registry import check_steps_per_execution, get_model, get_spec
from keras_cnns.training import callbacks as cb
from keras_cnns.training import recipes as rc
from keras_cnns.training import strategy as st
from keras_cnns.training.evaluate import predict_scores, summarize
from keras_cnns.training.lock import output_lock
from keras_cnns.training.plots import plot_history
from keras_cnns.training.precision import AUTO, GRAPH_REWRITES, PRECISIONS, choose, onednn_enabled

AUX_OUTPUTS = ("aux1", "aux2")


@dataclasses.dataclass
class FitResult:
    """What fit() returns: the trained inference model, the history rows, the metadata written and the
    test evaluation (accuracy, top-5, per-class accuracy, confusion matrix)."""

    model: keras.Model
    history: list
    metadata: dict
    evaluation: dict
    output_dir: str
    resumed_from: int = 0


def default_output_dir(model_name, dataset_name):
    """<saved-models home>/<model>-<dataset>/: the home is keras_cnns.paths.saved_models_dir(), the folder
    inference looks in, whatever the working directory."""
    return os.path.join(saved_models_dir(), f"{model_name}-{_dataset_label(dataset_name)}")


def _dataset_label(name):
    """The dataset's part of a run's folder name: a TFDS name whole ("tfds:voc/2007" -> "voc_2007", so
    two configs of one dataset get two folders), a folder by its last component."""
    name = str(name)
    if name.startswith("tfds:"):
        name = name[len("tfds:"):]
    else:
        name = os.path.basename(os.path.normpath(name)) or name
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


@contextlib.contextmanager
def _reproducible(seed, deterministic):
    """Seeds Python/NumPy/TF and turns on op determinism for the run; restores it afterwards."""
    # tf.config.experimental has no public "is enabled"/"disable"; the framework module has both.
    from tensorflow.python.framework import config as tf_config
    keras.utils.set_random_seed(seed)
    was = tf_config.is_op_determinism_enabled()
    if deterministic and not was:
        tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if deterministic and not was:
            tf_config.disable_op_determinism()


@contextlib.contextmanager
def _graph_rewrite(precision):
    """The grappler rewrite of GRAPH_REWRITES[precision] on while the model trains (nothing for the others)."""
    option = GRAPH_REWRITES.get(precision)
    if option is None:
        yield
        return
    previous = tf.config.optimizer.get_experimental_options().get(option, False)
    tf.config.optimizer.set_experimental_options({option: True})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({option: previous})


@contextlib.contextmanager
def _dtype_policy(precision):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32" if precision in GRAPH_REWRITES else precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _losses_and_metrics(spec, num_classes, aux_weight):
    """(loss, loss_weights, metrics) for compile(); per output name when the model has aux heads."""
    from keras_cnns.losses import loss_and_metric
    loss, accuracy = loss_and_metric(spec.output)
    metrics = [accuracy]
    if spec.output == "probabilities" and num_classes > 5:
        metrics.append(keras.metrics.MeanMetricWrapper(_top5, name="top5"))
    if not aux_weight:
        return loss, None, metrics
    names = ("predictions",) + AUX_OUTPUTS
    losses = {n: loss_and_metric(spec.output)[0] for n in names}
    weights = {n: (1.0 if n == "predictions" else aux_weight) for n in names}
    return losses, weights, {"predictions": metrics}


def _top5(y_true, y_pred):
    """Top-5 accuracy that also takes bfloat16/float16 outputs (tf.math.in_top_k wants float32)."""
    return keras.metrics.sparse_top_k_categorical_accuracy(y_true, keras.ops.cast(y_pred, "float32"), k=5)


def _aux_heads_fit(spec, shape):
    """Whether the model has auxiliary training heads and they fit an input of `shape` (H, W, C)."""
    return spec.aux_min_input_size is not None and min(shape[:2]) >= spec.aux_min_input_size


def _with_aux_labels(ds):
    return ds.map(lambda x, y: (x, {n: y for n in ("predictions",) + AUX_OUTPUTS}),
                  num_parallel_calls=tf.data.AUTOTUNE)


def inference_model(spec, trained, build_kwargs):
    """The trained weights in a model built for inference: float32, without auxiliary heads.

    Weights are matched by layer name, so the training graph may have extra layers (aux heads) but every
    weight of the inference graph must be found.
    """
    with _dtype_policy("float32"):
        model = get_model(spec.name, **build_kwargs)
    by_name = {layer.name: layer for layer in trained.layers}
    for layer in model.layers:
        if not layer.weights:
            continue
        source = by_name.get(layer.name)
        if source is None or len(source.weights) != len(layer.weights):
            raise RuntimeError(f"inference_model: layer {layer.name!r} of {spec.name} has no counterpart "
                               "in the trained model.")
        layer.set_weights([np.asarray(w) for w in source.get_weights()])
    return model


@dataclasses.dataclass(frozen=True)
class Run:
    """The resolved options of one run: the recipe's defaults filled in, checked, the strategy made."""

    spec: object
    recipe: rc.Recipe
    epochs: int
    batch_size: int
    precision: str
    augment: Optional[str]
    strategy: tf.distribute.Strategy
    seed: int
    limit: Optional[int]
    validation_split: float
    data_dir: Optional[str]
    input_shape: Optional[tuple]
    backbone_weights: Optional[str] = None  # absolute path of the classifier whose weights start the backbone
    overrides: Optional[dict] = None  # settings of the model's config replaced at build (anchors, FCN dropout)
    steps_per_execution: int = 1  # train steps in one call of the compiled train function (compile()'s)

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync

    @property
    def chief(self):
        return st.is_chief(self.strategy)

    @property
    def multiworker(self):
        return isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)

    @property
    def drop_remainder(self):
        """The last partial training batch is dropped under a strategy of several replicas."""
        return self.replicas > 1


@dataclasses.dataclass
class RunData:
    """The data of a run: the source, its preprocessing, the model input shape (H, W, C), the Datasets and the
    train/validation/test pipelines actually used (cut to `limit`) with the steps of an epoch."""

    source: object
    preprocessing: object
    shape: tuple
    splits: object
    train: tf.data.Dataset
    validation: Optional[tf.data.Dataset]
    test: tf.data.Dataset
    steps: int


@dataclasses.dataclass
class Heads:
    """How the model is built and compiled for its data: build arguments, the auxiliary-head loss weight (0 when
    off), compile()'s loss, loss weights and metrics, and the metric the checkpoints keep the best of."""

    build_kwargs: dict
    aux_weight: float
    loss: object
    loss_weights: Optional[dict]
    metrics: object
    monitor: str


def resolve_run(model, *, epochs=None, batch_size=None, recipe="paper", precision="float32", strategy="auto",
                cpu_replicas=0, augment="recipe", seed=0, limit=None, validation_split=0.1, data_dir=None,
                input_shape=None, backbone_weights=None, overrides=None, steps_per_execution=None,
                heartbeat_timeout_s=None, log=print) -> Run:
    """The run's options resolved and checked (a ValueError names the bad one, a FileNotFoundError a missing
    backbone file) and its strategy made."""
    spec = get_spec(model)
    rec = rc.get_recipe(spec, recipe)
    epochs = int(rec.epochs if epochs is None else epochs)
    batch_size = int(rec.batch_size if batch_size is None else batch_size)
    if epochs < 1:
        raise ValueError(f"epochs must be a positive integer. Received: epochs={epochs!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    if steps_per_execution is None:
        steps_per_execution = spec.steps_per_execution
        if steps_per_execution > 1:
            log(f"Steps per execution: {steps_per_execution}, {spec.name}'s default (its registry spec; the same "
                f"steps and weights as 1, less call overhead per step). --steps-per-execution 1 "
                f"(steps_per_execution=1) turns it off")
    check_steps_per_execution(steps_per_execution,
                              "steps_per_execution must be a positive integer, or None for the model's default")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}. Received: precision={precision!r}")
    if precision == AUTO:
        precision, why = choose(spec, gpus=len(tf.config.list_physical_devices("GPU")), onednn=onednn_enabled(),
                                   flags=cpu_flags())
        log(f"Precision: {precision}, chosen by auto: {why}. --precision (precision=) names another")
    if precision in GRAPH_REWRITES and not onednn_enabled():
        raise ValueError(f"precision={precision!r} rewrites the graph for TensorFlow's oneDNN kernels, which this "
                         f"process does not run: set TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow is imported "
                         f"(apps/train.py does unless --no-onednn)")
    if augment == "recipe":
        augment = rec.augment
    if spec.task != "classification":  # the image's labels (masks, boxes) must move with it
        from keras_cnns.data.augment import joint_augmentation
        joint_augmentation(augment, spec.task)
    backbone_weights = _backbone_path(spec, backbone_weights)
    overrides = _checked_overrides(spec, overrides)
    dist = st.make_strategy(strategy, cpu_replicas, heartbeat_timeout_s)
    replicas = dist.num_replicas_in_sync
    if batch_size % replicas:
        raise ValueError(f"The global batch size must be a multiple of the {replicas} replicas. "
                         f"Received: batch_size={batch_size}")
    log(f"Strategy: {st.describe(dist)}; global batch {batch_size} = {batch_size // replicas} per replica "
        f"x {replicas} replica(s)")
    return Run(spec=spec, recipe=rec, epochs=epochs, batch_size=batch_size, precision=precision, augment=augment,
               strategy=dist, seed=seed, limit=limit, validation_split=validation_split, data_dir=data_dir,
               input_shape=tuple(input_shape) if input_shape else None, backbone_weights=backbone_weights,
               overrides=overrides, steps_per_execution=steps_per_execution)


def _checked_overrides(spec, overrides):
    """The model settings to replace, as JSON would give them back (lists, so a resumed run compares equal);
    None for none. Only models whose builder takes ``overrides`` (Faster R-CNN, FCN) have them; the fields
    themselves are checked when the model is built."""
    if not overrides:
        return None
    if not isinstance(overrides, dict):
        raise ValueError(f"overrides must be a dict of model settings, e.g. {{'anchor_scales': [32, 64, 128]}}. "
                         f"Received: overrides={overrides!r}")
    if "overrides" not in inspect.signature(spec.builder).parameters:
        raise ValueError(f"{spec.name} has no settings to override: overrides are for Faster R-CNN (frcnn*: "
                         f"--anchor-scales, --anchor-ratios) and FCN (fcn*: --dropout) models. "
                         f"Received: overrides={overrides!r}")
    return json.loads(json.dumps(overrides))


def _backbone_path(spec, path):
    """The absolute path of a backbone classifier's .keras file, checked to exist; None for None."""
    if path is None:
        return None
    if "backbone_weights" not in inspect.signature(spec.builder).parameters:
        raise ValueError(f"{spec.name} has no backbone to start from a classifier's weights: backbone_weights is "
                         f"for FCN (fcn*) and Faster R-CNN (frcnn*) models. Received: backbone_weights={path!r}")
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"backbone_weights takes the path of a classifier's .keras file. "
                         f"Received: backbone_weights={path!r}")
    full = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.isfile(full):
        raise FileNotFoundError(f"Backbone weights not found: {full}. Pass the model.keras of a trained classifier "
                                f"(e.g. saved_models/<model>-<dataset>/model.keras). Received: backbone_weights="
                                f"{os.fspath(path)!r}")
    return full


def _classification_data(run, dataset):
    """(source, preprocessing, input shape, Datasets) of a classification run."""
    from keras_cnns import data

    source = dataset if isinstance(dataset, data.Source) else data.load_source(dataset, data_dir=run.data_dir)
    prep = data.default_preprocessing(source, tuple(run.input_shape or run.spec.input_shape))
    splits = data.make_datasets(source, preprocessing=prep, batch_size=run.batch_size, augment=run.augment,
                                validation_split=run.validation_split, seed=run.seed,
                                drop_remainder=run.drop_remainder, cache=True)
    return source, prep, (*prep.size, prep.channels), splits


def _segmentation_data(run, dataset):
    """(source, preprocessing, input shape, Datasets) of a segmentation run: the source's own train, validation
    and test splits (validation None, test = validation when it lacks them). With the run's `limit`, the scenes
    generate no more than `limit` scenes per split."""
    from keras_cnns.data.pipeline import Datasets
    from keras_cnns.data.segmentation import (SCENES, SegmentationSource, default_preprocessing,
                                              load_segmentation, segmentation_dataset)

    if isinstance(dataset, SegmentationSource):
        source = dataset
    elif dataset == SCENES and run.limit:
        source = load_segmentation(dataset, counts={split: int(run.limit)
                                                    for split in ("train", "validation", "test")})
    else:
        source = load_segmentation(dataset, data_dir=run.data_dir)
    if "train" not in source.splits:
        raise ValueError(f"{source.name} has no train split. Received: splits {source.splits}")
    prep = default_preprocessing(source, run.input_shape[:2] if run.input_shape else None)
    made = {split: segmentation_dataset(source, split, prep, run.batch_size, shuffle=split == "train",
                                        seed=run.seed, drop_remainder=run.drop_remainder and split == "train",
                                        augment=run.augment if split == "train" else None)
            for split in ("train", "validation", "test") if split in source.splits}
    test_split = "test" if "test" in made else "validation" if "validation" in made else "train"
    sizes = {split: source.size(split) for split in made}
    splits = Datasets(train=made["train"], validation=made.get("validation"), test=made[test_split],
                      class_names=tuple(source.class_names), train_size=sizes["train"],
                      validation_size=sizes.get("validation", 0), test_size=sizes[test_split], preprocessing=prep,
                      batch_size=run.batch_size, augment=run.augment, train_indices=np.arange(sizes["train"]),
                      validation_indices=np.arange(sizes.get("validation", 0)),
                      drop_remainder=run.drop_remainder)
    return source, prep, (*prep.size, prep.channels), splits


def _segmentation_compile(spec, num_classes, aux_weight):
    from keras_cnns.tasks import segmentation as seg
    return seg.loss(), None, seg.compile_metrics(num_classes)


def _classification_evaluate(spec, model, data, log):
    labels, outputs = predict_scores(model, data.test, output=spec.output)
    evaluation = summarize(labels, outputs, data.source.class_names)
    log(f"Test accuracy {evaluation['accuracy']:.4f}" +
        (f", top-5 {evaluation['top5']:.4f}" if evaluation["top5"] is not None else "") +
        f" on {evaluation['examples']} test images")
    scores = {"test_accuracy": evaluation["accuracy"], "test_top5": evaluation["top5"],
              "test_examples": evaluation["examples"]}
    return evaluation, scores


def _segmentation_evaluate(spec, model, data, log):
    from keras_cnns.tasks import segmentation as seg
    evaluation = seg.evaluate(model, data.test, data.source.class_names)
    log(f"Test mean IoU {evaluation['mean_iou']:.4f}, pixel accuracy {evaluation['pixel_accuracy']:.4f} "
        f"on {data.splits.test_size} test images")
    scores = {"test_mean_iou": evaluation["mean_iou"], "test_pixel_accuracy": evaluation["pixel_accuracy"],
              "test_per_class_iou": evaluation["per_class_iou"], "test_pixels": evaluation["pixels"]}
    return evaluation, scores


def _detection_data(run, dataset):
    """(source, preprocessing, input shape, Datasets) of a detection run: the Fashion-MNIST scenes with their
    boxes (keras_cnns.data.scenes, task "detection"), or a TFDS detection dataset "tfds:NAME" prepared under
    the run's data_dir (keras_cnns.data.detection, :func:`_tfds_detection_data`); with the run's `limit`, no
    more than `limit` images per split."""
    from keras_cnns.data import scenes
    from keras_cnns.data.detection import TfdsDetectionSource
    from keras_cnns.data.pipeline import Datasets
    from keras_cnns.data.segmentation import SCENES, SceneSegmentationSource

    if isinstance(dataset, TfdsDetectionSource) or (isinstance(dataset, str) and dataset.startswith("tfds:")):
        return _tfds_detection_data(run, dataset)
    if dataset != SCENES and not isinstance(dataset, SceneSegmentationSource):
        raise ValueError(f"Detection models train on {SCENES!r} (boxes of the Fashion-MNIST scenes) or on "
                         f"'tfds:NAME' (a TFDS detection dataset, e.g. tfds:voc/2007). Received: dataset={dataset!r}")
    source = dataset if isinstance(dataset, SceneSegmentationSource) else SceneSegmentationSource(
        counts={split: int(run.limit) for split in scenes.SPLITS} if run.limit else None)
    prep = scenes.scene_preprocessing(source=source._source)
    made = {split: scenes.scene_dataset(source.scene_set(split), "detection", prep, run.batch_size,
                                        shuffle=split == "train", seed=run.seed,
                                        augment=run.augment if split == "train" else None,
                                        drop_remainder=run.drop_remainder and split == "train")
            for split in scenes.SPLITS}
    sizes = {split: source.size(split) for split in made}
    splits = Datasets(train=made["train"], validation=made["validation"], test=made["test"],
                      class_names=tuple(source.class_names), train_size=sizes["train"],
                      validation_size=sizes["validation"], test_size=sizes["test"], preprocessing=prep,
                      batch_size=run.batch_size, augment=None, train_indices=np.arange(sizes["train"]),
                      validation_indices=np.arange(sizes["validation"]))
    return source, prep, (*prep.size, prep.channels), splits


def _tfds_detection_data(run, dataset):
    """_detection_data for a TFDS detection dataset (a name or a TfdsDetectionSource): trained at the run's
    input size, else the images' own size when they share one, else keras_cnns.data.detection.DEFAULT_SIZE;
    validation held out of train (the run's validation_split and seed) when the dataset has no validation split."""
    from keras_cnns.data import detection

    source = dataset if isinstance(dataset, detection.TfdsDetectionSource) else detection.load_detection(
        dataset, data_dir=run.data_dir, validation_split=run.validation_split, seed=run.seed)
    prep = detection.default_preprocessing(source, run.input_shape[:2] if run.input_shape else None)
    splits = detection.detection_datasets(source, prep, run.batch_size, seed=run.seed, limit=run.limit,
                                          drop_remainder=run.drop_remainder, augment=run.augment)
    return source, prep, (*prep.size, prep.channels), splits


def _detection_compile(spec, num_classes, aux_weight):
    """Nothing for compile(): the detector's train_step computes its own four losses (models.faster_rcnn)."""
    return None, None, None


def _detection_evaluate(spec, model, data, log):
    from keras_cnns.tasks import detection as dt
    evaluation = dt.evaluate(model, data.test, data.source.class_names)
    log(f"Test mAP@0.5 {evaluation['map50']:.4f}, AP@[.5:.95] {evaluation['map_coco']:.4f} "
        f"on {evaluation['images']} test images")
    scores = {"test_map50": evaluation["map50"], "test_map_coco": evaluation["map_coco"],
              "test_per_class_ap50": evaluation["per_class_ap50"], "test_images": evaluation["images"]}
    return evaluation, scores


@dataclasses.dataclass(frozen=True)
class TaskSteps:
    """The steps of fit() that differ by task (a ModelSpec's `task`):

    data(run, dataset) -> (source, preprocessing, (H, W, C), keras_cnns.data.pipeline.Datasets);
    compile(spec, num_classes, aux_weight) -> (loss, loss_weights, metrics) for Model.compile;
    monitor: the validation metric whose best epoch the checkpoints keep;
    evaluate(spec, inference model, RunData, log) -> (evaluation dict, the test_* scores for metadata.json);
    mode: "max" when a higher monitor is better, "min" when lower;
    jit: XLA for the train step when fit()'s `jit` is None (None = Keras' "auto").
    A new task adds one entry to TASK_STEPS (and its default dataset to recipes.DEFAULT_DATASETS).
    """

    data: Callable
    compile: Callable
    monitor: str
    evaluate: Callable
    mode: str = "max"
    jit: Optional[bool] = None


TASK_STEPS = {
    "classification": TaskSteps(_classification_data, _losses_and_metrics, "accuracy",
                                _classification_evaluate),
    "segmentation": TaskSteps(_segmentation_data, _segmentation_compile, "mean_iou", _segmentation_evaluate),
    # no XLA unless asked: TensorFlow's NMS ops are not all XLA-compiled
    "detection": TaskSteps(_detection_data, _detection_compile, "loss", _detection_evaluate, mode="min",
                           jit=False),
}


def task_steps(spec) -> TaskSteps:
    try:
        return TASK_STEPS[spec.task]
    except KeyError:
        raise ValueError(f"fit() trains models of the tasks {sorted(TASK_STEPS)}. Received: {spec.name}, "
                         f"a {spec.task} model") from None


def make_datasets(run, dataset, log=print) -> RunData:
    """The task's data step, then the pipelines cut to the run's `limit` (quick runs)."""
    source, prep, shape, splits = task_steps(run.spec).data(run, dataset)
    train, val, test = splits.train, splits.validation, splits.test
    steps = splits.steps_per_epoch
    if run.limit:
        limit, batch_size = run.limit, run.batch_size
        steps = max(1, min(steps, limit // batch_size))
        train = train.take(steps)
        val = val.take(math.ceil(limit / batch_size)) if val is not None else None
        test = test.take(math.ceil(limit / batch_size))
    # Every pipeline states its cardinality (data.pipeline.counted_examples): Keras counts the steps of an
    # epoch from it, and finds no "ran out of data".
    log(f"Data: {source.name}: {splits.train_size} training, {splits.validation_size} validation, "
        f"{splits.test_size} test images; {steps} steps per epoch; augment={run.augment}"
        + (f"; {splits.cache_note}" if splits.cache_note else ""))
    return RunData(source=source, preprocessing=prep, shape=shape, splits=splits, train=train, validation=val,
                   test=test, steps=steps)


def fit(model, dataset=None, *, epochs=None, batch_size=None, recipe="paper", precision="float32", jit=None,
        strategy="auto", cpu_replicas=0, output_dir=None, seed=0, data_dir=None, input_shape=None,
        augment="recipe", validation_split=0.1, limit=None, deterministic=True, resume=True,
        backbone_weights=None, overrides=None, steps_per_execution=None, heartbeat_timeout_s=None, tensorboard=True,
        verbose=1, log=print) -> FitResult:
    """Trains a registered model on a data source and writes a model directory.

    Args:
      model: registry name ("lenet5", "resnet20", ...).
      dataset: for a classifier "fashion_mnist" (the default), "mnist", an image folder, "tfds:NAME", or a
        keras_cnns.data.Source (e.g. ``data.from_arrays(...)``); for a segmentation model (an FCN)
        "fashion_mnist_scenes" (the default), a folder of images/ and masks/, "tfds:NAME", or a
        keras_cnns.data.segmentation.SegmentationSource.
      epochs, batch_size: default from the recipe; batch_size is the *global* batch (all replicas).
      recipe: "paper" or "fast" (see keras_cnns.training.recipes.RECIPES), or a Recipe.
      precision: "float32", "mixed_bfloat16", "mixed_float16" (Keras dtype policies), "onednn_amp" (a
        float32 model trained through grappler's oneDNN bfloat16 rewrite; needs oneDNN on), or "auto"
        (apps/train.py's default): the model's cpu_bfloat16 (its registry spec) on a CPU with bfloat16
        arithmetic, oneDNN on and no GPU, else float32 (keras_cnns.training.precision.choose; the log line and
        the metadata name the one used). The saved model is float32.
      jit: XLA compilation of the train step: True, False or None (Keras' "auto").
      strategy: "auto" (mirror over GPUs when more than one is visible), "mirrored", "multiworker" (from
        TF_CONFIG) or "default" (one device).
      heartbeat_timeout_s: with strategy "multiworker", how long a worker may go silent before every worker
        aborts (None: keras_cnns.training.strategy.HEARTBEAT_TIMEOUT_S, 60 s; docs/training.md).
      cpu_replicas: with strategy "mirrored"/"auto", split the CPU into this many logical devices (only in
        a process where TensorFlow has not initialised yet).
      output_dir: default <saved-models home>/<model>-<dataset>/ (see keras_cnns.paths).
      seed: seeds weights, validation split, shuffling and augmentation; with deterministic=True the same
        seed gives the same weights on CPU.
      data_dir: where the dataset's files are (see keras_cnns.data.load_source).
      input_shape: default the model's own (LeNet-5: 32x32x1; 28x28 images are padded).
      augment: "recipe" (the recipe's augmentation), None, or a keras_cnns.data.AUGMENTATIONS name; segmentation
        and detection models take None or "flip" (image and masks or boxes mirrored together, training split only),
        FCNs on the Fashion-MNIST scenes also "redraw" (new training scenes every epoch, flipped: docs/data.md).
      validation_split: fraction of the training split held out (seeded) for validation.
      limit: train on about this many training images, validate and test on at most this many (quick runs).
      resume: continue from checkpoints/ in the output directory if an earlier run left some.
      backbone_weights: the path of a trained classifier's .keras file whose weights start the backbone of an FCN
        (a VGG-16 of the FCN's width, fcn.load_backbone) or a Faster R-CNN (a ResNet of the detector's blocks and
        width, faster_rcnn.load_backbone), copied layer by layer by name. A resumed run keeps its checkpoints'
        weights; resuming with another backbone than the run started from is refused.
      overrides: settings of the model's config replaced at build. Faster R-CNN (frcnn*):
        {models.faster_rcnn.DetectorConfig field: value}, e.g. {"anchor_scales": [32, 64, 128]} for objects
        larger than the config's anchors; FCN (fcn*): {"dropout": rate} after fc6 and fc7 (models.fcn.Settings,
        the paper's 0.5). Saved with the model and its metadata; a resume must repeat them.
      steps_per_execution: train steps run in one call of the compiled train function (Keras' compile()
        option): fewer calls from Python, the same steps and weights (tests/test_training.py). Small models train
        faster with more (docs/training.md, "Steps per execution"); Keras' progress bar and the divergence
        check see every Nth step. None (the default): the model's own (its registry spec's
        steps_per_execution: 1 for most, more where the speed benchmark measured it faster).
      log: where the one-line messages go (print by default).
    """
    run = resolve_run(model, epochs=epochs, batch_size=batch_size, recipe=recipe, precision=precision,
                      strategy=strategy, cpu_replicas=cpu_replicas, augment=augment, seed=seed, limit=limit,
                      validation_split=validation_split, data_dir=data_dir, input_shape=input_shape,
                      backbone_weights=backbone_weights, overrides=overrides,
                      steps_per_execution=steps_per_execution, heartbeat_timeout_s=heartbeat_timeout_s, log=log)
    if dataset is None:
        dataset = rc.DEFAULT_DATASETS[run.spec.task]
    with contextlib.ExitStack() as held, _reproducible(seed, deterministic):
        data = make_datasets(run, dataset, log)
        output_dir = output_dir or default_output_dir(run.spec.name, data.source.name)
        work_dir = output_dir if run.chief else tempfile.mkdtemp(prefix="keras_cnns-worker-")
        os.makedirs(work_dir, exist_ok=True)
        if run.chief:  # one run per output directory, released on the way out (exceptions too)
            held.enter_context(output_lock(work_dir))
        heads = plan_heads(run, data, log)
        if heads.aux_weight:
            data.train = _with_aux_labels(data.train)
            data.validation = _with_aux_labels(data.validation) if data.validation is not None else None
        state = run_state(run, data, heads, work_dir, resume, log)
        resumed_from = state.epochs_done
        net = build_model(run, data, heads, state, jit, log)
        started = time.time()
        run_fit(run, net, data, heads, state, work_dir, tensorboard=tensorboard, verbose=verbose, log=log)
        seconds = time.time() - started
        return finish(run, net, data, heads, state, work_dir, output_dir, seconds=seconds,
                      resumed_from=resumed_from, log=log)


def plan_heads(run, data, log=print) -> Heads:
    """Build arguments and compile()'s loss/metrics for the run's data: auxiliary heads only where the model has
    them and they fit the input (GoogLeNet's need 65x65 and more)."""
    spec, shape = run.spec, data.shape
    aux_weight = run.recipe.aux_weight if _aux_heads_fit(spec, shape) else 0.0
    if spec.aux_min_input_size is not None and not aux_weight:
        log(f"Auxiliary heads off: they need inputs of at least {spec.aux_min_input_size}x"
            f"{spec.aux_min_input_size}; training at {shape[0]}x{shape[1]}")
    # A fully convolutional model is saved with a (None, None, C) input: it segments any size.
    build_shape = (None, None, shape[2]) if spec.input_shape[0] is None else shape
    build_kwargs = {"input_shape": build_shape, "num_classes": data.source.num_classes}
    if run.overrides:
        build_kwargs["overrides"] = run.overrides
    steps = task_steps(spec)
    loss, loss_weights, metrics = steps.compile(spec, data.source.num_classes, aux_weight)
    monitor = f"predictions_{steps.monitor}" if aux_weight else steps.monitor
    if data.validation is not None:
        monitor = "val_" + monitor
    return Heads(build_kwargs=build_kwargs, aux_weight=aux_weight, loss=loss, loss_weights=loss_weights,
                 metrics=metrics, monitor=monitor)


def run_state(run, data, heads, work_dir, resume, log=print) -> cb.RunState:
    """The crash-safe state under work_dir (checkpoints/, history.csv), loaded when resuming, wiped if not."""
    config = {"model": run.spec.name, "dataset": data.source.name, "recipe": run.recipe.name, "seed": run.seed,
              "batch_size": run.batch_size}
    if run.backbone_weights:
        config["backbone_weights"] = run.backbone_weights
    if run.overrides:
        config["overrides"] = run.overrides
    state = cb.RunState(os.path.join(work_dir, "checkpoints"), os.path.join(work_dir, "history.csv"),
                        config, monitor=heads.monitor, mode=task_steps(run.spec).mode)
    if resume:
        state.load()
    else:
        shutil.rmtree(state.dir, ignore_errors=True)
        os.makedirs(state.dir)
    if state.epochs_done:
        log(f"Resuming from checkpoints/ after epoch {state.epochs_done} of {run.epochs}")
        _resumed_backbone(run, state, log)
        if state.loaded_config.get("overrides") != run.overrides:  # other anchors: other weights' shapes
            raise ValueError(f"{state.dir} holds checkpoints of a run with overrides="
                             f"{state.loaded_config.get('overrides')!r}: resume with the same settings, or start "
                             f"again with --no-resume (resume=False). Received: overrides={run.overrides!r}")
    return state


def _resumed_backbone(run, state, log=print):
    """On a resume the checkpoints' weights win over backbone_weights: fine when the run started from that same
    file (said in a log line), refused when it started from another or from none (which start was meant?)."""
    started_from = state.loaded_config.get("backbone_weights")
    if run.backbone_weights and run.backbone_weights != started_from:
        raise ValueError(f"{state.dir} holds checkpoints of a run started from "
                         f"{started_from or 'no backbone weights'}, not from {run.backbone_weights}: resume without "
                         f"--backbone-weights (backbone_weights=None), or start again from it with --no-resume "
                         f"(resume=False). Received: backbone_weights={run.backbone_weights!r}")
    if started_from:
        state.config["backbone_weights"] = started_from
        log(f"Backbone: the run started from {started_from}; the checkpoints' weights win, nothing is copied again")


def build_model(run, data, heads, state, jit=None, log=print) -> keras.Model:
    """The training model (with aux heads when on), compiled under the run's precision and strategy, with the
    weights and optimizer of the last committed epoch when resuming, else with the run's backbone weights."""
    backbone = run.backbone_weights if run.backbone_weights and not state.epochs_done else None
    with _dtype_policy(run.precision), run.strategy.scope():
        try:
            net = get_model(run.spec.name, **heads.build_kwargs, **({"aux_heads": True} if heads.aux_weight else {}),
                            **({"backbone_weights": backbone} if backbone else {}))
        except ValueError as err:
            if not backbone:
                raise
            raise ValueError(f"The backbone weights in {backbone} do not fit {run.spec.name}: {err}") from None
        optimizer = rc.build_optimizer(run.recipe, data.steps, run.epochs)
        net.compile(optimizer=optimizer, loss=heads.loss, loss_weights=heads.loss_weights, metrics=heads.metrics,
                    jit_compile=_jit_compile(run.spec, jit), steps_per_execution=run.steps_per_execution)
        state.restore(net)
    if backbone:
        log(f"Backbone: weights copied by layer name from {backbone}")
    return net


def _jit_compile(spec, jit):
    """compile()'s jit_compile: fit()'s `jit` when given, else the task's default, else Keras' "auto"."""
    jit = task_steps(spec).jit if jit is None else jit
    return "auto" if jit is None else bool(jit)


def make_callbacks(run, state, work_dir, tensorboard=True, log=print):
    """(EpochCommitter, callbacks for Model.fit): the recipe's plateau schedule, the committer of each epoch, and
    TensorBoard into work_dir/logs on the chief when it is installed."""
    plateau = rc.plateau_callback(run.recipe)
    committer = cb.EpochCommitter(state, plateau)
    callbacks = [c for c in (plateau, committer) if c is not None]
    if tensorboard and run.chief:
        if importlib.util.find_spec("tensorboard") is not None:
            callbacks.append(keras.callbacks.TensorBoard(os.path.join(work_dir, "logs")))
        else:
            log("TensorBoard is not installed: no logs/ for this run (pip install tensorboard)")
    return committer, callbacks


def run_fit(run, net, data, heads, state, work_dir, *, tensorboard=True, verbose=1, log=print):
    """Trains from the last committed epoch to run.epochs: Model.fit, or the custom strategy.run loop under
    MultiWorkerMirroredStrategy. Raises TrainingDiverged when the loss stops being finite."""
    done = state.epochs_done
    if done >= run.epochs:
        return
    with _graph_rewrite(run.precision):
        diverged = _train_epochs(run, net, data, heads, state, work_dir, done, tensorboard, verbose, log)
    if diverged:
        raise cb.TrainingDiverged(diverged)


def _train_epochs(run, net, data, heads, state, work_dir, done, tensorboard, verbose, log):
    """run_fit's epochs; the divergence message or None."""
    if run.multiworker:
        from keras_cnns.training.loop import custom_fit
        diverged = custom_fit(net, run.strategy, data.train, data.validation, loss=heads.loss,
                              loss_weights=heads.loss_weights, epochs=run.epochs, initial_epoch=done, state=state,
                              global_batch=run.batch_size, output=run.spec.output, task=run.spec.task,
                              num_classes=data.source.num_classes, log=log, verbose=verbose)
    else:
        committer, callbacks = make_callbacks(run, state, work_dir, tensorboard, log)
        net.fit(data.train, validation_data=data.validation, epochs=run.epochs, initial_epoch=done,
                callbacks=callbacks, shuffle=False, verbose=verbose)  # the pipeline shuffles (seeded)
        diverged = committer.divergence_message() if committer.diverged else None
    return diverged


def finish(run, net, data, heads, state, work_dir, output_dir, *, seconds, resumed_from=0,
           log=print) -> FitResult:
    """Evaluates the inference form of the trained model on the test split; on the chief writes model.keras,
    metadata.json and curves.png (history.csv is written epoch by epoch); a worker removes its scratch dir."""
    spec, source = run.spec, data.source
    final = inference_model(spec, net, heads.build_kwargs)
    evaluation, scores = task_steps(spec).evaluate(spec, final, data, log)
    meta = {
        "model": spec.name, "task": spec.task, "dataset": source.name, "class_names": list(source.class_names),
        "input_shape": list(heads.build_kwargs["input_shape"]), "output": spec.output,
        "preprocessing": data.preprocessing.to_dict(), "recipe": run.recipe.name,
        "recipe_details": run.recipe.to_dict(), "epochs": run.epochs, "batch_size": run.batch_size,
        "precision": run.precision, "steps_per_execution": run.steps_per_execution,
        "strategy": st.strategy_name(run.strategy), "replicas": run.replicas,
        **scores, "best_validation": state.best,
        "training_seconds_this_run": round(seconds, 1), "seed": run.seed, "limit": run.limit,
        "augment": run.augment, "backbone_weights": state.config.get("backbone_weights"),
        "overrides": run.overrides,
        "versions": md.versions(), "git_commit": md.git_commit(),
    }
    if source.image_convention is not None:
        meta["image_convention"] = source.image_convention
    if run.chief:
        with replaced_atomically(os.path.join(work_dir, md.MODEL_FILENAME)) as tmp:
            final.save(tmp)
        md.write(work_dir, meta)
        plot_history(state.history, os.path.join(work_dir, "curves.png"),
                     title=f"{spec.name} on {source.name} ({run.recipe.name} recipe)")
        log(f"Wrote {os.path.join(work_dir, md.MODEL_FILENAME)}, metadata.json, history.csv, curves.png")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    return FitResult(model=final, history=list(state.history), metadata=meta, evaluation=evaluation,
                     output_dir=output_dir, resumed_from=resumed_from)
