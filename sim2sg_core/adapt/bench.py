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

import copy

import concurrent.futures as cf
import csv
import io
import json
import logging
import math
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from sim2sg_core.adapt.baselines import get_method, configure
from sim2sg_core.adapt.config import BenchProfile, config_to_dict
from sim2sg_core.adapt.real_report import adaptation_rounds, difficulty_table, pair_differences, pseudo_label_table
from sim2sg_core.adapt.sim2sg import run_adaptation
from sim2sg_core.adapt.targets import SimTargetSource, target_source_from_spec
from sim2sg_core.data.calibration import load_camera
from sim2sg_core.data.datasets import KittiDataset
from sim2sg_core.eval.bootstrap import paired_bootstrap
from sim2sg_core.eval.vehicle_evidence import vehicle_evidence
from sim2sg_core.eval.evaluate import evaluate
from sim2sg_core.model.checkpoint import load_checkpoint
from sim2sg_core.model.config import config_from_dict
from sim2sg_core.model.imagenet_prior import VehicleScorer
from sim2sg_core.model.predictor import Predictor
from sim2sg_core.model.sg_model import SGModel
from sim2sg_core.sim import Simulator, load_environment
from sim2sg_core.train.trainer import Trainer
from sim2sg_core.utils.io import atomic_save, atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)

#: Simulator seeds of the data splits, offset by ``SEED_STRIDE`` per bench seed (disjoint simulator
#: streams): labelled training images, unlabelled target images, and two labelled evaluation splits:
#: ``val`` (the quick profile; settings may be chosen on it) and ``test`` (the full profile's report).
TRAIN_SEED, TARGET_SEED = 100, 200
EVAL_SEEDS = {"val": 300, "test": 400}
SEED_STRIDE = 1000


def split_seeds(bench_seed: int) -> dict[str, int]:
    """The simulator seed of every data split of one bench seed (``train``, ``target``, ``val``, ``test``)."""
    if not 0 <= int(bench_seed) < 10**6:
        raise ValueError(f"bench seed must be in [0, 1e6), got {bench_seed}")
    off = SEED_STRIDE * int(bench_seed)
    return {"train": TRAIN_SEED + off, "target": TARGET_SEED + off, **{name: s + off for name, s in EVAL_SEEDS.items()}}


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
        raise FileNotFoundError(
            f"no --camera-info given and no camera_info.yaml beside {self.target}: the real "
            "camera's intrinsics are needed to render through it"
        )

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
    kw = {"camera": camera} if camera is not None else {}
    sim = Simulator(env=env, domain=domain, seed=seed, image_size=tuple(image_size) if image_size else None, **kw)
    images, graphs = [], []
    for i in range(count):
        s = sim.sample(i)
        images.append(s.image)
        graphs.append(s.graph)
    return PoolDataset(images, graphs)


def _experiment_config(
    profile: BenchProfile, env: str, domain: str, steps: int, seed: int, image_size, lr: Optional[float] = None
):
    model = dict(profile.model)
    if image_size and "input_width" not in model:  # else the model resizes the rendered images itself
        model.update(input_width=int(image_size[0]), input_height=int(image_size[1]))
    train = {
        "steps": int(steps),
        "lr": lr or profile.source_lr,
        "batch_size": profile.adapt.batch_size,
        "env": env,
        "domain": domain,
        "seed": int(seed),
        "train_images": profile.train_images,
        "num_workers": 0,
        "checkpoint_every": 0,
        "keep_every": profile.keep_every,
        "log_every": 20,
        "warmup_steps": min(50, steps // 5),
    }
    return config_from_dict({"model": model, "train": train}, where=f"bench profile {profile.name}")


def train_supervised(
    profile: BenchProfile,
    env: str,
    domain: str,
    dataset,
    steps: int,
    seed: int,
    out_dir: Path,
    image_size,
    progress: bool,
    init_checkpoint: Optional[Path] = None,
    lr: Optional[float] = None,
) -> tuple[Path, float]:
    """Train on a labelled dataset with the project's Trainer — from scratch, or fine-tuning
    ``init_checkpoint`` — and return (checkpoint, seconds)."""
    final = out_dir / "model.pt"
    meta = out_dir / "train_seconds.txt"
    if final.exists() and meta.exists():
        return final, float(meta.read_text())
    if callable(dataset):  # rendered only when actually needed
        dataset = dataset()
    torch.manual_seed(seed)
    cfg = _experiment_config(profile, env, domain, steps, seed, image_size, lr)
    vocab = _vocab(env)
    model = SGModel.from_config(cfg, vocab)
    if init_checkpoint is not None:
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
    return load_environment(env).vocab


def evaluate_checkpoint(path: Path, dataset, progress: bool, keep_records: bool = False) -> dict:
    """``evaluate`` of a checkpoint; ``keep_records`` adds the per-image bootstrap ingredients."""
    pred = Predictor.from_checkpoint(path, device="auto")
    return evaluate(pred, dataset, progress=progress, keep_records=keep_records)


def run_bench(
    profile: BenchProfile,
    out_dir,
    *,
    envs: Optional[Sequence[str]] = None,
    methods: Optional[Sequence[str]] = None,
    seeds: Optional[Sequence[int]] = None,
    target_domain: Optional[str] = None,
    progress: bool = True,
    jobs: int = 1,
    real: Optional[RealData] = None,
    stored_only: bool = False,
    reevaluate: bool = False,
) -> dict:
    """Run the benchmark; write ``table.md``, ``table.csv``, ``results.json``, ``chart.png`` in ``out_dir``
    and every method's final model as ``checkpoints/<method>_seed<N>.pt``.

    ``jobs`` > 1 runs that many (environment, seed) pairs at once in separate processes. With
    ``real``, the target is a real camera (unlabelled frames + calibration) and the metrics come
    from its labelled KITTI-layout folder. ``target_domain`` replaces the profile's target domains
    by one; with several, the tables hold one section per target, and the checkpoints of all but a
    single target go to ``checkpoints/<target>/``. Training that never sees the target (source and
    randomized pre-training, domain randomisation) is shared by the targets.

    ``stored_only`` trains nothing: the tables are written from the rows already stored in ``out_dir``
    (each row's ``runs/<env>/<target>/seed<N>/<method>.json``), so rows run by several commands, or with
    different seed counts, make one table; the rows not stored are listed in ``table.md``. ``reevaluate``
    (with ``stored_only``) first measures every stored row's kept checkpoint again with the current evaluation
    (metrics, per-image records, the adaptation's pseudo-label rounds), keeping its training record.
    """
    out_dir = Path(out_dir)
    envs = list(envs or profile.envs)
    methods = list(methods or profile.methods)
    seeds = list(seeds if seeds is not None else profile.seeds)
    tdoms = [target_domain] if target_domain else list(profile.target_domains)
    for m in methods:
        if real is not None and get_method(m).train_domain == "target":
            raise ValueError(f"method {m!r} needs labelled target training images; a real target has none")
        get_method(m)
    if real is not None:
        if len(envs) != 1:
            raise ValueError(f"a real target belongs to one environment's vocabulary, got {envs}")
        real.camera_info = real.resolve_camera_info()
        tdoms = [real.name]
        audit_real_labels(real, envs[0], Path(out_dir))
    if not tdoms or len(set(tdoms)) != len(tdoms):
        raise ValueError(f"target domains must be distinct and at least one, got {tdoms}")
    runs: list[dict] = []
    # Seed-major: a run stopped early still has every environment at the seeds it finished.
    pairs = [(env, seed) for seed in seeds for env in envs]
    if stored_only:
        runs, missing = stored_runs(out_dir, pairs, methods, tdoms)
        if not runs:
            raise FileNotFoundError(f"no stored benchmark rows under {out_dir / 'runs'} for {methods} / {tdoms}")
        if reevaluate:
            runs = [_reevaluate(profile, out_dir, r, progress, real) for r in runs]
        return _write_outputs(profile, out_dir, _ordered(runs, envs, seeds), envs, methods, seeds, tdoms, missing)
    if jobs <= 1 or len(pairs) <= 1:
        for env, seed in pairs:
            runs += _run_env_seed(
                profile, out_dir, env, seed, methods, tdoms, profile.image_size_for(env), progress, real
            )
            _write_outputs(profile, out_dir, runs, envs, methods, seeds, tdoms)  # partial tables as we go
    else:
        # One process per (env, seed), each with profile.num_threads torch threads: on a CPU the
        # rows scale with processes far better than with threads. Runs are independent folders.
        with cf.ProcessPoolExecutor(
            max_workers=jobs,
            mp_context=mp.get_context("spawn"),
            initializer=_worker_init,
            initargs=(logging.getLogger().level,),
        ) as pool:
            futs = [
                pool.submit(
                    _run_env_seed, profile, out_dir, env, seed, methods, tdoms, profile.image_size_for(env), False, real
                )
                for env, seed in pairs
            ]
            for f in cf.as_completed(futs):
                runs += f.result()
                _write_outputs(profile, out_dir, _ordered(runs, envs, seeds), envs, methods, seeds, tdoms)
    return _write_outputs(profile, out_dir, _ordered(runs, envs, seeds), envs, methods, seeds, tdoms)


def _reevaluate(profile, out_dir: Path, rec: dict, progress: bool, real: Optional[RealData]) -> dict:
    """A stored row measured again from its kept checkpoint (training fields kept), stored in place."""
    env, tdom, seed, name = rec["env"], rec["target_domain"], rec["seed"], rec["method"]
    if real is not None:
        evalset = _real_setup(profile, env, real, profile.image_size_for(env))[2]
    else:
        evalset = render_split(
            env, tdom, split_seeds(seed)[profile.eval_split], profile.eval_images, profile.image_size_for(env)
        )
    ckpt = Path(rec["checkpoint"])
    log.info("re-evaluating %s/%s seed %d: %s (%s)", env, tdom, seed, name, ckpt)
    metrics = evaluate_checkpoint(ckpt, evalset, progress, keep_records=True)
    records = metrics.pop("records")
    records_file = _row_dir(out_dir, env, tdom, seed) / f"{name}.records.npz"
    atomic_save(records_file, lambda tmp: _save_npz(tmp, records))
    out = {**rec, "metrics": metrics, "records": str(records_file)}
    adaptation = (load_checkpoint(ckpt).get("extra") or {}).get("adaptation")
    if adaptation:
        out.update(adaptation_rounds=adaptation_rounds(adaptation.get("history") or []))
        out.update(target_frames=int(adaptation.get("target_images") or 0))
    atomic_write_text(_row_file(out_dir, env, tdom, seed, name), json.dumps(out, indent=1, default=_json_default))
    return out


def stored_runs(out_dir: Path, pairs, methods, tdoms) -> tuple[list[dict], list[tuple[str, str, str, int]]]:
    """The run records stored under ``out_dir`` for every (env, seed) pair × target × method, and the
    (env, target, method, seed) of those not stored."""
    runs, missing = [], []
    for env, seed in pairs:
        for tdom in tdoms:
            for name in methods:
                res_file = _row_file(out_dir, env, tdom, seed, name)
                if res_file.is_file():
                    runs.append(json.loads(res_file.read_text()))
                else:
                    missing.append((env, tdom, name, seed))
    return runs, missing


def _row_dir(out_dir: Path, env: str, tdom: str, seed: int) -> Path:
    """The folder of one (env, target, seed)'s rows: records, per-image records, adapted models."""
    return Path(out_dir) / "runs" / env / tdom / f"seed{seed}"


def _row_file(out_dir: Path, env: str, tdom: str, seed: int, method: str) -> Path:
    """Where one row's run record is stored (the cache a later run with the same ``--out`` reuses)."""
    return _row_dir(out_dir, env, tdom, seed) / f"{method}.json"


#: File (in the bench folder) of the real evaluation labels' registration check.
LABEL_AUDIT_FILE = "label_audit.json"


def audit_real_labels(real: RealData, env: str, out_dir: Path) -> dict:
    """Check, before any AP is computed on them, that the real evaluation folder's labels lie on what they
    name: the ImageNet vehicle classifier's score of every labelled car against same-row controls
    (:mod:`sim2sg_core.eval.vehicle_evidence`). Written to ``out_dir/label_audit.json`` (reused while the
    folder's label files are unchanged) and quoted in ``table.md``."""
    labels = sorted(Path(real.eval_data).glob("label_2/*.txt"))
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in labels]
    path = out_dir / LABEL_AUDIT_FILE
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            if old.get("eval_data") == str(real.eval_data) and old.get("labels") == stamp:
                return old
        except (OSError, ValueError):
            pass
    vocab = _vocab(env)
    car = vocab.classes.index("car") if "car" in vocab.classes else 0
    data = KittiDataset(real.eval_data, vocab=vocab)
    scorer = VehicleScorer(device="cpu")
    result = vehicle_evidence(
        scorer.score_crops,
        [
            (img, np.array([o.box for o in g.objects if o.class_id == car]).reshape(-1, 4))
            for img, g in (data[i] for i in range(len(data)))
        ],
    )
    audit = {"eval_data": str(real.eval_data), "labels": stamp, "class": vocab.classes[car], **result.to_dict()}
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(audit, indent=2) + "\n")
    log.info("label registration check of %s: AUC %.3f %s", real.eval_data, result.auc, result.auc_ci95)
    return audit


def label_audit_lines(out_dir: Path) -> list[str]:
    """table.md's paragraph on the real labels' registration check (none when it was not run)."""
    path = out_dir / LABEL_AUDIT_FILE
    if not path.is_file():
        return []
    a = json.loads(path.read_text())
    lo, hi = a["auc_ci95"]
    verdict = (
        "**The labels do not lie on vehicles more often than chance placement: the AP below cannot rank methods.**"
        if hi < 0.6
        else "The labels point at vehicles."
    )
    return [
        f"Label registration check (`{LABEL_AUDIT_FILE}`): the ImageNet vehicle classifier scores the "
        f"{a['boxes']} labelled `{a['class']}` boxes above same-size boxes at random columns of the same rows "
        f"with AUC {a['auc']:.3f} [{lo:.3f}, {hi:.3f}] (0.5 = chance; boxes drawn on visible cars score about "
        f"0.8). {verdict}",
        "",
    ]


def _worker_init(level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s [%(process)d] %(message)s")


def _ordered(runs: list[dict], envs, seeds) -> list[dict]:
    """Runs in (env, seed) order whatever order the worker processes finished in (targets keep theirs)."""
    return sorted(runs, key=lambda r: (list(envs).index(r["env"]), list(seeds).index(r["seed"])))


def _domain_name(profile, name: str) -> str:
    """The profile's simulator domain for a method's symbolic labelled domain."""
    return {"source": profile.source_domain, "randomized": profile.randomized_domain}.get(name, name)


#: Mount height (m) assumed for a real camera whose profile does not state one (a car's roof camera).
DEFAULT_REAL_CAMERA_HEIGHT = 1.5


def real_camera(profile, real: RealData, size):
    """The real camera (calibration + the profile's mount pose) at the render size."""
    height = profile.camera_height if profile.camera_height is not None else DEFAULT_REAL_CAMERA_HEIGHT
    return load_camera(real.camera_info, height_m=height, pitch=profile.camera_pitch, image_size=tuple(size))


def _real_setup(profile, env: str, real: RealData, size):
    """(camera at the render size, target source, evaluation dataset) of a real target."""
    camera = real_camera(profile, real, size)
    target = target_source_from_spec(real.target, topic=real.topic, env=env)
    evalset = KittiDataset(
        real.eval_data, class_map=profile.eval_class_map or None, vocab=_vocab(env), camera_height_m=camera.height_m
    )
    return camera, target, evalset


def _run_env_seed(profile, out_dir, env, seed, methods, tdoms, size, progress, real=None) -> list[dict]:
    """Every method on every target domain for one (environment, bench seed)."""
    if profile.num_threads > 0:
        torch.set_num_threads(profile.num_threads)  # also in a fresh worker process
    run = _EnvSeedRun(profile, Path(out_dir), env, seed, size, progress, real)
    results = []
    for tdom in tdoms:
        base = _row_dir(run.out_dir, env, tdom, seed)
        base.mkdir(parents=True, exist_ok=True)
        kept_dir = run.out_dir / "checkpoints" / (tdom if len(tdoms) > 1 else "")
        for name in methods:
            res_file = _row_file(run.out_dir, env, tdom, seed, name)
            if res_file.exists():
                results.append(json.loads(res_file.read_text()))
                continue
            rec = run.method(tdom, name, base, kept_dir)
            atomic_write_text(res_file, json.dumps(rec, indent=1, default=_json_default))
            results.append(rec)
    return results


class _EnvSeedRun:
    """The data and shared pre-trainings of one (environment, bench seed), and running one method on it."""

    def __init__(self, profile, out_dir: Path, env: str, seed: int, size, progress: bool, real=None):
        self.profile, self.out_dir, self.env, self.seed = profile, out_dir, env, seed
        self.size, self.progress, self.real = size, progress, real
        self.seeds = split_seeds(seed)
        self._cache: dict = {}
        self.camera = self.real_target = self.real_eval = None
        if real is not None:
            self.camera, self.real_target, self.real_eval = _real_setup(profile, env, real, size)

    def dataset(self, domain: str, kind: str):
        """Labelled images of ``domain``: ``train`` or ``eval`` (the profile's split; a real target's folder)."""
        if kind == "eval" and self.real_eval is not None:
            return self.real_eval
        key = (domain, kind)
        if key not in self._cache:
            p = self.profile
            n = p.train_images if kind == "train" else p.eval_images
            sd = self.seeds["train"] if kind == "train" else self.seeds[p.eval_split]
            log.info(
                "rendering %s %s/%s (%d images, %s split)",
                kind,
                self.env,
                domain,
                n,
                "train" if kind == "train" else p.eval_split,
            )
            self._cache[key] = render_split(self.env, domain, sd, n, self.size, camera=self.camera)
        return self._cache[key]

    def shared_dir(self, tag: str, kind: str) -> Path:
        """Folder of a training that never sees the target: shared by every target domain of this env/seed."""
        if self.real is not None:  # rendered through the real camera: not shared with simulator targets
            tag = f"{tag}_{self.real.name}"
        return self.out_dir / "runs" / self.env / f"seed{self.seed}_{tag}_{kind}"

    def pretrained_checkpoint(self, symbolic: str) -> tuple[Path, float]:
        domain = _domain_name(self.profile, symbolic)
        tag = "source" if symbolic == "source" else symbolic
        return train_supervised(
            self.profile,
            self.env,
            domain,
            lambda: self.dataset(domain, "train"),
            self.profile.source_steps,
            self.seed,
            self.shared_dir(tag, "pretrain"),
            self.size,
            self.progress,
        )

    def supervised_checkpoint(self, name: str, domain: str) -> tuple[Path, float]:
        """The supervised row ``name``'s model on ``domain`` (whole budget, from scratch), shared by the targets
        and by the adaptation rows that start from it."""
        return train_supervised(
            self.profile,
            self.env,
            domain,
            lambda: self.dataset(domain, "train"),
            self.profile.budget_steps,
            self.seed,
            self.shared_dir(f"{name}_{domain}", "train"),
            self.size,
            self.progress,
        )

    def method(self, tdom: str, name: str, base: Path, kept_dir: Path) -> dict:
        """Train / adapt one method, evaluate it, keep its checkpoint and per-image records; its run record."""
        profile, env, seed, size, progress, real = (
            self.profile,
            self.env,
            self.seed,
            self.size,
            self.progress,
            self.real,
        )
        method = get_method(name)
        adaptation: dict = {}
        log.info("bench %s/%s seed %d: %s", env, tdom, seed, name)
        t0, c0 = time.perf_counter(), time.process_time()
        pretrain_s = 0.0
        domain = tdom if method.train_domain == "target" else _domain_name(profile, method.train_domain)

        def train_data(domain=domain):  # rendered only if train_supervised needs it
            return self.dataset(domain, "train")

        budget = profile.budget_steps
        if method.kind == "supervised":
            if method.train_domain == "target":
                ckpt, train_s = train_supervised(
                    profile, env, domain, train_data, budget, seed, base / name, size, progress
                )
            else:
                ckpt, train_s = self.supervised_checkpoint(name, domain)
        elif method.kind == "finetune":
            src_ckpt, pretrain_s = self.pretrained_checkpoint("source")
            ckpt, train_s = train_supervised(
                profile,
                env,
                domain,
                train_data,
                profile.adapt.total_steps,
                seed,
                base / name,
                size,
                progress,
                init_checkpoint=src_ckpt,
                lr=profile.adapt.lr,
            )
        else:
            if method.init_from:
                init = get_method(method.init_from)
                if init.kind != "supervised" or init.train_domain != method.pretrain_domain:
                    raise ValueError(f"{name}: init_from must name a supervised row on {method.pretrain_domain!r}")
                src_ckpt, pretrain_s = self.supervised_checkpoint(init.name, _domain_name(profile, init.train_domain))
                budget += profile.adapt.total_steps
            else:
                src_ckpt, pretrain_s = self.pretrained_checkpoint(method.pretrain_domain)
            cfg = configure(profile.adapt, method)
            cfg.env, cfg.seed, cfg.progress_bar = env, seed, progress
            cfg.source_domain = _domain_name(profile, method.pretrain_domain)
            if real is not None:
                assert self.camera is not None and self.real_target is not None  # set up for a real target
                target = self.real_target
                cfg.camera_info = real.camera_info
                cfg.camera_height, cfg.camera_pitch = self.camera.height_m, self.camera.pitch
                cfg.max_target_images = profile.target_images
            else:
                target = SimTargetSource(
                    env=env, domain=tdom, seed=self.seeds["target"], count=profile.target_images, image_size=size
                )
            ckpt = base / name / "model.pt"
            t1 = time.perf_counter()
            res = run_adaptation(src_ckpt, target, ckpt, cfg, progress_callback=_log_progress(f"{env}/{tdom}/{name}"))
            train_s = time.perf_counter() - t1
            adaptation = {"adaptation_rounds": adaptation_rounds(res.history), "target_frames": res.target_images}
        metrics = evaluate_checkpoint(ckpt, self.dataset(tdom, "eval"), progress, keep_records=True)
        records = metrics.pop("records")
        records_file = base / f"{name}.records.npz"
        atomic_save(records_file, lambda tmp: _save_npz(tmp, records))
        kept = kept_dir / f"{name}_seed{seed}.pt"
        kept.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(kept, Path(ckpt).read_bytes())
        return {
            "env": env,
            "target_domain": tdom,
            "seed": seed,
            "method": name,
            "label": method.label,
            "kind": method.kind,
            "budget_steps": budget,
            "eval_split": "real" if real is not None else profile.eval_split,
            "train_seconds": round(train_s, 1),
            "pretrain_seconds": round(pretrain_s, 1),
            "wall_seconds": round(train_s + pretrain_s, 1),
            "row_seconds": round(time.perf_counter() - t0, 1),
            # CPU time of this row in this process (all threads): comparable across machine load
            "row_cpu_seconds": round(time.process_time() - c0, 1),
            "checkpoint": str(kept),
            "records": str(records_file),
            "metrics": metrics,
            **adaptation,
        }


def _save_npz(path: str, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def _log_progress(tag: str):
    def cb(step: int, total: int, m: dict) -> None:
        if m.get("phase") == "analysis":
            log.info(
                "%s step %d/%d analysis: %s",
                tag,
                step,
                total,
                {k: v for k, v in m.items() if k in ("round", "pseudo_objects", "pseudo_class_counts")},
            )
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
    """One row per (env, method): mean/std over seeds of per-class AP, mAP, R@K and wall time
    (``runs`` of one target domain)."""
    rows = []
    for env in envs:
        for m in methods:
            rs = [r for r in runs if r["env"] == env and r["method"] == m]
            if not rs:
                continue
            per_class = rs[0]["metrics"]["per_class"]
            # classes absent from the evaluation labels have no AP (and are not in the mAP)
            classes = [c for c in per_class if per_class[c].get("num_gt", 1) > 0]
            row = {
                "env": env,
                "method": m,
                "label": rs[0]["label"],
                "seeds": len(rs),
                "classes": classes,
                "seed_list": [r["seed"] for r in rs],
                "absent": [c for c in per_class if c not in classes],
                "num_gt": {c: per_class[c].get("num_gt") for c in classes},
            }
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
            row["steps"] = rs[0].get("budget_steps")
            rows.append(row)
    return rows


def gain_intervals(
    runs: list[dict], env: str, method: str, k: int, n_boot: int, baseline: str = "source_only"
) -> Optional[dict]:
    """Paired-bootstrap 95 % intervals of ``method`` − ``baseline`` (mAP and Recall@K) over the seeds both
    have, re-sampling seeds and evaluation images (:func:`sim2sg_core.eval.bootstrap.paired_bootstrap`);
    None when either lacks per-image records (runs stored before them)."""
    mine = {r["seed"]: r for r in runs if r["env"] == env and r["method"] == method}
    base = {r["seed"]: r for r in runs if r["env"] == env and r["method"] == baseline}
    seeds = sorted(set(mine) & set(base))
    if not seeds or method == baseline:
        return None
    pairs = []
    for s in seeds:
        paths = (Path(mine[s].get("records", "")), Path(base[s].get("records", "")))
        if not all(p.is_file() for p in paths):
            return None
        pairs.append(paths)
    # the tables are rewritten after every finished run; the intervals of unchanged records are reused
    key = (tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for pair in pairs for p in pair), k, n_boot)
    if key not in _GAIN_CACHE:
        recs = [tuple(dict(np.load(p)) for p in pair) for pair in pairs]
        _GAIN_CACHE[key] = {
            name: paired_bootstrap([m for m, _ in recs], [b for _, b in recs], metric, n_boot=n_boot)
            for name, metric in (("mAP50", "mAP"), (f"R@{k}", f"R@{k}"))
        }
    return copy.deepcopy(_GAIN_CACHE[key])


#: gain_intervals' results by (record files with their mtimes and sizes, K, draws).
_GAIN_CACHE: dict = {}


def _fmt_ci(ci: Optional[dict]) -> str:
    if not ci or math.isnan(ci["diff"]):
        return "n/a"
    return f"{ci['diff']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}]"


def _write_outputs(profile, out_dir: Path, runs, envs, methods, seeds, tdoms, missing=None) -> dict:
    """table.md, table.csv, results.json and the charts of ``runs``; ``missing`` (stored-only tables) lists
    the (env, target, method, seed) rows that were asked for but not stored."""
    k = int(getattr(profile, "recall_k", 20))
    real = any(t.startswith("real_") for t in tdoms)
    n_eval = runs[0]["metrics"].get("num_images", profile.eval_images) if runs else profile.eval_images
    split = (
        "the real camera's labelled frames"
        if real
        else f"`{profile.eval_split}` (simulator seed {EVAL_SEEDS[profile.eval_split]} + {SEED_STRIDE} × bench seed; "
        + ("settings may be chosen on it)" if profile.eval_split == "val" else "never used to choose settings)")
    )
    md = [
        f"# Sim2SG benchmark — profile `{profile.name}`, target domain(s) {', '.join(f'`{t}`' for t in tdoms)}",
        "",
        f"Evaluation split: {split}. Seeds: {list(seeds)} (mean ± sample std over the seeds a row has, its "
        "`seeds` column). Budget per method: "
        f"{profile.budget_steps} steps (source pre-training {profile.source_steps} + adaptation "
        f"{profile.adapt.total_steps}; domain randomisation trains {profile.budget_steps} steps from scratch, "
        f"the oracle fine-tunes the source model for {profile.adapt.total_steps}). Every phase steps through the "
        "one optimisation engine (AdamW, warm-up then cosine decay restarted per phase, NaN guard, gradient "
        "clipping): the same total budget for every row, no convergence criterion. "
        f"Images {profile.image_size or f'{profile.image_scale}x env default'}; "
        f"{profile.train_images} labelled training images, "
        f"{profile.target_images} unlabelled target images, {n_eval} labelled target "
        f"evaluation images. AP@0.5 (COCO 101-point), Recall@{k} (SGDet, graph constraint). "
        "Δ vs source only: mean over seeds with a 95 % paired-bootstrap interval (seeds and evaluation images "
        f"re-sampled together, {profile.bootstrap_samples} draws). Wall time = training (incl. shared source "
        "pre-training for adaptation rows) on this machine.",
        "",
    ]
    if real:
        md += [
            f"Real target: labelled source domain `{profile.source_domain}`, randomized domain "
            f"`{profile.randomized_domain}`, rendered through the real camera's calibration. "
            "Ground-truth relationships follow the same rule from the labelled boxes, placed on the ground "
            "through the calibration.",
            "",
            *label_audit_lines(out_dir),
        ]
    csv_buf = io.StringIO()
    writer = csv.writer(csv_buf)
    writer.writerow(["env", "target_domain", "method", "label", "seeds", "metric", "mean", "std"])
    all_rows: list[dict] = []
    for tdom in tdoms:
        truns = [r for r in runs if r.get("target_domain", tdom) == tdom]
        rows = summarise(truns, envs, methods, k)
        for r in rows:
            r["target_domain"] = tdom
        all_rows += rows
        for env in envs:
            er = [r for r in rows if r["env"] == env]
            if not er:
                continue
            for r in er:
                r["gain"] = gain_intervals(truns, env, r["method"], k, profile.bootstrap_samples)
            classes = er[0]["classes"]
            head = [f"AP@0.5 {c}" + (f" ({er[0]['num_gt'][c]} GT)" if real else "") for c in classes]
            md += [
                f"## {env} → `{tdom}`" if len(tdoms) > 1 else f"## {env}",
                "",
                "| Method | " + " | ".join(head) + f" | mAP@0.5 | Recall@{k} | Δ mAP vs source only [95 % CI] "
                f"| Δ Recall@{k} [95 % CI] | seeds | steps | wall (s) |",
                "|---|" + "---|" * (len(classes) + 7),
            ]
            for r in er:
                cells = [_fmt(r[f"AP50/{c}"], r["seeds"]) for c in classes]
                cells += [_fmt(r["mAP50"], r["seeds"]), _fmt(r[f"R@{k}"], r["seeds"])]
                gain = r["gain"] or {}
                cells += [_fmt_ci(gain.get("mAP50")), _fmt_ci(gain.get(f"R@{k}"))]
                cells += [str(r["seeds"]), str(r["steps"] or "")]
                wm, ws = r["wall_s"]
                cells.append(f"{wm:.0f}" + (f" ± {ws:.0f}" if r["seeds"] > 1 else ""))
                md.append(f"| {r['label']} | " + " | ".join(cells) + " |")
                for key in [f"AP50/{c}" for c in classes] + ["mAP50", f"R@{k}", "wall_s"]:
                    writer.writerow([env, tdom, r["method"], r["label"], r["seeds"], key, *r[key]])
                for key, ci in gain.items():
                    writer.writerow(
                        [
                            env,
                            tdom,
                            r["method"],
                            r["label"],
                            r["seeds"],
                            f"gain_{key}_vs_source_only",
                            ci["diff"],
                            "",
                            ci["low"],
                            ci["high"],
                        ]
                    )
            if er[0]["absent"]:
                md += [
                    "",
                    f"Classes with no labels in the evaluation set ({', '.join(er[0]['absent'])}) are left "
                    "out of the table and of the mAP.",
                ]
            md += ["", _gap_summary(er, k), ""]
            if real:
                eruns = [r for r in truns if r["env"] == env]
                md += difficulty_table(eruns, methods, k)
                pairs = [tuple(p.split("-", 1)) for p in profile.matched_pairs]
                md += pair_differences(eruns, pairs, _vocab(env).classes, profile.bootstrap_samples)
                md += pseudo_label_table(eruns, methods)
    md += _gain_overview(all_rows, envs, methods, tdoms)
    if missing:
        md += ["## Rows not stored (not run)", "", *_missing_lines(missing), ""]
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "table.md", "\n".join(md) + "\n")
    atomic_write_text(out_dir / "table.csv", csv_buf.getvalue())
    atomic_write_text(
        out_dir / "results.json",
        json.dumps(
            {
                "profile": config_to_dict(profile),
                "target_domains": list(tdoms),
                "runs": runs,
                "gains_vs_source_only": [
                    {
                        "env": r["env"],
                        "target_domain": r["target_domain"],
                        "method": r["method"],
                        **(r.get("gain") or {}),
                    }
                    for r in all_rows
                    if r.get("gain")
                ],
            },
            indent=1,
            default=_json_default,
        ),
    )
    for tdom in tdoms:
        rows = [r for r in all_rows if r["target_domain"] == tdom]
        if rows:
            _bar_chart(out_dir / ("chart.png" if len(tdoms) == 1 else f"chart_{tdom}.png"), rows, envs, k)
    return {"rows": all_rows, "runs": runs, "table": "\n".join(md)}


def _gain_overview(rows: list[dict], envs, methods, tdoms) -> list[str]:
    """One table of every row's Δ mAP vs source only [95 % CI] across environments and targets (what each
    ingredient earns where), when there is more than one section to read across."""
    cols = [(e, t) for t in tdoms for e in envs if any(r["env"] == e and r["target_domain"] == t for r in rows)]
    by = {(r["env"], r["target_domain"], r["method"]): r for r in rows}
    lines = []
    for m in methods:
        cells = []
        for e, t in cols:
            r = by.get((e, t, m))
            cells.append("" if r is None else f"{_fmt_ci((r.get('gain') or {}).get('mAP50'))} ({r['seeds']})")
        if m != "source_only" and any(cells):
            label = next(r["label"] for (_, _, mm), r in by.items() if mm == m)
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if len(cols) < 2 or not lines:
        return []
    head = " | ".join(f"{e} → `{t}`" for e, t in cols)
    return [
        "## Δ mAP@0.5 vs source only [95 % CI] (seeds), every environment",
        "",
        f"| Method | {head} |",
        "|---|" + "---|" * len(cols),
        *lines,
        "",
    ]


def _missing_lines(missing: list[tuple[str, str, str, int]]) -> list[str]:
    """One line per (env, target, method) with the seeds it lacks."""
    lacking: dict[tuple[str, str, str], list[int]] = {}
    for env, tdom, method, seed in missing:
        lacking.setdefault((env, tdom, method), []).append(seed)
    return [f"- {env} → `{tdom}`, `{method}`: seeds {seeds}" for (env, tdom, method), seeds in lacking.items()]


def _gap_summary(rows: list[dict], k: int) -> str:
    by = {r["method"]: r for r in rows}
    if "source_only" not in by or "sim2sg_full" not in by:
        return ""
    s, f = by["source_only"], by["sim2sg_full"]
    parts = [
        f"Full Sim2SG − source only: mAP {f['mAP50'][0] - s['mAP50'][0]:+.3f}, "
        f"Recall@{k} {f[f'R@{k}'][0] - s[f'R@{k}'][0]:+.3f}."
    ]
    if "sim2sg_dr" in by:
        d = by["sim2sg_dr"]
        parts.append(
            f"DR + Sim2SG − source only: mAP {d['mAP50'][0] - s['mAP50'][0]:+.3f}, "
            f"Recall@{k} {d[f'R@{k}'][0] - s[f'R@{k}'][0]:+.3f}."
        )
    if "oracle" in by:
        gap = by["oracle"]["mAP50"][0] - s["mAP50"][0]
        if gap > 0:
            parts.append(
                f"Closes {100 * (f['mAP50'][0] - s['mAP50'][0]) / gap:.0f}% of the source-only → oracle mAP gap."
            )
    ladder = [m for m in ("sim2sg_label", "sim2sg_label_pred", "sim2sg_full") if m in by]
    if len(ladder) > 1:
        steps = [
            f"{by[a]['label'].split(': ')[-1]} → {by[b]['label'].split(': ')[-1]}: mAP "
            f"{by[b]['mAP50'][0] - by[a]['mAP50'][0]:+.3f}, "
            f"Recall@{k} {by[b][f'R@{k}'][0] - by[a][f'R@{k}'][0]:+.3f}"
            for a, b in zip(ladder, ladder[1:])
        ]
        parts.append("Ablation steps: " + "; ".join(steps) + ".")
    return " ".join(parts)


def _bar_chart(path: Path, rows, envs, k: int) -> None:
    import matplotlib  # deferred: plotting only for the chart (and the Agg backend must be chosen first)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: after matplotlib.use("Agg")

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
