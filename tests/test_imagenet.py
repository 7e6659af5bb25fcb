"""The ImageNet class index shipped with the package, the metadata of ImageNet-weighted models, and the
classify path for `--model NAME --weights SOURCE` (proved offline with a keras.applications model built
with weights=None: our model then holds its weights and gives its outputs)."""

import numpy as np
import pytest

import keras_cnns
from keras_cnns import imagenet, inference


def test_the_class_index_has_the_1000_ilsvrc_classes_in_keras_order():
    index = imagenet.class_index()
    assert len(index) == 1000
    assert index[0] == ("n01440764", "tench")
    assert index[999] == ("n15075141", "toilet_tissue")
    wnids = imagenet.wordnet_ids()
    assert len(set(wnids)) == 1000 and wnids == sorted(wnids)  # index = rank of the sorted WordNet ids
    names = imagenet.class_names()
    assert (names[1], names[207], names[281], names[409]) == ("goldfish", "golden_retriever", "tabby",
                                                              "analog_clock")
    assert names[134] == names[517] == "crane"  # the bird and the machine share a first synonym


def test_decode_predictions_names_the_best_classes():
    scores = np.zeros((2, 1000))
    scores[0, 281], scores[0, 285], scores[1, 0] = 0.7, 0.2, 1.0
    first, second = imagenet.decode_predictions(scores, top=2)
    assert first == [("n02123045", "tabby", 0.7), ("n02124075", "Egyptian_cat", 0.2)]
    assert second[0] == ("n01440764", "tench", 1.0)
    with pytest.raises(ValueError, match="Received: shape"):
        imagenet.decode_predictions(np.zeros((1, 10)))


def test_the_models_with_imagenet_weights_are_those_keras_applications_publishes():
    assert imagenet.models() == ["resnet50", "resnet101", "resnet152", "vgg16", "vgg19"]  # registration order
    weights = keras_cnns.get_spec("resnet50").published_weights("imagenet")
    assert weights.origin == "keras.applications.ResNet50" and weights.num_classes == 1000
    assert weights.files == ("resnet50_weights_tf_dim_ordering_tf_kernels.h5",
                             "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5")
    assert keras_cnns.get_spec("resnet18").published_weights("imagenet") is None


@pytest.mark.parametrize("name", ["vgg16", "vgg19", "resnet50", "resnet101", "resnet152"])
def test_metadata_carries_the_weights_preprocessing_and_class_names(name):
    meta = imagenet.metadata(name)
    assert meta["dataset"] == "imagenet" and meta["class_names"] == imagenet.class_names()
    # keras.applications' "caffe" mode for VGG and ResNet alike, serialised one way
    assert meta["preprocessing"] == {"size": (224, 224), "channels": 3, "resize": "crop", "crop_from": 256,
                                     "mean": (103.939, 116.779, 123.68), "std": (1.0, 1.0, 1.0),
                                     "channel_order": "bgr"}
    assert meta["input_shape"] == [224, 224, 3] and meta["output"] == "probabilities"


def test_weights_need_a_model_that_has_imagenet_weights():
    with pytest.raises(inference.ModelSourceError, match="no ImageNet weights"):
        inference.load("lenet5", weights="imagenet")
    with pytest.raises(inference.ModelSourceError, match="no such weights file"):
        inference.load("vgg16", weights="/nonexistent/vgg16_weights.h5")


def test_classify_with_a_keras_applications_model_as_the_weights():
    import keras

    source = keras.applications.ResNet50(weights=None)
    predictor = inference.load("resnet50", weights=source)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(300, 260, 3), dtype=np.uint8) for _ in range(2)]
    x = predictor.preprocess(images)
    assert x.shape == (2, 224, 224, 3)
    np.testing.assert_allclose(predictor.predict(x), source(x, training=False).numpy(), rtol=1e-3, atol=1e-7)
    entries = predictor.classify(images, top=3)[0]
    assert entries[0]["class"] == imagenet.class_names()[entries[0]["index"]]
    assert predictor.metadata["wordnet_ids"][0] == "n01440764"
