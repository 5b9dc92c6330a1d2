"""Data-parallel runs started by ``torchrun``: process group set-up and the few collectives we need.

``torchrun --nproc_per_node=N -m sim2sg_core train|adapt ...`` starts N processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in their environment. :func:`init_from_env`
joins them into one process group (``gloo`` on CPU, ``nccl`` on CUDA, one GPU per local rank); a
plain ``python -m sim2sg_core ...`` gets a one-process context and never touches torch.distributed.

The helpers below are no-ops without an initialised group, so model code may call them always:
:func:`mean_over_ranks` is how the losses normalise by the *global* batch's object count (as
detectron2/FCOS do), which makes N processes with batch B/N step exactly like one with batch B.
"""

from __future__ import annotations

import gc

import os
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Union

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from sim2sg_core.utils.device import resolve_device

#: Environment variables torchrun sets for every worker.
TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class DistributedSetupError(RuntimeError):
    """A torchrun environment that cannot be joined, with the reason."""


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in a data-parallel run (rank 0 of 1 when not launched by torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: True when torchrun started this process (even with one process): the data is then sharded by
    #: a DistributedSampler and gradients go through DistributedDataParallel.
    launched: bool = False

    @property
    def is_main(self) -> bool:
        """The one process that writes files and prints results."""
        return self.rank == 0

    def shard(self, items: list) -> list:
        """This rank's share of ``items`` (every ``world_size``-th from ``rank``); disjoint across ranks."""
        return list(items[self.rank :: self.world_size])

    def per_rank(self, batch: int, what: str = "batch size") -> int:
        """This rank's part of a global ``batch``; ValueError if it does not split evenly."""
        if batch % self.world_size:
            raise ValueError(
                f"{what} {batch} does not split over {self.world_size} processes; use a multiple of --nproc_per_node"
            )
        return batch // self.world_size


def launched_by_torchrun() -> bool:
    return all(v in os.environ for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def init_from_env(device: str = "auto", timeout_s: float = 600.0) -> tuple[DistContext, torch.device]:
    """Join torchrun's process group if this process was launched by it; returns (context, device).

    ``device``: ``auto`` = CUDA (GPU ``LOCAL_RANK``) when available, else CPU; ``cpu`` forces gloo.
    """
    if not launched_by_torchrun():
        return DistContext(), resolve_device(device)
    try:
        rank, world, local = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    except ValueError:
        raise DistributedSetupError("RANK / WORLD_SIZE / LOCAL_RANK must be integers (start with torchrun)") from None
    base = resolve_device(device)
    if base.type == "cuda":
        if local >= torch.cuda.device_count():
            raise DistributedSetupError(
                f"local rank {local} has no GPU ({torch.cuda.device_count()} visible); "
                "use --nproc_per_node <= the GPU count or --device cpu"
            )
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
        backend = "nccl"
    else:
        dev, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return DistContext(rank=rank, world_size=world, local_rank=local, launched=True), dev


def data_parallel(
    module: torch.nn.Module,
    device: torch.device,
    *,
    find_unused_parameters: bool,
    gradient_as_bucket_view: bool = False,
) -> DistributedDataParallel:
    """``module`` in DistributedDataParallel on this process's device (the one wrapping train and adapt use)."""
    # depthwise conv grads come out with strides equivalent to the bucket's (a size-1 axis differs):
    # torch warns once per process about a copy that costs nothing here
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return DistributedDataParallel(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters,
        gradient_as_bucket_view=gradient_as_bucket_view,
    )


def shutdown() -> None:
    """Leave the process group. Unreachable objects are collected first: a trainer's or adapter's
    DistributedDataParallel sits in a reference cycle (it wraps a loss module bound to its owner), and one
    that outlived the group to interpreter exit could abort the process there (gloo teardown)."""
    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def mean_over_ranks(value: Union[torch.Tensor, float], like: torch.Tensor) -> torch.Tensor:
    """The mean of ``value`` (a count, no gradient) over all ranks, on ``like``'s device; ``value`` itself
    without a group. Every rank must call it the same number of times."""
    t = torch.as_tensor(value, dtype=torch.float32, device=like.device).detach().clone()
    if _active():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t = t / dist.get_world_size()
    return t


def from_main(value: float) -> float:
    """Rank 0's ``value`` on every rank (e.g. its clock, so time budgets and schedules agree)."""
    if not _active():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.broadcast(t, src=0)
    return float(t.item())


def all_gather_objects(obj: Any) -> list:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` without a group."""
    if not _active():
        return [obj]
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if _active():
        dist.barrier()


__all__ = [
    "DistContext",
    "DistributedSetupError",
    "TORCHRUN_VARIABLES",
    "all_gather_objects",
    "from_main",
    "barrier",
    "data_parallel",
    "init_from_env",
    "launched_by_torchrun",
    "mean_over_ranks",
    "shutdown",
]
