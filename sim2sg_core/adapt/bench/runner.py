"""Running the benchmark: per (environment, seed) the shared pre-trainings, every method, its evaluation and
its stored run record (reused when the benchmark is re-run, so an interrupted run resumes)."""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing as mp
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from sim2sg_core.adapt.baselines import configure, get_method
from sim2sg_core.adapt.bench.label_audit import audit_real_labels
from sim2sg_core.adapt.bench.real_report import adaptation_rounds
from sim2sg_core.adapt.bench.report import json_default, write_outputs
from sim2sg_core.adapt.bench.splits import RealData, domain_name, real_setup, split_seeds
from sim2sg_core.adapt.config import BenchProfile
from sim2sg_core.adapt.sim2sg import run_adaptation
from sim2sg_core.adapt.supervised import train_supervised
from sim2sg_core.adapt.targets import SimTargetSource
from sim2sg_core.eval.evaluate import evaluate
from sim2sg_core.model.checkpoint import load_checkpoint
from sim2sg_core.model.predictor import Predictor
from sim2sg_core.sim.dataset import render_split
from sim2sg_core.utils.io import atomic_save, atomic_write_bytes, atomic_write_text

log = logging.getLogger(__name__)


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
        if reevaluate:  # one (environment, seed)'s evaluation data serves all its rows
            setups: dict = {}
            for i, r in enumerate(runs):
                key = (r["env"], r["seed"])
                if key not in setups:
                    env, seed = key
                    setups[key] = _EnvSeedRun(profile, out_dir, env, seed, profile.image_size_for(env), progress, real)
                runs[i] = setups[key].reevaluate(r)
        return write_outputs(profile, out_dir, _ordered(runs, envs, seeds), envs, methods, seeds, tdoms, missing)
    if jobs <= 1 or len(pairs) <= 1:
        for env, seed in pairs:
            runs += _run_env_seed(
                profile, out_dir, env, seed, methods, tdoms, profile.image_size_for(env), progress, real
            )
            write_outputs(profile, out_dir, runs, envs, methods, seeds, tdoms)  # partial tables as we go
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
                write_outputs(profile, out_dir, _ordered(runs, envs, seeds), envs, methods, seeds, tdoms)
    return write_outputs(profile, out_dir, _ordered(runs, envs, seeds), envs, methods, seeds, tdoms)


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


def _worker_init(level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s [%(process)d] %(message)s")


def _ordered(runs: list[dict], envs, seeds) -> list[dict]:
    """Runs in (env, seed) order whatever order the worker processes finished in (targets keep theirs)."""
    return sorted(runs, key=lambda r: (list(envs).index(r["env"]), list(seeds).index(r["seed"])))


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
            atomic_write_text(res_file, json.dumps(rec, indent=1, default=json_default))
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
            self.camera, self.real_target, self.real_eval = real_setup(profile, env, real, size)

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
        domain = domain_name(self.profile, symbolic)
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

    def measure(self, ckpt: Path, tdom: str, name: str) -> tuple[dict, Path]:
        """Evaluate ``ckpt`` on ``tdom``'s labelled evaluation data; its per-image records (the bootstrap's
        ingredients) are stored beside the row. Returns (metrics, records file)."""
        metrics = evaluate_checkpoint(ckpt, self.dataset(tdom, "eval"), self.progress, keep_records=True)
        records = metrics.pop("records")
        records_file = _row_dir(self.out_dir, self.env, tdom, self.seed) / f"{name}.records.npz"
        atomic_save(records_file, lambda tmp: _save_npz(tmp, records))
        return metrics, records_file

    def reevaluate(self, rec: dict) -> dict:
        """A stored row measured again from its kept checkpoint (training fields kept), stored in place."""
        tdom, name, ckpt = rec["target_domain"], rec["method"], Path(rec["checkpoint"])
        log.info("re-evaluating %s/%s seed %d: %s (%s)", self.env, tdom, self.seed, name, ckpt)
        metrics, records_file = self.measure(ckpt, tdom, name)
        out = {**rec, "metrics": metrics, "records": str(records_file)}
        adaptation = (load_checkpoint(ckpt).get("extra") or {}).get("adaptation")
        if adaptation:
            out.update(adaptation_rounds=adaptation_rounds(adaptation.get("history") or []))
            out.update(target_frames=int(adaptation.get("target_images") or 0))
        row_file = _row_file(self.out_dir, self.env, tdom, self.seed, name)
        atomic_write_text(row_file, json.dumps(out, indent=1, default=json_default))
        return out

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
        domain = tdom if method.train_domain == "target" else domain_name(profile, method.train_domain)

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
                src_ckpt, pretrain_s = self.supervised_checkpoint(init.name, domain_name(profile, init.train_domain))
                budget += profile.adapt.total_steps
            else:
                src_ckpt, pretrain_s = self.pretrained_checkpoint(method.pretrain_domain)
            cfg = configure(profile.adapt, method)
            cfg.env, cfg.seed, cfg.progress_bar = env, seed, progress
            cfg.source_domain = domain_name(profile, method.pretrain_domain)
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
        metrics, records_file = self.measure(ckpt, tdom, name)
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
