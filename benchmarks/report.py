"""What every benchmark shares: a pandas table as markdown, the README section it is written into, the median
time of a call, the inference speed of a model on a test pipeline, and the child processes of the probes that
measure one setting per process (tf_data_autotune.py, batch_norm_latency.py, int8_kernels.py)."""

import argparse
import json
import os
import statistics
import subprocess
import sys
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
    return median_ms_alternated({None: fn}, repeats)[None]


def median_ms_alternated(fns, repeats, warm=True):
    """{name: median wall time in milliseconds} of each function in the dict `fns`, after one warm-up call
    each (warm=False: none, the caller has warmed them), their `repeats` calls alternated so that a slow spell of
    the machine falls on all of them."""
    for fn in fns.values() if warm else ():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: 1000.0 * statistics.median(values) for name, values in times.items()}


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


def run_child(script, task, timeout, env=None):
    """Runs `script --child <task as JSON>` in a fresh Python process and returns the JSON its last stdout line
    holds; a failed child raises RuntimeError with its last stderr line."""
    done = subprocess.run([sys.executable, os.path.abspath(script), "--child", json.dumps(task)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{os.path.basename(script)} child {json.dumps(task)} failed: "
                           f"{done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def probe_parser(doc, out, timeout=900):
    """The argparse parser of a probe that runs its settings in child processes: its description (the docstring's
    first line), the hidden --child that :func:`run_child` passes, --timeout per child and --out (default
    build/benchmarks/<out>)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=int, default=timeout, help="seconds a child may run")
    parser.add_argument("--out", default=os.path.join("build", "benchmarks", out))
    return parser


def answer_child(args, child):
    """A probe's child process: with --child (a task as JSON, from :func:`run_child`), prints child(task) as the
    JSON line run_child reads and returns True; else returns False."""
    if not args.child:
        return False
    print(json.dumps(child(json.loads(args.child))))
    return True


def check_counts(parser, args, flags):
    """parser.error (exit status 2) for the first of the integer options `flags` (argparse names) below 1."""
    for flag in flags:
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be 1 or more. Received: {getattr(args, flag)}")


def run_children(tasks, run, describe, echo=False):
    """run(task) for each task in order with a progress line "[i/n elapsed] describe(task)" (and the result when
    `echo`); returns the (task, result) pairs and the seconds they took."""
    results, started = [], time.time()
    for i, task in enumerate(tasks, 1):
        print(f"[{i}/{len(tasks)} {time.time() - started:.0f}s] {describe(task)}", flush=True)
        result = run(task)
        if echo:
            print("  " + json.dumps(result), flush=True)
        results.append((task, result))
    return results, time.time() - started


def run_probe(parser, argv, script, tasks, timeout, describe, write_results, *, detail="", env=None, hint="",
              echo=False):
    """A probe's parent: runs `tasks` as children of `script` (:func:`run_children`, :func:`run_child`, with the
    environment env(task) when given), prints the markdown file write_results(results, header) writes and returns
    0. A child that fails is parser.error (exit status 2) with its own last line, then `hint`."""
    try:
        results, seconds = run_children(
            tasks, lambda task: run_child(script, task, timeout, env=env(task) if env else None), describe, echo)
    except RuntimeError as error:  # an unknown model, or one the probe does not apply to
        parser.error(f"{error}{hint}")
    path = write_results(results, probe_header(script, argv, len(tasks), seconds, detail=detail))
    print(open(path).read())
    return 0


def probe_header(script, argv, processes, seconds, detail=""):
    """The header line of a probe's table: the machine, the cores, `detail`, the command line and the time."""
    import speedlib

    command = f"python benchmarks/{os.path.basename(script)} {' '.join(argv if argv is not None else sys.argv[1:])}"
    return (f"Machine: {speedlib.cpu_line()}; {os.cpu_count()} cores; {detail + '; ' if detail else ''}"
            f"run: {command.rstrip()}; {processes} processes in {seconds:.0f} s")


def write_csv_and_markdown(frame, shown, out, name, title, header):
    """<out>/<name>.csv from `frame` and <out>/<name>.md: "# title", `header`, and `shown` (the same rows
    formatted for reading) as a markdown table; returns the markdown file's path."""
    os.makedirs(out, exist_ok=True)
    frame.to_csv(os.path.join(out, f"{name}.csv"), index=False)
    path = os.path.join(out, f"{name}.md")
    with open(path, "w") as f:
        f.write(f"# {title}\n\n{header}\n\n{markdown_table(shown)}\n")
    return path
