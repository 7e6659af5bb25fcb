"""Class colours for masks, boxes and legends: one palette for every picture the package draws."""

import numpy as np

# matplotlib's tab10 with its grey (index 7) swapped for a lime: the scenes and most inputs here are grey
# images, on which a grey class vanishes.
_TAB10 = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (150, 230, 0), (188, 189, 34), (23, 190, 207))


def class_palette(num_classes):
    """(num_classes, 3) uint8 RGB colours: class 0 (background) black, then the ten colours above, repeated
    with lighter shades past eleven classes."""
    base = np.array(_TAB10, np.float64)
    shades = [base] + [base + (255 - base) * f for f in (0.45, 0.7)]
    rest = np.resize(np.concatenate(shades, 0), (max(int(num_classes) - 1, 0), 3))
    return np.concatenate([np.zeros((1, 3)), rest], 0)[:num_classes].round().astype(np.uint8)
