"""Export a trained model to SavedModel, TensorFlow Lite or ONNX, with a parity report beside it.

    from keras_cnns import export
    result = export.export_model("saved_models/lenet5-fashion_mnist", "tflite", quantize="int8")
    result["artifact"], result["report"]["top1_agreement"]

Every export goes through the SavedModel (TFLite and ONNX are converted from it), writes the model's
metadata.json beside the artifact (so apps/classify.py and keras_cnns.inference.load can run it) and a
parity report (parity.json, parity.md) measured on the test split of the model's dataset.

A TFLite export also writes the mobile variant in ``mobile/`` (see :mod:`keras_cnns.export.tflite`): uint8
pixels in, probabilities out, labels.txt beside it, in the same quantisation; the parity report measures it
too (``report["mobile"]``). :mod:`keras_cnns.lite` runs it without TensorFlow.
"""

import json
import os
import shutil
import tempfile

import numpy as np

from keras_cnns import inference
from keras_cnns import metadata as metadata_lib
from keras_cnns.export import onnx as onnx_lib
from keras_cnns.export import parity
from keras_cnns.export import tflite as tflite_lib
from keras_cnns.export.savedmodel import export_savedmodel

FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZE_MODES = tflite_lib.QUANTIZE_MODES
ARTIFACT_NAMES = {"savedmodel": "savedmodel", "tflite": "model.tflite", "onnx": "model.onnx"}
EXPORT_ROOT = os.path.join(inference.REPO_ROOT, "build", "exports")


def default_output(predictor, fmt, quantize="none"):
    """build/exports/<model directory name>/<format>[-<quantize>]/ (build/ is not committed)."""
    source = predictor.source
    stem = os.path.basename(os.path.dirname(source) if source.endswith(".keras") else source.rstrip("/"))
    stem = stem.split(" ")[0] or predictor.metadata.get("model", "model")
    if stem == "model":
        stem = predictor.metadata.get("model", "model")
    suffix = fmt if quantize == "none" else f"{fmt}-{quantize}"
    return os.path.join(EXPORT_ROOT, stem, suffix)


def evaluation_images(metadata, preprocessing, n=200, seed=0):
    """(images [n, H, W, C] preprocessed, labels or None, description) from the model's test split.

    Falls back to random images (no labels) when the dataset can't be read here (ImageNet, or a
    data API that is not there)."""
    try:
        from keras_cnns import data

        if metadata.get("task") == "segmentation":
            return _scene_images(metadata, preprocessing, "test", n)
        source = data.load_source(metadata["dataset"])
        ds = data.make_datasets(source, preprocessing=preprocessing, batch_size=n, cache=False)
        images, labels = next(iter(ds.test))
        return np.asarray(images, np.float32)[:n], np.asarray(labels)[:n], f"{source.name} test split"
    except Exception as err:  # noqa: BLE001  (any reason the dataset is unavailable)
        rng = np.random.default_rng(seed)
        h, w = preprocessing.size
        raw = rng.integers(0, 256, size=(n, h, w, preprocessing.channels), dtype=np.uint8)
        images = np.asarray(preprocessing.apply(raw), np.float32)
        return images, None, f"random images (dataset unavailable: {type(err).__name__})"


def calibration_images(metadata, preprocessing, n=100, seed=0):
    """(float32 [n, H, W, C] training images preprocessed as in training, description) for int8."""
    from keras_cnns import data

    if metadata.get("task") == "segmentation":
        images, _, described = _scene_images(metadata, preprocessing, "train", n)
        return images, described
    if not hasattr(data, "representative_images"):
        raise RuntimeError("int8 calibration needs keras_cnns.data.representative_images, which is not "
                           "available in this checkout.")
    source = data.load_source(metadata["dataset"])
    images = np.asarray(data.representative_images(source, preprocessing, n=n, seed=seed), np.float32)
    return images, f"{len(images)} {source.name} training images"


def _scene_images(metadata, preprocessing, split, n):
    """(images, masks, description) of a segmentation model's dataset split, preprocessed as in training."""
    from keras_cnns.data.segmentation import load_segmentation, segmentation_dataset

    if metadata["dataset"] == "fashion_mnist_scenes":
        source = load_segmentation(metadata["dataset"], counts={split: n})
    else:
        source = load_segmentation(metadata["dataset"])
    images, masks = next(iter(segmentation_dataset(source, split, preprocessing, batch_size=n)))
    return np.asarray(images, np.float32), np.asarray(masks), f"{source.name} {split} split"


def export_model(source, fmt, *, quantize="none", calibration=100, output=None, weights=None,
                 parity_images=200, uint8_endpoint=True, representative_images=None, test_images=None,
                 mobile=True):
    """Exports `source` (anything :func:`keras_cnns.inference.load` takes) to `fmt`.

    Args:
      fmt: "savedmodel", "tflite" or "onnx".
      quantize: TFLite only: "none", "float16", "dynamic" or "int8".
      calibration: how many training images calibrate int8.
      output: directory for the artifact, metadata.json and the parity report.
      weights: as for inference.load (e.g. "imagenet" with a registry name).
      parity_images: how many test images the parity report uses.
      uint8_endpoint: SavedModel: add the uint8-in, probabilities-out signature "classify_images".
      representative_images / test_images: override the data (float32 preprocessed images; test_images
        may be a (images, labels) pair); for models whose dataset is not readable here.
      mobile: TFLite: also write the mobile variant in <output>/mobile/.

    Returns:
      {"artifact": path, "output": directory, "report": the parity report dict, "mobile": the mobile
      variant's .tflite path or None}.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}. Received: format={fmt!r}")
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {QUANTIZE_MODES}. Received: quantize={quantize!r}")
    if quantize != "none" and fmt != "tflite":
        raise ValueError(f"quantize applies to tflite only. Received: format={fmt!r}, quantize={quantize!r}")
    reference = inference.load(source, weights=weights)
    if reference.kind != "keras":
        raise ValueError(f"Export starts from a Keras model (.keras or a model directory). "
                         f"Received: a {reference.kind} model ({reference.source}).")
    meta = reference.metadata
    prep = reference.preprocessing
    if meta.get("task") == "detection":
        return _export_detector(reference, fmt, quantize, output or default_output(reference, fmt, quantize),
                                uint8_endpoint, test_images)
    out = output or default_output(reference, fmt, quantize)
    os.makedirs(out, exist_ok=True)
    artifact = os.path.join(out, ARTIFACT_NAMES[fmt])
    if os.path.isdir(artifact):
        shutil.rmtree(artifact)

    if test_images is not None:
        images, labels = test_images if isinstance(test_images, tuple) else (test_images, None)
        images, described = np.asarray(images, np.float32)[:parity_images], "given images"
        labels = None if labels is None else np.asarray(labels)[:parity_images]
    else:
        images, labels, described = evaluation_images(meta, prep, n=parity_images)

    extra, mobile_runner = {}, None
    # The mobile variant is a classifier's (fixed-size pixels in, probabilities out); an FCN's .tflite
    # already takes any size.
    mobile = mobile and fmt == "tflite" and meta.get("task", "classification") == "classification"
    with tempfile.TemporaryDirectory() as tmp:
        saved = artifact if fmt == "savedmodel" else os.path.join(tmp, "savedmodel")
        export_savedmodel(reference.model, saved, preprocessing=prep, output=reference.output,
                          uint8_endpoint=uint8_endpoint and fmt == "savedmodel", mobile_endpoint=mobile)
        exported_meta = dict(meta, export={"format": fmt, "quantize": quantize,
                                           "artifact": os.path.basename(artifact)})
        metadata_lib.write(out, exported_meta)
        if fmt == "savedmodel":
            runner = inference.SavedModelPredictor(artifact, exported_meta)
            converter, runtime = "keras.export.ExportArchive", "TensorFlow"
        elif fmt == "tflite":
            rep = None
            if quantize == "int8":
                if representative_images is not None:
                    rep, extra["calibration"] = (np.asarray(representative_images, np.float32)[:calibration],
                                                 f"{min(calibration, len(representative_images))} given images")
                else:
                    rep, extra["calibration"] = calibration_images(meta, prep, n=calibration)
            tflite_lib.convert(saved, artifact, quantize=quantize, representative_images=rep)
            runner = inference.TFLitePredictor(artifact, exported_meta)
            extra["float_ops"] = tflite_lib.float_ops(runner) if quantize == "int8" else None
            converter, runtime = "TFLiteConverter.from_saved_model", "LiteRT interpreter"
            if mobile:
                mobile_dir = os.path.join(out, tflite_lib.MOBILE_DIR)
                path = tflite_lib.write_mobile(saved, mobile_dir, exported_meta, quantize=quantize,
                                               representative_images=rep)
                mobile_runner = inference.TFLitePredictor(path, metadata_lib.read(mobile_dir))
        else:
            artifact, converter = onnx_lib.convert(reference.model, saved, artifact)
            runner = onnx_lib.OnnxPredictor(artifact)
            runtime = "onnxruntime"

    report = parity.measure(reference, runner.predict, images, labels, quantize=quantize)
    h, w = prep.size
    latency = (runner.latency_ms((h, w, prep.channels)) if fmt == "onnx" else runner.latency_ms())
    keras_file = reference.source if os.path.exists(reference.source) else None
    report.update(extra, model=meta.get("model"), dataset=meta.get("dataset"), format=fmt, quantize=quantize,
                  artifact=artifact, converter=converter, runtime=runtime, data=described,
                  size_bytes=parity.size_bytes(artifact),
                  keras_size_bytes=parity.size_bytes(keras_file) if keras_file else 0,
                  latency_ms=latency, keras_latency_ms=reference.latency_ms())
    if mobile_runner is not None:
        report["mobile"] = _mobile_parity(reference, mobile_runner, images, labels, quantize, out)
    parity.write(out, report)
    return {"artifact": artifact, "output": out, "report": report,
            "mobile": mobile_runner.source if mobile_runner else None}


def _mobile_parity(reference, runner, images, labels, quantize, out):
    """The mobile variant against the Keras model on the same test images, given as the pixels they were
    normalised from."""
    prep = reference.preprocessing
    report = parity.measure(reference, lambda x: runner.predict(tflite_lib.to_pixels(prep, x)), images, labels,
                            quantize=quantize, candidate_probabilities=True)
    report.update(artifact=os.path.relpath(runner.source, out), size_bytes=parity.size_bytes(runner.source),
                  latency_ms=runner.latency_ms(),
                  float_ops=tflite_lib.float_ops(runner) if quantize == "int8" else None)
    return report


def _export_detector(reference, fmt, quantize, out, uint8_endpoint, test_images=None, n=16):
    """A Faster R-CNN's inference graph (image in; boxes, classes, scores out; NMS inside) as a SavedModel, with a
    parity report on `n` test scenes: the largest box and score differences and whether every image keeps its
    classes. TFLite: converted with the built-in ops only; when an op of the graph is not one of them the error
    names it (CombinedNonMaxSuppression: TFLite's detectors use the custom TFLite_Detection_PostProcess op)."""
    if fmt == "onnx" or quantize != "none":
        raise ValueError(f"A detector exports to savedmodel (and tflite where the ops allow), unquantised. "
                         f"Received: format={fmt!r}, quantize={quantize!r}")
    os.makedirs(out, exist_ok=True)
    artifact = os.path.join(out, ARTIFACT_NAMES[fmt])
    if os.path.isdir(artifact):
        shutil.rmtree(artifact)
    meta = dict(reference.metadata, export={"format": fmt, "quantize": quantize,
                                            "artifact": os.path.basename(artifact)})
    with tempfile.TemporaryDirectory() as tmp:
        saved = artifact if fmt == "savedmodel" else os.path.join(tmp, "savedmodel")
        export_savedmodel(reference.model, saved, preprocessing=reference.preprocessing, output="detections",
                          uint8_endpoint=uint8_endpoint)
        if fmt == "tflite":
            try:
                tflite_lib.convert(saved, artifact)
            except Exception as err:  # the converter's ConverterError lists the ops it lacks
                blocked = tflite_lib.unsupported_ops(str(err))
                raise ValueError(
                    f"{meta.get('model')}: TFLite cannot hold this detector with its built-in ops: "
                    f"{', '.join(blocked) or first_error_line(err)} "
                    "(non-maximum suppression and crop-and-resize run in TensorFlow, not in TFLite's builtins). "
                    "Export --format savedmodel, which detect.py runs.") from None
    metadata_lib.write(out, meta)
    if test_images is None:
        from keras_cnns.data import scenes
        images = np.asarray(reference.preprocessing.apply(scenes.generate("test", n).images), np.float32)
    else:
        images = np.asarray(test_images[0] if isinstance(test_images, tuple) else test_images, np.float32)[:n]
    runner = inference.SavedModelPredictor(artifact, meta)
    ours, theirs = reference.outputs(images), runner.outputs(images)
    same_counts = bool(np.array_equal(ours["num_detections"], theirs["num_detections"]))
    report = {"model": meta.get("model"), "format": fmt, "artifact": artifact, "images": int(len(images)),
              "same_detections": same_counts and bool(np.array_equal(ours["classes"], theirs["classes"])),
              "max_abs_box_difference": float(np.max(np.abs(ours["boxes"] - theirs["boxes"]), initial=0.0)),
              "max_abs_score_difference": float(np.max(np.abs(ours["scores"] - theirs["scores"]), initial=0.0)),
              "size_bytes": parity.size_bytes(artifact)}
    with open(os.path.join(out, "parity.json"), "w") as f:
        json.dump(report, f, indent=2)
    return {"artifact": artifact, "output": out, "report": report, "mobile": None}


def first_error_line(err):
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
