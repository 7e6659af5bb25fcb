"""keras_cnns: the classic convolutional networks (LeNet-5, AlexNet, VGG, ResNet, Network in Network,
GoogLeNet) in Keras 3, faithful to their papers, with training, classification and export."""

__version__ = "0.1.0"

from keras_cnns import layers  # noqa: F401  (registers the custom layers with Keras)
from keras_cnns import models  # noqa: F401  (registers every builder)
from keras_cnns.features import feature_extractor, feature_layers
from keras_cnns.registry import get_model, get_spec, list_aliases, list_models
from keras_cnns.tasks.scoremap import convolutionalize

__all__ = ["get_model", "list_models", "list_aliases", "get_spec", "feature_extractor", "feature_layers",
           "convolutionalize"]
