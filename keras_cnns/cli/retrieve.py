"""Find the images a trained network sees as alike: build a retrieval index, then query it.

    python apps/retrieve.py build                                   # LeNet-5's, 64 bits, as the shipped index
    python apps/retrieve.py build --model lenet5_modern --bits 128 --output build/index-modern
    python apps/retrieve.py build --model saved_models/resnet20-fashion_mnist --mirror --output build/index-r20
    python apps/retrieve.py query shirt.png                         # 10 nearest, Hamming over the codes
    python apps/retrieve.py query a.png b.png --k 5 --search euclidean --index build/index-modern --json

build: features of every image of a dataset split from a trained model (--model NAME|DIR|FILE, as in
apps/classify.py; fc7 for AlexNet/VGG, f6 for LeNet-5, the globally pooled last map for ResNet, GoogLeNet
and NIN), an autoencoder that compresses them into --bits binary codes, and an index directory holding
codes, features (unless --no-features), labels, ids and the model's metadata. The shipped index
(saved_models/lenet5-fashion_mnist-retrieval) predates the code noise and the oneDNN default; `build
--no-features --code-noise 0 --no-onednn` repeats it (identical codes).
query: the k nearest database images of each IMAGE, by Hamming distance between codes or Euclidean
distance between features; a PNG per image (the query and its neighbours, with distances) in --output,
and text or --json (one record per image, as classify.py --json, with "neighbours" nearest first).

Every image that can't be read prints one line on stderr and the others are still answered; the exit
status is then 2. An index or model that can't be used prints one line and exits with 2.
build runs TensorFlow's oneDNN CPU kernels unless --no-onednn or TF_ENABLE_ONEDNN_OPTS=0 says otherwise.
A thin door over keras_cnns.tasks.retrieval.
"""

import argparse
import os
import sys

from keras_cnns import results
from keras_cnns import cli
from keras_cnns.cli import quiet_native_logs, restore_native_logs

EXIT_BAD_INPUT = 2
EPILOG = __doc__.split("\n\n")[1]


def fail(message):
    print(f"retrieve.py: {message}", file=sys.stderr)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build an index of a dataset split",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    b.add_argument("--model", default=None, help="registry NAME, model DIR or .keras FILE; "
                                                 "default: saved_models/lenet5-fashion_mnist")
    b.add_argument("--dataset", default=None, help="default: the one the model was trained on")
    b.add_argument("--data-dir", default=None, help="where the dataset's files are")
    b.add_argument("--split", default="train", choices=("train", "test"))
    b.add_argument("--bits", type=int, default=64, help="code length B (32, 64, 128, ...); 0: no codes")
    b.add_argument("--epochs", type=int, default=30, help="autoencoder training epochs")
    b.add_argument("--code-noise", type=float, default=None,
                   help="training noise on the autoencoder's standardised code logits (default: "
                        "keras_cnns.models.autoencoder.CODE_NOISE; 0: none, the model before 2026-11-30)")
    b.add_argument("--no-features", action="store_true", help="keep only the codes (a smaller index)")
    b.add_argument("--feature-dtype", default="float16", choices=("float16", "float32"))
    b.add_argument("--mirror", action="store_true",
                   help="average each image's vector with its mirror image's (queries then do the same)")
    b.add_argument("--limit", type=int, default=None, help="index only the first N images")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--output", default=None,
                   help="index directory; default saved_models/<model>-retrieval (the shipped "
                        "saved_models/lenet5-fashion_mnist-retrieval without --model)")
    b.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    cli.add_onednn_argument(b)
    q = sub.add_parser("query", help="find the nearest database images of each IMAGE",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    q.add_argument("images", nargs="+", metavar="IMAGE", help="image files or directories of images")
    q.add_argument("--index", default=None, help="index directory; default: "
                                                 "saved_models/lenet5-fashion_mnist-retrieval")
    q.add_argument("--model", default=None,
                   help="the model that built the index, if it moved (it must be the same model)")
    q.add_argument("--k", type=int, default=10, help="neighbours per image")
    q.add_argument("--search", default=None, choices=("hamming", "euclidean"),
                   help="default: hamming when the index has codes")
    q.add_argument("--json", action="store_true", help="one JSON record per image instead of text")
    q.add_argument("--output", default="retrieve-out", help="folder for the neighbour grids (PNG)")
    q.add_argument("--no-grid", action="store_true", help="write no PNG")
    q.add_argument("--max-pixels", type=int, default=None, help="refuse larger images (decompression bombs)")
    args = p.parse_args(argv)
    if args.command == "build":
        if args.bits < 0:
            p.error(f"--bits must be 0 (no codes) or a positive code length. Received: --bits {args.bits}")
        if args.bits == 0 and args.no_features:
            p.error("--bits 0 --no-features would leave nothing to search; drop one of them")
        if args.epochs < 1:
            p.error(f"--epochs must be at least 1. Received: --epochs {args.epochs}")
        if args.code_noise is not None and not args.code_noise >= 0:
            p.error(f"--code-noise must be 0 or more. Received: --code-noise {args.code_noise}")
    elif args.k < 1:
        p.error(f"--k must be at least 1. Received: --k {args.k}")
    return args


def build(args):
    kernels = cli.choose_onednn(args.onednn)  # before TensorFlow is imported
    from keras_cnns.inference import saved_models_dir
    from keras_cnns.tasks import retrieval

    output = args.output
    if output is None:
        output = retrieval.default_index_dir() if args.model is None else os.path.join(
            saved_models_dir(), os.path.basename(os.path.normpath(args.model)).removesuffix(".keras") + "-retrieval")
    log = (lambda *_: None) if args.quiet else (lambda message: print(message, flush=True))
    if kernels:
        log(cli.kernels_line(kernels))
    try:
        retrieval.build_index(args.model, args.dataset, bits=args.bits, split=args.split, limit=args.limit,
                              output=output, keep_features=not args.no_features, feature_dtype=args.feature_dtype,
                              epochs=args.epochs, code_noise=args.code_noise, seed=args.seed, data_dir=args.data_dir,
                              mirror=args.mirror, progress=False if args.quiet else None, log=log)
    except ValueError as err:  # a model or dataset that can't be used: one line
        fail(str(err).splitlines()[0])
        return EXIT_BAD_INPUT
    return 0


def query(args):
    from keras_cnns import inference
    from keras_cnns.data.preprocessing import Preprocessing
    from keras_cnns.tasks import retrieval

    index_dir = args.index or retrieval.default_index_dir()
    try:
        index = retrieval.RetrievalIndex.load(index_dir)
        search = args.search or index.searches()[0]
        if search not in index.searches():
            raise ValueError(f"{index_dir} has no {'codes' if search == 'hamming' else 'features'} for "
                             f"--search {search}; it supports: {', '.join(index.searches())}.")
        model_source = args.model or retrieval.resolve_model_source(index.meta["model_source"])
        model, meta, _ = retrieval.load_feature_source(model_source)
        index.check_compatible(meta, what=f"the model {model_source}")
    except ValueError as err:  # IndexMismatchError, ModelSourceError, a missing index: one line
        if index_dir == retrieval.default_index_dir() and not os.path.isdir(index_dir):
            err = ValueError(f"The default index {index_dir} is not there; build it with "
                             "`python apps/retrieve.py build --no-features` or pass --index.")
        fail(str(err).splitlines()[0])
        return EXIT_BAD_INPUT
    restore_native_logs()
    prep = Preprocessing.from_dict(meta["preprocessing"])
    limit = args.max_pixels or inference.MAX_PIXELS
    paths = inference.list_images(args.images)
    good, images, failed = inference.read_images(paths, limit, on_error=lambda err: fail(str(err)))
    records = []
    if images:
        features = retrieval.extract_features(model, images, prep, progress=False,
                                              mirror=bool(index.meta.get("mirror")))
        nearest, distances = index.search(features, k=min(args.k, len(index.labels)), search=search)
        names = index.class_names
        for path, rows, dists in zip(good, nearest, distances):
            records.append({"path": path, "neighbours": [
                {"id": int(index.ids[i]), "label": names[int(index.labels[i])],
                 "distance": int(d) if search == "hamming" else round(float(d), 6)}
                for i, d in zip(rows, dists)]})
        if not args.no_grid:
            _write_grids(args.output, index, good, images, nearest, distances, search)
    for record in records:
        if not args.json:
            print(record["path"])
            for rank, n in enumerate(record["neighbours"], 1):
                print(f"  {rank:2d}. id {n['id']:<6d} {n['label']:<12s} distance {n['distance']}")
    return results.finish(records, args.json, failed, len(paths), fail, "queried")


def _write_grids(folder, index, paths, images, nearest, distances, search):
    from keras_cnns.tasks import retrieval

    try:
        database = retrieval.database_images(index)
    except (ValueError, OSError) as err:
        fail(f"no neighbour grids: the index's dataset {index.meta['dataset']!r} cannot be opened here "
             f"({str(err).splitlines()[0]}).")
        return
    os.makedirs(folder, exist_ok=True)
    names, used = index.class_names, set()
    for path, image, rows, dists in zip(paths, images, nearest, distances):
        stem = os.path.splitext(os.path.basename(path))[0] or "image"
        name, n = f"{stem}-neighbours.png", 1
        while name in used:
            n += 1
            name = f"{stem}-{n}-neighbours.png"
        used.add(name)
        neighbours = [(database[index.ids[i]], names[int(index.labels[i])], d) for i, d in zip(rows, dists)]
        retrieval.plot_neighbours([(image, "query", neighbours)], os.path.join(folder, name),
                                  title=f"{os.path.basename(path)}: {search} search, {index.meta['model']} "
                                        f"{index.meta['endpoint']}")


def main(argv=None):
    args = parse_args(argv)
    quiet_native_logs()
    return build(args) if args.command == "build" else query(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
