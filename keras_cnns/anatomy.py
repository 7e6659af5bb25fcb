"""Per-layer anatomy of a model, as the source article tabulates LeNet-5: output shape, parameters,
connections and receptive field of every layer, with totals; and the zoo table of the README.

Connections are the article's (and LeCun et al.'s) count: the edges into every unit that computes a
weighted sum, a bias counting as one edge, summed over all units, i.e. the multiply-accumulates of
one forward pass with the bias add counted as one. The rules, most specific first:

* a layer with a ``count_connections(input_shape, output_shape)`` method reports its own (the zoo's
  Subsampling, SparseConv2D and EuclideanRBF do; shapes include the batch axis, and are lists when
  the layer has several inputs or outputs);
* convolutions: (kh*kw*C_in/groups + bias) per output unit; depthwise: kh*kw + bias per unit;
  separable: depthwise plus pointwise; Dense: (inputs + bias) per unit;
* pooling: the window per output unit; global pooling: the whole map per channel;
* batch / layer normalisation: 2 per unit (one scale, one shift); local response normalisation:
  its depth n per unit; Add / Multiply / Average / Maximum / Subtract: one edge per input per unit;
* a nested functional model: the sum over its layers;
* anything else with weights: its parameters times its output positions (right for any layer whose
  weights are shared across positions, as in a convolution); anything else without weights
  (activations, dropout, reshapes, concatenation, padding, splits) counts 0.

The receptive field is the side of the input window one unit sees, through the usual recurrence
(r += (k_eff - 1) * jump; jump *= stride) with k and the stride read from ``kernel_size`` /
``pool_size`` / ``strides`` / ``dilation_rate`` attributes (custom layers may have them too); where
paths merge (concatenation, residual adds) it is the maximum over the inbound paths. A layer whose
output is no longer a map (Flatten, global pooling, Dense after them) sees everything its input map
covers. The size is not clipped to the input, as is usual.
"""

import contextlib
import csv
import dataclasses
import io
import math
import re
from typing import List, Optional, Tuple

import keras

from keras_cnns.layers.lrn import LocalResponseNormalization
from keras_cnns.registry import get_model, get_spec, list_aliases, list_models

FORMATS = ("text", "csv", "markdown")
README_START = "<!-- models:start -->"
README_END = "<!-- models:end -->"


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One row of the table: one application of one layer."""
    name: str
    kind: str
    output_shape: Tuple[tuple, ...]   # without the batch axis, one per output
    params: int
    connections: int
    receptive_field: Optional[Tuple[int, int]]   # (height, width); None where unknown


@dataclasses.dataclass(frozen=True)
class Field:
    """Receptive field of a tensor: window (rh, rw) in input pixels, jump (jh, jw) between units."""
    rh: float
    rw: float
    jh: float
    jw: float

    @staticmethod
    def merge(fields):
        return Field(*(max(getattr(f, a) for f in fields) for a in ("rh", "rw", "jh", "jw")))


_UNIT = Field(1, 1, 1, 1)


def analyze(model) -> List[LayerRow]:
    """The rows of `model` (a functional or sequential Keras model), inputs first, in graph order."""
    rows, _ = _walk(model, None)
    return rows


def _functional(model):
    return getattr(model, "_functional", None) or model


def _walk(model, input_fields, count=True):
    graph = _functional(model)
    fields = {}
    for i, tensor in enumerate(graph.inputs):
        fields[id(tensor)] = input_fields[i] if input_fields else _UNIT
    rows, seen = [], {}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            layer = node.operation
            if node.is_input:
                rows.append(LayerRow(layer.name, type(layer).__name__, _shapes(node.output_tensors), 0, 0,
                                     _side(fields[id(node.output_tensors[0])])))
                continue
            ins, outs = node.input_tensors, node.output_tensors
            in_fields = [fields.get(id(t), _UNIT) for t in ins]
            if isinstance(layer, keras.Model):
                inner_rows, out_fields = _walk(layer, in_fields, count)
                connections = sum(r.connections for r in inner_rows)
            else:
                connections = (_connections(layer, [tuple(t.shape) for t in ins], [tuple(t.shape) for t in outs])
                               if count else 0)
                field = _propagate(layer, Field.merge(in_fields), ins[0].shape, outs[0].shape)
                out_fields = [field] * len(outs)
            for tensor, field in zip(outs, out_fields):
                fields[id(tensor)] = field
            uses = seen.get(id(layer), 0)
            seen[id(layer)] = uses + 1
            rows.append(LayerRow(
                layer.name if not uses else f"{layer.name}#{uses + 1}", type(layer).__name__,
                _shapes(outs), count_params(layer) if not uses else 0, int(connections),
                _side(out_fields[0])))
    return rows, [fields.get(id(t), _UNIT) for t in graph.outputs]


def output_fields(model):
    """The receptive :class:`Field` of each output of `model`: window and jump (stride) in input pixels.
    Works on (None, None, C) inputs too (connections, which need sizes, are not counted)."""
    return _walk(model, None, count=False)[1]


def count_params(layer_or_model):
    """Parameters as the papers count them: every weight, trainable or not (LeNet-5's fixed RBF
    prototypes count), except BatchNormalization's moving statistics, which are running averages."""
    weights = {id(w): w for w in layer_or_model.weights}.values()
    return sum(math.prod(w.shape) for w in weights if not _is_moving_statistic(w))


def _is_moving_statistic(weight):
    return re.search(r"moving_(mean|variance)(:\d+)?$", weight.path) is not None


def _shapes(tensors):
    return tuple(tuple(t.shape[1:]) for t in tensors)


def _side(field):
    if field is None or any(v is None or math.isnan(v) for v in (field.rh, field.rw)):
        return None
    return int(field.rh), int(field.rw)


def _pair(value, default):
    if value is None:
        value = default
    if isinstance(value, int):
        return value, value
    value = tuple(value)
    return (value[0], value[0]) if len(value) == 1 else (value[0], value[1])


def _propagate(layer, field, in_shape, out_shape):
    """The receptive field of the layer's output, from its (merged) input field."""
    if len(in_shape) != 4:
        return field   # already a vector: every unit sees what the input saw
    if len(out_shape) != 4:
        # the map collapses: a unit sees the whole window the input map covers
        h, w = in_shape[1], in_shape[2]
        if h is None or w is None:
            return Field(float("nan"), float("nan"), field.jh, field.jw)
        return Field(field.rh + (h - 1) * field.jh, field.rw + (w - 1) * field.jw, field.jh, field.jw)
    kh, kw = _pair(getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None), 1)
    sh, sw = _pair(getattr(layer, "strides", None), 1)
    dh, dw = _pair(getattr(layer, "dilation_rate", None), 1)
    if "Transpose" in type(layer).__name__:
        sh, sw = 1.0 / sh, 1.0 / sw
    return Field(field.rh + (dh * (kh - 1)) * field.jh, field.rw + (dw * (kw - 1)) * field.jw,
                 field.jh * sh, field.jw * sw)


def _positions(shape):
    """Units per channel of an output (the product of the axes between batch and channels)."""
    return math.prod(d or 1 for d in shape[1:-1])


def _numel(shape):
    return math.prod(d or 1 for d in shape[1:])


def _connections(layer, in_shapes, out_shapes):
    one_in = in_shapes[0] if len(in_shapes) == 1 else in_shapes
    one_out = out_shapes[0] if len(out_shapes) == 1 else out_shapes
    if callable(getattr(layer, "count_connections", None)):
        return layer.count_connections(one_in, one_out)
    out, inp = out_shapes[0], in_shapes[0]
    bias = 1 if getattr(layer, "use_bias", False) else 0
    if isinstance(layer, keras.layers.SeparableConv2D):
        k = math.prod(_pair(layer.kernel_size, 1))
        depthwise = k * inp[-1] * layer.depth_multiplier * _positions(out)
        return depthwise + (inp[-1] * layer.depth_multiplier + bias) * _numel(out)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return (math.prod(_pair(layer.kernel_size, 1)) + bias) * _numel(out)
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)) and \
            "Transpose" not in type(layer).__name__:
        per_unit = math.prod(layer.kernel_size) * inp[-1] // getattr(layer, "groups", 1) + bias
        return per_unit * _numel(out)
    if isinstance(layer, keras.layers.Dense):
        return (inp[-1] + bias) * _numel(out)
    if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D,
                          keras.layers.MaxPooling1D, keras.layers.AveragePooling1D,
                          keras.layers.MaxPooling3D, keras.layers.AveragePooling3D)):
        return math.prod(_pair(layer.pool_size, 1) if len(inp) == 4 else tuple(layer.pool_size)) * _numel(out)
    if isinstance(layer, (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D,
                          keras.layers.GlobalAveragePooling1D, keras.layers.GlobalMaxPooling1D)):
        return _numel(inp)
    if isinstance(layer, (keras.layers.BatchNormalization, keras.layers.LayerNormalization)):
        return 2 * _numel(out)
    if isinstance(layer, LocalResponseNormalization):
        return layer.depth * _numel(out)
    if isinstance(layer, (keras.layers.Add, keras.layers.Subtract, keras.layers.Multiply,
                          keras.layers.Average, keras.layers.Maximum, keras.layers.Minimum)):
        return len(in_shapes) * _numel(out)
    if layer.weights:
        return layer.count_params() * _positions(out)
    return 0


# --- tables -------------------------------------------------------------------------------------

def model_table(name, input_shape=None, fmt="text"):
    """The table of a registered model built with its defaults (or `input_shape`), as a string."""
    kwargs = {} if input_shape is None else {"input_shape": tuple(input_shape)}
    model = get_model(name, **kwargs)
    return format_rows(model, analyze(model), fmt)


def parse_input_shape(text):
    """"224,224,3" -> (224, 224, 3); raises ValueError with the expected form."""
    parts = [p.strip() for p in str(text).replace("x", ",").split(",")]
    if len(parts) != 3 or not all(re.fullmatch(r"[1-9][0-9]*", p) for p in parts):
        raise ValueError(f"--input-shape must be three positive integers H,W,C (e.g. 32,32,1). Received: {text!r}")
    return tuple(int(p) for p in parts)


def _shape_text(shapes):
    return ", ".join("x".join("?" if d is None else str(d) for d in s) for s in shapes)


def _field_text(field):
    return "-" if field is None else f"{field[0]}x{field[1]}"


def format_rows(model, rows, fmt="text"):
    """Rows plus totals in one of FORMATS."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}. Received: fmt={fmt!r}")
    header = ["layer", "type", "output shape", "parameters", "connections", "receptive field"]
    total_params = count_params(model)
    trainable = sum(math.prod(v.shape) for v in model.trainable_weights)
    total_connections = sum(r.connections for r in rows)
    if fmt == "csv":
        return _csv(header, [[r.name, r.kind, _shape_text(r.output_shape).replace(", ", " + "), r.params,
                              r.connections, _field_text(r.receptive_field)] for r in rows]
                    + [["total", "", "", total_params, total_connections, ""]])
    table = [[r.name, r.kind, _shape_text(r.output_shape), f"{r.params:,}", f"{r.connections:,}",
              _field_text(r.receptive_field)] for r in rows]
    table.append(["total", "", "", f"{total_params:,}", f"{total_connections:,}", ""])
    footer = (f"{model.name}: {total_params:,} parameters ({trainable:,} trainable, "
              f"{total_params - trainable:,} fixed; BatchNorm moving statistics not counted), "
              f"{total_connections:,} connections")
    if fmt == "markdown":
        return _markdown(header, table, right=(3, 4)) + "\n\n" + footer + "\n"
    widths = [max(len(str(row[i])) for row in [header] + table) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.rjust(w) if i in (3, 4) else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [line(header), rule] + [line(r) for r in table[:-1]] + [rule, line(table[-1])]
    return "\n".join(body) + "\n" + footer + "\n"


def _csv(header, table):
    """RFC 4180 CSV through csv.writer: fields with commas, quotes (a paper's title) or newlines are quoted
    and their quotes doubled."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(table)
    return out.getvalue()


def _markdown(header, table, right=()):
    align = ["---:" if i in right else "---" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table]
    return "\n".join(lines)


ZOO_TASKS = ("classification", "segmentation", "detection")
"""The image models the README's zoo table lists (not the retrieval autoencoders, which take vectors)."""


def _input_text(shape):
    """224x224x3; HxWx3 for a fully convolutional model that takes any height and width."""
    h, w, c = shape
    return f"HxWx{c}" if h is None else f"{h}x{w}x{c}"


@contextlib.contextmanager
def shapes_only_model(name, **kwargs):
    """get_model(name, **kwargs) with its weights' shapes but no values, for counting and listing: built in
    keras.StatelessScope(initialize_variables=False), which skips the random draws (VGG-16's 138 million were
    most of its build time); on leaving, keras.backend.clear_session() drops the uninitialised variables."""
    with keras.StatelessScope(initialize_variables=False):
        model = get_model(name, **kwargs)
    try:
        yield model
    finally:
        keras.backend.clear_session()


def zoo_rows():
    """(name, paper, input size, parameters, deviations) of every registered model, built with its
    defaults (full size, the builder's default number of classes); the counts need only the weights' shapes
    (:func:`shapes_only_model`)."""
    rows = []
    for name in list_models():
        spec = get_spec(name)
        if spec.task not in ZOO_TASKS:
            continue
        with shapes_only_model(name) as model:
            rows.append((name, spec.paper, _input_text(spec.input_shape), count_params(model), spec.deviations))
    return rows


def zoo_table(fmt="markdown"):
    """The README's table of every registered model (and the aliases)."""
    rows = zoo_rows()
    header = ["model", "paper", "input", "parameters", "differs from the paper"]
    aliases = ", ".join(f"`{a}` -> `{t}`" for a, t in sorted(list_aliases().items()))
    if fmt == "csv":
        return _csv(header, rows)
    table = [[f"`{n}`", p, i, f"{c:,}", d] for n, p, i, c, d in rows]
    if fmt == "markdown":
        text = _markdown(header, table, right=(3,))
        return text + (f"\n\nAliases: {aliases}.\n" if aliases else "\n")
    return format_plain(header, table) + (f"aliases: {aliases}\n" if aliases else "")


def format_plain(header, table):
    widths = [max(len(str(row[i])) for row in [header] + table) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()
                     for row in [header] + table) + "\n"


def readme_section(path):
    """The text between the zoo markers in the README at `path` (ValueError if they are missing)."""
    with open(path) as f:
        text = f.read()
    start, end = _markers(text, path)
    return text[start:end]


def _markers(text, path):
    lines = text.splitlines(keepends=True)
    starts = [i for i, ln in enumerate(lines) if ln.strip() == README_START]
    ends = [i for i, ln in enumerate(lines) if ln.strip() == README_END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(f"{path} must contain the line {README_START} followed later by the line {README_END} "
                         f"(once each). Received: {len(starts)} start and {len(ends)} end markers")
    start = sum(len(ln) for ln in lines[:starts[0] + 1])
    end = sum(len(ln) for ln in lines[:ends[0]])
    return start, end


def write_readme(path, table=None):
    """Replaces the text between the zoo markers of the README at `path` with :func:`zoo_table`."""
    with open(path) as f:
        text = f.read()
    start, end = _markers(text, path)
    table = zoo_table("markdown") if table is None else table
    with open(path, "w") as f:
        f.write(text[:start] + table + text[end:])
    return table
