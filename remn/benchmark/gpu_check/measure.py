"""What every check's process shares: its result file, the device, peak memory."""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

import torch

from remn.inference.video_loop import synchronize as sync
from remn.outputs import atomic_write_text
from remn.runtime import PeakMemory

from .settings import Settings, one_line

__all__ = ["Skip", "Result", "device_of", "sync", "reset_peak", "peak_mib", "error_line"]


class Skip(Exception):
    """The check cannot run here; the message says why."""


def error_line(exc: BaseException) -> str:
    return one_line(f"{type(exc).__name__}: {exc}")


class Result:
    """One check's result, written to ``work/<name>.json`` whenever it changes (a check stopped
    past its budget keeps the rows it measured).

    ``data``: ``status`` (``running`` until the end), ``rows``, ``notes``, and ``error`` (the
    first row that failed, or a measurement left out for want of time).
    """

    def __init__(self, path: Path, deadline: float) -> None:
        self.path, self.deadline = path, deadline
        self.data: dict = {"status": "running", "rows": [], "notes": []}
        self.longest = 0.0
        self.save()

    def save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=2, default=str))

    def row(self, row: dict) -> dict:
        self.data["rows"].append(row)
        self.save()
        return row

    def error(self, row: dict, exc: BaseException) -> None:
        """``row`` failed with ``exc``: recorded, and the check goes on with its next row."""
        row["error"] = error_line(exc)
        self.data.setdefault("error", row["error"])
        traceback.print_exc()
        self.row(row)

    def time_left(self, row: dict) -> bool:
        """Whether a measurement as long as the longest so far still fits; if not, ``row`` is
        recorded as left out."""
        if time.time() + max(3.0, 1.5 * self.longest) < self.deadline:
            return True
        row["skipped"] = "not started: the check's budget would not hold it"
        self.data.setdefault("error", "measurements were left out for want of time (rows marked 'skipped')")
        self.row(row)
        return False

    def timed(self, seconds: float) -> None:
        self.longest = max(self.longest, seconds)


def device_of(settings: Settings) -> torch.device:
    from remn.runtime import resolve_device

    return resolve_device(settings.device)


def reset_peak(device: torch.device) -> None:
    """Start the peak-memory count afresh (:class:`remn.runtime.PeakMemory`)."""
    sync(device)
    PeakMemory(device).reset()


def peak_mib(device: torch.device) -> float:
    """The peak since :func:`reset_peak`, MiB (:class:`remn.runtime.PeakMemory`)."""
    sync(device)
    return round(PeakMemory(device).peak / 2**20, 1)
