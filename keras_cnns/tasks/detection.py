"""Object detection with the zoo's Faster R-CNN (Ren et al. 2015; keras_cnns.models.faster_rcnn): how a model is
scored, and how detections are made from an image and drawn.

One box convention at every border: pixel ``[x_min, y_min, x_max, y_max]`` floats, x_max and y_max one past the
last pixel (the scenes' boxes, keras_cnns.data.scenes; the model's outputs; the JSON of apps/detect.py).
:func:`check_boxes` asserts it where boxes come in.

* :func:`average_precision` -- VOC's all-point interpolated AP (the area under the precision envelope) and
  COCO's 101-point interpolated AP;
* :func:`match` / :func:`evaluate_detections` -- per class, detections sorted by score, each matched greedily to
  the ground-truth box of its image and class it overlaps most (VOC) or to the best still unmatched one (COCO),
  a true positive at IoU >= the threshold; mAP@0.5 (VOC) and AP@[.5:.95] (COCO: the mean over IoU thresholds
  0.50, 0.55, ..., 0.95 of the mean over classes). Classes without ground truth are left out of the means;
* :func:`evaluate` -- those numbers for a model over a dataset of (images, targets) batches;
* :func:`detect` -- one uint8 image of any size -> detections in its own pixel coordinates;
* :func:`draw` -- the image with labelled, coloured boxes and scores, written to a PNG.
"""

import numpy as np

from keras_cnns.data.scenes import box_iou

MAP50 = "map50"
MAP_COCO = "map_coco"
COCO_THRESHOLDS = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2))
COCO_RECALLS = np.linspace(0.0, 1.0, 101)


def check_boxes(boxes, where="boxes"):
    """(N, 4) float64 boxes after checking they are [x_min, y_min, x_max, y_max] with max >= min."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]) or not np.isfinite(boxes).all():
        bad = boxes[(boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]) | ~np.isfinite(boxes).all(1)][0]
        raise ValueError(f"{where} must be [x_min, y_min, x_max, y_max] with x_max >= x_min and y_max >= y_min "
                         f"(the max one past the last pixel). Received: {bad.tolist()}")
    return boxes


def average_precision(recall, precision, kind="voc"):
    """AP of a precision/recall curve (detections in score order).

    voc: all-point interpolation (VOC 2010+): precision made monotone from the right, summed over the recall
    steps. coco: the envelope read at the 101 recalls 0, 0.01, ..., 1 (0 past the last recall reached), averaged.
    """
    recall, precision = np.asarray(recall, np.float64), np.asarray(precision, np.float64)
    envelope = np.maximum.accumulate(np.concatenate([precision, [0.0]])[::-1])[::-1]
    if kind == "voc":
        r = np.concatenate([[0.0], recall])
        return float(np.sum((r[1:] - r[:-1]) * envelope[:-1]))
    if kind != "coco":
        raise ValueError(f"kind must be 'voc' or 'coco'. Received: kind={kind!r}")
    at = np.searchsorted(recall, COCO_RECALLS, side="left")
    return float(np.mean(envelope[at]))  # at == len(recall): the appended 0


def match(detections, ground_truths, label, iou_threshold, rule="voc"):
    """(true-positive flags in score order, their scores, number of ground-truth boxes) of one class.

    detections / ground_truths: per image a dict {"boxes" (N, 4), "classes" (N,)[, "scores" (N,)]}.
    rule: "voc" matches a detection to the box it overlaps most (a second detection of it is a false
    positive); "coco" to the box it overlaps most among those still unmatched.
    """
    records, total = [], 0
    for image, (found, truth) in enumerate(zip(detections, ground_truths)):
        gt = np.asarray(truth["boxes"], np.float64).reshape(-1, 4)[np.asarray(truth["classes"]) == label]
        total += len(gt)
        keep = np.asarray(found["classes"]) == label
        boxes = np.asarray(found["boxes"], np.float64).reshape(-1, 4)[keep]
        scores = np.asarray(found["scores"], np.float64)[keep]
        for box, score in zip(boxes, scores):
            records.append((score, image, box))
    records.sort(key=lambda r: -r[0])
    used = {}
    hits = np.zeros(len(records), bool)
    for k, (score, image, box) in enumerate(records):
        truth = ground_truths[image]
        gt = np.asarray(truth["boxes"], np.float64).reshape(-1, 4)[np.asarray(truth["classes"]) == label]
        if not len(gt):
            continue
        taken = used.setdefault(image, np.zeros(len(gt), bool))
        iou = box_iou(box[None], gt)[0]
        if rule == "coco":
            iou = np.where(taken, -1.0, iou)
        best = int(np.argmax(iou))
        if iou[best] >= iou_threshold and not taken[best]:
            taken[best] = hits[k] = True
    return hits, np.array([r[0] for r in records]), total


def class_ap(detections, ground_truths, label, iou_threshold, kind="voc"):
    """AP of one class at one IoU threshold; None when the class has no ground-truth box."""
    hits, _, total = match(detections, ground_truths, label, iou_threshold, rule=kind)
    if total == 0:
        return None
    tp = np.cumsum(hits)
    recall = tp / total
    precision = tp / np.maximum(np.arange(1, len(hits) + 1), 1)
    return average_precision(recall, precision, kind)


def evaluate_detections(detections, ground_truths, class_names):
    """{map50, map_coco, per_class_ap50, per_class_ap_coco, images, objects} (class 0, the background, is not
    scored)."""
    labels = range(1, len(class_names))
    ap50 = {class_names[c]: class_ap(detections, ground_truths, c, 0.5, "voc") for c in labels}
    coco = {}
    for c in labels:
        values = [class_ap(detections, ground_truths, c, t, "coco") for t in COCO_THRESHOLDS]
        coco[class_names[c]] = None if values[0] is None else float(np.mean(values))
    scored = lambda d: [v for v in d.values() if v is not None]  # noqa: E731
    return {MAP50: float(np.mean(scored(ap50))) if scored(ap50) else float("nan"),
            MAP_COCO: float(np.mean(scored(coco))) if scored(coco) else float("nan"),
            "per_class_ap50": ap50, "per_class_ap_coco": coco, "images": len(ground_truths),
            "objects": int(sum(len(np.asarray(t["classes"])) for t in ground_truths))}


def unbatch(outputs):
    """The model's batched outputs {"boxes", "scores", "classes", "num_detections"} -> per image dicts."""
    n = np.asarray(outputs["num_detections"]).astype(int)
    return [{"boxes": np.asarray(outputs["boxes"])[i, :k], "scores": np.asarray(outputs["scores"])[i, :k],
             "classes": np.asarray(outputs["classes"])[i, :k].astype(int)} for i, k in enumerate(n)]


def evaluate(model, dataset, class_names, limit=None):
    """:func:`evaluate_detections` of a detector over batches of (images, {"boxes", "classes", "num_objects"})."""
    found, truth = [], []
    for images, targets in dataset:
        found += unbatch({k: np.asarray(v) for k, v in model(images, training=False).items()})
        for boxes, classes, n in zip(np.asarray(targets["boxes"]), np.asarray(targets["classes"]),
                                     np.asarray(targets["num_objects"])):
            truth.append({"boxes": check_boxes(boxes[:n], "ground-truth boxes"), "classes": classes[:n]})
        if limit and len(truth) >= limit:
            break
    return evaluate_detections(found, truth, class_names)


def detect(predictor, image, threshold=0.5):
    """A uint8 image (H, W, C) of any size -> detections [{"box", "class", "index", "score"}], best first.

    ``predictor`` is a keras_cnns.inference Predictor of a detector: the image is converted to the model's
    channels, resized to its training size and normalised as in training (its preprocessing); the boxes come
    back in the image's own pixel coordinates.
    """
    prep = predictor.preprocessing
    if prep.resize != "resize":
        raise ValueError(f"{predictor.source}: a detector's preprocessing must resize (boxes are scaled back). "
                         f"Received: resize={prep.resize!r}")
    image = np.asarray(image)
    x = np.asarray(prep.apply(image), np.float32)[None]
    found = unbatch(predictor.outputs(x))[0]
    sy, sx = image.shape[0] / prep.size[0], image.shape[1] / prep.size[1]
    boxes = check_boxes(found["boxes"], f"{predictor.source}'s boxes") * [sx, sy, sx, sy]
    order = np.argsort(-found["scores"], kind="stable")
    return [{"box": [float(v) for v in boxes[i]], "class": predictor.class_names[found["classes"][i]],
             "index": int(found["classes"][i]), "score": float(found["scores"][i])}
            for i in order if found["scores"][i] >= threshold]


def draw(image, found, class_names, path, min_side=384):
    """Writes a PNG of the image with each detection's box in its class's colour and "class score" above it.
    Small images are enlarged (nearest neighbour) to at least ``min_side`` pixels so labels stay legible."""
    from PIL import Image, ImageDraw

    from keras_cnns.tasks.segmentation import palette

    image = np.asarray(image)
    rgb = np.repeat(image, 3, -1) if image.shape[-1] == 1 else image[..., :3]
    scale = max(1, int(np.ceil(min_side / max(rgb.shape[:2]))))
    canvas = Image.fromarray(rgb.astype(np.uint8)).resize((rgb.shape[1] * scale, rgb.shape[0] * scale),
                                                          Image.NEAREST)
    pen = ImageDraw.Draw(canvas)
    colours = palette(len(class_names))
    for d in sorted(found, key=lambda d: d["score"]):  # the best drawn last, on top
        x1, y1, x2, y2 = (v * scale for v in d["box"])
        colour = tuple(int(c) for c in colours[d["index"] % len(colours)])
        pen.rectangle([x1, y1, max(x1, x2 - 1), max(y1, y2 - 1)], outline=colour, width=2)
        label = f"{d['class']} {d['score']:.2f}"
        left, top, right, bottom = pen.textbbox((x1, y1), label)
        ty = y1 - (bottom - top) - 4 if y1 >= bottom - top + 4 else y1
        pen.rectangle([x1, ty, x1 + right - left + 4, ty + bottom - top + 4], fill=colour)
        pen.text((x1 + 2, ty + 1), label, fill=(0, 0, 0))
    canvas.save(path)
    return path
