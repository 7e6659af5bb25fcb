"""The parity report written beside every exported artifact: does the export compute what the Keras
model computes? Max absolute difference of the outputs and top-1 agreement on N test images, accuracy of
both when labels are known, file size and single-image latency. ``parity.json`` + ``parity.md``.
"""

import json
import os

import numpy as np

from keras_cnns.outputs import looks_like_probabilities

# quantize mode -> (minimum top-1 agreement, maximum |difference| of the probabilities or None,
#                   maximum accuracy lost in points or None)
TARGETS = {
    "none": (1.0, 1e-4, None),
    "float16": (0.999, None, None),
    "dynamic": (0.99, None, 1.0),
    "int8": (0.99, None, 1.0),
}


def measure(reference, candidate_predict, images, labels=None, *, quantize="none", candidate_probabilities=False):
    """Compares `candidate_predict` (preprocessed float32 batch -> raw output) with the Keras `reference`
    Predictor on `images`; returns the report's numbers (without size and latency). For a segmentation
    model the top-1 agreement and accuracy are per pixel (labels are masks).

    candidate_probabilities: the candidate returns probabilities whatever the model's raw output is (the
    mobile variant); its raw difference is then not measured."""
    from keras_cnns.progress import Progress

    ref_batches, cand_batches = [], []
    with Progress(len(images), "Parity: the Keras model and the export on the test images") as bar:
        for i in range(0, len(images), 64):
            batch = images[i:i + 64]
            ref_batches.append(reference.predict(batch))
            cand_batches.append(np.asarray(candidate_predict(batch)).reshape(ref_batches[-1].shape))
            bar.add(len(batch))
    ref_raw, cand_raw = np.concatenate(ref_batches), np.concatenate(cand_batches)
    if reference.output == "probabilities" and looks_like_probabilities(ref_raw):
        ref_p, cand_p = ref_raw, cand_raw  # a softmax head: compare its outputs as they are
    else:
        ref_p = reference.probabilities(ref_raw)
        cand_p = cand_raw if candidate_probabilities else reference.probabilities(cand_raw)
    ref_top, cand_top = ref_p.argmax(-1).reshape(-1), cand_p.argmax(-1).reshape(-1)  # per image or per pixel
    report = {
        "n_images": int(len(images)),
        "max_abs_diff": float(np.max(np.abs(ref_p - cand_p))),
        "top1_agreement": float(np.mean(ref_top == cand_top)),
    }
    if not candidate_probabilities:
        report["max_abs_diff_raw"] = float(np.max(np.abs(ref_raw - cand_raw)))
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        report["accuracy_keras"] = float(np.mean(ref_top == labels))
        report["accuracy_export"] = float(np.mean(cand_top == labels))
        report["accuracy_drop_points"] = 100.0 * (report["accuracy_keras"] - report["accuracy_export"])
    agreement, max_diff, max_drop = TARGETS[quantize]
    target = [f"top-1 agreement >= {agreement:.1%}"]
    met = report["top1_agreement"] >= agreement
    if max_diff is not None:
        target.append(f"max |diff| <= {max_diff:g}")
        met = met and report["max_abs_diff"] <= max_diff
    if max_drop is not None and labels is not None:
        target.append(f"accuracy lost <= {max_drop:g} point")
        met = met and report["accuracy_drop_points"] <= max_drop
    report["target"] = ", ".join(target)
    report["meets_target"] = bool(met)
    return report


def size_bytes(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)


def write(directory, report):
    """Writes parity.json and parity.md in `directory`; returns their paths."""
    json_path = os.path.join(directory, "parity.json")
    with open(json_path, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    md_path = os.path.join(directory, "parity.md")
    with open(md_path, "w") as f:
        f.write(markdown(report))
    return json_path, md_path


def markdown(report):
    r = report
    lines = [f"# Export parity: {r['model']} -> {r['format']} ({r['quantize']})", "",
             "| measure | value |", "|---|---|",
             f"| artifact | `{os.path.basename(r['artifact'])}` ({r['converter']}) |",
             f"| size | {r['size_bytes'] / 1e6:.3f} MB (Keras file {r['keras_size_bytes'] / 1e6:.3f} MB) |",
             f"| test images | {r['n_images']} ({r['data']}) |",
             f"| top-1 agreement with Keras | {r['top1_agreement']:.2%} |",
             f"| max abs difference (probabilities) | {r['max_abs_diff']:.3g} |",
             f"| max abs difference (raw output) | {r['max_abs_diff_raw']:.3g} |"]
    if "accuracy_keras" in r:
        lines.append(f"| accuracy Keras / export | {r['accuracy_keras']:.2%} / {r['accuracy_export']:.2%} "
                     f"({r['accuracy_drop_points']:+.2f} points lost) |")
    lines.append(f"| single-image latency | {r['latency_ms']:.2f} ms ({r['runtime']}); Keras "
                 f"{r['keras_latency_ms']:.2f} ms |")
    if r.get("float_ops") is not None:
        lines.append(f"| ops left in float32 | {', '.join(r['float_ops']) or 'none'} |")
    if r.get("calibration"):
        lines.append(f"| int8 calibration | {r['calibration']} |")
    lines.append(f"| target | {r['target']}: {'met' if r['meets_target'] else '**NOT met**'} |")
    m = r.get("mobile")
    if m:
        lines.append(f"| mobile variant (uint8 pixels in, probabilities out) | `{m['artifact']}`: top-1 agreement "
                     f"{m['top1_agreement']:.2%}, max abs difference {m['max_abs_diff']:.3g}, "
                     f"{m['size_bytes'] / 1e6:.3f} MB, {m['latency_ms']:.2f} ms; target "
                     f"{'met' if m['meets_target'] else '**NOT met**'} |")
    return "\n".join(lines) + "\n"
