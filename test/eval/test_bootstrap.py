"""Re-weighted detection matches equal AP on a list with images repeated (checked against the slow
reference), and the paired bootstrap's interval behaves: zero for identical runs, excluding zero for a
clearly better method, always around the point estimate."""

import math

import numpy as np
import pytest
from random_graphs import random_case

from sim2sg_core.eval.bootstrap import RunRecords, paired_bootstrap
from reference_metrics import reference_average_precision

from sim2sg_core.eval.detection import DetectionMatches, match_detections
from sim2sg_core.eval.scene_graph import scene_graph_recall


def _records(preds, gts, num_classes=3):
    rec = match_detections(preds, gts, num_classes).to_arrays()
    r = scene_graph_recall(preds, gts, (20,))
    rec["recall@20"] = np.asarray(r["per_image@20"])
    return rec


@pytest.mark.parametrize("seed", range(5))
def test_weighted_ap_equals_ap_on_repeated_images(seed):
    rng = np.random.default_rng(seed)
    preds, gts = random_case(rng, n_images=8, ignore=True)
    m = match_detections(preds, gts, 3)
    w = rng.integers(0, 4, len(preds))
    rep_p = [p for p, k in zip(preds, w) for _ in range(k)]
    rep_g = [g for g, k in zip(gts, w) for _ in range(k)]
    slow = reference_average_precision(rep_p, rep_g, 3)
    np.testing.assert_allclose(m.ap(w), slow, atol=1e-12)
    np.testing.assert_allclose(m.ap(), reference_average_precision(preds, gts, 3), atol=1e-12)
    back = DetectionMatches.from_arrays(m.to_arrays())
    np.testing.assert_allclose(back.ap(w), slow, atol=1e-12)


def test_all_draws_at_once_equal_each_draw_on_repeated_images():
    """The bootstrap scores its draws as rows of one array; each row is AP on its repeated list, and a
    draw that leaves out every image of a class (or every image) gives NaN for it."""
    rng = np.random.default_rng(11)
    preds, gts = random_case(rng, n_images=9, ignore=True)
    m = match_detections(preds, gts, 3)
    w = rng.integers(0, 4, (6, len(preds)))
    w[0] = 0
    w[1] = 0
    w[1, 3] = 5
    got = m.ap_weighted(w)
    assert got.shape == (6, 3)
    for row, weights in zip(got, w):
        rep_p = [p for p, k in zip(preds, weights) for _ in range(k)]
        rep_g = [g for g, k in zip(gts, weights) for _ in range(k)]
        np.testing.assert_allclose(row, reference_average_precision(rep_p, rep_g, 3), atol=1e-12)
    assert np.isnan(got[0]).all()
    run = RunRecords(_records(preds, gts))
    np.testing.assert_allclose(run.values("mAP", w)[2:], [run.value("mAP", x) for x in w[2:]], atol=1e-12)
    assert math.isnan(run.values("mAP", w)[0])
    with pytest.raises(ValueError, match="weights must be"):
        m.ap_weighted(w[:, :4])


def test_weighted_recall_is_the_mean_over_repeated_images():
    preds, gts = random_case(np.random.default_rng(7), n_images=10)
    run = RunRecords(_records(preds, gts))
    w = np.array([0, 1, 2, 3, 0, 1, 1, 2, 0, 4])
    rep = scene_graph_recall(
        [p for p, k in zip(preds, w) for _ in range(k)], [g for g, k in zip(gts, w) for _ in range(k)], (20,)
    )
    assert run.value("R@20", w) == pytest.approx(rep["R@20"], abs=1e-12)
    assert run.value("R@20") == pytest.approx(scene_graph_recall(preds, gts, (20,))["R@20"], abs=1e-12)
    with pytest.raises(ValueError, match="unknown metric"):
        run.value("R@7")


def _seeds(n_seeds, better: bool):
    """Per seed: (method records, baseline records) on the same images; the better method also
    finds every ground-truth object exactly, with top scores."""
    out = []
    for s in range(n_seeds):
        preds, gts = random_case(np.random.default_rng(100 + s), n_images=12)
        base = _records(preds, gts)
        if better:
            from sim2sg_core.scene_graph import SceneGraph, SceneObject

            boosted = [
                SceneGraph(
                    objects=list(p.objects)
                    + [SceneObject(o.class_name, o.class_id, o.box, score=2.0) for o in g.objects],
                    relationships=p.relationships,
                )
                for p, g in zip(preds, gts)
            ]
            out.append((_records(boosted, gts), base))
        else:
            out.append((base, base))
    return out


def test_identical_runs_have_a_zero_interval():
    pairs = _seeds(3, better=False)
    r = paired_bootstrap([m for m, _ in pairs], [b for _, b in pairs], "mAP", n_boot=50)
    assert r["diff"] == 0.0 and r["low"] == 0.0 and r["high"] == 0.0 and r["seeds"] == 3


def test_a_clearly_better_method_has_an_interval_above_zero():
    pairs = _seeds(4, better=True)
    r = paired_bootstrap([m for m, _ in pairs], [b for _, b in pairs], "mAP", n_boot=200, seed=1)
    assert r["diff"] > 0.1
    assert 0 < r["low"] <= r["diff"] <= r["high"]
    flipped = paired_bootstrap([b for _, b in pairs], [m for m, _ in pairs], "mAP", n_boot=200, seed=1)
    assert flipped["diff"] == pytest.approx(-r["diff"]) and flipped["high"] < 0


def test_unpaired_inputs_are_refused():
    pairs = _seeds(2, better=False)
    with pytest.raises(ValueError, match="same seeds"):
        paired_bootstrap([pairs[0][0]], [b for _, b in pairs], "mAP")
    other, _ = _seeds(1, better=False)[0], None
    small = _records(*random_case(np.random.default_rng(5), n_images=3))
    with pytest.raises(ValueError, match="same evaluation images"):
        paired_bootstrap([other[0]], [small], "mAP")
    assert math.isnan(RunRecords(small).value("R@20", np.zeros(3)))
