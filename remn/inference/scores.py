"""Per-frame object probabilities saved beside the masks (``--save-scores`` of ``eval`` and ``segment``).

One file per frame, ``<frame>.npz`` (NumPy's compressed archive), holding two arrays:

* ``scores``: ``(K, H, W)`` uint8, ``round(p * 255)`` of each object's probability at the output
  (input) size, one channel per object, background left out (it is ``255 - scores.sum(0)`` up to
  rounding);
* ``ids``: ``(K,)`` int64, the user object id of each channel (the values the masks hold).

Read back with ``data = np.load(path); p = data["scores"] / 255.0; ids = data["ids"]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import Tensor

__all__ = ["quantise", "save_scores", "load_scores", "SCORES"]

SCORES = "scores"
"""The folder the files go to, beside the masks."""


def quantise(prob: Tensor) -> np.ndarray:
    """``(K+1, H, W)`` probabilities, background first -> ``(K, H, W)`` uint8 ``round(p * 255)`` of the objects."""
    return (prob[1:].float().clamp(0, 1) * 255).round().to("cpu").numpy().astype(np.uint8)


def save_scores(path: str | Path, scores: np.ndarray, ids: list[int]) -> Path:
    """Write quantised ``scores`` (:func:`quantise`) and their object ``ids`` to ``path`` (``.npz``)."""
    scores = np.asarray(scores, dtype=np.uint8)
    if scores.ndim != 3 or scores.shape[0] != len(ids):
        raise ValueError(f"scores must be (K, H, W) with K = {len(ids)} ids, got shape {scores.shape}")
    path = Path(path)
    with open(path, "wb") as handle:  # inside a staged output folder (remn/outputs.py): no temporary file needed
        np.savez_compressed(handle, scores=scores, ids=np.asarray(ids, dtype=np.int64))
    return path


def load_scores(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities (K, H, W) float32 in [0, 1], ids (K,) int64)`` of a file written by :func:`save_scores`."""
    with np.load(path) as data:
        return data["scores"].astype(np.float32) / 255.0, data["ids"].astype(np.int64)
