"""Device and precision choices shared by every entry point (no hard-coded ``.cuda()``)."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from remn.config import ConfigError

__all__ = ["DeviceError", "resolve_device", "compute_dtype", "autocast", "seed_everything"]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class DeviceError(ConfigError):
    """A device that this machine does not have."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; otherwise the named device, checked.

    Raises:
        DeviceError: an unknown device name, CUDA without a usable GPU, or a GPU index beyond
            the GPUs present.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"device {name!r} is not a device name; set --device (runtime.device) to auto, cpu, "
                          "cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = f"torch {torch.__version__}" + (f" built for CUDA {torch.version.cuda}" if torch.version.cuda
                                                    else ", a build without CUDA")
            raise DeviceError(f"device {name!r} was asked for, but no CUDA GPU is usable here ({build}); use "
                              "--device cpu (runtime.device=cpu) or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {name!r} was asked for, but this machine has {torch.cuda.device_count()} "
                              f"GPU(s) (cuda:0..cuda:{torch.cuda.device_count() - 1}); name one of those, or use "
                              "cuda or auto")
    elif device.type not in ("cpu", "mps"):
        raise DeviceError(f"device {name!r} is not supported; set --device (runtime.device) to auto, cpu, cuda "
                          "or cuda:N")
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
