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


def finish_records(records, as_json, failed, total, verb, fail, exit_bad_input=2):
    """The end of an app that turns images into records (classify, scoremap): the records as one JSON list
    when asked, how many inputs failed (each already reported by `fail`), and the exit status."""
    if as_json:
        import json

        print(json.dumps(records, indent=2))
    if failed:
        fail(f"{failed} of {total} input(s) could not be {verb} (see above).")
        return exit_bad_input
    return 0
