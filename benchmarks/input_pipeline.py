"""Images per second of the Fashion-MNIST input pipeline, with and without augmentation (not a test).

    python benchmarks/input_pipeline.py [--batch-size 128] [--batches 200] [--input-shape 32,32,1]
                                        [--augment none,flip,cifar] [--data-dir DIR]

The training benchmark puts these numbers next to the model's training images/s: the input pipeline must
never be what limits training. It can also call :func:`measure_pipeline` on any dataset it builds (the same
function as ``keras_cnns.data.measure_pipeline``).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from keras_cnns import data  # noqa: E402
from keras_cnns.data import measure_pipeline  # noqa: E402,F401  (re-exported for the training benchmark)


def pipeline_throughput(source, input_shape=(32, 32, 1), batch_size=128, batches=200, augment=None, seed=0):
    """Steady-state images/s of the training pipeline: one full epoch first fills the cache, then at least one
    whole epoch is timed (`batches` when more). An epoch starts by refilling the shuffle buffer (the whole split
    when it is in memory), which a window of a few batches at the epoch's start would charge entirely to them:
    100 batches of 32 there gave lenet5_modern's pipeline 31-43k images/s, a whole epoch 98-123k (session 12)."""
    prep = data.default_preprocessing(source, input_shape)
    ds = data.make_datasets(source, prep, batch_size=batch_size, augment=augment, seed=seed)
    return measure_pipeline(ds.train, batches=max(batches, ds.steps_per_epoch), warmup=ds.steps_per_epoch)



def model_input_throughput(source, input_shape, batch_size, batches):
    """(measure_pipeline's result, "cached" or "not cached") of the training pipeline at a model's input: cached
    as training does for inputs up to 64x64 (:func:`pipeline_throughput`); larger ones (a cache of 54,000 images at
    224x224x3 would not fit in memory) decoded and resized every time, timed over `batches` after 3."""
    if max(input_shape[:2]) <= 64:
        return pipeline_throughput(source, input_shape, batch_size, batches), "cached"
    prep = data.default_preprocessing(source, input_shape)
    ds = data.make_datasets(source, prep, batch_size=batch_size, cache=False)
    return measure_pipeline(ds.train, batches=batches, warmup=3), "not cached"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--batches", type=int, default=200, help="batches timed (at least one whole epoch)")
    parser.add_argument("--input-shape", default="32,32,1", help="the model input, e.g. 32,32,1 for LeNet-5")
    parser.add_argument("--augment", default="none,flip,cifar",
                        help="comma-separated names from keras_cnns.data.AUGMENTATIONS ('none' for None)")
    args = parser.parse_args(argv)
    source = data.load_source(args.dataset, data_dir=args.data_dir)
    input_shape = tuple(int(v) for v in args.input_shape.split(","))
    print(f"{source!r}; input {input_shape}, batch {args.batch_size}")
    print("| augment | images/s | batches | seconds |\n|---|---:|---:|---:|")
    for name in args.augment.split(","):
        augment = None if name == "none" else name
        result = pipeline_throughput(source, input_shape, args.batch_size, args.batches, augment)
        print(f"| {name} | {result['images_per_second']:,.0f} | {result['batches']} | {result['seconds']:.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
