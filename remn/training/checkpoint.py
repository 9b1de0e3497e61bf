"""The training checkpoint ``checkpoints/latest.pt``: what it holds, how it is read, random states.

It is a dict (:func:`training_checkpoint` writes it, :func:`load_training_checkpoint` reads it):

``format``       ``CHECKPOINT_FORMAT``;
``config``       the run's resolved configuration (YAML text);
``stages``       ``train.stages``; ``stage_index``, ``stage``: the stage it was taken in;
``iteration``    optimiser steps done in that stage; ``global_step`` the same counted over all stages;
``completed``    the stage had finished (the run continues with the next one);
``world_size``   processes of the run;
``model``        the network's state_dict;
``optimizer``, ``scheduler``, ``scaler``  their states (None once the stage completed);
``data``         the :class:`~remn.training.batches.DataPosition` (epoch, batches taken from it, max
                 skip, total epochs; None once completed);
``rng``          every process's random states (:func:`capture_rng_state`: torch, CUDA, NumPy, Python).

Everything is a tensor or a plain Python value, so it is read with ``torch.load(weights_only=True)``.
With it a resumed run takes exactly the batches and random numbers the uninterrupted one would have
(bit for bit with ``train.num_workers=0`` and ``train.deterministic=true``; with loader workers the
order is still exact but the augmentations of the interrupted epoch may differ).
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..config import REMNConfig, config_to_yaml
from ..model.checkpoint import CheckpointError
from .batches import DataPosition
from .optim import load_scheduler_state, scheduler_state

__all__ = [
    "CHECKPOINT_FORMAT",
    "training_checkpoint",
    "load_training_checkpoint",
    "restore_network",
    "restore_stage",
    "capture_rng_state",
    "restore_rng_state",
]


CHECKPOINT_FORMAT = "remn-training-checkpoint-v1"
"""Value of the ``format`` entry of ``latest.pt``."""


def _first_line(error: BaseException, limit: int = 200) -> str:
    """A library's (often multi-line) message as one short line."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def training_checkpoint(
    *,
    cfg: REMNConfig,
    stage_index: int,
    iteration: int,
    global_step: int,
    completed: bool,
    world_size: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    position: DataPosition,
    rng: list[object],
) -> dict[str, Any]:
    """The checkpoint dict (see the module docstring); ``rng``: every process's random states."""
    return {
        "format": CHECKPOINT_FORMAT,
        "config": config_to_yaml(cfg),
        "stages": list(cfg.train.stages),
        "stage_index": stage_index,
        "stage": cfg.train.stages[stage_index],
        "iteration": iteration,
        "global_step": global_step,
        "completed": completed,
        "world_size": world_size,
        "model": model.state_dict(),
        "optimizer": None if completed else optimizer.state_dict(),
        "scheduler": None if completed else scheduler_state(scheduler),
        "scaler": None if completed else scaler.state_dict(),
        "data": None if completed else asdict(position),
        "rng": rng,
    }


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read ``latest.pt`` safely (``weights_only=True``).

    Raises:
        CheckpointError: missing, truncated or corrupt file, or not a training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"no training checkpoint to resume from: {path} does not exist; give the --config and "
            "--run-name of the run to continue, or start a new run without --resume"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, pickled code, ...
        raise CheckpointError(
            f"cannot read training checkpoint {path} ({path.stat().st_size} bytes); it is "
            f"truncated or corrupt: {type(exc).__name__}: {_first_line(exc)}; restore it from a "
            "copy, or start a new --run-name with --load-weights from one of the run's .pth "
            "files"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a REMN training checkpoint (expected format {CHECKPOINT_FORMAT!r}); "
            "network weights go to --load-weights instead"
        )
    return state


def restore_network(model: nn.Module, state: Mapping[str, Any], path: Path, run_config: Path) -> None:
    """Load a checkpoint's network weights (strictly: the run's own network).

    Raises:
        CheckpointError: they do not fit (another configuration than the run's, ``run_config``).
    """
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} does not fit this network: {_first_line(exc, 400)}; resume with the run's own "
            f"configuration ({run_config})"
        ) from exc


def restore_stage(
    state: Mapping[str, Any],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    path: Path | str = "latest.pt",
) -> DataPosition:
    """Put a checkpoint taken inside a stage back into that stage's optimiser, schedule and scaler;
    returns where the stage was in its data.

    Raises:
        CheckpointError: the optimiser's parameter groups differ from the checkpoint's (the stage's
            ``lr_multipliers`` or ``freeze_encoders`` changed since).
    """
    try:
        optimizer.load_state_dict(state["optimizer"])
    except ValueError as exc:
        where = f"train.{state['stage']}"
        raise CheckpointError(
            f"{path}: its optimiser state does not fit this launch's parameter groups "
            f"({_first_line(exc)}); resume with the run's own {where}.lr_multipliers and "
            f"{where}.freeze_encoders"
        ) from exc
    load_scheduler_state(scheduler, state["scheduler"])
    if state["scaler"]:
        scaler.load_state_dict(state["scaler"])
    return DataPosition(**state["data"])


def capture_rng_state(device: torch.device = torch.device("cpu")) -> dict[str, Any]:
    """This process's random states as tensors and plain values (CUDA: ``device``'s only)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state(device)] if device.type == "cuda" else [],
        "numpy": {
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss_next},
    }


def restore_rng_state(state: Mapping[str, Any], device: torch.device = torch.device("cpu")) -> None:
    """Undo :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"][0], device)
    np_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["gauss"],
        )
    )
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
