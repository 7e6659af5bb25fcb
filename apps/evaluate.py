"""python apps/evaluate.py ...: the checkout's door to keras_cnns.cli.evaluate (installed: keras-cnns-evaluate)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bootstrap  # noqa: E402  (repository root on sys.path, apps/ off it)

_bootstrap.door("evaluate", globals())
