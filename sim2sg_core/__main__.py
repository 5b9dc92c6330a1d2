"""sim2sg command line: train, evaluate and run the scene-graph model.

Run ``python -m sim2sg_core --help`` (and ``python -m sim2sg_core COMMAND --help``).
The ``adapt`` and ``bench`` commands come from ``sim2sg_core.adapt.cli`` when it is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

import cv2
import torch

from sim2sg_core.adapt import cli as adapt_cli
from sim2sg_core.adapt.bench import DEFAULT_REAL_CAMERA_HEIGHT
from sim2sg_core.adapt.sim2sg import AdaptationError
from sim2sg_core.adapt.targets import target_source_from_spec
from sim2sg_core.data.bags import BagError
from sim2sg_core.data.calibration import CalibrationError, add_camera_arguments, load_camera
from sim2sg_core.eval.evaluate import evaluate, format_table
from sim2sg_core.model import Predictor, SGModel
from sim2sg_core.model.config import ExperimentConfig, load_config
from sim2sg_core.model.encoder import PretrainedWeightsError
from sim2sg_core.model.checkpoint import load_checkpoint
from sim2sg_core.model.onnx_backend import QUANTIZE_MODES, OnnxModelError, export_onnx
from sim2sg_core.paths import config_path
from sim2sg_core.train.trainer import Trainer, TrainingDivergedError, open_dataset
from sim2sg_core.utils.cli import fraction, non_negative_float, positive_int, run_reporting_user_errors
from sim2sg_core.utils.distributed import DistributedSetupError, init_from_env, shutdown
from sim2sg_core.utils.io import atomic_write_bytes, atomic_write_text
from sim2sg_core.viz import draw_graph_diagram, draw_scene_graph

EPILOG = """examples:
  # train on simulated driving scenes (source domain) for 15 minutes of CPU time
  python -m sim2sg_core train --env drive --domain source --out runs/drive_source --minutes 15
  # evaluate on 500 held-out images of the shifted 'target' domain, or on a KITTI-format folder
  python -m sim2sg_core eval --ckpt runs/drive_source/model.pt --data drive:target --images 500
  python -m sim2sg_core eval --ckpt runs/drive_source/model.pt --data /data/kitti_like/
  # scene graphs of your own images: JSON + annotated PNG + graph drawing per image
  python -m sim2sg_core predict --ckpt runs/drive_source/model.pt photo1.png photo2.jpg --out preds/
"""


def _default_config_path() -> str:
    try:
        return str(config_path("model", "default.yaml"))
    except FileNotFoundError:
        return ""


def cmd_train(args) -> int:
    cfg_path = args.config or _default_config_path()
    cfg = load_config(cfg_path) if cfg_path else ExperimentConfig()
    t = cfg.train
    for name in ("env", "domain", "steps", "minutes", "batch_size", "lr", "seed", "num_workers"):
        v = getattr(args, name)
        if v is not None:
            setattr(t, name, v)
    if args.kitti:
        t.kitti_dir = args.kitti
    if args.train_images is not None:
        t.train_images = args.train_images
    threads = args.threads or t.threads
    if threads:
        torch.set_num_threads(threads)
    data = t.kitti_dir or f"{t.env}:{t.domain}"
    camera = _train_camera(args)
    own_pose = _own_pose(args, camera)
    dataset, vocab = open_dataset(
        data, t.train_images, t.data_seed, env_for_kitti=t.env, camera=camera, camera_pose_from_camera=own_pose
    )
    dist, device = init_from_env(args.device)  # torchrun: join the process group (gloo / nccl)
    trainer: Optional[Trainer] = None
    try:
        torch.manual_seed(t.seed)  # the same initial weights on every rank
        model = SGModel.from_config(cfg, vocab)
        torch.manual_seed(t.seed + 1000 * dist.rank)  # each rank its own augmentation draws
        out = Path(args.out)
        trainer = Trainer(model, cfg, vocab, out, device=str(device), dist=dist)
        say = print if dist.is_main else (lambda *_a, **_k: None)
        if not args.no_resume and trainer.resume():
            rank = f"[rank {dist.rank}] " if dist.launched else ""
            print(f"{rank}resuming from {trainer.last_path} at step {trainer.step}", flush=True)
        procs = f", torchrun rank 0 of {dist.world_size}" if dist.launched else ""
        say(f"training on {data} ({len(dataset)} images) -> {out}  [{trainer.device}{procs}]")
        summary = trainer.fit(trainer.make_loader(dataset))
        say(f"done: {summary['steps']} steps in {summary['seconds'] / 60:.1f} min -> {summary['checkpoint']}")
    finally:
        trainer = None  # its DistributedDataParallel goes before the process group (shutdown collects it)
        shutdown()
    if args.eval_images > 0 and not t.kitti_dir and dist.is_main:
        eval_ds, _ = open_dataset(
            f"{t.env}:{t.domain}", args.eval_images, args.eval_seed, camera=camera, camera_pose_from_camera=own_pose
        )
        pred = Predictor.from_checkpoint(summary["checkpoint"], device=args.device)
        res = evaluate(pred, eval_ds, progress=True)
        res["data"] = f"{t.env}:{t.domain}"
        print(format_table(res))
        atomic_write_text(out / "eval.json", json.dumps(res, indent=2))
    return 0


#: Width of simulator renders through a real camera (its aspect kept): the size the real profile uses.
REAL_CAMERA_RENDER_WIDTH = 640


def _own_pose(args, camera) -> bool:
    """A mount given on the command line is the pose mean of the renders (the domain's jitter kept)."""
    return camera is not None and (args.camera_height is not None or args.camera_pitch is not None)


def _train_camera(args):
    """``--camera-info`` (+ mount): the camera the simulator renders the training images through,
    scaled to :data:`REAL_CAMERA_RENDER_WIDTH` pixels wide at its own aspect; None without it."""
    if not args.camera_info:
        if args.camera_height is not None or args.camera_pitch is not None or args.camera_size:
            raise SystemExit("error: --camera-height/--camera-pitch/--camera-size need --camera-info")
        return None
    if args.kitti:
        raise SystemExit("error: --camera-info renders simulator images; it cannot apply to --kitti training data")
    size = None
    if args.camera_size:
        try:
            size = tuple(int(v) for v in args.camera_size.lower().split("x"))
        except ValueError:
            raise SystemExit(f"error: --camera-size {args.camera_size!r} must be WIDTHxHEIGHT, e.g. 1600x900") from None
    height = args.camera_height if args.camera_height is not None else DEFAULT_REAL_CAMERA_HEIGHT
    try:
        cam = load_camera(args.camera_info, height_m=height, pitch=args.camera_pitch, image_size=size)
    except (CalibrationError, OSError, ValueError) as e:
        raise SystemExit(f"error: --camera-info: {e}") from None
    width = REAL_CAMERA_RENDER_WIDTH
    return cam.scaled(width, max(1, round(width * cam.height / cam.width)))


def cmd_export(args) -> int:
    calibration, description = None, ""
    if args.quantize:
        train = load_checkpoint(args.ckpt)["config"].train
        # default: the simulator domain the model was trained on, at the environment's image size
        spec = args.calibration or f"sim:{train.domain}"
        source = target_source_from_spec(spec, topic=args.topic, env=train.env, count=args.calibration_images)
        calibration, description = source.iter_images(), source.description
    main_graph, relations = export_onnx(
        args.ckpt,
        args.out,
        quantize=args.quantize,
        calibration=calibration,
        calibration_images=args.calibration_images,
        calibration_description=description,
    )
    print(f"wrote {main_graph} and {relations}" + (f" (int8, calibrated on {description})" if args.quantize else ""))
    return 0


def cmd_eval(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    pred = Predictor.from_checkpoint(args.ckpt, device=args.device)
    dataset, vocab = open_dataset(args.data, args.images, args.seed, vocab=pred.vocab, class_map=args.class_map)
    if vocab.classes != pred.vocab.classes or vocab.predicates != pred.vocab.predicates:
        raise SystemExit(
            f"error: data {args.data} has classes {list(vocab.classes)} but checkpoint {args.ckpt} "
            f"was trained on {list(pred.vocab.classes)}"
        )
    res = evaluate(pred, dataset, num_images=args.images, batch_size=args.batch_size, difficulty=args.difficulty)
    res["data"], res["checkpoint"] = args.data, args.ckpt
    print(format_table(res))
    out = (
        Path(args.out)
        if args.out
        else Path(args.ckpt).with_name("eval_" + args.data.replace(":", "_").replace("/", "_").strip("_") + ".json")
    )
    atomic_write_text(out, json.dumps(res, indent=2))
    print(f"wrote {out}")
    return 0


def cmd_predict(args) -> int:
    pred = Predictor.from_checkpoint(
        args.ckpt,
        device=args.device,
        score_threshold=args.score_threshold,
        relation_threshold=args.relation_threshold,
        max_objects=args.max_objects,
    )
    images = []
    for p in args.images:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"error: cannot read image {p} (missing or not an image file)")
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    out = Path(args.out)
    for p, rgb, graph in zip(args.images, images, pred.predict(images)):
        stem = out / Path(p).stem
        atomic_write_text(f"{stem}.json", json.dumps(graph.to_dict(), indent=2))
        renders = (("_annotated.png", draw_scene_graph(rgb, graph)), ("_graph.png", draw_graph_diagram(graph)))
        for suffix, img in renders:
            ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            atomic_write_bytes(f"{stem}{suffix}", buf.tobytes())
        print(
            f"{p}: {len(graph.objects)} objects, {len(graph.relationships)} relationships -> {stem}.json, "
            f"{stem}_annotated.png, {stem}_graph.png"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sim2sg_core",
        description="Sim2SG scene graphs: train a model on simulated scenes, evaluate it, and predict scene "
        "graphs (objects + spatial relationships such as 'car left of person') for images.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="auto", help="'auto' (CUDA if available, else CPU), 'cpu' or 'cuda[:N]'")
    common.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")

    p = sub.add_parser(
        "train",
        parents=[common],
        help="train a model on a simulator domain or KITTI folder",
        description="Train the scene-graph model. Images are simulated on the fly (no files "
        "needed). Training resumes from OUT/last.pt if it exists; the final model is "
        "OUT/model.pt.",
    )
    p.add_argument("--env", default=None, help="simulator environment (default from the config: drive)")
    p.add_argument("--domain", default=None, help="simulator domain: source, randomized, target, ...")
    p.add_argument("--kitti", default="", help="train on this KITTI-format folder instead of the simulator")
    p.add_argument("--out", required=True, help="output folder, e.g. runs/drive_source")
    p.add_argument("--config", default="", help="model/training YAML (default: config/model/default.yaml)")
    p.add_argument("--steps", type=positive_int, default=None, help="number of optimiser steps")
    p.add_argument(
        "--minutes", type=non_negative_float, default=None, help="wall-clock budget; stops at steps or minutes"
    )
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=None)
    p.add_argument("--lr", type=non_negative_float, default=None, help="peak learning rate (AdamW)")
    p.add_argument("--seed", type=int, default=None, help="seed of weights init and data order")
    p.add_argument("--num-workers", dest="num_workers", type=int, default=None, help="background data workers")
    p.add_argument(
        "--train-images",
        dest="train_images",
        type=int,
        default=None,
        help="number of distinct simulated training images",
    )
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if OUT/last.pt exists")
    add_camera_arguments(
        p,
        f"render the simulator images through this camera ({REAL_CAMERA_RENDER_WIDTH} px wide at its aspect)",
        "with --camera-info: the mean of the renders' camera pose; default the domain's",
    )
    p.add_argument(
        "--camera-size",
        dest="camera_size",
        default="",
        metavar="WxH",
        help="with a KITTI calib file: the size of the images it belongs to, e.g. 1600x900",
    )
    p.add_argument(
        "--eval-images",
        dest="eval_images",
        type=int,
        default=200,
        help="evaluate on this many held-out images afterwards (0 = skip)",
    )
    p.add_argument("--eval-seed", dest="eval_seed", type=int, default=12345, help="seed of the held-out images")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "eval",
        parents=[common],
        help="per-class AP@0.5, mAP, and PredCls/SGCls/SGDet R@K, ngR@K, mR@K",
        description="Evaluate a checkpoint. Prints a per-class table (per KITTI difficulty when "
        "the labels carry truncation/occlusion) and the Scene-Graph-Benchmark modes, "
        "and writes JSON.",
    )
    p.add_argument("--ckpt", required=True, help="checkpoint file (model.pt)")
    p.add_argument("--data", required=True, help="ENV:DOMAIN (e.g. drive:target) or a KITTI-format folder")
    p.add_argument(
        "--images", type=positive_int, default=500, help="number of images (simulated, or the first N of a folder)"
    )
    p.add_argument("--seed", type=int, default=12345, help="simulator seed (keep it different from training)")
    p.add_argument("--batch-size", dest="batch_size", type=positive_int, default=8)
    p.add_argument("--out", default="", help="JSON output (default: next to the checkpoint)")
    p.add_argument(
        "--difficulty",
        choices=("easy", "moderate", "hard"),
        default=None,
        help="KITTI difficulty for every number (objects outside it are ignored); default: all objects",
    )
    p.add_argument(
        "--class-map",
        default=None,
        help="KITTI folders: class map, a YAML path or a name in config/class_maps/ (default kitti: a van is a "
        "car; kitti_benchmark: vans ignored for car, as KITTI's own evaluation)",
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "predict",
        parents=[common],
        help="scene graphs for image files (JSON + PNG drawings)",
        description="For each IMAGE write OUT/<name>.json (the scene graph), "
        "OUT/<name>_annotated.png (boxes, labels, relationship arrows) and "
        "OUT/<name>_graph.png (the graph as a diagram).",
    )
    p.add_argument("--ckpt", required=True, help="checkpoint file (model.pt)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, JPEG, ...)")
    p.add_argument("--out", default="predictions", help="output folder (default: predictions/)")
    p.add_argument(
        "--score-threshold", dest="score_threshold", type=fraction, default=0.3, help="minimum object confidence"
    )
    p.add_argument(
        "--relation-threshold",
        dest="relation_threshold",
        type=fraction,
        default=0.1,
        help="minimum relationship confidence (predicate prob x both object scores)",
    )
    p.add_argument("--max-objects", dest="max_objects", type=positive_int, default=50)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "export",
        help="export a checkpoint for deployment (ONNX, for the onnxruntime backend)",
        description="Write OUT (encoder + detection heads, dynamic batch, with the vocabulary, "
        "input size and normalisation as metadata) and OUT's .relations.onnx beside it. "
        "Any place a checkpoint is accepted (predict, eval, the perception node's "
        "checkpoint parameter) then takes the .onnx file and runs it with ONNX Runtime.",
    )
    p.add_argument("--ckpt", required=True, help="checkpoint file (model.pt)")
    p.add_argument("--format", default="onnx", choices=("onnx",), help="export format (onnx)")
    p.add_argument("--out", required=True, help="output file, e.g. model.onnx")
    p.add_argument(
        "--quantize",
        choices=QUANTIZE_MODES,
        help="int8: static quantization of the main graph, calibrated on --calibration frames "
        "(about 2x faster on CPUs with int8 dot products; check accuracy on your frames)",
    )
    p.add_argument(
        "--calibration",
        help="frames for int8 calibration, as the model will see them: an image folder, rosbag2 bag(s) "
        "(with --topic) or sim:<domain> (default: sim:<the checkpoint's training domain>)",
    )
    p.add_argument("--topic", help="image topic when --calibration is a bag")
    p.add_argument("--calibration-images", type=positive_int, default=64, help="frames used (default 64)")
    p.set_defaults(func=cmd_export)

    adapt_cli.register(sub)  # the adaptation commands live with the adaptation code
    return parser


def _user_errors() -> tuple:
    """Exceptions that mean bad input (a file, a flag, a config value, a bag topic...): each carries one
    sentence naming what is wrong, so the CLI prints it as one ``error:`` line and exits 2. Everything else
    is a bug and keeps its traceback."""
    # ValueError covers CheckpointError, ConfigError, AdaptConfigError, SimConfigError, CalibrationError,
    # KittiFormatError, ImageDecodeError, TargetSourceError, SceneGraphError
    return (
        ValueError,
        OSError,
        BagError,
        AdaptationError,
        OnnxModelError,
        PretrainedWeightsError,
        TrainingDivergedError,
        DistributedSetupError,
    )


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_reporting_user_errors(lambda: args.func(args), _user_errors())


if __name__ == "__main__":
    sys.exit(main())
