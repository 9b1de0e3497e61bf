"""Scoring segmentations with the DAVIS 2017 semi-supervised protocol (J, F, J&F).

* :mod:`remn.evaluation.metrics`: per-frame J and F of one object, per-object Mean/Recall/Decay;
* :mod:`remn.evaluation.score`: the protocol around them (objects, void, scored frames),
  :func:`score_sequence` for arrays, :func:`score_folders` for folders (the command is
  ``remn score``, remn/cli/score.py);
* :mod:`remn.evaluation.results`: results, the global table, CSV files as davis2017-evaluation
  writes them, markdown tables in the paper's style.

The scoring functions are imported on first use: importing the package does not load OpenCV.
"""

from __future__ import annotations

from typing import Any

from remn.evaluation.metrics import (
    FrameScore,
    Statistics,
    boundary_f,
    boundary_tolerance,
    frame_scores,
    jaccard,
    object_statistics,
)
from remn.evaluation.results import (
    GLOBAL_COLUMNS,
    SEQUENCE_COLUMNS,
    EvaluationResult,
    SequenceScore,
    davis_table,
    format_global_table,
    long_time_table,
    write_csvs,
    write_results_md,
)

__all__ = [
    "FrameScore",
    "Statistics",
    "boundary_f",
    "boundary_tolerance",
    "frame_scores",
    "jaccard",
    "object_statistics",
    "GLOBAL_COLUMNS",
    "SEQUENCE_COLUMNS",
    "EvaluationResult",
    "SequenceScore",
    "davis_table",
    "format_global_table",
    "long_time_table",
    "write_csvs",
    "write_results_md",
    "score_sequence",
    "score_folders",
]

_FROM_SCORE = ("score_sequence", "score_folders")


def __getattr__(name: str) -> Any:
    if name in _FROM_SCORE:
        from remn.evaluation import score

        return getattr(score, name)
    raise AttributeError(f"module 'remn.evaluation' has no attribute {name!r}")
