"""Same-row evidence: the rank AUC against a pairwise reference, the controls' geometry, and the audit telling
registered boxes from displaced ones."""

from __future__ import annotations

import numpy as np
import pytest

from sim2sg_core.eval.vehicle_evidence import clip_boxes, rank_auc, same_row_controls, vehicle_evidence


def reference_auc(p, n) -> float:
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in p for b in n)
    return wins / (len(p) * len(n))


@pytest.mark.parametrize("seed", range(5))
def test_rank_auc_matches_pairwise_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 6, rng.integers(1, 30)).astype(float)  # few distinct values: many ties
    n = rng.integers(0, 5, rng.integers(1, 30)).astype(float)
    assert rank_auc(p, n) == pytest.approx(reference_auc(p, n), abs=1e-12)


def test_rank_auc_edges():
    assert rank_auc([2.0, 3.0], [0.0, 1.0]) == 1.0
    assert rank_auc([0.0], [1.0]) == 0.0
    assert rank_auc([1.0, 1.0], [1.0]) == 0.5
    assert np.isnan(rank_auc([], [1.0]))


def test_same_row_controls_keep_rows_and_size_inside_the_image():
    rng = np.random.default_rng(0)
    boxes = np.array([[10, 20, 60, 50], [300, 5, 399, 90]], float)
    c = same_row_controls(boxes, 400, rng, draws=7)
    assert c.shape == (14, 4)
    ref = np.repeat(boxes, 7, axis=0)
    np.testing.assert_allclose(c[:, [1, 3]], ref[:, [1, 3]])
    np.testing.assert_allclose(c[:, 2] - c[:, 0], ref[:, 2] - ref[:, 0])
    assert (c[:, 0] >= 0).all() and (c[:, 2] <= 399 + 1e-9).all()
    assert len(np.unique(c[:, 0].round(3))) > 7  # columns really vary
    with pytest.raises(ValueError, match="draws"):
        same_row_controls(boxes, 400, rng, draws=0)


def test_clip_boxes_drops_slivers_and_non_finite():
    b = clip_boxes([[-5, -5, 50, 40], [390, 10, 500, 11], [np.nan, 0, 1, 1]], 400, 300)
    np.testing.assert_allclose(b, [[0, 0, 50, 40]])


def _scene(rng, n_objects=3, w=320, h=160):
    """A grey street with red 'vehicles' at random columns on a band of rows; returns (image, boxes)."""
    img = np.full((h, w, 3), 110, np.uint8)
    img += rng.integers(0, 20, img.shape, dtype=np.uint8)
    boxes = []
    for _ in range(n_objects):
        bw = int(rng.integers(20, 40))
        x0 = int(rng.integers(0, w - bw))
        y0 = int(rng.integers(60, 100))
        img[y0 : y0 + 25, x0 : x0 + bw] = (200, 30, 30)
        boxes.append((x0, y0, x0 + bw, y0 + 25))
    return img, np.array(boxes, float)


def _redness(image, boxes):
    out = []
    for x1, y1, x2, y2 in np.asarray(boxes).round().astype(int):
        patch = image[y1 : y2 + 1, x1 : x2 + 1].astype(float)
        out.append(((patch[..., 0] > 150) & (patch[..., 1] < 80)).mean())
    return np.array(out)


def test_audit_tells_registered_labels_from_displaced_ones():
    rng = np.random.default_rng(1)
    scenes = [_scene(rng) for _ in range(12)]
    registered = vehicle_evidence(_redness, scenes, draws=5, bootstrap=200)
    assert registered.frames == 12 and registered.boxes == 36 and registered.controls == 180
    assert registered.auc > 0.9 and registered.auc_ci95[0] > 0.8
    assert registered.mean_box_score > registered.mean_control_score

    # the same boxes paired with other frames' images: labels not registered to their images
    shuffled = [(scenes[i][0], scenes[(i + 5) % 12][1]) for i in range(12)]
    displaced = vehicle_evidence(_redness, shuffled, draws=5, bootstrap=200)
    assert displaced.auc < 0.7
    assert displaced.auc_ci95[0] < 0.5 < displaced.auc_ci95[1] or displaced.auc < registered.auc_ci95[0]


def test_no_boxes_gives_nan_not_an_error():
    img = np.zeros((50, 80, 3), np.uint8)
    r = vehicle_evidence(_redness, [(img, np.zeros((0, 4)))])
    assert r.frames == 0 and np.isnan(r.auc)
