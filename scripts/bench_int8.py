#!/usr/bin/env python3
"""int8 ONNX Runtime against float ONNX Runtime and eager torch, for one checkpoint: speed per frame and
accuracy on held-out frames. Meant to be run by hand on a quiet machine; nothing here is a test.

  python scripts/bench_int8.py --ckpt model.pt --calibration sim:source --eval drive:target --eval-images 300 \\
      --frame-size 640x192 --json docs/results/int8/default.json
  # the real-camera model, calibrated on the robot's own unlabelled frames
  python scripts/bench_int8.py --ckpt runs/bench_real/checkpoints/sim2sg_dr_seed0.pt \\
      --calibration ../shared/real/nuscenes_front/unlabelled --frame-size 640x192 --json out.json

Speed: the three predictors are timed interleaved (one frame each in turn, ``--iters`` rounds), so a noisy
host slows them alike; medians and minima of the whole ``predict`` call (preprocessing, network,
post-processing, relations). Accuracy: ``eval``'s metrics on ``--eval`` (simulator ``ENV:DOMAIN`` on the
benchmark's validation seed 300, which no calibration or training uses, or a KITTI folder), for float and
int8, plus how many of the float model's detections (score >= 0.3) the int8 model reproduces at IoU 0.5.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_iou

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sim2sg_core.adapt.bench import split_seeds  # noqa: E402
from sim2sg_core.adapt.targets import target_source_from_spec  # noqa: E402
from sim2sg_core.eval.evaluate import evaluate  # noqa: E402
from sim2sg_core.model.checkpoint import load_checkpoint  # noqa: E402
from sim2sg_core.model.onnx_backend import export_onnx  # noqa: E402
from sim2sg_core.model.predictor import Predictor  # noqa: E402
from sim2sg_core.sim import Simulator  # noqa: E402
from sim2sg_core.train.trainer import open_dataset  # noqa: E402
from sim2sg_core.utils.io import atomic_write_text  # noqa: E402


def size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def agreement(a, b) -> float:
    """Share of ``a``'s detections (per image, same class) that ``b`` has at IoU >= 0.5."""
    hit = total = 0
    for ga, gb in zip(a, b):
        for o in ga.objects:
            total += 1
            same = [p.box for p in gb.objects if p.class_id == o.class_id]
            if same and box_iou(torch.tensor([o.box]), torch.tensor(same)).max() >= 0.5:
                hit += 1
    return hit / total if total else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--calibration", help="folder, bag(s) + --topic, or sim:<domain> (default: training domain)")
    ap.add_argument("--topic")
    ap.add_argument("--calibration-images", type=int, default=64)
    ap.add_argument("--eval", help="ENV:DOMAIN or a KITTI folder")
    ap.add_argument("--eval-images", type=int, default=300)
    ap.add_argument("--frame-size", type=size, default=(640, 192), help="timed frames, WxH")
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", required=True, type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train = load_checkpoint(args.ckpt)["config"].train
    spec = args.calibration or f"sim:{train.domain}"
    source = target_source_from_spec(spec, topic=args.topic, env=train.env, count=args.calibration_images)
    out: dict = {"ckpt": args.ckpt, "calibration": source.description, "threads": args.threads}
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        fp32, _ = export_onnx(args.ckpt, Path(tmp) / "fp32.onnx")
        int8, _ = export_onnx(
            args.ckpt,
            Path(tmp) / "int8.onnx",
            quantize="int8",
            calibration=source.iter_images(),
            calibration_images=args.calibration_images,
            calibration_description=source.description,
        )
        preds = {
            "torch": Predictor.from_checkpoint(args.ckpt, device="cpu"),
            "onnxruntime_fp32": Predictor.from_checkpoint(fp32, device="cpu", threads=args.threads),
            "onnxruntime_int8": Predictor.from_checkpoint(int8, device="cpu", threads=args.threads),
        }
        sim = Simulator(env=train.env, domain=train.domain, seed=7, image_size=args.frame_size)
        frames = [sim.sample(i).image for i in range(16)]
        times: dict[str, list[float]] = {k: [] for k in preds}
        for r in range(args.iters + 5):
            for name, p in preds.items():
                t0 = time.perf_counter()
                p.predict([frames[r % len(frames)]])
                if r >= 5:
                    times[name].append((time.perf_counter() - t0) * 1000)
        out["frame_size"] = list(args.frame_size)
        out["predict_b1_ms"] = {
            k: {"median": float(np.median(v)), "min": float(np.min(v)), "p90": float(np.percentile(v, 90))}
            for k, v in times.items()
        }
        print(json.dumps(out["predict_b1_ms"], indent=1))
        if args.eval:
            seed = split_seeds(0)["val"]
            dataset, _ = open_dataset(args.eval, args.eval_images, seed, vocab=preds["torch"].vocab)
            out["eval"] = {"data": args.eval, "images": min(args.eval_images, len(dataset)), "seed": seed}
            for name in ("onnxruntime_fp32", "onnxruntime_int8"):
                r = evaluate(preds[name], dataset, num_images=args.eval_images, progress=False)
                out["eval"][name] = {
                    "mAP50": r["map50"],
                    "ap50": {c: v["ap50"] for c, v in r["per_class"].items()},
                    "SGDet_R@50": r["recall@50"],
                }
                print(name, out["eval"][name])
            images = [dataset[i][0] for i in range(min(args.eval_images, len(dataset)))]
            a = preds["onnxruntime_fp32"].predict(images)
            b = preds["onnxruntime_int8"].predict(images)
            out["eval"]["int8_reproduces_fp32_detections"] = agreement(a, b)
            print("int8 reproduces", out["eval"]["int8_reproduces_fp32_detections"], "of the float detections")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.json, json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
