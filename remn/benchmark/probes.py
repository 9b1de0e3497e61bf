"""What a measurement reads besides the clock: the device's name, waiting for the device, and
peak memory (:class:`remn.runtime.PeakMemory`, under the names the benchmark's JSON uses)."""

from __future__ import annotations

import platform

import torch

from remn.runtime import PeakMemory

__all__ = ["device_name", "sync", "PeakMemory", "peak_memory_kind"]


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name with the number of torch threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{name}, {threads} thread{'s' if threads > 1 else ''}"


def peak_memory_kind(device: torch.device, restarted: bool) -> str:
    """``peak_memory_kind`` of a run: ``cuda_max_allocated``; on a CPU ``process_peak_rss_after_warmup``
    when the peak RSS was restarted after the warm-up (:meth:`PeakMemory.reset`), else
    ``process_peak_rss`` (the peak since the worker started)."""
    if device.type == "cuda":
        return "cuda_max_allocated"
    return "process_peak_rss_after_warmup" if restarted else "process_peak_rss"
