"""Score predictions with the LVOS protocol: each object on the frames of its own range.

LVOS (v1) objects may enter after the first frame; its ``<split>_meta.json`` gives each object a
``frame_range`` (:class:`remn.data.vos.FrameRange`), and lvos-evaluation (``lvos/evaluation.py``,
``_evaluate_semisupervised``) scores object ``k`` on the frames ``range(start, end, 5)``, named
``%08d``: the first frame of the range, where its mask is given, is scored; ``end`` is not.
Per frame, J and F of ``gt == k`` against ``pred == k`` (:func:`remn.evaluation.metrics.frame_scores`;
255 is no object here, so void plays no part); per object, Mean, Recall and Decay over its own
frames (:func:`remn.evaluation.metrics.object_statistics`); global figures as for DAVIS, the plain
mean over every object, ``J&F = (J-Mean + F-Mean) / 2`` (what lvos-evaluation's CodaLab scorer,
``evaluation_codalab.py``, reports for the test server). docs/evaluation.md says where we differ.

A :class:`~remn.evaluation.results.SequenceScore` here has one column per frame scored for any
object of the sequence, NaN where an object is not scored. ``remn score --lvos-meta FILE`` and the
``lvos-valid`` benchmark use :func:`score_object_ranges`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from tqdm import tqdm

from remn.data.masks import BAD_LAYOUT, SIZE_MISMATCH, UNKNOWN_OBJECT, DataError, natural_sorted, read_mask
from remn.data.vos import FrameRange
from remn.evaluation.metrics import frame_scores, object_statistics
from remn.evaluation.results import EvaluationResult, SequenceScore
from remn.evaluation.score import MISSING_FRAME, MISSING_SEQUENCE

__all__ = ["score_object_ranges", "score_ranged_sequence"]

_LIST_LIMIT = 8


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LIST_LIMIT])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _LIST_LIMIT else "")


def _frames(ranges: Mapping[int, FrameRange]) -> list[str]:
    """Every frame scored for some object, in frame order."""
    return sorted({name for frame_range in ranges.values() for name in frame_range.names()}, key=int)


def score_ranged_sequence(
    name: str, gt_folder: Path, pred_folder: Path, ranges: Mapping[int, FrameRange]
) -> SequenceScore:
    """Score one sequence: ``<folder>/<frame>.png`` for every frame of every object's range."""
    object_ids = tuple(sorted(ranges))
    frames = _frames(ranges)
    members = {object_id: set(ranges[object_id].names()) for object_id in object_ids}
    j = np.full((len(object_ids), len(frames)), np.nan)
    f = np.full_like(j, np.nan)
    for t, frame in enumerate(frames):
        gt_path, pred_path = gt_folder / f"{frame}.png", pred_folder / f"{frame}.png"
        gt, _ = read_mask(gt_path, frame=frame, warn=False)
        pred, _ = read_mask(pred_path, frame=frame)
        where = f"{frame} of {name}"
        if pred.shape != gt.shape:
            raise DataError(
                SIZE_MISMATCH,
                f"prediction is {pred.shape[1]}x{pred.shape[0]} but the ground truth is "
                f"{gt.shape[1]}x{gt.shape[0]} (width x height); write the predictions at the size of "
                "the frames",
                pred_path,
                where,
            )
        unknown = sorted(set(np.unique(pred).tolist()) - {0, *object_ids})
        if unknown:
            raise DataError(
                UNKNOWN_OBJECT,
                f"predicted ids {_listing([str(v) for v in unknown])} are not objects "
                f"of this video (the meta file lists {', '.join(map(str, object_ids))}); predictions "
                "must use the ground truth's ids (0 background)",
                pred_path,
                where,
            )
        for row, object_id in enumerate(object_ids):
            if frame in members[object_id]:
                score = frame_scores(gt == object_id, pred == object_id)
                j[row, t], f[row, t] = score.j, score.f

    def stats(rows: np.ndarray):
        return tuple(object_statistics(row[~np.isnan(row)]) for row in rows)

    return SequenceScore(
        name=name,
        object_ids=object_ids,
        frames=tuple(int(n) for n in frames),
        frame_names=tuple(frames),
        j=j,
        f=f,
        j_stats=stats(j),
        f_stats=stats(f),
    )


def score_object_ranges(
    gt_root: str | os.PathLike,
    pred_root: str | os.PathLike,
    ranges: Mapping[str, Mapping[int, FrameRange]],
    sequences: Sequence[str] | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Score ``pred_root/<video>/<frame>.png`` against ``gt_root/<video>/<frame>.png`` with the LVOS
    protocol (module docstring). ``ranges``: :func:`remn.data.vos.read_lvos_meta` of the split;
    ``sequences``: the videos to score (default: every video of ``ranges``). Every missing video or
    frame is reported before any scoring starts."""
    gt_root, pred_root = Path(gt_root), Path(pred_root)
    for root, what, option in ((gt_root, "ground-truth", "--gt"), (pred_root, "prediction", "--pred")):
        if not root.is_dir():
            raise DataError(
                BAD_LAYOUT, f"{what} folder not found; check {option} (a folder of <video>/<frame>.png)", root
            )
    names = list(sequences) if sequences is not None else natural_sorted(ranges)
    unlisted = [n for n in names if n not in ranges]
    if unlisted:
        raise DataError(
            MISSING_SEQUENCE,
            f"videos not in the LVOS meta file: {_listing(unlisted)}; score the videos of that split",
            gt_root,
        )
    for root, what, fix in ((gt_root, "ground truth", "check --gt"), (pred_root, "predictions", "predict them")):
        absent = [n for n in names if not (root / n).is_dir()]
        if absent:
            raise DataError(MISSING_SEQUENCE, f"videos missing from the {what}: {_listing(absent)}; {fix}", root)
    for root, what in ((gt_root, "ground-truth"), (pred_root, "predicted")):
        missing = []
        for name in names:
            absent = [frame for frame in _frames(ranges[name]) if not (root / name / f"{frame}.png").is_file()]
            if absent:
                missing.append(f"{name}: {_listing(absent)}")
        if missing:
            raise DataError(
                MISSING_FRAME,
                f"{what} frames are missing (video: frames): "
                + "; ".join(missing)
                + "; the LVOS protocol scores each object on the frames start, start + 5, ... before "
                "the end of its frame_range in the meta file, named %08d",
                root,
            )
    result = EvaluationResult()
    for name in tqdm(names, desc="scoring", unit="video", disable=not progress):
        result.sequences.append(score_ranged_sequence(name, gt_root / name, pred_root / name, ranges[name]))
    return result
