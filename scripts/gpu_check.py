"""Every GPU question in one command, for the few minutes a GPU is lent (docs/benchmarks.md, "GPU").

    python scripts/gpu_check.py --out DIR [--device cuda|cpu] [--tiny] [--only speed,train] [--budget 420]

Runs the checks of remn/benchmark/gpu_check/ one after the other, each in its own process under its own
time budget (a failure is recorded with its one-line error, the others still run): bf16 against
fp32, inference speed and memory (REMN, STCN mode, channels-last, CUDA graphs, torch.compile),
a profile of one frame step, a training run and a torchrun smoke run. Prints a summary table and
writes DIR/gpu_check.json (which checks passed) and DIR/benchmarks_rows.md (markdown rows with
the device's name, for docs/benchmarks.md). ``--tiny``: the same checks at CPU sizes (a rehearsal,
well under a minute). Exit status 0 when no check failed, 1 otherwise, 2 for a bad command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from remn.benchmark.gpu_check import CHECKS, make_settings, run_checks, summary_table  # noqa: E402
from remn.cli.common import UsageError, run_command  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scripts/gpu_check.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder for gpu_check.json, benchmarks_rows.md, "
        "profiles and logs (created; files of an earlier run there are replaced)",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when usable), cuda, cuda:N or cpu")
    parser.add_argument(
        "--tiny", action="store_true", help="tiny sizes, a few frames and iterations (a CPU rehearsal of every check)"
    )
    parser.add_argument(
        "--only", help=f"comma-separated checks to run, of {', '.join(CHECKS)} (a rerun of the failed ones)"
    )
    parser.add_argument(
        "--budget",
        type=float,
        help="seconds for all checks together (default 420; --tiny 300); "
        "a check that would start with too little left is skipped",
    )
    parser.add_argument("--checkpoint", help="REMN or STCN weights (default: random weights, said in the output)")
    parser.add_argument(
        "--spawn",
        action="store_true",
        help="a fresh Python per check instead of a fork of this "
        "process (taken on by itself when a forked process cannot use CUDA)",
    )
    parser.add_argument(
        "--compile-backend",
        choices=("inductor", "eager", "aot_eager"),
        help="torch.compile backend of the compile check (default inductor; --tiny: eager)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        only = None
        if args.only:
            only = [name.strip() for name in args.only.split(",") if name.strip()]
            unknown = sorted(set(only) - set(CHECKS))
            if unknown:
                raise UsageError(
                    f"--only names {', '.join(unknown)}, which are not checks; choose from {', '.join(CHECKS)}"
                )
        if args.checkpoint and not Path(args.checkpoint).is_file():
            raise UsageError(f"--checkpoint {args.checkpoint}: no such file")
        settings = make_settings(
            args.out,
            device=args.device,
            tiny=args.tiny,
            checkpoint=args.checkpoint,
            total_budget=args.budget,
            compile_backend=args.compile_backend,
        )
        report = run_checks(settings, only, spawn=args.spawn)
        print()
        print(summary_table(report))
        print(f"\nwrote {args.out / 'gpu_check.json'} and {args.out / 'benchmarks_rows.md'}")
        return 1 if report["failed"] else 0

    return run_command(body, interrupted="the results of the checks that finished are in --out")


if __name__ == "__main__":
    sys.exit(main())
