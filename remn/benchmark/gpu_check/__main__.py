"""``python -m remn.benchmark.gpu_check --worker NAME --spec work/spec.json [--deadline T]``: one check in a
fresh process: the process torchrun starts in the torchrun check (``torchrun_rank``), and every
check under ``--spawn`` (remn/benchmark/gpu_check/run.py forks them otherwise)."""

import argparse
import sys
import time
from pathlib import Path

from remn.benchmark.gpu_check.settings import Settings
from remn.benchmark.gpu_check.training_checks import run_rank
from remn.benchmark.gpu_check.workers import WORKERS, worker_main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m remn.benchmark.gpu_check",
        description="one check of scripts/gpu_check.py, in this process (run by it)",
    )
    parser.add_argument("--worker", required=True, choices=[*WORKERS, "torchrun_rank"])
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--deadline", type=float, default=None, help="time.time() by which the check ends")
    args = parser.parse_args()
    if args.worker == "torchrun_rank":
        sys.exit(run_rank(args.spec))
    sys.exit(worker_main(args.worker, Settings.load(args.spec), args.deadline or time.time() + 3600))
