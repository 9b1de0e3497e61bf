"""Evaluation results: per-sequence scores, the global table, the CSV files and markdown tables.

Global figures are plain means over every object of every sequence (a sequence with three
objects weighs three times a sequence with one); ``J&F-Mean`` is ``(J-Mean + F-Mean) / 2``.

CSV files, in the layout of davis2017-evaluation (values are fractions in [0, 1], ``%.3f``,
comma-separated, one header line, ``\\n`` line ends, no index column):

* ``global_results-<split>.csv``: ``J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay``
  and one row of values;
* ``per-sequence_results-<split>.csv``: ``Sequence,J-Mean,F-Mean`` and one row per object,
  named ``<sequence>_<object id>``, in sequence order then id order.

Markdown tables in the paper's style (:func:`davis_table` for Table I, :func:`long_time_table`
for Table III) take rows of dicts whose scores are fractions, as the evaluator reports them, and
show them as percentages with one decimal; FPS is shown with one decimal; a missing value is
``-``. With ``highlight`` the best value of a column is bold and the second best underlined.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from remn.evaluation.metrics import Statistics

__all__ = [
    "GLOBAL_COLUMNS",
    "SEQUENCE_COLUMNS",
    "SequenceScore",
    "EvaluationResult",
    "write_csvs",
    "global_csv_name",
    "per_sequence_csv_name",
    "format_global_table",
    "davis_table",
    "long_time_table",
    "write_results_md",
]

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")


@dataclass
class SequenceScore:
    """Scores of one sequence: per-object, per-frame J and F and their statistics.

    ``j`` and ``f`` have shape (objects, scored frames); row ``i`` belongs to ``object_ids[i]``
    and column ``t`` to the input frame at position ``frames[t]`` (named ``frame_names[t]``).
    """

    name: str
    object_ids: tuple[int, ...]
    frames: tuple[int, ...]
    frame_names: tuple[str, ...]
    j: np.ndarray
    f: np.ndarray
    j_stats: tuple[Statistics, ...] = field(default=())
    f_stats: tuple[Statistics, ...] = field(default=())

    @property
    def num_objects(self) -> int:
        return len(self.object_ids)

    def object_names(self) -> list[str]:
        """``<sequence>_<id>`` for each object, the row names of the per-sequence CSV."""
        return [f"{self.name}_{object_id}" for object_id in self.object_ids]

    def j_mean(self) -> float:
        """J-Mean of this sequence alone (mean over its objects)."""
        return float(np.mean([s.mean for s in self.j_stats]))

    def f_mean(self) -> float:
        """F-Mean of this sequence alone (mean over its objects)."""
        return float(np.mean([s.mean for s in self.f_stats]))


@dataclass
class EvaluationResult:
    """Scores of a set of sequences; global figures average over all their objects."""

    sequences: list[SequenceScore] = field(default_factory=list)

    @property
    def num_objects(self) -> int:
        return sum(s.num_objects for s in self.sequences)

    def _per_object(self, measure: str, statistic: str) -> np.ndarray:
        return np.array(
            [
                getattr(stats, statistic)
                for sequence in self.sequences
                for stats in getattr(sequence, f"{measure}_stats")
            ],
            dtype=np.float64,
        )

    def global_table(self) -> dict[str, float]:
        """The global figures, keyed by :data:`GLOBAL_COLUMNS`, as fractions."""
        if self.num_objects == 0:
            raise ValueError("no objects were scored; there is no global table")
        table = {}
        for measure in ("j", "f"):
            for statistic, label in (("mean", "Mean"), ("recall", "Recall"), ("decay", "Decay")):
                table[f"{measure.upper()}-{label}"] = float(np.mean(self._per_object(measure, statistic)))
        table["J&F-Mean"] = (table["J-Mean"] + table["F-Mean"]) / 2.0
        return {column: table[column] for column in GLOBAL_COLUMNS}

    def per_sequence_rows(self) -> list[dict[str, Any]]:
        """One row per object: ``{"Sequence": "<seq>_<id>", "J-Mean": .., "F-Mean": ..}``."""
        rows = []
        for sequence in self.sequences:
            for name, j_stats, f_stats in zip(sequence.object_names(), sequence.j_stats, sequence.f_stats):
                rows.append({"Sequence": name, "J-Mean": j_stats.mean, "F-Mean": f_stats.mean})
        return rows


def global_csv_name(split: str) -> str:
    return f"global_results-{split}.csv"


def per_sequence_csv_name(split: str) -> str:
    return f"per-sequence_results-{split}.csv"


def _csv_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    value = float(value)
    return "" if math.isnan(value) else f"{value:.3f}"


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_csv_value(v) for v in row])


def write_csvs(result: EvaluationResult, out_dir: str | os.PathLike, split: str) -> tuple[Path, Path]:
    """Write ``global_results-<split>.csv`` and ``per-sequence_results-<split>.csv`` to ``out_dir``;
    return their paths (global first)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = result.global_table()
    global_path = out / global_csv_name(split)
    _write_csv(global_path, GLOBAL_COLUMNS, [[table[c] for c in GLOBAL_COLUMNS]])
    sequence_path = out / per_sequence_csv_name(split)
    _write_csv(
        sequence_path, SEQUENCE_COLUMNS, [[row[c] for c in SEQUENCE_COLUMNS] for row in result.per_sequence_rows()]
    )
    return global_path, sequence_path


def format_global_table(table: Mapping[str, float], title: str | None = None) -> str:
    """The global figures as an aligned text table (three decimals), under an optional title."""
    widths = [max(len(c), 6) for c in GLOBAL_COLUMNS]
    header = "  ".join(c.rjust(w) for c, w in zip(GLOBAL_COLUMNS, widths))
    values = "  ".join(_csv_value(table[c]).rjust(w) for c, w in zip(GLOBAL_COLUMNS, widths))
    lines = [header, values]
    if title:
        lines.insert(0, title)
    return "\n".join(lines)


# ---------------------------------------------------------------- markdown tables

_ALIASES = {"J&F": ("J&F", "J&F-Mean"), "J": ("J", "J-Mean"), "F": ("F", "F-Mean"), "FPS": ("FPS", "fps")}


def _lookup(row: Mapping[str, Any], key: str) -> float | None:
    for name in _ALIASES.get(key, (key,)):
        if name in row and row[name] is not None:
            value = float(row[name])
            return None if math.isnan(value) else value
    return None


def _cells(columns: list[list[float | None]], highlight: bool) -> list[list[str]]:
    """Format numeric columns (already in display units) with best bold, second best underlined."""
    formatted = []
    for column in columns:
        present = sorted({round(v, 1) for v in column if v is not None}, reverse=True)
        best = present[0] if highlight and len([v for v in column if v is not None]) > 1 else None
        second = present[1] if best is not None and len(present) > 1 else None
        cells = []
        for value in column:
            if value is None:
                cells.append("-")
                continue
            text = f"{value:.1f}"
            if best is not None and round(value, 1) == best:
                text = f"**{text}**"
            elif second is not None and round(value, 1) == second:
                text = f"<u>{text}</u>"
            cells.append(text)
        formatted.append(cells)
    return formatted


def _markdown(header: list[str], names: list[str], columns: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for index, name in enumerate(names):
        lines.append("| " + " | ".join([name] + [column[index] for column in columns]) + " |")
    return "\n".join(lines)


def davis_table(rows: Sequence[Mapping[str, Any]], highlight: bool = True) -> str:
    """Table I style: ``| Method | J&F | J | F | FPS |``.

    Each row has ``method`` and any of ``J&F``, ``J``, ``F`` (fractions; the global table's
    ``J&F-Mean``, ``J-Mean``, ``F-Mean`` are accepted too) and ``FPS``.
    """
    names = [str(row.get("method", "")) for row in rows]
    columns: list[list[float | None]] = []
    for key in ("J&F", "J", "F"):
        columns.append([None if (v := _lookup(row, key)) is None else 100.0 * v for row in rows])
    columns.append([_lookup(row, "FPS") for row in rows])
    return _markdown(["Method", "J&F", "J", "F", "FPS"], names, _cells(columns, highlight))


def long_time_table(rows: Sequence[Mapping[str, Any]], metric: str = "J&F", highlight: bool = True) -> str:
    """Table III style: the long-time set at its length (x1) and replayed three times (x3).

    Columns: ``<metric> x1``, ``FPS x1``, ``<metric> x3``, ``FPS x3`` and the differences
    ``x1->x3`` of both (x3 minus x1; the metric's in percentage points). Each row has ``method``
    and those four keys (the metric as a fraction). The paper's Table III header names J; pass
    ``metric="J"`` for that.
    """
    names = [str(row.get("method", "")) for row in rows]
    score_x1 = [None if (v := _lookup(row, f"{metric} x1")) is None else 100.0 * v for row in rows]
    score_x3 = [None if (v := _lookup(row, f"{metric} x3")) is None else 100.0 * v for row in rows]
    fps_x1 = [_lookup(row, "FPS x1") for row in rows]
    fps_x3 = [_lookup(row, "FPS x3") for row in rows]

    def difference(before: list[float | None], after: list[float | None]) -> list[float | None]:
        return [None if a is None or b is None else a - b for b, a in zip(before, after)]

    columns = [score_x1, fps_x1, score_x3, fps_x3, difference(score_x1, score_x3), difference(fps_x1, fps_x3)]
    header = [
        "Method",
        f"{metric} (x1)",
        "FPS (x1)",
        f"{metric} (x3)",
        "FPS (x3)",
        f"{metric} (x1->x3)",
        "FPS (x1->x3)",
    ]
    return _markdown(header, names, _cells(columns, highlight))


def write_results_md(
    path: str | os.PathLike,
    davis_rows: Sequence[Mapping[str, Any]] | None = None,
    long_time_rows: Sequence[Mapping[str, Any]] | None = None,
    title: str = "Results",
    long_time_metric: str = "J&F",
) -> Path:
    """Write a ``results.md`` with the tables that have rows; return its path."""
    parts = [f"# {title}", ""]
    if davis_rows:
        parts += ["## DAVIS (Table I style)", "", davis_table(davis_rows), ""]
    if long_time_rows:
        parts += ["## Long-time videos (Table III style)", "", long_time_table(long_time_rows, long_time_metric), ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts))
    return path
