"""``remn check``: read a dataset the way evaluation and training will, before a long run fails
on it (remn/data/check.py does the work).

    remn check ROOT --layout davis|youtube|generic|long-time [--split val] [--max-objects N] [--quick]

Prints what it found and every problem with its file. Exit status: 0 no problem, 1 problems
found (each listed), 2 bad arguments (docs/errors.md). It writes nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from .common import run_command


def build_parser() -> argparse.ArgumentParser:
    from ..data.check import LAYOUTS

    parser = argparse.ArgumentParser(prog="remn check", description="Check a dataset folder before a long run.")
    parser.add_argument("root", type=Path, help="dataset root")
    parser.add_argument("--layout", required=True, choices=LAYOUTS)
    parser.add_argument("--split", default=None, help="DAVIS: val/train/test-dev list; YouTube-VOS: valid/test")
    parser.add_argument("--max-objects", type=int, default=None, help="refuse masks with more objects")
    parser.add_argument("--quick", action="store_true", help="read frame headers only, do not decode frames")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        from ..data.check import check_dataset

        report = check_dataset(args.root, args.layout, args.split, args.max_objects, args.quick)
        print(report.summary())
        return 1 if report.all_problems else 0

    return run_command(body, interrupted="nothing was written (the checker only reads)")
