"""FCN-32s, FCN-16s and FCN-8s (VGG-16 at 1/8 width, _slim, or with its trunk at 1/4, _quarter) on the
Fashion-MNIST scenes: mean IoU, per-class IoU, pixel accuracy, CPU training time and inference images/s (a
benchmark, not a test).

    python benchmarks/segmentation.py                 # trains the three slim FCNs, fast recipe: hours on 2 cores
    python benchmarks/segmentation.py --models fcn8s_vgg16_quarter --augment redraw --backbone-weights
        runs/vgg16_quarter/model.keras --epochs 30 --ship   # the FCN-8s into saved_models/ (segment.py's default)
    python benchmarks/segmentation.py --smoke         # 1 epoch on 64 scenes each: checks the script works
    python benchmarks/segmentation.py --write-readme README.md
    python benchmarks/segmentation.py --models fcn8s_vgg16_slim --augment flip --backbone-weights
        runs/vgg16_slim/model.keras                   # flipped scenes, from a trained vgg16_slim classifier
    python benchmarks/segmentation.py --models fcn8s_vgg16_slim --dropout 0   # fc6/fc7 without dropout
    python benchmarks/segmentation.py --from-csv A/segmentation.csv B/segmentation.csv --write-readme README.md
                                                      # measure nothing: earlier runs' rows in one table

Each model is trained by keras_cnns.training.fit (= `python apps/train.py --model fcn8s_vgg16_slim --recipe fast`)
on the 10,000 training scenes and evaluated on the 2,000 test scenes (docs/data.md, "Scenes"; the specification
is fixed, not tuned to the models). Writes benchmarks/results/segmentation.{csv,md}. Targets (issue 7): FCN-8s
mean IoU (11 classes, background included) >= 0.75, and the paper's order 32s < 16s < 8s.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [_ROOT] + [p for p in sys.path if os.path.abspath(p or ".") != os.path.join(_ROOT, "benchmarks")]
sys.path.append(os.path.join(_ROOT, "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from report import (inference_images_per_second, start_columns, training_benchmark_parser,  # noqa: E402
                    training_options)

from keras_cnns.cli.segment import DEFAULT_MODEL  # noqa: E402 (segment.py loads no TensorFlow at import)

STEMS = ("fcn32s", "fcn16s", "fcn8s")
# The VGG-16 twins the FCNs are benchmarked at (keras_cnns.models.vgg.SMALL_WIDTHS, a test holds them equal): 1/8
# width, and a trunk at 1/4.
TWINS = ("slim", "quarter")
MODELS = tuple(f"{stem}_vgg16_slim" for stem in STEMS)  # the default run
CHOICES = tuple(f"{stem}_vgg16_{twin}" for twin in TWINS for stem in STEMS)
SHIPPED = DEFAULT_MODEL  # --ship writes segment.py's default into saved_models/
TARGET_MEAN_IOU = 0.75
PAPER_DROPOUT = 0.5  # keras_cnns.models.fcn.DROPOUT (a test holds them equal; importing it loads TensorFlow)
BEGIN, END = "<!-- segmentation-table: written by benchmarks/segmentation.py -->", "<!-- /segmentation-table -->"


def parse_args(argv=None):
    p = training_benchmark_parser(__doc__, "segmentation", SHIPPED, "segment.py")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=CHOICES)
    p.add_argument("--dropout", type=float, default=None, metavar="RATE",
                   help=f"the dropout rate after fc6 and fc7 (default: the paper's {PAPER_DROPOUT})")
    p.add_argument("--from-csv", nargs="+", default=None, metavar="CSV",
                   help="measure nothing: the rows of these earlier runs' segmentation.csv files (a later file's "
                        "row replaces an earlier one of the same model and setting) into --results' tables (and "
                        "--write-readme)")
    args = p.parse_args(argv)
    if args.ship and SHIPPED not in args.models:
        p.error(f"--ship writes {SHIPPED} into the saved-models home; add it to --models. "
                f"Received: --models {' '.join(args.models)}")
    if args.dropout is not None and not 0 <= args.dropout < 1:
        p.error(f"--dropout takes a rate in [0, 1). Received: {args.dropout:g}")
    return args


def run(name, args):
    from keras_cnns import training
    from keras_cnns.data.segmentation import load_segmentation, segmentation_dataset
    from keras_cnns.paths import saved_models_dir
    from keras_cnns.tasks.segmentation import evaluate

    counts = {"train": 64, "validation": 64, "test": 64} if args.smoke else None
    source = load_segmentation("fashion_mnist_scenes", counts=counts)
    ship = args.ship and name == SHIPPED and not args.smoke
    out = (os.path.join(saved_models_dir(), f"{name}-{source.name}") if ship
           else os.path.join(args.work, name))
    result = training.fit(name, source, recipe="fast", epochs=1 if args.smoke else args.epochs, output_dir=out,
                          resume=True, verbose=args.verbose, tensorboard=False, **training_options(args),
                          overrides=None if args.dropout is None else {"dropout": args.dropout})
    meta = result.metadata
    train_seconds = sum(row.get("seconds", 0.0) for row in result.history)
    test = segmentation_dataset(source, "test", batch_size=32)
    row = {"model": name, "epochs": meta["epochs"], "test_scenes": source.size("test"),
           "mean_iou": round(meta["test_mean_iou"], 4),
           "mean_iou_mirrored": round(evaluate(result.model, test, meta["class_names"], mirror=True)["mean_iou"], 4),
           "pixel_accuracy": round(meta["test_pixel_accuracy"], 4), "train_minutes": round(train_seconds / 60, 1),
           "inference_images_per_second": round(inference_images_per_second(result.model, test), 1),
           "parameters": result.model.count_params(), **start_columns(meta),
           "dropout": (meta.get("overrides") or {}).get("dropout", PAPER_DROPOUT), "output": out}
    row.update({f"iou_{k}": (None if v is None else round(v, 4)) for k, v in meta["test_per_class_iou"].items()})
    return row


def dropout(row):
    """A row's dropout rate after fc6 and fc7: the paper's for rows written before the column was."""
    rate = row.get("dropout")
    return PAPER_DROPOUT if rate is None else float(rate)


def precision(row):
    """A row's training precision: float32 for rows written before the column was."""
    value = row.get("precision")
    return value if isinstance(value, str) and value else "float32"


def setting(row):
    """What a row's run was, beside its model: (augment, backbone, epochs, dropout, precision). Rows of one setting
    are compared."""
    return (row.get("augment") or "none", row.get("backbone") or "scratch", row.get("epochs"), dropout(row),
            precision(row))


def _label(key):
    return (f"{key[0]}, {key[1]}, {key[2]} epochs" + ("" if key[3] == PAPER_DROPOUT else f", dropout {key[3]:g}")
            + ("" if key[4] == "float32" else f", {key[4]}"))


def twin(model):
    """The VGG-16 twin an FCN is built at: the last part of its registry name ("slim" in fcn8s_vgg16_slim)."""
    return model.rsplit("_", 1)[-1]


def verdicts(rows):
    """The paper's order FCN-32s < FCN-16s < FCN-8s for every setting and twin that has all three models, then
    the target against the best FCN-8s row (the setting, and the model when the table holds several twins, named
    when the table holds several)."""
    settings = list(dict.fromkeys(setting(r) for r in rows))
    twins = [t for t in TWINS if any(twin(r["model"]) == t for r in rows)]
    text = ""
    for key in settings:
        by_model = {r["model"]: r["mean_iou"] for r in rows if setting(r) == key}
        for t in twins:
            names = [f"{stem}_vgg16_{t}" for stem in STEMS]
            if all(m in by_model for m in names):
                order = [by_model[m] for m in names]
                where = ", ".join(([f"vgg16_{t}"] if len(twins) > 1 else [])
                                  + ([_label(key)] if len(settings) > 1 else []))
                text += (f"\nThe paper's order FCN-32s < FCN-16s < FCN-8s{f' ({where})' if where else ''}: "
                         f"{'holds' if order[0] < order[1] < order[2] else 'does not hold'} "
                         f"({' < '.join(map(str, order))}). ")
    eights = [r for r in rows if r["model"].startswith(f"{STEMS[-1]}_")]
    if eights:
        best = max(eights, key=lambda r: r["mean_iou"])
        where = ", ".join(([best["model"]] if len({r["model"] for r in eights}) > 1 else [])
                          + ([_label(setting(best))] if len(settings) > 1 else []))
        mirrored = best.get("mean_iou_mirrored")
        text += (f"{'Best ' if len(eights) > 1 else ''}FCN-8s mean IoU {best['mean_iou']}"
                 f"{f' ({where})' if where else ''} against the target "
                 f"{TARGET_MEAN_IOU}: {'met' if best['mean_iou'] >= TARGET_MEAN_IOU else 'not met'}"
                 + (f" (averaged with the mirror image, segment.py --mirror: {mirrored})" if mirrored else "")
                 + ".\n")
    return text


def write(rows, folder):
    import pandas as pd
    from report import markdown_table

    os.makedirs(folder, exist_ok=True)
    table = pd.DataFrame([{**r, "dropout": dropout(r), "precision": precision(r)} for r in rows])
    table.to_csv(os.path.join(folder, "segmentation.csv"), index=False)
    reduced = any(precision(r) != "float32" for r in rows)  # the column only where a run was not float32
    main_cols = ["model", "epochs", "augment", "backbone", "dropout", *(["precision"] if reduced else []),
                 "test_scenes", "mean_iou", "mean_iou_mirrored", "pixel_accuracy", "train_minutes",
                 "inference_images_per_second", "parameters"]
    table = table.reindex(columns=list(dict.fromkeys(list(table.columns) + main_cols)))
    iou_cols = [c for c in table.columns if c.startswith("iou_")]
    by_run = table[iou_cols].T
    several = len({setting(r) for r in rows}) > 1
    by_run.columns = [f"{r['model']} ({_label(setting(r))})" if several else r["model"] for r in rows]
    by_run.index = [c[len("iou_"):] for c in iou_cols]
    text = ("Mean IoU over the 11 classes (background included; mean_iou_mirrored: of the probabilities "
            "averaged with the mirror image's, segment.py --mirror), pixel accuracy, CPU training time and inference "
            "images/s on the scene test split:\n\n" + markdown_table(table[main_cols]) +
            "\n\nIoU per class:\n\n" + markdown_table(by_run.rename_axis("class"), index=True) + "\n")
    text += verdicts(rows)
    with open(os.path.join(folder, "segmentation.md"), "w") as f:
        f.write("# FCN on the Fashion-MNIST scenes (benchmarks/segmentation.py)\n\n" + text)
    return text


def earlier_rows(folder, filename="segmentation.csv"):
    """The rows of segmentation.csv in `folder`: a new run replaces the row of its own model and setting only,
    so the table keeps the other models' and the other settings' measured rows."""
    import pandas as pd

    path = os.path.join(folder, filename)
    if not os.path.exists(path):
        return []
    table = pd.read_csv(path)
    table = table.astype(object).where(pd.notna(table), None)
    return table.to_dict("records")


def replace(rows, new):
    """`rows` with `new` in the place of the row of its model and setting, or after them when there is none."""
    key = (new["model"], setting(new))
    at = [i for i, r in enumerate(rows) if (r["model"], setting(r)) == key]
    return [new if i == at[0] else r for i, r in enumerate(rows) if i not in at[1:]] if at else rows + [new]


def main(argv=None):
    args = parse_args(argv)
    if args.from_csv:
        rows = []
        for path in args.from_csv:
            for row in earlier_rows(os.path.dirname(os.path.abspath(path)), os.path.basename(path)):
                rows = replace(rows, row)
        text = write(rows, args.results)
    rows = [] if args.smoke or args.from_csv else earlier_rows(args.results)
    for name in ([] if args.from_csv else args.models):
        print(f"== {name}", flush=True)
        rows = replace(rows, run(name, args))
        # written after every model: a killed run keeps what it measured
        text = write(rows, args.work if args.smoke else args.results)
    print(text)
    if args.write_readme:
        from report import write_readme_section

        write_readme_section(args.write_readme, BEGIN, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
