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
    """keras_cnns/cli/stderr.py's quiet_native_logs, loaded by path so that TensorFlow is not imported yet."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("keras_cnns_cli_stderr",
                                                  os.path.join(ROOT, "keras_cnns", "cli", "stderr.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.quiet_native_logs()


def door(app, namespace, quiet=False):
    """The whole of apps/<app>.py: puts keras_cnns.cli.<app>'s names (main, parse_args, ...) into the
    script's namespace (tests load the scripts as modules) and, run as a script, calls its main().

    quiet: silence TensorFlow's C++ start-up lines before it is imported (classify, inspect)."""
    import importlib

    as_script = namespace.get("__name__") == "__main__"
    if as_script and quiet:
        quiet_native_logs()
    module = importlib.import_module(f"keras_cnns.cli.{app}")
    namespace.update({k: v for k, v in vars(module).items() if not k.startswith("__")})
    if as_script:
        try:
            sys.exit(module.main())
        except KeyboardInterrupt:
            sys.exit(130)
