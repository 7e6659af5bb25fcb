"""Native log silencing for the apps. Standard library only: apps/_bootstrap.py loads this file by path
before TensorFlow is imported (importing it as keras_cnns.cli.stderr would import keras_cnns first)."""

import faulthandler
import os
import sys


def quiet_native_logs():
    """TensorFlow's and LiteRT's C++ start-up lines go to file descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL
    says: point that descriptor at /dev/null and keep Python's sys.stderr (our one-line messages,
    warnings, tracebacks of real bugs) on the original stream. A second call does nothing.

    Only the command-line apps call this (never a library function), first thing in their main(). A native
    crash would otherwise die silently: faulthandler reports it (the signal and the Python stack) on the
    original stream. KERAS_CNNS_NATIVE_LOGS=1 in the environment leaves descriptor 2 alone (to read what
    TensorFlow says when it aborts)."""
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
