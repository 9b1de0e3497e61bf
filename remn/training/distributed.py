"""One process or many: process groups, the batch split, a resumable distributed sampler.

``python train.py`` is one process on the CPU or one GPU. ``torchrun`` starts one
process per GPU and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; each process then
uses GPU ``LOCAL_RANK`` and NCCL (gloo when the processes run on CPUs).

The global batch of a stage is what one optimiser step sees; it is split as
``processes x per-process batch x gradient-accumulation steps``.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Iterator, Sized

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from ..errors import EXIT_USAGE, REMNError
from ..runtime import resolve_device

__all__ = [
    "DistributedContext",
    "init_distributed",
    "shutdown_distributed",
    "BatchSplitError",
    "LaunchError",
    "split_batch",
    "ResumableSampler",
    "all_reduce_mean",
    "any_process",
    "max_over_processes",
    "gather_objects",
]


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None
    """``nccl`` or ``gloo`` when several processes run, else None."""

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs, checkpoints and the run folder."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise LaunchError(
            f"environment variable {name}={value!r} is not an integer; launch with torchrun, which "
            "sets it, or unset it for one process"
        ) from exc


def init_distributed(
    device: str = "auto",
    *,
    init_method: str | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    local_rank: int | None = None,
) -> DistributedContext:
    """Join the process group (when there is more than one process) and pick this process's device.

    Args:
        device: ``runtime.device``; ``auto`` means CUDA when available.
        init_method: rendezvous URL; default ``env://`` (what torchrun provides). Tests
            use ``file://``.
        rank, world_size, local_rank: default to ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``
            from the environment (0, 1, 0 when unset).
    """
    world_size = _env_int("WORLD_SIZE", 1) if world_size is None else world_size
    rank = _env_int("RANK", 0) if rank is None else rank
    local_rank = _env_int("LOCAL_RANK", rank) if local_rank is None else local_rank
    chosen = resolve_device(device)
    if world_size <= 1:
        return DistributedContext(device=chosen)
    if chosen.type == "cuda":
        if device not in ("auto", "cuda"):
            raise LaunchError(
                f"runtime.device={device!r} names one GPU, but {world_size} processes run; "
                "use runtime.device=cuda (each process takes GPU LOCAL_RANK)"
            )
        if local_rank >= torch.cuda.device_count():
            raise LaunchError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPU(s) are visible; "
                "start at most as many processes per node as GPUs (torchrun --nproc_per_node)"
            )
        chosen = torch.device("cuda", local_rank)
        torch.cuda.set_device(chosen)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method=init_method or "env://", rank=rank, world_size=world_size)
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=chosen, backend=backend)


def shutdown_distributed(ctx: DistributedContext) -> None:
    """Leave the process group (a no-op for one process)."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


class LaunchError(REMNError, RuntimeError):
    """A process group that cannot start as launched (environment variables, GPUs per process):
    exit status 2."""

    exit_status = EXIT_USAGE


class BatchSplitError(REMNError, ValueError):
    """A global batch that does not split evenly over processes and accumulation steps (a
    configuration problem: exit status 2)."""

    exit_status = EXIT_USAGE


def split_batch(global_batch: int, world_size: int, accumulation: int, where: str = "batch_size") -> int:
    """Per-process batch of one micro-step: ``global / (world_size * accumulation)``.

    Raises:
        BatchSplitError: when it does not divide (naming ``where``, the config field).
    """
    parts = world_size * accumulation
    if global_batch < 1 or world_size < 1 or accumulation < 1:
        raise BatchSplitError(
            f"{where}={global_batch}, {world_size} process(es) and {accumulation} "
            "accumulation step(s) must all be at least 1"
        )
    if global_batch % parts:
        nearest = [n for n in (global_batch // parts * parts, (global_batch // parts + 1) * parts) if n > 0]
        raise BatchSplitError(
            f"{where}={global_batch} cannot be split over {world_size} process(es) x {accumulation} "
            f"accumulation step(s): the global batch must be a multiple of {parts} "
            f"(nearest: {' or '.join(map(str, nearest))}); set {where} to one of those, or change the number of "
            "processes or train.grad_accumulation"
        )
    return global_batch // parts


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` whose order is a function of (seed, epoch) only, and which can
    start an epoch part-way through (to resume exactly where a checkpoint was taken).

    Args:
        dataset: anything with a length (at least 1).
        num_replicas, rank: the process group (1 and 0 for one process).
        seed: shuffling seed, identical on every process.
        min_samples: samples per process and epoch at least (e.g. one batch); a smaller
            dataset is repeated to reach it, as ``DistributedSampler`` pads to fill processes.
    """

    def __init__(
        self, dataset: Sized, num_replicas: int = 1, rank: int = 0, seed: int = 0, min_samples: int = 1
    ) -> None:
        if len(dataset) == 0:
            raise ValueError("cannot sample from an empty dataset")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=False)
        if self.num_samples < min_samples:
            self.num_samples = min_samples
            self.total_size = min_samples * num_replicas
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch's order and how many of this process's samples to leave out at its start."""
        super().set_epoch(epoch)
        self.skip = max(0, skip)

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return max(0, self.num_samples - self.skip)


def all_reduce_mean(values: dict[str, float], ctx: DistributedContext) -> dict[str, float]:
    """Average scalars over processes (identity for one process)."""
    if not ctx.distributed or not values:
        return dict(values)
    names = sorted(values)
    packed = torch.tensor([float(values[n]) for n in names], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(packed)
    packed /= ctx.world_size
    return dict(zip(names, packed.tolist()))


def any_process(flag: bool, ctx: DistributedContext) -> bool:
    """True on every process when ``flag`` is true on any of them."""
    if not ctx.distributed:
        return flag
    packed = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(packed, op=dist.ReduceOp.MAX)
    return bool(packed.item() > 0)


def max_over_processes(value: int, ctx: DistributedContext) -> int:
    """The largest of every process's ``value`` (``value`` itself for one process).

    One all-reduce of a single integer when distributed: the training loop calls it every
    iteration to agree on a stop signal (0: none), so every process stops at the same step.
    """
    if not ctx.distributed:
        return int(value)
    packed = torch.tensor([int(value)], dtype=torch.int64, device=ctx.device)
    dist.all_reduce(packed, op=dist.ReduceOp.MAX)
    return int(packed.item())


def gather_objects(obj: object, ctx: DistributedContext) -> list[object]:
    """Every process's ``obj``, indexed by rank (a one-item list for one process)."""
    if not ctx.distributed:
        return [obj]
    gathered: list[object] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj)
    return gathered
