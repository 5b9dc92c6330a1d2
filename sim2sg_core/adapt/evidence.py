"""Real-object evidence from an ImageNet classifier: vet pseudo-labels without a single real label.

Under a large appearance gap a detector trained on rendered cars is confidently wrong on real
frames (trees, fences, facades). The ImageNet-pretrained classifier that ships with the encoder's
weights has seen real vehicles of about 20 kinds, so the summed probability of those classes on a
crop around a predicted car is independent evidence that a real car is there. Label alignment
(and the self-training baseline) only lift predictions that pass it into their statistics.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from sim2sg_core.model.imagenet_prior import VehicleScorer
from sim2sg_core.scene_graph import SceneGraph, keep_objects


class EvidenceFilter:
    """Drops predicted objects of ``classes`` whose ImageNet vehicle evidence is below ``min_score``.

    Only objects at least ``score_threshold`` confident are scored (the others are not used as
    pseudo-labels anyway and are kept untouched), so the classifier runs on a few crops per image.
    """

    def __init__(
        self,
        *,
        classes: Sequence[str] = ("car",),
        min_score: float = 0.1,
        context: float = 0.15,
        input_size: int = 128,
        score_threshold: float = 0.0,
        device: str = "cpu",
        scorer=None,
    ):
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"evidence min_score must be in [0, 1], got {min_score}")
        self.classes = tuple(classes)
        self.min_score, self.context, self.score_threshold = float(min_score), float(context), float(score_threshold)
        if scorer is None:
            scorer = VehicleScorer(device=device, input_size=input_size)
        self.scorer = scorer

    def filter(self, graphs: Sequence[SceneGraph], images: Sequence[np.ndarray]) -> tuple[list[SceneGraph], dict]:
        """(vetted graphs, {"scored", "rejected", "mean_evidence"})."""
        if len(graphs) != len(images):
            raise ValueError(f"{len(graphs)} graphs for {len(images)} images")
        out, scored, rejected, total = [], 0, 0, 0.0
        for g, im in zip(graphs, images):
            idx = [
                i for i, o in enumerate(g.objects) if o.class_name in self.classes and o.score >= self.score_threshold
            ]
            if not idx:
                out.append(g)
                continue
            ev = np.asarray(
                self.scorer.score_crops(
                    im, np.array([g.objects[i].box for i in idx], np.float64), context=self.context
                ),
                dtype=np.float64,
            )
            bad = {i for i, e in zip(idx, ev) if e < self.min_score}
            scored += len(idx)
            rejected += len(bad)
            total += float(ev.sum())
            out.append(keep_objects(g, [i for i in range(len(g.objects)) if i not in bad]) if bad else g)
        return out, {
            "scored": scored,
            "rejected": rejected,
            "mean_evidence": round(total / scored, 4) if scored else None,
        }


def evidence_filter_from_config(cfg, score_threshold: float, device: str = "cpu") -> Optional[EvidenceFilter]:
    """The filter an ``EvidenceConfig`` asks for, or None when it is off."""
    if not cfg.enabled:
        return None
    return EvidenceFilter(
        classes=cfg.classes,
        min_score=cfg.min_score,
        context=cfg.context,
        input_size=cfg.input_size,
        score_threshold=score_threshold,
        device=device,
    )


__all__ = ["EvidenceFilter", "evidence_filter_from_config"]
