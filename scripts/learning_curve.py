#!/usr/bin/env python3
"""Learning curve of a real-camera benchmark's pre-trainings: every kept snapshot measured on the labelled folder.

    python scripts/learning_curve.py --out runs/bench_kitti [--profile kitti] [--md docs/results/bench_kitti/curve.md]

A bench run with ``keep_every: N`` keeps each pre-training's model every N steps (``step<N>.pt`` beside
``model.pt`` in ``OUT/runs/<env>/seed<S>_<tag>_pretrain``). Each is evaluated here on the profile's labelled
folder (car / pedestrian AP@0.5 overall and per KITTI difficulty, SGDet Recall@50). Mid-schedule snapshots
have not had their learning rate annealed, so a point is a lower bound of what a training that stops there
would reach. Trains nothing; results are cached in ``OUT/learning_curve.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from sim2sg_core.adapt.bench import RealData, real_setup
from sim2sg_core.adapt.config import load_bench_profile
from sim2sg_core.eval.evaluate import evaluate
from sim2sg_core.model.predictor import Predictor
from sim2sg_core.utils.io import atomic_write_text


def _step(path: Path, final_steps: int) -> int:
    m = re.fullmatch(r"step(\d+)\.pt", path.name)
    return int(m.group(1)) if m else final_steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path, help="the bench --out folder")
    ap.add_argument("--profile", default="kitti")
    ap.add_argument("--env", default="drive")
    ap.add_argument("--md", type=Path, default=None, help="also write the table here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    prof = load_bench_profile(args.profile)
    if prof.real is None:
        ap.error(f"profile {args.profile} names no real data")
    real = RealData(target=prof.real.target, eval_data=prof.real.eval_data, camera_info=prof.real.camera_info)
    real.camera_info = real.resolve_camera_info()
    evalset = real_setup(prof, args.env, real, prof.image_size_for(args.env))[2]
    cache_file = args.out / "learning_curve.json"
    cache = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    rows = []
    for run in sorted((args.out / "runs" / args.env).glob("seed*_pretrain")):
        for ckpt in sorted(run.glob("*.pt")):
            if ckpt.name == "last.pt":
                continue
            key = f"{run.name}/{ckpt.name}:{ckpt.stat().st_mtime_ns}"
            if key not in cache:
                res = evaluate(Predictor.from_checkpoint(ckpt, device="cpu"), evalset, progress=False)
                d = res.get("difficulties") or {}
                cache[key] = {
                    "run": run.name,
                    "steps": _step(ckpt, prof.source_steps),
                    "car": res["per_class"]["car"]["ap50"],
                    "pedestrian": res["per_class"]["pedestrian"]["ap50"],
                    **{f"car_{lv}": v["ap50"]["car"] for lv, v in d.items()},
                    "R@50": res["recall@50"],
                }
                atomic_write_text(cache_file, json.dumps(cache, indent=1))
                print(json.dumps(cache[key]), flush=True)
            rows.append(cache[key])
    rows.sort(key=lambda r: (r["run"], r["steps"]))
    md = [
        f"Learning curve of the `{args.profile}` profile's pre-trainings (`{args.out}`), measured on "
        f"`{prof.real.eval_data}`: AP@0.5 (car overall and per KITTI difficulty, pedestrian), SGDet Recall@50. "
        "Mid-schedule snapshots (learning rate not annealed) except the last row of each training.",
        "",
        "| pre-training | steps | car | car easy | car moderate | car hard | pedestrian | R@50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["car"], r.get("car_easy"), r.get("car_moderate"), r.get("car_hard"), r["pedestrian"], r["R@50"]]
        md.append(
            f"| {r['run']} | {r['steps']} | " + " | ".join("n/a" if v is None else f"{v:.3f}" for v in cells) + " |"
        )
    text = "\n".join(md) + "\n"
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.md, text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
