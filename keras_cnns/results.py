"""How classification results are shown, shared by the apps (classify, segment, scoremap) and
``python -m keras_cnns.lite``: the text lines, and the JSON records
``[{"path": ..., "top": [{"index", "class", "probability"[, "distance"]}]}]``.
Standard library only (the TensorFlow-free runner uses it)."""

import json

EXIT_BAD_INPUT = 2


def format_text(path, entries):
    """The image's path, then one line per class, best first: rank, name, probability, and the RBF distance
    when the entries carry one (LeNet-5)."""
    lines = [path]
    width = max(len(e["class"]) for e in entries)
    for rank, e in enumerate(entries, 1):
        line = f"  {rank}. {e['class']:<{width}}  {100 * e['probability']:6.2f}%"
        if "distance" in e:
            line += f"  distance {e['distance']:.4f}"
        lines.append(line)
    return "\n".join(lines)


class FailureLog:
    """The on_error of keras_cnns.images.iter_images in the apps: reports each unreadable input through `fail`
    (one line) and counts them for :func:`finish`."""

    def __init__(self, fail):
        self.fail = fail
        self.count = 0

    def __call__(self, err):
        self.fail(str(err))
        self.count += 1


def finish(records, as_json, failed, total, fail, verb="classified"):
    """The end of every app that turns images into records (classify, segment, scoremap, the lite runner):
    the records as one JSON list when `as_json`, the count of failed inputs (each already reported) through
    `fail`, and the exit status: 0, or 2 when any input failed."""
    if as_json:
        print(json.dumps(records, indent=2))
    if failed:
        fail(f"{failed} of {total} input(s) could not be {verb} (see above).")
        return EXIT_BAD_INPUT
    return 0
