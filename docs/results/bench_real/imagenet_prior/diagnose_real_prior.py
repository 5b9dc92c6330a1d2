#!/usr/bin/env python3
"""Diagnosis, not a test: how far does the ImageNet vehicle prior carry a checkpoint on real labelled frames?

For one checkpoint and one KITTI-layout folder it reports car AP at IoU 0.5 / 0.3 / 0.1 for
  - the model as it is,
  - the model with each car score multiplied by the mean ImageNet vehicle probability inside its box
    (``VehicleScorer.vehicle_map``: the classifier applied per location, no real label involved),
  - the vehicle map alone: connected regions above 0.5 as car boxes (a label-free "detector").
Nothing is tuned: the map settings (width 1280, pool 5, region threshold 0.5, 400 px minimum area) were
fixed before measuring, by looking at unlabelled frames only.

  python docs/results/bench_real/imagenet_prior/diagnose_real_prior.py \
      --ckpt runs/bench_real/checkpoints/sim2sg_dr_seed0.pt \
      --data ../shared/real/nuscenes_front/dev --camera-height 1.5 \
      --json docs/results/bench_real/imagenet_prior/sim2sg_dr_seed0.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))  # the repository root

from sim2sg_core.data.datasets import KittiDataset  # noqa: E402
from sim2sg_core.eval.detection import average_precision  # noqa: E402
from sim2sg_core.model.imagenet_prior import VehicleScorer  # noqa: E402
from sim2sg_core.model.predictor import Predictor  # noqa: E402
from sim2sg_core.scene_graph import SceneGraph, SceneObject  # noqa: E402
from sim2sg_core.utils.io import atomic_write_text  # noqa: E402

MAP_WIDTH, MAP_POOL, REGION_THRESHOLD, MIN_REGION_AREA = 1280, 5, 0.5, 400


def rescored(graph: SceneGraph, vmap: np.ndarray, car: int) -> SceneGraph:
    objs = []
    for o in graph.objects:
        if o.class_id != car:
            objs.append(o)
            continue
        x1, y1 = max(int(round(o.box[0])), 0), max(int(round(o.box[1])), 0)
        x2, y2 = max(int(round(o.box[2])), x1 + 1), max(int(round(o.box[3])), y1 + 1)
        objs.append(dataclasses.replace(o, score=o.score * float(vmap[y1:y2, x1:x2].mean())))
    return dataclasses.replace(graph, objects=objs)


def map_regions(graph: SceneGraph, vmap: np.ndarray, car: int) -> SceneGraph:
    n, lab, stats, _ = cv2.connectedComponentsWithStats((vmap > REGION_THRESHOLD).astype(np.uint8))
    objs = [
        SceneObject(
            class_name="car",
            class_id=car,
            box=(float(x), float(y), float(x + w), float(y + h)),
            score=float(vmap[lab == k].mean()),
        )
        for k, (x, y, w, h, area) in enumerate(stats)
        if k > 0 and area >= MIN_REGION_AREA
    ]
    return dataclasses.replace(graph, objects=objs, relationships=[])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--data", required=True, help="KITTI-layout folder with labels")
    ap.add_argument("--camera-height", type=float, default=1.5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pred = Predictor.from_checkpoint(args.ckpt, device="cpu")
    pred.score_threshold, pred.max_objects = 0.01, 100
    scorer = VehicleScorer(device="cpu")
    data = KittiDataset(args.data, vocab=pred.vocab, camera_height_m=args.camera_height)
    car = pred.vocab.classes.index("car")
    rows: dict[str, list] = {"model": [], "model x vehicle map": [], "vehicle-map regions alone": []}
    gts = []
    for i in tqdm(range(len(data)), desc="frames"):
        image, gt = data[i]
        graph = pred.predict([image])[0]
        vmap = scorer.vehicle_map(image, width=MAP_WIDTH, pool=MAP_POOL)
        rows["model"].append(graph)
        rows["model x vehicle map"].append(rescored(graph, vmap, car))
        rows["vehicle-map regions alone"].append(map_regions(graph, vmap, car))
        gts.append(gt)
    out = {
        "ckpt": args.ckpt,
        "data": args.data,
        "num_images": len(data),
        "settings": {
            "map_width": MAP_WIDTH,
            "map_pool": MAP_POOL,
            "region_threshold": REGION_THRESHOLD,
            "min_region_area": MIN_REGION_AREA,
        },
        "car_ap": {},
    }
    for name, preds in rows.items():
        out["car_ap"][name] = {}
        for iou in (0.5, 0.3, 0.1):
            d = average_precision(preds, gts, len(pred.vocab.classes), iou_threshold=iou)
            out["car_ap"][name][f"iou{iou}"] = round(float(d["ap"][car]), 4)
            out["car_ap"][name]["num_det"] = int(d["num_det"][car])
        out["car_ap"][name]["num_gt"] = int(d["num_gt"][car])
        print(f"{name:28s} " + "  ".join(f"{k} {v}" for k, v in out["car_ap"][name].items()))
    atomic_write_text(Path(args.json), json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
