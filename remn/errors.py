"""The base of every expected failure, and the exit status a command ends with for it.

Each error class of the project (``ConfigError``, ``DataError``, ``CheckpointError``,
``OutputError``, ``TrainingError``, ...) derives from :class:`REMNError` and names its exit status;
:func:`remn.cli.run_command` prints the message as one ``error:`` line and exits with it.
Anything that is not a :class:`REMNError` (or an ``OSError`` such as a full disk) is a bug and
keeps its traceback. docs/errors.md lists every message and its fix.
"""

from __future__ import annotations

__all__ = ["REMNError", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_NON_FINITE", "EXIT_SIGINT", "EXIT_SIGTERM"]

EXIT_OK = 0
EXIT_FAILED = 1
"""The input data, a weight file, the output folder or the run failed."""
EXIT_USAGE = 2
"""A bad command line or configuration."""
EXIT_NON_FINITE = 3
"""Training: the loss became non-finite."""
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class REMNError(Exception):
    """An expected failure; the message names the file or setting, the problem and the fix."""

    exit_status: int = EXIT_FAILED
