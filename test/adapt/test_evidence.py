"""Pseudo-label vetting by ImageNet vehicle evidence: what is dropped, what is kept, how graphs stay valid."""

from __future__ import annotations

import numpy as np
import pytest

from sim2sg_core.adapt.baselines import configure, get_method
from sim2sg_core.adapt.config import AdaptConfigError, load_adapt_config
from sim2sg_core.adapt.evidence import EvidenceFilter
from sim2sg_core.scene_graph import Relationship, SceneGraph, SceneObject


class WidthScorer:
    """Evidence = box width / 100 (a deterministic stand-in for the classifier's crop score, so the
    filter's bookkeeping can be checked exactly; the real classifier is tested in test/model)."""

    def __init__(self):
        self.calls = []

    def score_crops(self, image, boxes, context=0.15):
        self.calls.append(len(boxes))
        return np.clip((boxes[:, 2] - boxes[:, 0]) / 100.0, 0.0, 1.0)


def _obj(cls, cid, x0, x1, score):
    return SceneObject(class_name=cls, class_id=cid, box=(x0, 10.0, x1, 50.0), score=score)


def _graph():
    objs = [
        _obj("car", 0, 0, 50, 0.9),  # evidence 0.5: kept
        _obj("car", 0, 100, 105, 0.9),  # evidence 0.05: dropped
        _obj("pedestrian", 1, 200, 202, 0.9),  # not a vetted class: kept
        _obj("car", 0, 300, 302, 0.1),
    ]  # below the confidence threshold: not scored, kept
    rels = [
        Relationship(0, 1, "left", 1, 0.8),
        Relationship(0, 2, "left", 1, 0.7),
        Relationship(1, 2, "left", 1, 0.6),
        Relationship(3, 0, "right", 2, 0.5),
    ]
    return SceneGraph(objects=objs, relationships=rels, image_width=400, image_height=60)


def test_filter_drops_unconvincing_confident_cars_and_reindexes_relationships():
    scorer = WidthScorer()
    f = EvidenceFilter(min_score=0.2, score_threshold=0.5, scorer=scorer)
    (g,), stats = f.filter([_graph()], [np.zeros((60, 400, 3), np.uint8)])
    assert [o.box[0] for o in g.objects] == [0, 200, 300]
    assert [(r.subject, r.object) for r in g.relationships] == [(0, 1), (2, 0)]
    g.validate()
    assert stats == {"scored": 2, "rejected": 1, "mean_evidence": pytest.approx(0.275)}
    assert scorer.calls == [2]


def test_images_without_vetted_objects_are_not_scored():
    scorer = WidthScorer()
    empty = SceneGraph(objects=[], relationships=[], image_width=4, image_height=4)
    out, stats = EvidenceFilter(scorer=scorer).filter([empty], [np.zeros((4, 4, 3), np.uint8)])
    assert out == [empty] and scorer.calls == [] and stats["scored"] == 0 and stats["mean_evidence"] is None


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="min_score"):
        EvidenceFilter(min_score=1.5, scorer=WidthScorer())
    with pytest.raises(ValueError, match="2 graphs for 1 images"):
        EvidenceFilter(scorer=WidthScorer()).filter([_graph(), _graph()], [np.zeros((4, 4, 3), np.uint8)])
    with pytest.raises(AdaptConfigError, match="evidence.min_score"):
        load_adapt_config(overrides={"evidence": {"min_score": -0.1}})


def test_method_rows_switch_evidence_and_dr_pretraining():
    base = load_adapt_config()
    assert not base.evidence.enabled
    assert configure(base, get_method("sim2sg_evidence")).evidence.enabled
    assert not configure(base, get_method("sim2sg_full")).evidence.enabled
    dr = get_method("sim2sg_dr")
    assert dr.pretrain_domain == "randomized" and dr.kind == "adapt"
    cfg = configure(base, dr)
    assert cfg.label_alignment.enabled and cfg.prediction_alignment.enabled and cfg.appearance_alignment.enabled
