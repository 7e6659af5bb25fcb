"""python apps/detect.py ...: the checkout's door to keras_cnns.cli.detect (installed: keras-cnns-detect)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _bootstrap  # noqa: E402  (repository root on sys.path, apps/ off it)

_bootstrap.door("detect", globals(), quiet=True)
