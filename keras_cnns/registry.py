"""One registry for every model in the zoo.

Builders register themselves with :func:`register_model`; apps, notebooks and tests reach them only
through :func:`get_model` and :func:`list_models`. A second registration of a name (or of an alias) is
refused, so two families can never silently shadow each other. The families register when
keras_cnns.models is imported, which every lookup here does first (the package import is lazy).
"""

import dataclasses
import difflib
import fnmatch
import importlib
from typing import Callable, Optional, Tuple

import keras


BACKENDS = ("tensorflow", "jax", "torch")  # the Keras 3 backends the zoo is tested on (tests/test_backends.py)
CPU_BFLOAT16 = ("mixed_bfloat16", "onednn_amp")  # what a spec's cpu_bfloat16 may name (keras_cnns.training.precision)


class WeightsImportError(ValueError):
    """Published weights could not be copied into a model: the source could not be fetched or read, or it
    does not fit the model as built (classes, input size, layers). The message says what to do."""


@dataclasses.dataclass(frozen=True)
class Weights:
    """One set of published weights a model can import, the counterpart of torchvision's Weights entries.

    Attributes:
      name: what ``weights=`` takes to import them ("imagenet").
      dataset: what they were trained on ("imagenet": ILSVRC-2012).
      origin: who publishes them and how ("keras.applications.VGG16").
      files: the files the origin downloads into ~/.keras/models/ (with the classifier, without it); on an
        offline machine ``weights=`` takes the path of a local copy.
      preprocessing: the keras_cnns.data.Preprocessing keywords of the inputs they expect.
      classes: the package file that names the classifier's outputs (index i -> [id, name]).
      num_classes: the classifier's outputs.
      importer: ``importer(model, source)`` copies them into a model built by the spec's builder; source is
        `name`, the path of one of `files`, or the origin's model instance. Raises WeightsImportError.
    """

    name: str
    dataset: str
    origin: str
    files: Tuple[str, ...]
    preprocessing: dict
    classes: str
    num_classes: int
    importer: Callable


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model besides its builder.

    Attributes:
      name: registry name ("vgg16").
      builder: the keyword-only function that builds it.
      family: module-level family ("vgg"), used for recipes and feature maps.
      paper: short citation of the paper the model follows.
      input_shape: default (H, W, C) input.
      min_input_size: smallest H (= W) the architecture accepts with include_top=True.
      test_input_shape: smallest shape that is cheap to build and train in tests.
      deviations: what differs from the paper, in one sentence (shown in the README table).
      output: "probabilities" (softmax head) or "rbf_distances" (LeNet-5's Euclidean RBF units:
        smallest wins).
      task: "classification" (one vector of class scores per image), "segmentation" (a map of class
        probabilities per pixel, the input's size), "detection", or "retrieval" (the autoencoders that
        turn feature vectors into binary codes).
      aux_min_input_size: for a model with auxiliary training heads (GoogLeNet's, built with
        aux_heads=True), the smallest H (= W) at which they fit; None for a model without them.
      weights: the published weight sets it can import (:class:`Weights`), none for most.
      recipe: the family row of keras_cnns.training.recipes.RECIPES it trains with, when that is not its
        family (the CIFAR-sized members of an ImageNet family: resnet20 trains with "resnet_cifar").
      backends: the Keras 3 backends it builds and runs on (KERAS_BACKEND): every model is written in
        keras.ops except Faster R-CNN, whose anchors, box coding and NMS are TensorFlow ops.
      cpu_bfloat16: the precision ("mixed_bfloat16" or "onednn_amp") it trains in with precision="auto" (apps/
        train.py's default) on a CPU with bfloat16 arithmetic (keras_cnns.training.precision.choose). Set only
        where a full run of its fast recipe in that precision was measured faster than float32 at the same test
        accuracy (benchmarks/accuracy.py, docs/training.md "Precision"); None: float32 everywhere.
      steps_per_execution: the train steps per call of the compiled train function it trains with when a run
        does not say (keras_cnns.training.fit's steps_per_execution=None, apps/train.py's default). The steps and
        the weights after them are the same at every value (tests/test_training.py); above 1 only where the
        speed benchmark measured it faster (a step of a few milliseconds, where the call's overhead counts:
        docs/training.md "Steps per execution").
    """

    name: str
    builder: Callable
    family: str
    paper: str
    input_shape: Tuple[int, int, int]
    min_input_size: int
    test_input_shape: Tuple[int, int, int]
    deviations: str = "none"
    output: str = "probabilities"
    aux_min_input_size: Optional[int] = None
    task: str = "classification"
    weights: Tuple[Weights, ...] = ()
    recipe: Optional[str] = None
    backends: Tuple[str, ...] = BACKENDS
    cpu_bfloat16: Optional[str] = None
    steps_per_execution: int = 1

    @property
    def recipe_family(self):
        """The family row of the training recipes this model trains with (its family unless `recipe` says)."""
        return self.recipe or self.family

    def published_weights(self, name):
        """The :class:`Weights` named `name` ("imagenet"), or None when the model has none of that name."""
        return next((w for w in self.weights if w.name == name), None)


TASKS = ("classification", "segmentation", "detection", "retrieval")
_REGISTRY = {}
_ALIASES = {}


def check_steps_per_execution(value, message):
    """Refuses a steps_per_execution that is not a positive int (a bool is not one): ValueError with `message`
    and the value received. register_model and keras_cnns.training.fit both check with it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{message}. Received: steps_per_execution={value!r}")


def register_model(name, *, family, paper, input_shape, min_input_size, test_input_shape=None,
                   deviations="none", output="probabilities", aux_min_input_size=None,
                   task="classification", weights=(), recipe=None, backends=BACKENDS, cpu_bfloat16=None,
                   steps_per_execution=1):
    """Decorator: registers a builder under `name`. Refuses a name that is already taken."""
    if task not in TASKS:
        raise ValueError(f"register_model: task must be one of {TASKS}. Received: task={task!r}")
    if cpu_bfloat16 not in (None,) + CPU_BFLOAT16:
        raise ValueError(f"register_model: cpu_bfloat16 must be None or one of {CPU_BFLOAT16}. "
                         f"Received: cpu_bfloat16={cpu_bfloat16!r}")
    check_steps_per_execution(steps_per_execution, "register_model: steps_per_execution must be a positive integer")

    def decorate(builder):
        _claim(name)
        _REGISTRY[name] = ModelSpec(
            name=name, builder=builder, family=family, paper=paper,
            input_shape=tuple(input_shape), min_input_size=int(min_input_size),
            test_input_shape=tuple(test_input_shape or input_shape), deviations=deviations,
            output=output, aux_min_input_size=aux_min_input_size, task=task, weights=tuple(weights),
            recipe=recipe, backends=tuple(backends), cpu_bfloat16=cpu_bfloat16,
            steps_per_execution=steps_per_execution)
        return builder

    return decorate


def register_alias(alias, target):
    """Makes `alias` another name for the registered model `target` ("inception" -> "googlenet")."""
    if target not in _REGISTRY:
        raise ValueError(f"Cannot alias {alias!r} to unregistered model {target!r}.")
    _claim(alias)
    _ALIASES[alias] = target


def _claim(name):
    if name in _REGISTRY or name in _ALIASES:
        raise ValueError(f"A model named {name!r} is already registered; registry names must be unique.")


def load_families():
    """Imports keras_cnns.models, whose modules register every builder (a no-op once done)."""
    importlib.import_module("keras_cnns.models")


def resolve_name(name):
    """Returns the canonical registry name for `name` (aliases followed), or raises ValueError."""
    load_families()
    if not isinstance(name, str):
        raise ValueError(f"A model name must be a string. Received: name={name!r}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in _REGISTRY:
        known = sorted(_REGISTRY) + sorted(_ALIASES)
        close = difflib.get_close_matches(key, known, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} Known models: {', '.join(known)}. "
            "List them with keras_cnns.list_models().")
    return key


def get_spec(name) -> ModelSpec:
    """The :class:`ModelSpec` of a registered model (aliases accepted)."""
    return _REGISTRY[resolve_name(name)]


def list_models(pattern: Optional[str] = None, task: Optional[str] = None):
    """Sorted registry names, optionally filtered by a shell-style pattern ("resnet*", "vgg1?", "fcn*")
    and by task ("classification", "segmentation", "detection")."""
    load_families()
    names = sorted(_REGISTRY)
    if task is not None:
        names = [n for n in names if _REGISTRY[n].task == task]
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def models_with_weights(name="imagenet"):
    """Registry names of the models that can import the published weights `name`, in registration order
    (each family's variants by depth: resnet50, resnet101, resnet152)."""
    load_families()
    return [n for n, spec in _REGISTRY.items() if spec.published_weights(name) is not None]


def list_aliases():
    """{alias: registry name}."""
    load_families()
    return dict(_ALIASES)


def get_model(name, **kwargs):
    """Builds a registered model: ``get_model("vgg16", num_classes=10, input_shape=(64, 64, 3))``.

    Every builder takes the same keywords as keras.applications: input_shape, num_classes,
    include_top, pooling, classifier_activation, weights, name; families may add their own.
    """
    spec = get_spec(name)
    backend = keras.backend.backend()
    if backend not in spec.backends:
        raise ValueError(f"{spec.name} runs on the Keras backend {' or '.join(spec.backends)} only. Received: "
                         f"KERAS_BACKEND={backend}. Set KERAS_BACKEND={spec.backends[0]} to build it.")
    return spec.builder(**kwargs)
