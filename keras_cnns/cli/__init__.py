"""The command-line apps, as functions: each module's ``main(argv=None)`` returns an exit status.

They are reachable two ways: ``python apps/<app>.py`` (a two-line door in a checkout) and the console
scripts of an installed keras_cnns (``keras-cnns-classify``, ``-train``, ``-evaluate``, ``-export``,
``-inspect``; see pyproject.toml). Every app reports a bad input as one line on stderr and exit status 2.
"""

import os

from keras_cnns.cli.stderr import quiet_native_logs  # noqa: F401

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# What a person can fix (a bad value, a missing file or directory, a package or dataset that is not
# installed): reported in one line with exit status 2. Anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, OSError, ImportError)


def first_line(err):
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(err)
    return text.splitlines()[0] if text.strip() else type(err).__name__
