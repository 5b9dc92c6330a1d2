"""Evaluate a Predictor on a labelled dataset: detection AP and the Scene-Graph-Benchmark modes.

- **SGDet**: the model detects everything; its triplets are ranked (Recall@K of ``Predictor.predict``).
- **SGCls**: ground-truth boxes are given; the model classifies each box (the CenterNet class
  heatmap, max over the 3×3 cells around the box centre: class = arg-max, score = its value) and
  scores the predicates of every allowed ordered pair with the relation head.
- **PredCls**: ground-truth boxes and classes are given; the relation head scores every allowed
  ordered pair (triplet score = predicate probability). Its predicate *accuracy* on the
  ground-truth pairs is kept as ``predcls_accuracy``.

Each mode reports ``R@K`` (graph constraint), ``ngR@K`` (no graph constraint), ``mR@K`` and
``ngmR@K`` (see :mod:`sim2sg_core.eval.scene_graph`). Predictions use a low score threshold (0.05)
and up to 100 objects, as the ranking metrics expect; the Predictor's own thresholds are restored.

``difficulty`` (None | "easy" | "moderate" | "hard", KITTI) filters every number; when the labels
carry truncation / occlusion, ``results["difficulties"]`` also holds AP and SGDet recall per level.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from sim2sg_core.eval.detection import match_detections, mean_ap
from sim2sg_core.eval.ignore import DIFFICULTIES, get_difficulty, labels_carry_difficulty_fields
from sim2sg_core.eval.scene_graph import predicate_accuracy, scene_graph_recall
from sim2sg_core.model.predictor import Predictor
from sim2sg_core.model.preprocess import ResizeSpec, images_to_tensor
from sim2sg_core.model.relations import candidate_pairs, pack_pairs
from sim2sg_core.scene_graph import Relationship, SceneGraph, SceneObject

#: Scene-Graph-Benchmark mode names, in the order tables show them.
SG_MODES = ("PredCls", "SGCls", "SGDet")
RECALL_KS = (20, 50)


def _raw_outputs(predictor: Predictor, x: torch.Tensor):
    """Heatmap + features of a batch and the pair-scoring function, for either backend."""
    model: Any = predictor.model
    if hasattr(model, "encode"):  # SGModel
        with torch.inference_mode(), predictor.autocast():
            out = model(x)
        return out, model.relations.score
    heatmap, _size, _offset, features = model.detector.run(None, {"images": x.float().cpu().contiguous().numpy()})
    return {
        "heatmap": torch.from_numpy(heatmap),
        "features": torch.from_numpy(features),
        "image_size": (int(x.shape[-1]), int(x.shape[-2])),
    }, model._score_pairs


def _input_boxes(spec: ResizeSpec, graph: SceneGraph, source_size) -> tuple[np.ndarray, np.ndarray]:
    """Label boxes → input pixels and the objects still in view (a bottom crop can drop some)."""
    boxes = np.array([o.box for o in graph.objects], dtype=np.float64).reshape(-1, 4)
    if spec.mode == "stretch" and not spec.crop_bottom:
        sx, sy = spec.input_size[0] / source_size[0], spec.input_size[1] / source_size[1]
        return boxes * np.array([sx, sy, sx, sy]), np.ones(len(boxes), dtype=bool)
    return spec.label_boxes(boxes, source_size)


def _with_all_predicates(
    objects: list, pairs: np.ndarray, probs: np.ndarray, obj_scores: np.ndarray, predicates: Sequence[str]
) -> list:
    rels: list[Relationship] = []
    for (s, o), pr in zip(pairs.tolist(), probs):
        w = obj_scores[s] * obj_scores[o]
        rels.extend(Relationship(s, o, predicates[k], k, float(pr[k] * w)) for k in range(len(pr)))
    return rels


@torch.no_grad()
def given_box_predictions(predictor: Predictor, images, graphs) -> dict:
    """PredCls and SGCls prediction graphs (ground-truth boxes; every predicate of every allowed pair,
    boxes in source pixels, objects in the labels' order minus any a bottom crop removes) plus the
    PredCls predicted / true predicate ids of the ground-truth relationships.

    Returns ``{"PredCls": [SceneGraph], "SGCls": [SceneGraph], "accuracy_pred": [...], "accuracy_true": [...],
    "class_right": int, "class_total": int}`` (the last two: SGCls boxes classified right / all).
    """
    model, dev = predictor.model, predictor.device
    spec = ResizeSpec(
        predictor.input_size, getattr(predictor, "resize_mode", "stretch"), getattr(predictor, "crop_bottom", 0.0)
    )
    x = images_to_tensor(images, predictor.input_size, predictor.mean, predictor.std, spec.mode, spec.crop_bottom).to(
        dev
    )
    out, score_pairs = _raw_outputs(predictor, x)
    heat = F.max_pool2d(out["heatmap"].float().sigmoid(), 3, stride=1, padding=1)  # (B, C, h, w)
    stride = int(getattr(model, "stride", 4))
    subject_mask = model.subject_mask.cpu()
    vocab = predictor.vocab
    views = []  # per image: kept label indices, input boxes, GT labels, SGCls labels / scores
    for i, (im, g) in enumerate(zip(images, graphs)):
        boxes, keep = _input_boxes(spec, g, (im.shape[1], im.shape[0]))
        idx = np.flatnonzero(keep)
        b = torch.from_numpy(boxes[idx]).float()
        gt_lab = torch.tensor([g.objects[j].class_id for j in idx], dtype=torch.long)
        h, w = heat.shape[-2:]
        cx = ((b[:, 0] + b[:, 2]) / 2 / stride).long().clamp(0, w - 1)
        cy = ((b[:, 1] + b[:, 3]) / 2 / stride).long().clamp(0, h - 1)
        cls_scores = heat[i][:, cy.to(heat.device), cx.to(heat.device)].cpu()  # (C, N)
        sg_score, sg_lab = cls_scores.max(0) if len(idx) else (torch.zeros(0), torch.zeros(0, dtype=torch.long))
        views.append((idx, b, gt_lab, sg_lab, sg_score))
    result: dict[str, Any] = {"accuracy_pred": [], "accuracy_true": [], "class_right": 0, "class_total": 0}
    for idx, _b, gt_lab, sg_lab, _s in views:
        result["class_right"] += int((gt_lab == sg_lab).sum())
        result["class_total"] += len(idx)
    for mode in ("PredCls", "SGCls"):
        labels = [v[2] if mode == "PredCls" else v[3] for v in views]
        pairs = [candidate_pairs(lab, subject_mask) for lab in labels]
        feats = out["features"]
        packed = pack_pairs(
            [v[1].to(feats.device) for v in views],
            [lab.to(feats.device) for lab in labels],
            [p.to(feats.device) for p in pairs],
            out["image_size"],
            feats.dtype,
            feats.device,
        )
        if packed is None:
            logits = torch.zeros(0, len(vocab.predicates))
        else:
            with torch.inference_mode(), predictor.autocast():
                logits = score_pairs(feats, *packed)
        probs_all = logits.float().softmax(-1).cpu().numpy()
        graphs_out, k = [], 0
        for (idx, _b, _gt, sg_lab, sg_score), g, p in zip(views, graphs, pairs):
            probs = probs_all[k : k + len(p)]
            k += len(p)
            pn = p.numpy().reshape(-1, 2)
            if mode == "PredCls":
                objs = [SceneObject(o.class_name, o.class_id, o.box, 1.0) for o in (g.objects[j] for j in idx)]
                obj_scores = np.ones(len(idx))
                # predicate accuracy on the ground-truth pairs still in view (a pair the subject rule
                # excludes counts as wrong: predicted id -1)
                row = {(int(s), int(o)): r for r, (s, o) in enumerate(pn.tolist())}
                local = {int(j): n for n, j in enumerate(idx)}
                for r in g.relationships:
                    if r.subject in local and r.object in local:
                        hit = row.get((local[r.subject], local[r.object]))
                        result["accuracy_pred"].append(int(probs[hit].argmax()) if hit is not None else -1)
                        result["accuracy_true"].append(int(r.predicate_id))
            else:
                objs = [
                    SceneObject(vocab.classes[int(c)], int(c), g.objects[j].box, float(s))
                    for j, c, s in zip(idx, sg_lab.tolist(), sg_score.tolist())
                ]
                obj_scores = sg_score.numpy().astype(np.float64)
            graphs_out.append(
                SceneGraph(
                    objects=objs,
                    relationships=_with_all_predicates(objs, pn, probs, obj_scores, vocab.predicates),
                    image_width=g.image_width,
                    image_height=g.image_height,
                    model_id=predictor.model_id,
                )
            )
        result[mode] = graphs_out
    return result


def scene_graph_metrics(
    predictions: Sequence[SceneGraph],
    ground_truths: Sequence[SceneGraph],
    predicates,
    ks: Sequence[int] = RECALL_KS,
    difficulty=None,
    per_image: Optional[dict] = None,
) -> dict:
    """One mode's SGB numbers: ``R@K``, ``ngR@K``, ``mR@K``, ``ngmR@K`` and per-predicate R@K / ngR@K
    (by predicate name, predicates present in the ground truth). ``per_image``: a dict that receives the
    graph-constrained per-image recalls (``K -> list``), for records, without a second pass."""
    out: dict = {}
    for prefix, gc in (("", True), ("ng", False)):
        r = scene_graph_recall(predictions, ground_truths, ks, graph_constraint=gc, difficulty=difficulty)
        if gc and per_image is not None:
            per_image.update({k: r[f"per_image@{k}"] for k in ks})
        for k in ks:
            out[f"{prefix}R@{k}"] = r[f"R@{k}"]
            out[f"{prefix}mR@{k}"] = r[f"mR@{k}"]
            out[f"{prefix}R@{k}_per_predicate"] = {predicates[p]: v for p, v in r[f"per_predicate@{k}"].items()}
        out["num_images"] = r["num_images"]
    return out


def evaluate(
    predictor: Predictor,
    dataset,
    num_images: Optional[int] = None,
    batch_size: int = 8,
    progress: bool = True,
    score_threshold: float = 0.05,
    max_objects: int = 100,
    difficulty: Optional[str] = None,
    difficulty_breakdown: Optional[bool] = None,
    keep_records: bool = False,
) -> dict:
    """Metrics of ``predictor`` on ``dataset`` (items ``(rgb, SceneGraph)``), as a JSON-able dict.

    ``keep_records``: also return ``results["records"]``, the per-image ingredients a paired bootstrap
    re-weights (numpy arrays, not JSON: :class:`DetectionMatches` arrays and SGDet recall per image).

    ``difficulty``: KITTI level applied to every number (None = every labelled object).
    ``difficulty_breakdown``: also AP / SGDet recall per KITTI level (None = when the labels carry
    truncation or occlusion).
    """
    diff = get_difficulty(difficulty)
    n = len(dataset) if num_images is None else min(int(num_images), len(dataset))
    saved = (predictor.score_threshold, predictor.relation_threshold, predictor.max_objects)
    predictor.score_threshold, predictor.relation_threshold, predictor.max_objects = score_threshold, 0.0, max_objects
    preds, gts, pc_pred, pc_true = [], [], [], []
    given: dict[str, list[SceneGraph]] = {"PredCls": [], "SGCls": []}
    cls_right = cls_total = 0
    t_model = 0.0
    try:
        for start in tqdm(range(0, n, batch_size), disable=not progress, desc="eval", dynamic_ncols=True):
            items = [dataset[i] for i in range(start, min(start + batch_size, n))]
            images = [it[0] for it in items]
            graphs = [it[1] for it in items]
            t0 = time.perf_counter()
            preds.extend(predictor.predict(images, all_predicates=True))
            t_model += time.perf_counter() - t0
            gts.extend(graphs)
            r = given_box_predictions(predictor, images, graphs)
            given["PredCls"] += r["PredCls"]
            given["SGCls"] += r["SGCls"]
            pc_pred += r["accuracy_pred"]
            pc_true += r["accuracy_true"]
            cls_right, cls_total = cls_right + r["class_right"], cls_total + r["class_total"]
    finally:
        predictor.score_threshold, predictor.relation_threshold, predictor.max_objects = saved
    vocab = predictor.vocab
    matches = match_detections(preds, gts, len(vocab.classes), difficulty=diff)
    ap = matches.ap()
    det = {
        "ap": ap,
        "map": mean_ap(ap),
        "num_gt": matches.num_gt.sum(0).tolist(),
        "num_det": matches.num_det.tolist(),
        "num_ignored": matches.num_ignored.tolist(),
    }
    modes = {"PredCls": given["PredCls"], "SGCls": given["SGCls"], "SGDet": preds}
    sgdet_per_image: dict = {}
    sg = {
        m: scene_graph_metrics(
            p, gts, vocab.predicates, difficulty=diff, per_image=sgdet_per_image if m == "SGDet" else None
        )
        for m, p in modes.items()
    }
    sg["PredCls"]["accuracy"] = predicate_accuracy(pc_pred, pc_true)
    sg["SGCls"]["classification_accuracy"] = cls_right / cls_total if cls_total else math.nan
    results = {
        "num_images": n,
        "model_id": predictor.model_id,
        "difficulty": diff.name if diff else None,
        "per_class": {
            c: {
                "ap50": det["ap"][i],
                "num_gt": det["num_gt"][i],
                "num_det": det["num_det"][i],
                "num_ignored": det["num_ignored"][i],
            }
            for i, c in enumerate(vocab.classes)
        },
        "map50": det["map"],
        "ap_interpolation": "COCO 101-point",
        "num_ignore_regions": sum(len(g.ignore_regions) for g in gts),
        "scene_graph": sg,
        # the SGDet graph-constrained recall under its older names (benchmark tables read these)
        "recall@20": sg["SGDet"]["R@20"],
        "recall@50": sg["SGDet"]["R@50"],
        "recall_images": sg["SGDet"]["num_images"],
        "predcls_accuracy": sg["PredCls"]["accuracy"],
        "num_relationships": len(pc_true),
        "seconds_per_image": t_model / max(n, 1),
    }
    if keep_records:
        results["records"] = {
            **matches.to_arrays(),
            **{f"recall@{k}": np.asarray(sgdet_per_image[k], dtype=np.float64) for k in RECALL_KS},
        }
    if difficulty_breakdown is None:
        difficulty_breakdown = labels_carry_difficulty_fields(gts)
    if difficulty_breakdown:
        results["difficulties"] = {}
        for name in DIFFICULTIES:
            level = match_detections(preds, gts, len(vocab.classes), difficulty=name)  # matched once per level
            level_ap = level.ap()
            rec = scene_graph_recall(preds, gts, RECALL_KS, difficulty=name)
            if keep_records:  # the matches under each level too (a bootstrap of e.g. car AP on KITTI hard)
                results["records"].update({f"{name}.{key}": v for key, v in level.to_arrays().items()})
            results["difficulties"][name] = {
                "map50": mean_ap(level_ap),
                "ap50": dict(zip(vocab.classes, level_ap)),
                "num_gt": dict(zip(vocab.classes, level.num_gt.sum(0).tolist())),
                **{f"SGDet R@{k}": rec[f"R@{k}"] for k in RECALL_KS},
                "SGDet mR@50": rec["mR@50"],
            }
    return results


def _fmt(v) -> str:
    return "  n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def format_table(results: dict) -> str:
    """Per-class AP table (per KITTI difficulty when present) plus the scene-graph modes, for the terminal."""
    width = max([len(c) for c in results["per_class"]] + [10])
    diffs = results.get("difficulties") or {}
    head = f"{'class':<{width}}  AP@0.5   #GT  #det  #ign"
    if diffs:
        head += "  | AP@0.5 " + " ".join(f"{d:>8}" for d in diffs)
    lines = []
    if results.get("difficulty"):
        lines.append(f"KITTI difficulty '{results['difficulty']}' (objects outside it are ignored)")
    lines += [head, "-" * len(head)]
    for c, r in results["per_class"].items():
        row = f"{c:<{width}}  {_fmt(r['ap50']):>6}  {r['num_gt']:>4}  {r['num_det']:>4}  {r.get('num_ignored', 0):>4}"
        if diffs:
            row += "  |        " + " ".join(f"{_fmt(d['ap50'][c]):>8}" for d in diffs.values())
        lines.append(row)
    tail = f"{'mAP@0.5':<{width}}  {_fmt(results['map50']):>6}"
    if diffs:
        tail += " " * 18 + "  |        " + " ".join(f"{_fmt(d['map50']):>8}" for d in diffs.values())
    lines += [
        "-" * len(head),
        tail,
        f"AP: {results['ap_interpolation']} interpolation"
        + ("; right: per KITTI difficulty (easy / moderate / hard)" if diffs else ""),
    ]
    if results.get("num_ignore_regions"):
        lines.append(
            f"{results['num_ignore_regions']} ignore regions (DontCare / ignored types / label filter): "
            "detections inside them are neither TP nor FP"
        )
    sg = results.get("scene_graph")
    if sg:
        keys = [f"{p}{m}@{k}" for p in ("", "ng") for m in ("R", "mR") for k in RECALL_KS]
        lines += [
            "",
            "Scene graphs (Scene-Graph-Benchmark): R = Recall@K with graph constraint, ng = without, "
            "mR = mean over predicates",
            f"{'mode':<8} " + " ".join(f"{k:>8}" for k in keys),
        ]
        for mode in SG_MODES:
            if mode in sg:
                lines.append(f"{mode:<8} " + " ".join(f"{_fmt(sg[mode].get(k)):>8}" for k in keys))
        lines.append(
            f"{sg['SGDet']['num_images']} images with relationships; PredCls predicate accuracy "
            f"{_fmt(results['predcls_accuracy'])} over {results['num_relationships']} relationships; "
            f"SGCls box classification accuracy {_fmt(sg['SGCls'].get('classification_accuracy'))}"
        )
    else:  # results written before the SGB modes
        lines.append(f"Recall@20 {_fmt(results['recall@20'])}   Recall@50 {_fmt(results['recall@50'])}")
    if diffs:
        lines.append(
            "SGDet R@50 per difficulty: " + ", ".join(f"{d} {_fmt(v['SGDet R@50'])}" for d, v in diffs.items())
        )
    lines.append(f"{results['num_images']} images, {1000 * results['seconds_per_image']:.1f} ms/image (predict)")
    return "\n".join(lines)
