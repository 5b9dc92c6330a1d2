"""Detection AP and scene-graph Recall@K: hand-checked cases, slow reference, torchmetrics."""

import math

import numpy as np
import pytest
import torch

from reference_metrics import reference_average_precision

from sim2sg_core.eval.detection import average_precision
from reference_metrics import reference_triplet_recall

from sim2sg_core.eval.scene_graph import predicate_accuracy, triplet_recall
from sim2sg_core.scene_graph import Relationship, SceneGraph, SceneObject, Vocabulary, derive_relationships

VOCAB = Vocabulary(classes=("car", "person", "tree"), subject_classes=("car",))


def obj(cid, box, score=1.0, pos=None):
    return SceneObject(VOCAB.classes[cid], cid, tuple(float(v) for v in box), score, position=pos)


def gt_graph():
    objs = [
        obj(0, (10, 10, 50, 40), pos=(-2, 1.5, 10)),
        obj(1, (60, 10, 80, 50), pos=(1, 1.5, 8)),
        obj(2, (90, 0, 120, 60), pos=(4, 1.5, 20)),
        obj(0, (130, 20, 170, 50), pos=(6, 1.5, 9)),
    ]
    return SceneGraph(objects=objs, relationships=derive_relationships(objs, VOCAB), image_width=200, image_height=80)


def test_perfect_prediction_gives_ap_one_and_recall_one():
    gt = gt_graph()
    det = average_precision([gt], [gt], 3)
    assert det["ap"] == [1.0, 1.0, 1.0] and det["map"] == 1.0
    rec = triplet_recall([gt], [gt])
    assert rec["R@20"] == 1.0 and rec["R@50"] == 1.0


def test_shifted_boxes():
    gt = gt_graph()

    def shifted(dx):
        return SceneGraph(
            objects=[obj(o.class_id, (o.box[0] + dx, o.box[1], o.box[2] + dx, o.box[3])) for o in gt.objects],
            relationships=gt.relationships,
        )

    # car 0 is 40 px wide: a 10 px shift keeps IoU 0.6, a 20 px shift drops it to 1/3
    assert average_precision([shifted(10)], [gt], 3)["ap"][0] == 1.0
    far = average_precision([shifted(20)], [gt], 3)
    assert far["ap"][0] == 0.0 and far["ap"][1] == 0.0  # person is 20 px wide: IoU 0
    assert triplet_recall([shifted(20)], [gt])["R@50"] == 0.0
    # a 10 px shift keeps the cars and the tree (IoU >= 0.5) but loses the 20 px wide person (IoU 1/3)
    expected = np.mean([1 not in (r.subject, r.object) for r in gt.relationships])
    assert 0 < expected < 1
    assert triplet_recall([shifted(10)], [gt])["R@50"] == pytest.approx(expected)


def test_duplicates_are_false_positives():
    gt = SceneGraph(objects=[obj(0, (0, 0, 10, 10)), obj(0, (20, 0, 30, 10))])
    pred = SceneGraph(
        objects=[obj(0, (0, 0, 10, 10), 0.9), obj(0, (0, 0, 10, 10.5), 0.8), obj(0, (20, 0, 30, 10), 0.7)]
    )
    ap = average_precision([pred], [gt], 1)["ap"][0]
    # precision 1 up to recall 0.5 (51 of 101 points), then 2/3 at recall 1 (50 points)
    assert ap == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)
    no_dup = SceneGraph(objects=[pred.objects[0], pred.objects[2]])
    assert average_precision([no_dup], [gt], 1)["ap"][0] == 1.0


def test_wrong_predicate_or_class_misses_the_triplet():
    gt = gt_graph()
    r0 = gt.relationships[0]
    wrong_pred = [
        Relationship(
            r.subject,
            r.object,
            "behind" if r.predicate != "behind" else "front",
            VOCAB.predicate_id("behind" if r.predicate != "behind" else "front"),
            r.score,
        )
        for r in gt.relationships
    ]
    pred = SceneGraph(objects=gt.objects, relationships=wrong_pred)
    assert triplet_recall([pred], [gt])["R@50"] == 0.0
    # K limits the number of predicted triplets considered
    one = SceneGraph(objects=gt.objects, relationships=[r0])
    assert triplet_recall([one], [gt])["R@20"] == pytest.approx(1 / len(gt.relationships))


def test_graph_constraint_keeps_one_predicate_per_pair():
    gt = gt_graph()
    r = gt.relationships[0]
    other = (r.predicate_id + 1) % 4
    pred = SceneGraph(
        objects=gt.objects,
        relationships=[
            Relationship(r.subject, r.object, VOCAB.predicates[other], other, 0.9),
            Relationship(r.subject, r.object, r.predicate, r.predicate_id, 0.5),
        ],
    )
    assert triplet_recall([pred], [SceneGraph(objects=gt.objects, relationships=[r])])["R@50"] == 0.0


def test_images_without_relationships_are_left_out_of_the_recall_average():
    gt = gt_graph()
    lonely = SceneGraph(objects=[obj(2, (0, 0, 10, 10))])
    assert triplet_recall([gt, lonely], [gt, lonely])["R@50"] == 1.0
    assert triplet_recall([gt, lonely], [gt, lonely])["num_images"] == 1
    assert math.isnan(triplet_recall([lonely], [lonely])["R@50"])
    assert average_precision([lonely], [lonely], 3)["ap"][2] == 1.0
    assert math.isnan(average_precision([lonely], [lonely], 3)["ap"][0])  # no ground truth: excluded


def test_predicate_accuracy():
    assert predicate_accuracy([0, 1, 2, 3], [0, 1, 3, 3]) == 0.75
    assert math.isnan(predicate_accuracy([], []))


def random_case(rng, n_images=6, num_classes=3):
    preds, gts = [], []
    for _ in range(n_images):
        n_gt = int(rng.integers(0, 6))
        gt_objs = []
        for _ in range(n_gt):
            x, y = rng.uniform(0, 200, 2)
            w, h = rng.uniform(5, 60, 2)
            c = int(rng.integers(num_classes))
            gt_objs.append(obj(c, (x, y, x + w, y + h), pos=(rng.uniform(-5, 5), 1.5, rng.uniform(3, 30))))
        gt = SceneGraph(objects=gt_objs, relationships=derive_relationships(gt_objs, VOCAB))
        p_objs = []
        for o in gt_objs:  # noisy copies, some missed, some duplicated, some wrong class
            for _ in range(int(rng.integers(0, 3))):
                j = rng.normal(0, 6, 4)
                c = o.class_id if rng.random() > 0.15 else int(rng.integers(num_classes))
                b = (
                    o.box[0] + j[0],
                    o.box[1] + j[1],
                    max(o.box[2] + j[2], o.box[0] + j[0] + 1),
                    max(o.box[3] + j[3], o.box[1] + j[1] + 1),
                )
                p_objs.append(obj(c, b, float(rng.uniform(0.05, 1.0))))
        for _ in range(int(rng.integers(0, 3))):  # pure false positives
            x, y = rng.uniform(0, 200, 2)
            p_objs.append(obj(int(rng.integers(num_classes)), (x, y, x + 20, y + 20), float(rng.uniform(0.05, 1))))
        rels = []
        for s in range(len(p_objs)):
            for o in range(len(p_objs)):
                if s != o and rng.random() < 0.5:
                    pid = int(rng.integers(4))
                    rels.append(Relationship(s, o, VOCAB.predicates[pid], pid, float(rng.uniform(0, 1))))
        preds.append(SceneGraph(objects=p_objs, relationships=rels))
        gts.append(gt)
    return preds, gts


@pytest.mark.parametrize("seed", range(8))
def test_fast_metrics_agree_with_the_slow_reference(seed):
    rng = np.random.default_rng(seed)
    preds, gts = random_case(rng)
    fast = average_precision(preds, gts, 3)["ap"]
    slow = reference_average_precision(preds, gts, 3)
    np.testing.assert_allclose(fast, slow, atol=1e-12)
    for k in (5, 20, 50):
        f = triplet_recall(preds, gts, ks=(k,))[f"R@{k}"]
        s = reference_triplet_recall(preds, gts, ks=(k,))[f"R@{k}"]
        assert (math.isnan(f) and math.isnan(s)) or f == pytest.approx(s, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_ap_agrees_with_torchmetrics(seed):
    from torchmetrics.detection import MeanAveragePrecision

    rng = np.random.default_rng(100 + seed)
    preds, gts = random_case(rng, n_images=8)
    metric = MeanAveragePrecision(iou_type="bbox", iou_thresholds=[0.5], class_metrics=True)

    def td(g, with_scores):
        d = {
            "boxes": torch.tensor([o.box for o in g.objects], dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor([o.class_id for o in g.objects], dtype=torch.long),
        }
        if with_scores:
            d["scores"] = torch.tensor([o.score for o in g.objects], dtype=torch.float32)
        return d

    metric.update([td(p, True) for p in preds], [td(g, False) for g in gts])
    tm = metric.compute()
    ours = average_precision(preds, gts, 3)
    tm_classes = tm["classes"].tolist()
    tm_ap = tm["map_per_class"].tolist()
    for c in range(3):
        if math.isnan(ours["ap"][c]):
            assert c not in tm_classes or tm_ap[tm_classes.index(c)] == -1
        else:
            assert ours["ap"][c] == pytest.approx(tm_ap[tm_classes.index(c)], abs=1e-4)
    assert ours["map"] == pytest.approx(float(tm["map_50"]), abs=1e-4)


def test_reference_iou():
    from reference_metrics import reference_iou

    assert reference_iou((0, 0, 2, 2), (1, 0, 3, 2)) == pytest.approx(1 / 3)
    assert reference_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
