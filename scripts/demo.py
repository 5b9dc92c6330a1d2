#!/usr/bin/env python3
"""make demo: the whole Sim2SG story through the ROS 2 nodes, on one machine.

1. train a scene-graph model on simulated drive/source scenes (cached by a config hash);
2. record a drive/target camera bag (rosbag2, MCAP) — the "real" unlabelled data;
3. run adaptation_node on that bag (Sim2SG: label + prediction + appearance alignment);
4. start sim_camera_node (target domain) → perception_node (adapted checkpoint) with the
   launch-free bring-up (`python -m sim2sg_ros.bringup perception ...`), collect /scene_graph
   in this process for a few hundred frames;
5. print a summary (frames, objects and relationships per frame, end-to-end latency, target mAP and
   Recall@50 of the source-only and adapted models against the simulator's labels) and write an
   annotated image grid and a scene-graph drawing to the output folder.

Every stage is cached under --out (keyed by the settings that produce it); a re-run only repeats the
ROS run and the summary. Budget knobs: --train-minutes, --adapt-rounds, --adapt-steps, --frames, ...
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # also runnable without scripts/env.sh (core only)

import numpy as np  # noqa: E402
import yaml  # noqa: E402


def log(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def key_of(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def link(target: Path, name: Path) -> None:
    """Atomically point ``name`` at ``target`` (a stable path for the latest artefact)."""
    tmp = name.with_name(f".{name.name}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(os.path.relpath(target, name.parent), tmp)
    os.replace(tmp, name)


def run(cmd: list, env: dict, what: str) -> None:
    log(f"{what}: {' '.join(str(c) for c in cmd)}")
    rc = subprocess.call([str(c) for c in cmd], env=env)
    if rc != 0:
        raise SystemExit(f"demo: {what} failed with status {rc}")


# ------------------------------------------------------------------------------------ stages


def stage_train(args, env) -> Path:
    if args.source_checkpoint:
        ckpt = Path(args.source_checkpoint).resolve()
        if not ckpt.is_file():
            raise SystemExit(f"demo: --source-checkpoint {ckpt} does not exist")
        log(f"1/5 source model: using {ckpt} (--source-checkpoint; no training)")
        link(ckpt, args.out / "source.pt")
        return ckpt
    cfg_text = (REPO / "config" / "model" / "default.yaml").read_text()
    out = args.out / f"source_{key_of(cfg_text, args.env, args.train_minutes, args.train_steps, args.seed)}"
    ckpt = out / "model.pt"
    if ckpt.exists() and not args.force:
        log(f"1/5 source model: cached {ckpt}")
    else:
        log(f"1/5 training on {args.env}/source for at most {args.train_minutes} min ({args.train_steps} steps)")
        run(
            [
                sys.executable,
                "-m",
                "sim2sg_core",
                "train",
                "--env",
                args.env,
                "--domain",
                "source",
                "--out",
                out,
                "--minutes",
                args.train_minutes,
                "--steps",
                args.train_steps,
                "--seed",
                args.seed,
                "--threads",
                args.threads,
                "--device",
                args.device,
                "--eval-images",
                0,
            ],
            env,
            "training",
        )
    link(ckpt, args.out / "source.pt")
    return ckpt


def stage_bag(args) -> Path:
    from sim2sg_core.data.bags import write_image_bag
    from sim2sg_core.sim import Simulator

    bag = args.out / "bags" / f"{args.env}_target_{key_of(args.env, args.bag_frames, args.bag_seed, 'mcap')}"
    if bag.exists() and not args.force:
        log(f"2/5 target camera bag: cached {bag}")
        return bag
    log(f"2/5 recording {args.bag_frames} {args.env}/target frames into {bag} (MCAP)")
    sim = Simulator(env=args.env, domain="target", seed=args.bag_seed)
    write_image_bag(
        bag,
        (sim.sample(i) for i in range(args.bag_frames)),
        topic="/camera/image_raw",
        storage="mcap",
        camera=sim.camera,
        rate_hz=10.0,
        overwrite=True,
    )
    return bag


def stage_adapt(args, env, source_ckpt: Path, bag: Path) -> Path:
    from sim2sg_core.train.checkpoint import load_checkpoint

    base = yaml.safe_load((REPO / "config" / "adapt" / "default.yaml").read_text())
    adapt = base.get("adapt", base)
    adapt.update(
        env=args.env,
        rounds=args.adapt_rounds,
        warmup_rounds=min(1, args.adapt_rounds - 1),
        steps_per_round=args.adapt_steps,
        max_target_images=args.bag_frames,
        num_threads=args.threads,
        device=args.device,
        progress_bar=False,
        source_pool_size=args.adapt_samples,
    )
    adapt["label_alignment"]["samples_per_round"] = args.adapt_samples
    # The recording rig's mount (a user knows theirs): label alignment lifts and renders through it.
    from sim2sg_core.sim import load_domain, load_environment

    rig = load_domain(load_environment(args.env), "target").content.camera
    adapt.update(camera_height=float(rig.height.mean), camera_pitch=float(rig.pitch.mean))
    src_hash = load_checkpoint(source_ckpt)["content_hash"]
    out = args.out / f"adapted_{key_of(src_hash, adapt, bag.name)}.pt"
    if out.exists() and not args.force:
        log(f"3/5 adapted model: cached {out}")
    else:
        adapt_yaml = args.out / "adapt_demo.yaml"
        adapt_yaml.write_text(yaml.safe_dump({"adapt": adapt}))
        params = yaml.safe_load((REPO / "config" / "adaptation.yaml").read_text())
        params["adaptation_node"]["ros__parameters"].update(adapt_config=str(adapt_yaml.resolve()))
        pfile = args.out / "adaptation_demo.yaml"
        pfile.write_text(yaml.safe_dump(params))
        log(f"3/5 adapting with adaptation_node: {args.adapt_rounds} rounds x {args.adapt_steps} steps on {bag.name}")
        run(
            [
                sys.executable,
                "-m",
                "sim2sg_ros.bringup",
                "adaptation",
                "--params",
                pfile,
                "--bag",
                bag,
                "--init-checkpoint",
                source_ckpt,
                "--output",
                out,
            ],
            env,
            "adaptation",
        )
    link(out, args.out / "adapted.pt")
    return out


def stage_perceive(args, env, adapted: Path) -> dict:
    """Bring up sim camera + perception on the adapted model; collect /scene_graph here."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sim2sg_ros.bringup import stop_processes
    from sim2sg_ros.msg import SceneGraph

    stamp_log = args.out / "camera_stamps.txt"
    stamp_log.write_text("")
    params = yaml.safe_load((REPO / "config" / "perception.yaml").read_text())
    params["perception_node"]["ros__parameters"].update(num_threads=args.threads, device=args.device)
    params["sim_camera_node"]["ros__parameters"].update(
        env=args.env,
        domain="target",
        seed=args.camera_seed,
        rate=args.rate,
        cache_frames=args.camera_frames,
        stamp_log=str(stamp_log.resolve()),
    )
    pfile = args.out / "perception_demo.yaml"
    pfile.write_text(yaml.safe_dump(params))

    rclpy.init(domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("sim2sg_demo_collector")
    got, diags = [], []

    def on_graph(m):
        if len(got) < args.frames:
            got.append((m, time.time_ns()))

    node.create_subscription(
        SceneGraph, "/scene_graph", on_graph, QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
    )
    node.create_subscription(
        DiagnosticArray,
        "/diagnostics",
        lambda m: diags.extend(s for s in m.status if s.name.startswith("perception_node")),
        10,
    )
    cmd = [
        sys.executable,
        "-m",
        "sim2sg_ros.bringup",
        "perception",
        "--params",
        str(pfile),
        "--checkpoint",
        str(adapted),
        "--use-sim-camera",
        "--sim-domain",
        "target",
    ]
    log(f"4/5 bring-up: {' '.join(cmd[1:])}")
    proc = subprocess.Popen(cmd, env=env)
    t0 = time.monotonic()
    first = None
    last_print = 0.0
    try:
        while len(got) < args.frames:
            rclpy.spin_once(node, timeout_sec=0.1)
            if proc.poll() is not None:
                raise SystemExit(f"demo: the bring-up exited with status {proc.returncode}")
            if got and first is None:
                first = time.monotonic()
                log(f"    first SceneGraph after {first - t0:.1f} s (node start-up)")
            if time.monotonic() - last_print > 5.0:
                last_print = time.monotonic()
                log(f"    {len(got)}/{args.frames} scene graphs received")
            if time.monotonic() - t0 > args.perceive_timeout:
                log(f"    timeout: {len(got)} scene graphs in {args.perceive_timeout} s")
                break
        # one more diagnostics report for the counters
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        stop_processes([proc], timeout=30)
        node.destroy_node()
        rclpy.try_shutdown()
    stamps = {}
    for line in stamp_log.read_text().splitlines():
        sec, nsec, idx = line.split()
        stamps[int(sec) * 1_000_000_000 + int(nsec)] = int(idx)
    diag = {kv.key: kv.value for kv in diags[-1].values} if diags else {}
    cam = params["sim_camera_node"]["ros__parameters"]
    span = (got[-1][1] - got[0][1]) / 1e9 if len(got) > 1 else float("nan")
    return {
        "messages": got,
        "stamps": stamps,
        "span_s": span,
        "diagnostics": diag,
        "image_size": (int(cam["width"]), int(cam["height"])),
    }


def stage_evaluate(args, ckpt: Path) -> dict:
    """MODEL's evaluation (AP@0.5, Recall@50) on held-out labelled target images; cached per model."""
    import torch
    from sim2sg_core.sim.dataset import SimDataset
    from sim2sg_core.eval.evaluate import evaluate
    from sim2sg_core.model.predictor import Predictor
    from sim2sg_core.train.checkpoint import load_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    h = load_checkpoint(ckpt)["content_hash"][:12]
    cache = args.out / "eval" / f"{h}_{args.env}_target_{args.eval_images}_{args.eval_seed}.json"
    if cache.exists() and not args.force:
        return json.loads(cache.read_text())
    pred = Predictor.from_checkpoint(ckpt, device=args.device)
    res = evaluate(pred, SimDataset(args.env, "target", args.eval_seed, args.eval_images), progress=False)
    cache.parent.mkdir(parents=True, exist_ok=True)
    from sim2sg_core.utils.io import atomic_write_text

    atomic_write_text(cache, json.dumps(res, indent=2))
    return res


def summarise(args, run_info: dict, evals: dict) -> dict:
    import cv2
    from sim2sg_core.eval.detection import average_precision
    from sim2sg_core.eval.scene_graph import triplet_recall
    from sim2sg_core.sim import Simulator
    from sim2sg_core.utils.io import atomic_write_bytes, atomic_write_text
    from sim2sg_core.viz import draw_graph_diagram, draw_scene_graph
    from sim2sg_ros.conversions import msg_to_scene_graph

    msgs = run_info["messages"]
    if not msgs:
        raise SystemExit("demo: no SceneGraph was received")
    stamps = run_info["stamps"]
    e2e = np.array([(t_rx - (m.header.stamp.sec * 10**9 + m.header.stamp.nanosec)) / 1e6 for m, t_rx in msgs])
    proc_ms = np.array([m.processing_time * 1e3 for m, _ in msgs])
    graphs = [msg_to_scene_graph(m) for m, _ in msgs]
    n_obj = np.array([len(g.objects) for g in graphs])
    n_rel = np.array([len(g.relationships) for g in graphs])
    # online check: the graphs that came over ROS against the simulator's labels of the same frames
    sim = Simulator(env=args.env, domain="target", seed=args.camera_seed, image_size=run_info["image_size"])
    idx = [stamps.get(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec) for m, _ in msgs]
    paired = [(g, i) for g, i in zip(graphs, idx) if i is not None]
    labels = {i: sim.sample(i) for i in sorted({i for _, i in paired})}
    online_det = average_precision(
        [g for g, _ in paired], [labels[i].graph for _, i in paired], len(graphs[0].vocab.classes)
    )
    online_rec = triplet_recall([g for g, _ in paired], [labels[i].graph for _, i in paired], ks=(50,))

    # annotated grid (4 x 2) and one scene-graph drawing
    first_of = {}  # one tile per distinct camera frame
    for g, i in paired:
        first_of.setdefault(i, g)
    distinct = sorted(first_of)
    pick = [distinct[k] for k in np.linspace(0, len(distinct) - 1, min(8, len(distinct))).round().astype(int)]
    tiles = [draw_scene_graph(labels[i].image, first_of[i]) for i in pick]
    while len(tiles) % 2:
        tiles.append(np.zeros_like(tiles[0]))
    grid = np.vstack([np.hstack(tiles[r : r + 2]) for r in range(0, len(tiles), 2)])
    best = max(paired, key=lambda p: len(p[0].relationships))[0]
    outputs = {}
    for name, img in (("annotated_grid.png", grid), ("scene_graph.png", draw_graph_diagram(best))):
        ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        atomic_write_bytes(args.out / name, buf.tobytes())
        outputs[name] = str(args.out / name)

    diag = run_info["diagnostics"]
    summary = {
        "frames_received": len(msgs),
        "receive_rate_hz": (len(msgs) - 1) / run_info["span_s"],
        "camera_rate_hz": args.rate,
        "objects_per_frame": float(n_obj.mean()),
        "relationships_per_frame": float(n_rel.mean()),
        "latency_end_to_end_ms": {"mean": float(e2e.mean()), "p95": float(np.percentile(e2e, 95))},
        "latency_in_node_ms": {"mean": float(proc_ms.mean()), "p95": float(np.percentile(proc_ms, 95))},
        "node_frames_dropped": diag.get("frames_dropped"),
        "node_frames_rejected": diag.get("frames_rejected"),
        "model_id": msgs[-1][0].model_id,
        "target_eval": {
            name: {
                "map50": r["map50"],
                "recall@50": r["recall@50"],
                "images": r["num_images"],
                "model_id": r["model_id"],
            }
            for name, r in evals.items()
        },
        "online_ros_graphs_vs_labels": {
            "frames": len(paired),
            "map50_at_node_threshold": online_det["map"],
            "recall@50": online_rec["R@50"],
        },
        "outputs": outputs,
    }
    atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=2))
    return summary


def print_summary(s: dict) -> None:
    def f(v):
        return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"

    print("\n================ sim2sg_ros demo summary ================")
    print(
        f"scene graphs received      {s['frames_received']}  ({s['receive_rate_hz']:.1f} Hz; camera "
        f"{s['camera_rate_hz']:.0f} Hz; node dropped {s['node_frames_dropped']}, rejected "
        f"{s['node_frames_rejected']})"
    )
    print(f"objects / relationships    {s['objects_per_frame']:.2f} / {s['relationships_per_frame']:.2f} per frame")
    e, n = s["latency_end_to_end_ms"], s["latency_in_node_ms"]
    print(
        f"latency image->graph       mean {e['mean']:.1f} ms, p95 {e['p95']:.1f} ms  "
        f"(inside the node: mean {n['mean']:.1f}, p95 {n['p95']:.1f})"
    )
    print(f"model on the robot         {s['model_id']}")
    print("target domain (simulator labels, held-out images):")
    print(f"  {'model':<14} {'mAP@0.5':>8} {'R@50':>8}")
    for name, r in s["target_eval"].items():
        print(f"  {name:<14} {f(r['map50']):>8} {f(r['recall@50']):>8}   ({r['images']} images, {r['model_id']})")
    o = s["online_ros_graphs_vs_labels"]
    print(
        f"  graphs over ROS vs labels of the same frames: mAP@0.5 {f(o['map50_at_node_threshold'])} "
        f"(node threshold), R@50 {f(o['recall@50'])} ({o['frames']} frames)"
    )
    print(
        "outputs: " + ", ".join(s["outputs"].values()) + f", {Path(s['outputs']['scene_graph.png']).parent}"
        "/summary.json"
    )


# ------------------------------------------------------------------------------ real camera frames


def real_demo(args) -> int:
    """``--real DIR``: source model rendered through the real camera → Sim2SG on the real frames →
    annotated real frames, source-only beside adapted, in ``real_grid.png``."""
    from sim2sg_core.adapt.bench import RealData, real_camera
    from sim2sg_core.adapt.config import load_bench_profile
    from sim2sg_core.adapt.targets import target_source_from_spec
    import torch

    torch.set_num_threads(args.threads)
    prof = load_bench_profile(args.real_profile)
    real = RealData(target=str(args.real), eval_data=str(args.real_eval or ""), camera_info=args.camera_info or "")
    real.camera_info = real.resolve_camera_info()
    size = prof.image_size_for(args.env)
    camera = real_camera(prof, real, size)
    out = args.out / f"real_{key_of(Path(real.target).resolve(), real.camera_info, args.real_profile, args.seed)}"
    adapted = out / "adapted.pt"
    target = target_source_from_spec(real.target, env=args.env)
    if args.real_checkpoints:  # models trained before (e.g. a bench run's kept checkpoints)
        src, adapted = (Path(p) for p in args.real_checkpoints)
        for p in (src, adapted):
            if not p.is_file():
                raise SystemExit(f"demo: --real-checkpoints: {p} does not exist")
        log(f"1-2/4 models given: source only {src}, adapted {adapted}")
    else:
        src, adapted = _train_real(args, prof, real, camera, size, out, target, adapted)
    _annotate_real(args, prof, real, camera, target, src, adapted)
    return 0


def _train_real(args, prof, real, camera, size, out, target, adapted):
    """The source model rendered through the real camera, then Sim2SG on the real frames (both cached)."""
    from sim2sg_core.adapt.supervised import train_supervised
    from sim2sg_core.sim.dataset import render_split
    from sim2sg_core.adapt.baselines import configure, get_method
    from sim2sg_core.adapt.sim2sg import run_adaptation

    log(f"1/4 source model: {prof.source_domain} scenes rendered through {real.camera_info} at {size[0]}x{size[1]}")
    src, _ = train_supervised(
        prof,
        args.env,
        prof.source_domain,
        lambda: render_split(args.env, prof.source_domain, 100 + args.seed, prof.train_images, size, camera=camera),
        prof.source_steps,
        args.seed,
        out / "source",
        size,
        progress=True,
    )
    if adapted.exists() and not args.force:
        log(f"2/4 adapted model: cached {adapted}")
    else:
        cfg = configure(prof.adapt, get_method("sim2sg_full"))
        cfg.env, cfg.seed, cfg.progress_bar = args.env, args.seed, True
        cfg.source_domain, cfg.camera_info = prof.source_domain, real.camera_info
        cfg.camera_height, cfg.camera_pitch = camera.height_m, camera.pitch
        cfg.max_target_images = prof.target_images
        log(f"2/4 Sim2SG adaptation on {real.target}: {cfg.rounds} rounds x {cfg.steps_per_round} steps")
        run_adaptation(src, target, adapted, cfg)
    return src, adapted


def _annotate_real(args, prof, real, camera, target, src, adapted) -> None:
    """real_grid.png: a few real frames annotated by both models (left source only, right adapted); with
    --real-eval, both models' AP on the labelled folder."""
    import cv2
    from sim2sg_core.model.predictor import Predictor
    from sim2sg_core.utils.io import atomic_write_bytes
    from sim2sg_core.viz import draw_scene_graph

    frames = _grid_frames(args, real, target)
    log(f"3/4 annotating {len(frames)} real frames with both models")
    cols = []
    for ckpt, title in ((src, "source only"), (adapted, "Sim2SG adapted")):
        pred = Predictor.from_checkpoint(ckpt, device=args.device, score_threshold=args.real_score)
        tiles = []
        for im, g in zip(frames, pred.predict(frames)):
            tile = draw_scene_graph(im, g, max_relationships=8)
            tile = cv2.resize(tile, (640, int(round(640 * im.shape[0] / im.shape[1]))), interpolation=cv2.INTER_AREA)
            cv2.putText(
                tile,
                f"{title}: {len(g.objects)} objects, {len(g.relationships)} relationships",
                (8, 24),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.6,
                (255, 255, 255),
                2,
                cv2.LINE_AA,
            )
            tiles.append(tile)
        cols.append(np.vstack(tiles))
    grid = np.hstack(cols)
    ok, png = cv2.imencode(".png", cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
    atomic_write_bytes(args.out / "real_grid.png", png.tobytes())
    log(f"4/4 wrote {args.out / 'real_grid.png'} (left: source only, right: adapted)")
    if args.real_eval:
        from sim2sg_core.data.datasets import KittiDataset
        from sim2sg_core.eval.evaluate import evaluate, format_table
        from sim2sg_core.sim import load_environment

        ds = KittiDataset(
            args.real_eval,
            class_map=prof.eval_class_map or None,
            vocab=load_environment(args.env).vocab,
            camera_height_m=camera.height_m,
        )
        for ckpt, title in ((src, "source only"), (adapted, "Sim2SG adapted")):
            print(
                f"--- {title} on {args.real_eval}\n"
                + format_table(evaluate(Predictor.from_checkpoint(ckpt), ds, progress=False))
            )


def _grid_frames(args, real, target) -> list:
    """A few frames spread over the recording (labelled evaluation frames if given: their labels are not used)."""
    if args.real_eval:
        from sim2sg_core.adapt.targets import target_source_from_spec

        images = target_source_from_spec(str(Path(args.real_eval) / "image_2"), env=args.env).load()
    else:
        images = target.load()
    idx = np.linspace(0, len(images) - 1, min(args.real_frames, len(images))).round().astype(int)
    return [images[i] for i in idx]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "demo")
    ap.add_argument("--env", default="drive")
    ap.add_argument("--train-minutes", type=float, default=10.0, help="training budget (wall clock)")
    ap.add_argument("--train-steps", type=int, default=4000, help="training step cap")
    ap.add_argument(
        "--source-checkpoint",
        default="",
        help="use this source-trained checkpoint instead of training one (e.g. runs/drive_source/model.pt)",
    )
    ap.add_argument("--adapt-rounds", type=int, default=2, help="Sim2SG analysis/synthesis rounds")
    ap.add_argument("--adapt-steps", type=int, default=40, help="adaptation steps per round")
    ap.add_argument("--adapt-samples", type=int, default=64, help="label-aligned images rendered per round")
    ap.add_argument("--bag-frames", type=int, default=120, help="frames in the recorded target bag")
    ap.add_argument("--frames", type=int, default=300, help="scene graphs to collect over ROS")
    ap.add_argument("--rate", type=float, default=15.0, help="sim camera rate (Hz)")
    ap.add_argument("--camera-frames", type=int, default=60, help="distinct frames the sim camera cycles through")
    ap.add_argument("--eval-images", type=int, default=100, help="held-out labelled target images for mAP/R@50")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bag-seed", type=int, default=2000)
    ap.add_argument("--camera-seed", type=int, default=4242)
    ap.add_argument("--eval-seed", type=int, default=12345)
    ap.add_argument("--perceive-timeout", type=float, default=180.0)
    ap.add_argument("--force", action="store_true", help="ignore every cache")
    ap.add_argument(
        "--real",
        type=Path,
        default=None,
        help="adapt to real camera frames instead (a folder of images or a rosbag2 bag) and write "
        "real_grid.png: annotated frames, source-only model beside the adapted one",
    )
    ap.add_argument(
        "--camera-info",
        default="",
        help="with --real: camera_info YAML or KITTI calib (default: a camera_info.yaml beside the frames)",
    )
    ap.add_argument(
        "--real-eval",
        type=Path,
        default=None,
        help="with --real: a labelled KITTI-layout folder to report AP on (and to draw from)",
    )
    ap.add_argument(
        "--real-profile",
        default="kitti",
        help="with --real: bench profile with model, camera mount and budget (kitti: a level roof camera at "
        "1.65 m, 640x192; real: a 16:9 windscreen camera at 1.5 m with a bonnet in view)",
    )
    ap.add_argument(
        "--real-checkpoints",
        nargs=2,
        metavar=("SOURCE", "ADAPTED"),
        default=None,
        help="with --real: draw these two models (e.g. a bench run's checkpoints/) instead of training them",
    )
    ap.add_argument("--real-frames", type=int, default=4, help="with --real: frames in the grid")
    ap.add_argument("--real-score", type=float, default=0.3, help="with --real: score threshold of the drawings")
    args = ap.parse_args(argv)
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.monotonic()
    if args.real is not None:
        return real_demo(args)

    env = dict(os.environ)
    # A domain of its own (tests use 1..199) and localhost-only discovery: the demo never crosses others.
    env.setdefault("ROS_DOMAIN_ID", str(200 + os.getpid() % 30))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["OMP_NUM_THREADS"] = str(args.threads)

    timings = {}
    t = time.monotonic()
    source = stage_train(args, env)
    timings["train"] = time.monotonic() - t
    t = time.monotonic()
    bag = stage_bag(args)
    timings["bag"] = time.monotonic() - t
    t = time.monotonic()
    adapted = stage_adapt(args, env, source, bag)
    timings["adapt"] = time.monotonic() - t
    t = time.monotonic()
    run_info = stage_perceive(args, env, adapted)
    timings["perceive"] = time.monotonic() - t
    t = time.monotonic()
    log(f"5/5 evaluating source-only and adapted models on {args.eval_images} held-out target images")
    evals = {"source-only": stage_evaluate(args, source), "adapted": stage_evaluate(args, adapted)}
    summary = summarise(args, run_info, evals)
    timings["evaluate"] = time.monotonic() - t
    summary["stage_seconds"] = {k: round(v, 1) for k, v in timings.items()}
    summary["total_seconds"] = round(time.monotonic() - t_start, 1)
    from sim2sg_core.utils.io import atomic_write_text

    atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=2))
    print_summary(summary)
    print(f"stage times (s): {summary['stage_seconds']}; total {summary['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
