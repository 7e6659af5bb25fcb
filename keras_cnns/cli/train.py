"""Train a model of the zoo.

    python apps/train.py --model lenet5 --dataset fashion_mnist               # the shipped model's command
    python apps/train.py --model resnet20 --dataset fashion_mnist --recipe fast --epochs 5
    python apps/train.py --model vgg_cifar --dataset path/to/images --output runs/mine
    python apps/train.py --model frcnn_resnet_small --dataset tfds:voc/2007 --data-dir ~/tensorflow_datasets \
        --input-size 320 --anchor-scales 32 64 128 --anchor-ratios 0.5 1 2   # anchors for VOC's larger objects
    python apps/train.py --model fcn8s_vgg16_slim --recipe fast --augment flip \
        --backbone-weights runs/vgg16_slim/model.keras                      # flipped scenes, a classifier's start

A thin command-line door over keras_cnns.training.fit (see docs/training.md). Rerunning an interrupted
command resumes from its last finished epoch. Bad arguments print one line and exit with status 2.
TensorFlow's oneDNN CPU kernels are on unless --no-onednn or TF_ENABLE_ONEDNN_OPTS=0 says otherwise; the
precision is the model's measured bfloat16 one on a CPU with bfloat16 arithmetic, float32 elsewhere, unless
--precision says otherwise (the log's "Precision:" line names it and why). tf.data's model-based autotuning is
off in the input pipelines unless --tf-data-autotune turns it on.
"""

import argparse
import os
import sys

from keras_cnns import cli
from keras_cnns.cli import USER_ERRORS, first_line

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16", "onednn_amp")  # keras_cnns.training.PRECISIONS
STRATEGIES = ("auto", "mirrored", "multiworker", "default")


def parse_args(argv=None):
    p = cli.parser(__doc__)
    p.add_argument("--model", required=True, help="registry name (python -c 'import keras_cnns; "
                                                  "print(keras_cnns.list_models())')")
    p.add_argument("--dataset", default=None,
                   help="classifiers: fashion_mnist (default), mnist, an image folder (one sub-folder per class) "
                        "or tfds:NAME; segmentation models (fcn*): fashion_mnist_scenes (default), a folder of "
                        "images/ and masks/, or tfds:NAME; detectors (frcnn*): fashion_mnist_scenes (default) or "
                        "tfds:NAME (a detection dataset with boxes, e.g. tfds:voc/2007)")
    p.add_argument("--data-dir", default=None, help="where the dataset's files are")
    p.add_argument("--input-size", default=None, metavar="N|HxW",
                   help="train at this image size (channels from the data), e.g. 32 for googlenet on a CPU; "
                        "default: the model's own")
    p.add_argument("--epochs", type=int, default=None, help="default: the recipe's")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size; default: the recipe's")
    p.add_argument("--recipe", default="paper", choices=("paper", "fast"))
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="auto: the model's bfloat16 precision (its spec's cpu_bfloat16, set where a full run measured "
                        "it faster at the same accuracy) on a CPU with bfloat16 arithmetic (AVX-512 BF16, AMX), "
                        "oneDNN on and no GPU; float32 elsewhere (docs/training.md); --precision float32 turns it off")
    p.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                   help="XLA-compile the train step (default: Keras' auto)")
    p.add_argument("--steps-per-execution", type=int, default=None, metavar="N",
                   help="train steps per call of the compiled train function: the same steps and weights, less "
                        "overhead per step for small models; the progress bar moves every N steps. Default: the "
                        "model's own (its spec's steps_per_execution: more than 1 only where measured faster, "
                        "docs/training.md); 1 turns it off")
    cli.add_onednn_argument(p)
    p.add_argument("--tf-data-autotune", action="store_true",
                   help="run tf.data's model-based autotuning in the input pipelines (off by default: its thread held "
                        "up the end of epochs; keras_cnns.data.pipeline.tuning_options)")
    p.add_argument("--strategy", default="auto", choices=STRATEGIES)
    p.add_argument("--heartbeat-timeout", type=float, default=None, metavar="SECONDS",
                   help="--strategy multiworker: how long a worker may go silent (stopped, starved of the CPU) before "
                        "every worker aborts; default 60 (keras_cnns.training.strategy.HEARTBEAT_TIMEOUT_S)")
    p.add_argument("--cpu-replicas", type=int, default=0,
                   help="split the CPU into N logical devices for --strategy mirrored (no GPU needed)")
    p.add_argument("--output", default=None, help="output directory (default saved_models/<model>-<dataset>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None,
                   help="train on about N training images and test on at most N (quick checks)")
    p.add_argument("--augment", default="recipe",
                   help="recipe, none, or an augmentation name (keras_cnns.data.AUGMENTATIONS); segmentation "
                        "models and detectors take none or flip (image with its masks or boxes); FCNs on the "
                        "scenes also "
                        "redraw (new training scenes every epoch, flipped)")
    p.add_argument("--backbone-weights", default=None, metavar="PATH",
                   help="FCN and Faster R-CNN models: start the backbone from this trained classifier's .keras file "
                        "(layers copied by name: a VGG-16 of the FCN's width, a ResNet of the detector's); a "
                        "resumed run keeps its checkpoints' weights")
    p.add_argument("--anchor-scales", type=float, nargs="+", default=None, metavar="PIXELS",
                   help="Faster R-CNN models: anchor sides in input pixels (default: the model's, e.g. 24 40 64 for "
                        "frcnn_resnet_small, sized to the scenes' items)")
    p.add_argument("--anchor-ratios", type=float, nargs="+", default=None, metavar="H/W",
                   help="Faster R-CNN models: anchor height/width ratios (default: 0.5 1 2)")
    p.add_argument("--dropout", type=float, default=None, metavar="RATE",
                   help="FCN models: the dropout rate after fc6 and fc7, in [0, 1) (default: the paper's 0.5)")
    p.add_argument("--no-resume", action="store_true", help="start again even if checkpoints exist")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress: 0, 1 (bar), 2 (line)")
    p.add_argument("--quiet", action="store_true", help="no progress bars: Keras' (as --verbose 0) nor the image "
                                                        "folder scan's and evaluation's")
    return p.parse_args(argv)


def parse_size(text):
    """'32' -> (32, 32); '48x64' -> (48, 64); None -> None. Anything else: one line and exit 2."""
    if text is None:
        return None
    parts = text.lower().split("x")
    if len(parts) in (1, 2) and all(p.strip().isdigit() and int(p) > 0 for p in parts):
        h = int(parts[0])
        return (h, int(parts[-1]))
    fail(f"--input-size takes N or HxW in pixels (e.g. 32 or 48x64). Received: {text!r}")


def fail(message, code=2):
    print(f"train.py: error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv=None):
    args = parse_args(argv)
    input_size = parse_size(args.input_size)
    if args.steps_per_execution is not None and args.steps_per_execution < 1:
        fail(f"--steps-per-execution must be 1 or more. Received: {args.steps_per_execution}")
    if args.cpu_replicas < 0:
        fail(f"--cpu-replicas must be 0 or more. Received: {args.cpu_replicas}")
    kernels = cli.choose_onednn(args.onednn)  # before TensorFlow is imported, like the logical CPUs below
    if kernels:
        print(cli.kernels_line(kernels), flush=True)
    if args.cpu_replicas > 1:
        # Logical CPU devices must exist before TensorFlow initialises: first thing, before any model.
        from keras_cnns.training.strategy import configure_cpu_replicas
        configure_cpu_replicas(args.cpu_replicas)
    import tensorflow as tf

    import keras_cnns
    from keras_cnns.data import pipeline
    from keras_cnns.progress import set_enabled
    from keras_cnns.training import TrainingDiverged, fit
    from keras_cnns.training.strategy import heartbeat_timeout

    if args.quiet:
        args.verbose = 0
    set_enabled(args.verbose > 0)
    pipeline.TF_DATA_AUTOTUNE = args.tf_data_autotune
    augment = None if args.augment.lower() == "none" else args.augment
    overrides = {}
    for flag, field in (("--anchor-scales", "anchor_scales"), ("--anchor-ratios", "anchor_ratios")):
        values = getattr(args, field)
        if values is not None:
            if not all(v > 0 for v in values):
                fail(f"{flag} takes positive numbers. Received: {' '.join(f'{v:g}' for v in values)}")
            overrides[field] = values
    if args.dropout is not None:
        if not 0 <= args.dropout < 1:
            fail(f"--dropout takes a rate in [0, 1). Received: {args.dropout:g}")
        overrides["dropout"] = args.dropout
    try:
        keras_cnns.get_spec(args.model)
        result = fit(args.model, args.dataset, epochs=args.epochs, batch_size=args.batch_size,
                     recipe=args.recipe, precision=args.precision, jit=args.jit, strategy=args.strategy,
                     cpu_replicas=args.cpu_replicas, output_dir=args.output, seed=args.seed,
                     data_dir=args.data_dir, input_shape=input_size, augment=augment, limit=args.limit,
                     resume=not args.no_resume, backbone_weights=args.backbone_weights, overrides=overrides or None,
                     steps_per_execution=args.steps_per_execution, heartbeat_timeout_s=args.heartbeat_timeout,
                     verbose=args.verbose)
    except TrainingDiverged as err:
        fail(str(err), code=1)
    except tf.errors.UnavailableError as err:  # a peer gone: crashed, or silent past the heartbeat timeout
        if args.strategy != "multiworker":
            raise
        where = os.path.join(args.output, "checkpoints") if args.output else "the output folder's checkpoints/"
        fail(f"the multi-worker run stopped: a worker stopped answering ({first_line(err)}). Epochs committed so "
             f"far are in {where}: start the same command on every worker to resume from them. "
             f"A worker silent for {heartbeat_timeout(args.heartbeat_timeout):g} s aborts every worker "
             "(--heartbeat-timeout; docs/training.md).", code=1)
    except USER_ERRORS as err:  # a bad value, a missing file, tensorflow_datasets or a dataset absent
        fail(first_line(err))
    ev = result.evaluation
    if "map50" in ev:
        print(f"test_map50={ev['map50']:.4f} test_map_coco={ev['map_coco']:.4f} output={result.output_dir}")
    elif "mean_iou" in ev:
        print(f"test_mean_iou={ev['mean_iou']:.4f} test_pixel_accuracy={ev['pixel_accuracy']:.4f} "
              f"output={result.output_dir}")
    else:
        print(f"test_accuracy={ev['accuracy']:.4f} "
              f"test_top5={ev['top5'] if ev['top5'] is None else round(ev['top5'], 4)} output={result.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
