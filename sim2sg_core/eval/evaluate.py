"""Evaluate a Predictor on a labelled dataset: detection AP, triplet Recall@K and PredCls.

Predictions for AP and Recall@K use a low score threshold (0.05) and up to 100 objects, as the
ranking metrics expect; the Predictor's own thresholds are restored afterwards.
"""
from __future__ import annotations

import math
import time
from typing import Optional

import torch

from sim2sg_core.eval.detection import average_precision
from sim2sg_core.eval.scene_graph import predicate_accuracy, triplet_recall
from sim2sg_core.model.predictor import Predictor
from sim2sg_core.model.preprocess import graph_to_target, images_to_tensor


@torch.no_grad()
def predcls_predictions(predictor: Predictor, images, graphs) -> tuple[list, list]:
    """Predicted vs true predicate ids for every GT relationship, given GT boxes and classes."""
    model, dev = predictor.model, predictor.device
    mode, crop = getattr(predictor, "resize_mode", "stretch"), getattr(predictor, "crop_bottom", 0.0)
    x = images_to_tensor(images, predictor.input_size, predictor.mean, predictor.std, mode, crop).to(dev)
    with torch.inference_mode(), predictor._autocast():
        z = model.encode(x)
        tg = [graph_to_target(g, predictor.input_size, (im.shape[1], im.shape[0]), mode, crop)
              for im, g in zip(images, graphs)]
        logits = model.relations(z, [t["boxes"].to(dev) for t in tg], [t["labels"].to(dev) for t in tg],
                                 [t["relations"][:, :2].to(dev) for t in tg], predictor.input_size)
    pred = logits.float().argmax(-1).cpu().tolist()
    true = torch.cat([t["relations"][:, 2] for t in tg]).tolist()
    return pred, true


def evaluate(predictor: Predictor, dataset, num_images: Optional[int] = None, batch_size: int = 8,
             progress: bool = True, score_threshold: float = 0.05, max_objects: int = 100) -> dict:
    """Metrics of ``predictor`` on ``dataset`` (items ``(rgb, SceneGraph)``), as a JSON-able dict."""
    from tqdm import tqdm
    n = len(dataset) if num_images is None else min(int(num_images), len(dataset))
    saved = (predictor.score_threshold, predictor.relation_threshold, predictor.max_objects)
    predictor.score_threshold, predictor.relation_threshold, predictor.max_objects = score_threshold, 0.0, max_objects
    preds, gts, pc_pred, pc_true = [], [], [], []
    t_model = 0.0
    try:
        for start in tqdm(range(0, n, batch_size), disable=not progress, desc="eval", dynamic_ncols=True):
            items = [dataset[i] for i in range(start, min(start + batch_size, n))]
            images = [it[0] for it in items]
            graphs = [it[1] for it in items]
            t0 = time.perf_counter()
            preds.extend(predictor.predict(images))
            t_model += time.perf_counter() - t0
            gts.extend(graphs)
            p, t = predcls_predictions(predictor, images, graphs)
            pc_pred += p
            pc_true += t
    finally:
        predictor.score_threshold, predictor.relation_threshold, predictor.max_objects = saved
    vocab = predictor.vocab
    det = average_precision(preds, gts, len(vocab.classes))
    rec = triplet_recall(preds, gts, ks=(20, 50))
    return {
        "num_images": n, "model_id": predictor.model_id,
        "per_class": {c: {"ap50": det["ap"][i], "num_gt": det["num_gt"][i], "num_det": det["num_det"][i]}
                      for i, c in enumerate(vocab.classes)},
        "map50": det["map"], "ap_interpolation": det["interpolation"],
        "recall@20": rec["R@20"], "recall@50": rec["R@50"], "recall_images": rec["num_images"],
        "predcls_accuracy": predicate_accuracy(pc_pred, pc_true), "num_relationships": len(pc_true),
        "seconds_per_image": t_model / max(n, 1),
    }


def _fmt(v) -> str:
    return "  n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def format_table(results: dict) -> str:
    """Per-class AP table plus the scene-graph numbers, for the terminal."""
    width = max([len(c) for c in results["per_class"]] + [8])
    lines = [f"{'class':<{width}}  AP@0.5   #GT  #det", "-" * (width + 22)]
    for c, r in results["per_class"].items():
        lines.append(f"{c:<{width}}  {_fmt(r['ap50']):>6}  {r['num_gt']:>4}  {r['num_det']:>4}")
    lines += ["-" * (width + 22),
              f"{'mAP@0.5':<{width}}  {_fmt(results['map50']):>6}   ({results['ap_interpolation']})",
              f"Recall@20 {_fmt(results['recall@20'])}   Recall@50 {_fmt(results['recall@50'])}   "
              f"(graph constraint, {results['recall_images']} images with relationships)",
              f"PredCls predicate accuracy {_fmt(results['predcls_accuracy'])} "
              f"over {results['num_relationships']} relationships",
              f"{results['num_images']} images, {1000 * results['seconds_per_image']:.1f} ms/image (predict)"]
    return "\n".join(lines)
