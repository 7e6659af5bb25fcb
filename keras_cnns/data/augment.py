"""The papers' data augmentations, as TensorFlow ops usable inside a tf.data pipeline.

Every random function takes one image (H, W, C) in the 0..255 scale and a ``seed``: a shape-[2] integer
tensor for TensorFlow's stateless random ops. The pipeline gives each image of each epoch its own seed, drawn
from the run's seed, so the same seed gives the same augmented images, and every epoch new ones.

- :func:`random_crop_flip`: AlexNet's random crops (224 or 227 of 256) with horizontal flips.
- :func:`pad_crop_flip`: the CIFAR recipe (ResNet paper section 4.2): pad 4 pixels, random crop back, flip.
- :func:`pca_colour`: AlexNet's "fancy PCA" colour augmentation.
- :func:`scale_jitter`: VGG's training scale jittering, S drawn from [256, 512].
- :func:`ten_crop`: AlexNet's 10-crop evaluation (four corners, centre and their mirror images).
"""

import numpy as np
import tensorflow as tf

AUGMENTATIONS = (None, "flip", "cifar", "alexnet", "scale_jitter")
PCA_ALPHA_STD = 0.1


def split_seed(seed, n):
    """n independent stateless seeds (shape [n, 2]) from one."""
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=n)


def random_flip(image, seed):
    """Mirrors the image left-right with probability 1/2."""
    return tf.image.stateless_random_flip_left_right(image, seed=seed)


def random_crop(image, size, seed):
    """A random (size[0], size[1]) crop, the same position for every channel."""
    h, w = _pair(size)
    return tf.image.stateless_random_crop(image, [h, w, tf.shape(image)[-1]], seed=seed)


def random_crop_flip(image, size, seed):
    """AlexNet: a random size crop (224 or 227 of a 256x256 image) and, half the time, its mirror image."""
    seeds = split_seed(seed, 2)
    return random_flip(random_crop(image, size, seeds[0]), seeds[1])


def pad_crop_flip(image, seed, pad=4):
    """CIFAR: zero-pad ``pad`` pixels on each side, crop back to the original size at random, flip.

    The padding is black in pixel space (it becomes -mean/std after normalisation).
    """
    shape = tf.shape(image)
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    seeds = split_seed(seed, 2)
    cropped = tf.image.stateless_random_crop(padded, shape, seed=seeds[0])
    return random_flip(cropped, seeds[1])


def pca_colour(image, eigenvalues, eigenvectors, seed, alpha_std=PCA_ALPHA_STD):
    """AlexNet's PCA colour augmentation: adds ``sum_i alpha_i * lambda_i * p_i`` to every RGB pixel.

    ``p_i`` and ``lambda_i`` are the eigenvectors (columns) and eigenvalues of the 3x3 covariance of the
    training set's RGB values, computed once (:meth:`Source.statistics`); ``alpha_i ~ N(0, alpha_std)`` is drawn
    once per image per call (so per epoch in the pipeline). The paper does not say in which scale the pixel
    values are; the covariance is taken over values in [0, 1] (in 0..255 units the literal formula would shift
    colours by hundreds of levels) and the shift is multiplied by 255 for this 0..255 image.

    Raises:
      ValueError: on a grey image: the augmentation needs RGB.
    """
    channels = image.shape[-1]
    if channels != 3:
        raise ValueError(f"PCA colour augmentation needs RGB images (3 channels): it perturbs colours along the "
                         f"principal components of the RGB covariance. Use augment='flip', 'cifar' or "
                         f"'scale_jitter' for grey data. Received: an image with {channels} channel(s)")
    alpha = tf.random.stateless_normal([3], seed=seed, stddev=alpha_std, dtype=tf.float32)
    shift = pca_shift(alpha, eigenvalues, eigenvectors)
    return tf.cast(image, tf.float32) + 255.0 * shift


def pca_shift(alpha, eigenvalues, eigenvectors):
    """The RGB shift (in [0, 1] units) for coefficients alpha: eigenvectors @ (alpha * eigenvalues)."""
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
    """VGG's scale jittering: the shorter side is resized to S ~ U[min_side, max_side] (a new S per image per
    call), then a random size crop is taken and flipped half the time. The paper uses [256, 512] for 224 crops."""
    h, w = _pair(size)
    if not min_side <= max_side or min(h, w) > min_side:
        raise ValueError(f"scale_jitter needs size <= min_side <= max_side. Received: size={size!r}, "
                         f"min_side={min_side!r}, max_side={max_side!r}")
    seeds = split_seed(seed, 2)
    side = tf.random.stateless_uniform([], seed=seeds[0], minval=min_side, maxval=max_side + 1, dtype=tf.int32)
    return random_crop_flip(resize_shorter_side(image, side), (h, w), seeds[1])


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


def _pair(size):
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)
