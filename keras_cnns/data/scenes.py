"""Fashion-MNIST scenes: 128x128 canvases of 1 to 4 clothing items with pixel labels and boxes.

One dataset for both the segmentation issue (FCN, Long et al. 2015) and the detection issue (Faster R-CNN,
Ren et al. 2015), generated exactly to this specification (docs/data.md, "Scenes"):

- A scene is a 128x128 single-channel uint8 canvas, black (0) background.
- It holds 1 to 4 Fashion-MNIST items, the count drawn uniformly. Each item is its 28x28 image resized
  (bilinear, half-pixel centres, as ``tf.image.resize``; rounded to uint8) to a square of side s, s uniform in
  [32, 64], placed at a uniformly random position fully inside the canvas.
- An item's own mask is its resized pixels >= 51 (0.2 of 255). When its mask's tight box has IoU > 0.3 with the
  box of an item already placed, the item is placed again at a new random position, up to 20 times
  (``MAX_REPLACEMENTS``: at most 21 positions in all), else it is dropped.
- Items are drawn in order: where an item's mask is set the canvas takes the item's pixels (later items cover
  earlier ones).
- Pixel labels: 0 = background, 1..10 = Fashion-MNIST class 0..9 plus one, of the topmost item whose mask covers
  the pixel. ``SCENE_CLASSES`` names them; box classes use the same 1..10 numbers.
- Boxes: per item the tight box of its own whole (unoccluded) mask, ``[x_min, y_min, x_max, y_max]`` in pixels,
  x_max and y_max one past the last masked column and row (the package's one box convention).
- Train and validation scenes take items from the Fashion-MNIST training split (disjoint halves of it: the 90/10
  split ``pipeline.split_indices(60000, 0.1, seed=0)`` that the classifiers' default validation split uses), test
  scenes from the test split. Scene i of a split is made by its own generator ``default_rng((split seed, i))``,
  so any prefix of a split is the same whatever the count asked for.

Run ``python -m keras_cnns.data.scenes --figure docs/scenes.png`` for the picture in docs/data.md.
"""

import argparse
import dataclasses
import os
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from keras_cnns.data.augment import REDRAW, augment_batches, joint_augmentation
from keras_cnns.data.pipeline import split_indices, tuning_options
from keras_cnns.data.preprocessing import Preprocessing
from keras_cnns.data.sources import FASHION_MNIST_CLASSES, Source, load_source

CANVAS = 128
MIN_ITEMS, MAX_ITEMS = 1, 4
MIN_SIDE, MAX_SIDE = 32, 64
MASK_THRESHOLD = 51
MAX_IOU = 0.3
MAX_REPLACEMENTS = 20
SCENE_CLASSES = ("background",) + FASHION_MNIST_CLASSES  # mask value / box class i is SCENE_CLASSES[i]

# Fashion-MNIST items of the train/validation scenes: split_indices(60000, ITEM_VALIDATION_SPLIT, ITEM_SPLIT_SEED)
ITEM_VALIDATION_SPLIT, ITEM_SPLIT_SEED = 0.1, 0


@dataclasses.dataclass(frozen=True)
class SplitSpec:
    """A scene split: its fixed size and seed, and which Fashion-MNIST items it draws from."""

    size: int
    seed: int
    item_split: str  # the Fashion-MNIST split: "train" or "test"
    item_part: str   # "train", "validation" (the two disjoint parts of the training split) or "all"


SPLITS: Dict[str, SplitSpec] = {
    "train": SplitSpec(size=10_000, seed=1_281, item_split="train", item_part="train"),
    "validation": SplitSpec(size=1_000, seed=1_282, item_split="train", item_part="validation"),
    "test": SplitSpec(size=2_000, seed=1_283, item_split="test", item_part="all"),
}


@dataclasses.dataclass(frozen=True)
class Scene:
    """One scene. N is the number of items placed (1..4).

    image: uint8 (128, 128, 1); mask: uint8 (128, 128), values 0..10 (``SCENE_CLASSES``);
    boxes: int32 (N, 4) [x_min, y_min, x_max, y_max], max exclusive; classes: int32 (N,) in 1..10;
    items: int64 (N,) positions in the Fashion-MNIST split the items came from;
    origins: int32 (N, 2) [x, y] of each item's top-left corner; sides: int32 (N,) each item's side s;
    dropped: how many drawn items found no place (not in the arrays above). Arrays are in drawing order.
    """

    image: np.ndarray
    mask: np.ndarray
    boxes: np.ndarray
    classes: np.ndarray
    items: np.ndarray
    origins: np.ndarray
    sides: np.ndarray
    dropped: int = 0


@dataclasses.dataclass
class SceneSet:
    """Many scenes in padded arrays (M scenes, ``MAX_ITEMS`` item rows each).

    Padded item rows (row >= num_objects[i]) have class 0 ("background"), box [0, 0, 0, 0], item -1, origin
    [0, 0] and side 0.
    """

    images: np.ndarray       # uint8 (M, 128, 128, 1)
    masks: np.ndarray        # uint8 (M, 128, 128)
    boxes: np.ndarray        # int32 (M, 4, 4)
    classes: np.ndarray      # int32 (M, 4)
    items: np.ndarray        # int64 (M, 4)
    origins: np.ndarray      # int32 (M, 4, 2)
    sides: np.ndarray        # int32 (M, 4)
    num_objects: np.ndarray  # int32 (M,)
    dropped: np.ndarray      # int32 (M,)
    split: str = ""
    seed: int = 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        n = int(self.num_objects[i])
        return Scene(image=self.images[i], mask=self.masks[i], boxes=self.boxes[i, :n], classes=self.classes[i, :n],
                     items=self.items[i, :n], origins=self.origins[i, :n], sides=self.sides[i, :n],
                     dropped=int(self.dropped[i]))


# -- the generator ---------------------------------------------------------------------------------------------
def bilinear_matrix(size_in, size_out):
    """(size_out, size_in) float64 matrix M with M @ row = the row resized bilinearly (half-pixel centres, edge
    samples clamped: what tf.image.resize(method="bilinear") and PIL's BILINEAR do when enlarging)."""
    centres = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
    centres = np.clip(centres, 0, size_in - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, size_in - 1)
    frac = centres - low
    matrix = np.zeros((size_out, size_in))
    np.add.at(matrix, (np.arange(size_out), low), 1 - frac)
    np.add.at(matrix, (np.arange(size_out), high), frac)
    return matrix


_MATRICES = {s: bilinear_matrix(28, s) for s in range(MIN_SIDE, MAX_SIDE + 1)}


def resize_item(image, side):
    """uint8 (28, 28) -> uint8 (side, side): bilinear, rounded to the nearest integer (the weights of each output
    pixel sum to 1, so no value leaves 0..255)."""
    m = _MATRICES[side] if side in _MATRICES else bilinear_matrix(image.shape[0], side)
    return np.rint(m @ image.astype(np.float64) @ m.T).astype(np.uint8)


def tight_box(mask):
    """[x_min, y_min, x_max, y_max] of the set pixels of a 2-D mask, max exclusive; None when empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if not len(rows):
        return None
    return np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], dtype=np.int32)


def own_masks(scene, images):
    """bool (N, 128, 128): each item of a :class:`Scene`'s own whole mask on the canvas, in drawing order (its
    resized pixels >= MASK_THRESHOLD at its corner, whatever covers it). ``images``: the uint8 (K, 28, 28) items of
    the Fashion-MNIST split the scene drew from. An item's box is the tight box of its own mask."""
    own = np.zeros((len(scene.items), CANVAS, CANVAS), bool)
    for j, (item, side, (x, y)) in enumerate(zip(scene.items, scene.sides, scene.origins)):
        own[j, y:y + side, x:x + side] = resize_item(images[item], int(side)) >= MASK_THRESHOLD
    return own


def item_masks(scene, images):
    """bool (N, 128, 128): where each item of a :class:`Scene` shows, in drawing order: its own mask
    (:func:`own_masks`) less what later items cover. Together they cover exactly the scene's labelled pixels."""
    own = own_masks(scene, images)
    covered = np.zeros((CANVAS, CANVAS), bool)
    for j in range(len(own) - 1, -1, -1):
        own[j], covered = own[j] & ~covered, covered | own[j]
    return own


def box_iou(boxes_a, boxes_b):
    """(A, B) IoU of boxes (A, 4) with boxes (B, 4), all [x_min, y_min, x_max, y_max] with exclusive max."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(1, -1, 4)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    union = ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
             - inter)
    return inter / np.maximum(union, 1e-12)


def item_pool(split, item_count=None):
    """Positions in the Fashion-MNIST split that a scene split draws its items from (sorted)."""
    spec = _spec(split)
    if spec.item_part == "all":
        return np.arange(item_count if item_count is not None else 10_000)
    train, validation = split_indices(item_count if item_count is not None else 60_000,
                                      ITEM_VALIDATION_SPLIT, ITEM_SPLIT_SEED)
    return train if spec.item_part == "train" else validation


def make_scene(rng, images, labels, pool, image=None, mask=None):
    """One scene from its own generator, drawing items from ``images[pool]`` (uint8 (K, 28, 28)).

    Draws, in this order: the item count, the items, their sides, then per item 21 candidate corners (the first
    position and ``MAX_REPLACEMENTS`` more; the first whose box passes is taken). Writes into ``image`` and
    ``mask`` (uint8 (128, 128), zero) when given. Returns (image, mask, [(item, side, x, y, box)], dropped).
    """
    image = np.zeros((CANVAS, CANVAS), np.uint8) if image is None else image
    mask = np.zeros((CANVAS, CANVAS), np.uint8) if mask is None else mask
    count = int(rng.integers(MIN_ITEMS, MAX_ITEMS + 1))
    picks = pool[rng.integers(0, len(pool), size=count)]
    sides = rng.integers(MIN_SIDE, MAX_SIDE + 1, size=count)
    placed, boxes = [], np.zeros((0, 4), np.int32)
    for item, side in zip(picks.tolist(), sides.tolist()):
        pixels = resize_item(images[item], side)
        own = pixels >= MASK_THRESHOLD
        local = tight_box(own)
        if local is None:
            raise ValueError(f"Fashion-MNIST item {item} has no pixel >= {MASK_THRESHOLD} at side {side}")
        corners = rng.integers(0, CANVAS - side + 1, size=(MAX_REPLACEMENTS + 1, 2))
        candidates = local + np.concatenate([corners, corners], 1).astype(np.int32)
        fits = np.ones(len(candidates), bool) if not len(boxes) else box_iou(candidates, boxes).max(1) <= MAX_IOU
        if not fits.any():
            continue
        k = int(np.argmax(fits))
        x, y = int(corners[k, 0]), int(corners[k, 1])
        np.copyto(image[y:y + side, x:x + side], pixels, where=own)
        np.copyto(mask[y:y + side, x:x + side], np.uint8(labels[item] + 1), where=own)
        placed.append((item, side, x, y, candidates[k]))
        boxes = np.concatenate([boxes, candidates[k:k + 1]])
    return image, mask, placed, count - len(placed)


def generate(split="train", count=None, seed=None, source=None):
    """The scenes of a split as a :class:`SceneSet`.

    Args:
      split: "train", "validation" or "test" (``SPLITS``).
      count: how many scenes (default the split's fixed size); scene i is the same for every count.
      seed: default the split's fixed seed (``SPLITS[split].seed``).
      source: the Fashion-MNIST :class:`Source` (default ``load_source("fashion_mnist")``).
    """
    spec = _spec(split)
    count = spec.size if count is None else int(count)
    seed = spec.seed if seed is None else int(seed)
    if count < 0:
        raise ValueError(f"count must be >= 0. Received: count={count!r}")
    images, labels = _items(source, spec.item_split)
    pool = item_pool(split, len(labels))
    out = SceneSet(images=np.zeros((count, CANVAS, CANVAS, 1), np.uint8),
                   masks=np.zeros((count, CANVAS, CANVAS), np.uint8),
                   boxes=np.zeros((count, MAX_ITEMS, 4), np.int32), classes=np.zeros((count, MAX_ITEMS), np.int32),
                   items=np.full((count, MAX_ITEMS), -1, np.int64), origins=np.zeros((count, MAX_ITEMS, 2), np.int32),
                   sides=np.zeros((count, MAX_ITEMS), np.int32), num_objects=np.zeros(count, np.int32),
                   dropped=np.zeros(count, np.int32), split=split, seed=seed)
    for i in range(count):
        _, _, placed, dropped = make_scene(np.random.default_rng((seed, i)), images, labels, pool,
                                           out.images[i, ..., 0], out.masks[i])
        out.num_objects[i], out.dropped[i] = len(placed), dropped
        for j, (item, side, x, y, box) in enumerate(placed):
            out.boxes[i, j], out.classes[i, j], out.items[i, j] = box, labels[item] + 1, item
            out.origins[i, j], out.sides[i, j] = (x, y), side
    return out


# The stream of redrawn scenes: scene generators (split seed, REDRAW_STREAM, key), never one of a fixed split's.
REDRAW_STREAM = 1


def redrawn_examples(split="train", count=None, seed=0, source=None):
    """A tf.data.Dataset of ``count`` (uint8 image (128, 128, 1), uint8 mask (128, 128)) scenes of a split's
    specification and items, new ones every time it is iterated (every epoch of ``model.fit``).

    The ``augment="redraw"`` of segmentation training: the split's fixed scenes place each training item about
    half a time (10,000 scenes of 54,000 items); redrawn, an item is seen at new sizes and places, beside new
    neighbours, every epoch. Scene j of an iteration comes from the generator ``default_rng((split seed,
    REDRAW_STREAM, key_j))``, the keys drawn from ``seed`` anew each iteration (``tf.data.Dataset.random``), so
    the same seed gives the same scenes epoch by epoch. Nothing changes the specification or the split's own
    fixed scenes (``generate``); use it for a training split only.
    """
    spec = _spec(split)
    count = spec.size if count is None else int(count)
    images, labels = _items(source, spec.item_split)
    pool = item_pool(split, len(labels))

    def draw(key):
        rng = np.random.default_rng((spec.seed, REDRAW_STREAM, int(key) % 2 ** 63))
        image, mask, _, _ = make_scene(rng, images, labels, pool)
        return image[..., None], mask

    def scene(key):
        image, mask = tf.numpy_function(draw, [key], (tf.uint8, tf.uint8), stateful=False)
        image.set_shape((CANVAS, CANVAS, 1))
        mask.set_shape((CANVAS, CANVAS))
        return image, mask

    keys = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(count)
    return keys.map(scene, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _spec(split):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {tuple(SPLITS)}. Received: split={split!r}")
    return SPLITS[split]


def _items(source, item_split):
    """uint8 (K, 28, 28) images and int32 (K,) labels of a Fashion-MNIST split."""
    source = load_source("fashion_mnist") if source is None else source
    if not isinstance(source, Source) or not hasattr(source, "arrays"):
        raise ValueError(f"source must be an in-memory Fashion-MNIST Source (load_source('fashion_mnist')). "
                         f"Received: source={source!r}")
    images, labels = source.arrays(item_split)
    return images[..., 0], labels


# -- tf.data ------------------------------------------------------------------------------------------------
TASKS = ("segmentation", "detection")


def scene_preprocessing(channels=1, source=None):
    """The Preprocessing of the scenes: 128x128 kept, converted to ``channels``, normalised with the Fashion-MNIST
    training statistics (the normalisation a Fashion-MNIST classifier of this package was trained with)."""
    source = load_source("fashion_mnist") if source is None else source
    stats = source.statistics()
    mean, std = np.asarray(stats["mean"]), np.asarray(stats["std"])
    if channels == 3:
        mean, std = np.repeat(mean, 3), np.repeat(std, 3)
    return Preprocessing(size=(CANVAS, CANVAS), channels=channels, resize="resize", mean=tuple(mean),
                         std=tuple(max(float(s), 1e-3) for s in std))


def scene_dataset(scenes, task="segmentation", preprocessing=None, batch_size=32, shuffle=False, seed=0,
                  augment=None, drop_remainder=False):
    """A batched ``tf.data.Dataset`` of a :class:`SceneSet` (or a split name) for ``model.fit``.

    segmentation: (float32 image (B, 128, 128, C), int32 mask (B, 128, 128)), mask values index SCENE_CLASSES.
    detection: (float32 image, {"boxes": float32 (B, 4, 4), "classes": int32 (B, 4), "num_objects": int32 (B,)}),
      boxes in pixels [x_min, y_min, x_max, y_max] (max exclusive); rows past num_objects are padding: class 0,
      box [0, 0, 0, 0].
    The image goes through ``preprocessing`` (default :func:`scene_preprocessing`), whose size must be 128x128.
    ``shuffle`` reshuffles each epoch (seeded), after a cache of the preprocessed examples.
    ``augment`` (for the training split): None, or "flip": each image mirrored left-right with probability 1/2
    together with its mask (segmentation) or its boxes (detection: x_min' = 128 - x_max, x_max' = 128 - x_min;
    padding rows stay [0, 0, 0, 0]), drawn per image from one stateless seed per batch per epoch from ``seed``
    (``keras_cnns.data.augment.joint_augmentation``); any other name is refused.
    ``drop_remainder`` drops the last partial batch (training under a strategy of several replicas).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}. Received: task={task!r}")
    random = joint_augmentation(augment, task)
    if augment == REDRAW:
        raise ValueError(f"A SceneSet holds fixed scenes; augment={REDRAW!r} draws new ones every epoch: use "
                         f"keras_cnns.data.segmentation_dataset(load_segmentation('fashion_mnist_scenes'), 'train', "
                         f"augment={REDRAW!r}) or training.fit. Received: augment={augment!r}")
    if isinstance(scenes, str):
        scenes = generate(scenes)
    prep = scene_preprocessing() if preprocessing is None else preprocessing
    if tuple(prep.size) != (CANVAS, CANVAS):
        raise ValueError(f"Scenes are {CANVAS}x{CANVAS} and their masks and boxes are not resized: use a "
                         f"Preprocessing of size ({CANVAS}, {CANVAS}) (fully convolutional models take any size). "
                         f"Received: preprocessing.size={prep.size!r}")
    if task == "segmentation":
        from keras_cnns.data.segmentation import segmentation_batches

        ds = tf.data.Dataset.from_tensor_slices((scenes.images, scenes.masks))
        return segmentation_batches(ds, prep, batch_size, shuffle=shuffle, seed=seed, size=len(scenes),
                                    augment=augment, drop_remainder=drop_remainder)
    targets = {"boxes": scenes.boxes.astype(np.float32), "classes": scenes.classes.astype(np.int32),
               "num_objects": scenes.num_objects.astype(np.int32)}
    ds = tf.data.Dataset.from_tensor_slices((scenes.images, targets)).cache()
    if shuffle:
        ds = ds.shuffle(len(scenes), seed=seed, reshuffle_each_iteration=True)
    ds = augment_batches(ds.batch(batch_size, drop_remainder=drop_remainder), random, seed)
    ds = ds.map(lambda images, t: (prep.apply(images), t), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(tuning_options())


def scene_datasets(task="segmentation", preprocessing=None, batch_size=32, seed=0, counts=None, source=None,
                   augment=None):
    """Train (shuffled), validation and test pipelines of the scenes as a :class:`~keras_cnns.data.Datasets`.

    ``counts`` maps a split to a smaller count (tests, quick runs); the defaults are ``SPLITS``' sizes.
    ``augment`` (None or "flip", see :func:`scene_dataset`) applies to the training split only.
    """
    from keras_cnns.data.pipeline import Datasets

    counts = dict(counts or {})
    source = load_source("fashion_mnist") if source is None else source
    prep = scene_preprocessing(source=source) if preprocessing is None else preprocessing
    sets = {split: generate(split, counts.get(split), source=source) for split in SPLITS}
    made = {split: scene_dataset(s, task, prep, batch_size, shuffle=split == "train", seed=seed,
                                 augment=augment if split == "train" else None)
            for split, s in sets.items()}
    return Datasets(train=made["train"], validation=made["validation"], test=made["test"],
                    class_names=SCENE_CLASSES, train_size=len(sets["train"]), validation_size=len(sets["validation"]),
                    test_size=len(sets["test"]), preprocessing=prep, batch_size=int(batch_size), augment=augment,
                    train_indices=np.arange(len(sets["train"])), validation_indices=np.arange(len(sets["validation"])))


# -- the picture in docs/data.md ----------------------------------------------------------------------------
def class_colours():
    """(11, 3) uint8 RGB colours of SCENE_CLASSES (background black): the package's one class palette."""
    from keras_cnns.colours import class_palette

    return class_palette(len(SCENE_CLASSES))


def save_images(folder, scenes):
    """Writes each scene of `scenes` (a :class:`SceneSet`) as an 8-bit grey PNG
    ``<folder>/scene-<split>-<i>.png``; returns the paths."""
    from PIL import Image

    os.makedirs(folder, exist_ok=True)
    paths = []
    for i, image in enumerate(scenes.images):
        paths.append(os.path.join(folder, f"scene-{scenes.split}-{i:04d}.png"))
        Image.fromarray(image[..., 0], mode="L").save(paths[-1])
    return paths


def save_figure(path, scenes=None, n=6):
    """Writes a PNG of n scenes: each image with its boxes and class names above its colour-coded mask."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    scenes = generate("test", n) if scenes is None else scenes
    colours = class_colours()
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 5.0), squeeze=False)
    for i in range(n):
        scene = scenes[i]
        top, bottom = axes[0, i], axes[1, i]
        top.imshow(scene.image[..., 0], cmap="gray", vmin=0, vmax=255)
        for box, cls in zip(scene.boxes, scene.classes):
            colour = colours[cls] / 255
            # pixel j covers [j - 0.5, j + 0.5] in imshow's coordinates: the box edges sit on pixel edges
            top.add_patch(Rectangle((box[0] - 0.5, box[1] - 0.5), box[2] - box[0], box[3] - box[1], fill=False,
                                    edgecolor=colour, linewidth=1.2))
            top.text(box[0] - 0.5, box[1] - 1.5, SCENE_CLASSES[cls], color=colour, fontsize=6, va="bottom")
        bottom.imshow(colours[scene.mask])
        top.set_title(f"test scene {i}", fontsize=8)
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.legend(handles=[Patch(color=colours[k] / 255, label=name) for k, name in enumerate(SCENE_CLASSES)],
               loc="lower center", ncol=6, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Fashion-MNIST scenes (docs/data.md, Scenes).",
        epilog="examples:\n  python -m keras_cnns.data.scenes --figure docs/scenes.png\n"
               "  python -m keras_cnns.data.scenes --stats test\n"
               "  python -m keras_cnns.data.scenes --images scenes/ --split test --count 8",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figure", metavar="PNG", help="write a picture of the first test scenes")
    parser.add_argument("--stats", metavar="SPLIT", choices=tuple(SPLITS),
                        help="generate a split and print its counts (items, dropped items, seconds)")
    parser.add_argument("--images", metavar="DIR",
                        help="write the first --count scenes of --split as PNG files (scene-<split>-<i>.png), "
                             "inputs for segment.py and detect.py")
    parser.add_argument("--split", default="test", choices=tuple(SPLITS), help="for --images (default: test)")
    parser.add_argument("--count", type=int, default=8, help="for --images (default: 8)")
    args = parser.parse_args(argv)
    if args.images:
        for path in save_images(args.images, generate(args.split, count=args.count)):
            print(path)
    if args.figure:
        print(save_figure(args.figure))
    if args.stats:
        import time

        start = time.perf_counter()
        scenes = generate(args.stats)
        seconds = time.perf_counter() - start
        counts = np.bincount(scenes.num_objects, minlength=MAX_ITEMS + 1)[1:]
        print(f"{args.stats}: {len(scenes)} scenes in {seconds:.1f} s; scenes with 1..4 items: {counts.tolist()}; "
              f"items dropped: {int(scenes.dropped.sum())}")
    if not (args.figure or args.stats or args.images):
        parser.print_help()


if __name__ == "__main__":
    main()
