"""KITTI's easy / moderate / hard filters on label lines in KITTI's own format, read through the package's KITTI
reader and evaluation, against counts derived by hand from the devkit's rules (and, where the shared KITTI dev
folder is beside the repository, against a plain re-count of its official label files)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from reference_metrics import reference_kitti_level_counts

from sim2sg_core.data.kitti import read_kitti
from sim2sg_core.eval.detection import average_precision
from sim2sg_core.eval.ignore import DIFFICULTIES
from sim2sg_core.scene_graph import SceneGraph, SceneObject
from sim2sg_core.sim import load_environment

VOCAB = load_environment("drive").vocab
CAR = VOCAB.classes.index("car")

# type trunc occ alpha  x1 y1 x2 y2  h w l  x y z  ry  -- each line sits at one edge of the devkit's rules
LINES = {
    "easy_tall_visible": "Car 0.00 0 -1.58 600.00 180.00 700.00 220.00 1.50 1.60 3.90 0.50 1.65 20.00 -1.56",
    "height_39_9": "Car 0.00 0 -1.58 300.00 180.00 340.00 219.90 1.50 1.60 3.90 -6.00 1.65 25.00 -1.56",
    "trunc_0_16": "Car 0.16 0 -1.58 0.00 170.00 90.00 240.00 1.50 1.60 3.90 -9.00 1.65 12.00 -1.56",
    "occ_1": "Car 0.00 1 -1.58 800.00 175.00 860.00 215.00 1.50 1.60 3.90 4.00 1.65 22.00 -1.56",
    "occ_2_trunc_0_45": "Car 0.45 2 -1.58 1150.00 160.00 1241.00 230.00 1.50 1.60 3.90 8.00 1.65 14.00 -1.56",
    "height_24": "Car 0.00 0 -1.58 500.00 180.00 530.00 204.00 1.50 1.60 3.90 -3.00 1.65 40.00 -1.56",
    "occ_3_unknown": "Car 0.00 3 -1.58 900.00 180.00 960.00 230.00 1.50 1.60 3.90 6.00 1.65 18.00 -1.56",
    "trunc_0_6": "Car 0.60 0 -1.58 1200.00 150.00 1241.00 260.00 1.50 1.60 3.90 9.00 1.65 8.00 -1.56",
}
#: which labels each level keeps (easy: h >= 40, occ 0, trunc <= 0.15; moderate: >= 25, <= 1, <= 0.30;
#: hard: >= 25, <= 2, <= 0.50)
EXPECTED = {
    "easy": {"easy_tall_visible"},
    "moderate": {"easy_tall_visible", "height_39_9", "trunc_0_16", "occ_1"},
    "hard": {"easy_tall_visible", "height_39_9", "trunc_0_16", "occ_1", "occ_2_trunc_0_45"},
}


@pytest.fixture()
def kitti_frame(tmp_path):
    for d in ("image_2", "label_2", "calib"):
        (tmp_path / d).mkdir()
    cv2.imwrite(str(tmp_path / "image_2" / "000000.png"), np.zeros((375, 1242, 3), np.uint8))
    (tmp_path / "calib" / "000000.txt").write_text("P2: 721.5 0 609.6 44.9 0 721.5 172.9 0.2 0 0 1 0.003\n")
    lines = [*LINES.values(), "DontCare -1 -1 -10 5.00 229.89 214.12 367.61 -1 -1 -1 -1000 -1000 -1000 -10"]
    (tmp_path / "label_2" / "000000.txt").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_difficulty_levels_keep_what_the_devkit_keeps(kitti_frame):
    ((_, gt),) = read_kitti(kitti_frame, vocab=VOCAB)
    names = list(LINES)
    assert [o.class_id for o in gt.objects] == [CAR] * len(names)
    assert [r.kind for r in gt.ignore_regions] == ["DontCare"]
    for level, keep in EXPECTED.items():
        # the ground truth a level counts
        res = average_precision([SceneGraph(vocab=VOCAB, objects=[])], [gt], len(VOCAB.classes), difficulty=level)
        assert res["num_gt"][CAR] == len(keep), level
        # a perfect detector scores AP 1 on each level: the objects a level leaves out are neither missed nor
        # false positives when detected
        dets = [
            SceneObject(class_id=CAR, class_name="car", box=o.box, score=0.9 - 0.01 * i)
            for i, o in enumerate(gt.objects)
        ]
        pred = SceneGraph(vocab=VOCAB, objects=dets)
        assert average_precision([pred], [gt], len(VOCAB.classes), difficulty=level)["ap"][CAR] == pytest.approx(1.0)
        # detecting only what the level keeps also scores 1; missing one of them does not
        kept = [d for d, n in zip(dets, names) if n in keep]
        only = SceneGraph(vocab=VOCAB, objects=kept)
        assert average_precision([only], [gt], len(VOCAB.classes), difficulty=level)["ap"][CAR] == pytest.approx(1.0)
        fewer = SceneGraph(vocab=VOCAB, objects=kept[1:])
        assert average_precision([fewer], [gt], len(VOCAB.classes), difficulty=level)["ap"][CAR] < 1.0


def test_a_detection_in_a_dontcare_region_is_not_a_false_positive(kitti_frame):
    ((_, gt),) = read_kitti(kitti_frame, vocab=VOCAB)
    dets = [SceneObject(class_id=CAR, class_name="car", box=o.box, score=0.5) for o in gt.objects]
    inside = SceneObject(class_id=CAR, class_name="car", box=(20.0, 240.0, 200.0, 360.0), score=0.99)
    elsewhere = SceneObject(class_id=CAR, class_name="car", box=(300.0, 240.0, 480.0, 360.0), score=0.99)
    ap = [
        average_precision([SceneGraph(vocab=VOCAB, objects=[extra, *dets])], [gt], len(VOCAB.classes))["ap"][CAR]
        for extra in (inside, elsewhere)
    ]
    assert ap[0] == pytest.approx(1.0) and ap[1] < 1.0


DEV = Path(__file__).resolve().parents[3] / "shared" / "real" / "kitti" / "dev"


@pytest.mark.skipif(not (DEV / "label_2").is_dir(), reason="the shared KITTI dev folder is not beside the repository")
def test_official_kitti_dev_labels_count_as_the_devkit_rules_say():
    """The package's per-level car counts on the official KITTI labels equal a plain re-count of the label
    lines (vans ignored for car with the benchmark class map, as in KITTI's evaluation)."""
    items = read_kitti(DEV, class_map="kitti_benchmark", vocab=VOCAB)
    gts = [g for _, g in items]
    empty = [SceneGraph(vocab=VOCAB, objects=[]) for _ in gts]
    counts = reference_kitti_level_counts(DEV / "label_2", "Car")
    for level in DIFFICULTIES:
        assert average_precision(empty, gts, len(VOCAB.classes), difficulty=level)["num_gt"][CAR] == counts[level], (
            level
        )
