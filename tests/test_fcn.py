"""FCN-32s/16s/8s (Long, Shelhamer, Darrell 2015) on the zoo's VGG-16: shapes, skips, initialisation."""

import keras
import numpy as np
import pytest
from _fashion import needs_fashion

import keras_cnns
from keras_cnns.layers.spatial import bilinear_kernel
from keras_cnns.models import fcn

SLIM = ["fcn32s_vgg16_slim", "fcn16s_vgg16_slim", "fcn8s_vgg16_slim"]
QUARTER = [name.replace("_slim", "_quarter") for name in SLIM]


def _images(h, w, c=1, n=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, h, w, c)).astype("float32")


def test_the_three_variants_of_the_paper_are_registered_full_slim_and_quarter():
    assert keras_cnns.list_models("fcn*") == sorted(
        f"fcn{s}s_vgg16{t}" for s in (32, 16, 8) for t in ("", "_slim", "_quarter"))
    assert keras_cnns.list_models(task="segmentation") == keras_cnns.list_models("fcn*")
    assert "fcn8s_vgg16" not in keras_cnns.list_models(task="classification")


@pytest.mark.parametrize("name", SLIM + ["fcn8s_vgg16_quarter"])
@pytest.mark.parametrize("size", [(33, 47), (128, 128), (1, 5), (65, 31)])
def test_any_input_size_odd_ones_included_gives_a_mask_of_that_size(name, size):
    model = keras_cnns.get_model(name, input_shape=(None, None, 1), num_classes=11)
    out = np.asarray(model(_images(*size), training=False))
    assert out.shape == (2, *size, 11)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)  # a softmax per pixel


def test_fcn8s_fuses_pool4_and_pool3_fcn16s_pool4_fcn32s_none():
    names = {n: {layer.name for layer in keras_cnns.get_model(n, num_classes=5).layers} for n in SLIM}
    assert {"score_pool4", "score_pool3", "upscore2", "upscore_pool4", "upscore8"} <= names["fcn8s_vgg16_slim"]
    assert {"score_pool4", "upscore2", "upscore16"} <= names["fcn16s_vgg16_slim"]
    assert "score_pool3" not in names["fcn16s_vgg16_slim"]
    assert not any(n.startswith("score_pool") for n in names["fcn32s_vgg16_slim"])
    assert "upscore32" in names["fcn32s_vgg16_slim"]


def test_fc6_is_a_7x7_convolution_and_fc7_a_1x1_with_4096_filters_at_full_width():
    model = keras_cnns.get_model("fcn8s_vgg16", num_classes=21)
    assert model.get_layer("fc6").kernel.shape == (7, 7, 512, 4096)
    assert model.get_layer("fc7").kernel.shape == (1, 1, 4096, 4096)
    assert model.get_layer("upscore8").kernel.shape == (16, 16, 21, 21)
    out = model(np.zeros((1, 70, 45, 3), "float32"), training=False)
    assert out.shape == (1, 70, 45, 21)


def test_slim_is_the_same_graph_at_one_eighth_width():
    model = keras_cnns.get_model("fcn8s_vgg16_slim", input_shape=(None, None, 3), num_classes=21)
    assert model.get_layer("block1_conv1").kernel.shape == (3, 3, 3, 8)
    assert model.get_layer("block5_conv3").kernel.shape == (3, 3, 64, 64)
    assert model.get_layer("fc6").kernel.shape == (7, 7, 64, 512)


@pytest.mark.parametrize("name", QUARTER)
def test_quarter_is_the_same_graph_with_a_trunk_at_one_quarter_width_and_fc6_fc7_at_one_eighth(name):
    model = keras_cnns.get_model(name, input_shape=(None, None, 1), num_classes=11)
    slim = keras_cnns.get_model(name.replace("_quarter", "_slim"), input_shape=(None, None, 1), num_classes=11)
    assert [layer.name for layer in model.layers] == [layer.name for layer in slim.layers]
    assert model.get_layer("block1_conv1").kernel.shape == (3, 3, 1, 16)
    assert model.get_layer("block5_conv3").kernel.shape == (3, 3, 128, 128)
    assert model.get_layer("fc6").kernel.shape == (7, 7, 128, 512)
    assert model.get_layer("fc7").kernel.shape == (1, 1, 512, 512)
    if name == "fcn8s_vgg16_quarter":  # 920,496 in the trunk, 3,211,776 in fc6: 17.8 MB of float32, under the
        assert model.count_params() == 4_437_553  # 25 MB a shipped model may weigh


def test_score_layers_start_at_zero_so_every_pixel_starts_uniform():
    model = keras_cnns.get_model("fcn8s_vgg16_slim", num_classes=4)
    for name in ("score_fr", "score_pool4", "score_pool3"):
        assert not np.any(model.get_layer(name).get_weights()[0])
    out = np.asarray(model(_images(40, 40, 3), training=False))
    np.testing.assert_allclose(out, 0.25, atol=1e-6)


def test_transposed_convolutions_start_as_bilinear_interpolation():
    kernel = bilinear_kernel(4, 1)[:, :, 0, 0]
    np.testing.assert_allclose(kernel[1:3, 1:3], 0.5625)  # (3/4)^2 at the centre of a x2 kernel
    model = keras_cnns.get_model("fcn32s_vgg16_slim", num_classes=3)
    up = model.get_layer("upscore32")
    layer = keras.layers.Conv2DTranspose(3, 64, strides=32, padding="same", use_bias=False)
    layer.build((None, 4, 4, 3))
    layer.set_weights(up.get_weights())
    ramp = np.tile(np.arange(4, dtype="float32")[None, :, None, None], (1, 1, 4, 3)).transpose(0, 2, 1, 3)
    out = np.asarray(layer(ramp))[0, :, :, 0]  # columns 0..3 -> a linear ramp across 128 pixels
    interior = out[40:88, 48:80]
    np.testing.assert_allclose(np.diff(interior, axis=1), 1 / 32, atol=1e-5)
    assert not np.any(np.asarray(layer(ramp))[..., 0] - np.asarray(layer(ramp))[..., 1])  # no mixing


def test_backbone_from_a_vgg16_classifier_copies_convolutions_and_reshapes_fc6_fc7():
    classifier = keras_cnns.get_model("vgg16", input_shape=(224, 224, 3), num_classes=10)
    model = keras_cnns.get_model("fcn8s_vgg16", num_classes=5, backbone_weights=classifier)
    np.testing.assert_array_equal(model.get_layer("block3_conv2").kernel, classifier.get_layer("block3_conv2").kernel)
    np.testing.assert_array_equal(np.reshape(model.get_layer("fc6").kernel, (-1, 4096)),
                                  classifier.get_layer("fc6").kernel)
    np.testing.assert_array_equal(model.get_layer("fc7").kernel[0, 0], classifier.get_layer("fc7").kernel)


def test_a_32x32_classifiers_fc6_over_a_1x1_pool5_becomes_the_centre_tap_and_computes_the_same():
    classifier = keras_cnns.get_model("vgg16_slim", num_classes=10)          # 32x32x1: pool5 is 1x1x64
    model = keras_cnns.get_model("fcn8s_vgg16_slim", input_shape=(None, None, 1), num_classes=11,
                                 backbone_weights=classifier)
    kernel = np.asarray(model.get_layer("fc6").kernel)                       # (7, 7, 64, 512)
    np.testing.assert_array_equal(kernel[3, 3], classifier.get_layer("fc6").kernel)
    assert not np.delete(kernel.reshape(49, 64, 512), 24, axis=0).any()     # every other tap zero
    x = _images(32, 32)
    ours = keras.Model(model.inputs, model.get_layer("fc7").output)(x)      # 1x1 map at the trained size
    theirs = keras.Model(classifier.inputs, classifier.get_layer("fc7").output)(x)
    np.testing.assert_allclose(np.asarray(ours)[:, 0, 0], theirs, atol=1e-5)


def test_a_backbone_of_another_family_is_refused():
    with pytest.raises(ValueError, match="shares no convolution"):
        keras_cnns.get_model("fcn32s_vgg16_slim", num_classes=3,
                             backbone_weights=keras_cnns.get_model("lenet5_modern"))


def test_saves_and_loads_with_safe_mode_and_gives_identical_masks(tmp_path):
    model = keras_cnns.get_model("fcn8s_vgg16_slim", input_shape=(None, None, 1), num_classes=6)
    for layer in model.layers:  # non-zero scores, so the comparison means something
        if layer.name.startswith("score"):
            layer.set_weights([np.random.default_rng(1).normal(size=w.shape) for w in layer.get_weights()])
    x = _images(37, 50)
    model.save(tmp_path / "fcn.keras")
    loaded = keras.saving.load_model(tmp_path / "fcn.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


def test_the_paper_and_the_output_stride_are_on_record():
    spec = keras_cnns.get_spec("fcn8s_vgg16")
    assert "Long" in spec.paper and spec.task == "segmentation" and spec.output == "pixel_probabilities"
    assert fcn.OUTPUT_STRIDE == 32


def _dropout_rates(model):
    return [model.get_layer(name).rate for name in ("drop6", "drop7")]


def test_the_dropout_after_fc6_and_fc7_is_the_papers_half_unless_a_run_sets_it():
    paper = keras_cnns.get_model("fcn8s_vgg16_slim", num_classes=11)
    assert _dropout_rates(paper) == [0.5, 0.5] == [fcn.DROPOUT] * 2
    none = keras_cnns.get_model("fcn8s_vgg16_slim", num_classes=11, overrides={"dropout": 0.0})
    assert _dropout_rates(none) == [0.0, 0.0] and none.count_params() == paper.count_params()
    for rate in (1.0, -0.1, "0.2", True):
        with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\).*Received: dropout="):
            keras_cnns.get_model("fcn16s_vgg16_slim", num_classes=3, overrides={"dropout": rate})
    with pytest.raises(ValueError, match=r"fcn32s_vgg16_slim \(FCN\): unknown settings \['width'\]; "
                                         r"known: \['dropout'\]"):
        keras_cnns.get_model("fcn32s_vgg16_slim", num_classes=3, overrides={"width": 2})


@needs_fashion
def test_a_run_trains_without_dropout_records_it_and_a_resume_must_repeat_it(tmp_path):
    from keras_cnns import training

    options = dict(recipe="fast", batch_size=8, limit=8, output_dir=str(tmp_path), tensorboard=False, verbose=0,
                   log=lambda *_: None)
    result = training.fit("fcn8s_vgg16_slim", epochs=1, overrides={"dropout": 0.0}, **options)
    assert _dropout_rates(result.model) == [0.0, 0.0] and result.metadata["overrides"] == {"dropout": 0.0}
    saved = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert _dropout_rates(saved) == [0.0, 0.0]
    with pytest.raises(ValueError, match=r"holds checkpoints of a run with overrides=\{'dropout': 0.0\}"):
        training.fit("fcn8s_vgg16_slim", epochs=2, **options)


def test_train_app_takes_dropout_for_fcns_only_and_as_a_rate(capsys):
    from keras_cnns.cli import train

    for args, said in ((["--model", "fcn8s_vgg16_slim", "--dropout", "1"],
                        "--dropout takes a rate in [0, 1). Received: 1"),
                       (["--model", "lenet5", "--dropout", "0"],
                        "lenet5 has no settings to override: overrides are for Faster R-CNN (frcnn*: --anchor-scales, "
                        "--anchor-ratios) and FCN (fcn*: --dropout) models")):
        with pytest.raises(SystemExit) as exit_info:
            train.main(args + ["--limit", "8", "--epochs", "1"])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1 and said in err[0], err
