"""Where trained models live: one answer for training (which writes them) and inference (which reads them).

:func:`saved_models_dir` is the one place that decides, in this order:

1. ``$KERAS_CNNS_HOME`` (or the older ``$KERAS_CNNS_SAVED_MODELS``), when set;
2. the repository's ``saved_models/`` when keras_cnns runs from a checkout (``python apps/X.py`` or
   ``pip install -e .``: a pyproject.toml sits beside the package);
3. a per-user data directory otherwise (an installed copy): ``$XDG_DATA_HOME/keras_cnns/saved_models``
   (default ``~/.local/share/...``) on Linux, ``~/Library/Application Support/keras_cnns/saved_models``
   on macOS, ``%LOCALAPPDATA%\\keras_cnns\\saved_models`` on Windows.

So ``python apps/train.py`` run from any working directory writes where ``python apps/classify.py`` looks.
An installed copy also carries the models shipped in the repository (package data ``keras_cnns/_shipped``,
read-only): :func:`model_search_path` lists them after the home, so a fresh ``pip install`` classifies with
the shipped LeNet-5 at once, and a model trained later in the home takes precedence.
"""

import contextlib
import os
import sys

HOME_ENV = "KERAS_CNNS_HOME"
LEGACY_ENV = "KERAS_CNNS_SAVED_MODELS"
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(PACKAGE_DIR)
SHIPPED_DIR = os.path.join(PACKAGE_DIR, "_shipped")  # saved_models/ of the repository, in an installed copy


def in_checkout():
    """True when this keras_cnns is the source tree of a repository (not a copy in site-packages)."""
    return os.path.isfile(os.path.join(REPO_ROOT, "pyproject.toml"))


def user_data_dir():
    """The per-user data directory of keras_cnns for this platform."""
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
    elif sys.platform == "darwin":
        base = os.path.join(home, "Library", "Application Support")
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return os.path.join(base, "keras_cnns")


def saved_models_dir():
    """The directory trained models are written to and looked up in first (see the module docstring)."""
    chosen = os.environ.get(HOME_ENV) or os.environ.get(LEGACY_ENV)
    if chosen:
        return os.path.abspath(os.path.expanduser(chosen))
    if in_checkout():
        return os.path.join(REPO_ROOT, "saved_models")
    return os.path.join(user_data_dir(), "saved_models")


def model_search_path():
    """Directories searched for ``<model>-<dataset>/`` model directories, first match wins: the home, then
    the models shipped inside an installed copy (when there are any and no environment variable is set)."""
    dirs = [saved_models_dir()]
    pinned = os.environ.get(HOME_ENV) or os.environ.get(LEGACY_ENV)
    if not pinned and os.path.isdir(SHIPPED_DIR) and os.path.abspath(SHIPPED_DIR) != dirs[0]:
        dirs.append(SHIPPED_DIR)
    return dirs


def find_model_dir(dirname):
    """The first ``<search dir>/<dirname>`` that exists, else the one in the home (which may not exist)."""
    for base in model_search_path():
        candidate = os.path.join(base, dirname)
        if os.path.isdir(candidate):
            return candidate
    return os.path.join(saved_models_dir(), dirname)


@contextlib.contextmanager
def replaced_atomically(path):
    """The one way the package writes a file that someone may read or resume from: yields a temporary path in
    the same folder (hidden, per process, same suffix so Keras' savers accept it); when the block succeeds
    it replaces `path` by one rename, so a reader sees the old file or the new one, never half of one.
    After an error the temporary file is removed and `path` is untouched."""
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path, text):
    """Writes `text` to `path` through replaced_atomically, flushed to the disk before the rename."""
    with replaced_atomically(path) as tmp:
        with open(tmp, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
