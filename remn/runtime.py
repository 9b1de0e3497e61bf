"""Device and precision choices shared by every entry point (no hard-coded ``.cuda()``)."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

__all__ = ["resolve_device", "compute_dtype", "autocast", "seed_everything"]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device, checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but CUDA is not available; use device=cpu or auto")
    return device


def compute_dtype(precision: str) -> torch.dtype:
    """``fp32``, ``bf16`` or ``fp16`` -> the torch dtype."""
    if precision not in _DTYPES:
        raise ValueError(f"precision must be fp32, bf16 or fp16, got {precision!r}")
    return _DTYPES[precision]


def autocast(device: torch.device, precision: str = "fp32") -> contextlib.AbstractContextManager:
    """Autocast for ``bf16``/``fp16``; a no-op context for ``fp32``."""
    dtype = compute_dtype(precision)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
