"""Keras model -> ONNX, through tf2onnx (from the SavedModel's serving signature), or Keras' own
``model.export(format="onnx")`` when tf2onnx is missing or fails. Both need the ``onnx`` package;
running the result (for the parity report) needs ``onnxruntime``.
"""

import importlib.util

import numpy as np

OPSET = 17


class OnnxUnavailable(RuntimeError):
    """Neither converter works here; the message says what to install."""


def convert(model, savedmodel_dir, path):
    """Writes `path`; returns (path, converter used). Tries tf2onnx, then Keras' exporter."""
    errors = []
    if importlib.util.find_spec("tf2onnx") is not None:
        try:
            _tf2onnx_cli(savedmodel_dir, path)
            return path, "tf2onnx"
        except Exception as err:  # noqa: BLE001  (try the next converter, report both)
            errors.append(f"tf2onnx: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    else:
        errors.append("tf2onnx: not installed")
    if importlib.util.find_spec("onnx") is None:
        errors.append("keras export: the onnx package is not installed")
    else:
        try:
            model.export(path, format="onnx", verbose=False)
            return path, "keras"
        except Exception as err:  # noqa: BLE001
            errors.append(f"keras export: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
    raise OnnxUnavailable("ONNX export failed (" + "; ".join(errors) + "). Install the pinned onnx, "
                          "onnxruntime and tf2onnx from requirements.txt, or export to savedmodel/tflite.")


def _tf2onnx_cli(savedmodel_dir, path):
    import subprocess
    import sys

    """tf2onnx's Python API has no SavedModel entry point: its command line does."""
    done = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", savedmodel_dir,
                           "--signature_def", "serving_default", "--opset", str(OPSET), "--output", path],
                          capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if "Error" in line] or done.stderr.splitlines()[-1:]
        raise RuntimeError(lines[-1] if lines else f"exit code {done.returncode}")


class OnnxPredictor:
    """Runs an .onnx file with onnxruntime on the CPU: preprocessed float32 [B, H, W, C] -> output."""

    def __init__(self, path):
        if importlib.util.find_spec("onnxruntime") is None:
            raise OnnxUnavailable("running ONNX needs onnxruntime (pinned in requirements.txt).")
        import onnxruntime

        self.session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, inputs):
        return self.session.run(None, {self.input_name: np.asarray(inputs, np.float32)})[0]

    def latency_ms(self, shape, repeats=20):
        from keras_cnns.inference import median_latency_ms
        return median_latency_ms(self.predict, shape, repeats)
