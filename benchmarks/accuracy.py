"""Fashion-MNIST accuracy and CPU speed of the zoo's small models (a benchmark, not a test).

    python benchmarks/accuracy.py            # the full thing: tens of minutes on 2 CPU cores
    python benchmarks/accuracy.py --smoke    # 1 epoch on 512 images per run: checks the script works
    python benchmarks/accuracy.py --models resnet20 --precisions float32 mixed_bfloat16 --skip-speed \
        --out benchmarks/results/accuracy-bf16   # a full run in float32 and in bfloat16, same seed (issue 10)
    python benchmarks/accuracy.py --models lenet5 lenet5_modern --steps-per-execution 1 8 32 --skip-speed \
        --out benchmarks/results/accuracy-spe    # the same runs with 1, 8 and 32 train steps per call

Writes benchmarks/results/accuracy.csv and accuracy.md with, per run: model, recipe, epochs, test accuracy,
wall time, training images/s and the input pipeline's images/s (keras_cnns.data.measure_pipeline), then
float32 vs mixed_bfloat16 and XLA (jit) on vs off training throughput. Targets from issue 3:
lenet5 >= 0.89, lenet5_modern >= 0.91, resnet20 >= 0.935. The runs in float32 and in bfloat16 on a CPU with
bfloat16 arithmetic are what the zoo's bfloat16 defaults rest on (a spec's cpu_bfloat16, docs/training.md
"Precision"); `--precisions auto` trains in what apps/train.py would pick on this machine.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [_ROOT] + [p for p in sys.path if os.path.abspath(p or ".") != os.path.join(_ROOT, "benchmarks")]
sys.path.append(os.path.join(_ROOT, "benchmarks"))  # report.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import time  # noqa: E402

import speedlib  # noqa: E402

from keras_cnns.cli.train import PRECISIONS  # noqa: E402 (train.py's own list: it loads no TensorFlow)

ACCURACY_RUNS = [  # (model, recipe, target test accuracy, input size or None for the model's own)
    ("lenet5", "paper", 0.89, None),
    ("lenet5_modern", "fast", 0.91, None),
    ("lenet5_modern", "paper", None, None),  # apps/train.py's default recipe, for its bfloat16 default (issue 10)
    ("resnet20", "fast", 0.935, None),
    # The deepest CIFAR ResNet the paper's Table 6 trains without a warm-up, no target: its runs in float32 and in
    # bfloat16 decide whether the deeper CIFAR ResNets get resnet20's bfloat16 default (docs/training.md).
    ("resnet56", "fast", None, None),
    # The segmentation backbones (benchmarks/segmentation.py): the vgg_slim fast recipe at both widths, 0.9274
    # (quarter, session 13) and 0.9023 (slim, session 9) in their first runs; the targets are those, rounded down.
    ("vgg16_quarter", "fast", 0.92, None),
    ("vgg16_slim", "fast", 0.90, None),
    # The shipped GoogLeNet (the card's `classify.py --model inception`): 32x32, so a CPU trains it; the
    # auxiliary heads need 65x65 and are left out. 15 epochs: about 1.5 hours on 2 CPU cores.
    ("googlenet", "fast", 0.92, 32),
]
EPOCHS = {"googlenet": 15}  # runs whose epochs differ from their recipe's (the shipped model's command)
SPEED_MODELS = ("lenet5_modern", "resnet20")
SPEED_SETTINGS = [("float32", False), ("float32", True), ("mixed_bfloat16", False), ("mixed_bfloat16", True)]


def pipeline_images_per_second(model, dataset, batch_size, batches, size=None):
    from keras_cnns import data, get_spec
    from keras_cnns.training.recipes import get_recipe
    spec = get_spec(model)
    source = data.load_source(dataset)
    prep = data.default_preprocessing(source, spec.input_shape if size is None else (size, size))
    augment = get_recipe(spec, "fast").augment
    splits = data.make_datasets(source, preprocessing=prep, batch_size=batch_size, augment=augment, seed=0)
    return data.measure_pipeline(splits.train, batches=batches, warmup=5)["images_per_second"]


def run_accuracy(model, recipe, target, size, args, work, precision="float32", spe=None):
    from keras_cnns import training
    epochs = 1 if args.smoke else EPOCHS.get(model)
    start = time.time()
    name = (model + ("" if recipe == "paper" else f"-{recipe}") + ("" if precision == "float32" else f"-{precision}")
            + ("" if spe in (None, 1) else f"-spe{spe}") + (f"-seed{args.seed}" if args.seed else ""))
    out = os.path.join(work, name)
    result = training.fit(model, args.dataset, recipe=recipe, epochs=epochs, output_dir=out, precision=precision,
                          input_shape=None if size is None else (size, size), steps_per_execution=spe,
                          resume=False, limit=args.limit, verbose=args.verbose, tensorboard=False, seed=args.seed)
    wall = time.time() - start
    rows = result.history
    train_seconds = sum(r.get("seconds", 0) for r in rows)
    meta = result.metadata
    per_epoch = (args.limit or 54000) // meta["batch_size"] * meta["batch_size"]
    return {
        "kind": "accuracy", "model": model, "recipe": recipe,
        "precision": precision if precision != "auto" else f"auto: {meta['precision']}", "jit": "auto",
        **({"steps_per_execution": meta["steps_per_execution"]} if args.steps_per_execution != [None] else {}),
        **({"seed": args.seed} if args.seed else {}),
        "epochs": meta["epochs"], "test_accuracy": round(meta["test_accuracy"], 4),
        "target": "" if target is None else target,
        "wall_seconds": round(wall, 1),
        "train_images_per_second": round(per_epoch * len(rows) / max(train_seconds, 1e-9), 1),
        "pipeline_images_per_second": round(pipeline_images_per_second(model, args.dataset, meta["batch_size"],
                                                                       20 if args.smoke else 200, size), 1),
    }


def run_speed(model, precision, jit, args, work):
    """Training images/s for one epoch over `limit` images (tracing and compilation included)."""
    from keras_cnns import training
    limit = args.limit or 8192
    start = time.time()
    result = training.fit(model, args.dataset, recipe="fast", epochs=1, batch_size=128, precision=precision,
                          jit=jit, limit=limit, output_dir=os.path.join(work, f"{model}-{precision}-{jit}"),
                          resume=False, verbose=0, tensorboard=False, log=lambda *_: None)
    seconds = result.history[0]["seconds"]
    return {"kind": "speed", "model": model, "recipe": "fast", "precision": precision, "jit": jit, "epochs": 1,
            "test_accuracy": round(result.metadata["test_accuracy"], 4), "target": "",
            "wall_seconds": round(time.time() - start, 1),
            "train_images_per_second": round(limit // 128 * 128 / seconds, 1), "pipeline_images_per_second": ""}


def write(rows, out_dir, header=""):
    import pandas as pd
    from report import markdown_table

    os.makedirs(out_dir, exist_ok=True)
    table = pd.DataFrame(rows).fillna("")
    table.to_csv(os.path.join(out_dir, "accuracy.csv"), index=False)
    with open(os.path.join(out_dir, "accuracy.md"), "w") as f:
        f.write("# Fashion-MNIST accuracy and CPU speed (benchmarks/accuracy.py)\n\n" + (header and header + "\n\n")
                + markdown_table(table) + "\n")
    return os.path.join(out_dir, "accuracy.md")


def planned_runs(args, work):
    """[(function, its arguments)]: the accuracy runs asked for, each in every precision and steps per execution
    asked for, then the speed runs unless skipped."""
    runs = [(run_accuracy, (*run, args, work, precision, spe)) for run in ACCURACY_RUNS
            for precision in args.precisions for spe in args.steps_per_execution
            if args.models is None or run[0] in args.models]
    if not args.skip_speed:
        runs += [(run_speed, (m, prec, jit, args, work)) for m in SPEED_MODELS for prec, jit in SPEED_SETTINGS]
    return runs


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion_mnist")
    p.add_argument("--smoke", action="store_true", help="1 epoch on 512 images per run")
    p.add_argument("--limit", type=int, default=None, help="images per run (default: all; --smoke: 512)")
    p.add_argument("--out", default=os.path.join(_ROOT, "benchmarks", "results"))
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--models", nargs="+", default=None, help="only these accuracy runs (default: all)")
    p.add_argument("--precisions", nargs="+", default=["float32"], choices=PRECISIONS,
                   help="train each accuracy run once in each of these (same seed); default: float32")
    p.add_argument("--steps-per-execution", type=int, nargs="+", default=[None], metavar="N",
                   help="train each accuracy run once with each of these train steps per call (the same weights: "
                        "only the speed differs); default: the model's own (its registry spec's)")
    p.add_argument("--seed", type=int, default=0, help="the accuracy runs' seed (weights, split, shuffling); "
                                                       "another one shows the spread between runs")
    p.add_argument("--verbose", type=int, default=2)
    args = p.parse_args(argv)
    if args.smoke and args.limit is None:
        args.limit = 512
    return args


def main(argv=None):
    args = parse_args(argv)
    work = os.path.join(args.out, "tmp")           # git-ignored
    runs = planned_runs(args, work)
    from keras_cnns.metadata import versions
    installed = versions()
    header = (speedlib.machine_header({"TensorFlow": installed["tensorflow"], "Keras": installed["keras"]})
              + f"; run: python benchmarks/accuracy.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    rows = []
    for run, run_args in runs:
        rows.append(run(*run_args))
        report = write(rows, args.out, header)  # after every run: a long benchmark that is stopped keeps its rows
    print(open(report).read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
