"""Detection scores (keras_cnns.tasks.detection) against examples worked by hand: VOC's all-point interpolated AP
at IoU 0.5, COCO's 101-point AP at IoU 0.50:0.05:0.95, and the one box convention checked at the border."""

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
