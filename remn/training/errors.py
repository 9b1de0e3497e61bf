"""What stops a training run with an error (``train.py`` prints it as one ``error:`` line).

:class:`TrainingError` covers what a run cannot go on with (its data, its run folder, what it
resumes); :class:`NonFiniteLossError` is the one with an exit status of its own. Bad data met in a
loader worker is :class:`remn.training.batches.DataLoadError`; weight files that do not fit raise
:class:`remn.model.checkpoint.CheckpointError`. An interruption is not an error:
:class:`remn.training.signals.TrainingInterrupted`.
"""

from __future__ import annotations

from ..errors import EXIT_NON_FINITE, REMNError

__all__ = ["TrainingError", "NonFiniteLossError"]


class TrainingError(REMNError, RuntimeError):
    """Training cannot go on (bad data, nothing to resume, a run folder in use...)."""


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite; the run stopped without saving that step (exit status 3)."""

    exit_status = EXIT_NON_FINITE
