"""Tasks built on the zoo's classifiers: score maps now; segmentation, detection and retrieval build on
the same pieces (a classifier's trunk, its fully connected layers as convolutions)."""

from keras_cnns.tasks.scoremap import (GLOBAL_POOLS, MapGeometry, ScoreMapper, convolutionalize,  # noqa: F401
                                       map_geometry)
