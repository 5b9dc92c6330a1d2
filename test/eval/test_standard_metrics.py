"""Ignore regions, KITTI difficulties, and the Scene-Graph-Benchmark recalls (R@K without graph
constraint, mean recall mR@K): hand-checked cases and the slow pure-Python references."""

import math

import numpy as np
import pytest
from random_graphs import obj, random_case, rel

from reference_metrics import reference_average_precision, reference_scene_graph_recall, reference_triplet_recall

from sim2sg_core.eval.detection import average_precision
from sim2sg_core.eval.ignore import box_ioa, get_difficulty, in_difficulty, labels_carry_difficulty_fields
from sim2sg_core.eval.scene_graph import (
    scene_graph_recall,
    triplet_recall,
)
from sim2sg_core.scene_graph import IgnoreRegion, SceneGraph, SceneGraphError


def test_a_detection_on_a_dont_care_region_is_neither_tp_nor_fp():
    gt = SceneGraph(
        objects=[obj(0, (0, 0, 40, 40)), obj(0, (100, 0, 140, 40))],
        ignore_regions=[IgnoreRegion((200, 0, 300, 60), "DontCare")],
    )
    hit1, hit2 = obj(0, (0, 0, 40, 40), 0.5), obj(0, (100, 0, 140, 40), 0.3)
    on_dont_care = obj(0, (210, 10, 250, 50), 0.9)  # highest score, inside the region
    with_it = SceneGraph(objects=[hit1, on_dont_care, hit2])
    without_it = SceneGraph(objects=[hit1, hit2])
    ap = average_precision([with_it], [gt], 3)
    assert ap["ap"][0] == average_precision([without_it], [gt], 3)["ap"][0] == 1.0
    assert ap["num_ignored"][0] == 1 and ap["num_det"][0] == 3 and ap["num_gt"][0] == 2
    # the same labels without the region: the detection is a false positive ranked first
    plain = SceneGraph(objects=gt.objects)
    assert average_precision([with_it], [plain], 3)["ap"][0] < 0.7
    # any class is ignored there; a box mostly outside the region (ioa < 0.5) is not
    person = SceneGraph(objects=[hit1, hit2, obj(1, (210, 10, 250, 50), 0.9)])
    assert average_precision([person], [gt], 3)["num_ignored"][1] == 1
    half_out = SceneGraph(objects=[hit1, hit2, obj(0, (180, 10, 230, 50), 0.9)])  # 30 of 50 px wide inside
    assert average_precision([half_out], [gt], 3)["num_ignored"][0] == 1
    mostly_out = SceneGraph(objects=[hit1, hit2, obj(0, (170, 10, 220, 50), 0.9)])  # 20 of 50 px inside
    r = average_precision([mostly_out], [gt], 3)
    assert r["num_ignored"][0] == 0 and r["ap"][0] < 0.7


def test_a_real_match_wins_over_an_ignore_region():
    """Matching against real ground truth comes first: a correct detection inside a DontCare region
    still counts as a true positive (and its duplicate there is ignored, not a false positive)."""
    gt = SceneGraph(
        objects=[obj(0, (200, 0, 240, 40)), obj(0, (0, 0, 40, 40))], ignore_regions=[IgnoreRegion((190, 0, 300, 60))]
    )
    pred = SceneGraph(
        objects=[obj(0, (200, 0, 240, 40), 0.8), obj(0, (201, 0, 241, 40), 0.9), obj(0, (0, 0, 40, 40), 0.5)]
    )
    r = average_precision([pred], [gt], 3)
    assert r["ap"][0] == 1.0 and r["num_ignored"][0] == 1
    assert average_precision([pred], [SceneGraph(objects=gt.objects)], 3)["ap"][0] < 1.0


def test_ignored_detections_do_not_take_recall_slots():
    gt = SceneGraph(
        objects=[obj(0, (0, 0, 40, 40)), obj(1, (100, 0, 140, 40))],
        relationships=[rel(0, 1, 1)],
        ignore_regions=[IgnoreRegion((200, 0, 300, 60))],
    )
    pred = SceneGraph(
        objects=[obj(0, (0, 0, 40, 40)), obj(1, (100, 0, 140, 40)), obj(0, (210, 5, 260, 55))],
        relationships=[rel(2, 1, 0, 0.9), rel(0, 1, 1, 0.5)],
    )
    # K = 1: the triplet of the detection on the ignore region would take the only slot
    assert triplet_recall([pred], [SceneGraph(objects=gt.objects, relationships=gt.relationships)], ks=(1,))["R@1"] == 0
    assert triplet_recall([pred], [gt], ks=(1,))["R@1"] == 1.0
    assert reference_scene_graph_recall([pred], [gt], ks=(1,))["R@1"] == 1.0


def test_ignore_regions_travel_through_dicts_and_old_dicts_have_none():
    g = SceneGraph(objects=[obj(0, (0, 0, 10, 10))], ignore_regions=[IgnoreRegion((5, 5, 20, 30), "Truck")])
    d = g.to_dict()
    assert d["ignore_regions"] == [{"box": [5.0, 5.0, 20.0, 30.0], "kind": "Truck"}]
    back = SceneGraph.from_dict(d)
    assert back.ignore_regions == g.ignore_regions and back.objects == g.objects
    d.pop("ignore_regions")
    assert SceneGraph.from_dict(d).ignore_regions == []
    assert "ignore_regions" not in SceneGraph(objects=g.objects).to_dict()  # files look as before
    with pytest.raises(SceneGraphError, match="ignore region 0 box"):
        SceneGraph(ignore_regions=[IgnoreRegion((10, 0, 5, 5))]).validate()
    with pytest.raises(SceneGraphError, match="ignore region 0 has a malformed box"):
        SceneGraph(ignore_regions=[IgnoreRegion((0, 0, math.nan, 5))]).validate()


def test_box_ioa():
    np.testing.assert_allclose(box_ioa([[0, 0, 10, 10], [0, 0, 0, 10]], [[5, 0, 20, 10]]), [[0.5], [0.0]])


# ---- KITTI difficulties ---------------------------------------------------------------------------


def test_difficulty_definitions_at_their_boundaries():
    boxes = [
        (0, 0, 10, 40),
        (0, 0, 10, 39.9),
        (0, 0, 10, 25),
        (0, 0, 10, 24.9),
        (0, 0, 10, 50),
        (0, 0, 10, 50),
        (0, 0, 10, 50),
        (0, 0, 10, 50),
        (0, 0, 10, 50),
    ]
    trunc = [0.15, 0.0, 0.30, 0.0, 0.16, 0.31, 0.50, 0.51, 0.0]
    occ = [0.0, 0.0, 0.3, 0.0, 0.0, 0.0, 0.7, 0.0, 0.09]  # fractions: levels 0, 0, 1, 0, 0, 0, 2, 0, 0
    assert in_difficulty(boxes, trunc, occ, "easy").tolist() == [1, 0, 0, 0, 0, 0, 0, 0, 1]
    assert in_difficulty(boxes, trunc, occ, "moderate").tolist() == [1, 1, 1, 0, 1, 0, 0, 0, 1]
    assert in_difficulty(boxes, trunc, occ, "hard").tolist() == [1, 1, 1, 0, 1, 1, 1, 0, 1]
    assert in_difficulty(boxes, trunc, occ, None).all()
    with pytest.raises(ValueError, match="difficulty must be None or one of"):
        get_difficulty("extreme")
    assert not labels_carry_difficulty_fields([SceneGraph(objects=[obj(0, (0, 0, 5, 5))])])
    assert labels_carry_difficulty_fields([SceneGraph(objects=[obj(0, (0, 0, 5, 5), occ=0.3)])])


def test_unknown_occlusion_is_outside_every_difficulty():
    """KITTI's occlusion level 3 ("unknown") reads as the fraction 1.0: counted with no difficulty, ignored in
    easy, moderate and hard (the devkit's maximum occlusion is 2), so a detection on it is neither TP nor FP."""
    from sim2sg_core.data.kitti import OCCLUSION_FROM_LEVEL
    from sim2sg_core.eval.ignore import occlusion_level

    unknown = OCCLUSION_FROM_LEVEL[3]
    assert occlusion_level([0.0, 0.3, 0.7, unknown]).tolist() == [0, 1, 2, 3]
    boxes, trunc, occ = [(0, 0, 10, 50)] * 2, [0.0, 0.0], [0.0, unknown]
    for level in ("easy", "moderate", "hard"):
        assert in_difficulty(boxes, trunc, occ, level).tolist() == [True, False]
    gt = SceneGraph(objects=[obj(0, (0, 0, 40, 50)), obj(0, (100, 0, 140, 50), occ=unknown)])
    pred = SceneGraph(objects=[obj(0, (0, 0, 40, 50), 0.9), obj(0, (100, 0, 140, 50), 0.95)])
    hard = average_precision([pred], [gt], 3, difficulty="hard")
    assert hard["num_gt"][0] == 1 and hard["num_ignored"][0] == 1 and hard["ap"][0] == 1.0
    assert average_precision([pred], [gt], 3)["num_gt"][0] == 2
    assert reference_average_precision([pred], [gt], 3, difficulty="hard")[0] == pytest.approx(hard["ap"][0])


def test_objects_outside_the_difficulty_are_ignored():
    gt = SceneGraph(objects=[obj(0, (0, 0, 40, 50)), obj(0, (100, 0, 130, 30)), obj(0, (200, 0, 240, 60), trunc=0.6)])
    # finds the large car, the small one (30 px tall) and the truncated one; one false positive
    pred = SceneGraph(
        objects=[
            obj(0, (0, 0, 40, 50), 0.9),
            obj(0, (100, 0, 130, 30), 0.8),
            obj(0, (200, 0, 240, 60), 0.7),
            obj(0, (300, 0, 340, 50), 0.6),
        ]
    )
    hard = average_precision([pred], [gt], 3, difficulty="hard")
    assert hard["num_gt"][0] == 2 and hard["num_ignored"][0] == 1
    easy = average_precision([pred], [gt], 3, difficulty="easy")
    # easy: only the large car counts; the small and the truncated one are ignored, not false positives
    assert easy["num_gt"][0] == 1 and easy["num_ignored"][0] == 2 and easy["ap"][0] == 1.0
    # a detection lower than the level's minimum height that matches nothing is ignored too
    tiny = SceneGraph(objects=[*pred.objects[:3], obj(0, (400, 0, 420, 20), 0.95)])
    assert average_precision([tiny], [gt], 3, difficulty="easy")["ap"][0] == 1.0
    assert average_precision([tiny], [gt], 3)["ap"][0] < 1.0
    # a second detection on an ignored object is a false positive (one detection per object)
    # (hard: the truncated car is ignored, the small one counts)
    one = SceneGraph(objects=[pred.objects[0], pred.objects[1], obj(0, (201, 0, 241, 60), 0.95)])
    assert average_precision([one], [gt], 3, difficulty="hard")["ap"][0] == 1.0
    dup = SceneGraph(objects=[*one.objects, obj(0, (200, 0, 240, 60), 0.85)])
    r = average_precision([dup], [gt], 3, difficulty="hard")
    assert r["num_ignored"][0] == 1 and r["ap"][0] < 1.0


def test_difficulty_in_recall_drops_triplets_of_ignored_objects():
    gt = SceneGraph(
        objects=[obj(0, (0, 0, 40, 50)), obj(1, (100, 0, 120, 30)), obj(2, (200, 0, 240, 60))],
        relationships=[rel(0, 1, 0), rel(0, 2, 1)],
    )
    pred = SceneGraph(objects=gt.objects, relationships=[rel(0, 1, 0, 0.9), rel(0, 2, 2, 0.5)])
    assert triplet_recall([pred], [gt])["R@50"] == 0.5
    # easy: the 30 px person is ignored; left: one triplet, missed
    assert triplet_recall([pred], [gt], difficulty="easy")["R@50"] == 0.0
    only_person = SceneGraph(objects=gt.objects, relationships=[rel(0, 1, 0)])
    assert math.isnan(triplet_recall([pred], [only_person], difficulty="easy")["R@50"])


# ---- SGB recalls ----------------------------------------------------------------------------------


def test_no_graph_constraint_lets_every_predicate_of_a_pair_count():
    gt = SceneGraph(objects=[obj(0, (0, 0, 40, 40)), obj(1, (100, 0, 140, 40))], relationships=[rel(0, 1, 2)])
    pred = SceneGraph(objects=gt.objects, relationships=[rel(0, 1, 0, 0.6), rel(0, 1, 2, 0.3), rel(1, 0, 1, 0.4)])
    gc = scene_graph_recall([pred], [gt], ks=(1, 2, 3), graph_constraint=True)
    ng = scene_graph_recall([pred], [gt], ks=(1, 2, 3), graph_constraint=False)
    assert (gc["R@1"], gc["R@2"], gc["R@3"]) == (0.0, 0.0, 0.0)  # the pair's best predicate is wrong
    assert (ng["R@1"], ng["R@2"], ng["R@3"]) == (0.0, 0.0, 1.0)  # ranked third among all triplets


def test_mean_recall_averages_over_the_predicates_present():
    objs = [obj(0, (i * 50, 0, i * 50 + 40, 40)) for i in range(4)]
    gt = SceneGraph(objects=objs, relationships=[rel(0, 1, 0), rel(0, 2, 1), rel(0, 3, 1), rel(1, 2, 1)])
    pred = SceneGraph(objects=objs, relationships=[rel(0, 1, 0, 0.9), rel(0, 2, 1, 0.8)])
    r = scene_graph_recall([pred], [gt], ks=(50,))
    assert r["R@50"] == 0.5
    assert r["per_predicate@50"] == {0: 1.0, 1: pytest.approx(1 / 3)}
    assert r["mR@50"] == pytest.approx((1 + 1 / 3) / 2)
    # per predicate, images are averaged (not triplets pooled)
    gt2 = SceneGraph(objects=objs, relationships=[rel(0, 1, 1)])
    r2 = scene_graph_recall([pred, SceneGraph(objects=objs)], [gt, gt2], ks=(50,))
    assert r2["per_predicate@50"][1] == pytest.approx((1 / 3 + 0.0) / 2)
    assert r2["R@50"] == pytest.approx((0.5 + 0.0) / 2)


def test_bad_k_and_length_mismatch_raise():
    with pytest.raises(ValueError, match="K must be positive"):
        scene_graph_recall([], [], ks=(0,))
    with pytest.raises(ValueError, match="1 predictions for 0 ground-truth images"):
        scene_graph_recall([SceneGraph()], [])


def _same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("difficulty", [None, "easy", "moderate", "hard"])
def test_ap_with_ignoring_agrees_with_the_slow_reference(seed, difficulty):
    preds, gts = random_case(np.random.default_rng(1000 + seed))
    fast = average_precision(preds, gts, 3, difficulty=difficulty)["ap"]
    slow = reference_average_precision(preds, gts, 3, difficulty=difficulty)
    np.testing.assert_allclose(fast, slow, atol=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("difficulty", [None, "easy", "hard"])
@pytest.mark.parametrize("graph_constraint", [True, False])
def test_recall_and_mean_recall_agree_with_the_slow_reference(seed, difficulty, graph_constraint):
    preds, gts = random_case(np.random.default_rng(2000 + seed))
    ks = (3, 10, 50)
    fast = scene_graph_recall(preds, gts, ks, graph_constraint=graph_constraint, difficulty=difficulty)
    slow = reference_scene_graph_recall(preds, gts, ks, graph_constraint=graph_constraint, difficulty=difficulty)
    for k in ks:
        assert _same(fast[f"R@{k}"], slow[f"R@{k}"]), k
        assert _same(fast[f"mR@{k}"], slow[f"mR@{k}"]), k
        assert fast[f"per_predicate@{k}"].keys() == slow[f"per_predicate@{k}"].keys()
        for p, v in fast[f"per_predicate@{k}"].items():
            assert _same(v, slow[f"per_predicate@{k}"][p])


@pytest.mark.parametrize("seed", range(4))
def test_without_ignoring_recall_is_the_old_triplet_recall(seed):
    preds, gts = random_case(np.random.default_rng(3000 + seed), ignore=False)
    for k in (5, 20):
        fast = triplet_recall(preds, gts, ks=(k,))[f"R@{k}"]
        assert _same(fast, reference_triplet_recall(preds, gts, ks=(k,))[f"R@{k}"])
    big = 10_000  # with K large enough every candidate is in: the no-constraint candidates include the others
    assert (
        scene_graph_recall(preds, gts, ks=(big,), graph_constraint=False)[f"R@{big}"]
        >= scene_graph_recall(preds, gts, ks=(big,))[f"R@{big}"] - 1e-12
    )
