#!/usr/bin/env python3
"""Benchmark the scene-graph model on CPU (or CUDA): latency, throughput, FLOPs, and optionally
training-to-accuracy. Meant to be re-run by hand on a quiet machine; nothing here is a test.

  # inference only (random-init default model, or a checkpoint), 2 threads, 640x192 images
  python scripts/bench_model.py --threads 2 [--ckpt runs/drive_source/model.pt]
  # plus accuracy of a checkpoint on held-out simulator images
  python scripts/bench_model.py --ckpt runs/drive_source/model.pt --eval drive:source drive:target --eval-images 500
  # train 15 min on drive/source, then evaluate in- and cross-domain
  python scripts/bench_model.py --threads 2 --train-minutes 15 --train-domain source --out runs/bench_source
  # pretrained encoder: forward at two input sizes, 1600x900 camera image -> SceneGraph (resize included),
  # and one training step at batch 8 per encoder_freeze setting (all frozen / partly / unfrozen)
  python scripts/bench_model.py --config config/model/efficientnet_lite0.yaml --input-sizes 640x192 640x360 \
      --source-size 1600x900 --train-step-freeze all 4 0
  # the real-camera model, eager torch (BatchNorm folded, channels-last) and ONNX Runtime, 640x192 and 1600x900 frames
  python scripts/bench_model.py --config config/model/real_camera.yaml --backend both --source-size 1600x900
Writes a JSON summary (--json, default: bench_model.json next to the checkpoint or in the cwd).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def latency(fn, iters: int, warmup: int = 3) -> dict:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return {
        "median_ms": 1000 * statistics.median(times),
        "min_ms": 1000 * min(times),
        "p90_ms": 1000 * float(np.percentile(times, 90)),
    }


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"size {text!r} must be WIDTHxHEIGHT, e.g. 640x360") from None
    return w, h


def sim_images(env: str, width: int, height: int, n: int, rng) -> list:
    try:
        from sim2sg_core.sim import Simulator

        sim = Simulator(env=env, domain="source", seed=7, image_size=(width, height))
        return [sim.sample(i).image for i in range(n)]
    except Exception:  # noqa: BLE001 - simulator unavailable: random images still time the network honestly
        return [rng.integers(0, 255, (height, width, 3), dtype=np.uint8) for _ in range(n)]


def onnxruntime_times(args, workdir: Path, images: list, rng) -> dict:
    """The same checkpoint exported to ONNX and run by ONNX Runtime (``--threads`` intra-op threads)."""
    from sim2sg_core.model import Predictor
    from sim2sg_core.model.onnx_backend import export_onnx

    onnx_path, _ = export_onnx(args.ckpt, workdir / "model.onnx")
    pred = Predictor.from_onnx(onnx_path, device=args.device, threads=args.threads, score_threshold=0.3)
    out = {"predict_b1": latency(lambda: pred.predict(images[:1]), args.iters)}
    b8 = latency(lambda: pred.predict(images), max(args.iters // 4, 5))
    out["predict_b8"] = dict(b8, images_per_s=8000.0 / b8["median_ms"])
    if args.source_size:
        w, h = parse_size(args.source_size)
        big = sim_images(args.env, w, h, 1, rng)
        out[f"predict_b1_from_{w}x{h}"] = latency(lambda: pred.predict(big), args.iters)
    return out


def train_step_times(args, pred) -> dict:
    """Seconds per training step (batch ``--train-batch`` of labelled simulator images at the model
    input size) for each ``encoder_freeze`` value, on a fresh model built from ``--config``."""
    import dataclasses
    import tempfile

    from sim2sg_core.sim.dataset import SimDataset
    from sim2sg_core.model import SGModel
    from sim2sg_core.train.config import load_config
    from sim2sg_core.train.trainer import Trainer

    cfg = load_config(args.config)
    ds = SimDataset(args.env, "source", 7, args.train_batch)
    out = {"batch": args.train_batch, "input_size": [cfg.model.input_width, cfg.model.input_height]}
    for freeze in args.train_step_freeze:
        f = freeze if freeze.lower() == "all" else int(freeze)
        c = dataclasses.replace(
            cfg,
            model=dataclasses.replace(cfg.model, encoder_freeze=f),
            train=dataclasses.replace(cfg.train, batch_size=args.train_batch, num_workers=0, hflip=False),
        )
        torch.manual_seed(0)
        model = SGModel.from_config(c, ds.vocab)
        with tempfile.TemporaryDirectory() as d:
            tr = Trainer(model, c, ds.vocab, d, device=args.device, progress=False)
            batch = next(iter(tr.make_loader(ds, shuffle=False)))
            t = latency(lambda tr=tr, batch=batch: tr.train_step(batch), args.train_iters, warmup=1)
        out[f"freeze_{freeze}"] = dict(
            t, trainable_params_M=sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6
        )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="", help="checkpoint to benchmark (default: untrained default model)")
    ap.add_argument("--config", default=str(REPO / "config" / "model" / "default.yaml"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--eval", nargs="*", default=[], help="ENV:DOMAIN or KITTI folders to evaluate on")
    ap.add_argument("--eval-images", type=int, default=500)
    ap.add_argument("--train-minutes", type=float, default=0.0, help="first train this long (CLI train)")
    ap.add_argument("--train-domain", default="source")
    ap.add_argument("--env", default="drive")
    ap.add_argument("--out", default="runs/bench", help="training output folder (with --train-minutes)")
    ap.add_argument(
        "--input-sizes",
        nargs="*",
        default=[],
        metavar="WxH",
        help="also time the batch-1 model forward at these model input sizes",
    )
    ap.add_argument(
        "--source-size",
        default="",
        metavar="WxH",
        help="also time Predictor.predict on one source image of this size (resize included)",
    )
    ap.add_argument(
        "--train-step-freeze",
        nargs="*",
        default=[],
        metavar="FREEZE",
        help="time a training step (forward+backward+AdamW) per encoder_freeze value (-1/all, 4, 0...)",
    )
    ap.add_argument("--train-batch", type=int, default=8)
    ap.add_argument("--train-iters", type=int, default=2, help="timed training steps per freeze value")
    ap.add_argument(
        "--backend",
        default="torch",
        choices=("torch", "onnxruntime", "both"),
        help="also time the checkpoint exported to ONNX and run by ONNX Runtime",
    )
    ap.add_argument(
        "--no-optimize",
        action="store_true",
        help="time the model as trained (BatchNorm unfolded, channels-first), not as deployed",
    )
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    report: dict = {
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "torch": torch.__version__,
        "device": args.device,
    }

    if args.train_minutes > 0:
        cmd = [
            sys.executable,
            "-m",
            "sim2sg_core",
            "train",
            "--env",
            args.env,
            "--domain",
            args.train_domain,
            "--out",
            args.out,
            "--minutes",
            str(args.train_minutes),
            "--steps",
            "100000",
            "--threads",
            str(args.threads),
            "--eval-images",
            "0",
            "--no-resume",
        ]
        t0 = time.time()
        subprocess.run(cmd, check=True, cwd=REPO)
        report["train"] = {
            "minutes_budget": args.train_minutes,
            "wall_minutes": (time.time() - t0) / 60,
            "domain": f"{args.env}:{args.train_domain}",
        }
        args.ckpt = str(Path(args.out) / "model.pt")
        if not args.eval:
            args.eval = [f"{args.env}:source", f"{args.env}:target"]

    import tempfile

    from sim2sg_core.model import Predictor, SGModel
    from sim2sg_core.train.config import load_config

    workdir = Path(tempfile.mkdtemp(prefix="bench_model_"))
    if args.ckpt:
        report["checkpoint"] = args.ckpt
    else:  # an untrained model of --config, saved so that both backends load the same file
        from sim2sg_core.scene_graph import Vocabulary
        from sim2sg_core.train.checkpoint import save_checkpoint

        cfg = load_config(args.config)
        vocab = Vocabulary(classes=("car", "pedestrian", "vegetation", "house"), subject_classes=("car",))
        torch.manual_seed(0)
        fresh = SGModel.from_config(cfg, vocab).eval()
        args.ckpt = str(
            save_checkpoint(
                workdir / "model.pt",
                fresh,
                cfg,
                vocab,
                (cfg.model.input_width, cfg.model.input_height),
                cfg.model.mean,
                cfg.model.std,
            )
        )
    pred = Predictor.from_checkpoint(args.ckpt, device=args.device, optimize=not args.no_optimize)
    model = pred.model
    report["input_size"] = list(pred.input_size)
    report["optimized_for_inference"] = pred.optimized
    report["resize_mode"] = pred.resize_mode
    report["params_M"] = sum(p.numel() for p in model.parameters()) / 1e6

    from torch.utils.flop_counter import FlopCounterMode

    fmt = torch.channels_last if pred.optimized else torch.contiguous_format
    x1 = torch.randn(1, 3, pred.input_size[1], pred.input_size[0], device=pred.device).contiguous(memory_format=fmt)
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(x1)
    report["gflops_per_image_forward"] = fc.get_total_flops() / 1e9  # multiply-add counted as 2 FLOPs

    rng = np.random.default_rng(0)
    try:
        from sim2sg_core.sim import Simulator

        sim = Simulator(env=args.env, domain="source", seed=7, image_size=(args.width, args.height))
        images = [sim.sample(i).image for i in range(8)]
    except Exception:  # noqa: BLE001 - simulator unavailable: random images still time the network honestly
        images = [rng.integers(0, 255, (args.height, args.width, 3), dtype=np.uint8) for _ in range(8)]
    pred.score_threshold = 0.3
    with torch.inference_mode():
        report["model_forward_b1"] = latency(lambda: model(x1), args.iters)
    report["predict_b1"] = latency(lambda: pred.predict(images[:1]), args.iters)
    b8 = latency(lambda: pred.predict(images), max(args.iters // 4, 5))
    report["predict_b8"] = dict(b8, images_per_s=8000.0 / b8["median_ms"])
    for size in args.input_sizes:
        w, h = parse_size(size)
        xs = torch.randn(1, 3, h, w, device=pred.device).contiguous(memory_format=fmt)
        with torch.inference_mode():
            report[f"model_forward_b1_{w}x{h}"] = latency(lambda xs=xs: model(xs), args.iters)
    if args.source_size:
        w, h = parse_size(args.source_size)
        big = sim_images(args.env, w, h, 1, rng)
        report[f"predict_b1_from_{w}x{h}"] = latency(lambda: pred.predict(big), args.iters)
    if args.backend in ("onnxruntime", "both"):
        report["onnxruntime"] = onnxruntime_times(args, workdir, images, rng)
    if args.train_step_freeze:
        report["train_step"] = train_step_times(args, pred)
    print(json.dumps({k: v for k, v in report.items()}, indent=2))

    if args.eval:
        from sim2sg_core.eval.evaluate import evaluate, format_table
        from sim2sg_core.train.trainer import open_dataset

        report["eval"] = {}
        for data in args.eval:
            ds, _ = open_dataset(data, args.eval_images, 12345, vocab=pred.vocab)
            res = evaluate(pred, ds, num_images=args.eval_images)
            print(f"\n== {data} ==\n{format_table(res)}")
            report["eval"][data] = res
    given = report.get("checkpoint")
    out = (
        Path(args.json)
        if args.json
        else (Path(given).with_name("bench_model.json") if given else Path("bench_model.json"))
    )
    from sim2sg_core.utils.io import atomic_write_text

    atomic_write_text(out, json.dumps(report, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
