#!/usr/bin/env python3
"""Audit a labelled real folder before trusting AP on it, and score detectors on real frames without labels.

Three checks, all with the ImageNet vehicle classifier (``VehicleScorer``, no real-domain label involved)
and same-row controls (``sim2sg_core.eval.vehicle_evidence``):

1. **Label registration**: do the folder's ground-truth car boxes hold vehicles more often than boxes of
   the same size at the same rows but random columns? AUC 0.5 = no better than chance placement.
2. **Positive control** (``--hand-boxes JSON``): the same test on boxes drawn by eye around clearly
   visible cars on some of the frames, to show the test can tell. The same boxes, used as a detector
   with score 1, are also scored by car AP@0.5 against the folder's labels: a ceiling for a detector
   that finds exactly the visible cars.
3. **Detections** (``--ckpt``, repeatable): each checkpoint's car detections with score >= ``--min-score``
   against their same-row controls: a label-free proxy for precision on real frames. With
   ``--hand-boxes``, also each checkpoint's car AP@0.5 against the hand-drawn boxes on their frames (a
   small, eyeballed set: distant and mostly hidden cars are not drawn, so detections of them count as
   false positives).

  python scripts/audit_real_labels.py --data ../shared/real/nuscenes_front/dev \
      --hand-boxes docs/results/bench_real/label_audit/hand_boxes.json \
      --ckpt runs/bench_real/checkpoints/source_only_seed0.pt ... --out docs/results/bench_real/label_audit
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim2sg_core.data.datasets import KittiDataset  # noqa: E402
from sim2sg_core.eval.detection import average_precision  # noqa: E402
from sim2sg_core.eval.vehicle_evidence import EvidenceResult, vehicle_evidence  # noqa: E402
from sim2sg_core.model.imagenet_prior import VehicleScorer  # noqa: E402
from sim2sg_core.model.predictor import Predictor  # noqa: E402
from sim2sg_core.scene_graph import SceneGraph, SceneObject, Vocabulary  # noqa: E402
from sim2sg_core.sim.domains import load_environment  # noqa: E402
from sim2sg_core.utils.io import atomic_write_text  # noqa: E402


def load_hand_boxes(path: Path) -> dict[str, np.ndarray]:
    """``{"frames": {"<image file name>": [[x1, y1, x2, y2], ...]}}`` → name → (N, 4) array."""
    try:
        data = json.loads(path.read_text())
        frames = data["frames"]
        return {str(k): np.asarray(v, dtype=np.float64).reshape(-1, 4) for k, v in frames.items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        expected = "{'frames': {name: [[x1, y1, x2, y2], ...]}}"
        raise SystemExit(f"{path}: not a hand-box file ({expected}): {e}") from None


def car_boxes(graph: SceneGraph, car: int, min_score: float = 0.0) -> np.ndarray:
    b = [o.box for o in graph.objects if o.class_id == car and o.score >= min_score]
    return np.asarray(b, dtype=np.float64).reshape(-1, 4)


def fmt(r: EvidenceResult) -> str:
    return (
        f"{r.frames} | {r.boxes} | {r.mean_box_score:.3f} | {r.mean_control_score:.3f} | "
        f"**{r.auc:.3f}** [{r.auc_ci95[0]:.3f}, {r.auc_ci95[1]:.3f}]"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, type=Path, help="KITTI-layout folder with labels")
    ap.add_argument("--env", default="drive", help="environment whose vocabulary names the classes")
    ap.add_argument("--hand-boxes", type=Path, help="JSON of boxes drawn by eye (positive control)")
    ap.add_argument("--ckpt", action="append", default=[], help="checkpoint whose detections are scored")
    ap.add_argument("--min-score", type=float, default=0.3, help="detections scored: car score >= this")
    ap.add_argument("--draws", type=int, default=5, help="same-row controls per box")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    vocab: Vocabulary = load_environment(args.env).vocab
    car = vocab.classes.index("car")
    data = KittiDataset(args.data, vocab=vocab)
    frames = [data[i] for i in range(len(data))]
    names = [p.name for p, _ in data.items]
    scorer = VehicleScorer(device="cpu")
    score = scorer.score_crops
    out: dict = {"data": str(args.data), "frames": len(frames), "draws": args.draws, "checks": {}}
    lines = [
        f"# Label audit of `{args.data}`",
        "",
        f"Command: `python scripts/audit_real_labels.py {' '.join(sys.argv[1:])}`",
        "",
        "Scorer: ImageNet EfficientNet-Lite0 classifier, summed vehicle-class probability per box "
        f"(`VehicleScorer`). Controls: {args.draws} boxes per box, same size and rows, random column. "
        "AUC: P(box scores above a control); 95 % interval from resampling frames.",
        "",
        "| boxes | frames | boxes scored | mean P(vehicle) box | mean P(vehicle) controls | AUC [95 % CI] |",
        "|---|---|---|---|---|---|",
    ]

    gt = vehicle_evidence(score, [(img, car_boxes(g, car)) for img, g in frames], draws=args.draws)
    out["checks"]["ground_truth"] = gt.to_dict()
    lines.append(f"| ground-truth `Car` labels | {fmt(gt)} |")

    if args.hand_boxes:
        hand = load_hand_boxes(args.hand_boxes)
        unknown = sorted(set(hand) - set(names))
        if unknown:
            raise SystemExit(f"{args.hand_boxes}: frames not in {args.data}: {unknown}")
        idx = [names.index(n) for n in sorted(hand)]
        hb = vehicle_evidence(score, [(frames[i][0], hand[names[i]]) for i in idx], draws=args.draws)
        gt_same = vehicle_evidence(score, [(frames[i][0], car_boxes(frames[i][1], car)) for i in idx], draws=args.draws)
        # the hand boxes as scene graphs (score 1): a detector for the ceiling, and the ground truth for the
        # checkpoints below
        hand_graphs = [
            SceneGraph(
                image_width=frames[i][1].image_width,
                image_height=frames[i][1].image_height,
                objects=[
                    SceneObject("car", car, (float(b[0]), float(b[1]), float(b[2]), float(b[3])), 1.0)
                    for b in hand[names[i]]
                ],
            )
            for i in idx
        ]
        ceiling = average_precision(hand_graphs, [frames[i][1] for i in idx], len(vocab.classes), iou_threshold=0.5)
        out["checks"]["hand_boxes"] = hb.to_dict()
        out["checks"]["ground_truth_on_hand_frames"] = gt_same.to_dict()
        out["hand_boxes_as_detector"] = {
            "frames": len(idx),
            "car_ap50": float(ceiling["ap"][car]),
            "num_gt": int(ceiling["num_gt"][car]),
            "num_det": int(ceiling["num_det"][car]),
        }
        lines.append(f"| hand-drawn boxes on visible cars ({args.hand_boxes.name}) | {fmt(hb)} |")
        lines.append(f"| ground-truth `Car` labels, same {len(idx)} frames | {fmt(gt_same)} |")

    out["checkpoints"] = {}
    hand_ap_lines = []
    for ckpt in args.ckpt:
        pred = Predictor.from_checkpoint(ckpt, device="cpu")
        pred.score_threshold, pred.max_objects = 0.01, 100  # AP ranks every detection; evidence filters below
        graphs = [pred.predict([img])[0] for img, _ in tqdm(frames, desc=Path(ckpt).stem, leave=False)]
        det = vehicle_evidence(
            score, [(img, car_boxes(g, car, args.min_score)) for (img, _), g in zip(frames, graphs)], draws=args.draws
        )
        out["checkpoints"][ckpt] = det.to_dict()
        if args.hand_boxes:
            preds = [graphs[i] for i in idx]
            vs_hand = average_precision(preds, hand_graphs, len(vocab.classes), iou_threshold=0.5)
            vs_labels = average_precision(preds, [frames[i][1] for i in idx], len(vocab.classes), iou_threshold=0.5)
            row = {"car_ap50_hand_boxes": float(vs_hand["ap"][car]), "car_ap50_labels": float(vs_labels["ap"][car])}
            out["checkpoints"][ckpt].update(row)
            hand_ap_lines.append(
                f"| `{Path(ckpt).stem}` | {row['car_ap50_hand_boxes']:.3f} | {row['car_ap50_labels']:.3f} |"
            )
        lines.append(f"| detections score >= {args.min_score}: `{Path(ckpt).stem}` | {fmt(det)} |")

    if "hand_boxes_as_detector" in out:
        c = out["hand_boxes_as_detector"]
        lines += [
            "",
            f"Hand-drawn boxes used as a detector (score 1) on their {c['frames']} frames: car AP@0.5 "
            f"**{c['car_ap50']:.3f}** against the folder's labels ({c['num_det']} boxes, {c['num_gt']} labelled cars).",
        ]
    if hand_ap_lines:
        lines += [
            "",
            f"Car AP@0.5 on the {len(idx)} hand-checked frames, every detection ranked:",
            "",
            "| checkpoint | against hand-drawn boxes | against the folder's labels |",
            "|---|---|---|",
            *hand_ap_lines,
        ]
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out / "audit.json", json.dumps(out, indent=2) + "\n")
    atomic_write_text(args.out / "audit.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
