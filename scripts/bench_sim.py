#!/usr/bin/env python3
"""Benchmark the built-in simulator (single thread) and report source↔target domain-gap statistics.

    python scripts/bench_sim.py                 # drive at 640x192, all domains, 300 images each
    python scripts/bench_sim.py --n 100 --envs drive clevr dining --json out.json

Speed is images per second on one core (OpenCV and BLAS limited to one thread), sample() end to
end: content draw + render + labels. Figures to reach: drive/source >= 100/s, drive/target >= 50/s.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from sim2sg_core.sim import Simulator, domain_names  # noqa: E402
from sim2sg_core.sim.stats import domain_gap, summarize  # noqa: E402


def speed(env: str, domain: str, n: int, seed: int = 0, repeats: int = 3) -> dict:
    sim = Simulator(env, domain, seed=seed)
    sim.sample(0)  # warm caches (templates, layouts, noise banks)
    best = 0.0
    for r in range(repeats):
        t = time.perf_counter()
        for i in range(n):
            sim.sample(r * n + i)
        best = max(best, n / (time.perf_counter() - t))
    t = time.perf_counter()
    for i in range(n):
        sim.scene(i)
    gen = n / (time.perf_counter() - t)
    return {"env": env, "domain": domain, "size": list(sim.image_size), "images_per_s": round(best, 1),
            "scenes_per_s_generate_only": round(gen, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--envs", nargs="+", default=["drive"], help="environments (default: drive)")
    ap.add_argument("--n", type=int, default=300, help="images per speed run (best of 3 runs)")
    ap.add_argument("--gap-n", type=int, default=200, help="images per domain for the gap statistics")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    results = {"speed": [], "gap": {}}
    for env in args.envs:
        for dom in domain_names(env):
            r = speed(env, dom, args.n)
            results["speed"].append(r)
            print(f"{env:7s} {dom:11s} {r['size'][0]}x{r['size'][1]}  {r['images_per_s']:7.1f} img/s "
                  f"(generate only {r['scenes_per_s_generate_only']:.0f}/s)", flush=True)
    for env in args.envs:
        sums = {}
        for dom in domain_names(env):
            sim = Simulator(env, dom, seed=1000)
            sums[dom] = summarize([sim.sample(i) for i in range(args.gap_n)])
        sim2 = Simulator(env, "source", seed=2000)
        sums["source(seed 2)"] = summarize([sim2.sample(i) for i in range(args.gap_n)])
        results["gap"][env] = {}
        print(f"\n{env}: domain gap vs source over {args.gap_n} images each")
        print(f"  {'domain':15s} {'hist-dist':>9s} {'bright':>7s} {'sharp':>7s} {'obj/img':>7s} {'countTV':>7s} "
              f"{'depth':>6s} {'cam h':>6s}  per-class mean counts")
        for dom, s in sums.items():
            g = domain_gap(sums["source"], s)
            results["gap"][env][dom] = {k: v for k, v in g.items()}
            cls = " ".join(f"{c}={b:.2f}" for c, (_, b) in g["class_means"].items())
            print(f"  {dom:15s} {g['colour_hist_bhattacharyya']:9.3f} {s['brightness']:7.1f} {s['sharpness']:7.0f} "
                  f"{s['count_mean']:7.2f} {g['count_dist_tv']:7.3f} {s['depth_mean']:6.1f} "
                  f"{s['camera_height']:6.2f}  {cls}")
            hist = np.bincount(np.clip(s["counts"], 0, 12), minlength=13)
            results["gap"][env][dom]["count_histogram_0_to_12"] = hist.tolist()
    if args.json:
        def _default(o):
            if isinstance(o, np.ndarray):
                return o.tolist()
            if isinstance(o, (np.floating, np.integer)):
                return o.item()
            raise TypeError(type(o))
        args.json.write_text(json.dumps(results, indent=2, default=_default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
