"""Data: sources (Fashion-MNIST, MNIST, image folders, TFDS), tf.data pipelines, the papers'
augmentations and the one preprocessing description shared by training and inference."""

from keras_cnns.data.augment import (AUGMENTATIONS, pad_crop_flip, pca_colour, random_crop_flip,  # noqa: F401
                                     random_flip, scale_jitter, ten_crop)
from keras_cnns.data.pipeline import (Datasets, default_preprocessing, make_datasets,  # noqa: F401
                                      measure_pipeline, representative_images, split_indices)
from keras_cnns.data.preprocessing import Preprocessing  # noqa: F401
from keras_cnns.data.idx import read_idx, write_idx  # noqa: F401
from keras_cnns.data.sources import (DATA_DIR_ENV, FASHION_MNIST_CLASSES, MNIST_CLASSES, Source,  # noqa: F401
                                     from_arrays, load_source)
from keras_cnns.data.scenes import SCENE_CLASSES, Scene, SceneSet, scene_dataset, scene_datasets  # noqa: F401
from keras_cnns.data.detection import TfdsDetectionSource, detection_datasets, load_detection  # noqa: F401
from keras_cnns.data.segmentation import (FolderPairSource, SegmentationSource, load_segmentation,  # noqa: F401
                                          segmentation_dataset)
