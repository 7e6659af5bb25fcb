"""Named feature maps of every backbone, through one helper.

Each family declares its end points once (``register_endpoints``) as (end point, layer-name pattern)
pairs; the last layer whose name matches a pattern is that end point. Names come from the loops that
build the graphs, so they are stable, and they survive a .keras round trip, so a loaded model works too.

    >>> extractor = keras_cnns.feature_extractor(keras_cnns.get_model("resnet50", include_top=False))
    >>> extractor(images)["conv4"].shape   # (batch, 14, 14, 1024)

Detection (conv1..conv4 of a ResNet), segmentation (VGG block3..block5) and retrieval (fc7) build on
this.
"""

import re

import keras

_ENDPOINTS = {}


def register_endpoints(family, endpoints):
    """Declares a family's end points: a list of (name, layer-name regex), shallow to deep."""
    if family in _ENDPOINTS:
        raise ValueError(f"End points of family {family!r} are already registered.")
    _ENDPOINTS[family] = [(name, re.compile(pattern)) for name, pattern in endpoints]


def feature_layers(model):
    """{end point: layer name} for `model`, in network order.

    The family is the registry spec's when the model carries a registry name (as get_model and fit build
    them) and that family declares end points; otherwise (a renamed model, an FCN over a VGG trunk) the
    family whose end points match the most layers. End points absent from this model (fc6 with
    include_top=False) are left out.
    """
    from keras_cnns.registry import get_spec, load_families

    load_families()  # the families declare their end points when their modules load
    names = [layer.name for layer in model.layers]
    try:
        family = get_spec(model.name).family
    except ValueError:
        family = None
    candidates = [_ENDPOINTS[family]] if family in _ENDPOINTS else list(_ENDPOINTS.values())
    best = {}
    for endpoints in candidates:
        found = {}
        for point, pattern in endpoints:
            matches = [n for n in names if pattern.fullmatch(n)]
            if matches:
                found[point] = matches[-1]
        if len(found) > len(best):
            best = found
    if not best:
        raise ValueError(
            f"Model {model.name!r} has no known feature end points; feature maps are defined for the "
            f"families {sorted(_ENDPOINTS)} built by keras_cnns.get_model.")
    return best


def feature_extractor(model, endpoints=None):
    """A Model with the same input whose output is {end point: tensor}.

    Args:
      model: a model built by keras_cnns (or loaded from its .keras file).
      endpoints: names to keep (default: all the model has). An unknown name raises ValueError
        listing the available ones.
    """
    available = feature_layers(model)
    if endpoints is None:
        endpoints = list(available)
    missing = [e for e in endpoints if e not in available]
    if missing:
        raise ValueError(f"{model.name} has no end point(s) {missing}. Available: {list(available)}")
    outputs = {e: model.get_layer(available[e]).output for e in endpoints}
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=f"{model.name}_features")
