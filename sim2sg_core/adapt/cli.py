"""``adapt`` and ``bench`` subcommands (registered into ``python -m sim2sg_core`` via :func:`register`).

    python -m sim2sg_core adapt --init source.pt --target sim:target --out adapted.pt [--env drive]
    python -m sim2sg_core adapt --init source.pt --target run1.mcap,run2.mcap --topic /camera/image_raw --out a.pt
    python -m sim2sg_core adapt --init source.pt --target /data/kitti_folder --out a.pt --set rounds=2
    python -m sim2sg_core adapt --init source.pt --target /data/frames --camera-info camera_info.yaml \
        --camera-height 1.5 --camera-pitch 0 --out a.pt
    python -m sim2sg_core bench --env drive --profile quick --out bench_out [--target-domain target2]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import logging
import sys
from typing import Optional, Sequence

import yaml

from sim2sg_core.adapt.baselines import get_method
from sim2sg_core.adapt.bench import RealData, pairs_table, run_bench, stored_runs
from sim2sg_core.adapt.config import load_adapt_config, load_bench_profile
from sim2sg_core.adapt.sim2sg import run_adaptation
from sim2sg_core.adapt.targets import target_source_from_spec
from sim2sg_core.data.calibration import add_camera_arguments
from sim2sg_core.model.checkpoint import load_checkpoint
from sim2sg_core.utils.distributed import init_from_env, shutdown
from sim2sg_core.utils.io import atomic_write_text


def _parse_sets(items: Sequence[str]) -> dict:
    """``a.b=1`` strings → nested dict with YAML-typed values."""
    out: dict = {}
    for it in items or ():
        if "=" not in it:
            raise SystemExit(f"error: --set expects KEY=VALUE, got {it!r}")
        key, val = it.split("=", 1)
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(val)
    return out


def add_adapt_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--init", required=True, help="checkpoint to adapt (trained on the source domain)")
    p.add_argument(
        "--target",
        required=True,
        help="unlabelled target images: sim:<domain> | image/KITTI folder | bag path(s), comma-separated",
    )
    p.add_argument("--topic", default=None, help="image topic when --target is a rosbag2 bag")
    p.add_argument("--out", required=True, help="adapted checkpoint to write (atomically)")
    p.add_argument("--config", default=None, help="adaptation YAML (default config/adapt/default.yaml)")
    p.add_argument("--env", default=None, help="simulator environment (default: the checkpoint's training env)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set rounds=2 --set appearance_alignment.enabled=false",
    )
    p.add_argument("--target-seed", type=int, default=1000, help="seed of sim:<domain> target images")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing <out>.resume state file")
    add_camera_arguments(
        p,
        "target camera calibration (default: the bag's CameraInfo / a camera_info.yaml beside "
        "the image folder, if any)",
        "of the target camera: calibration, not labels",
    )


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env", default=None, help="drive | clevr | dining | all (default: the profile's)")
    p.add_argument("--profile", default="quick", help="quick | full | path to a bench YAML")
    p.add_argument("--out", required=True, help="output folder (table.md, table.csv, chart.png, results.json)")
    p.add_argument("--methods", default=None, help="comma-separated subset of methods")
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the profile's)")
    p.add_argument("--target-domain", default=None, help="target domain (default: the profile's, 'target')")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--stored-only",
        action="store_true",
        help="train nothing: write the tables from the rows already stored in --out (rows run by several "
        "commands, or with different seeds, in one table; the missing ones are listed)",
    )
    p.add_argument(
        "--pairs",
        default=None,
        metavar="A-B,C-D",
        help="train nothing: A − B mAP@0.5 between stored rows with the paired bootstrap (a method against its "
        "matched control or a leave-one-out), written to OUT/pairs.md",
    )
    p.add_argument(
        "--reevaluate",
        action="store_true",
        help="with --stored-only: measure every stored row's kept checkpoint again with the current evaluation",
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="run this many (env, seed) pairs in parallel processes (each with the profile's "
        "num_threads); e.g. cores / num_threads",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a profile field, e.g. --set adapt.rounds=8 --set eval_images=400",
    )
    p.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads per process (default: the profile's num_threads)"
    )
    p.add_argument(
        "--target",
        default=None,
        help="a real target instead of a simulated one: folder of unlabelled frames or rosbag2 bag(s)",
    )
    p.add_argument(
        "--camera-info",
        default=None,
        help="the real camera's calibration: camera_info YAML or KITTI calib file (default: a "
        "camera_info.yaml beside the target)",
    )
    p.add_argument("--eval-data", default=None, help="labelled KITTI-layout folder to measure a real target on")
    p.add_argument("--topic", default=None, help="image topic when --target is a bag")


def cmd_adapt(args) -> int:
    overrides = _parse_sets(args.set)
    for key, value in (
        ("camera_info", getattr(args, "camera_info", None)),
        ("camera_height", getattr(args, "camera_height", None)),
        ("camera_pitch", getattr(args, "camera_pitch", None)),
    ):
        if value is not None:
            overrides[key] = value
    ck = load_checkpoint(args.init)
    if args.env or not overrides.get("env"):
        overrides["env"] = args.env or ck["config"].train.env
    cfg = load_adapt_config(args.config, overrides)
    source = target_source_from_spec(
        args.target,
        topic=args.topic,
        env=cfg.env,
        seed=args.target_seed,
        count=cfg.max_target_images or 200,
        image_size=tuple(ck["input_size"]),
    )
    dist, device = init_from_env(cfg.device)  # torchrun: join the process group (gloo / nccl)
    try:
        res = run_adaptation(args.init, source, args.out, cfg, resume=not args.no_resume, dist=dist, device=str(device))
    finally:
        shutdown()
    if dist.is_main:
        print(
            json.dumps(
                {
                    "checkpoint": res.checkpoint,
                    "steps": res.steps,
                    "seconds": round(res.seconds, 1),
                    "resumed_from_step": res.resumed_from_step,
                    **({"processes": dist.world_size} if dist.launched else {}),
                },
                indent=1,
            )
        )
    return 0


def cmd_bench(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    prof = load_bench_profile(args.profile, _parse_sets(args.set))
    if args.set:  # the tables say what was changed
        prof.name = f"{prof.name} with {', '.join(args.set)}"
    if args.threads > 0:
        prof.num_threads = args.threads
    envs = None
    if args.env:
        envs = ["drive", "clevr", "dining"] if args.env == "all" else args.env.split(",")
    methods = args.methods.split(",") if args.methods else None
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    # a real target: the command line's data, else the profile's defaults
    defaults = prof.real
    target = args.target or (defaults.target if defaults else "")
    eval_data = args.eval_data or (defaults.eval_data if defaults else "")
    camera_info = args.camera_info or (defaults.camera_info if defaults else "")
    if args.pairs:
        tdom = args.target_domain or (RealData(target=target, eval_data=eval_data).name if target else "")
        return _bench_pairs(args, prof, envs or prof.envs, seeds or prof.seeds, tdom or prof.target_domains[0])
    if args.reevaluate and not args.stored_only:
        raise SystemExit("error: bench: --reevaluate measures stored rows again; it needs --stored-only")
    real = None
    if target or eval_data:
        if not (target and eval_data):
            raise SystemExit(
                "error: bench: a real target needs both --target (unlabelled frames: image folder "
                "or bag) and --eval-data (a labelled KITTI-layout folder)"
            )
        for what, path in (("--target", target), ("--eval-data", eval_data), ("--camera-info", camera_info)):
            if path and not Path(path).exists():
                raise SystemExit(f"error: bench: {what} {path} does not exist (profile {prof.name})")
        real = RealData(target=target, eval_data=eval_data, camera_info=camera_info, topic=args.topic)
    res = run_bench(
        prof,
        args.out,
        envs=envs,
        methods=methods,
        seeds=seeds,
        target_domain=args.target_domain,
        progress=not args.quiet,
        jobs=args.jobs,
        real=real,
        stored_only=args.stored_only,
        reevaluate=args.reevaluate,
    )
    print(res["table"])
    return 0


def _bench_pairs(args, prof, envs: list[str], seeds: list[int], tdom: str) -> int:
    """``bench --pairs``: the pairs table from the rows of ``tdom`` stored in ``--out`` (trains nothing)."""
    pairs = []
    for item in args.pairs.split(","):
        a, sep, b = item.strip().partition("-")
        if not sep or not a or not b:
            raise SystemExit(f"error: bench --pairs: a pair is METHOD_A-METHOD_B, got {item!r}")
        get_method(a), get_method(b)  # unknown names fail here, with the known ones listed
        pairs.append((a, b))
    out = Path(args.out)
    if not (out / "runs").is_dir():
        raise SystemExit(f"error: bench --pairs: {out} holds no stored bench rows (no runs/ folder)")
    methods = sorted({m for pair in pairs for m in pair})
    runs, _ = stored_runs(out, [(e, s) for e in envs for s in seeds], methods, [tdom])
    md = f"```\npython -m sim2sg_core {' '.join(sys.argv[1:])}\n```\n\n" + pairs_table(
        runs, pairs, tdom, envs, prof.bootstrap_samples, str(out)
    )
    atomic_write_text(out / "pairs.md", md)
    sys.stdout.write(md)
    return 0


def register(subparsers) -> None:
    """Add ``adapt`` and ``bench`` to the ``python -m sim2sg_core`` parser."""
    p = subparsers.add_parser("adapt", help="Sim2SG domain adaptation of a checkpoint to unlabelled target images")
    add_adapt_arguments(p)
    p.set_defaults(func=cmd_adapt)
    b = subparsers.add_parser("bench", help="Sim2SG benchmark table (methods × metrics, mean ± std over seeds)")
    add_bench_arguments(b)
    b.set_defaults(func=cmd_bench)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim2sg_core.adapt.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
