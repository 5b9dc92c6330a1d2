"""Slow reference metrics in plain Python, written for obviousness: the tests check the fast implementations in
``sim2sg_core.eval`` against them (Scene-Graph-Benchmark's habit of a reference slow metric beside the fast one)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

from sim2sg_core.eval.detection import RECALL_POINTS, as_arrays


def reference_iou(a, b) -> float:
    """IoU of two ``(x_min, y_min, x_max, y_max)`` boxes in plain Python (the slow references' IoU)."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _ioa_py(a, region) -> float:
    iw = max(0.0, min(a[2], region[2]) - max(a[0], region[0]))
    ih = max(0.0, min(a[3], region[3]) - max(a[1], region[1]))
    area = (a[2] - a[0]) * (a[3] - a[1])
    return iw * ih / area if area > 0 else 0.0


#: KITTI difficulty levels written out again (min height, max occlusion level, max truncation).
_REF_DIFFICULTY = {"easy": (40, 0, 0.15), "moderate": (25, 1, 0.30), "hard": (25, 2, 0.50)}


def reference_in_difficulty(obj_box, truncation, occlusion, difficulty) -> bool:
    if difficulty is None:
        return True
    min_h, max_level, max_trunc = _REF_DIFFICULTY[difficulty]
    level = 0 if occlusion < 0.1 else (1 if occlusion < 0.5 else (2 if occlusion < 1.0 else 3))
    return obj_box[3] - obj_box[1] >= min_h and level <= max_level and truncation <= max_trunc + 1e-9


def reference_detection_ignorable(box, ignore_boxes, difficulty, ioa_threshold=0.5) -> bool:
    if any(_ioa_py(box, r) >= ioa_threshold for r in ignore_boxes):
        return True
    return difficulty is not None and box[3] - box[1] < _REF_DIFFICULTY[difficulty][0]


def reference_average_precision(
    predictions: Sequence,
    ground_truths: Sequence,
    num_classes: int,
    iou_threshold: float = 0.5,
    max_dets: int = 100,
    difficulty=None,
    ioa_threshold: float = 0.5,
) -> list:
    aps = []
    for c in range(num_classes):
        records, total_gt = [], 0
        for _img, (pred, gt) in enumerate(zip(predictions, ground_truths)):
            p, g = as_arrays(pred), as_arrays(gt)
            gts: list[list] = []
            ign_gts: list[list] = []
            for b, label, t, o in zip(g["boxes"], g["labels"], g["truncation"], g["occlusion"]):
                if label == c:
                    (gts if reference_in_difficulty(b, t, o, difficulty) else ign_gts).append(list(b))
            regions = [list(r) for r in g["ignore"]]
            dets = sorted(
                [(float(s), list(b)) for b, s, label in zip(p["boxes"], p["scores"], p["labels"]) if label == c],
                key=lambda d: -d[0],
            )[:max_dets]
            total_gt += len(gts)
            used = [False] * len(gts)
            used_ign = [False] * len(ign_gts)
            for s, b in dets:
                best, best_iou = -1, iou_threshold
                for j, gb in enumerate(gts):
                    if used[j]:
                        continue
                    v = reference_iou(b, gb)
                    if v >= best_iou:
                        best, best_iou = j, v
                if best >= 0:
                    used[best] = True
                    records.append((s, 1))
                    continue
                best, best_iou = -1, iou_threshold
                for j, gb in enumerate(ign_gts):
                    if not used_ign[j] and reference_iou(b, gb) >= best_iou:
                        best, best_iou = j, reference_iou(b, gb)
                if best >= 0:
                    used_ign[best] = True  # on an object outside the difficulty: ignored
                    continue
                if reference_detection_ignorable(b, regions, difficulty, ioa_threshold):
                    continue  # in an ignore region / too small: ignored
                records.append((s, 0))
        if total_gt == 0:
            aps.append(math.nan)
            continue
        records.sort(key=lambda r: -r[0])
        precisions, recalls, tp = [], [], 0
        for i, (_, hit) in enumerate(records):
            tp += hit
            precisions.append(tp / (i + 1))
            recalls.append(tp / total_gt)
        total = 0.0
        for r in RECALL_POINTS:
            total += max([p for p, rc in zip(precisions, recalls) if rc >= r], default=0.0)
        aps.append(total / 101)
    return aps


def reference_triplet_recall(predictions, ground_truths, ks=(20, 50), iou_threshold=0.5) -> dict:
    out = {}
    for k in ks:
        recalls = []
        for pred, gt in zip(predictions, ground_truths):
            if not gt.relationships:
                continue
            per_pair: dict = {}
            for r in pred.relationships:
                if (r.subject, r.object) not in per_pair or r.score > per_pair[(r.subject, r.object)].score:
                    per_pair[(r.subject, r.object)] = r
            top = sorted(per_pair.values(), key=lambda r: -r.score)[:k]
            hits = sum(any(_reference_hit(r, g, pred, gt, iou_threshold) for r in top) for g in gt.relationships)
            recalls.append(hits / len(gt.relationships))
        out[f"R@{k}"] = sum(recalls) / len(recalls) if recalls else math.nan
    return out


def _reference_hit(r, g, pred, gt, iou_threshold: float) -> bool:
    """Does predicted relationship ``r`` recall ground-truth relationship ``g`` (same classes and predicate,
    both boxes at IoU ≥ the threshold)? The slow references' one triplet test."""
    ps, po = pred.objects[r.subject], pred.objects[r.object]
    gs, go = gt.objects[g.subject], gt.objects[g.object]
    return (
        ps.class_id == gs.class_id
        and po.class_id == go.class_id
        and r.predicate_id == g.predicate_id
        and reference_iou(ps.box, gs.box) >= iou_threshold
        and reference_iou(po.box, go.box) >= iou_threshold
    )


def reference_scene_graph_recall(
    predictions,
    ground_truths,
    ks=(20, 50),
    iou_threshold=0.5,
    graph_constraint=True,
    difficulty=None,
    ioa_threshold=0.5,
) -> dict:
    """Slow pure-Python R@K and mR@K (see the module docstring), for the tests."""
    out: dict = {}
    for k in ks:
        recalls: list[float] = []
        by_predicate: dict[int, list[float]] = {}
        for pred, gt in zip(predictions, ground_truths):
            inside = [reference_in_difficulty(o.box, o.truncation, o.occlusion, difficulty) for o in gt.objects]
            gt_rels = [g for g in gt.relationships if inside[g.subject] and inside[g.object]]
            if not gt_rels:
                continue
            regions = [list(r.box) for r in gt.ignore_regions]

            def ignored(p, gt=gt, inside=inside, regions=regions):
                close = [o.class_id == p.class_id and reference_iou(p.box, o.box) >= iou_threshold for o in gt.objects]
                if any(c and ins for c, ins in zip(close, inside)):
                    return False  # matches a real object
                on_other = any(c and not ins for c, ins in zip(close, inside))
                return on_other or reference_detection_ignorable(p.box, regions, difficulty, ioa_threshold)

            if graph_constraint:
                per_pair: dict = {}
                for r in pred.relationships:
                    if (r.subject, r.object) not in per_pair or r.score > per_pair[(r.subject, r.object)].score:
                        per_pair[(r.subject, r.object)] = r
                cands = list(per_pair.values())
            else:
                cands = list(pred.relationships)
            cands = [r for r in cands if not ignored(pred.objects[r.subject]) and not ignored(pred.objects[r.object])]
            top = sorted(cands, key=lambda r: -r.score)[:k]
            hits_of: dict[int, list[int]] = {}
            for g in gt_rels:
                hit = int(any(_reference_hit(r, g, pred, gt, iou_threshold) for r in top))
                hits_of.setdefault(g.predicate_id, []).append(hit)
            all_hits = [h for v in hits_of.values() for h in v]
            recalls.append(sum(all_hits) / len(all_hits))
            for pid, v in hits_of.items():
                by_predicate.setdefault(pid, []).append(sum(v) / len(v))
        out[f"R@{k}"] = sum(recalls) / len(recalls) if recalls else math.nan
        per_pred = {pid: sum(v) / len(v) for pid, v in sorted(by_predicate.items())}
        out[f"per_predicate@{k}"] = per_pred
        out[f"mR@{k}"] = sum(per_pred.values()) / len(per_pred) if per_pred else math.nan
    return out


def reference_kitti_level_counts(label_dir: Path, type_name: str) -> dict[str, int]:
    """Objects of one KITTI type per level, read straight from the label lines with the devkit's rules (easy:
    box height >= 40 px, occlusion 0, truncation <= 0.15; moderate: >= 25, <= 1, <= 0.30; hard: >= 25, <= 2,
    <= 0.50)."""
    rules = {"easy": (40.0, 0, 0.15), "moderate": (25.0, 1, 0.30), "hard": (25.0, 2, 0.50)}
    out = {}
    for level, (min_height, max_occlusion, max_truncation) in rules.items():
        n = 0
        for p in sorted(Path(label_dir).glob("*.txt")):
            for line in p.read_text().splitlines():
                f = line.split()
                if f and f[0] == type_name:
                    trunc, occ, height = float(f[1]), int(f[2]), float(f[7]) - float(f[5])
                    n += height >= min_height and occ <= max_occlusion and trunc <= max_truncation
        out[level] = n
    return out
