"""torchrun data-parallel training: 2 gloo processes step exactly like 1 process with their joint batch,
only rank 0 writes files, and a job that loses a rank resumes on every rank from rank 0's checkpoint."""

from __future__ import annotations

import pytest

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import yaml

from sim2sg_core.train.checkpoint import load_checkpoint


def _config(tmp_path: Path, **train) -> Path:
    """A tiny model; no random augmentation, and BatchNorm on running statistics (CPU has no SyncBatchNorm),
    so 1 process with batch 4 and 2 processes with batch 2 each compute the same gradients."""
    cfg = {
        "model": {
            "encoder": "small",
            "encoder_channels": [8, 16, 16, 24, 24],
            "feature_channels": 16,
            "head_channels": 16,
            "input_width": 160,
            "input_height": 64,
            "relation_hidden": 32,
        },
        "train": {
            "steps": 6,
            "batch_size": 4,
            "lr": 0.003,
            "warmup_steps": 1,
            "hflip": False,
            "relation_jitter": 0.0,
            "num_workers": 0,
            "checkpoint_every": 2,
            "batchnorm": "frozen",
            "amp": False,
            **train,
        },
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _torchrun(support, nproc: int, config: Path, out: Path) -> list:
    """The training command; a lost rank ends the job (no in-job restarts): re-running it resumes."""
    return [
        support.TORCHRUN,
        "--standalone",
        f"--nproc_per_node={nproc}",
        "--max-restarts=0",
        "-m",
        "sim2sg_core",
        "train",
        "--config",
        str(config),
        "--out",
        str(out),
        "--train-images",
        "32",
        "--eval-images",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
    ]


@pytest.mark.slow
def test_two_gloo_processes_step_like_one_process_with_the_joint_batch(tmp_path, torchrun_support):
    config, env = _config(tmp_path), torchrun_support.write_logging_env(tmp_path)
    for n in (1, 2):
        run = subprocess.run(
            _torchrun(torchrun_support, n, config, tmp_path / f"p{n}"),
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    one = load_checkpoint(tmp_path / "p1" / "model.pt")
    two = load_checkpoint(tmp_path / "p2" / "model.pt")
    assert one["step"] == two["step"] == 6
    moved = max(
        (one["state_dict"][k] - two["state_dict"][k]).abs().max().item()
        for k in one["state_dict"]
        if one["state_dict"][k].is_floating_point()
    )
    assert moved <= 1e-5, f"2-process weights differ from the 1-process run by {moved}"
    # only rank 0 wrote anything, and it wrote the periodic and final checkpoints
    writes = [(rank, dst) for rank, dst in torchrun_support.writes(tmp_path) if Path(dst).parent.name in ("p1", "p2")]
    assert writes and {rank for rank, _ in writes} == {"0"}, writes
    p2 = [Path(dst).name for _, dst in writes if Path(dst).parent == tmp_path / "p2"]
    assert p2.count("last.pt") == 4 and p2.count("model.pt") == 1, p2  # steps 2, 4, 6 + the end


def _worker_with_rank(root_pid: int, rank: int):
    """The pid of torchrun's worker process whose RANK is ``rank`` (None until it exists)."""
    todo, seen = [root_pid], set()
    while todo:
        pid = todo.pop()
        seen.add(pid)
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if pid != root_pid and f"RANK={rank}".encode() in env and b"LOCAL_RANK=" + str(rank).encode() in env:
            return pid
        todo += [int(k) for k in kids if int(k) not in seen]
    return None


@pytest.mark.slow
def test_a_job_that_loses_a_rank_resumes_on_every_rank(tmp_path, torchrun_support):
    """Kill rank 1 mid-run: torchrun stops the job with an error; the same command again continues on both
    ranks from rank 0's last.pt to the planned step count."""
    config, env = _config(tmp_path, steps=150, checkpoint_every=5), torchrun_support.write_logging_env(tmp_path)
    out = tmp_path / "run"
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(
        _torchrun(torchrun_support, 2, config, out),
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not (out / "last.pt").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert (out / "last.pt").exists(), (tmp_path / "first.log").read_text()[-3000:]
        victim = _worker_with_rank(proc.pid, 1)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        rc = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
    assert rc != 0
    killed_at = load_checkpoint(out / "last.pt")["step"]
    assert 0 < killed_at < 150
    again = subprocess.run(
        _torchrun(torchrun_support, 2, config, out), env=env, cwd=tmp_path, capture_output=True, text=True, timeout=400
    )
    text = again.stdout + again.stderr
    assert again.returncode == 0, text[-4000:]
    resumed = dict(re.findall(r"\[rank (\d)\] resuming from .* at step (\d+)", text))
    assert resumed == {"0": str(killed_at), "1": str(killed_at)}, text[-3000:]
    assert load_checkpoint(out / "model.pt")["step"] == 150
    assert {rank for rank, dst in torchrun_support.writes(tmp_path) if Path(dst).parent == out} == {"0"}
