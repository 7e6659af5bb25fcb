"""apps/inspect.py and keras_cnns.anatomy: the article's LeNet-5 table, and rules that hold for any model."""

import math
import os
import subprocess
import sys

import keras
import pytest

import keras_cnns
from keras_cnns import anatomy
from keras_cnns.layers import LocalResponseNormalization

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def lenet_rows():
    return {row.name: row for row in anatomy.analyze(keras_cnns.get_model("lenet5"))}


def test_lenet5_connections_are_the_articles(lenet_rows):
    article = {"c1": 122304, "s2": 5880, "c3": 151600, "s4": 2000, "c5": 48120, "f6": 10164, "output": 840}
    assert {name: lenet_rows[name].connections for name in article} == article


def test_lenet5_connections_follow_the_articles_formulas(lenet_rows):
    assert lenet_rows["c1"].connections == (5 * 5 + 1) * 6 * 28 * 28
    assert lenet_rows["s2"].connections == (2 * 2 + 1) * 6 * 14 * 14
    assert lenet_rows["c3"].connections == 10 * 10 * 1516
    assert lenet_rows["s4"].connections == 16 * (2 * 2 + 1) * 5 * 5
    assert lenet_rows["f6"].connections == (120 + 1) * 84


def test_lenet5_parameters_and_shapes_per_row(lenet_rows):
    assert [lenet_rows[n].params for n in ("c1", "s2", "c3", "s4", "c5", "f6", "output")] == \
        [156, 12, 1516, 32, 48120, 10164, 840]
    assert lenet_rows["c3"].output_shape == ((10, 10, 16),)


def test_lenet5_receptive_fields_grow_by_the_recurrence(lenet_rows):
    # c1: 5; s2: 5 + 1*1 = 6 (jump 2); c3: 6 + 4*2 = 14; s4: 14 + 1*2 = 16 (jump 4); c5: 16 + 4*4 = 32.
    fields = {n: lenet_rows[n].receptive_field for n in ("c1", "s2", "c3", "s4", "c5", "f6", "output")}
    assert fields == {"c1": (5, 5), "s2": (6, 6), "c3": (14, 14), "s4": (16, 16), "c5": (32, 32),
                      "f6": (32, 32), "output": (32, 32)}


class _Doubler(keras.layers.Layer):
    """A custom layer with weights and no count_connections: the generic rule applies."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

    def call(self, x):
        return x * self.scale


class _Reporter(_Doubler):
    def count_connections(self, input_shape, output_shape):
        return 7 * math.prod(output_shape[1:])


def _branchy():
    """Two branches (3x3 and 5x5) joined by concatenation, a grouped conv, a residual add, BN, LRN."""
    x0 = keras.Input((16, 16, 4))
    a = keras.layers.Conv2D(8, 3, padding="same", name="a3")(x0)
    b = keras.layers.Conv2D(8, 5, padding="same", name="b5")(x0)
    cat = keras.layers.Concatenate(name="cat")([a, b])
    g = keras.layers.Conv2D(16, 3, padding="same", groups=4, name="grouped")(cat)
    s = keras.layers.Conv2D(16, 1, use_bias=False, name="skip")(x0)
    add = keras.layers.Add(name="add")([g, s])
    bn = keras.layers.BatchNormalization(name="bn")(add)
    lrn = LocalResponseNormalization(name="lrn")(bn)
    pool = keras.layers.MaxPooling2D(3, 2, name="pool")(lrn)
    custom = _Doubler(name="doubler")(pool)
    reported = _Reporter(name="reporter")(custom)
    gap = keras.layers.GlobalAveragePooling2D(name="gap")(reported)
    out = keras.layers.Dense(5, name="fc")(gap)
    return keras.Model(x0, out)


@pytest.fixture(scope="module")
def branchy_rows():
    return {row.name: row for row in anatomy.analyze(_branchy())}


def test_generic_connection_rules(branchy_rows):
    r = branchy_rows
    assert r["a3"].connections == (3 * 3 * 4 + 1) * 16 * 16 * 8
    assert r["grouped"].connections == (3 * 3 * 16 // 4 + 1) * 16 * 16 * 16
    assert r["skip"].connections == 4 * 16 * 16 * 16          # no bias
    assert r["cat"].connections == 0
    assert r["add"].connections == 2 * 16 * 16 * 16
    assert r["bn"].connections == 2 * 16 * 16 * 16
    assert r["lrn"].connections == 5 * 16 * 16 * 16
    assert r["pool"].connections == 9 * 7 * 7 * 16
    assert r["doubler"].connections == 16 * 7 * 7             # parameters x positions
    assert r["reporter"].connections == 7 * 7 * 7 * 16        # its own count_connections
    assert r["gap"].connections == 7 * 7 * 16
    assert r["fc"].connections == (16 + 1) * 5


def test_receptive_field_is_the_maximum_over_inbound_paths(branchy_rows):
    r = branchy_rows
    assert r["a3"].receptive_field == (3, 3) and r["b5"].receptive_field == (5, 5)
    assert r["cat"].receptive_field == (5, 5)
    assert r["grouped"].receptive_field == (7, 7)
    assert r["add"].receptive_field == (7, 7)                 # max(7 through the convs, 1 through the skip)
    assert r["pool"].receptive_field == (9, 9)                # 7 + (3 - 1) * 1
    # gap sees the whole 7x7 pooled map: 9 + (7 - 1) * 2
    assert r["gap"].receptive_field == (21, 21) and r["fc"].receptive_field == (21, 21)


def test_batchnorm_moving_statistics_are_not_parameters(branchy_rows):
    assert branchy_rows["bn"].params == 2 * 16


@pytest.mark.parametrize("name", keras_cnns.list_models(task="classification"))
def test_every_registered_model_has_a_table_whose_rows_add_up(name):
    spec = keras_cnns.get_spec(name)
    model = keras_cnns.get_model(name, input_shape=spec.test_input_shape)
    rows = anatomy.analyze(model)
    assert sum(r.params for r in rows) == anatomy.count_params(model)
    assert all(r.connections >= 0 for r in rows)
    assert sum(r.connections for r in rows) > 0
    assert rows[-1].receptive_field is not None and rows[-1].receptive_field[0] > 1
    for fmt in anatomy.FORMATS:
        assert "total" in anatomy.format_rows(model, rows, fmt)


def test_input_shapes_are_parsed_or_refused():
    assert anatomy.parse_input_shape("64,48,3") == (64, 48, 3)
    for bad in ("64,48", "a,b,c", "0,32,1", "32,32,1,1"):
        with pytest.raises(ValueError, match="H,W,C"):
            anatomy.parse_input_shape(bad)


def test_a_too_small_input_shape_names_the_minimum():
    with pytest.raises(ValueError, match="at least 32x32"):
        anatomy.model_table("lenet5", (16, 16, 1))


def test_write_readme_replaces_only_the_text_between_the_markers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n{anatomy.README_START}\nold table\n{anatomy.README_END}\n\nafter\n")
    anatomy.write_readme(readme, table="| new |\n")
    assert readme.read_text() == f"# title\n\n{anatomy.README_START}\n| new |\n{anatomy.README_END}\n\nafter\n"
    assert anatomy.readme_section(readme) == "| new |\n"
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="models:start"):
        anatomy.write_readme(readme, table="x\n")


def _app(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "apps", "inspect.py"), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def test_the_app_prints_the_lenet5_table_as_csv():
    result = _app("lenet5", "--format", "csv")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    connections = {line.split(",")[0]: int(line.split(",")[4]) for line in lines[1:]}
    assert connections["c3"] == 151600 and connections["total"] == sum(
        v for k, v in connections.items() if k != "total")


@pytest.mark.parametrize("args, message", [
    (["lenet6"], "Unknown model 'lenet6'"),
    (["lenet5", "--input-shape", "32x32"], "--input-shape must be three positive integers"),
    ([], "either a MODEL name or --all"),
])
def test_bad_input_gives_one_line_and_exit_status_2(args, message):
    result = _app(*args)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
