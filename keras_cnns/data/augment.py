"""The papers' data augmentations, as TensorFlow ops usable inside a tf.data pipeline.

Every random function takes one image (H, W, C) or a batch (B, H, W, C) in the 0..255 scale and a ``seed``: a
shape-[2] integer tensor for TensorFlow's stateless random ops; in a batch every image gets its own draws
(vectorised: many times faster than one call per image). The pipeline gives each batch of each epoch its own
seed, drawn from the run's seed, so the same seed gives the same augmented images, and every epoch new ones.
:func:`scale_jitter` works on one image at a time (each image is resized to its own size).

- :func:`random_crop_flip`: AlexNet's random crops (224 or 227 of 256) with horizontal flips.
- :func:`pad_crop_flip`: the CIFAR recipe (ResNet paper section 4.2): pad 4 pixels, random crop back, flip.
- :func:`pca_colour`: AlexNet's "fancy PCA" colour augmentation.
- :func:`scale_jitter`: VGG's training scale jittering, S drawn from [256, 512].
- :func:`place_items`: each image shrunk or grown to a random side and put at a random place on a black canvas,
  as the Fashion-MNIST scenes show their items (not from a paper: a backbone for the scene FCNs and detectors).
- :func:`ten_crop`: AlexNet's 10-crop evaluation (four corners, centre and their mirror images).

Segmentation and detection data move their labels with the image (:func:`joint_augmentation`): only the
horizontal flip does so here (``JOINT_AUGMENTATIONS``): :func:`random_flip_with_masks` mirrors each image with its
pixel labels, :func:`random_flip_with_boxes` with its boxes (:func:`flip_boxes`). For the same seed they flip the
same images as :func:`random_flip`. ``"redraw"`` is the flip on scenes that the Fashion-MNIST scene generator
draws afresh every epoch (segmentation only; the pipeline, not this module, draws them).
"""

import numpy as np
import tensorflow as tf

AUGMENTATIONS = (None, "flip", "cifar", "alexnet", "scale_jitter", "scene_items")
# The AUGMENTATIONS that segmentation and detection pipelines take: the ones that move pixel labels and boxes too.
# "redraw" (segmentation of the Fashion-MNIST scenes only): the training scenes drawn afresh by the scene
# generator every epoch (keras_cnns.data.scenes.redrawn_examples), then flipped as "flip".
JOINT_AUGMENTATIONS = (None, "flip", "redraw")
REDRAW = "redraw"
_LABELS = {"segmentation": "pixel labels", "detection": "boxes"}
PCA_ALPHA_STD = 0.1


def split_seed(seed, n):
    """n independent stateless seeds (shape [n, 2]) from one."""
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=n)


def batch_seeds(seed):
    """An endless tf.data.Dataset of shape-[2] stateless seeds drawn from the run's ``seed``, new ones every
    epoch (every iteration): zip it with the batches, one seed per batch."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def augment_batches(batches, random, seed):
    """A dataset of (images, labels) batches with ``random(images, labels, batch_seed)`` applied to each batch,
    one seed per batch per epoch from :func:`batch_seeds` (``random`` None: ``batches`` unchanged)."""
    if random is None:
        return batches
    return tf.data.Dataset.zip((batches, batch_seeds(seed))).map(
        lambda batch, batch_seed: random(batch[0], batch[1], batch_seed),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def random_flip(images, seed):
    """Mirrors each image left-right with probability 1/2."""
    images, single = _as_batch(images)
    return _unbatch(_mirror(images, _flip_draws(images, seed)), single)


def random_flip_with_masks(images, masks, seed):
    """Segmentation: mirrors each image (B, H, W, C) and its pixel labels (B, H, W) together, left-right, with
    probability 1/2 (the images :func:`random_flip` flips for the same seed)."""
    images = tf.convert_to_tensor(images)
    flip = _flip_draws(images, seed)
    return _mirror(images, flip), _mirror(tf.convert_to_tensor(masks), flip)


def flip_boxes(boxes, width):
    """Boxes [..., 4] mirrored left-right in an image ``width`` pixels wide, in the package's convention (pixel
    [x_min, y_min, x_max, y_max], x_max one past the last column; column j goes to W - 1 - j):
    x_min' = W - x_max, x_max' = W - x_min, y unchanged."""
    boxes = tf.convert_to_tensor(boxes)
    width = tf.cast(width, boxes.dtype)
    return tf.stack([width - boxes[..., 2], boxes[..., 1], width - boxes[..., 0], boxes[..., 3]], axis=-1)


def random_flip_with_boxes(images, targets, seed):
    """Detection: mirrors each image (B, H, W, C) and its boxes together, left-right, with probability 1/2 (the
    images :func:`random_flip` flips for the same seed).

    ``targets``: {"boxes" (B, G, 4), "classes" (B, G), ...}; rows of class 0 (the background) are padding and keep
    their box [0, 0, 0, 0]. Returns (images, targets) with only "boxes" changed.
    """
    images = tf.convert_to_tensor(images)
    boxes = tf.convert_to_tensor(targets["boxes"])
    flip = _flip_draws(images, seed)
    real = tf.convert_to_tensor(targets["classes"]) > 0
    moved = tf.logical_and(flip[:, None], real)[..., None]
    boxes = tf.where(moved, flip_boxes(boxes, tf.shape(images)[2]), boxes)
    return _mirror(images, flip), dict(targets, boxes=boxes)


def joint_augmentation(augment, task):
    """The random function ``(images, labels, seed) -> (images, labels)`` of a segmentation ("pixel labels":
    masks (B, H, W)) or detection (labels: the targets dict) pipeline for an ``augment`` name; None for None.

    Raises:
      ValueError: for a name or function that would move the image without its labels (anything but
        ``JOINT_AUGMENTATIONS``).
    """
    if task not in _LABELS:
        raise ValueError(f"task must be one of {tuple(_LABELS)}. Received: task={task!r}")
    labels = _LABELS[task]
    if callable(augment):
        raise ValueError(f"{task} data takes augment= one of {JOINT_AUGMENTATIONS}: a function (image, seed) -> "
                         f"image would move the image without its {labels}. Received: augment={augment!r}")
    if augment not in JOINT_AUGMENTATIONS:
        why = (f"it crops or rescales the image and the {labels} would no longer match it"
               if augment in AUGMENTATIONS else "it is no augmentation name")
        raise ValueError(f"{task} data takes augment= one of {JOINT_AUGMENTATIONS} (the horizontal flip moves the "
                         f"{labels} with the image); not {augment!r}: {why}. Received: augment={augment!r}")
    if augment == REDRAW and task != "segmentation":
        raise ValueError(f"augment={REDRAW!r} (new Fashion-MNIST scenes every epoch) is for segmentation training; "
                         f"{task} data takes None or 'flip'. Received: augment={augment!r}")
    if augment is None:
        return None
    return random_flip_with_masks if task == "segmentation" else random_flip_with_boxes


def random_crop(images, size, seed):
    """A random (size[0], size[1]) window of each image (its own position per image, all channels alike)."""
    images, single = _as_batch(images)
    h, w = _pair(size)
    shape = tf.shape(images)
    seeds = split_seed(seed, 2)
    top = tf.random.stateless_uniform(shape[:1], seed=seeds[0], maxval=shape[1] - h + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform(shape[:1], seed=seeds[1], maxval=shape[2] - w + 1, dtype=tf.int32)
    rows = top[:, None] + tf.range(h)[None, :]
    cols = left[:, None] + tf.range(w)[None, :]
    cropped = tf.gather(tf.gather(images, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
    return _unbatch(cropped, single)


def random_crop_flip(images, size, seed):
    """AlexNet: a random size crop (224 or 227 of a 256x256 image) and, half the time, its mirror image."""
    seeds = split_seed(seed, 2)
    return random_flip(random_crop(images, size, seeds[0]), seeds[1])


def pad_crop_flip(images, seed, pad=4):
    """CIFAR: zero-pad ``pad`` pixels on each side, crop back to the original size at random, flip.

    The padding is black in pixel space (it becomes -mean/std after normalisation).
    """
    images, single = _as_batch(images)
    h, w = images.shape[1], images.shape[2]
    if h is None or w is None:
        raise ValueError(f"pad_crop_flip needs images of a known size. Received: shape {images.shape}")
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    return _unbatch(random_crop_flip(padded, (h, w), seed), single)


def pca_colour(images, eigenvalues, eigenvectors, seed, alpha_std=PCA_ALPHA_STD):
    """AlexNet's PCA colour augmentation: adds ``sum_i alpha_i * lambda_i * p_i`` to every RGB pixel.

    ``p_i`` and ``lambda_i`` are the eigenvectors (columns) and eigenvalues of the 3x3 covariance of the
    training set's RGB values, computed once (:meth:`Source.statistics`); ``alpha_i ~ N(0, alpha_std)`` is drawn
    once per image per call (so per epoch in the pipeline). The paper does not say in which scale the pixel
    values are; the covariance is taken over values in [0, 1] (in 0..255 units the literal formula would shift
    colours by hundreds of levels) and the shift is multiplied by 255 for these 0..255 images.

    Raises:
      ValueError: on grey images: the augmentation needs RGB.
    """
    channels = images.shape[-1]
    if channels != 3:
        raise ValueError(f"PCA colour augmentation needs RGB images (3 channels): it perturbs colours along the "
                         f"principal components of the RGB covariance. Use augment='flip', 'cifar' or "
                         f"'scale_jitter' for grey data. Received: images with {channels} channel(s)")
    images, single = _as_batch(images)
    alpha = tf.random.stateless_normal([tf.shape(images)[0], 3], seed=seed, stddev=alpha_std, dtype=tf.float32)
    shift = pca_shift(alpha, eigenvalues, eigenvectors)  # [B, 3]
    return _unbatch(tf.cast(images, tf.float32) + 255.0 * shift[:, None, None, :], single)


def pca_shift(alpha, eigenvalues, eigenvectors):
    """The RGB shift (in [0, 1] units) for coefficients alpha [..., 3]: eigenvectors @ (alpha * eigenvalues)."""
    eigenvalues = tf.constant(np.asarray(eigenvalues), tf.float32)
    eigenvectors = tf.constant(np.asarray(eigenvectors), tf.float32)
    return tf.linalg.matvec(eigenvectors, alpha * eigenvalues)


def resize_shorter_side(image, side):
    """Scales the image or batch (aspect kept) so that its shorter side is ``side`` (a number or a tensor)."""
    shape = tf.shape(image)
    h, w = tf.cast(shape[-3], tf.float32), tf.cast(shape[-2], tf.float32)
    scale = tf.cast(side, tf.float32) / tf.minimum(h, w)
    new = tf.cast(tf.round(tf.stack([h * scale, w * scale])), tf.int32)
    return tf.image.resize(tf.cast(image, tf.float32), tf.maximum(new, tf.cast(side, tf.int32)))


def scale_jitter(image, size, seed, min_side=256, max_side=512):
    """VGG's scale jittering of one image (H, W, C): the shorter side is resized to S ~ U[min_side, max_side]
    (a new S per image per call), then a random size crop is taken and flipped half the time. The paper uses
    [256, 512] for 224 crops."""
    h, w = _pair(size)
    if not min_side <= max_side or min(h, w) > min_side:
        raise ValueError(f"scale_jitter needs size <= min_side <= max_side. Received: size={size!r}, "
                         f"min_side={min_side!r}, max_side={max_side!r}")
    seeds = split_seed(seed, 2)
    side = tf.random.stateless_uniform([], seed=seeds[0], minval=min_side, maxval=max_side + 1, dtype=tf.int32)
    return random_crop_flip(resize_shorter_side(image, side), (h, w), seeds[1])


def place_items(images, size, seed, min_fraction=0.5):
    """Items as the scenes show them: each image (B, h, w, C, a whole item on black) resized (bilinear) to a square
    of side s ~ U[min_fraction * S, S] (S the canvas's shorter side, a new s per image) at a uniformly random
    position fully inside a black canvas of ``size``, mirrored left-right with probability 1/2.

    With a 64x64 canvas the items are 32 to 64 pixels a side, the scenes' range (keras_cnns.data.scenes), so a
    classifier trained this way sees items at the scale an FCN or detector on the scenes meets them.
    """
    images, single = _as_batch(images)
    h, w = images.shape[1], images.shape[2]
    out_h, out_w = _pair(size)
    if h is None or w is None or not 0 < min_fraction <= 1:
        raise ValueError(f"place_items needs images of a known size and 0 < min_fraction <= 1. Received: shape "
                         f"{images.shape}, min_fraction={min_fraction!r}")
    n = tf.shape(images)[0]
    seeds = split_seed(seed, 4)
    top_side = float(min(out_h, out_w))
    side = tf.random.stateless_uniform([n], seed=seeds[0], minval=min_fraction * top_side, maxval=top_side)
    left = tf.random.stateless_uniform([n], seed=seeds[1]) * (out_w - side)
    top = tf.random.stateless_uniform([n], seed=seeds[2]) * (out_h - side)
    flip = tf.random.stateless_uniform([n], seed=seeds[3]) < 0.5
    # Output pixel x (centre x + 0.5) lies at (x + 0.5 - left) * w / side in the item, input pixel u - 0.5;
    # a mirrored item reads w minus that. The same for y, without the mirror.
    sx, sy = w / side, h / side
    a2 = (0.5 - left) * sx - 0.5
    a0, a2 = tf.where(flip, -sx, sx), tf.where(flip, w - 1.0 - a2, a2)
    b2 = (0.5 - top) * sy - 0.5
    zeros = tf.zeros_like(side)
    transforms = tf.stack([a0, zeros, a2, zeros, sy, b2, zeros, zeros], axis=1)
    placed = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32), transforms=transforms, output_shape=[out_h, out_w],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="CONSTANT")
    return _unbatch(placed, single)


def ten_crop(images, crop_size):
    """AlexNet's test-time crops: [B, H, W, C] -> [B, 10, h, w, C].

    Order: top-left, top-right, bottom-left, bottom-right, centre, then the same five mirrored left-right.
    """
    images = tf.convert_to_tensor(images)
    h, w = _pair(crop_size)
    height, width = images.shape[1], images.shape[2]
    if height is None or width is None:
        shape = tf.shape(images)
        height, width = shape[1], shape[2]
    elif h > height or w > width:
        raise ValueError(f"ten_crop: crop_size must fit in the images ({height}x{width}). "
                         f"Received: crop_size={crop_size!r}")
    offsets = [(0, 0), (0, width - w), (height - h, 0), (height - h, width - w),
               ((height - h) // 2, (width - w) // 2)]
    crops = [images[:, top:top + h, left:left + w, :] for top, left in offsets]
    crops += [tf.reverse(c, axis=[2]) for c in crops]
    return tf.stack(crops, axis=1)


def _flip_draws(images, seed):
    """bool (B,): which images of a batch to mirror, each with probability 1/2, one stateless draw per image."""
    return tf.random.stateless_uniform(tf.shape(images)[:1], seed=seed) < 0.5


def _mirror(batch, flip):
    """Each item of a batch (B, H, W, ...) mirrored left-right (its axis 2) where ``flip`` (B,) is True."""
    where = flip[(slice(None),) + (None,) * (batch.shape.rank - 1)]
    return tf.where(where, tf.reverse(batch, axis=[2]), batch)


def _as_batch(images):
    images = tf.convert_to_tensor(images)
    return (images[None], True) if images.shape.rank == 3 else (images, False)


def _unbatch(images, single):
    return images[0] if single else images


def _pair(size):
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)
