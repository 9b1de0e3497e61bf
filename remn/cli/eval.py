"""``remn eval`` (also ``python eval.py``): evaluate REMN on a benchmark.

    remn eval --benchmark davis2017-val --data-root ../DAVIS/2017/trainval --output out/d17 \
        [--config remn] [--checkpoint FILE] [--subset FILE] [--overwrite] [--save-scores] [key=value ...]

Benchmarks are entries of configs/benchmarks.yaml (docs/evaluation.md lists them with their
protocols). Writes masks in the benchmark's layout, timing.json, and with ground truth the
davis2017-evaluation CSVs and results.md; server benchmarks also get their zip. The run is built
under OUTPUT/.remn-staging/ and replaces earlier results only once it has succeeded; a stopped
run continues where it stopped when the same command is given again.

Exit status: 0 done, 1 bad data, weights or output folder, 2 bad arguments or configuration,
130 Ctrl-C, 143 SIGTERM (docs/errors.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from .common import (
    UsageError,
    add_config_arguments,
    add_mask_repair_arguments,
    mask_repair_from_args,
    parse_args,
    run_command,
)


def build_parser(prog: str = "remn eval") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Evaluate REMN on a benchmark (configs/benchmarks.yaml).",
        epilog="key=value overrides may come anywhere on the line.",
    )
    parser.add_argument(
        "--benchmark",
        required=True,
        help="davis2016-val, davis2017-val, davis2017-test-dev, "
        "youtube2018-valid, youtube2019-valid, long-time, long-time-x3, mose-valid, lvos-valid, "
        "lvos-test, generic",
    )
    parser.add_argument("--data-root", help="dataset folder (default: the benchmark's data_root)")
    parser.add_argument("--output", required=True, help="output folder (new, empty, or an earlier eval output)")
    parser.add_argument(
        "--checkpoint",
        help="REMN or STCN weights; without it the network is random (only useful for checking the pipeline)",
    )
    parser.add_argument("--subset", type=Path, help="text file with one video name per line")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier evaluation in --output once this run has succeeded"
    )
    parser.add_argument("--gt", type=Path, help="ground truth folder <video>/<frame>.png (default: the benchmark's)")
    parser.add_argument("--no-score", action="store_true", help="do not score even if ground truth exists")
    parser.add_argument(
        "--save-scores",
        action="store_true",
        help="also write each frame's object probabilities, uint8, to scores/<video>/<frame>.npz (docs/evaluation.md)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_mask_repair_arguments(parser)
    add_config_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "remn eval") -> int:
    args = parse_args(build_parser(prog), None if argv is None else list(argv))
    return run_command(lambda: _evaluate(args), interrupted=lambda: _kept(Path(args.output)))


def _kept(output: Path) -> str:
    from ..outputs import STAGING

    if not (output / STAGING).is_dir():
        return "no results were replaced"
    return (
        f"no results were replaced; the videos finished so far are kept in {output / STAGING}: give the same "
        "command again to continue"
    )


def _evaluate(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..evaluation.benchmarks import get_benchmark
    from ..evaluation.run import run_benchmark
    from ..inference.build import build_core

    spec = get_benchmark(args.benchmark)
    cfg = load_config(args.config, [*spec.protocol, *args.overrides])
    data_root = args.data_root or spec.data_root
    if not data_root:
        raise UsageError(
            f"benchmark {spec.name!r} has no default data root; pass --data-root (the dataset "
            "folder, laid out as docs/data.md describes)"
        )
    subset = None
    if args.subset is not None:
        if not args.subset.is_file():
            raise UsageError(
                f"{args.subset}: subset file not found (--subset wants a text file with one video name per line)"
            )
        subset = [line.strip() for line in args.subset.read_text().splitlines() if line.strip()]
        if not subset:
            raise UsageError(
                f"{args.subset}: the subset file names no video (--subset wants a text file with one "
                "video name per line)"
            )
    core, weights = build_core(cfg, args.checkpoint)
    if args.checkpoint:
        print(weights)
    else:
        print("warning: no --checkpoint, the network has random weights", file=sys.stderr)
    run = run_benchmark(
        core.model,
        cfg,
        spec,
        data_root,
        args.output,
        checkpoint=args.checkpoint,
        subset=subset,
        overwrite=args.overwrite,
        device=core.device,
        score=not args.no_score,
        gt_root=args.gt,
        progress=not args.quiet,
        subset_file=args.subset,
        mask_repair=mask_repair_from_args(args),
        save_scores=args.save_scores,
    )
    timing = run.timing
    print(
        f"{spec.name}: {timing['frames']} frames of {len(run.videos)} videos, "
        f"{timing['fps']:.2f} FPS on {timing['device']} ({timing['precision']}), "
        f"peak memory {timing['peak_memory_bytes'] / 2**20:.0f} MiB"
    )
    if run.scores:
        print("  ".join(f"{k} {v:.3f}" for k, v in run.scores.items()))
    if run.zip_path:
        print(f"submission: {run.zip_path}")
    print(f"outputs in {run.output}")
    return 0
