"""The Sim2SG benchmark: the paper's Table 1 for our environments (markdown + CSV + bar chart).

For each environment and seed: pre-render the labelled source training set, pre-train the shared
source model, then run every method of the profile (see :mod:`sim2sg_core.adapt.baselines`) under
the same step budget and evaluate on held-out *labelled* target images (the only place target
labels are used, apart from the oracle row). Unlabelled target images for adaptation come from a
different seed than the evaluation images.

Every finished (env, seed, method) result is stored as JSON under ``OUT/runs`` and skipped when
the benchmark is re-run, so an interrupted benchmark resumes.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from sim2sg_core.adapt.baselines import get_method, configure
from sim2sg_core.adapt.config import BenchProfile, config_to_dict
from sim2sg_core.utils.io import atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

#: Seeds of the data splits, offset per bench seed (disjoint simulator streams).
TRAIN_SEED, TARGET_SEED, EVAL_SEED = 100, 200, 300


@dataclass
class RealData:
    """A real camera instead of a simulated target: unlabelled frames to adapt on (image folder or
    rosbag2 bags), the camera's calibration, and a labelled KITTI-layout folder used only to measure."""

    target: str
    eval_data: str
    #: camera_info YAML (ROS camera_calibration format) or KITTI calib file; empty = a
    #: ``camera_info.yaml`` beside or above the target folder.
    camera_info: str = ""
    #: Image topic when ``target`` is a bag (None = the only image topic).
    topic: Optional[str] = None

    def resolve_camera_info(self) -> str:
        if self.camera_info:
            if not Path(self.camera_info).is_file():
                raise FileNotFoundError(f"camera info file {self.camera_info} does not exist")
            return self.camera_info
        t = Path(self.target)
        for d in (t, t.parent):
            if (d / "camera_info.yaml").is_file():
                return str(d / "camera_info.yaml")
        raise FileNotFoundError(f"no --camera-info given and no camera_info.yaml beside {self.target}: the real "
                                "camera's intrinsics are needed to render through it")

    @property
    def name(self) -> str:
        return "real_" + (Path(self.target).resolve().name or "target")


class PoolDataset(torch.utils.data.Dataset):
    """Pre-rendered (rgb, SceneGraph) pairs (rendering once, training many epochs)."""

    def __init__(self, images, graphs):
        self.images, self.graphs = list(images), list(graphs)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], self.graphs[i]


def render_split(env: str, domain: str, seed: int, count: int, image_size, camera=None) -> PoolDataset:
    """``count`` labelled images of a simulator domain, rendered through ``camera`` if given."""
    from sim2sg_core.sim import Simulator
    kw = {"camera": camera} if camera is not None else {}
    sim = Simulator(env=env, domain=domain, seed=seed, image_size=tuple(image_size) if image_size else None, **kw)
    images, graphs = [], []
    for i in range(count):
        s = sim.sample(i)
        images.append(s.image)
        graphs.append(s.graph)
    return PoolDataset(images, graphs)


def _experiment_config(profile: BenchProfile, env: str, domain: str, steps: int, seed: int, image_size,
                       lr: Optional[float] = None):
    from sim2sg_core.train.config import config_from_dict
    model = dict(profile.model)
    if image_size and "input_width" not in model:    # else the model resizes the rendered images itself
        model.update(input_width=int(image_size[0]), input_height=int(image_size[1]))
    train = {"steps": int(steps), "lr": lr or profile.source_lr, "batch_size": profile.adapt.batch_size,
             "env": env, "domain": domain, "seed": int(seed), "train_images": profile.train_images,
             "num_workers": 0, "checkpoint_every": 0, "log_every": 20, "warmup_steps": min(50, steps // 5)}
    return config_from_dict({"model": model, "train": train}, where=f"bench profile {profile.name}")


def train_supervised(profile: BenchProfile, env: str, domain: str, dataset, steps: int, seed: int,
                     out_dir: Path, image_size, progress: bool, init_checkpoint: Optional[Path] = None,
                     lr: Optional[float] = None) -> tuple[Path, float]:
    """Train on a labelled dataset with the project's Trainer — from scratch, or fine-tuning
    ``init_checkpoint`` — and return (checkpoint, seconds)."""
    from sim2sg_core.model.sg_model import SGModel
    from sim2sg_core.train.trainer import Trainer
    final = out_dir / "model.pt"
    meta = out_dir / "train_seconds.txt"
    if final.exists() and meta.exists():
        return final, float(meta.read_text())
    if callable(dataset):          # rendered only when actually needed
        dataset = dataset()
    torch.manual_seed(seed)
    cfg = _experiment_config(profile, env, domain, steps, seed, image_size, lr)
    vocab = _vocab(env)
    model = SGModel.from_config(cfg, vocab)
    if init_checkpoint is not None:
        from sim2sg_core.train.checkpoint import load_checkpoint
        model.load_state_dict(load_checkpoint(init_checkpoint, expect_vocab=vocab)["state_dict"])
    trainer = Trainer(model, cfg, vocab, out_dir, device=profile.adapt.device, progress=progress)
    t0 = time.perf_counter()
    trainer.resume()
    loader = trainer.make_loader(dataset)
    res = trainer.fit(loader, steps=steps)
    secs = time.perf_counter() - t0
    atomic_write_text(meta, f"{secs:.2f}")
    return Path(res["checkpoint"]), secs


def _vocab(env: str):
    from sim2sg_core.sim import load_environment
    return load_environment(env).vocab


def evaluate_checkpoint(path: Path, dataset, progress: bool) -> dict:
    from sim2sg_core.eval.evaluate import evaluate
    from sim2sg_core.model.predictor import Predictor
    pred = Predictor.from_checkpoint(path, device="auto")
    return evaluate(pred, dataset, progress=progress)


def run_bench(profile: BenchProfile, out_dir, *, envs: Optional[Sequence[str]] = None,
              methods: Optional[Sequence[str]] = None, seeds: Optional[Sequence[int]] = None,
              target_domain: Optional[str] = None, progress: bool = True, jobs: int = 1,
              real: Optional[RealData] = None) -> dict:
    """Run the benchmark; write ``table.md``, ``table.csv``, ``results.json``, ``chart.png`` in ``out_dir``
    and every method's final model as ``checkpoints/<method>_seed<N>.pt``.

    ``jobs`` > 1 runs that many (environment, seed) pairs at once in separate processes. With
    ``real``, the target is a real camera (unlabelled frames + calibration) and the metrics come
    from its labelled KITTI-layout folder.
    """
    out_dir = Path(out_dir)
    envs = list(envs or profile.envs)
    methods = list(methods or profile.methods)
    seeds = list(seeds if seeds is not None else profile.seeds)
    tdom = target_domain or profile.target_domain
    for m in methods:
        if real is not None and get_method(m).train_domain == "target":
            raise ValueError(f"method {m!r} needs labelled target training images; a real target has none")
        get_method(m)
    if real is not None:
        if len(envs) != 1:
            raise ValueError(f"a real target belongs to one environment's vocabulary, got {envs}")
        real.camera_info = real.resolve_camera_info()
        tdom = real.name
    runs: list[dict] = []
    pairs = [(env, seed) for env in envs for seed in seeds]
    if jobs <= 1 or len(pairs) <= 1:
        for env, seed in pairs:
            runs += _run_env_seed(profile, out_dir, env, seed, methods, tdom, profile.image_size_for(env), progress,
                                  real)
            _write_outputs(profile, out_dir, runs, envs, methods, seeds, tdom)   # partial tables as we go
    else:
        # One process per (env, seed), each with profile.num_threads torch threads: on a CPU the
        # rows scale with processes far better than with threads. Runs are independent folders.
        import concurrent.futures as cf
        import multiprocessing as mp
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                    initializer=_worker_init, initargs=(logging.getLogger().level,)) as pool:
            futs = [pool.submit(_run_env_seed, profile, out_dir, env, seed, methods, tdom,
                                profile.image_size_for(env), False, real) for env, seed in pairs]
            for f in cf.as_completed(futs):
                runs += f.result()
                _write_outputs(profile, out_dir, _ordered(runs, envs, seeds), envs, methods, seeds, tdom)
    return _write_outputs(profile, out_dir, _ordered(runs, envs, seeds), envs, methods, seeds, tdom)


def _worker_init(level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s [%(process)d] %(message)s")


def _ordered(runs: list[dict], envs, seeds) -> list[dict]:
    """Runs in (env, seed) order whatever order the worker processes finished in."""
    return sorted(runs, key=lambda r: (list(envs).index(r["env"]), list(seeds).index(r["seed"])))


def _domain_name(profile, name: str) -> str:
    """The profile's simulator domain for a method's symbolic labelled domain."""
    return {"source": profile.source_domain, "randomized": profile.randomized_domain}.get(name, name)


#: Mount height (m) assumed for a real camera whose profile does not state one (a car's roof camera).
DEFAULT_REAL_CAMERA_HEIGHT = 1.5


def _real_camera(profile, real: RealData, size):
    """The real camera (calibration + the profile's mount pose) at the render size."""
    from sim2sg_core.data.calibration import load_camera
    height = profile.camera_height if profile.camera_height is not None else DEFAULT_REAL_CAMERA_HEIGHT
    return load_camera(real.camera_info, height_m=height, pitch=profile.camera_pitch, image_size=tuple(size))


def _real_setup(profile, env: str, real: RealData, size):
    """(camera at the render size, target source, evaluation dataset) of a real target."""
    from sim2sg_core.adapt.targets import target_source_from_spec
    from sim2sg_core.data.datasets import KittiDataset
    camera = _real_camera(profile, real, size)
    target = target_source_from_spec(real.target, topic=real.topic, env=env)
    evalset = KittiDataset(real.eval_data, vocab=_vocab(env), camera_height_m=camera.height_m)
    return camera, target, evalset


def _run_env_seed(profile, out_dir, env, seed, methods, tdom, size, progress, real=None) -> list[dict]:
    from sim2sg_core.adapt.sim2sg import run_adaptation
    from sim2sg_core.adapt.targets import SimTargetSource
    if profile.num_threads > 0:
        torch.set_num_threads(profile.num_threads)     # also in a fresh worker process
    base = out_dir / "runs" / env / f"{tdom}" / f"seed{seed}"
    base.mkdir(parents=True, exist_ok=True)
    s_off = 1000 * seed
    results = []
    cache: dict = {}
    camera = real_target = real_eval = None
    if real is not None:
        camera, real_target, real_eval = _real_setup(profile, env, real, size)

    def dataset(domain, kind):
        if kind == "eval" and real_eval is not None:
            return real_eval
        key = (domain, kind)
        if key not in cache:
            n = profile.train_images if kind == "train" else profile.eval_images
            sd = (TRAIN_SEED if kind == "train" else EVAL_SEED) + s_off
            log.info("rendering %s %s/%s (%d images)", kind, env, domain, n)
            cache[key] = render_split(env, domain, sd, n, size, camera=camera)
        return cache[key]

    def pretrained_checkpoint(symbolic: str):
        # shared by every target domain of this env/seed (it never sees the target)
        domain = _domain_name(profile, symbolic)
        tag = "source" if symbolic == "source" else symbolic
        if real is not None:        # rendered through the real camera: not shared with simulator targets
            tag = f"{tag}_{real.name}"
        return train_supervised(profile, env, domain, lambda: dataset(domain, "train"), profile.source_steps,
                                seed, out_dir / "runs" / env / f"seed{seed}_{tag}_pretrain", size, progress)

    def source_checkpoint():
        return pretrained_checkpoint("source")

    for name in methods:
        method = get_method(name)
        res_file = base / f"{name}.json"
        if res_file.exists():
            results.append(json.loads(res_file.read_text()))
            continue
        log.info("bench %s/%s seed %d: %s", env, tdom, seed, name)
        t0, c0 = time.perf_counter(), time.process_time()
        pretrain_s = 0.0
        domain = tdom if method.train_domain == "target" else _domain_name(profile, method.train_domain)

        def train_data(domain=domain):  # rendered only if train_supervised needs it
            return dataset(domain, "train")

        if method.kind == "supervised":
            ckpt, train_s = train_supervised(profile, env, domain, train_data, profile.budget_steps,
                                             seed, base / name, size, progress)
        elif method.kind == "finetune":
            src_ckpt, pretrain_s = source_checkpoint()
            ckpt, train_s = train_supervised(profile, env, domain, train_data, profile.adapt.total_steps,
                                             seed, base / name, size, progress, init_checkpoint=src_ckpt,
                                             lr=profile.adapt.lr)
        else:
            src_ckpt, pretrain_s = pretrained_checkpoint(method.pretrain_domain)
            cfg = configure(profile.adapt, method)
            cfg.env, cfg.seed, cfg.progress_bar = env, seed, progress
            cfg.source_domain = _domain_name(profile, method.pretrain_domain)
            if real is not None:
                assert camera is not None and real_target is not None   # set up above for a real target
                target = real_target
                cfg.camera_info = real.camera_info
                cfg.camera_height, cfg.camera_pitch = camera.height_m, camera.pitch
                cfg.max_target_images = profile.target_images
            else:
                target = SimTargetSource(env=env, domain=tdom, seed=TARGET_SEED + s_off, count=profile.target_images,
                                         image_size=size)
            ckpt = base / name / "model.pt"
            t1 = time.perf_counter()
            run_adaptation(src_ckpt, target, ckpt, cfg, progress_callback=_log_progress(f"{env}/{tdom}/{name}"))
            train_s = time.perf_counter() - t1
        metrics = evaluate_checkpoint(ckpt, dataset(tdom, "eval"), progress)
        kept = out_dir / "checkpoints" / f"{name}_seed{seed}.pt"
        kept.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(kept, Path(ckpt).read_bytes())
        rec = {"env": env, "target_domain": tdom, "seed": seed, "method": name, "label": method.label,
               "kind": method.kind, "budget_steps": profile.budget_steps,
               "train_seconds": round(train_s, 1), "pretrain_seconds": round(pretrain_s, 1),
               "wall_seconds": round(train_s + pretrain_s, 1),
               "row_seconds": round(time.perf_counter() - t0, 1),
               # CPU time of this row in this process (all threads): comparable across machine load
               "row_cpu_seconds": round(time.process_time() - c0, 1), "checkpoint": str(kept), "metrics": metrics}
        atomic_write_text(res_file, json.dumps(rec, indent=1, default=_json_default))
        results.append(rec)
    return results


def _log_progress(tag: str):
    def cb(step: int, total: int, m: dict) -> None:
        if m.get("phase") == "analysis":
            log.info("%s step %d/%d analysis: %s", tag, step, total,
                     {k: v for k, v in m.items() if k in ("round", "pseudo_objects", "pseudo_class_counts")})
        elif step % 20 == 0:
            log.info("%s step %d/%d loss %.3f lambda %.2f", tag, step, total, m["loss"], m["grl_lambda"])
    return cb


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    raise TypeError(type(o).__name__)


# ----------------------------------------------------------------------------------- tables

def _mean_std(values: list) -> tuple[float, float]:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return math.nan, math.nan
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0


def _fmt(mean_std: tuple[float, float], n: int) -> str:
    mean, std = mean_std
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.3f} ± {std:.3f}" if n > 1 else f"{mean:.3f}"


def summarise(runs: list[dict], envs, methods, k: int = 20) -> list[dict]:
    """One row per (env, method): mean/std over seeds of per-class AP, mAP, R@K and wall time."""
    rows = []
    for env in envs:
        for m in methods:
            rs = [r for r in runs if r["env"] == env and r["method"] == m]
            if not rs:
                continue
            per_class = rs[0]["metrics"]["per_class"]
            # classes absent from the evaluation labels have no AP (and are not in the mAP)
            classes = [c for c in per_class if per_class[c].get("num_gt", 1) > 0]
            row = {"env": env, "method": m, "label": rs[0]["label"], "seeds": len(rs), "classes": classes,
                   "absent": [c for c in per_class if c not in classes],
                   "num_gt": {c: per_class[c].get("num_gt") for c in classes}}
            for c in classes:
                row[f"AP50/{c}"] = _mean_std([r["metrics"]["per_class"][c]["ap50"] for r in rs])
            row["mAP50"] = _mean_std([r["metrics"]["map50"] for r in rs])
            row[f"R@{k}"] = _mean_std([r["metrics"][f"recall@{k}"] for r in rs])
            # Scene-Graph-Benchmark modes (results.json only; runs stored before them have none)
            if all("scene_graph" in r["metrics"] for r in rs):
                for mode in rs[0]["metrics"]["scene_graph"]:
                    for key in (f"R@{k}", f"mR@{k}", f"ngR@{k}"):
                        vals = [r["metrics"]["scene_graph"][mode].get(key) for r in rs]
                        if all(v is not None for v in vals):
                            row[f"{mode} {key}"] = _mean_std(vals)
            row["wall_s"] = _mean_std([r["wall_seconds"] for r in rs])
            rows.append(row)
    return rows


def _write_outputs(profile, out_dir: Path, runs, envs, methods, seeds, tdom) -> dict:
    k = int(getattr(profile, "recall_k", 20))
    rows = summarise(runs, envs, methods, k)
    real = tdom.startswith("real_")
    n_eval = runs[0]["metrics"].get("num_images", profile.eval_images) if runs else profile.eval_images
    md = [f"# Sim2SG benchmark — profile `{profile.name}`, target domain `{tdom}`", "",
          f"Seeds: {list(seeds)} (mean ± sample std over seeds). Budget per method: {profile.budget_steps} "
          f"steps (source pre-training {profile.source_steps} + adaptation {profile.adapt.total_steps}). "
          f"Images {profile.image_size or f'{profile.image_scale}x env default'}; "
          f"{profile.train_images} labelled training images, "
          f"{profile.target_images} unlabelled target images, {n_eval} labelled target "
          f"evaluation images. AP@0.5 (COCO 101-point), Recall@{k} (graph constraint). Wall time = "
          "training (incl. shared source pre-training for adaptation rows) on this machine.", ""]
    if real:
        md += [f"Real target: labelled source domain `{profile.source_domain}`, randomized domain "
               f"`{profile.randomized_domain}`, rendered through the real camera's calibration. "
               "Ground-truth relationships follow the same rule from the labelled boxes, placed on the ground "
               "through the calibration.", ""]
    csv_buf = io.StringIO()
    writer = csv.writer(csv_buf)
    writer.writerow(["env", "target_domain", "method", "label", "seeds", "metric", "mean", "std"])
    for env in envs:
        er = [r for r in rows if r["env"] == env]
        if not er:
            continue
        classes = er[0]["classes"]
        head = [f"AP@0.5 {c}" + (f" ({er[0]['num_gt'][c]} GT)" if real else "") for c in classes]
        md += [f"## {env}", "",
               "| Method | " + " | ".join(head) + f" | mAP@0.5 | Recall@{k} | wall (s) |",
               "|---|" + "---|" * (len(classes) + 3)]
        for r in er:
            cells = [_fmt(r[f"AP50/{c}"], r["seeds"]) for c in classes]
            cells += [_fmt(r["mAP50"], r["seeds"]), _fmt(r[f"R@{k}"], r["seeds"])]
            wm, ws = r["wall_s"]
            cells.append(f"{wm:.0f}" + (f" ± {ws:.0f}" if r["seeds"] > 1 else ""))
            md.append(f"| {r['label']} | " + " | ".join(cells) + " |")
            for key in [f"AP50/{c}" for c in classes] + ["mAP50", f"R@{k}", "wall_s"]:
                writer.writerow([env, tdom, r["method"], r["label"], r["seeds"], key, *r[key]])
        if er[0]["absent"]:
            md += ["", f"Classes with no labels in the evaluation set ({', '.join(er[0]['absent'])}) are left out "
                   "of the table and of the mAP."]
        md += ["", _gap_summary(er, k), ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "table.md", "\n".join(md) + "\n")
    atomic_write_text(out_dir / "table.csv", csv_buf.getvalue())
    atomic_write_text(out_dir / "results.json", json.dumps(
        {"profile": config_to_dict(profile), "target_domain": tdom, "runs": runs}, indent=1, default=_json_default))
    if rows:
        _bar_chart(out_dir / "chart.png", rows, envs, k)
    return {"rows": rows, "runs": runs, "table": "\n".join(md)}


def _gap_summary(rows: list[dict], k: int) -> str:
    by = {r["method"]: r for r in rows}
    if "source_only" not in by or "sim2sg_full" not in by:
        return ""
    s, f = by["source_only"], by["sim2sg_full"]
    parts = [f"Full Sim2SG − source only: mAP {f['mAP50'][0] - s['mAP50'][0]:+.3f}, "
             f"Recall@{k} {f[f'R@{k}'][0] - s[f'R@{k}'][0]:+.3f}."]
    if "sim2sg_dr" in by:
        d = by["sim2sg_dr"]
        parts.append(f"DR + Sim2SG − source only: mAP {d['mAP50'][0] - s['mAP50'][0]:+.3f}, "
                     f"Recall@{k} {d[f'R@{k}'][0] - s[f'R@{k}'][0]:+.3f}.")
    if "oracle" in by:
        gap = by["oracle"]["mAP50"][0] - s["mAP50"][0]
        if gap > 0:
            parts.append(f"Closes {100 * (f['mAP50'][0] - s['mAP50'][0]) / gap:.0f}% of the source-only → oracle "
                         "mAP gap.")
    ladder = [m for m in ("sim2sg_label", "sim2sg_label_pred", "sim2sg_full") if m in by]
    if len(ladder) > 1:
        steps = [f"{by[a]['label'].split(': ')[-1]} → {by[b]['label'].split(': ')[-1]}: mAP "
                 f"{by[b]['mAP50'][0] - by[a]['mAP50'][0]:+.3f}, "
                 f"Recall@{k} {by[b][f'R@{k}'][0] - by[a][f'R@{k}'][0]:+.3f}"
                 for a, b in zip(ladder, ladder[1:])]
        parts.append("Ablation steps: " + "; ".join(steps) + ".")
    return " ".join(parts)


def _bar_chart(path: Path, rows, envs, k: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    envs = [e for e in envs if any(r["env"] == e for r in rows)]
    fig, axes = plt.subplots(1, len(envs), figsize=(6 * len(envs), 4.5), squeeze=False)
    for ax, env in zip(axes[0], envs):
        er = [r for r in rows if r["env"] == env]
        x = np.arange(len(er))
        for j, (key, name) in enumerate((("mAP50", "mAP@0.5"), (f"R@{k}", f"Recall@{k}"))):
            means = [r[key][0] for r in er]
            stds = [r[key][1] for r in er]
            ax.bar(x + (j - 0.5) * 0.38, means, 0.38, yerr=stds, capsize=3, label=name)
        ax.set_xticks(x)
        ax.set_xticklabels([r["label"] for r in er], rotation=35, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(env)
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
