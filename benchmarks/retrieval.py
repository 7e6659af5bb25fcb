"""Retrieval on Fashion-MNIST: raw pixels vs CNN features, Euclidean vs autoencoder binary codes.

    nice -n 15 python benchmarks/retrieval.py \
        --models saved_models/lenet5-fashion_mnist build/lenet5_modern-fashion_mnist

Queries: the 10,000 test images; database: the 60,000 training images; a neighbour is relevant when its
label equals the query's. For each feature source (raw pixels scaled to [0, 1], and each model's
retrieval vector, keras_cnns.tasks.retrieval) it reports mAP over the whole database ranking and
precision@10, with Euclidean distance on the real vectors and Hamming distance on B-bit autoencoder
codes (B = 32, 64, 128). Rankings are exact: every query's 60,000 distances are sorted (stable: equal
distances keep database order, which decides ties between the small-integer Hamming distances).
Then the latency of a search over the 60,000 items (one query, and per query in a batch of 1,000;
the query's own feature extraction and encoding not included) and the bytes each index holds.
Writes benchmarks/results/retrieval.{csv,md} and retrieval-grid.png. Features and codes are cached in
benchmarks/results/tmp/ (delete it to recompute).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import csv  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # report.py
from report import median_ms  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
CACHE = os.path.join(RESULTS, "tmp", "retrieval")
MIRROR_SUFFIX = "-mirror"
COLUMNS = ["representation", "source", "search", "bits", "code_noise", "map", "precision_at_10", "index_bytes"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["saved_models/lenet5-fashion_mnist"],
                   help="trained model directories (feature sources)")
    p.add_argument("--bits", nargs="+", type=int, default=[32, 64, 128])
    p.add_argument("--epochs", type=int, default=20, help="autoencoder epochs")
    p.add_argument("--code-noise", type=float, nargs="+", default=None,
                   help="the autoencoders' training noise on their code logits, one set of code rows per value; "
                        "the first also gives the latency rows and the grid (default: the builder's, "
                        "keras_cnns.models.autoencoder.CODE_NOISE; 0: none, as before 2026-11-30)")
    p.add_argument("--queries", type=int, default=None, help="first N test images only (quick checks)")
    p.add_argument("--mirror", action="store_true",
                   help="also each model's vectors averaged with the mirror image's (rows '<model>-mirror')")
    p.add_argument("--output", default=RESULTS)
    p.add_argument("--write-readme", default=None, metavar="README",
                   help="also put the tables between the retrieval-table markers of this README")
    return p.parse_args(argv)


def cached(name, compute):
    """np arrays computed once and kept in benchmarks/results/tmp/retrieval/<name>.npz."""
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, name + ".npz")
    if os.path.isfile(path):
        with np.load(path) as f:
            return [f[k] for k in sorted(f.files)]
    arrays = compute()
    tmp = path + ".tmp.npz"
    np.savez(tmp, **{f"a{i}": a for i, a in enumerate(arrays)})
    os.replace(tmp, path)  # whole or absent, for a second run reading the same cache
    return arrays


def model_features(model_dir, mirror, train_x, test_x):
    """(label, (database vectors, query vectors)) of a trained model, cached by label and query count."""
    from keras_cnns.data.preprocessing import Preprocessing
    from keras_cnns.tasks import retrieval as rt

    label = os.path.basename(os.path.normpath(model_dir)) + (MIRROR_SUFFIX if mirror else "")

    def extract(images):
        model, meta, _ = rt.load_feature_source(model_dir)
        prep = Preprocessing.from_dict(meta["preprocessing"])
        print(f"{label}: features of {len(images)} images", flush=True)
        return [rt.extract_features(model, images, prep, mirror=mirror)]
    return label, (cached(f"features-{label}-train", lambda: extract(train_x))[0],
                   cached(f"features-{label}-test-{len(test_x)}", lambda: extract(test_x))[0])


def main(argv=None):
    args = parse_args(argv)
    from keras_cnns.models.autoencoder import CODE_NOISE
    from keras_cnns.tasks import retrieval as rt

    noises = args.code_noise or [CODE_NOISE]
    train_x, train_y, class_names = rt.dataset_arrays("fashion_mnist", "train")
    test_x, test_y, _ = rt.dataset_arrays("fashion_mnist", "test", args.queries)
    sources = {"pixels": (rt.pixel_vectors(train_x), rt.pixel_vectors(test_x))}
    for model_dir in args.models:
        for mirror in (False, True) if args.mirror else (False,):
            label, features = model_features(model_dir, mirror, train_x, test_x)
            sources[label] = features

    rows, codes_of = [], {}
    for label, (db, queries) in sources.items():
        kind = ("raw pixels" if label == "pixels" else
                "CNN features, mirror-averaged" if label.endswith(MIRROR_SUFFIX) else "CNN features")
        started = time.time()
        m = rt.ranking_metrics(rt.euclidean_blocks(queries, db), test_y, train_y, k=10)
        rows.append({"representation": kind, "source": label, "search": "euclidean", "bits": "", "code_noise": "",
                     "map": m["map"], "precision_at_10": m["precision_at_k"],
                     "index_bytes": db.size * (1 if label == "pixels" else 4)})
        print(f"{label} euclidean: mAP {m['map']:.4f} P@10 {m['precision_at_k']:.4f} "
              f"({time.time() - started:.0f} s)", flush=True)
        for noise in noises:
            noise_tag = f"-noise{noise:g}" if noise else ""   # codes without noise keep their earlier cache names
            for bits in args.bits:
                def train_and_encode(db=db, queries=queries, bits=bits, noise=noise):
                    ae, mean, std, _ = rt.train_autoencoder(db, bits, code_noise=noise, epochs=args.epochs, seed=0)
                    return [rt.encode(ae, db, mean, std), rt.encode(ae, queries, mean, std)]
                db_codes, q_codes = cached(f"codes-{label}-{bits}-{args.epochs}-{len(test_x)}{noise_tag}",
                                           train_and_encode)
                if noise == noises[0]:
                    codes_of[(label, bits)] = (db_codes, q_codes)
                m = rt.ranking_metrics(rt.hamming_blocks(q_codes, db_codes), test_y, train_y, k=10)
                rows.append({"representation": f"{kind}, autoencoder codes", "source": label, "search": "hamming",
                             "bits": bits, "code_noise": noise, "map": m["map"],
                             "precision_at_10": m["precision_at_k"], "index_bytes": db_codes.nbytes})
                print(f"{label} {bits}-bit hamming, code noise {noise:g}: mAP {m['map']:.4f} "
                      f"P@10 {m['precision_at_k']:.4f}", flush=True)

    first = next(label for label in sources if label != "pixels")
    latency = measure_latency(rt, sources, codes_of, first)
    text = write(args.output, rows, latency, len(test_x), len(train_x), args.epochs)
    if args.write_readme:
        write_readme(args.write_readme, text)
    if (first, 64) in codes_of:
        grid(rt, args.output, train_x, train_y, test_x, test_y, class_names, sources[first], codes_of[(first, 64)],
             first)
    else:
        print("No query grid: it shows 64-bit codes, and --bits has no 64")


def measure_latency(rt, sources, codes_of, label):
    """Median ms of a 10-NN search over the whole database: one query, and per query in a batch of 1,000."""
    out = []
    cases = [("euclidean", "raw pixels (784 floats)", sources["pixels"]),
             ("euclidean", f"{label} features ({sources[label][0].shape[1]} floats)", sources[label])]
    cases += [("hamming", f"{label} {bits}-bit codes", codes_of[(label, bits)]) for bits in (32, 64, 128)
              if (label, bits) in codes_of]
    for search, what, (db, queries) in cases:
        fn = rt.knn_hamming if search == "hamming" else rt.knn_euclidean
        db = db if search == "hamming" else np.ascontiguousarray(db, np.float32)
        one = median_ms(lambda: fn(queries[:1], db, 10), 30)
        batch = median_ms(lambda: fn(queries[:1000], db, 10), 3) / 1000
        out.append({"search": search, "database": what, "one_query_ms": one, "batched_ms_per_query": batch,
                    "load": os.getloadavg()[0]})
        print(f"latency {search} {what}: {one:.2f} ms one query, {batch:.3f} ms per query in a batch", flush=True)
    return out


def write(folder, rows, latency, n_queries, n_database, epochs):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "retrieval.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    lines = [f"Fashion-MNIST retrieval: {n_queries:,} test queries against {n_database:,} training images "
             f"(relevant = same class). Autoencoders: {epochs} epochs; noise: the standard deviation of their "
             "training noise on the code logits (keras_cnns.models.autoencoder). Written by "
             "`benchmarks/retrieval.py`.", "",
             "| representation | source | search | bits | noise | mAP | precision@10 | index size |",
             "|---|---|---|--:|--:|--:|--:|--:|"]
    for r in rows:
        noise = "" if r["code_noise"] == "" else f"{r['code_noise']:g}"
        lines.append(f"| {r['representation']} | {r['source']} | {r['search']} | {r['bits']} | {noise} | "
                     f"{r['map']:.4f} | {r['precision_at_10']:.4f} | {_size(r['index_bytes'])} |")
    load = max((r["load"] for r in latency), default=0.0)
    lines += ["", "Query latency, 10 nearest of the 60,000 (median; feature extraction and encoding of the query "
              f"not included; {os.cpu_count()} CPU cores, one-minute load average up to {load:.1f} while "
              "measuring, this process included):", "",
              "| search | database | one query (ms) | per query in a batch of 1,000 (ms) |", "|---|---|--:|--:|"]
    for r in latency:
        lines.append(f"| {r['search']} | {r['database']} | {r['one_query_ms']:.2f} | {r['batched_ms_per_query']:.3f} |")
    with open(os.path.join(folder, "retrieval.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return "\n".join(lines) + "\n"


BEGIN, END = "<!-- retrieval-table: written by benchmarks/retrieval.py -->", "<!-- /retrieval-table -->"


def write_readme(path, text):
    """Replaces what lies between the README's retrieval-table markers with `text`."""
    from report import write_readme_section

    write_readme_section(path, BEGIN, END, text)


def _size(n):
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def grid(rt, folder, train_x, train_y, test_x, test_y, class_names, features, codes, label):
    """Five test queries (the first test image of classes 0, 2, 3, 6 and 8) and their 8 nearest training
    images by the Hamming distance of 64-bit codes."""
    picks = [int(np.flatnonzero(test_y == c)[0]) for c in (0, 2, 3, 6, 8)]
    idx, dist = rt.knn_hamming(codes[1][picks], codes[0], 8)
    rows = [(test_x[q], f"query: {class_names[test_y[q]]}",
             [(train_x[i], class_names[train_y[i]], d) for i, d in zip(r, ds)]) for q, r, ds in zip(picks, idx, dist)]
    path = os.path.join(folder, "retrieval-grid.png")
    rt.plot_neighbours(rows, path, title=f"Fashion-MNIST test queries, 8 nearest training images by Hamming "
                                         f"distance of 64-bit codes of {label} features")
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
