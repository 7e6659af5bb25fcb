"""The shipped Fashion-MNIST model on catalog photos: test items as people photograph them (a benchmark).

    python benchmarks/catalog_photos.py              # 2,000 test items: a few minutes on 2 CPU cores
    python benchmarks/catalog_photos.py --n 200      # quicker

Each of the first N Fashion-MNIST test items is rendered as a catalog photo (:func:`render_catalog_photo`): a
dark item on a white background (the item inverted), scaled 2-4x, placed at a random spot of a canvas 3-5
times its size on each side, saved as a JPEG of quality 85 and decoded back by keras_cnns.images.read_image.
The shipped model (saved_models/lenet5-fashion_mnist) classifies the plain test images and the photos,
without and with keras_cnns.images.to_convention (which inverts a light background and crops to the item).
Target from issue 13: the photos with the conversion within 5 points of the plain images.

Writes benchmarks/results/catalog_photos.csv and catalog_photos.md.
"""

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:] = [_ROOT] + [p for p in sys.path if os.path.abspath(p or ".") != os.path.join(_ROOT, "benchmarks")]
sys.path.append(os.path.join(_ROOT, "benchmarks"))  # report.py
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse  # noqa: E402
import tempfile  # noqa: E402

import numpy as np  # noqa: E402

TARGET_POINTS = 5.0
SCALES = (2.0, 4.0)    # the item's size in the photo, in multiples of its 28 pixels
CANVAS = (3.0, 5.0)    # the canvas's sides, in multiples of the item's size
JPEG_QUALITY = 85


def render_catalog_photo(item, rng):
    """A 28x28 uint8 Fashion-MNIST item (light on black) -> an RGB uint8 catalog photo: dark on white, scaled
    by SCALES, at a random place of a canvas CANVAS times its size (not yet JPEG-compressed)."""
    from PIL import Image

    side = int(round(28 * rng.uniform(*SCALES)))
    dark = Image.fromarray(255 - np.asarray(item, np.uint8).reshape(28, 28)).resize((side, side), Image.BILINEAR)
    h, w = (int(round(side * rng.uniform(*CANVAS))) for _ in range(2))
    canvas = np.full((h, w), 255, np.uint8)
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    canvas[top:top + side, left:left + side] = np.asarray(dark)
    return np.repeat(canvas[..., None], 3, axis=-1)


def catalog_photos(items, directory, seed=0):
    """Items -> catalog photos written as JPEG (quality JPEG_QUALITY) in `directory` and decoded back by
    keras_cnns.images.read_image, as a user's file would be."""
    from PIL import Image

    from keras_cnns.images import read_image

    rng = np.random.default_rng(seed)
    photos = []
    for i, item in enumerate(items):
        path = os.path.join(directory, f"item-{i:05d}.jpg")
        Image.fromarray(render_catalog_photo(item, rng)).save(path, quality=JPEG_QUALITY)
        photos.append(read_image(path))
    return photos


def accuracy(predictor, images, labels, convert):
    """Top-1 accuracy of `predictor` on images, with its image convention applied (convert) or not."""
    from keras_cnns.images import image_convention

    predictor.convention = image_convention(predictor.metadata) if convert else None
    top = predictor.classify(images, top=1, batch_size=100)
    return float(np.mean([entries[0]["index"] == int(y) for entries, y in zip(top, labels)]))


def measure(n, seed=0):
    """Rows {images, conversion, n, accuracy} for the plain test images and their catalog photos."""
    from keras_cnns import data, inference

    source = data.load_source("fashion_mnist")
    images, labels = source.arrays("test")
    images, labels = images[:n], labels[:n]
    predictor = inference.load()
    with tempfile.TemporaryDirectory() as tmp:
        photos = catalog_photos(images, tmp, seed)
    rows = []
    for name, batch in (("plain test images", list(images)), ("catalog photos", photos)):
        for convert in (False, True):
            rows.append({"images": name, "conversion": "on" if convert else "off", "n": len(batch),
                         "accuracy": round(accuracy(predictor, batch, labels, convert), 4)})
    return rows


def verdict(rows):
    acc = {(r["images"], r["conversion"]): r["accuracy"] for r in rows}
    gap = 100 * (acc[("plain test images", "on")] - acc[("catalog photos", "on")])
    return (f"Catalog photos with the conversion: {gap:.1f} points below the plain test images "
            f"(target: within {TARGET_POINTS:g}): {'met' if gap <= TARGET_POINTS else 'not met'}.")


def write(rows, out_dir):
    import pandas as pd
    from report import markdown_table

    os.makedirs(out_dir, exist_ok=True)
    table = pd.DataFrame(rows)
    table.to_csv(os.path.join(out_dir, "catalog_photos.csv"), index=False)
    text = ("# The shipped LeNet-5 on catalog photos of Fashion-MNIST test items (benchmarks/catalog_photos.py)\n\n"
            "Dark item on white, scaled 2-4x, off-centre on a canvas 3-5x its size, JPEG quality 85; conversion: "
            "keras_cnns.images.to_convention (invert a light background, crop to the item).\n\n"
            + markdown_table(table) + "\n\n" + verdict(rows) + "\n")
    with open(os.path.join(out_dir, "catalog_photos.md"), "w") as f:
        f.write(text)
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog="example: python benchmarks/catalog_photos.py --n 2000")
    p.add_argument("--n", type=int, default=2000, help="test items to render (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(_ROOT, "benchmarks", "results"))
    args = p.parse_args(argv)
    print(write(measure(args.n, args.seed), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
