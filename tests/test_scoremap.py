"""Score maps (issue 7, section 1): fully connected layers are convolutions (the article's NIN section;
Long et al. 2015, section 3.1), so a classifier slid over a larger image gives a map of class scores in
one pass. Proofs: at the trained size the map is 1x1 and is the classifier's output, for every registered
classifier; at a larger size every cell is the classifier's head on one trained-size window of the
trunk's feature map, and, in a net without padding, the classifier on the crop the cell sees."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

import _fixture_models as fm
import keras_cnns
from keras_cnns.registry import get_spec
from keras_cnns.tasks import scoremap
from keras_cnns.tasks.scoremap import convolutionalize, map_geometry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APP = os.path.join(ROOT, "apps", "scoremap.py")
SHIPPED = os.path.join(ROOT, "saved_models", "lenet5-fashion_mnist")
NUM_CLASSES = 7
TOL = 1e-5
# (registry name, builder keywords): every registered classifier, and AlexNet in its other tower form.
# The deeper rows of the VGG and ResNet tables are the same layers repeated: marked slow.
DEPTH_VARIANTS = {"vgg13", "vgg13_bn", "vgg19", "vgg19_bn", "resnet34", "resnet101", "resnet152", "resnet32",
                  "resnet44", "resnet56", "resnet110"}
CASES = [pytest.param(name, {}, id=name, marks=[pytest.mark.slow] if name in DEPTH_VARIANTS else [])
         for name in keras_cnns.list_models(task="classification")]
CASES.append(pytest.param("alexnet", {"towers": "split"}, id="alexnet_split"))


def _images(shape, n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def _head_input(model):
    """The map the classifier's head starts from: the input of its Flatten or global pooling."""
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Flatten, keras.layers.GlobalAveragePooling2D)):
            return layer
    raise AssertionError(f"{model.name} has no Flatten and no global pooling")


def _close(a, b):
    """Max abs difference, relative to the magnitude for large outputs (RBF distances reach hundreds)."""
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


@pytest.mark.parametrize("name,kwargs", CASES)
def test_every_classifier_becomes_a_score_map_with_the_same_outputs(name, kwargs):
    # Seeded: an untrained deep net's activations grow with depth (resnet110's logits reach the thousands), so
    # float32 rounding can reach 1e-5 of them on some draws; a fixed draw keeps the comparison meaningful.
    keras.utils.set_random_seed(0)
    spec = get_spec(name)
    shape = spec.test_input_shape
    model = keras_cnns.get_model(name, input_shape=shape, num_classes=NUM_CLASSES, **kwargs)
    converted = convolutionalize(model)
    assert converted.input_shape == (None, None, None, shape[2])
    assert not any(isinstance(layer, (keras.layers.Dense, keras.layers.Flatten, keras.layers.Dropout))
                   for layer in converted.layers)

    # At the trained size: a 1x1 map equal to the classifier's output.
    x = _images(shape)
    expected = np.asarray(model(x, training=False))
    at_trained = np.asarray(converted(x, training=False))
    assert at_trained.shape == (2, 1, 1, NUM_CLASSES)
    assert _close(at_trained[:, 0, 0], expected) <= TOL

    # Stride and offset: the recorded table, the graph and the trained size agree.
    geometry = map_geometry(converted, shape[:2])
    stride = scoremap.expected_stride(name)
    assert geometry.stride == (stride, stride)
    assert geometry.offset == ((shape[0] - 1) / 2, (shape[1] - 1) / 2)
    assert geometry.exact == (name == "lenet5")   # the one net without padding inside

    # Two strides larger: a 3x3 map, each cell the original head on its window of the trunk's map.
    big = _images((shape[0] + 2 * stride, shape[1] + 2 * stride, shape[2]), n=1, seed=1)
    scores = np.asarray(converted(big, training=False))[0]
    assert scores.shape == (3, 3, NUM_CLASSES)
    start = _head_input(model)
    head = keras.Model(start.input, model.output)
    trunk = keras.Model(converted.input, converted.get_layer(start.input._keras_history.operation.name).output)
    features = np.asarray(trunk(big, training=False))
    k = start.input.shape[1]
    cells = np.stack([np.asarray(head(features[:, i:i + k, j:j + k], training=False))[0]
                      for i in range(3) for j in range(3)]).reshape(3, 3, NUM_CLASSES)
    assert _close(scores, cells) <= TOL
    if spec.output == "probabilities":   # the softmax acts over the channels of each cell
        np.testing.assert_allclose(scores.sum(axis=-1), 1.0, atol=1e-5)
    keras.backend.clear_session()


def test_lenet5_has_no_padding_so_every_cell_is_the_classifier_on_its_crop():
    model = keras_cnns.get_model("lenet5")
    converted = convolutionalize(model)
    geometry = map_geometry(converted, (32, 32))
    assert (geometry.stride, geometry.offset, geometry.receptive_field) == ((4, 4), (15.5, 15.5), (32, 32))
    big = _images((32 + 4 * 5, 32 + 4 * 3, 1), n=1, seed=2)
    scores = np.asarray(converted(big))[0]
    assert scores.shape == (6, 4, 10)
    crops = np.stack([big[0, 4 * i:4 * i + 32, 4 * j:4 * j + 32] for i in range(6) for j in range(4)])
    expected = np.asarray(model(crops)).reshape(6, 4, 10)
    assert _close(scores, expected) <= TOL


def test_same_padding_cell_equals_its_crop_only_when_the_padding_sees_what_the_image_has():
    """lenet5_modern pads c1 ('same', 2 pixels) and nothing else: a lone crop is padded with zeros, so a
    cell equals the classifier on its crop exactly when the image is black in the 2-pixel band around
    that crop, and not otherwise."""
    model = keras_cnns.get_model("lenet5_modern")
    converted = convolutionalize(model)
    big = np.abs(_images((28 + 4 * 4, 28 + 4 * 4, 1), n=1, seed=3))
    top = left = 4 * 2                          # the crop of cell (2, 2)
    crop = big[:, top:top + 28, left:left + 28].copy()
    expected = np.asarray(model(crop))[0]
    assert _close(np.asarray(converted(big))[0, 2, 2], expected) > 1e-3   # real pixels where the crop has zeros
    banded = np.zeros_like(big)
    banded[:, top:top + 28, left:left + 28] = crop
    banded[:, :top - 2] = big[:, :top - 2]       # the image stays busy outside the band
    assert _close(np.asarray(converted(banded))[0, 2, 2], expected) <= TOL


def test_resnet20_trunk_at_a_larger_size_is_the_trunk_the_builder_makes():
    """The layers cloned into the score-map model compute, at any size, what the family's own builder
    builds at that size (option-A shortcuts and batch norm included)."""
    model = keras_cnns.get_model("resnet20", input_shape=(28, 28, 1), num_classes=NUM_CLASSES)
    converted = convolutionalize(model)
    trunk = keras_cnns.get_model("resnet20", input_shape=(44, 44, 1), include_top=False)
    for layer in trunk.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    big = _images((44, 44, 1), n=1, seed=4)
    ours = keras.Model(converted.input, converted.get_layer("conv4_block3_out").output)
    assert _close(np.asarray(ours(big)), np.asarray(trunk(big))) <= TOL


@pytest.mark.parametrize("name", ["nin_cifar", "resnet20"])
def test_drop_keeps_one_score_per_position_whose_mean_is_the_classifier(name):
    spec = get_spec(name)
    model = keras_cnns.get_model(name, input_shape=spec.test_input_shape, num_classes=NUM_CLASSES,
                                 classifier_activation=None)
    dense = convolutionalize(model, global_pool="drop")
    x = _images(spec.test_input_shape)
    maps = np.asarray(dense(x))
    assert maps.shape == (2, 7, 7, NUM_CLASSES)      # 28 / stride 4
    assert _close(maps.mean(axis=(1, 2)), np.asarray(model(x))) <= TOL
    if name == "nin_cifar":   # NIN's own class maps, position by position
        class_maps = keras.Model(model.input, model.get_layer("mlpconv3_mlp2").output)
        assert _close(maps, np.asarray(class_maps(x))) <= TOL


def test_googlenet_training_form_converts_its_main_classifier():
    model = keras_cnns.get_model("googlenet", input_shape=(65, 65, 3), num_classes=NUM_CLASSES, aux_heads=True)
    converted = convolutionalize(model)
    x = _images((65, 65, 3), n=1)
    assert _close(np.asarray(converted(x))[:, 0, 0], np.asarray(model(x)["predictions"])) <= TOL
    assert not any(layer.name.startswith("aux") for layer in converted.layers)


def test_converted_model_saves_and_loads_with_safe_mode(tmp_path):
    converted = convolutionalize(keras_cnns.get_model("lenet5"))
    converted.save(tmp_path / "map.keras")
    loaded = keras.saving.load_model(tmp_path / "map.keras", safe_mode=True)
    x = _images((40, 48, 1), n=1)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(converted(x)))


def test_bad_models_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="global_pool must be one of"):
        convolutionalize(keras_cnns.get_model("lenet5"), global_pool="mean")
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    sneaky = keras.Model(inputs, keras.layers.Activation("relu")(x))
    with pytest.raises(ValueError, match="only Dense and Dropout layers may follow Flatten"):
        convolutionalize(sneaky)
    anywhere = keras_cnns.get_model("resnet20", input_shape=(None, None, 1), num_classes=3)
    with pytest.raises(ValueError, match="pass input_size"):
        convolutionalize(anywhere)
    assert convolutionalize(anywhere, input_size=(28, 28)).get_layer("avg_pool").pool_size == (7, 7)


@pytest.mark.slow
def test_vgg16_at_full_size_gives_the_articles_6x6_map_at_384():
    model = keras_cnns.get_model("vgg16", classifier_activation=None)
    converted = convolutionalize(model)
    fc6 = converted.get_layer("fc6")
    assert fc6.kernel.shape == (7, 7, 512, 4096)
    x = _images((224, 224, 3), n=1)
    assert _close(np.asarray(converted(x))[:, 0, 0], np.asarray(model(x))) <= TOL
    assert converted(_images((384, 384, 3), n=1)).shape == (1, 6, 6, 1000)


# --------------------------------------------------------------------- the shipped Fashion-MNIST model

@pytest.fixture(scope="module")
def test_items():
    return fm.fashion_mnist("t10k", 10000)


def compose_scene(rng, images, labels, size=128, count=3, gap=8):
    """A black size x size canvas with `count` test items of different classes at their trained scale
    (28x28), at least `gap` pixels apart in x or y. Returns the canvas and [(top, left, class)]."""
    canvas = np.zeros((size, size, 1), np.uint8)
    placed = []
    for label in rng.choice(10, count, replace=False):
        item = images[rng.choice(np.flatnonzero(labels == label))]
        while True:
            top, left = (int(v) for v in rng.integers(0, size - 28 + 1, 2))
            if all(abs(top - t) >= 28 + gap or abs(left - l) >= 28 + gap for t, l, _ in placed):
                break
        canvas[top:top + 28, left:left + 28] = item
        placed.append((top, left, int(label)))
    return canvas, placed


def nearest_cell(result, y, x):
    oy, ox = result.centre(0, 0)
    sy, sx = result.geometry.stride
    rows, cols = result.probabilities.shape[:2]
    return (int(np.clip(round((y - oy) / sy), 0, rows - 1)), int(np.clip(round((x - ox) / sx), 0, cols - 1)))


def test_shipped_lenet5_lights_up_each_item_of_a_scene_with_its_class(test_items):
    images, labels = test_items
    mapper = scoremap.load(SHIPPED)
    rng = np.random.default_rng(7)
    hits = total = 0
    for _ in range(30):
        canvas, placed = compose_scene(rng, images, labels)
        result = mapper(canvas)
        assert result.probabilities.shape == (25, 25, 10)     # (128 - 32) / 4 + 1
        for top, left, label in placed:
            row, col = nearest_cell(result, top + 13.5, left + 13.5)
            hits += int(np.argmax(result.probabilities[row, col]) == label)
            total += 1
    # Observed: 67 of 90 (0.744) with this seed; 0.775, 0.800 and 0.725 over 40 scenes with seeds 0, 1, 2
    # (the shipped model is 0.8924 accurate on centred items; an item can sit 2 pixels off its cell's crop).
    assert hits / total >= 0.65, f"{hits}/{total}"


def test_an_image_smaller_than_the_trained_size_gives_the_classifiers_answer(test_items):
    images, _ = test_items
    mapper = scoremap.load(SHIPPED)
    result = mapper(images[0])                               # 28x28: padded to 32 like the pipeline
    assert result.probabilities.shape == (1, 1, 10) and result.pad == (2, 2)
    expected = mapper.predictor.probabilities(mapper.predictor.predict(mapper.predictor.preprocess(images[:1])))
    np.testing.assert_allclose(result.probabilities[0, 0], expected[0], atol=1e-5)
    assert result.centre(0, 0) == (13.5, 13.5)               # the centre of the 28x28 image


# --------------------------------------------------------------------------------------------- the app

def test_app_maps_good_images_and_reports_bad_ones(tmp_path, test_items):
    images, labels = test_items
    canvas, placed = compose_scene(np.random.default_rng(0), images, labels)
    Image.fromarray(canvas[..., 0]).save(tmp_path / "scene.png")
    Image.fromarray(images[1][..., 0]).convert("RGB").save(tmp_path / "item.jpg")
    (tmp_path / "notes.png").write_text("not an image")
    out = tmp_path / "maps"
    run = subprocess.run(
        [sys.executable, APP, str(tmp_path / "scene.png"), str(tmp_path / "missing.png"), str(tmp_path / "notes.png"),
         str(tmp_path / "item.jpg"), "--json", "--output", str(out)],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert run.returncode == 2, run.stderr
    errors = run.stderr.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in run.stderr
    assert "missing.png: no such file" in errors[0] and "notes.png" in errors[1] and "2 of 4" in errors[2]
    records = json.loads(run.stdout)
    assert [r["path"] for r in records] == [str(tmp_path / "scene.png"), str(tmp_path / "item.jpg")]
    scene, item = records
    assert scene["map_shape"] == [25, 25, 10] and scene["stride"] == [4, 4] and scene["offset"] == [15.5, 15.5]
    assert item["map_shape"] == [1, 1, 10] and item["offset"] == [13.5, 13.5]
    assert [e["class"] for e in scene["max"]] == fm.CLASS_NAMES
    for best in scene["max"]:   # locations in image pixels: the centre of the peak cell's crop
        assert (best["y"], best["x"]) == (15.5 + 4 * best["row"], 15.5 + 4 * best["col"])
        assert 0 < best["probability"] <= 1
    assert {p.name for p in out.iterdir()} == {"scene.scoremap.png", "item.scoremap.png"}
    assert Image.open(out / "scene.scoremap.png").size[0] > 500


def test_one_class_is_found_by_name_and_an_unknown_one_lists_the_classes(tmp_path, test_items):
    images, _ = test_items
    mapper = scoremap.load(SHIPPED)
    index = mapper.class_index("trouser")
    assert mapper.class_names[index] == "Trouser"
    result = mapper(images[2])
    assert [e["class"] for e in result.maxima(mapper.class_names, mapper.output, [index])] == ["Trouser"]
    scoremap.plot_score_map(images[2], result, mapper.class_names, classes=[index], path=tmp_path / "one.png")
    assert Image.open(tmp_path / "one.png").size[0] > 200
    run = subprocess.run([sys.executable, APP, str(tmp_path / "one.png"), "--class", "Hat", "--output",
                          str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 2 and run.stdout == ""
    err = run.stderr.strip().splitlines()
    assert len(err) == 1 and "unknown class 'Hat'" in err[0] and "'Ankle boot'" in err[0], run.stderr


def test_the_docs_table_has_every_classifier_with_its_recorded_stride_and_offset():
    with open(os.path.join(ROOT, "docs", "scoremaps.md")) as f:
        text = f.read()
    table = text[text.index("<!-- geometry:start -->"):text.index("<!-- geometry:end -->")]
    rows = {cells[0].strip("` "): cells for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("| `"))}
    assert sorted(rows) == keras_cnns.list_models(task="classification")
    for name, cells in rows.items():
        size = get_spec(name).input_shape[0]
        assert cells[1] == f"{size}x{size}" and int(cells[2]) == scoremap.expected_stride(name)
        assert float(cells[3]) == (size - 1) / 2
        assert (cells[5] == "yes") == (name == "lenet5")
