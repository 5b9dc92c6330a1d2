"""Simulator command line: render datasets (KITTI folder or rosbag2 camera bag) and preview grids.

Examples::

    python -m sim2sg_core.sim render --env drive --domain target --n 500 --out data/drive_target --format kitti
    python -m sim2sg_core.sim render --env drive --domain target --n 300 --out bags/target --format rosbag \\
        --storage mcap --compressed
    python -m sim2sg_core.sim preview --env drive --domain target --out grid.png
    python -m sim2sg_core.sim render --env drive --domain randomized --n 200 --out data/front \
        --camera-info camera_info.yaml --camera-height 1.5 --camera-pitch 0 --image-size 480x270
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from sim2sg_core.data.bags import write_image_bag
from sim2sg_core.data.calibration import add_camera_arguments, load_camera
from sim2sg_core.data.kitti import write_kitti
from sim2sg_core.sim import Simulator
from sim2sg_core.sim.domains import SimConfigError, available_environments
from sim2sg_core.sim.preview import draw_graph, grid
from sim2sg_core.utils.cli import run_reporting_user_errors
from sim2sg_core.utils.io import atomic_save


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"image size must look like 640x192, got {text!r}") from None


def _common(p: argparse.ArgumentParser) -> None:
    envs = ", ".join(available_environments()) or "see config/sim"
    p.add_argument("--env", default="drive", help=f"environment name or YAML path (built in: {envs})")
    p.add_argument("--domain", default="source", help="domain of the environment: source, randomized, target, target2")
    p.add_argument("--seed", type=int, default=0, help="simulator seed; sample i is a function of (seed, i)")
    p.add_argument("--start", type=int, default=0, help="index of the first sample")
    p.add_argument(
        "--image-size",
        type=_size,
        default=None,
        metavar="WxH",
        help="override the environment's image size, e.g. 640x192 (with --camera-info: the "
        "camera is scaled to it; default the camera's size)",
    )
    add_camera_arguments(
        p,
        "render through a calibrated camera (a KITTI calib file sized by --image-size)",
        "with --camera-info: the mean of the domain's camera pose",
    )


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m sim2sg_core.sim", description="sim2sg scene simulator: render labelled datasets and previews."
    )
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "render",
        help="render N samples to a KITTI folder or a rosbag2 bag",
        description="Render N samples. kitti: image_2/ label_2/ calib/ under --out. rosbag: a "
        "rosbag2 bag directory at --out with the camera stream and CameraInfo "
        "(labels are not stored in bags; use kitti for labels).",
    )
    _common(r)
    r.add_argument("--n", type=int, required=True, help="number of samples")
    r.add_argument("--out", required=True, type=Path, help="output folder (kitti) or bag directory (rosbag)")
    r.add_argument("--format", choices=["kitti", "rosbag"], default="kitti", help="output format (default kitti)")
    r.add_argument("--storage", choices=["mcap", "sqlite3"], default="mcap", help="rosbag2 storage (default mcap)")
    r.add_argument("--compressed", action="store_true", help="rosbag: sensor_msgs/CompressedImage (JPEG)")
    r.add_argument("--encoding", choices=["rgb8", "bgr8"], default="rgb8", help="rosbag raw image encoding")
    r.add_argument("--topic", default="/camera/image_raw", help="rosbag image topic (default /camera/image_raw)")
    r.add_argument("--rate", type=float, default=10.0, help="rosbag frame rate in Hz (default 10)")
    r.add_argument("--overwrite", action="store_true", help="rosbag: replace an existing bag")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    pv = sub.add_parser("preview", help="write a PNG grid of samples with boxes and relationships drawn")
    _common(pv)
    pv.add_argument("--out", required=True, type=Path, help="output PNG path")
    pv.add_argument("--n", type=int, default=6, help="number of samples in the grid (default 6)")
    pv.add_argument("--cols", type=int, default=2, help="grid columns (default 2)")
    pv.add_argument("--max-relations", type=int, default=8, help="relationships drawn per image (default 8)")
    pv.add_argument("--no-labels", action="store_true", help="draw the images only")
    return ap


def _simulator(args):
    """The Simulator the common arguments describe (calibrated camera included)."""
    info = getattr(args, "camera_info", None)
    height, pitch = getattr(args, "camera_height", None), getattr(args, "camera_pitch", None)
    if not info:
        if height is not None or pitch is not None:
            raise SystemExit("--camera-height/--camera-pitch need --camera-info")
        return Simulator(args.env, args.domain, seed=args.seed, image_size=args.image_size)
    plain = Simulator(args.env, args.domain, seed=args.seed)
    mean_h, mean_p = plain.content.camera.mean_pose
    camera = load_camera(info, height_m=mean_h if height is None else height, pitch=pitch, image_size=args.image_size)
    own_pose = height is not None or pitch is not None  # else the domain's pose distribution as it is
    if own_pose and pitch is None:
        camera = camera.with_pose(camera.height_m, mean_p)
    return Simulator(
        args.env,
        plain.domain,
        seed=args.seed,
        image_size=args.image_size,
        camera=camera,
        camera_pose_from_camera=own_pose,
    )


def _render(args) -> int:
    if args.n <= 0:
        raise SystemExit("--n must be positive")
    sim = _simulator(args)
    bar = tqdm(total=args.n, desc=f"{sim.env.name}/{sim.domain.name} → {args.format}", unit="img", disable=args.quiet)
    samples = (sim.sample(i) for i in range(args.start, args.start + args.n))
    if args.format == "kitti":
        n = write_kitti(args.out, samples, start_index=args.start, progress=bar)
    else:
        counted = []

        def _count(it):
            for s in it:
                counted.append(1)
                yield s

        write_image_bag(
            args.out,
            _count(samples),
            topic=args.topic,
            storage=args.storage,
            compressed=args.compressed,
            encoding=args.encoding,
            camera=sim.camera,
            rate_hz=args.rate,
            overwrite=args.overwrite,
            progress=bar,
        )
        n = len(counted)
    bar.close()
    print(
        json.dumps(
            {
                "written": n,
                "out": str(args.out),
                "format": args.format,
                "env": sim.env.name,
                "domain": sim.domain.name,
                "seed": sim.seed,
            }
        )
    )
    return 0


def _preview(args) -> int:
    sim = _simulator(args)
    tiles = []
    for i in range(args.start, args.start + args.n):
        s = sim.sample(i)
        tiles.append(s.image if args.no_labels else draw_graph(s.image, s.graph, args.max_relations))
    img = grid(tiles, cols=max(1, args.cols))
    ok, png = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    if not ok:
        raise SystemExit("could not encode the preview PNG")

    def _w(tmp):
        with open(tmp, "wb") as f:
            f.write(png.tobytes())

    atomic_save(args.out, _w)
    print(json.dumps({"preview": str(args.out), "images": len(tiles)}))
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_reporting_user_errors(
        lambda: _render(args) if args.command == "render" else _preview(args),
        (SimConfigError, ValueError, OSError, RuntimeError),
    )


if __name__ == "__main__":
    sys.exit(main())
