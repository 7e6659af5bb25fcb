"""Tasks built on the zoo's networks: segmentation (FCN), score maps, retrieval; each imports the package below it,
never the reverse."""

from keras_cnns.tasks.scoremap import (GLOBAL_POOLS, MapGeometry, ScoreMapper, convolutionalize,  # noqa: F401
                                       map_geometry)
