#!/usr/bin/env python3
"""Data-parallel training speed: the same global batch and steps with 1 and N torchrun processes.

    python scripts/bench_ddp.py [--nproc 1,2] [--threads-per-proc 1] [--steps 40] [--batch-size 8]
                                [--config config/model/default.yaml] [--device cpu|cuda]
                                [--out docs/results/ddp/bench.json]

Each row runs ``torchrun --standalone --nproc_per_node=N -m sim2sg_core train`` on ``drive:source`` and
reads the training seconds the trainer itself counted (its scheduler clock, saved in ``last.pt``; process
start-up, rendering the first batch's data and the final checkpoint excluded), so images/s compares the
training loops. A row ``plain`` runs without torchrun, one process with all the threads, for reference.
On a 2-core machine 2 processes x 1 thread compete with 1 process x 2 threads: the speed-up there says
how well DDP's gradient exchange overlaps; on a GPU node it is the usual one-GPU-per-process scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(nproc: int, args, tmp: Path) -> dict:
    out = tmp / f"n{nproc}"
    common = [
        "-m",
        "sim2sg_core",
        "train",
        "--config",
        args.config,
        "--out",
        str(out),
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--train-images",
        str(args.train_images),
        "--eval-images",
        "0",
        "--device",
        args.device,
        "--num-workers",
        "0",
        "--no-resume",
    ]
    env = dict(os.environ)
    if nproc == 0:  # plain: one process, every thread
        threads = args.threads_per_proc * max(int(n) for n in args.nproc.split(","))
        cmd = [sys.executable, *common, "--threads", str(threads)]
        env["OMP_NUM_THREADS"] = str(threads)
    else:
        torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
        cmd = [torchrun, "--standalone", f"--nproc_per_node={nproc}", *common, "--threads", str(args.threads_per_proc)]
        env["OMP_NUM_THREADS"] = str(args.threads_per_proc)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: {' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    import torch

    ck = torch.load(out / "last.pt", map_location="cpu", weights_only=False)
    seconds = float(ck["scheduler"]["elapsed"])
    images = args.steps * args.batch_size
    return {
        "processes": nproc or 1,
        "torchrun": nproc > 0,
        "threads_per_process": args.threads_per_proc
        if nproc
        else args.threads_per_proc * max(int(n) for n in args.nproc.split(",")),
        "steps": args.steps,
        "global_batch": args.batch_size,
        "train_seconds": round(seconds, 2),
        "images_per_s": round(images / seconds, 2),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nproc", default="1,2", help="comma-separated process counts")
    ap.add_argument("--threads-per-proc", type=int, default=1)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=8, help="global batch (split over the processes)")
    ap.add_argument("--train-images", type=int, default=512)
    ap.add_argument("--config", default=str(REPO / "config" / "model" / "default.yaml"))
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    ap.add_argument("--plain", action="store_true", help="also run one process without torchrun")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench" / "ddp.json"))
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sim2sg-ddp-") as tmp:
        for n in ([0] if args.plain else []) + [int(v) for v in args.nproc.split(",")]:
            rows.append(run(n, args, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    base = next((r for r in rows if r["torchrun"] and r["processes"] == 1), None)
    for r in rows:
        if base is not None:
            r["speedup_vs_1_process"] = round(r["images_per_s"] / base["images_per_s"], 2)
    result = {
        "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
        "config": args.config,
        "device": args.device,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print("| processes | torchrun | threads/process | images/s | speed-up vs 1 process |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['processes']} | {'yes' if r['torchrun'] else 'no'} | {r['threads_per_process']} | "
            f"{r['images_per_s']} | {r.get('speedup_vs_1_process', '')} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
