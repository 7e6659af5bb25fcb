"""The command-line apps, as functions: each module's ``main(argv=None)`` returns an exit status.

They are reachable two ways: ``python apps/<app>.py`` (a two-line door in a checkout) and the console
scripts of an installed keras_cnns (``keras-cnns-classify``, ``-train``, ``-evaluate``, ``-export``,
``-inspect``; see pyproject.toml). Every app reports a bad input as one line on stderr and exit status 2.
"""

import argparse
import copy
import os
import sys

from keras_cnns.cli.stderr import quiet_native_logs, restore_native_logs  # noqa: F401

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ONEDNN_ENV = "TF_ENABLE_ONEDNN_OPTS"

# What a person can fix (a bad value, a missing file or directory, a package or dataset that is not
# installed): reported in one line with exit status 2. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, OSError, ImportError)


def first_line(err):
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(err)
    return text.splitlines()[0] if text.strip() else type(err).__name__


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The apps' --help: the module docstring's examples kept as written (raw epilog), and "(default: X)"
    shown only for a default that is a real value; a default of None means "computed elsewhere", which
    each option's help text says in words."""

    def _format_action(self, action):
        if not (action.help or "").strip() and self._real_default(action):  # no help text: the default alone
            action = copy.copy(action)
            action.help = "default: %(default)s"
        return super()._format_action(action)

    @staticmethod
    def _real_default(action):
        return (action.option_strings and action.nargs != 0 and action.help is not argparse.SUPPRESS
                and not any(action.default is v for v in (None, False, argparse.SUPPRESS)))

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text.lower() or not self._real_default(action):
            return text
        return text + " (default: %(default)s)"


def parser(doc, prog=None, cls=argparse.ArgumentParser):
    """The ArgumentParser (or subclass `cls`) of an app whose module docstring is `doc`: its first paragraph
    as the description, the rest (the examples and notes) as the epilog, both shown as written."""
    head, _, rest = doc.strip().partition("\n\n")
    return cls(prog=prog, description=head, epilog=rest.strip("\n").rstrip() or None, formatter_class=HelpFormatter)


def load_task_model(model, task, fail, kind, example):
    """The inference Predictor of `model` for an app of one task (segment.py, detect.py), or None after one line
    through `fail`: a model that does not load, or a model of another task (``kind``: what to pass instead, e.g.
    "an FCN"; ``example``: a model name)."""
    from keras_cnns import inference

    try:
        predictor = inference.load(model)
    except USER_ERRORS as err:
        fail(first_line(err))
        return None
    if predictor.metadata.get("task") != task:
        fail(f"{predictor.source} is a {predictor.metadata.get('task', 'classification')} model, not a {task} "
             f"model; pass {kind} (e.g. --model {example}). For classifiers use classify.py.")
        return None
    return predictor


def make_output_folder(path, fail):
    """Creates an app's --output folder; False after one line through `fail` when it cannot."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        fail(f"cannot create the output folder {path!r} ({err.strerror}); choose another with --output.")
        return False
    return True


def add_onednn_argument(p):
    """--onednn / --no-onednn for an app whose work is batches (training, evaluation, feature extraction)."""
    p.add_argument("--onednn", action=argparse.BooleanOptionalAction, default=None,
                   help="TensorFlow's oneDNN CPU kernels (default: on, unless TF_ENABLE_ONEDNN_OPTS is set; "
                        "TensorFlow's own default turns them on only on AVX-512 VNNI/BF16 and AMX CPUs; "
                        "docs/performance.md)%(default).0s")  # prints nothing; stops "(default: None)"


def kernels_line(choice):
    """The line a batch app prints about the kernels :func:`choose_onednn` chose."""
    return f"Kernels: TensorFlow oneDNN {choice} ({ONEDNN_ENV}={os.environ[ONEDNN_ENV]})"


def choose_onednn(on=None):
    """TensorFlow's oneDNN CPU kernels for this process, chosen before TensorFlow is imported (its
    TF_ENABLE_ONEDNN_OPTS variable is read once, at import).

    TensorFlow turns them on by itself only on CPUs with AVX-512 VNNI, AVX-512 BF16 or AMX; elsewhere it runs its
    own Eigen kernels. The batch apps (train.py, evaluate.py, retrieve.py build) ask for them everywhere (on=None):
    on the AVX2 machine of docs/performance.md they trained the zoo faster than Eigen's and than the PyTorch twins
    there, and ran batch-32 inference faster too (benchmarks/speed.py, precision onednn_float32), with the same
    outputs (tests/test_backends.py). They compute in float32, as Eigen's do. The one-image apps (classify,
    detect, segment, retrieve.py query) keep TensorFlow's default: batch-1 latency was worse with oneDNN.

    on: None = on unless TF_ENABLE_ONEDNN_OPTS is already set (the environment wins); True / False = on / off.
    Returns "on" or "off" as TensorFlow will run, or None when TensorFlow is already imported in this process
    (a notebook, a test): the choice can no longer be made, and nothing is changed."""
    if "tensorflow" in sys.modules:
        return None
    if on is None:
        os.environ.setdefault(ONEDNN_ENV, "1")
    else:
        os.environ[ONEDNN_ENV] = "1" if on else "0"
    return "off" if os.environ[ONEDNN_ENV].strip().lower() in ("0", "false", "off") else "on"
