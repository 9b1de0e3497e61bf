"""The one factory for inference: configuration + weights + device -> a ready :class:`InferenceCore`.

``eval``, ``segment``, the Python API (remn/predictor.py) and the benchmarks all build their
core here, so that "which network, which weights, which device" is decided one way:

* the network is built from the configuration (``model.*``; ``memory.*`` and ``inference.*``
  go to the core), after seeding with ``runtime.seed`` so that random weights are the same
  on every run;
* ``checkpoint`` is REMN or STCN weights (remn/model/checkpoint.py says how each is read and
  what is reported); ``None`` keeps the random weights and says so;
* ``device`` defaults to ``runtime.device`` (``auto``: CUDA when usable, else the CPU).
"""

from __future__ import annotations

from pathlib import Path

import torch

from remn.config import REMNConfig
from remn.model import build_model
from remn.model.checkpoint import load_network_weights
from remn.runtime import resolve_device, seed_everything

from .core import InferenceCore

__all__ = ["build_core", "RANDOM_WEIGHTS"]

RANDOM_WEIGHTS = "random weights (no checkpoint)"


def build_core(
    cfg: REMNConfig, checkpoint: str | Path | None = None, device: torch.device | str | None = None
) -> tuple[InferenceCore, str]:
    """The inference core of ``cfg`` with ``checkpoint``'s weights on ``device``, and one line
    saying which weights it holds."""
    device = resolve_device(cfg.runtime.device if device is None else str(device))
    seed_everything(cfg.runtime.seed)
    model = build_model(cfg)
    message = load_network_weights(model, checkpoint).description if checkpoint else RANDOM_WEIGHTS
    return InferenceCore(model.to(device).eval(), cfg, device), message
