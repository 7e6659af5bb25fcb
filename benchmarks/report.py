"""What every benchmark shares: a pandas table as markdown, the README section it is written into, the median
time of a call, and the inference speed of a model on a test pipeline."""

import argparse
import os
import time

from keras_cnns.cli.train import PRECISIONS  # train.py's own list (it loads no TensorFlow)


def write_readme_section(path, begin, end, text):
    """Replaces what lies between the `begin` and `end` marker lines of the README at `path` with `text`."""
    with open(path) as f:
        readme = f.read()
    if begin not in readme or end not in readme:
        raise SystemExit(f"{path} has no {begin} ... {end} markers")
    head, rest = readme.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(head + begin + "\n" + text.rstrip("\n") + "\n" + end + tail)


def markdown_table(frame, index=False):
    """A pandas DataFrame as a markdown table (empty cells for missing values)."""
    frame = frame.reset_index() if index else frame
    frame = frame.astype(object).where(frame.notna(), "")
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def median_ms(fn, repeats):
    """Median wall time of fn() in milliseconds over `repeats` calls, after one warm-up call (numpy-free, so
    a PyTorch process can use it without importing TensorFlow)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    mid = len(times) // 2
    return 1000.0 * (times[mid] if len(times) % 2 else (times[mid - 1] + times[mid]) / 2)


def inference_images_per_second(model, dataset, batches=10):
    """Test-split images per second through model.predict_on_batch, after one warm-up batch."""
    seen, seconds = 0, 0.0
    for i, (images, _) in enumerate(dataset.take(batches + 1)):
        start = time.perf_counter()
        model.predict_on_batch(images)
        if i:
            seconds += time.perf_counter() - start
            seen += int(images.shape[0])
    return seen / max(seconds, 1e-9)


def training_benchmark_parser(doc, name, shipped, app):
    """The options every benchmark that trains a task's model shares: --epochs, --smoke, --ship (writes
    `shipped` into the saved-models home, `app`'s default model), --work (build/benchmarks/<name>), --results,
    --write-readme, --verbose, --augment and --backbone-weights (:func:`training_options`); `doc` is the
    script's docstring (first line, then the usage paragraph)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=doc.splitlines()[0], epilog=doc.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=None, help="default: the fast recipe's")
    p.add_argument("--smoke", action="store_true", help="1 epoch on 64 scenes per split")
    p.add_argument("--ship", action="store_true",
                   help=f"write {shipped} into the saved-models home (the model {app} uses by default)")
    p.add_argument("--work", default=os.path.join(root, "build", "benchmarks", name))
    p.add_argument("--results", default=os.path.join(root, "benchmarks", "results"))
    p.add_argument("--write-readme", default=None, metavar="README")
    p.add_argument("--verbose", type=int, default=2, choices=(0, 1, 2))
    p.add_argument("--augment", default="recipe", help="recipe (default), none or flip (images with their labels)")
    p.add_argument("--backbone-weights", default=None, metavar="PATH",
                   help="start the backbone from this trained classifier's model.keras (default: from scratch)")
    p.add_argument("--precision", default="float32", choices=PRECISIONS,
                   help="the training precision (default float32, so that runs compare; auto: what apps/train.py "
                        "picks on this machine)")
    return p


def training_options(args):
    """fit()'s keyword arguments from the shared options of :func:`training_benchmark_parser`."""
    return {"augment": None if args.augment == "none" else args.augment, "backbone_weights": args.backbone_weights,
            "precision": args.precision}


def start_columns(meta):
    """The table cells that say how a run started: its augmentation, its backbone (the classifier's folder) and the
    precision it trained in."""
    backbone = meta.get("backbone_weights")
    return {"augment": meta.get("augment") or "none",
            "backbone": os.path.basename(os.path.dirname(backbone)) if backbone else "scratch",
            "precision": meta.get("precision", "float32")}
