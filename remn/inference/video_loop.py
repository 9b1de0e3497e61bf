"""The one whole-video loop: frames in play order through an :class:`InferenceCore`, timed.

Evaluation (remn/evaluation/run.py), own-video segmentation (remn/inference/own_video.py) and
the speed benchmark (remn/benchmark/) all run videos through :func:`segment_video`, so that a
frame is processed and timed the same way everywhere:

* the core is reset, then each :class:`~remn.data.video.Frame` goes through
  :meth:`InferenceCore.step` (its mask, if any, adds or corrects objects; the last step is
  marked so it is never written to memory);
* the labels (an ``(H, W)`` int64 map of user ids at the input size) are taken off the device
  for the frames that want an output (``frame.write``), or for every frame with
  ``labels="all"``; with ``probabilities=True`` the step's ``(K+1, H, W)`` probabilities
  come with them (left on the device, inside the timing as they cost nothing more);
* ``seconds`` is the wall time of the step and the labels, with the device synchronised
  before and after (CUDA runs asynchronously), so it is the model's time alone: reading
  frames and writing files fall outside it.

:func:`warm_up` runs a few untimed steps first, so that one-time costs (allocator, kernel
choices, lazy initialisation) stay out of the timing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import torch

from remn.data.video import Frame

from .core import InferenceCore

__all__ = ["Segmented", "segment_video", "warm_up", "synchronize"]


@dataclass
class Segmented:
    """One processed frame."""

    frame: Frame
    ids: list[int]
    """The objects tracked after this step, in channel order."""
    labels: np.ndarray | None
    """``(H, W)`` int64 user ids at the input size; None when the frame wanted no output."""
    seconds: float
    """Model time of this step (device synchronised), labels included."""
    prob: torch.Tensor | None = None
    """``(K+1, H, W)`` float32 probabilities at the input size, background first, channel ``i``
    for ``ids[i-1]`` (on the core's device); only with ``probabilities=True``, for the frames
    that have labels."""

    @property
    def index(self) -> int:
        return self.frame.index


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def segment_video(
    core: InferenceCore,
    frames: Iterable[Frame],
    num_steps: int,
    *,
    labels: str = "write",
    reset: bool = True,
    probabilities: bool = False,
) -> Iterator[Segmented]:
    """Run ``frames`` (``num_steps`` of them, in play order) through ``core``; yields each step.

    ``labels``: ``"write"`` takes labels for frames with ``frame.write`` only (evaluation),
    ``"all"`` for every frame; ``probabilities``: also the probabilities of those frames
    (:attr:`Segmented.prob`). Between yields the caller may read the core's state (its bank,
    its objects): nothing runs until the next frame is asked for.
    """
    if labels not in ("write", "all"):
        raise ValueError(f"labels must be 'write' or 'all', got {labels!r}")
    if reset:
        core.reset()
    device = core.device
    for frame in frames:
        synchronize(device)
        start = time.perf_counter()
        prob = core.step(frame.image, frame.mask, last=frame.position == num_steps - 1)
        wanted = labels == "all" or frame.write
        out = core.labels(prob) if wanted else None
        synchronize(device)
        seconds = time.perf_counter() - start
        yield Segmented(frame, core.objects.ids, out, seconds, prob if probabilities and wanted else None)


def warm_up(core: InferenceCore, frames: Iterable[Frame], steps: int) -> None:
    """Up to ``steps`` untimed steps from the start of ``frames`` (stopping before a first frame
    without a mask, which the core could not process), then a reset."""
    core.reset()
    for frame in frames:
        if frame.position >= steps or (frame.mask is None and frame.position == 0):
            break
        core.step(frame.image, frame.mask)
    core.reset()
