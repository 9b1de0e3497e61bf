"""Score predicted masks against ground truth with the DAVIS 2017 semi-supervised protocol.

Protocol (that of davis2017-evaluation, re-implemented here around vos-benchmark's per-frame
J and F of one binary object, see :mod:`remn.evaluation.metrics`):

1. **Objects** of a sequence are the ids ``1..K``, ``K`` being the largest id of the first
   annotated ground-truth frame. An id missing in between still is an object, scored against
   empty ground truth. Ids that only appear in later ground-truth frames, or that are above
   ``K``, are not objects and count as background.
2. **Void** pixels (value 255) in ground truth are background. DAVIS 2016's 0/255 masks hold
   object 1: files are read with :func:`remn.data.masks.read_mask`, which turns a 0/255 grey
   mask into id 1 before void is removed. Arrays given to :func:`score_sequence` are id maps as
   ``read_mask`` returns them (255 there is void).
3. **Frames**: the first and the last annotated frames are not scored. With dense annotation
   that is the first and last frame of the sequence; with sparse annotation (the long-time
   video set) only annotated frames are scored, again without the first and last of them.
   A sequence needs three annotated frames for one to be scored.
4. **Per frame and object**, ``J`` (IoU) and ``F`` (boundary F-measure, tolerance
   ``ceil(0.008 * image diagonal)`` pixels) of the object's masks ``gt == k`` and
   ``pred == k``. Both empty: 1; exactly one empty: 0.
5. **Per object**: Mean, Recall (fraction of frames with value > 0.5) and Decay (mean of the
   first quarter of the frames minus mean of the last quarter), see
   :func:`remn.evaluation.metrics.object_statistics`.
6. **Global**: each figure is the plain mean over all objects of all sequences;
   ``J&F-Mean = (J-Mean + F-Mean) / 2``.

Predictions are refused, with the reason, when a sequence is missing, a scored frame has no
prediction, a predicted frame differs in size from its ground truth, or a prediction holds an id
that is not an object (not in ``1..K``). With dense annotation (the default) the prediction may
not hold frames the ground truth lacks, which catches a sparse ground truth scored without
``--sparse``; predictions of the first and last frames are not needed.

Command line (both folders laid out as ``<sequence>/<frame>.png``, frames matched by name)::

    python -m remn.evaluation.score --gt DIR --pred DIR [--out DIR] [--split NAME]
                                    [--sequences FILE] [--sparse]

prints the global table and writes the CSV files of :mod:`remn.evaluation.results` to
``--out`` (default: the prediction folder). It exits with status 2 and a message on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from tqdm import tqdm

from remn.data.masks import (
    BAD_LAYOUT,
    EMPTY_FIRST_MASK,
    MASK_EXTENSIONS,
    NAME_MISMATCH,
    SIZE_MISMATCH,
    UNKNOWN_OBJECT,
    DataError,
    list_files,
    natural_sorted,
    read_mask,
)
from remn.evaluation.metrics import frame_scores, object_statistics
from remn.evaluation.results import EvaluationResult, SequenceScore, format_global_table, write_csvs

__all__ = ["VOID_ID", "MISSING_SEQUENCE", "MISSING_FRAME", "EXTRA_FRAMES", "TOO_FEW_FRAMES",
           "score_sequence", "score_folders", "read_sequence_list", "main"]

VOID_ID = 255

# DataError codes of this module (the others come from remn.data.masks)
MISSING_SEQUENCE = "missing-sequence"
MISSING_FRAME = "missing-frame"
EXTRA_FRAMES = "extra-frames"
TOO_FEW_FRAMES = "too-few-frames"

_LIST_LIMIT = 8  # names listed per sequence in an error message


@dataclass
class _Frame:
    """One frame to score: its name, ground-truth ids, predicted ids and where they came from."""

    name: str
    gt: np.ndarray
    pred: np.ndarray
    pred_path: Path | None = None


def _ids(array, what: str, sequence: str, frame: str) -> np.ndarray:
    labels = np.asarray(array)
    if labels.ndim != 2:
        raise DataError(BAD_LAYOUT, f"{what} must be a 2-D id map, got shape {labels.shape}",
                        None, f"{frame} of {sequence}")
    return labels


def _without_void(labels: np.ndarray) -> np.ndarray:
    return np.where(labels == VOID_ID, 0, labels)


def _check_prediction(frame: _Frame, num_objects: int, sequence: str) -> None:
    where = f"{frame.name} of {sequence}"
    if frame.pred.shape != frame.gt.shape:
        raise DataError(SIZE_MISMATCH, f"prediction is {frame.pred.shape[1]}x{frame.pred.shape[0]} but the "
                        f"ground truth is {frame.gt.shape[1]}x{frame.gt.shape[0]} (width x height)",
                        frame.pred_path, where)
    present = np.unique(frame.pred)
    unknown = [v for v in present.tolist() if v != 0 and not (1 <= v <= num_objects and v == int(v))]
    if unknown:
        known = f"1..{num_objects}" if num_objects > 1 else "1"
        shown = ", ".join(str(int(v) if v == int(v) else v) for v in unknown[:_LIST_LIMIT])
        raise DataError(UNKNOWN_OBJECT, f"predicted ids {shown} are not objects of the ground truth "
                        f"(its first annotated frame has ids {known})", frame.pred_path, where)


def _score(name: str, first_gt: np.ndarray, frames: Iterable[_Frame], positions: Sequence[int]) -> SequenceScore:
    """Score the frames of one sequence; ``first_gt`` (void removed) defines the objects."""
    num_objects = int(first_gt.max(initial=0))
    if num_objects <= 0:
        raise DataError(EMPTY_FIRST_MASK, "the first annotated ground-truth frame has no object", None, name)
    object_ids = tuple(range(1, num_objects + 1))
    j_rows: list[list[float]] = [[] for _ in object_ids]
    f_rows: list[list[float]] = [[] for _ in object_ids]
    names: list[str] = []
    for frame in frames:
        _check_prediction(frame, num_objects, name)
        for row, object_id in enumerate(object_ids):
            score = frame_scores(frame.gt == object_id, frame.pred == object_id)
            j_rows[row].append(score.j)
            f_rows[row].append(score.f)
        names.append(frame.name)
    j = np.array(j_rows, dtype=np.float64).reshape(num_objects, len(names))
    f = np.array(f_rows, dtype=np.float64).reshape(num_objects, len(names))
    return SequenceScore(name=name, object_ids=object_ids, frames=tuple(positions), frame_names=tuple(names),
                         j=j, f=f, j_stats=tuple(object_statistics(row) for row in j),
                         f_stats=tuple(object_statistics(row) for row in f))


def _scored_positions(annotated_positions: Sequence[int], name: str) -> list[int]:
    if len(annotated_positions) < 3:
        raise DataError(TOO_FEW_FRAMES, f"{len(annotated_positions)} annotated frame(s); at least 3 are needed "
                        "because the first and last annotated frames are not scored", None, name)
    return list(annotated_positions[1:-1])


def score_sequence(gt_frames: Sequence[np.ndarray | None], pred_frames: Sequence[np.ndarray | None],
                   annotated: Sequence[bool] | None = None, *, name: str = "sequence",
                   frame_names: Sequence[str] | None = None) -> SequenceScore:
    """Score one sequence given as arrays (e.g. predictions still in memory).

    ``gt_frames[i]`` and ``pred_frames[i]`` are (H, W) id maps of frame ``i`` (``read_mask``'s
    ids; 255 in ground truth is void). ``annotated[i]`` says whether frame ``i`` has ground
    truth (``None``: every frame). Only annotated frames other than the first and the last are
    scored; the other entries may be ``None``. ``name`` and ``frame_names`` are used in the
    result and in error messages.
    """
    count = len(gt_frames)
    if len(pred_frames) != count:
        raise ValueError(f"{name}: {count} ground-truth frames but {len(pred_frames)} predicted frames")
    if annotated is not None and len(annotated) != count:
        raise ValueError(f"{name}: {count} frames but {len(annotated)} annotated flags")
    if frame_names is not None and len(frame_names) != count:
        raise ValueError(f"{name}: {count} frames but {len(frame_names)} frame names")
    labels = [str(i) for i in range(count)] if frame_names is None else [str(n) for n in frame_names]
    annotated_positions = [i for i in range(count) if annotated is None or annotated[i]]
    scored = _scored_positions(annotated_positions, name)
    first_position = annotated_positions[0]
    if gt_frames[first_position] is None:
        raise DataError(MISSING_FRAME, "no ground truth for the first annotated frame", None,
                        f"{labels[first_position]} of {name}")
    first_gt = _without_void(_ids(gt_frames[first_position], "ground truth", name, labels[first_position]))

    def frames() -> Iterator[_Frame]:
        for position in scored:
            label = labels[position]
            if gt_frames[position] is None:
                raise DataError(MISSING_FRAME, "no ground truth for an annotated frame", None, f"{label} of {name}")
            if pred_frames[position] is None:
                raise DataError(MISSING_FRAME, "no prediction for a scored frame", None, f"{label} of {name}")
            gt = _without_void(_ids(gt_frames[position], "ground truth", name, label))
            yield _Frame(label, gt, _ids(pred_frames[position], "prediction", name, label))

    return _score(name, first_gt, frames(), scored)


# ---------------------------------------------------------------- folders


def read_sequence_list(path: str | os.PathLike) -> list[str]:
    """Sequence names from a file: one per line (blank lines and ``#`` comments skipped); DAVIS
    2016's ``/JPEGImages/480p/<seq>/00000.jpg /Annotations/...`` lines give ``<seq>``."""
    names: list[str] = []
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name = Path(line.split()[0]).parent.name if "/" in line else line
        if name not in names:
            names.append(name)
    return names


def _mask_files(folder: Path) -> dict[str, Path]:
    """Mask files of a folder by frame name (file name without extension), in natural order."""
    files = list_files(folder, MASK_EXTENSIONS)
    by_name: dict[str, Path] = {}
    for path in files:
        if path.stem in by_name:
            raise DataError(NAME_MISMATCH, f"two masks for frame {path.stem!r}: {by_name[path.stem].name} and "
                            f"{path.name}", folder)
        by_name[path.stem] = path
    return by_name


def _subfolders(root: Path) -> list[str]:
    return natural_sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LIST_LIMIT])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _LIST_LIMIT else "")


@dataclass
class _Plan:
    """Which files score one sequence."""

    name: str
    gt_files: list[Path]  # annotated frames, in order
    pred_files: dict[str, Path]


def _plan(gt_root: Path, pred_root: Path, sequences: Sequence[str] | None, sparse: bool) -> list[_Plan]:
    for root, what in ((gt_root, "ground-truth"), (pred_root, "prediction")):
        if not root.is_dir():
            raise DataError(BAD_LAYOUT, f"{what} folder not found", root)
    names = list(sequences) if sequences is not None else _subfolders(gt_root)
    if not names:
        raise DataError(BAD_LAYOUT, "no sequence folders (expected <sequence>/<frame>.png)", gt_root)
    not_in_gt = [n for n in names if not (gt_root / n).is_dir()]
    if not_in_gt:
        raise DataError(MISSING_SEQUENCE, f"sequences missing from the ground truth: {_listing(not_in_gt)}", gt_root)
    not_predicted = [n for n in names if not (pred_root / n).is_dir()]
    if not_predicted:
        raise DataError(MISSING_SEQUENCE, f"sequences missing from the predictions: {_listing(not_predicted)}",
                        pred_root)
    plans: list[_Plan] = []
    missing: list[str] = []
    extra: list[str] = []
    for name in names:
        gt_files = _mask_files(gt_root / name)
        pred_files = _mask_files(pred_root / name)
        if not gt_files:
            raise DataError(BAD_LAYOUT, "no ground-truth masks", gt_root / name)
        gt_names = list(gt_files)
        scored = _scored_positions(range(len(gt_names)), name)
        absent = [gt_names[i] for i in scored if gt_names[i] not in pred_files]
        if absent:
            missing.append(f"{name}: {_listing(absent)}")
        if not sparse:
            unannotated = [n for n in pred_files if n not in gt_files]
            if unannotated:
                extra.append(f"{name}: {_listing(unannotated)}")
        plans.append(_Plan(name, list(gt_files.values()), pred_files))
    if missing:
        raise DataError(MISSING_FRAME, "predicted frames are missing (sequence: frames): " + "; ".join(missing),
                        pred_root)
    if extra:
        raise DataError(EXTRA_FRAMES, "predicted frames have no ground truth (sequence: frames): "
                        + "; ".join(extra) + ". If the ground truth annotates only some frames, pass --sparse "
                        "(sparse=True)", gt_root)
    return plans


def _score_plan(plan: _Plan) -> SequenceScore:
    first_gt, _ = read_mask(plan.gt_files[0], frame=plan.gt_files[0].stem, void=VOID_ID, warn=False)
    scored = _scored_positions(range(len(plan.gt_files)), plan.name)

    def frames() -> Iterator[_Frame]:
        for position in scored:
            gt_path = plan.gt_files[position]
            gt, _ = read_mask(gt_path, frame=gt_path.stem, void=VOID_ID, warn=False)
            pred_path = plan.pred_files[gt_path.stem]
            pred, _ = read_mask(pred_path, frame=gt_path.stem)
            yield _Frame(gt_path.stem, gt, pred, pred_path)

    return _score(plan.name, first_gt, frames(), scored)


def score_folders(gt_root: str | os.PathLike, pred_root: str | os.PathLike, sequences: Sequence[str] | None = None,
                  sparse: bool = False, progress: bool = True) -> EvaluationResult:
    """Score ``pred_root/<seq>/<frame>.png`` against ``gt_root/<seq>/<frame>.png``.

    ``sequences``: the names to score (default: every folder of ``gt_root``, naturally sorted).
    ``sparse``: the ground truth annotates only some frames; the prediction may hold more.
    Every problem with the layout is reported before any scoring starts.
    """
    plans = _plan(Path(gt_root), Path(pred_root), sequences, sparse)
    result = EvaluationResult()
    for plan in tqdm(plans, desc="scoring", unit="seq", disable=not progress):
        result.sequences.append(_score_plan(plan))
    return result


# ---------------------------------------------------------------- command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m remn.evaluation.score",
                                     description="Score predicted masks with the DAVIS 2017 semi-supervised protocol.")
    parser.add_argument("--gt", required=True, help="ground-truth folder: <sequence>/<frame>.png")
    parser.add_argument("--pred", required=True, help="prediction folder: <sequence>/<frame>.png")
    parser.add_argument("--out", help="folder for the CSV files (default: the prediction folder)")
    parser.add_argument("--split", default="val", help="name in the CSV file names (default: val)")
    parser.add_argument("--sequences", help="file listing the sequences to score, one per line "
                        "(default: every folder of --gt)")
    parser.add_argument("--sparse", action="store_true",
                        help="the ground truth annotates only some frames (long-time video set)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        sequences = read_sequence_list(args.sequences) if args.sequences else None
        result = score_folders(args.gt, args.pred, sequences=sequences, sparse=args.sparse, progress=not args.quiet)
    except (DataError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out_dir = Path(args.out) if args.out else Path(args.pred)
    global_path, sequence_path = write_csvs(result, out_dir, args.split)
    title = (f"Global results for {args.split} ({result.num_objects} objects in "
             f"{len(result.sequences)} sequences)")
    print(format_global_table(result.global_table(), title))
    print(f"wrote {global_path} and {sequence_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
