"""Reading and writing network weights.

* :func:`load_stcn_checkpoint` loads a released STCN state_dict (``stcn.pth`` and the
  stage checkpoints) into the STCN part of a :class:`~remn.model.network.REMN`; FRM
  and RRM keep their identity initialisation and are reported as new.
* :func:`save_weights` / :func:`load_weights` handle REMN's own weight files; saving
  writes a temporary file and renames it, so a killed process never leaves a
  half-written file under the final name.

Everything is read with ``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor, nn

from ..errors import REMNError
from .network import REMN, REMN_OWN_PREFIXES

__all__ = ["CheckpointError", "LoadReport", "read_state_dict", "load_stcn_checkpoint", "save_weights",
           "load_weights", "atomic_save", "load_for_inference"]


class CheckpointError(REMNError, RuntimeError):
    """A weight file that cannot be read or does not fit the network."""


@dataclass
class LoadReport:
    """What :func:`load_stcn_checkpoint` did."""

    loaded: list[str] = field(default_factory=list)
    """Entries taken from the file."""
    new: list[str] = field(default_factory=list)
    """REMN's own entries the file did not have (kept at their initialisation)."""
    widened_value_conv: bool = False
    """The file was a single-object (stage 0) model: conv1 widened from 4 to 5 channels."""


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state_dict from ``path`` safely.

    Accepts a bare state_dict, a training checkpoint holding it under ``network``,
    ``model`` or ``state_dict``, and keys saved from a DataParallel/DDP wrapper
    (``module.`` prefix, which is removed).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}; check the path given to --checkpoint or "
                              "--load-weights (REMN or STCN weights, a .pth file)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with code, not a torch file, ...
        raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {_first_line(exc)}; it is "
                              "truncated, damaged, holds code rather than weights, or is not a PyTorch file: "
                              "download or copy the weights again") from exc
    if isinstance(obj, Mapping):
        for wrapper in ("network", "model", "state_dict"):
            if wrapper in obj and isinstance(obj[wrapper], Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(f"{path} does not hold a state_dict of tensors; give REMN weights (a .pth written by "
                              "train.py) or STCN's released weights")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _first_line(error: BaseException, limit: int = 200) -> str:
    """A library's (often multi-line) message as one short line."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _widen_value_conv(state: dict[str, Tensor], model: nn.Module) -> bool:
    """Stage-0 STCN has a 4-channel value conv1; append a zero 'other objects' channel."""
    name = "value_encoder.conv1.weight"
    target = model.state_dict()[name].shape
    have = state.get(name)
    if have is None or have.shape == target:
        return False
    if have.dim() == 4 and have.shape[1] == target[1] - 1 and have.shape[0] == target[0]:
        zeros = torch.zeros(have.shape[0], 1, *have.shape[2:], dtype=have.dtype)
        state[name] = torch.cat([have, zeros], dim=1)
        return True
    return False


def load_stcn_checkpoint(model: REMN, source: str | Path | Mapping[str, Tensor], name: str | Path | None = None
                         ) -> LoadReport:
    """Load STCN weights into ``model``; every STCN entry must be present and fit.

    Args:
        model: a :class:`REMN` in any mode.
        source: a file path, or a state_dict already in memory.
        name: the file a state_dict in memory was read from, for messages.

    Returns:
        a :class:`LoadReport`; ``report.new`` lists REMN's own entries (``frm.*``,
        ``rrm.*``) left at their initialisation, and is empty in STCN mode.

    Raises:
        CheckpointError: unreadable file, entries the network does not have, STCN
            entries missing from the file, or shapes that do not fit.
    """
    origin = str(source) if isinstance(source, (str, Path)) else str(name or "state_dict")
    state = read_state_dict(source) if isinstance(source, (str, Path)) else dict(source)
    widened = _widen_value_conv(state, model)
    own = model.state_dict()
    unexpected = sorted(set(state) - set(own))
    missing = sorted(set(own) - set(state))
    missing_stcn = [k for k in missing if not k.startswith(REMN_OWN_PREFIXES)]
    mismatched = [f"{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
                  for k in state if k in own and state[k].shape != own[k].shape]
    problems = []
    if unexpected:
        problems.append(f"{len(unexpected)} entries the network does not have (first: {unexpected[:5]})")
    if missing_stcn:
        problems.append(f"{len(missing_stcn)} STCN entries missing from the file (first: {missing_stcn[:5]})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches (first: {mismatched[:3]})")
    if problems:
        raise CheckpointError(f"{origin} is not an STCN checkpoint for this network: " + "; ".join(problems)
                              + "; use weights trained for this configuration, or the --config they were trained "
                              "with (model.key_dim and model.value_dim must match)")
    model.load_state_dict(state, strict=False)
    return LoadReport(loaded=sorted(state), new=missing, widened_value_conv=widened)


def atomic_save(obj: object, path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path`` (flushed to disk), then rename it over
    ``path``; the file gets the user's umask (:func:`remn.outputs.atomic_write`)."""
    from ..outputs import atomic_write

    def write(temporary) -> None:
        with open(temporary, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())

    atomic_write(path, write, suffix=".tmp")


def save_weights(model: nn.Module, path: str | Path) -> None:
    """Save ``model.state_dict()`` atomically."""
    atomic_save(model.state_dict(), path)


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> None:
    """Load a REMN weight file (strict by default), with a clear error if it does not fit."""
    state = read_state_dict(path)
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit this network: {_first_line(exc, 400)}; use the --config "
                              "these weights were trained with") from exc


def load_for_inference(model: REMN, path: str | Path) -> str:
    """Load REMN or STCN weights for inference and say what happened.

    A REMN file evaluated with a module switched off (an ablation such as ``memory.rrm=false``)
    carries entries for that module; they are set aside. Modules the file lacks (STCN weights
    in a REMN network) keep their initialisation, which for FRM is the identity and for RRM a
    temporal average.
    """
    state = read_state_dict(path)
    own = model.state_dict()
    unused = sorted(k for k in state if k not in own and k.startswith(REMN_OWN_PREFIXES))
    for key in unused:
        del state[key]
    report = load_stcn_checkpoint(model, state, name=path)
    parts = [f"loaded {len(report.loaded)} entries from {path}"]
    if report.new:
        modules = sorted({k.split(".")[0] for k in report.new})
        parts.append(f"{', '.join(modules)} not in the file: kept at initialisation ({len(report.new)} entries)")
    if unused:
        modules = sorted({k.split(".")[0] for k in unused})
        parts.append(f"{', '.join(modules)} switched off here: {len(unused)} entries of the file unused")
    if report.widened_value_conv:
        parts.append("single-object value encoder widened to 5 input channels")
    return "; ".join(parts)
