"""Device and precision choices shared by every entry point (no hard-coded ``.cuda()``), and the
one way peak memory is measured (:class:`PeakMemory`)."""

from __future__ import annotations

import contextlib
import random
import sys

import numpy as np
import torch

from remn.config import ConfigError

__all__ = [
    "DeviceError",
    "resolve_device",
    "compute_dtype",
    "resolve_precision",
    "cpu_has_native_bf16",
    "autocast",
    "seed_everything",
    "PeakMemory",
    "process_memory",
]

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
        raise DeviceError(
            f"device {name!r} is not a device name; set --device (runtime.device) to auto, cpu, cuda or cuda:N"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = f"torch {torch.__version__}" + (
                f" built for CUDA {torch.version.cuda}" if torch.version.cuda else ", a build without CUDA"
            )
            raise DeviceError(
                f"device {name!r} was asked for, but no CUDA GPU is usable here ({build}); use "
                "--device cpu (runtime.device=cpu) or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {name!r} was asked for, but this machine has {torch.cuda.device_count()} "
                f"GPU(s) (cuda:0..cuda:{torch.cuda.device_count() - 1}); name one of those, or use "
                "cuda or auto"
            )
    elif device.type not in ("cpu", "mps"):
        raise DeviceError(
            f"device {name!r} is not supported; set --device (runtime.device) to auto, cpu, cuda or cuda:N"
        )
    return device


def compute_dtype(precision: str) -> torch.dtype:
    """``fp32``, ``bf16`` or ``fp16`` -> the torch dtype."""
    if precision not in _DTYPES:
        raise ValueError(f"precision must be fp32, bf16 or fp16, got {precision!r}")
    return _DTYPES[precision]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively: the ``avx512_bf16`` or ``amx_bf16`` flag of
    Linux's ``/proc/cpuinfo``, else an AMX capability reported by torch."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()
    return "AMX" in capability.upper()


def resolve_precision(name: str, device: torch.device | str) -> str:
    """The inference precision (``runtime.precision``): ``auto`` -> ``bf16`` where ``device``
    computes it natively (a CUDA GPU with bf16, a CPU with AVX512-BF16 or AMX), else ``fp32``;
    any other name unchanged. Training has its own rule (``train.precision``, remn/training/trainer.py)."""
    if name != "auto":
        return name
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


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


# ------------------------------------------------------------------------------ peak memory
_rss_reset = False  # whether this process's peak RSS was restarted (it is one count for the whole process)


def process_memory(pid: int | str = "self") -> tuple[int, int] | None:
    """``(resident now, peak resident)`` in bytes of a process (this one by default): VmRSS and
    VmHWM of Linux's ``/proc/<pid>/status``; None where that cannot be read (not Linux, no
    ``/proc``, the process has ended)."""
    fields = {}
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    fields[name] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    if len(fields) < 2:  # a kernel thread or a zombie has no memory lines
        return None
    return fields["VmRSS"], fields["VmHWM"]


class PeakMemory:
    """The memory this process uses on ``device`` now and at its peak, in bytes.

    What is measured:

    * **CUDA**: bytes handed out by PyTorch's caching allocator on that device
      (``torch.cuda.memory_allocated``, peak ``torch.cuda.max_memory_allocated``); not what the
      allocator holds unused, the CUDA context, nor other processes. :meth:`reset` restarts the
      peak from what is allocated now (``torch.cuda.reset_peak_memory_stats``). Kind
      ``cuda_max_allocated``.
    * **Any other device** (CPU, MPS): the process's resident set size (RSS). On Linux VmRSS
      now and VmHWM, the peak (:func:`process_memory`); ``reset(rss=True)`` restarts the peak
      from the RSS now by writing 5 to ``/proc/self/clear_refs`` (Linux 4.0 or later; some
      containers refuse it). Kind ``process_peak_rss_after_reset`` once that worked anywhere in
      the process (the count is the process's, not the probe's), else ``process_max_rss``: the
      peak since the process started. Where ``/proc`` cannot be read (macOS, BSD), getrusage's
      ``ru_maxrss``, the peak since the process started, which nothing resets, stands for both
      now and peak.
    """

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    @property
    def kind(self) -> str:
        """``cuda_max_allocated``, ``process_max_rss`` or ``process_peak_rss_after_reset``."""
        if self.device.type == "cuda":
            return "cuda_max_allocated"
        return "process_peak_rss_after_reset" if _rss_reset else "process_max_rss"

    def reset(self, rss: bool = True) -> bool:
        """Restart the peak from now: the allocator's peak on a CUDA device; on any other device
        the process's peak RSS where the system allows it and ``rss`` is true (``rss=False``
        leaves a count other code of the process may rely on). Returns whether the peak now counts
        from here."""
        global _rss_reset
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return True
        if not rss:
            return False
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
        except OSError:
            return False
        _rss_reset = True
        return True

    def read(self) -> tuple[int, int]:
        """``(now, peak)`` in bytes."""
        if self.device.type == "cuda":
            return int(torch.cuda.memory_allocated(self.device)), int(torch.cuda.max_memory_allocated(self.device))
        measured = process_memory()
        if measured is not None:
            return measured
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB elsewhere
        return peak, peak

    @property
    def peak(self) -> int:
        """The peak so far, in bytes (:meth:`read`)."""
        return self.read()[1]
