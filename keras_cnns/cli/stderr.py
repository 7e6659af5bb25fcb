"""Native log silencing for the apps. Standard library only: apps/_bootstrap.py loads this file by path
before TensorFlow is imported (importing it as keras_cnns.cli.stderr would import keras_cnns first)."""

import faulthandler
import os
import sys


def quiet_native_logs():
    """TensorFlow's and LiteRT's C++ start-up lines go to file descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL
    says: point that descriptor at /dev/null and keep Python's sys.stderr (our one-line messages,
    warnings, tracebacks of real bugs) on the original stream. A second call does nothing.

    Only the command-line apps call this (never a library function), first thing in their main(), and they
    give the descriptor back with :func:`restore_native_logs` once their model is loaded (TensorFlow's import
    and a model's load are where those lines come from), so that what the native code says afterwards (a
    CHECK failure, an abort) reaches the terminal. Until then a native crash is reported by faulthandler (the
    signal and the Python stack) on the original stream. KERAS_CNNS_NATIVE_LOGS=1 in the environment leaves
    descriptor 2 alone from the start (to read what TensorFlow says while it starts). inspect.py and
    retrieve.py build, which build or train models from start to end, keep it silenced to the end."""
    if getattr(sys.stderr, "keras_cnns_quiet", False) or os.environ.get("KERAS_CNNS_NATIVE_LOGS") == "1":
        return
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(saved, "w", buffering=1)
        sys.stderr.keras_cnns_quiet = True
        faulthandler.enable(file=sys.stderr)
    except OSError:
        pass


def restore_native_logs():
    """Points file descriptor 2 back at the stream :func:`quiet_native_logs` saved (nothing when it did not
    silence it). The apps call it once the noisy start-up is over."""
    stream = sys.stderr
    if not getattr(stream, "keras_cnns_quiet", False):
        return
    try:
        stream.flush()
        os.dup2(stream.fileno(), 2)
    except (OSError, ValueError):
        pass
