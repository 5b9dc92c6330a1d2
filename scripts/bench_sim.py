#!/usr/bin/env python3
"""Benchmark the built-in simulator (single thread) and report source↔target domain-gap statistics.

    python scripts/bench_sim.py                 # drive at 640x192, all domains, 300 images each
    python scripts/bench_sim.py --n 100 --envs drive clevr dining --json out.json
    python scripts/bench_sim.py --proxy-train-seconds 300   # + learnability / gap proxy (tiny CNN)
    python scripts/bench_sim.py --domains source street street_randomized --sizes 640x192 640x360 --skip-gap

Speed is images per second on one core (OpenCV and BLAS limited to one thread), sample() end to
end: content draw + render + labels; reported as wall-clock rate and per CPU-second (the latter is
the per-core figure on a shared, loaded machine). Figures to reach: drive/source >= 100/s, drive/target >= 50/s,
drive/street and drive/street_randomized >= 100/s at 640x192.
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


def speed(env: str, domain: str, n: int, seed: int = 0, repeats: int = 3, image_size=None) -> dict:
    sim = Simulator(env, domain, seed=seed, image_size=image_size)
    sim.sample(0)  # warm caches (templates, layouts, noise banks)
    best, best_cpu = 0.0, 0.0
    for r in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        for i in range(n):
            sim.sample(r * n + i)
        best = max(best, n / (time.perf_counter() - t))
        best_cpu = max(best_cpu, n / max(time.process_time() - c, 1e-9))
    t = time.perf_counter()
    for i in range(n):
        sim.scene(i)
    gen = n / (time.perf_counter() - t)
    return {
        "env": env,
        "domain": domain,
        "size": list(sim.image_size),
        "images_per_s": round(best, 1),
        "images_per_cpu_s": round(best_cpu, 1),
        "scenes_per_s_generate_only": round(gen, 1),
    }


def gap_proxy(
    env: str, train_seconds: float, n_train: int = 2500, n_eval: int = 200, size: tuple[int, int] = (320, 96)
) -> dict:
    """Learnability and domain-gap proxy: a tiny CenterNet-style CNN trained from scratch on
    ``source`` for ``train_seconds`` (one thread, no augmentation but flips), then mAP@0.5
    (torchmetrics) on every domain. Not the project's model; it only calibrates the gap."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torchmetrics.detection import MeanAveragePrecision

    torch.set_num_threads(1)
    torch.manual_seed(0)
    W, H = size
    S = 4
    ncls = len(Simulator(env, "source").vocab.classes)

    def data(dom, n, seed):
        sim = Simulator(env, dom, seed=seed, image_size=size)
        out = [sim.sample(i) for i in range(n)]
        return np.stack([o.image for o in out]), [o.graph for o in out]

    def block(i, o, st):
        return nn.Sequential(nn.Conv2d(i, o, 3, st, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.b = nn.Sequential(
                block(3, 24, 2),
                block(24, 32, 2),
                block(32, 48, 1),
                block(48, 64, 2),
                block(64, 64, 1),
                block(64, 96, 2),
                block(96, 96, 1),
            )
            self.up = nn.Sequential(nn.Upsample(scale_factor=4, mode="bilinear"), block(96, 64, 1))
            self.hm, self.wh = nn.Conv2d(64, ncls, 1), nn.Conv2d(64, 4, 1)
            self.hm.bias.data.fill_(-2.2)

        def forward(self, x):
            f = self.up(self.b(x))
            return self.hm(f), self.wh(f)

    h, w = H // S, W // S
    yy, xx = np.mgrid[0:h, 0:w]

    def targets(graphs):
        hm = np.zeros((len(graphs), ncls, h, w), np.float32)
        reg = np.zeros((len(graphs), 4, h, w), np.float32)
        m = np.zeros((len(graphs), 1, h, w), np.float32)
        for b, g in enumerate(graphs):
            for o in g.objects:
                x0, y0, x1, y1 = (v / S for v in o.box)
                cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
                sig = max(0.5, 0.15 * min(x1 - x0, y1 - y0) + 0.3)
                blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sig**2))
                hm[b, o.class_id] = np.maximum(hm[b, o.class_id], blob)
                ix, iy = min(int(cx), w - 1), min(int(cy), h - 1)
                reg[b, :, iy, ix] = [cx - x0, cy - y0, x1 - cx, y1 - cy]
                m[b, 0, iy, ix] = 1
                hm[b, o.class_id, iy, ix] = 1
        return torch.from_numpy(hm), torch.from_numpy(reg), torch.from_numpy(m)

    def prep(x):
        return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0 - 0.5

    def focal(p, t):
        p = p.sigmoid().clamp(1e-4, 1 - 1e-4)
        pos = t.eq(1).float()
        loss = -(pos * (1 - p) ** 2 * torch.log(p) + (1 - pos) * (1 - t) ** 4 * p**2 * torch.log(1 - p)).sum()
        return loss / pos.sum().clamp(min=1)

    xtr, gtr = data("source", n_train, 0)
    net = Net()
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    rng = np.random.default_rng(0)
    t0, it = time.perf_counter(), 0
    while time.perf_counter() - t0 < train_seconds:
        idx = rng.choice(n_train, 16, replace=False)
        hm, reg, m = targets([gtr[i] for i in idx])
        x = prep(xtr[idx])
        if rng.random() < 0.5:
            x, hm, m, reg = x.flip(3), hm.flip(3), m.flip(3), reg.flip(3)[:, [2, 1, 0, 3]]
        ph, pr = net(x)
        loss = focal(ph, hm) + 0.1 * F.l1_loss(pr * m, reg * m, reduction="sum") / m.sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1
    net.eval()
    out = {"env": env, "train_seconds": train_seconds, "iterations": it, "map50": {}}
    for dom in domain_names(env):
        x_ev, g_ev = data(dom, n_eval, 99)
        metric = MeanAveragePrecision(iou_thresholds=[0.5])
        with torch.no_grad():
            for i in range(0, n_eval, 50):
                ph, pr = net(prep(x_ev[i : i + 50]))
                p = ph.sigmoid()
                keep = (p == F.max_pool2d(p, 3, 1, 1)) & (p > 0.05)
                preds, tgts = [], []
                for b in range(p.shape[0]):
                    c, y_, x_ = torch.nonzero(keep[b], as_tuple=True)
                    r = pr[b, :, y_, x_]
                    boxes = torch.stack([(x_ - r[0]) * S, (y_ - r[1]) * S, (x_ + r[2]) * S, (y_ + r[3]) * S], 1)
                    preds.append({"boxes": boxes.reshape(-1, 4), "scores": p[b, c, y_, x_], "labels": c})
                    g = g_ev[i + b]
                    tgts.append(
                        {
                            "boxes": torch.tensor([o.box for o in g.objects]).reshape(-1, 4).float(),
                            "labels": torch.tensor([o.class_id for o in g.objects], dtype=torch.long),
                        }
                    )
                metric.update(preds, tgts)
        out["map50"][dom] = round(float(metric.compute()["map"]), 3)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--envs", nargs="+", default=["drive"], help="environments (default: drive)")
    ap.add_argument("--n", type=int, default=300, help="images per speed run (best of 3 runs)")
    ap.add_argument("--gap-n", type=int, default=200, help="images per domain for the gap statistics")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument(
        "--proxy-train-seconds",
        type=float,
        default=0.0,
        help="also train a tiny CNN on source this long and report mAP@0.5 per domain (gap proxy)",
    )
    ap.add_argument("--skip-speed", action="store_true", help="skip the speed runs")
    ap.add_argument("--skip-gap", action="store_true", help="skip the domain-gap statistics")
    ap.add_argument(
        "--domains", nargs="+", default=None, help="only these domains (default: every domain of each environment)"
    )
    ap.add_argument(
        "--sizes",
        nargs="+",
        default=None,
        metavar="WxH",
        help="image sizes for the speed runs (default: each environment's own size)",
    )
    args = ap.parse_args()
    cv2.setNumThreads(1)
    sizes = [None] if not args.sizes else [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]

    def doms(env):
        names = domain_names(env)
        return names if args.domains is None else [d for d in names if d in args.domains]

    results = {"speed": [], "gap": {}}
    for env in [] if args.skip_speed else args.envs:
        for size in sizes:
            for dom in doms(env):
                r = speed(env, dom, args.n, image_size=size)
                results["speed"].append(r)
                print(
                    f"{env:7s} {dom:17s} {r['size'][0]}x{r['size'][1]}  {r['images_per_s']:7.1f} img/s wall, "
                    f"{r['images_per_cpu_s']:7.1f} img per CPU-second "
                    f"(generate only {r['scenes_per_s_generate_only']:.0f}/s)",
                    flush=True,
                )
    for env in [] if args.skip_gap else args.envs:
        sums = {}
        for dom in dict.fromkeys(["source"] + doms(env)):  # the gap is measured against source
            sim = Simulator(env, dom, seed=1000)
            sums[dom] = summarize([sim.sample(i) for i in range(args.gap_n)])
        sim2 = Simulator(env, "source", seed=2000)
        sums["source(seed 2)"] = summarize([sim2.sample(i) for i in range(args.gap_n)])
        results["gap"][env] = {}
        print(f"\n{env}: domain gap vs source over {args.gap_n} images each")
        print(
            f"  {'domain':17s} {'hist-dist':>9s} {'bright':>7s} {'sharp':>7s} {'obj/img':>7s} {'countTV':>7s} "
            f"{'depth':>6s} {'cam h':>6s}  per-class mean counts"
        )
        for dom, s in sums.items():
            g = domain_gap(sums["source"], s)
            results["gap"][env][dom] = {k: v for k, v in g.items()}
            cls = " ".join(f"{c}={b:.2f}" for c, (_, b) in g["class_means"].items())
            print(
                f"  {dom:17s} {g['colour_hist_bhattacharyya']:9.3f} {s['brightness']:7.1f} {s['sharpness']:7.0f} "
                f"{s['count_mean']:7.2f} {g['count_dist_tv']:7.3f} {s['depth_mean']:6.1f} "
                f"{s['camera_height']:6.2f}  {cls}"
            )
            hist = np.bincount(np.clip(s["counts"], 0, 12), minlength=13)
            results["gap"][env][dom]["count_histogram_0_to_12"] = hist.tolist()
    if args.proxy_train_seconds > 0 and args.domains is not None:
        print("note: the proxy evaluates every domain of the environment (--domains is ignored there)")
    if args.proxy_train_seconds > 0:
        results["proxy"] = []
        for env in args.envs:
            r = gap_proxy(env, args.proxy_train_seconds)
            results["proxy"].append(r)
            drop = {d: round(r["map50"]["source"] - v, 3) for d, v in r["map50"].items()}
            print(
                f"\n{env}: tiny-CNN proxy, {r['iterations']} iterations in {r['train_seconds']:.0f}s on source: "
                f"mAP@0.5 {r['map50']}  drop vs source {drop}",
                flush=True,
            )
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
