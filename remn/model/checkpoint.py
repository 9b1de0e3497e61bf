"""Reading and writing network weights.

* :func:`load_network_weights` is the one loader of REMN or STCN weights, for inference
  (``Predictor``, ``remn eval``, ``remn segment``, the scripts) and for training
  (``--load-weights``); its rules are below and it returns a :class:`LoadReport`.
* :func:`save_weights` / :func:`load_weights` handle REMN's own weight files (``load_weights``
  strictly: the file of exactly this network); saving writes a temporary file and renames it, so a
  killed process never leaves a half-written file under the final name.

Rules of :func:`load_network_weights` (docs/design.md, CKPT-3 and CKPT-4):

1. the file is read with ``torch.load(weights_only=True)`` (a checkpoint cannot run code); a
   state_dict under ``network``, ``model`` or ``state_dict`` and a ``module.`` prefix are accepted;
2. a single-object STCN file (stage 0: ``value_encoder.conv1`` with 4 input channels) is widened
   with a zero channel for the other objects, which leaves its outputs unchanged;
3. entries of REMN's own modules (``frm.*``, ``rrm.*``) that this network does not build (an
   ablation such as ``memory.rrm=false``) are set aside and reported as unexpected;
4. every other entry of the file must be an entry of the network with the same shape, and every
   STCN entry of the network must be in the file; otherwise nothing is loaded and
   :class:`CheckpointError` names the file and the entries;
5. entries of REMN's own modules that the file lacks (STCN weights in a REMN network) keep their
   initialisation, FRM's identity and RRM's temporal average, and are reported as missing.

A file with FRM or RRM entries is REMN weights (``kind`` ``"remn"``); one with STCN's entries only
is ``"stcn"`` (STCN's released weights, or REMN trained in STCN mode: the same layout).
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

__all__ = [
    "CheckpointError",
    "LoadReport",
    "read_state_dict",
    "load_network_weights",
    "load_stcn_checkpoint",
    "save_weights",
    "load_weights",
    "atomic_save",
]


class CheckpointError(REMNError, RuntimeError):
    """A weight file that cannot be read or does not fit the network."""


@dataclass
class LoadReport:
    """What :func:`load_network_weights` did."""

    source: str
    """The file (or the name given for a state_dict in memory)."""
    kind: str
    """``remn`` (the file has FRM or RRM entries) or ``stcn`` (STCN's entries only)."""
    loaded: list[str] = field(default_factory=list)
    """Entries taken from the file."""
    missing: list[str] = field(default_factory=list)
    """REMN's own entries of the network that the file lacks (kept at their initialisation)."""
    unexpected: list[str] = field(default_factory=list)
    """Entries of the file for modules this network does not build (set aside)."""
    widened: list[str] = field(default_factory=list)
    """Entries widened to fit (``value_encoder.conv1.weight`` of a single-object STCN file)."""

    @property
    def new(self) -> list[str]:
        """:attr:`missing` by its former name."""
        return self.missing

    @property
    def widened_value_conv(self) -> bool:
        """The file was a single-object (stage 0) model: conv1 widened from 4 to 5 channels."""
        return "value_encoder.conv1.weight" in self.widened

    @property
    def description(self) -> str:
        """What happened, in one line (printed by the commands, logged by training)."""
        what = "STCN entries" if self.kind == "stcn" else "entries"
        parts = [f"loaded {len(self.loaded)} {what} from {self.source}"]
        if self.missing:
            parts.append(
                f"{len(self.missing)} REMN entries are new, kept at their initialisation "
                f"({', '.join(_modules(self.missing))})"
            )
        if self.unexpected:
            parts.append(
                f"{', '.join(_modules(self.unexpected))} switched off here: {len(self.unexpected)} entries "
                "of the file set aside"
            )
        if self.widened_value_conv:
            parts.append("value_encoder.conv1 widened from 4 to 5 channels (single-object STCN weights)")
        return "; ".join(parts)

    def __str__(self) -> str:
        return self.description


def _modules(keys: list[str]) -> list[str]:
    """The top-level modules of state_dict entries, in order."""
    return sorted({k.split(".", 1)[0] for k in keys})


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state_dict from ``path`` safely.

    Accepts a bare state_dict, a training checkpoint holding it under ``network``,
    ``model`` or ``state_dict``, and keys saved from a DataParallel/DDP wrapper
    (``module.`` prefix, which is removed).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint not found: {path}; check the path given to --checkpoint or "
            "--load-weights (REMN or STCN weights, a .pth file)"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, pickle with code, not a torch file, ...
        raise CheckpointError(
            f"cannot read checkpoint {path}: {type(exc).__name__}: {_first_line(exc)}; it is "
            "truncated, damaged, holds code rather than weights, or is not a PyTorch file: "
            "download or copy the weights again"
        ) from exc
    if isinstance(obj, Mapping):
        for wrapper in ("network", "model", "state_dict"):
            if wrapper in obj and isinstance(obj[wrapper], Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{path} does not hold a state_dict of tensors; give REMN weights (a .pth written by "
            "train.py) or STCN's released weights"
        )
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _first_line(error: BaseException, limit: int = 200) -> str:
    """A library's (often multi-line) message as one short line."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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


def load_network_weights(
    model: REMN, source: str | Path | Mapping[str, Tensor], name: str | Path | None = None
) -> LoadReport:
    """Load REMN or STCN weights into ``model`` by the rules of the module docstring.

    Args:
        model: a :class:`REMN` in any mode.
        source: a file path, or a state_dict already in memory.
        name: the file a state_dict in memory was read from, for messages.

    Returns:
        a :class:`LoadReport`; ``str(report)`` is its one-line description.

    Raises:
        CheckpointError: unreadable file, entries the network does not have, STCN entries
            missing from the file, or shapes that do not fit; nothing is loaded then.
    """
    origin = str(source) if isinstance(source, (str, Path)) else str(name or "state_dict")
    state = read_state_dict(source) if isinstance(source, (str, Path)) else dict(source)
    kind = "remn" if any(k.startswith(REMN_OWN_PREFIXES) for k in state) else "stcn"
    own = model.state_dict()
    widened = ["value_encoder.conv1.weight"] if _widen_value_conv(state, model) else []
    unexpected = sorted(k for k in state if k not in own and k.startswith(REMN_OWN_PREFIXES))
    for key in unexpected:
        del state[key]
    foreign = sorted(set(state) - set(own))
    missing = sorted(set(own) - set(state))
    missing_stcn = [k for k in missing if not k.startswith(REMN_OWN_PREFIXES)]
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs network {tuple(own[k].shape)}"
        for k in state
        if k in own and state[k].shape != own[k].shape
    ]
    problems = []
    if foreign:
        problems.append(f"{len(foreign)} entries the network does not have (first: {foreign[:5]})")
    if missing_stcn:
        problems.append(f"{len(missing_stcn)} STCN entries missing from the file (first: {missing_stcn[:5]})")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatches (first: {mismatched[:3]})")
    if problems:
        what = "is not an STCN checkpoint for this network" if kind == "stcn" else "does not fit this network"
        raise CheckpointError(
            f"{origin} {what}: " + "; ".join(problems) + "; use weights trained for this "
            "configuration, or the --config they were trained with (model.key_dim and "
            "model.value_dim must match)"
        )
    model.load_state_dict(state, strict=False)
    return LoadReport(
        source=origin, kind=kind, loaded=sorted(state), missing=missing, unexpected=unexpected, widened=widened
    )


load_stcn_checkpoint = load_network_weights
"""The same loader under its first name (it read STCN's files before it read REMN's too)."""


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
        raise CheckpointError(
            f"{path} does not fit this network: {_first_line(exc, 400)}; use the --config "
            "these weights were trained with"
        ) from exc
