"""Score maps from any classifier: its fully connected layers rewritten as convolutions, so that a larger
image gives a map of class scores in one pass (the source article's NIN section; Lin, Chen, Yan 2013,
"Network In Network"; Long, Shelhamer, Darrell 2015, "Fully Convolutional Networks for Semantic
Segmentation", section 3.1).

:func:`convolutionalize` re-applies a trained classifier's graph, layer by layer, on a (None, None, C)
input. Every layer is cloned from its config with its weights, except:

* Flatten + the first Dense: a k x k "valid" convolution over the last feature map, its kernel the
  Dense kernel reshaped to (k, k, C, units), which is the order Flatten lays a channels-last map out
  in (row, column, channel); every later Dense: a 1x1 convolution. Names are kept (fc6, fc7,
  predictions), so the feature end points still find them;
* Dropout: dropped (the identity at inference);
* global average (max) pooling, by ``global_pool``: "window" (the default) turns it into a stride-1
  average (max) pool over the window the trained input gives (7x7 for GoogLeNet and ResNet-50 at
  224), so every cell is the classifier applied to one input crop of the trained size; "drop" removes
  it, giving one score vector per position of the last feature map (for NIN, exactly its class maps)
  whose mean over the trained window is the classifier's pre-activation output;
* the rest (LeNet-5's Euclidean RBF units, softmax, batch norm, LRN, the AlexNet tower split) apply per
  position unchanged: a softmax acts on the last (channel) axis, RBF distances are taken per position.

Geometry (:class:`MapGeometry`, :func:`map_geometry`): with "window", cell (i, j) classifies the crop of
the trained size T whose top-left corner is (i * stride, j * stride), centred at offset + stride * (i, j)
with offset = (T - 1) / 2. The value equals the classifier on that crop exactly when the trunk has no
padding (the cell's receptive field is then the crop itself: LeNet-5). With "same" padding inside the
network the classifier on a lone crop sees zeros past the crop's borders at every padded layer, where
the whole image has real pixels and real activations: the cell then depends on a wider window (its
receptive field) and agrees with the crop only approximately. What holds exactly for every family is
the sliding-window statement: the map is the classifier's head applied to every trained-size window
of the trunk's feature map of the whole image. For the grid to line up with the crops of "same"-padded
nets, use sizes T + n * stride (stride-2 "same" layers pad according to the size's parity).
"""

import dataclasses
from typing import Optional, Tuple

import keras
import numpy as np

GLOBAL_POOLS = ("window", "drop")

# Output stride of every registered classifier, by registry name pattern (checked against the graph by
# the tests; docs/scoremaps.md tabulates them with offsets and receptive fields).
MAP_STRIDES = {
    "lenet5": 4, "lenet5_modern": 4,            # two 2x2/2 subsamplings
    "alexnet": 32,                              # conv1 /4, three 3x3/2 max-pools
    "vgg*": 32,                                 # five 2x2/2 max-pools (vgg_cifar included)
    "nin": 32, "nin_cifar": 4,                  # conv 11x11/4 + three pools / two pools
    "resnet18": 32, "resnet34": 32, "resnet50": 32, "resnet101": 32, "resnet152": 32,
    "resnet20": 4, "resnet32": 4, "resnet44": 4, "resnet56": 4, "resnet110": 4,   # CIFAR: stages 2, 3 stride 2
    "googlenet": 32,                            # conv1, pool1..pool4
}


def expected_stride(name):
    """The output stride MAP_STRIDES gives the registry model `name` (exact names before patterns)."""
    import fnmatch

    if name in MAP_STRIDES:
        return MAP_STRIDES[name]
    for pattern, stride in MAP_STRIDES.items():
        if fnmatch.fnmatch(name, pattern):
            return stride
    raise KeyError(f"No output stride recorded for {name!r}; add it to MAP_STRIDES.")


def convolutionalize(model, *, global_pool="window", input_size=None, name=None):
    """A new, fully convolutional model computing `model`'s classifier at every position.

    Args:
      model: a classifier of the zoo (or any functional/sequential Keras model built from standard and
        keras_cnns layers) with one image input. A model with several outputs (GoogLeNet's training
        form) is reduced to its "predictions" output first.
      global_pool: "window" or "drop", what becomes of global pooling (see the module docstring).
      input_size: (height, width) the model was trained at; needed only for "window" when the model's
        own input is (None, None, C).
      name: the new model's name (default "<name>_conv").

    Returns:
      a keras.Model with input (None, None, C) and output (batch, rows, cols, classes). At the trained
      input size the map is 1x1 (with "window") and equals the classifier's output.
    """
    if global_pool not in GLOBAL_POOLS:
        raise ValueError(f"convolutionalize: global_pool must be one of {GLOBAL_POOLS}. "
                         f"Received: global_pool={global_pool!r}")
    graph = _main_graph(model)
    source_input = graph.inputs[0]
    if len(source_input.shape) != 4:
        raise ValueError(f"convolutionalize: {model.name} does not take images (batch, H, W, C). "
                         f"Received: input shape {tuple(source_input.shape)}")
    trained = _trained_size(source_input, input_size, model.name)
    image = keras.Input((None, None, source_input.shape[-1]), name=source_input.name)
    context = _Context(graph=graph, global_pool=global_pool, trained=trained)
    tensors = {id(source_input): image}
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            if node.is_input:
                continue
            sources = list(node.input_tensors)
            inputs = [tensors[id(t)] for t in sources]
            outputs = context.apply(node.operation, sources, inputs, list(node.output_tensors))
            for source, output in zip(node.output_tensors, outputs):
                tensors[id(source)] = output
    output = graph.outputs[0]
    if id(output) in context.flat:
        raise ValueError(f"convolutionalize: {model.name} ends in a flattened vector that no Dense layer "
                         "reads; only a Flatten followed by Dense layers can become convolutions.")
    return keras.Model(image, tensors[id(output)], name=name or f"{model.name}_conv")


def _main_graph(model):
    graph = getattr(model, "_functional", None) or model
    if not hasattr(graph, "_nodes_by_depth"):
        raise ValueError(f"convolutionalize needs a functional or sequential Keras model. "
                         f"Received: {type(model).__name__} {model.name!r}")
    if len(graph.inputs) != 1:
        raise ValueError(f"convolutionalize: {model.name} has {len(graph.inputs)} inputs; give a model "
                         "with one image input.")
    if len(graph.outputs) == 1:
        return graph
    names = {layer.name for layer in graph.layers}
    if "predictions" not in names:
        raise ValueError(f"convolutionalize: {model.name} has {len(graph.outputs)} outputs and none is "
                         "named 'predictions'; give a model with one classifier output.")
    return keras.Model(graph.inputs, graph.get_layer("predictions").output, name=model.name)


def _trained_size(source_input, input_size, model_name):
    own = tuple(source_input.shape[1:3])
    if input_size is not None:
        size = tuple(int(s) for s in (input_size if np.ndim(input_size) else (input_size, input_size)))
        if None not in own and own != size:
            raise ValueError(f"convolutionalize: {model_name} takes {own[0]}x{own[1]} inputs, not the "
                             f"input_size given. Received: input_size={input_size!r}")
        return size
    return None if None in own else own


@dataclasses.dataclass
class _Context:
    """The state of one conversion: which tensors are flattened maps, and the rules per layer."""

    graph: object
    global_pool: str
    trained: Optional[Tuple[int, int]]
    flat: dict = dataclasses.field(default_factory=dict)   # id(source vector) -> (kh, kw, C) it came from

    def apply(self, layer, sources, inputs, outputs):
        if isinstance(layer, keras.Model):
            raise ValueError(f"convolutionalize: nested model {layer.name!r} inside the classifier is not "
                             "supported; rebuild it as one functional graph.")
        if isinstance(layer, keras.layers.Flatten):
            shape = tuple(sources[0].shape[1:])
            if len(shape) != 3 or None in shape:
                raise ValueError(f"convolutionalize: Flatten {layer.name!r} must read a map of known size "
                                 f"(H, W, C). Received: {shape}")
            self.flat[id(outputs[0])] = shape
            return inputs
        if isinstance(layer, keras.layers.Dropout):   # also SpatialDropout*: the identity at inference
            if id(sources[0]) in self.flat:
                self.flat[id(outputs[0])] = self.flat[id(sources[0])]
            return inputs
        if isinstance(layer, keras.layers.Dense) and len(sources[0].shape) == 2:
            return [self._dense(layer, sources[0], inputs[0])]
        if isinstance(layer, (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)):
            return [self._global_pool(layer, sources[0], inputs[0])]
        if any(id(s) in self.flat for s in sources):
            raise ValueError(f"convolutionalize: layer {layer.name!r} ({type(layer).__name__}) reads a "
                             "flattened map; only Dense and Dropout layers may follow Flatten.")
        return _clone(layer, inputs)

    def _dense(self, layer, source, x):
        kernel, *bias = layer.get_weights()
        kh, kw, channels = self.flat.get(id(source), (1, 1, kernel.shape[0]))
        if kh * kw * channels != kernel.shape[0] or x.shape[-1] != channels:
            raise ValueError(f"convolutionalize: Dense {layer.name!r} has {kernel.shape[0]} inputs, which do not "
                             f"come from the {kh}x{kw}x{x.shape[-1]} map before it.")
        conv = keras.layers.Conv2D(layer.units, (kh, kw), padding="valid", activation=layer.activation,
                                   use_bias=layer.use_bias, kernel_initializer="zeros", dtype=layer.dtype_policy,
                                   name=layer.name)
        y = conv(x)
        # Flatten lays (H, W, C) out row by row, column by column, channel fastest: the kernel's order.
        _set_weights(conv, [kernel.reshape(kh, kw, channels, layer.units), *bias], layer)
        return y

    def _global_pool(self, layer, source, x):
        if self.global_pool == "drop":
            return x
        window = self._trained_window(source)
        pool = (keras.layers.AveragePooling2D if isinstance(layer, keras.layers.GlobalAveragePooling2D)
                else keras.layers.MaxPooling2D)
        return pool(window, strides=1, padding="valid", dtype=layer.dtype_policy, name=layer.name)(x)

    def _trained_window(self, source):
        """(h, w) of the map the global pooling reads at the trained input size."""
        window = tuple(source.shape[1:3])
        if None not in window:
            return window
        if self.trained is None:
            raise ValueError("convolutionalize: the model takes (None, None, C) inputs, so the window of its "
                             "global pooling is unknown: pass input_size=(height, width) it was trained at, "
                             "or global_pool='drop'.")
        trunk = keras.Model(self.graph.inputs, source)
        spec = trunk.compute_output_spec(keras.KerasTensor((1, *self.trained, self.graph.inputs[0].shape[-1])))
        return tuple(int(d) for d in spec.shape[1:3])


def _clone(layer, inputs):
    """The same layer, rebuilt from its config, applied to the new tensors, with the same weights."""
    config = layer.get_config()
    twin = layer.__class__.from_config({**config, **_cheap_initializers(layer, config)})
    y = twin(inputs[0] if len(inputs) == 1 else inputs)
    _set_weights(twin, layer.get_weights(), layer)
    return list(y) if isinstance(y, (list, tuple)) else [y]


def _cheap_initializers(layer, config):
    """Zeros for every initializer the layer keeps as an attribute of the same name: the weights are
    overwritten at once, and drawing 16M random numbers for VGG's fc7 only to discard them is slow."""
    return {key: "zeros" for key, value in config.items()
            if key.endswith("_initializer") and value is not None and hasattr(layer, key)}


def _set_weights(twin, weights, source):
    """Sets the weights, then gives back the source's initializers so the twin's config is the source's."""
    twin.set_weights(weights)
    for key in _cheap_initializers(source, source.get_config()):
        setattr(twin, key, getattr(source, key))


# --------------------------------------------------------------------------------------------- geometry

@dataclasses.dataclass(frozen=True)
class MapGeometry:
    """Where the cells of a score map sit in the input image (pixels; (row, column) pairs).

    Attributes:
      trained_size: the classifier's input size T; with global_pool="window" one cell classifies one
        crop of this size, the crop of cell (i, j) starting at (i * stride, j * stride).
      stride: pixels between neighbouring cells.
      offset: centre of cell (0, 0): (T - 1) / 2 for "window"; for "drop", where the trained input
        gives an n x n map, (T - 1) / 2 - (n - 1) * stride / 2 (the n positions spread evenly about the
        centre, exact for symmetric padding).
      receptive_field: the input window a cell's value depends on. Equal to trained_size when the
        network has no padding: each cell is then exactly the classifier on its crop.
    """

    trained_size: Tuple[int, int]
    stride: Tuple[int, int]
    offset: Tuple[float, float]
    receptive_field: Tuple[int, int]

    @property
    def exact(self):
        """True when every cell equals the classifier applied to its crop (no padding inside)."""
        return tuple(self.receptive_field) == tuple(self.trained_size)

    def centre(self, row, col):
        """(y, x) input pixel at the centre of cell (row, col)."""
        return (self.offset[0] + self.stride[0] * row, self.offset[1] + self.stride[1] * col)

    def to_dict(self):
        return {"trained_size": list(self.trained_size), "stride": list(self.stride),
                "offset": list(self.offset), "receptive_field": list(self.receptive_field),
                "exact": self.exact}


def map_geometry(converted, trained_size):
    """The :class:`MapGeometry` of a model returned by :func:`convolutionalize` for a classifier trained
    at `trained_size` (H, W): stride and receptive field from the layers' kernels and strides (the
    recurrence of keras_cnns.anatomy), offset from the map size at the trained size."""
    from keras_cnns import anatomy

    th, tw = (int(s) for s in trained_size)
    field = anatomy.output_fields(converted)[0]
    stride = (int(field.jh), int(field.jw))
    channels = converted.inputs[0].shape[-1]
    rows, cols = converted.compute_output_spec(keras.KerasTensor((1, th, tw, channels))).shape[1:3]
    offset = ((th - 1) / 2 - (rows - 1) * stride[0] / 2, (tw - 1) / 2 - (cols - 1) * stride[1] / 2)
    return MapGeometry(trained_size=(th, tw), stride=stride, offset=offset,
                       receptive_field=(int(field.rh), int(field.rw)))


def geometry_table(names=None, fmt="markdown"):
    """One row per registered classifier at its default input size: trained size, stride, offset,
    receptive field of a cell and whether cells equal their crops exactly (docs/scoremaps.md)."""
    from keras_cnns.registry import get_model, get_spec, list_models

    rows = []
    for model_name in names or list_models(task="classification"):
        spec = get_spec(model_name)
        size = spec.input_shape[:2]
        converted = convolutionalize(get_model(model_name, input_shape=spec.input_shape))
        g = map_geometry(converted, size)
        rows.append((model_name, f"{size[0]}x{size[1]}", str(g.stride[0]), _number(g.offset[0]),
                     f"{g.receptive_field[0]}x{g.receptive_field[1]}", "yes" if g.exact else "no"))
        keras.backend.clear_session()
    header = ("model", "trained input T", "stride", "offset (T-1)/2", "receptive field of a cell",
              "cell = classifier(crop) exactly")
    if fmt != "markdown":
        return [header] + rows
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(f"`{r[0]}`" if i == 0 else r[i] for i in range(len(r))) + " |" for r in rows]
    return "\n".join(lines)


def _number(value):
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# ----------------------------------------------------------------------------------------- on images

@dataclasses.dataclass
class ScoreMap:
    """The score map of one image.

    Attributes:
      raw: (rows, cols, classes) the converted model's output (probabilities, logits or RBF distances).
      probabilities: (rows, cols, classes), each cell summing to 1.
      pad: (top, left) black pixels added above and left of the image to reach the trained size.
      geometry: the model's MapGeometry (cell centres in the padded image).
    """

    raw: np.ndarray
    probabilities: np.ndarray
    pad: Tuple[int, int]
    geometry: MapGeometry

    def centre(self, row, col):
        """(y, x) of cell (row, col) in the original image's pixel coordinates."""
        y, x = self.geometry.centre(row, col)
        return y - self.pad[0], x - self.pad[1]

    def maxima(self, class_names, output="probabilities", classes=None):
        """Per class (all, or the indices in `classes`): the cell where its probability peaks, as
        [{index, class, probability, row, col, x, y[, distance]}] (x, y in image pixels)."""
        entries = []
        for index in (range(len(class_names)) if classes is None else classes):
            plane = self.probabilities[..., index]
            row, col = np.unravel_index(int(np.argmax(plane)), plane.shape)
            y, x = self.centre(row, col)
            entry = {"index": int(index), "class": class_names[index], "probability": float(plane[row, col]),
                     "row": int(row), "col": int(col), "x": float(x), "y": float(y)}
            if output == "rbf_distances":
                entry["distance"] = float(self.raw[row, col, index])
            entries.append(entry)
        return entries


class ScoreMapper:
    """A loaded classifier (keras_cnns.inference.Predictor of a Keras model) slid over whole images.

    Images are taken at their own scale (one image pixel = one training pixel: no resizing), converted to
    the model's channels and normalised as in training (the model's Preprocessing); an image smaller than
    the trained size is centred on a black canvas of that size first, as the "pad" preprocessing does.
    """

    def __init__(self, predictor, global_pool="window"):
        if getattr(predictor, "model", None) is None:
            raise ValueError(
                f"Score maps need a Keras model (a model directory or .keras file); {predictor.source} is a "
                f"{predictor.kind} artifact. Pass the model it was exported from.")
        self.predictor = predictor
        self.class_names = predictor.class_names
        self.output = predictor.output
        self.trained_size = tuple(predictor.preprocessing.size)
        self.model = convolutionalize(predictor.model, global_pool=global_pool, input_size=self.trained_size)
        self.geometry = map_geometry(self.model, self.trained_size)

    def class_index(self, name):
        """The index of class `name` (exact, else case-insensitive); ValueError listing the classes."""
        if name in self.class_names:
            return self.class_names.index(name)
        folded = [c.casefold() for c in self.class_names]
        if str(name).casefold() in folded:
            return folded.index(str(name).casefold())
        raise ValueError(f"unknown class {name!r}; the model's classes are: "
                         f"{', '.join(repr(c) for c in self.class_names)}.")

    def prepare(self, image):
        """uint8 (H, W, C) -> (float32 [1, H', W', C'] model input, (top, left) padding)."""
        prep = self.predictor.preprocessing
        pixels = np.asarray(prep.convert_channels(np.asarray(image)), np.float32)
        (h, w), (th, tw) = pixels.shape[:2], self.trained_size
        top, left = max(th - h, 0) // 2, max(tw - w, 0) // 2
        if top or left or h < th or w < tw:
            pixels = np.pad(pixels, ((top, max(th - h - top, 0)), (left, max(tw - w - left, 0)), (0, 0)))
        return np.asarray(prep.normalize(pixels), np.float32)[None], (top, left)

    def __call__(self, image):
        """uint8 image (H, W, C), any size -> its :class:`ScoreMap`."""
        x, pad = self.prepare(image)
        raw = np.asarray(self.model(x, training=False))[0]
        probabilities = np.asarray(self.predictor.probabilities(raw), np.float32)
        return ScoreMap(raw=raw, probabilities=probabilities, pad=pad, geometry=self.geometry)


def plot_score_map(image, score_map, class_names, classes=None, path=None, title=None):
    """The image, then one heat map per class (or per index in `classes`) over it, probabilities 0..1,
    each cell drawn as a stride x stride square at its centre; saved as a PNG to `path` if given."""
    from keras_cnns.training.plots import _pyplot

    plt = _pyplot()
    classes = list(range(len(class_names))) if classes is None else list(classes)
    panels = len(classes) + 1
    cols = min(panels, 6)
    rows = -(-panels // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols + 0.8, 2.5 * rows + 0.4), squeeze=False,
                             layout="constrained")   # keeps room for the colour bar
    grey = np.asarray(image)
    grey = grey[..., 0] if grey.shape[-1] == 1 else grey
    sy, sx = score_map.geometry.stride
    top_y, left_x = score_map.centre(0, 0)
    n_rows, n_cols = score_map.probabilities.shape[:2]
    extent = (left_x - sx / 2, left_x + sx * (n_cols - 1) + sx / 2,
              top_y + sy * (n_rows - 1) + sy / 2, top_y - sy / 2)
    axes = axes.ravel()
    axes[0].imshow(grey, cmap="gray" if grey.ndim == 2 else None)
    axes[0].set_title("image", fontsize=9)
    heat = None
    for ax, index in zip(axes[1:], classes):
        plane = score_map.probabilities[..., index]
        ax.imshow(grey, cmap="gray" if grey.ndim == 2 else None, alpha=0.5)
        heat = ax.imshow(plane, cmap="inferno", vmin=0.0, vmax=1.0, alpha=0.65, extent=extent,
                         interpolation="nearest")
        ax.set_xlim(-0.5, grey.shape[1] - 0.5)
        ax.set_ylim(grey.shape[0] - 0.5, -0.5)
        ax.set_title(f"{class_names[index]} (max {plane.max():.2f})", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[panels:]:
        ax.set_visible(False)
    if heat is not None:
        fig.colorbar(heat, ax=list(axes[:panels]), shrink=0.8, label="probability")
    if title:
        fig.suptitle(title, fontsize=10)
    if path:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig


def load(source=None, global_pool="window"):
    """A :class:`ScoreMapper` for any Keras model source keras_cnns.inference.load accepts (default: the
    shipped LeNet-5 trained on Fashion-MNIST)."""
    from keras_cnns import inference

    return ScoreMapper(inference.load(source), global_pool=global_pool)
