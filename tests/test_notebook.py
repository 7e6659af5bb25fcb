"""notebooks/quickstart.ipynb runs end to end in a Jupyter kernel: get_model, the package's tf.data pipelines,
model.compile and model.fit with Keras callbacks, two inline plots, classify, TFLite export, then fit()."""

import os

import nbformat
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quickstart_notebook_executes_end_to_end():
    path = os.path.join(ROOT, "notebooks", "quickstart.ipynb")
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")
    for step in ("keras_cnns.get_model(", "data.make_datasets(", "model.compile(", "model.fit(",
                 "keras.callbacks.", "inference.load(", "export.export_model("):
        assert step in source, step
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "rbf_distances" in text and "val_accuracy" in text and "model.tflite" in text
    assert "'probability'" in text and "accuracy" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2
