"""Images in, model-sized pixels out, with Pillow and numpy only (no TensorFlow), so that the LiteRT
runner (:mod:`keras_cnns.lite`) and a phone-side app can share it with :mod:`keras_cnns.inference`.

- :func:`read_image` decodes a file safely, the one decoder of the package (inference, the LiteRT runner and
  the image-folder training sources all read through it; :data:`IMAGE_EXTENSIONS` is their one list): JPEG,
  PNG, BMP, GIF, WebP, TIFF; grey, RGBA, palette, CMYK, 16-bit; EXIF orientation applied; a pixel limit
  that stops decompression bombs; every failure is an :class:`ImageError` that says what was wrong and what
  to do.
- :func:`to_model_pixels` brings a decoded image to a model's input size and channels as uint8, following
  the same rule as the training preprocessing (keras_cnns.data.Preprocessing: "pad", "resize" or "crop"),
  for models whose input is raw pixels (the mobile TFLite variant of keras_cnns.export).
"""

import glob
import os
import warnings

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".pgm", ".ppm")
MAX_PIXELS = 50_000_000  # ~7000x7000: larger images are refused (a decompression bomb is far larger)


class ImageError(ValueError):
    """An input image that cannot be classified; the message says why and what to do."""



def read_image(path, max_pixels=MAX_PIXELS):
    """Decodes one image file to a uint8 array (H, W, 1) for grey images or (H, W, 3) for colour ones.

    EXIF orientation is applied; alpha is dropped (composited over black); palette, CMYK, 16-bit and
    1-bit images are converted; animated GIF/WebP give their first frame. Raises ImageError.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = os.fspath(path)
    if not os.path.exists(path):
        raise ImageError(f"{path}: no such file; check the path.")
    if os.path.isdir(path):
        raise ImageError(f"{path}: is a directory with no images in it.")
    if os.path.getsize(path) == 0:
        raise ImageError(f"{path}: the file is empty (0 bytes); give a JPEG, PNG, BMP, GIF or WebP image.")
    # Pillow's own bomb check (process-wide Image.MAX_IMAGE_PIXELS, left as it is) runs when the header is read;
    # ours runs next, on the header's size, before any pixel is decoded. A limit above Pillow's is capped at
    # twice Pillow's (above that Image.open raises whatever we allow).
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit decides, below
            with Image.open(path) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise Image.DecompressionBombError(f"{width}x{height}")
                image.seek(0)
                image.load()
                image = ImageOps.exif_transpose(image)
                return _to_array(image)
    except Image.DecompressionBombError:
        if Image.MAX_IMAGE_PIXELS is not None:
            max_pixels = min(max_pixels, 2 * Image.MAX_IMAGE_PIXELS)
        raise ImageError(f"{path}: the image is larger than the limit of {max_pixels:,} pixels (a possible "
                         "decompression bomb); shrink it or raise the limit (--max-pixels).") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image Pillow can read; give a JPEG, PNG, BMP, GIF or WebP "
                         "file.") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise ImageError(f"{path}: the image is damaged or truncated ({err}); re-save or re-download "
                         "it.") from None


def decode_for_training(path, channels):
    """read_image(path) in ``channels`` (1 or 3): what the image-folder training sources hand to tf.data
    (through tf.numpy_function), so that training sees every file exactly as inference does."""
    path = path.decode() if isinstance(path, bytes) else os.fspath(path)
    return convert_channels(read_image(path), int(channels))


def _to_array(image):
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or array.max() > 255 else 255.0
        return np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8)[..., None]
    if mode == "F":
        array = np.asarray(image, dtype=np.float64)
        top = 1.0 if array.max() <= 1.0 else 255.0
        return np.clip(np.round(array * (255.0 / top)), 0, 255).astype(np.uint8)[..., None]
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"), dtype=np.uint8)[..., None]
    if mode == "LA" or (mode == "P" and "transparency" in image.info) or mode in ("RGBA", "PA", "RGBa", "La"):
        from PIL import Image

        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (0, 0, 0))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return _grey_if_grey(np.asarray(background, dtype=np.uint8), mode)
    return _grey_if_grey(np.asarray(image.convert("RGB"), dtype=np.uint8), mode)


def _grey_if_grey(rgb, mode):
    if mode in ("LA", "La"):
        return rgb[..., :1]
    return rgb


def iter_images(paths, max_pixels=MAX_PIXELS, on_error=None):
    """Yields (path, image) for each path :func:`read_image` can decode, one at a time; a path that fails is
    skipped and its ImageError passed to ``on_error`` (e.g. a one-line report)."""
    for path in paths:
        try:
            image = read_image(path, max_pixels=max_pixels)
        except ImageError as err:
            if on_error is not None:
                on_error(err)
            continue
        yield path, image


def read_images(paths, max_pixels=MAX_PIXELS, on_error=None):
    """(paths read, their images, number that failed) of :func:`iter_images`."""
    failures = []

    def failed(err):
        failures.append(err)
        if on_error is not None:
            on_error(err)

    pairs = list(iter_images(paths, max_pixels, failed))
    return [p for p, _ in pairs], [image for _, image in pairs], len(failures)


def list_images(paths):
    """Expands directories (their image files, sorted, not recursive); files and missing paths stay."""
    out = []
    for path in paths:
        path = os.fspath(path)
        if os.path.isdir(path):
            found = sorted(p for p in glob.glob(os.path.join(path, "*"))
                           if os.path.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS))
            out.extend(found if found else [path])
        else:
            out.append(path)
    return out




# --------------------------------------------------------------------------- to a model's input size

GREY_WEIGHTS = (0.2989, 0.5870, 0.1140)  # tf.image.rgb_to_grayscale's, as in training


def to_model_pixels(image, size, channels, resize="resize", crop_from=None):
    """uint8 image (H, W, 1|3|4) -> uint8 (size[0], size[1], channels): the geometric half of the training
    preprocessing (keras_cnns.data.Preprocessing), done with numpy and Pillow.

    channels: RGB -> grey with TensorFlow's weights, rounded (as training does); grey -> RGB repeats.
    resize: "pad" centres an image that fits on a black canvas at the offsets
    tf.image.resize_with_crop_or_pad uses (exact: LeNet-5's 28 -> 32) and shrinks a larger one first, aspect
    kept, as tf.image.resize_with_pad does; "resize" stretches; "crop" resizes the shorter side to
    `crop_from` then takes the central crop.
    Deviation from training: resampling is Pillow's bilinear filter, which smooths when it shrinks, where
    training used tf.image.resize without antialiasing, and the result is rounded to uint8; images that
    need no resampling (a pad that fits) come out identical to training's.
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ImageError(f"an image must be (H, W, 1|3|4). Received: shape={image.shape}")
    image = convert_channels(np.asarray(image, np.uint8), channels)
    h, w = (int(s) for s in size)
    ih, iw = image.shape[:2]
    if resize == "pad":
        if ih > h or iw > w:
            ratio = max(iw / w, ih / h)
            rh, rw = int(ih / ratio), int(iw / ratio)  # floor, as tf.image.resize_with_pad
            image = _resample(image, max(rh, 1), max(rw, 1))
            top, left = max(0, int((h - ih / ratio) / 2)), max(0, int((w - iw / ratio) / 2))
        else:
            top, left = (h - ih) // 2, (w - iw) // 2
        canvas = np.zeros((h, w, channels), np.uint8)
        canvas[top:top + image.shape[0], left:left + image.shape[1]] = image[:h - top, :w - left]
        return canvas
    if resize == "resize":
        return _resample(image, h, w)
    if resize == "crop":
        scale = (crop_from or max(h, w)) / min(ih, iw)
        nh, nw = max(int(round(ih * scale)), h), max(int(round(iw * scale)), w)
        image = _resample(image, nh, nw)
        top, left = (nh - h) // 2, (nw - w) // 2
        return image[top:top + h, left:left + w]
    raise ValueError(f"resize must be 'pad', 'resize' or 'crop'. Received: resize={resize!r}")


def convert_channels(image, channels):
    """uint8 (H, W, 1|3|4) -> (H, W, channels): alpha dropped, RGB -> grey with TensorFlow's weights rounded,
    grey -> RGB repeated."""
    if image.shape[-1] == 4:
        image = image[..., :3]
    if image.shape[-1] == channels:
        return image
    if channels == 1:
        grey = image.astype(np.float32) @ np.asarray(GREY_WEIGHTS, np.float32)
        return np.clip(np.round(grey), 0, 255).astype(np.uint8)[..., None]
    return np.repeat(image, 3, axis=-1)


def _resample(image, h, w):
    from PIL import Image

    if image.shape[:2] == (h, w):
        return image
    mode_input = image[..., 0] if image.shape[-1] == 1 else image
    resized = np.asarray(Image.fromarray(mode_input).resize((w, h), Image.BILINEAR), np.uint8)
    return resized.reshape(h, w, image.shape[-1])


# --------------------------------------------------------------------------- to the training data's convention

# How the images of a dataset look, where a photo differs from them. Fashion-MNIST (Xiao et al. 2017, sec. 2)
# trimmed each product photo to the item, resized its longer side to 28, centred it on 28x28, negated and greyed
# it: a light item on black whose longer side fills the frame. MNIST (LeCun et al. 1998, sec. III-A) fitted
# each digit in the middle 20x20 of its 28x28: light on black too, with a margin of 4 pixels (0.2 of 20).
# "margin": kept on each side of the item, as a fraction of its longer side.
DATASET_CONVENTIONS = {
    "fashion_mnist": {"background": "dark", "item": "centred, fills the frame", "frame": [28, 28], "margin": 0.0},
    "mnist": {"background": "dark", "item": "centred in the middle 20x20", "frame": [28, 28], "margin": 0.2},
}

ITEM_THRESHOLD = 32  # a pixel is the item's when it differs from the background by more than this (0..255)
FILLS_FRAME = 0.9    # an item whose longer side spans this much of the image already fills the frame


def dataset_convention(name):
    """The image convention of a dataset by its name (DATASET_CONVENTIONS), or None for any other."""
    return DATASET_CONVENTIONS.get(name)


def image_convention(metadata):
    """A model's image convention: metadata["image_convention"] (written by training since issue 13), else
    derived from metadata["dataset"] for older metadata (the shipped lenet5-fashion_mnist); None if neither
    says one."""
    if not metadata:
        return None
    return metadata.get("image_convention") or dataset_convention(metadata.get("dataset"))


def to_convention(image, convention):
    """A photo (uint8 (H, W, 1|3|4)) -> uint8 (H', W', 1) in a dark-background convention, or the image
    unchanged when `convention` is None.

    Greys the image (TensorFlow's weights); takes the median of its border pixels as the background and,
    when that is above mid-grey (a light background: a catalog photo), inverts the image; then subtracts the
    background level so that it is black. When the item (pixels differing from the background by more than
    ITEM_THRESHOLD), with the convention's margin around it, spans less than FILLS_FRAME of the image,
    crops to its bounding box with that margin,
    pads that to a square with the item centred and resizes it to the convention's frame (Fashion-MNIST's
    28x28: the longer side of the item fills it). An image already in the convention comes out unchanged:
    one with a dark background at the frame's size (the dataset's own images), or one whose item fills it.
    """
    if convention is None:
        return image
    image = np.asarray(image, np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    grey = convert_channels(image, 1)[..., 0].astype(np.int16)
    border = np.concatenate([grey[0], grey[-1], grey[1:-1, 0], grey[1:-1, -1]])
    light = np.median(border) > 127
    frame = tuple(int(s) for s in convention.get("frame", ()))
    if not light and grey.shape == frame:  # dark, at the frame's size: the dataset's own kind of image
        return convert_channels(image, 1)
    if light:
        grey = 255 - grey
        border = 255 - border
    background = int(np.median(border))
    if background > 0:
        grey = np.clip(grey - background, 0, 255)
    grey = grey.astype(np.uint8)
    rows, cols = np.nonzero(grey > ITEM_THRESHOLD)
    if rows.size == 0:  # nothing stands out: no item to crop to
        return grey[..., None]
    top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    side = max(bottom - top, right - left) * (1 + 2 * float(convention.get("margin", 0.0)))
    if side >= FILLS_FRAME * min(grey.shape):
        return grey[..., None]
    side = int(round(side))
    square = np.zeros((side, side), np.uint8)
    item = grey[top:bottom, left:right]
    y, x = (side - item.shape[0]) // 2, (side - item.shape[1]) // 2
    square[y:y + item.shape[0], x:x + item.shape[1]] = item
    return _resample(square[..., None], *(frame or (side, side)))
