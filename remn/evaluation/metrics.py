"""Per-frame measures of one object and the per-object statistics of the DAVIS protocol.

Per frame (one object, two binary masks of the same size):

* **J** (region similarity) is the intersection over union of the predicted and ground-truth
  masks. Both empty: J = 1 (nothing to find, nothing found); exactly one empty: J = 0.
* **F** (contour accuracy) is the F-measure of boundary precision and recall: a boundary pixel
  counts as matched when the other mask has a boundary pixel within a disk of radius
  ``ceil(0.008 * image diagonal)`` pixels (:func:`boundary_tolerance`). Both empty: F = 1;
  exactly one empty: F = 0. Boundaries follow the benchmark's boundary map, in which a mask
  covering the whole frame has no boundary pixel (so it scores F = 1 against an empty mask).

Both come from ``vos_benchmark.evaluator.Evaluator`` (IoU and the dilated-boundary F-measure of
the DAVIS benchmark): a fresh evaluator is fed the pair of 0/1 masks of one object, so it sees
exactly one object id, 1. When both masks are empty it records nothing, and the values above
are used instead.

Per object, over its scored frames (:func:`object_statistics`):

* **Mean**: the mean of the values, NaN ignored.
* **Recall**: the fraction of frames whose value is strictly above 0.5.
* **Decay**: the mean of the first of four bins of frames minus the mean of the last one. With
  ``n`` scored frames, the bin edges are ``e_k = (k * (n - 1) + 2) // 4`` for ``k = 0..4`` and bin
  ``k`` holds frames ``e_k..e_{k+1}`` inclusive, so neighbouring bins share their edge frame.
  In real terms ``e_k`` is ``1 + k (n - 1) / 4`` rounded half up, minus one (one-based
  positions spread evenly from the first to the last frame); this is the binning of
  davis2017-evaluation. It casts the edges to uint8, which wraps them around for more than
  256 scored frames; we keep exact integers, which agrees with it up to 256 frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from vos_benchmark.evaluator import Evaluator

__all__ = [
    "BOUNDARY_FRACTION",
    "RECALL_THRESHOLD",
    "DECAY_BINS",
    "FrameScore",
    "Statistics",
    "boundary_tolerance",
    "frame_scores",
    "jaccard",
    "boundary_f",
    "decay_edges",
    "object_statistics",
]

BOUNDARY_FRACTION = 0.008  # boundary tolerance as a fraction of the image diagonal
RECALL_THRESHOLD = 0.5  # a frame is "recalled" when its value is strictly above this
DECAY_BINS = 4


@dataclass(frozen=True)
class FrameScore:
    """J and F of one object in one frame, both in [0, 1]."""

    j: float
    f: float


@dataclass(frozen=True)
class Statistics:
    """Mean, Recall and Decay of one measure (J or F) of one object over its scored frames."""

    mean: float
    recall: float
    decay: float


def boundary_tolerance(shape: tuple[int, ...]) -> int:
    """Radius in pixels within which boundaries match: ``ceil(0.008 * sqrt(H^2 + W^2))``."""
    height, width = shape[:2]
    return int(math.ceil(BOUNDARY_FRACTION * math.hypot(height, width)))


def _binary(mask: np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"{what} must be a 2-D mask, got shape {array.shape}")
    return (array != 0).astype(np.uint8)


def frame_scores(gt: np.ndarray, pred: np.ndarray) -> FrameScore:
    """J and F of one object: ``gt`` and ``pred`` are its masks (non-zero = object)."""
    gt_bin = _binary(gt, "ground truth")
    pred_bin = _binary(pred, "prediction")
    if gt_bin.shape != pred_bin.shape:
        raise ValueError(
            f"prediction is {pred_bin.shape[1]}x{pred_bin.shape[0]} but the ground truth is "
            f"{gt_bin.shape[1]}x{gt_bin.shape[0]} (width x height)"
        )
    evaluator = Evaluator(boundary=BOUNDARY_FRACTION)
    evaluator.feed_frame(pred_bin, gt_bin)
    if not evaluator.object_iou:  # both masks empty: the evaluator saw no object
        return FrameScore(1.0, 1.0)
    return FrameScore(float(evaluator.object_iou[1][0]), float(evaluator.boundary_f[1][0]))


def jaccard(gt: np.ndarray, pred: np.ndarray) -> float:
    """Region similarity J (IoU) of one object's masks."""
    return frame_scores(gt, pred).j


def boundary_f(gt: np.ndarray, pred: np.ndarray) -> float:
    """Contour accuracy F (boundary F-measure) of one object's masks."""
    return frame_scores(gt, pred).f


def decay_edges(count: int) -> list[int]:
    """Edges ``e_0..e_4`` of the four Decay bins for ``count`` scored frames (see module doc)."""
    if count < 1:
        raise ValueError("Decay needs at least one scored frame")
    return [(k * (count - 1) + 2) // DECAY_BINS for k in range(DECAY_BINS + 1)]


def object_statistics(values: np.ndarray | list[float]) -> Statistics:
    """Mean, Recall and Decay of one object's per-frame values (in frame order)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"expected a non-empty 1-D array of per-frame values, got shape {values.shape}")
    finite = values[~np.isnan(values)]
    mean = float(finite.mean()) if finite.size else math.nan
    recall = float(np.mean(values > RECALL_THRESHOLD))  # NaN counts as a miss, as in the benchmark
    edges = decay_edges(values.size)
    first = values[edges[0] : edges[1] + 1]
    last = values[edges[DECAY_BINS - 1] : edges[DECAY_BINS] + 1]
    decay = _nanmean(first) - _nanmean(last)
    return Statistics(mean=mean, recall=recall, decay=decay)


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan
