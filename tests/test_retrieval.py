"""Retrieval (Krizhevsky et al. 2012 sec. 6.1): feature vectors, exact k-NN, binary codes and Hamming search,
the index and its refusal to mix models, and apps/retrieve.py. Tiny data throughout."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_cnns
from keras_cnns import metadata
from keras_cnns.data.preprocessing import Preprocessing
from keras_cnns.layers import BinaryCode
from keras_cnns.models.autoencoder import encoder
from keras_cnns.tasks import retrieval as rt

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RETRIEVE = os.path.join(ROOT, "apps", "retrieve.py")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _fixture_models as fm  # noqa: E402

RNG = np.random.default_rng(0)


# ------------------------------------------------------------------------------------------- features

@pytest.mark.parametrize("name, endpoint, dim", [
    ("lenet5", "f6", 84),              # LeNet-5's last hidden layer
    ("alexnet", "fc7", 4096),          # the article's fc7
    ("resnet20", "conv4", 64),         # CIFAR ResNet: its last stage, globally pooled
    ("nin_cifar", "mlpconv3", 10),     # NIN: the class maps, globally pooled (its GAP vector)
])
def test_the_retrieval_vector_of_each_family(name, endpoint, dim):
    spec = keras_cnns.get_spec(name)
    shape = spec.input_shape if name != "alexnet" else spec.input_shape
    model = keras_cnns.get_model(name, input_shape=shape if name == "lenet5" else spec.test_input_shape)
    assert rt.retrieval_endpoint(model)[0] == endpoint
    net = rt.feature_model(model)
    assert net.output_shape == (None, dim)


def test_extract_features_batches_any_input_form_to_the_same_vectors():
    model = keras_cnns.get_model("lenet5")
    prep = fm.preprocessing()
    images = RNG.integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    direct = np.asarray(rt.feature_model(model)(prep.apply(images)))
    batched = rt.extract_features(model, images, prep, batch_size=2, progress=False)
    listed = rt.extract_features(model, list(images), prep, progress=False)
    half = rt.extract_features(model, images, prep, dtype="float16", progress=False)
    assert batched.shape == (5, 84) and batched.dtype == np.float32
    np.testing.assert_allclose(batched, direct, atol=1e-5)
    np.testing.assert_allclose(listed, direct, atol=1e-5)
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, direct, atol=2e-3)


def test_a_mirror_averaged_vector_is_the_mean_of_both_and_ignores_which_way_the_image_faces():
    model = keras_cnns.get_model("lenet5")
    prep = fm.preprocessing()
    images = RNG.integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    net = rt.feature_model(model)
    x = prep.apply(images)
    expected = (np.asarray(net(x)) + np.asarray(net(x[:, :, ::-1]))) / 2
    mirrored = rt.extract_features(model, images, prep, progress=False, mirror=True)
    np.testing.assert_allclose(mirrored, expected, atol=1e-5)
    np.testing.assert_allclose(rt.extract_features(model, images[:, :, ::-1], prep, progress=False, mirror=True),
                               mirrored, atol=1e-5)
    plain = rt.extract_features(model, images, prep, progress=False)   # random images: not mirror symmetric
    assert np.abs(plain - mirrored).max() > 0.05 * np.abs(mirrored).max()


# ------------------------------------------------------------------------------------------ search

def test_euclidean_knn_equals_brute_force_numpy():
    queries = RNG.normal(size=(37, 12)).astype(np.float32)
    database = RNG.normal(size=(250, 12)).astype(np.float32)
    idx, dist = rt.knn_euclidean(queries, database, k=6, batch_size=8)
    brute = np.sqrt(((queries[:, None] - database[None]) ** 2).sum(-1))
    expected = np.argsort(brute, axis=1, kind="stable")[:, :6]
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(dist, np.take_along_axis(brute, expected, 1), rtol=1e-4, atol=1e-4)


def test_codes_pack_into_bits_and_hamming_matches_numpy():
    for bits in (8, 24, 64, 128):
        codes = RNG.choice([-1.0, 1.0], size=(40, bits))
        packed = rt.pack_codes(codes)
        assert packed.shape == (40, bits // 8) and packed.dtype == np.uint8
        np.testing.assert_array_equal(rt.unpack_codes(packed, bits), codes > 0)
        brute = (codes[:7, None] != codes[None]).sum(-1)
        np.testing.assert_array_equal(rt.hamming_distances(packed[:7], packed), brute)
    x = RNG.integers(0, 2 ** 63, 50, dtype=np.uint64)
    assert [bin(int(v)).count("1") for v in x] == list(rt.popcount(x))


def test_hamming_knn_orders_ties_by_database_position():
    bits = RNG.integers(0, 2, (300, 16))
    bits[[40, 7, 200]] = bits[0]                      # three exact copies of item 0: distance 0
    packed = rt.pack_codes(bits)
    idx, dist = rt.knn_hamming(packed[:20], packed, k=9)
    brute = (bits[:20, None] != bits[None]).sum(-1)
    np.testing.assert_array_equal(idx, np.argsort(brute, axis=1, kind="stable")[:, :9])
    assert list(idx[0, :4]) == [0, 7, 40, 200] and list(dist[0, :4]) == [0, 0, 0, 0]


def test_map_and_precision_at_k_on_a_ranking_worked_by_hand():
    database_labels = np.array([0, 1, 0, 1, 0])
    # query of class 0, ranking by distance: items 0 (rel), 1, 2 (rel), 3, 4 (rel)
    distances = np.array([[0, 1, 1, 2, 3]], np.uint16)     # items 1 and 2 tie: database order keeps 1 first
    m = rt.ranking_metrics([distances], np.array([0]), database_labels, k=2)
    assert m["map"] == pytest.approx((1 / 1 + 2 / 3 + 3 / 5) / 3)
    assert m["precision_at_k"] == pytest.approx(0.5)


# ------------------------------------------------------------------------------- the binary bottleneck

def test_binary_code_is_a_sign_forward_and_passes_the_tanh_gradient_back():
    import tensorflow as tf

    x = tf.constant([[-2.0, -0.3, 0.0, 0.4, 3.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = BinaryCode()(x)
        loss = tf.reduce_sum(y * tf.constant([[1.0, 2.0, 3.0, 4.0, 5.0]]))
    np.testing.assert_array_equal(y.numpy(), [[-1, -1, 1, 1, 1]])
    grad = tape.gradient(loss, x).numpy()
    np.testing.assert_allclose(grad, [[1, 2, 3, 4, 5]] * (1 - np.tanh(x.numpy()) ** 2), rtol=1e-4)


def test_the_code_noise_is_added_in_training_only_and_serialises():
    x = np.full((64, 16), 0.1, np.float32)                                   # every logit just above 0
    noisy = BinaryCode(noise_stddev=2.0, seed=1)
    assert set(np.unique(noisy(x))) == {1.0}                                 # inference: the sign, no noise
    flipped = float(np.mean(np.asarray(noisy(x, training=True)) < 0))
    assert 0.35 < flipped < 0.55                                             # P(0.1 + N(0, 2^2) < 0) = 0.48
    again = BinaryCode.from_config(noisy.get_config())
    assert (again.noise_stddev, again.seed) == (2.0, 1)
    assert BinaryCode.from_config({"name": "code"}).noise_stddev == 0.0     # a layer saved before the noise
    assert not BinaryCode().weights and not BinaryCode()(x, training=True).numpy().min() < 1
    with pytest.raises(ValueError, match="noise_stddev must be a number >= 0. Received: -1"):
        BinaryCode(noise_stddev=-1)


def test_the_code_logits_are_standardised_for_the_noise_and_code_noise_0_is_the_earlier_model(tmp_path):
    from keras_cnns.models.autoencoder import CODE_NOISE

    noisy = keras_cnns.get_model("feature_autoencoder", input_shape=(12,), bits=16, hidden=(8,))
    assert noisy.get_layer("code").noise_stddev == CODE_NOISE > 0
    norm = noisy.get_layer("code_norm")
    assert not norm.center and not norm.scale                                # standardised, nothing learnt
    plain = keras_cnns.get_model("feature_autoencoder", input_shape=(12,), bits=16, hidden=(8,), code_noise=0)
    assert "code_norm" not in [layer.name for layer in plain.layers]
    assert plain.get_layer("code").noise_stddev == 0 and len(plain.weights) == len(noisy.weights) - 2
    path = str(tmp_path / "plain.keras")
    plain.save(path)
    x = RNG.normal(size=(4, 12)).astype(np.float32)
    np.testing.assert_allclose(keras.saving.load_model(path, compile=False)(x), plain(x), atol=1e-6)
    with pytest.raises(ValueError, match="noise_stddev must be a number >= 0. Received: -0.5"):
        keras_cnns.get_model("feature_autoencoder", input_shape=(12,), code_noise=-0.5)


def test_the_autoencoder_is_registered_and_round_trips_through_keras_files(tmp_path):
    assert "feature_autoencoder" in keras_cnns.list_models(task="retrieval")
    assert "feature_autoencoder" not in keras_cnns.list_models(task="classification")  # not a classifier
    model = keras_cnns.get_model("feature_autoencoder", input_shape=(12,), bits=32, hidden=(16,))
    assert model.get_layer("code").output.shape == (None, 32)
    path = str(tmp_path / "ae.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    x = RNG.normal(size=(4, 12)).astype(np.float32)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert isinstance(loaded.get_layer("code"), BinaryCode)
    assert set(np.unique(encoder(loaded)(x))) <= {-1.0, 1.0}


def test_training_the_autoencoder_lowers_its_reconstruction_error(tmp_path):
    vectors = np.repeat(RNG.normal(size=(4, 10)), 64, axis=0) + 0.05 * RNG.normal(size=(256, 10))
    model, mean, std, rows = rt.train_autoencoder(vectors, 8, hidden=(16,), epochs=6, batch_size=32,
                                                  output_dir=str(tmp_path), log=lambda *_: None)
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert os.path.isfile(tmp_path / "history.csv") and os.path.isfile(tmp_path / "curves.png")
    codes = rt.encode(model, vectors, mean, std)
    assert codes.shape == (256, 1)


# ------------------------------------------------------------------------------------------- index

def _index(model="lenet5", mean=72.9, bits=8, n=30):
    prep = Preprocessing(size=(32, 32), channels=1, resize="pad", mean=(mean,), std=(90.0,))
    meta = {"model": model, "model_source": "x", "preprocessing": prep.to_dict(), "endpoint": "f6",
            "feature_dim": 6, "bits": bits, "dataset": "fashion_mnist", "split": "train",
            "class_names": ["a", "b", "c"]}
    features = RNG.normal(size=(n, 6)).astype(np.float16)
    ae = keras_cnns.get_model("feature_autoencoder", input_shape=(6,), bits=bits, hidden=(8,))
    mean_, std_ = rt.standardiser(features)
    codes = rt.encode(ae, features, mean_, std_)
    return rt.RetrievalIndex(meta, RNG.integers(0, 3, n), np.arange(n), features, codes, ae, mean_, std_)


def test_index_saves_and_loads_what_it_holds(tmp_path):
    index = _index()
    index.save(str(tmp_path / "idx"))
    loaded = rt.RetrievalIndex.load(str(tmp_path / "idx"))
    np.testing.assert_array_equal(loaded.codes, index.codes)
    np.testing.assert_array_equal(loaded.labels, index.labels)
    assert loaded.features.dtype == np.float16 and loaded.meta["count"] == 30
    query = index.features[:3].astype(np.float32)
    for search in ("hamming", "euclidean"):
        np.testing.assert_array_equal(loaded.search(query, 4, search)[0], index.search(query, 4, search)[0])
    assert loaded.search(query, 1, "euclidean")[0][:, 0].tolist() == [0, 1, 2]


def test_index_refuses_to_mix_models_or_preprocessing(tmp_path):
    index = _index()
    index.save(str(tmp_path / "idx"))
    with pytest.raises(rt.IndexMismatchError, match="model is 'lenet5_modern'"):
        rt.RetrievalIndex.load(str(tmp_path / "idx"), expect={"model": "lenet5_modern",
                                                             "preprocessing": index.meta["preprocessing"]})
    with pytest.raises(rt.IndexMismatchError, match="preprocessing"):
        rt.merge([index, _index(mean=0.0)])
    with pytest.raises(rt.IndexMismatchError, match="bits"):
        rt.merge([index, _index(bits=16)])
    mirrored = _index()
    mirrored.meta["mirror"] = True
    with pytest.raises(rt.IndexMismatchError, match="mirror is True"):
        rt.merge([index, mirrored])
    noisy = _index()
    noisy.meta["code_noise"] = 2.0
    with pytest.raises(rt.IndexMismatchError, match="code_noise"):
        rt.merge([index, noisy])
    merged = rt.merge([index, _index()])
    assert merged.meta["count"] == 60 and merged.codes.shape == (60, 1)


# --------------------------------------------------------------------------------- apps/retrieve.py

def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, RETRIEVE, *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory):
    """An untrained LeNet-5 saved as training saves it, and a 16-bit index of 200 Fashion-MNIST images."""
    folder = tmp_path_factory.mktemp("retrieval")
    model_dir = str(folder / "lenet5")
    keras.utils.set_random_seed(0)
    os.makedirs(model_dir)
    keras_cnns.get_model("lenet5").save(os.path.join(model_dir, metadata.MODEL_FILENAME))
    metadata.write(model_dir, fm._metadata("lenet5", "rbf_distances", fm.preprocessing(), (32, 32, 1)))
    index_dir = str(folder / "index")
    done = _run("build", "--model", model_dir, "--dataset", "fashion_mnist", "--limit", "200", "--bits", "16",
                "--epochs", "2", "--output", index_dir, "--onednn")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Kernels: TensorFlow oneDNN on (TF_ENABLE_ONEDNN_OPTS=1)\n")  # a batch job
    images, _ = fm.fashion_mnist("train", 3)
    from PIL import Image
    for i in range(2):
        Image.fromarray(images[i, ..., 0]).save(folder / f"q{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder, model_dir, index_dir


def test_query_json_lists_neighbours_nearest_first_and_bad_inputs_are_one_line(tiny_index):
    folder, _, index_dir = tiny_index
    out = folder / "grids"
    done = _run("query", str(folder / "q0.png"), str(folder / "missing.png"), str(folder / "broken.png"),
                str(folder / "q1.png"), "--index", index_dir, "--k", "5", "--search", "euclidean", "--json",
                "--output", str(out))
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("retrieve.py:")]
    assert any("missing.png: no such file" in e for e in errors)
    assert any("broken.png" in e for e in errors)
    assert "Traceback" not in done.stderr
    records = json.loads(done.stdout)
    assert [r["path"] for r in records] == [str(folder / "q0.png"), str(folder / "q1.png")]
    for i, record in enumerate(records):
        neighbours = record["neighbours"]
        assert len(neighbours) == 5
        assert neighbours[0]["id"] == i and neighbours[0]["distance"] < 1e-2   # a database image finds itself
        assert [n["distance"] for n in neighbours] == sorted(n["distance"] for n in neighbours)
        assert neighbours[0]["label"] in fm.CLASS_NAMES
    assert sorted(os.listdir(out)) == ["q0-neighbours.png", "q1-neighbours.png"]


def test_query_refuses_another_model_and_a_missing_index(tiny_index, tmp_path):
    folder, model_dir, index_dir = tiny_index
    other = str(tmp_path / "modern")
    os.makedirs(other)
    keras_cnns.get_model("lenet5_modern").save(os.path.join(other, metadata.MODEL_FILENAME))
    metadata.write(other, fm._metadata("lenet5_modern", "probabilities", fm.preprocessing(), (28, 28, 1)))
    done = _run("query", str(folder / "q0.png"), "--index", index_dir, "--model", other, "--no-grid")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "Cannot mix the model" in done.stderr and "'lenet5_modern'" in done.stderr
    done = _run("query", str(folder / "q0.png"), "--index", str(tmp_path / "nowhere"), "--no-grid")
    assert done.returncode == 2 and "not a retrieval index" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_mirror_index_makes_its_queries_mirror_averaged_too(tiny_index, tmp_path):
    """build --mirror stores mirror-averaged vectors; a query of a database image finds it at distance 0 only
    if its own vector is mirror-averaged as well."""
    folder, model_dir, _ = tiny_index
    index_dir = str(tmp_path / "mirror-index")
    index = rt.build_index(model_dir, "fashion_mnist", bits=0, limit=200, output=index_dir, mirror=True,
                           feature_dtype="float32", progress=False, log=lambda *_: None)
    assert index.meta["mirror"] is True
    done = _run("query", str(folder / "q1.png"), "--index", index_dir, "--k", "1", "--json", "--no-grid")
    assert done.returncode == 0, done.stderr
    nearest = json.loads(done.stdout)[0]["neighbours"][0]
    assert nearest["id"] == 1 and nearest["distance"] < 1e-4


def test_float_rankings_put_equal_distances_in_database_order():
    block = RNG.random((6, 500)).astype(np.float32)
    block[2, [300, 10, 450]] = 0.5                 # a three-way tie in row 2
    np.testing.assert_array_equal(rt._stable_argsort(block), np.argsort(block, axis=1, kind="stable"))
