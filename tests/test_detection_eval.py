"""Detection scores (keras_cnns.tasks.detection) against examples worked by hand: VOC's all-point interpolated AP
at IoU 0.5, COCO's 101-point AP at IoU 0.50:0.05:0.95, and the one box convention checked at the border; COCO's AP
against pycocotools' COCOeval on random detections (equal to 1e-9)."""

import numpy as np
import pytest

from keras_cnns.tasks import detection

CLASSES = ("background", "shirt", "bag")
# image 0 holds two shirts, image 1 one shirt; nobody holds a bag
TRUTH = [{"boxes": [[0, 0, 10, 10], [20, 20, 30, 30]], "classes": [1, 1]},
         {"boxes": [[0, 0, 10, 10]], "classes": [1]}]
# in score order: hit, miss, duplicate of the first hit, hit, hit at IoU 100/110 = 0.909; one bag nowhere
FOUND = [{"boxes": [[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 31], [40, 40, 50, 50]],
          "scores": [0.9, 0.7, 0.5, 0.95], "classes": [1, 1, 1, 2]},
         {"boxes": [[50, 50, 60, 60], [0, 0, 10, 10]], "scores": [0.8, 0.6], "classes": [1, 1]}]


def test_voc_ap_is_the_area_under_the_precision_envelope():
    # hits 1 0 0 1 1 -> recall 1/3 1/3 1/3 2/3 1, precision 1 1/2 1/3 1/2 3/5, envelope 1 .6 .6 .6 .6
    # AP = 1/3 * 1 + 1/3 * 0.6 + 1/3 * 0.6 = 0.7333
    hits, scores, total = detection.match(FOUND, TRUTH, 1, 0.5)
    assert hits.tolist() == [True, False, False, True, True] and scores.tolist() == [0.9, 0.8, 0.7, 0.6, 0.5]
    assert total == 3
    assert detection.class_ap(FOUND, TRUTH, 1, 0.5, "voc") == pytest.approx(0.7 / 3 + 0.5, abs=1e-9)


def test_coco_ap_reads_the_envelope_at_101_recalls():
    # recalls 0..0.33 read precision 1 (34 points), 0.34..1.00 read 0.6 (67 points): (34 + 67 * 0.6) / 101
    assert detection.class_ap(FOUND, TRUTH, 1, 0.5, "coco") == pytest.approx((34 + 67 * 0.6) / 101)
    # at IoU 0.95 the last detection misses: 0.34..0.66 read 0.5 (33 points), 0.67..1 read nothing (0)
    assert detection.class_ap(FOUND, TRUTH, 1, 0.95, "coco") == pytest.approx((34 + 33 * 0.5) / 101)


def test_map_leaves_out_classes_without_ground_truth_and_averages_iou_thresholds():
    result = detection.evaluate_detections(FOUND, TRUTH, CLASSES)
    assert result["per_class_ap50"] == {"shirt": pytest.approx(0.7 / 3 + 0.5), "bag": None}
    assert result["map50"] == pytest.approx(0.7 / 3 + 0.5)
    # IoU 0.50 .. 0.90: the 0.909 hit counts (9 thresholds); 0.95: it does not
    assert result["map_coco"] == pytest.approx((9 * (34 + 67 * 0.6) / 101 + (34 + 33 * 0.5) / 101) / 10)
    assert result["images"] == 2 and result["objects"] == 3


def test_perfect_detections_score_one_and_no_detections_zero():
    perfect = [{"boxes": t["boxes"], "classes": t["classes"], "scores": [1.0] * len(t["classes"])} for t in TRUTH]
    assert detection.evaluate_detections(perfect, TRUTH, CLASSES)["map_coco"] == pytest.approx(1.0)
    nothing = [{"boxes": np.zeros((0, 4)), "classes": [], "scores": []}] * 2
    assert detection.evaluate_detections(nothing, TRUTH, CLASSES)["map50"] == 0.0


def test_boxes_with_max_below_min_are_refused_with_the_convention_named():
    with pytest.raises(ValueError, match=r"x_max >= x_min.*Received: \[10.0, 0.0, 5.0, 4.0\]"):
        detection.check_boxes([[10, 0, 5, 4]])
    assert detection.check_boxes([]).shape == (0, 4)


def _random_scenes(seed, images=40, classes=3, side=100):
    """Ground truths and imperfect detections: most boxes found (jittered, now and then with the wrong class),
    some missed, false positives; continuous scores, higher for the right class (no ties, which COCO and we might
    order differently)."""
    rng = np.random.default_rng(seed)
    truth, found = [], []
    for _ in range(images):
        n = int(rng.integers(0, 5))
        corners = rng.uniform(0, side - 30, (n, 2))
        sizes = rng.uniform(8, 30, (n, 2))
        boxes = np.concatenate([corners, corners + sizes], axis=1).round()
        labels = rng.integers(1, classes + 1, n)
        truth.append({"boxes": boxes.tolist(), "classes": labels.tolist()})
        det_boxes, det_classes, det_scores = [], [], []
        for box, label in zip(boxes, labels):
            if rng.random() < 0.85:   # found, jittered; now and then with the wrong class and a lower score
                right = rng.random() < 0.85
                det_boxes.append((box + rng.normal(0, 1.5, 4)).tolist())
                det_classes.append(int(label) if right else int(rng.integers(1, classes + 1)))
                det_scores.append(rng.uniform(0.4, 1.0) if right else rng.uniform(0.05, 0.7))
        for _ in range(int(rng.integers(0, 3))):   # false positives
            corner = rng.uniform(0, side - 30, 2)
            det_boxes.append(np.concatenate([corner, corner + rng.uniform(8, 30, 2)]).tolist())
            det_classes.append(int(rng.integers(1, classes + 1)))
            det_scores.append(rng.uniform(0.05, 0.7))
        found.append({"boxes": det_boxes, "scores": det_scores, "classes": det_classes})
    return truth, found


def _pycocotools_ap(truth, found, classes):
    """COCOeval's AP@[.5:.95] and AP@.5 (stats[0], stats[1]) of the same boxes: pixel [x_min, y_min, x_max, y_max]
    become COCO's [x, y, width, height]."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(box):
        x0, y0, x1, y1 = (float(v) for v in box)
        return [x0, y0, x1 - x0, y1 - y0]

    annotations = [{"id": 0, "image_id": i, "category_id": int(c), "bbox": xywh(b), "iscrowd": 0,
                    "area": xywh(b)[2] * xywh(b)[3]}
                   for i, t in enumerate(truth) for k, (b, c) in enumerate(zip(t["boxes"], t["classes"]))]
    for n, a in enumerate(annotations):
        a["id"] = n + 1
    gt = COCO()
    gt.dataset = {"info": {}, "images": [{"id": i} for i in range(len(truth))], "annotations": annotations,
                  "categories": [{"id": c} for c in range(1, classes + 1)]}
    gt.createIndex()
    results = [{"image_id": i, "category_id": int(c), "bbox": xywh(b), "score": float(s)}
               for i, f in enumerate(found) for b, c, s in zip(f["boxes"], f["classes"], f["scores"])]
    evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return evaluation.stats[0], evaluation.stats[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_ap_equals_pycocotools_on_random_detections(seed):
    pytest.importorskip("pycocotools")
    truth, found = _random_scenes(seed)
    names = ("background", "a", "b", "c")
    ours = detection.evaluate_detections(found, truth, names)
    coco_map, coco_ap50 = _pycocotools_ap(truth, found, len(names) - 1)
    assert ours["map_coco"] == pytest.approx(coco_map, abs=1e-9)
    labels = range(1, len(names))
    ours_ap50 = np.mean([detection.class_ap(found, truth, c, 0.5, "coco") for c in labels])
    assert ours_ap50 == pytest.approx(coco_ap50, abs=1e-9)
    # neither hopeless nor perfect (COCO: 0.34-0.35 and 0.65-0.74 for these seeds): the comparison means something
    assert 0.2 < coco_map < coco_ap50 < 0.9
