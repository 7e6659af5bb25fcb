"""Progress bars for the long loops that are not model.fit (which has its own): the image-folder scan,
evaluation, export parity, classifying a big directory.

A :class:`Progress` draws keras.utils.Progbar on stderr (never stdout, where the apps' results and JSON go),
and only when stderr is a terminal and progress is not switched off (the apps' --quiet calls
:func:`set_enabled`). Off, it costs nothing and Keras is not imported.
"""

import contextlib
import sys

_ENABLED = True


def set_enabled(enabled):
    """Switches every progress bar of this process on (the default, where stderr is a terminal) or off."""
    global _ENABLED
    _ENABLED = bool(enabled)


def enabled():
    stream = sys.stderr
    return _ENABLED and hasattr(stream, "isatty") and stream.isatty()


class Progress:
    """``with Progress(total, "Scanning images") as bar: ... bar.add(n)``; a no-op when progress is off or
    `total` is small (below `min_total`) or unknown (None)."""

    def __init__(self, total, label, unit="images", min_total=2):
        self.bar = None
        self.label = label
        if total is not None and total >= min_total and enabled():
            import keras

            with self._to_stderr():
                print(f"{label}:")
                self.bar = keras.utils.Progbar(int(total), unit_name=unit)

    @staticmethod
    def _to_stderr():
        # Progbar writes with print(): point it at stderr so stdout stays the apps' results
        return contextlib.redirect_stdout(sys.stderr)

    def add(self, n=1):
        if self.bar is not None:
            with self._to_stderr():
                self.bar.add(int(n))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            with self._to_stderr():
                sys.stdout.flush()
        return False
