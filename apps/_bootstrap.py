"""The first import of every app.

Run as a script, an app has apps/ at the head of sys.path, where apps/inspect.py would shadow the standard
library's `inspect` (which TensorFlow imports): take apps/ off the path and put the repository root on it,
so `import keras_cnns` works from a clean clone without installing anything.
"""

import os
import sys

APPS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(APPS)
sys.path[:] = [ROOT] + [p for p in sys.path if os.path.abspath(p or os.getcwd()) not in (APPS, ROOT)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def quiet_native_logs():
    """TensorFlow's and LiteRT's C++ start-up lines go to file descriptor 2 whatever TF_CPP_MIN_LOG_LEVEL
    says: point that descriptor at /dev/null and keep Python's sys.stderr (our one-line messages,
    warnings, tracebacks of real bugs) on the original stream."""
    try:
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        sys.stderr = os.fdopen(saved, "w", buffering=1)
    except OSError:
        pass


def finish(records, as_json, failed, total, verb, fail, exit_bad_input=2):
    """The end of an app that maps images to records: prints the records as one JSON list when asked,
    says how many inputs failed (each already reported by `fail`), and returns the exit status."""
    if as_json:
        import json

        print(json.dumps(records, indent=2))
    if failed:
        fail(f"{failed} of {total} input(s) could not be {verb} (see above).")
        return exit_bad_input
    return 0


def run(main):
    """Runs an app's main() as the script: its return value is the exit status; Ctrl-C exits with 130."""
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
