"""Faster R-CNN (small ResNet) on the Fashion-MNIST scenes: VOC mAP@0.5, COCO-style AP@[.5:.95], AP per class,
CPU training time and inference images/s (a benchmark, not a test).

    python benchmarks/detection.py                    # trains frcnn_resnet_small with the fast recipe: hours on 2 cores
    python benchmarks/detection.py --ship             # ... into saved_models/ (detect.py's default model)
    python benchmarks/detection.py --smoke            # 1 epoch on 64 scenes: checks the script works
    python benchmarks/detection.py --write-readme README.md

The model is trained by keras_cnns.training.fit (= `python apps/train.py --model frcnn_resnet_small --recipe fast`)
on the 10,000 training scenes and evaluated on the 2,000 test scenes (docs/data.md, "Scenes") with
keras_cnns.tasks.detection (all-point interpolated VOC AP at IoU 0.5; COCO's 101-point AP averaged over IoU
0.50:0.05:0.95). Writes benchmarks/results/detection.{csv,md} and detection-scenes.png (test scenes with the
detections above 0.5). Target (issue 8): mAP@0.5 >= 0.85.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [_ROOT] + [p for p in sys.path if os.path.abspath(p or ".") != os.path.join(_ROOT, "benchmarks")]
sys.path.append(os.path.join(_ROOT, "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from report import (inference_images_per_second, start_columns, training_benchmark_parser,  # noqa: E402
                    training_options)

MODEL = "frcnn_resnet_small"
TARGET_MAP50 = 0.85
FIGURE = "detection-scenes.png"
BEGIN, END = "<!-- detection-table: written by benchmarks/detection.py -->", "<!-- /detection-table -->"


def parse_args(argv=None):
    return training_benchmark_parser(__doc__, "detection", MODEL, "detect.py").parse_args(argv)


def run(args):
    from keras_cnns import training
    from keras_cnns.data import scenes
    from keras_cnns.data.segmentation import SceneSegmentationSource
    from keras_cnns.paths import saved_models_dir

    source = SceneSegmentationSource(counts={s: 64 for s in scenes.SPLITS} if args.smoke else None)
    ship = args.ship and not args.smoke
    out = os.path.join(saved_models_dir(), f"{MODEL}-{source.name}") if ship else os.path.join(args.work, MODEL)
    result = training.fit(MODEL, source, recipe="fast", epochs=1 if args.smoke else args.epochs, output_dir=out,
                          resume=True, verbose=args.verbose, tensorboard=False, **training_options(args))
    meta, evaluation = result.metadata, result.evaluation
    test = scenes.scene_dataset(source.scene_set("test"), "detection", batch_size=8)
    row = {"model": MODEL, "epochs": meta["epochs"], "test_scenes": evaluation["images"],
           "test_objects": evaluation["objects"], "map50": round(evaluation["map50"], 4),
           "map_coco": round(evaluation["map_coco"], 4),
           "train_minutes": round(sum(r.get("seconds", 0.0) for r in result.history) / 60, 1),
           "inference_images_per_second": round(inference_images_per_second(result.model, test), 1),
           "parameters": result.model.count_params(), **start_columns(meta), "output": out}
    row.update({f"ap50_{k}": (None if v is None else round(v, 4)) for k, v in evaluation["per_class_ap50"].items()})
    row.update({f"ap_{k}": (None if v is None else round(v, 4)) for k, v in evaluation["per_class_ap_coco"].items()})
    return row, result, source


def figure(result, source, path, n=6):
    """n test scenes with the detections above 0.5 drawn, side by side, into one PNG."""
    import tempfile

    import numpy as np
    from PIL import Image

    from keras_cnns import inference
    from keras_cnns.tasks import detection

    predictor = inference.KerasPredictor(result.model, result.output_dir, result.metadata)
    s = source.scene_set("test")
    tiles = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(min(n, len(s))):
            found = detection.detect(predictor, s.images[i], threshold=0.5)
            tile = detection.draw(s.images[i], found, predictor.class_names, os.path.join(tmp, f"{i}.png"),
                                  min_side=256)
            tiles.append(np.asarray(Image.open(tile).convert("RGB")))
    Image.fromarray(np.concatenate(tiles, 1)).save(path)
    return path


def write(row, folder):
    import pandas as pd
    from report import markdown_table

    os.makedirs(folder, exist_ok=True)
    table = pd.DataFrame([row])
    table.to_csv(os.path.join(folder, "detection.csv"), index=False)
    main_cols = ["model", "epochs", "augment", "backbone", "test_scenes", "test_objects", "map50", "map_coco",
                 "train_minutes", "inference_images_per_second", "parameters"]
    names = [c[len("ap50_"):] for c in table.columns if c.startswith("ap50_")]
    per_class = pd.DataFrame({"class": names, "AP@0.5": [row[f"ap50_{n}"] for n in names],
                              "AP@[.5:.95]": [row[f"ap_{n}"] for n in names]})
    text = ("VOC mAP@0.5 (all-point interpolation) and COCO-style AP@[.5:.95] on the scene test split, CPU "
            "training time and inference images/s:\n\n" + markdown_table(table[main_cols]) +
            "\n\nAP per class:\n\n" + markdown_table(per_class) +
            f"\n\nmAP@0.5 {row['map50']} against the target {TARGET_MAP50}: "
            f"{'met' if row['map50'] >= TARGET_MAP50 else 'not met'}.\n")
    with open(os.path.join(folder, "detection.md"), "w") as f:
        f.write("# Faster R-CNN on the Fashion-MNIST scenes (benchmarks/detection.py)\n\n" + text)
    return text


def main(argv=None):
    args = parse_args(argv)
    row, result, source = run(args)
    folder = args.work if args.smoke else args.results
    text = write(row, folder)
    figure(result, source, os.path.join(folder, FIGURE))
    print(text)
    if args.write_readme:
        from report import write_readme_section

        write_readme_section(args.write_readme, BEGIN, END, text + f"\n![detections on test scenes]"
                             f"(benchmarks/results/{FIGURE})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
