"""Score predicted masks against ground truth with the DAVIS semi-supervised protocol.

Protocol (that of davis2017-evaluation, re-implemented here around vos-benchmark's per-frame
J and F of one binary object, see :mod:`remn.evaluation.metrics`):

1. **Ground truth** is read by the rule of its format (``gt_format``, see ``docs/evaluation.md``,
   "Ground truth", for where each rule comes from):

   * ``davis2017`` (the default; DAVIS 2017, YouTube-VOS-style and generic ground truth): the
     pixel values as davis2017-evaluation reads them (palette index or grey level), 255 being
     void, which counts as background. A sequence whose first annotated frame is a grey 0/255
     mask is DAVIS 2016 ground truth, which davis2017-evaluation cannot score (255 would be
     void and no object left): it is read by the ``davis2016`` rule, with a warning.
   * ``davis2016`` (DAVIS 2016, one object): every non-zero pixel is the object, id 1, as the
     DAVIS 2016 toolkit reads its 0/255 masks; there is no void.

2. **Objects** of a sequence are the ids ``1..K``, ``K`` being the largest id of the first
   annotated ground-truth frame (``davis2016``: K = 1). An id missing in between still is an
   object, scored against the ground truth of later frames (empty where it is absent). Ids that
   are above ``K`` are not objects and count as background.
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

Ground-truth values that the format does not expect are scored by its rule and reported with a
:class:`~remn.data.masks.DataWarning`, one line per sequence and finding (never one per frame),
naming the first file, the values with their pixel counts, in how many of the frames read they
occur and the rule applied: values other than 0 and 255 in ``davis2016`` ground truth; ids
above ``K`` and ids missing from the first annotated frame in ``davis2017`` ground truth; grey
ground truth holding 255 (void) in its first frame; grey 0/255 sequences scored as ``davis2017``
(one line for all of them); files of mixed kinds, and colour files, in one sequence. The frames
read are the first annotated one and the scored ones (the last annotated frame is not read).

Predictions are refused, with the reason, when a sequence is missing, a scored frame has no
prediction, a predicted frame differs in size from its ground truth, or a prediction holds an id
that is not an object (not in ``1..K``). With dense annotation (the default) the prediction may
not hold frames the ground truth lacks, which catches a sparse ground truth scored without
``--sparse``; predictions of the first and last frames are not needed. Predictions are read by
:func:`remn.data.masks.read_mask` in either format (a 0/255 grey prediction is object 1).

Command line (remn/cli/score.py; both folders laid out as ``<sequence>/<frame>.png``, frames
matched by name)::

    remn score --gt DIR --pred DIR [--out DIR] [--split NAME] [--sequences FILE] [--sparse]
               [--format davis2016|davis2017]

prints the global table and writes the CSV files of :mod:`remn.evaluation.results` to
``--out`` (default: the prediction folder). Ground-truth warnings are printed as
``warning: ...`` lines. It exits with status 1 and one ``error:`` line on bad input (docs/errors.md).

Why one module of more than 600 lines: the protocol's rules (which objects, void, which frames
are scored, what is refused) must agree with each other and with davis2017-evaluation; kept
side by side they are checked against it in one reading.
"""

from __future__ import annotations

import os
import warnings
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
    DataWarning,
    list_files,
    natural_sorted,
    read_mask,
)
from remn.evaluation.metrics import frame_scores, object_statistics
from remn.evaluation.results import EvaluationResult, SequenceScore

__all__ = [
    "VOID_ID",
    "GT_FORMATS",
    "DEFAULT_GT_FORMAT",
    "MISSING_SEQUENCE",
    "MISSING_FRAME",
    "EXTRA_FRAMES",
    "TOO_FEW_FRAMES",
    "score_sequence",
    "score_folders",
    "read_sequence_list",
]

VOID_ID = 255
DAVIS2016 = "davis2016"
DAVIS2017 = "davis2017"
GT_FORMATS = (DAVIS2016, DAVIS2017)
"""Ground-truth formats, i.e. the rule that turns ground-truth values into objects."""
DEFAULT_GT_FORMAT = DAVIS2017

# DataError codes of this module (the others come from remn.data.masks)
MISSING_SEQUENCE = "missing-sequence"
MISSING_FRAME = "missing-frame"
EXTRA_FRAMES = "extra-frames"
TOO_FEW_FRAMES = "too-few-frames"

_LIST_LIMIT = 8  # names listed per sequence in an error message, values listed in a warning


def _check_format(gt_format: str) -> str:
    if gt_format not in GT_FORMATS:
        raise ValueError(f"gt_format must be one of {', '.join(GT_FORMATS)}, got {gt_format!r}")
    return gt_format


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
        raise DataError(
            BAD_LAYOUT,
            f"{what} must be a 2-D id map, got shape {labels.shape}; pass (H, W) arrays",
            None,
            f"{frame} of {sequence}",
        )
    return labels


def _objects(values: np.ndarray, rule: str) -> np.ndarray:
    """The ids that score, from ground-truth values as read: ``davis2016``: every non-zero pixel is
    object 1; ``davis2017``: the values, void (255) as background."""
    if rule == DAVIS2016:
        return (values != 0).astype(np.uint8)
    return np.where(values == VOID_ID, 0, values)


def _read_ground_truth(path: Path) -> tuple[np.ndarray, str]:
    """Values of a ground-truth file as the official code reads them (palette index or grey level)
    and the file's kind (:class:`remn.data.masks.MaskInfo`). ``read_mask`` turns a 0/255 grey mask
    into 0/1; its 255 is put back. Colour files are the ids ``read_mask`` gives their colours."""
    labels, info = read_mask(path, frame=path.stem, warn=False)
    return (labels * VOID_ID if info.kind == "binary" else labels), info.kind


# ---------------------------------------------------------------- ground-truth findings


def _value_counts(values: np.ndarray) -> dict:
    """{value: pixel count} of an array, values in increasing order."""
    flat = np.asarray(values).ravel()
    if flat.size == 0:
        return {}
    if flat.dtype == np.bool_:
        flat = flat.astype(np.uint8)
    if np.issubdtype(flat.dtype, np.integer) and flat.min() >= 0 and flat.max() < 1 << 16:
        counts = np.bincount(flat)
        present = np.flatnonzero(counts)
        return {int(v): int(counts[v]) for v in present}
    found, counts = np.unique(flat, return_counts=True)
    return {(int(v) if float(v).is_integer() else float(v)): int(n) for v, n in zip(found.tolist(), counts.tolist())}


def _kind_class(kind: str) -> str:
    return {"palette": "palette", "binary": "grey", "ids": "grey", "rgb": "colour"}.get(kind, kind)


def _number(count: int) -> str:
    return f"{count:,}"


@dataclass
class _Tally:
    """Where a value was seen: pixels and frames in all, and the first frame (in full and short)."""

    first: str
    first_short: str
    pixels: int = 0
    frames: int = 0


def _count(table: dict, key, pixels: int, where: tuple[str, str]) -> None:
    tally = table.setdefault(key, _Tally(*where))
    tally.pixels += pixels
    tally.frames += 1


def _value_list(table: dict) -> str:
    items = sorted(table.items(), key=lambda item: item[0])
    shown = ", ".join(f"{value} ({_number(tally.pixels)} px)" for value, tally in items[:_LIST_LIMIT])
    return shown + (f", ... ({len(items)} values in all)" if len(items) > _LIST_LIMIT else "")


def _ids_word(count: int) -> str:
    return "ids" if count > 1 else "id"


class _Audit:
    """What the ground truth of one sequence holds that its format does not expect, gathered over
    the frames read; :meth:`warn` gives one warning per finding.

    ``where`` names a frame twice: in full (the file, or ``frame X of SEQ``) to start a message,
    and short (the file name, or ``frame X``) to be named inside one.
    """

    def __init__(self, sequence: str, rule: str, first: np.ndarray, where: tuple[str, str], kind: str | None = None):
        self.sequence = sequence
        self.rule = rule
        self.first_where = where
        self.frames = 0
        self.odd: dict = {}  # davis2016: values other than 0/255; davis2017: values that are not objects
        self.odd_frames: list[tuple[str, str]] = []  # the frames holding odd values, in order
        self.late: dict = {}  # davis2017: ids missing from the first frame -> where they appear
        self.kinds: dict[str, _Tally] = {}
        counts = _value_counts(first)
        ids = [v for v in counts if v not in (0, VOID_ID)]
        self.num_objects = int(max(ids, default=0)) if rule == DAVIS2017 else 1
        self.missing = [k for k in range(1, self.num_objects + 1) if k not in counts] if rule == DAVIS2017 else []
        self.grey_void = counts if rule == DAVIS2017 and kind == "ids" and VOID_ID in counts else None
        self.add(first, where, kind, counts)

    def add(
        self, values: np.ndarray, where: tuple[str, str], kind: str | None = None, counts: dict | None = None
    ) -> None:
        counts = _value_counts(values) if counts is None else counts
        self.frames += 1
        if kind is not None:
            _count(self.kinds, _kind_class(kind), 0, where)
        odd_here = False
        if self.rule == DAVIS2016:
            present = set(counts) - {0}
            clean = present <= {VOID_ID} or present <= {1}  # 0/255 as in the files, or 0/1 as read_mask gives
            if not clean and kind != "rgb":
                for value in sorted(present - {VOID_ID}):
                    _count(self.odd, value, counts[value], where)
                odd_here = True
        else:
            for value, pixels in counts.items():
                if value in (0, VOID_ID):
                    continue
                if value in self.missing:
                    _count(self.late, value, pixels, where)
                elif not (isinstance(value, int) and 1 <= value <= self.num_objects):
                    _count(self.odd, value, pixels, where)
                    odd_here = True
        if odd_here:
            self.odd_frames.append(where)

    def messages(self) -> list[str]:
        out: list[str] = []
        read = self.frames
        first_short = self.first_where[1]
        if self.odd:
            first = self.odd_frames[0][0]
            frames = f"found in {len(self.odd_frames)} of {read} frames read (this is the first)"
        if self.odd and self.rule == DAVIS2016:
            out.append(
                f"{first}: DAVIS 2016 ground truth holds values other than 0 and 255: {_value_list(self.odd)}; "
                f"{frames}; read by the official DAVIS 2016 rule: every non-zero pixel is the object"
            )
        if self.odd and self.rule == DAVIS2017:
            known = f"1..{self.num_objects}" if self.num_objects > 1 else "1"
            verb = "are not objects" if len(self.odd) > 1 else "is not an object"
            out.append(
                f"{first}: {_ids_word(len(self.odd))} {_value_list(self.odd)} {verb} (the first annotated "
                f"frame, {first_short}, has {_ids_word(self.num_objects)} {known}); {frames}; scored as "
                "background, as davis2017-evaluation does (its objects are 1 to the largest id of the first "
                "annotated frame)"
            )
        if self.missing:
            parts = []
            for object_id in self.missing:
                tally = self.late.get(object_id)
                parts.append(
                    f"id {object_id}: {_number(tally.pixels)} px in {tally.frames} of {read} frames read, "
                    f"first {tally.first_short}"
                    if tally
                    else f"id {object_id}: in none of the {read} frames read"
                )
            ids = ", ".join(str(i) for i in self.missing)
            verb = "are" if len(self.missing) > 1 else "is"
            out.append(
                f"{self.first_where[0]}: {_ids_word(len(self.missing))} {ids} {verb} missing from this first "
                f"annotated frame, whose largest id is {self.num_objects}; davis2017-evaluation scores every id "
                f"1..{self.num_objects} all the same, against the ground truth of the other frames "
                f"({'; '.join(parts)}): J = F = 1 in each frame where ground truth and prediction are both "
                "empty"
            )
        if self.grey_void is not None:
            values = ", ".join(f"{v} ({_number(n)} px)" for v, n in self.grey_void.items() if v != 0)
            out.append(
                f"{self.first_where[0]}: grey ground truth with 255 in its first annotated frame (values "
                f"{values}): 255 read as davis2017 void (background), the other values as object ids; DAVIS "
                "2016 ground truth (0/255) needs --format davis2016 (gt_format='davis2016')"
            )
        if self.rule == DAVIS2017 and len(self.kinds) > 1:
            listing = ", ".join(
                f"{kind} in {tally.frames} (first {tally.first_short})" for kind, tally in self.kinds.items()
            )
            out.append(
                f"{self.first_where[0]}: ground-truth files of mixed kinds in sequence {self.sequence}: "
                f"{listing} of {read} frames read; each file is read by its own pixel values, as "
                "davis2017-evaluation does (palette index or grey level, 255 void)"
            )
        if self.rule == DAVIS2017 and "colour" in self.kinds:
            tally = self.kinds["colour"]
            out.append(
                f"{tally.first}: colour (RGB) ground truth in {tally.frames} of {read} frames read (this is "
                "the first), which davis2017-evaluation cannot read: colours read as ids, DAVIS palette colours "
                "as their index, other colours numbered in sorted colour order in each frame"
            )
        return out

    def warn(self) -> None:
        for message in self.messages():
            warnings.warn(message, DataWarning, stacklevel=3)


# ---------------------------------------------------------------- scoring


def _check_prediction(frame: _Frame, num_objects: int, sequence: str) -> None:
    where = f"{frame.name} of {sequence}"
    if frame.pred.shape != frame.gt.shape:
        raise DataError(
            SIZE_MISMATCH,
            f"prediction is {frame.pred.shape[1]}x{frame.pred.shape[0]} but the "
            f"ground truth is {frame.gt.shape[1]}x{frame.gt.shape[0]} (width x height); write the "
            "predictions at the size of the frames",
            frame.pred_path,
            where,
        )
    present = np.unique(frame.pred)
    unknown = [v for v in present.tolist() if v != 0 and not (1 <= v <= num_objects and v == int(v))]
    if unknown:
        known = f"1..{num_objects}" if num_objects > 1 else "1"
        shown = ", ".join(str(int(v) if v == int(v) else v) for v in unknown[:_LIST_LIMIT])
        raise DataError(
            UNKNOWN_OBJECT,
            f"predicted ids {shown} are not objects of the ground truth "
            f"(its first annotated frame has ids {known}); predictions must use the ground truth's ids "
            "(0 background); are --gt and --pred of the same dataset?",
            frame.pred_path,
            where,
        )


def _score(
    name: str, first_gt: np.ndarray, frames: Iterable[_Frame], positions: Sequence[int], first_path: Path | None = None
) -> SequenceScore:
    """Score the frames of one sequence; ``first_gt`` (ids that score: void removed) defines the objects
    (``first_path``: its file, for messages)."""
    num_objects = int(first_gt.max(initial=0))
    if num_objects <= 0:
        where = (first_path, None) if first_path is not None else (f"sequence {name}", None)
        raise DataError(
            EMPTY_FIRST_MASK,
            "the first annotated ground-truth frame has no object, so there is "
            "nothing to score; every object must be in the first annotated frame (is --gt the "
            "ground truth of these videos?)",
            *where,
        )
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
    return SequenceScore(
        name=name,
        object_ids=object_ids,
        frames=tuple(positions),
        frame_names=tuple(names),
        j=j,
        f=f,
        j_stats=tuple(object_statistics(row) for row in j),
        f_stats=tuple(object_statistics(row) for row in f),
    )


def _scored_positions(annotated_positions: Sequence[int], name: str, folder: Path | None = None) -> list[int]:
    if len(annotated_positions) < 3:
        where = (folder, None) if folder is not None else (f"sequence {name}", None)
        raise DataError(
            TOO_FEW_FRAMES,
            f"{len(annotated_positions)} annotated frame(s); at least 3 are needed "
            "because the first and last annotated frames are not scored; leave this sequence out "
            "(--sequences) or give its full ground truth",
            *where,
        )
    return list(annotated_positions[1:-1])


def score_sequence(
    gt_frames: Sequence[np.ndarray | None],
    pred_frames: Sequence[np.ndarray | None],
    annotated: Sequence[bool] | None = None,
    *,
    name: str = "sequence",
    frame_names: Sequence[str] | None = None,
    gt_format: str = DEFAULT_GT_FORMAT,
) -> SequenceScore:
    """Score one sequence given as arrays (e.g. predictions still in memory).

    ``gt_frames[i]`` and ``pred_frames[i]`` are (H, W) id maps of frame ``i``. Ground truth is
    read by the rule of ``gt_format``: ``davis2017``: ids, 255 is void; ``davis2016``: every
    non-zero pixel is object 1 (0/255 as in the files, or 0/1 as ``read_mask`` gives them).
    ``annotated[i]`` says whether frame ``i`` has ground truth (``None``: every frame). Only
    annotated frames other than the first and the last are scored; the other entries may be
    ``None``. ``name`` and ``frame_names`` are used in the result and in messages. Unexpected
    ground-truth values give a :class:`~remn.data.masks.DataWarning` (see the module doc).
    """
    _check_format(gt_format)
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
        raise DataError(
            MISSING_FRAME,
            "no ground truth for the first annotated frame; pass it, or mark the frame as not annotated",
            None,
            f"{labels[first_position]} of {name}",
        )
    first = _ids(gt_frames[first_position], "ground truth", name, labels[first_position])
    audit = _Audit(
        name, gt_format, first, (f"frame {labels[first_position]} of {name}", f"frame {labels[first_position]}")
    )

    def frames() -> Iterator[_Frame]:
        for position in scored:
            label = labels[position]
            if gt_frames[position] is None:
                raise DataError(
                    MISSING_FRAME,
                    "no ground truth for an annotated frame; pass it, or mark the frame as not annotated",
                    None,
                    f"{label} of {name}",
                )
            if pred_frames[position] is None:
                raise DataError(
                    MISSING_FRAME,
                    "no prediction for a scored frame; pass the prediction of every "
                    "annotated frame but the first and the last",
                    None,
                    f"{label} of {name}",
                )
            gt = _ids(gt_frames[position], "ground truth", name, label)
            audit.add(gt, (f"frame {label} of {name}", f"frame {label}"))
            yield _Frame(label, _objects(gt, gt_format), _ids(pred_frames[position], "prediction", name, label))

    score = _score(name, _objects(first, gt_format), frames(), scored)
    audit.warn()
    return score


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
            raise DataError(
                NAME_MISMATCH,
                f"two masks for frame {path.stem!r}: {by_name[path.stem].name} and "
                f"{path.name}; keep one mask file per frame",
                folder,
            )
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
    for root, what, option in ((gt_root, "ground-truth", "--gt"), (pred_root, "prediction", "--pred")):
        if not root.is_dir():
            raise DataError(
                BAD_LAYOUT, f"{what} folder not found; check {option} (a folder of <sequence>/<frame>.png)", root
            )
    if sequences is not None and not list(sequences):
        raise DataError(
            MISSING_SEQUENCE,
            "the list of sequences to score is empty; name at least one sequence (--sequences: one name per line)",
            gt_root,
        )
    names = list(sequences) if sequences is not None else _subfolders(gt_root)
    if not names:
        raise DataError(
            BAD_LAYOUT,
            "no sequence folders (expected <sequence>/<frame>.png); --gt must be the folder "
            "holding one folder of masks per sequence (e.g. DAVIS/2017/trainval/Annotations/480p)",
            gt_root,
        )
    not_in_gt = [n for n in names if not (gt_root / n).is_dir()]
    if not_in_gt:
        raise DataError(
            MISSING_SEQUENCE,
            f"sequences missing from the ground truth: {_listing(not_in_gt)}; check "
            "--gt, or leave them out of --sequences",
            gt_root,
        )
    not_predicted = [n for n in names if not (pred_root / n).is_dir()]
    if not_predicted:
        raise DataError(
            MISSING_SEQUENCE,
            f"sequences missing from the predictions: {_listing(not_predicted)}; "
            "predict them, or score the others with --sequences FILE",
            pred_root,
        )
    plans: list[_Plan] = []
    missing: list[str] = []
    extra: list[str] = []
    for name in names:
        gt_files = _mask_files(gt_root / name)
        pred_files = _mask_files(pred_root / name)
        if not gt_files:
            raise DataError(
                BAD_LAYOUT,
                f"no ground-truth masks ({', '.join(MASK_EXTENSIONS)}) in this folder; put the "
                "sequence's masks here (<frame>.png), or leave it out with --sequences",
                gt_root / name,
            )
        gt_names = list(gt_files)
        scored = _scored_positions(range(len(gt_names)), name, gt_root / name)
        absent = [gt_names[i] for i in scored if gt_names[i] not in pred_files]
        if absent:
            missing.append(f"{name}: {_listing(absent)}")
        if not sparse:
            unannotated = [n for n in pred_files if n not in gt_files]
            if unannotated:
                extra.append(f"{name}: {_listing(unannotated)}")
        plans.append(_Plan(name, list(gt_files.values()), pred_files))
    if missing:
        raise DataError(
            MISSING_FRAME,
            "predicted frames are missing (sequence: frames): "
            + "; ".join(missing)
            + "; predict every annotated frame, named like its ground truth (the first and last "
            "annotated frames are not needed)",
            pred_root,
        )
    if extra:
        raise DataError(
            EXTRA_FRAMES,
            "predicted frames have no ground truth (sequence: frames): "
            + "; ".join(extra)
            + ". If the ground truth annotates only some frames, pass --sparse "
            "(sparse=True)",
            gt_root,
        )
    return plans


def _score_plan(plan: _Plan, rule: str) -> SequenceScore:
    first_path = plan.gt_files[0]
    first, kind = _read_ground_truth(first_path)
    audit = _Audit(plan.name, rule, first, (str(first_path), first_path.name), kind)
    scored = _scored_positions(range(len(plan.gt_files)), plan.name, first_path.parent)

    def frames() -> Iterator[_Frame]:
        for position in scored:
            gt_path = plan.gt_files[position]
            gt, gt_kind = _read_ground_truth(gt_path)
            audit.add(gt, (str(gt_path), gt_path.name), gt_kind)
            pred_path = plan.pred_files[gt_path.stem]
            pred, _ = read_mask(pred_path, frame=gt_path.stem)
            yield _Frame(gt_path.stem, _objects(gt, rule), pred, pred_path)

    score = _score(plan.name, _objects(first, rule), frames(), scored, first_path)
    audit.warn()
    return score


def _rules(plans: Sequence[_Plan], gt_format: str, gt_root: Path) -> list[str]:
    """The rule of each sequence: the format's, except that with ``davis2017`` a sequence whose first
    annotated frame is a grey 0/255 mask is DAVIS 2016 ground truth (one warning names them all)."""
    if gt_format == DAVIS2016:
        return [DAVIS2016] * len(plans)
    rules = []
    for plan in plans:
        _, kind = _read_ground_truth(plan.gt_files[0])
        rules.append(DAVIS2016 if kind == "binary" else DAVIS2017)
    grey = [plan.name for plan, rule in zip(plans, rules) if rule == DAVIS2016]
    if grey:
        count = f"{len(grey)} of {len(plans)} sequences ({_listing(grey)})" if len(plans) > 1 else f"sequence {grey[0]}"
        warnings.warn(
            f"{gt_root}: grey 0/255 ground truth (DAVIS 2016) in {count}, which "
            "davis2017-evaluation cannot score (255 is its void, which leaves no object): read by the DAVIS "
            "2016 rule instead, every non-zero pixel is object 1; pass --format davis2016 "
            "(gt_format='davis2016') for DAVIS 2016 ground truth",
            DataWarning,
            stacklevel=3,
        )
    return rules


def score_folders(
    gt_root: str | os.PathLike,
    pred_root: str | os.PathLike,
    sequences: Sequence[str] | None = None,
    sparse: bool = False,
    progress: bool = True,
    gt_format: str = DEFAULT_GT_FORMAT,
) -> EvaluationResult:
    """Score ``pred_root/<seq>/<frame>.png`` against ``gt_root/<seq>/<frame>.png``.

    ``sequences``: the names to score (default: every folder of ``gt_root``, naturally sorted).
    ``sparse``: the ground truth annotates only some frames; the prediction may hold more.
    ``gt_format``: the rule that reads the ground truth, ``davis2017`` (default) or ``davis2016``
    (see the module doc); unexpected ground-truth values give a :class:`~remn.data.masks.DataWarning`.
    Every problem with the layout is reported before any scoring starts.
    """
    _check_format(gt_format)
    plans = _plan(Path(gt_root), Path(pred_root), sequences, sparse)
    rules = _rules(plans, gt_format, Path(gt_root))
    result = EvaluationResult()
    for plan, rule in tqdm(list(zip(plans, rules)), desc="scoring", unit="seq", disable=not progress):
        result.sequences.append(_score_plan(plan, rule))
    return result
