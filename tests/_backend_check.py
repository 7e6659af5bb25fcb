"""Run by tests/test_backends.py under KERAS_BACKEND=jax or torch (the backend is fixed when keras is imported,
so each backend needs its own interpreter), and under TensorFlow with its oneDNN kernels on:

    python tests/_backend_check.py compare DIR NAME...   # load DIR/NAME.weights.h5, print max |ours - DIR/NAME.npz|
                                                         # and what get_model("frcnn_resnet_small") says
    python tests/_backend_check.py train                  # LeNet-5 (the paper's) on 512 Fashion-MNIST images

Prints one line `BACKEND_CHECK {json}`.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_cnns import get_model, get_spec  # noqa: E402


def compare(directory, names):
    out = {}
    for name in names:
        with np.load(os.path.join(directory, name + ".npz")) as f:
            x, expected, kwargs = f["x"], f["y"], json.loads(str(f["kwargs"]))
        model = get_model(name, **kwargs)
        model.load_weights(os.path.join(directory, name + ".weights.h5"))
        y = keras.ops.convert_to_numpy(model(x, training=False))
        out[name] = {"max_abs_diff": float(np.max(np.abs(y - expected))), "scale": float(np.max(np.abs(expected)))}
    try:
        get_model("frcnn_resnet_small")
        out["frcnn_refusal"] = None
    except ValueError as e:
        out["frcnn_refusal"] = str(e)
    return out


def train():
    from keras_cnns import data
    from keras_cnns.losses import loss_and_metric

    spec = get_spec("lenet5")
    (x, y) = data.load_source("fashion_mnist").arrays("train")
    x = np.pad(x[:512].astype("float32") / 255.0, [(0, 0), (2, 2), (2, 2), (0, 0)])  # 28x28 -> LeNet-5's 32x32
    keras.utils.set_random_seed(0)
    model = get_model("lenet5")
    loss, metric = loss_and_metric(spec.output)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, metrics=[metric])
    history = model.fit(x, y[:512], batch_size=64, epochs=4, verbose=0)
    return {"loss": [float(v) for v in history.history["loss"]]}


if __name__ == "__main__":
    result = compare(sys.argv[2], sys.argv[3:]) if sys.argv[1] == "compare" else train()
    if keras.backend.backend() == "tensorflow":  # which CPU kernels ran: TensorFlow's oneDNN or its Eigen ones
        from keras_cnns.training.fit import onednn_enabled
        result["onednn"] = onednn_enabled()
    print("BACKEND_CHECK " + json.dumps({"backend": keras.backend.backend(), **result}), flush=True)
