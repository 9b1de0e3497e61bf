"""The ``remn`` command, one surface for every job::

    remn train|eval|segment|score|check|generate|benchmark|reproduce [options] [key=value ...]

Each subcommand is a thin module here (its options, then one call into the library) with the
same rules: ``--config`` by name or file, ``key=value`` overrides anywhere on the line, one
``error:`` line and a documented exit status for every expected failure (:mod:`.common`,
docs/errors.md). ``python -m remn`` is the same command; ``train.py`` and ``eval.py`` at the top
of the repository are shims for ``remn train`` and ``remn eval``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Sequence

from .common import (
    Terminated,
    UsageError,
    add_config_arguments,
    add_mask_repair_arguments,
    config_from_args,
    mask_repair_from_args,
    parse_args,
    run_command,
    split_overrides,
)

__all__ = [
    "main",
    "COMMANDS",
    "Terminated",
    "UsageError",
    "add_config_arguments",
    "add_mask_repair_arguments",
    "config_from_args",
    "mask_repair_from_args",
    "parse_args",
    "run_command",
    "split_overrides",
]

COMMANDS = {
    "train": ("remn.cli.train", "train REMN through its stages (one process, or several with torchrun)"),
    "eval": ("remn.cli.eval", "evaluate on a benchmark: masks, timing, J&F (configs/benchmarks.yaml)"),
    "segment": ("remn.cli.segment", "segment your own video or frame folder from a first mask"),
    "score": ("remn.cli.score", "score predicted masks against ground truth (DAVIS protocol)"),
    "check": ("remn.cli.check", "check a dataset folder before a long run"),
    "generate": ("remn.cli.generate", "write a procedurally generated dataset (DAVIS, YouTube-VOS, generic)"),
    "benchmark": ("remn.cli.benchmark", "speed and memory of REMN, STCN mode and the ablations (docs/benchmarks.md)"),
    "reproduce": ("remn.cli.reproduce", "reproduce the paper's Tables I-IV: data, training, evaluation, tables"),
}
"""Subcommand -> (module with ``main(argv) -> int``, one line of help)."""


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return (
        "usage: remn COMMAND [options] [key=value ...]\n\ncommands:\n"
        + "\n".join(lines)
        + "\n\n`remn COMMAND --help` shows a command's options; docs/errors.md its errors and exit statuses."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``remn COMMAND ...``; ``remn`` alone or ``--help`` lists the commands."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    name = argv[0]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; one of: {', '.join(COMMANDS)} (remn --help)", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return module.main(argv[1:])
