"""What the autoencoder's code noise does to its codes: the same 64-bit autoencoder trained without and with it.

    python benchmarks/code_noise.py --model saved_models/resnet20-fashion_mnist

Krizhevsky and Hinton (2011) add noise to the inputs of the code units while fine-tuning, so that the units
become bimodal. keras_cnns.models.autoencoder keeps that noise (CODE_NOISE, on batch-standardised logits). This
script trains the autoencoder on one model's mirror-averaged Fashion-MNIST training vectors (the features
benchmarks/retrieval.py caches for its --mirror rows), once for each --noise value, and prints side by side:

- precision@10 of the 10,000 test queries by Hamming distance over the 60,000 training codes;
- the fraction of code logits within 0.25 standard deviations of their mean (units near 0 are the ones a
  small change of the input flips; bimodal units have few);
- the fraction of bits that differ between an image's code and its mirror image's (vectors of the image and of
  its mirror image each encoded alone: a flip the network was trained to ignore);
- the range over bits of the fraction of images with the bit set (0.5 is a balanced bit);
- the mean Hamming distance between two random training images of the same class and of different classes.

Writes benchmarks/results/code_noise.md. Training the two autoencoders takes about a minute on 2 CPU cores once
the features are cached (first run: the features of 140,000 images).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.append(os.path.dirname(os.path.abspath(__file__)))  # retrieval.py (this folder's benchmark)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402

import numpy as np  # noqa: E402

from retrieval import RESULTS, model_features  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="saved_models/resnet20-fashion_mnist", help="a trained model directory")
    p.add_argument("--noise", nargs="+", type=float, default=None,
                   help="code noise values to compare (default: 0 and keras_cnns.models.autoencoder.CODE_NOISE)")
    p.add_argument("--bits", type=int, default=64)
    p.add_argument("--epochs", type=int, default=20, help="autoencoder epochs (benchmarks/retrieval.py's default)")
    p.add_argument("--pairs", type=int, default=20000, help="random pairs for the mean Hamming distances")
    p.add_argument("--output", default=os.path.join(RESULTS, "code_noise.md"))
    return p.parse_args(argv)


def code_statistics(model, mean, std, database, originals, mirrored, labels, bits, pairs, seed=0, codes=None):
    """The statistics of the module docstring for one trained autoencoder (all but precision@10); ``codes``: the
    database's packed codes when the caller has them already (else encoded here)."""
    import keras

    from keras_cnns.tasks import retrieval as rt

    from keras_cnns.models.autoencoder import CODE_NORM_LAYER

    layer = CODE_NORM_LAYER if CODE_NORM_LAYER in [layer.name for layer in model.layers] else "code_logits"
    logits = keras.Model(model.inputs[0], model.get_layer(layer).output).predict(
        (database - mean) / std, batch_size=4096, verbose=0)
    standard = (logits - logits.mean(0)) / np.maximum(logits.std(0), 1e-12)
    codes = rt.unpack_codes(rt.encode(model, database, mean, std) if codes is None else codes, bits)
    flips = rt.unpack_codes(rt.encode(model, originals, mean, std), bits) != rt.unpack_codes(
        rt.encode(model, mirrored, mean, std), bits)
    a, b = np.random.default_rng(seed).integers(0, len(codes), (2, pairs))
    distance = (codes[a] != codes[b]).sum(1)
    same = labels[a] == labels[b]
    balance = codes.mean(0)
    return {"near_zero": float(np.mean(np.abs(standard) < 0.25)), "mirror_flips": float(flips.mean()),
            "balance": (float(balance.min()), float(balance.max())),
            "same_class": float(distance[same].mean()), "other_class": float(distance[~same].mean())}


def main(argv=None):
    args = parse_args(argv)
    from keras_cnns.models.autoencoder import CODE_NOISE
    from keras_cnns.tasks import retrieval as rt

    noises = args.noise if args.noise is not None else [0.0, CODE_NOISE]
    train_x, train_y, _ = rt.dataset_arrays("fashion_mnist", "train")
    test_x, test_y, _ = rt.dataset_arrays("fashion_mnist", "test")
    label, (database, queries) = model_features(args.model, True, train_x, test_x)
    _, (originals, _) = model_features(args.model, False, train_x, test_x)
    mirrored = 2 * database - originals   # the mirror image's own vector: the average is (original + it) / 2
    rows = []
    for noise in noises:
        print(f"{label}: {args.bits}-bit autoencoder, code noise {noise:g}", flush=True)
        model, mean, std, _ = rt.train_autoencoder(database, args.bits, code_noise=noise, epochs=args.epochs,
                                                   seed=0, log=lambda *_: None)
        codes = rt.encode(model, database, mean, std)
        nearest, _ = rt.knn_hamming(rt.encode(model, queries, mean, std), codes)
        stats = code_statistics(model, mean, std, database, originals, mirrored, train_y, args.bits, args.pairs,
                                codes=codes)
        rows.append(dict(stats, noise=noise, precision_at_10=float(np.mean(train_y[nearest] == test_y[:, None]))))
    lines = [f"{args.bits}-bit autoencoder codes of {label} vectors (Fashion-MNIST, 60,000 training images; "
             f"{args.epochs} epochs; precision@10 of the 10,000 test queries). Written by "
             "`benchmarks/code_noise.py`.", "",
             "| code noise | precision@10 | logits near 0 | bits flipped by the mirror | bit balance | "
             "Hamming, same class | Hamming, other class |", "|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        lines.append(f"| {r['noise']:g} | {r['precision_at_10']:.4f} | {r['near_zero']:.3f} | "
                     f"{r['mirror_flips']:.3f} | {r['balance'][0]:.2f}-{r['balance'][1]:.2f} | "
                     f"{r['same_class']:.1f} | {r['other_class']:.1f} |")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        f.write(text)
    print(text + f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
