"""``remn train`` (also ``python train.py``): train REMN through one or more stages
(static, synthetic, main, rrm).

One process (CPU or one GPU)::

    remn train --config train/main [--run-name NAME] [key=value ...]

Several GPUs or nodes (each process takes GPU ``LOCAL_RANK``; the stage's batch size is the
global batch, split over the processes)::

    torchrun --nproc_per_node=4 train.py --config train/main

Start from weights with ``--load-weights stcn.pth`` (STCN's released files or a REMN ``.pth``);
continue a stopped run with ``--resume`` (same ``--config``/``--run-name``). Several stages in
one launch: ``train.stages=[static,main,rrm]``. The run goes to ``<train.run_dir>/<run name>``
(default ``runs/<config name>``).

Ctrl-C (SIGINT) or SIGTERM (a scheduler; torchrun passes both on to its processes) finishes the
current optimiser step, writes ``checkpoints/latest.pt`` and prints one line with the command that
continues the run; a second Ctrl-C stops at once, keeping the previous checkpoint.

Exit status: 0 done (or stopped by ``--stop-after``), 1 training error, 2 bad arguments or
configuration, 3 non-finite loss (the last good checkpoint is kept), 130 Ctrl-C, 143 SIGTERM
(docs/errors.md).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from .common import UsageError, add_config_arguments, config_from_args, parse_args, run_command


def build_parser(prog: str = "remn train") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train REMN. One process: remn train ...; several: torchrun --nproc_per_node=N train.py ...",
        epilog="Overrides anywhere on the line: e.g. train.stages=[static,main] train.main.iterations=1000 "
        "train.precision=fp32 memory.capacity=8. Every field is in docs/config.md.",
    )
    add_config_arguments(parser, default="train/main")
    parser.add_argument("--run-name", help="run folder name under train.run_dir (default: the config's name)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--load-weights",
        metavar="FILE",
        help="initial network weights: STCN's released .pth (FRM/RRM start at their "
        "initialisation and are reported) or a REMN weight file",
    )
    start.add_argument("--resume", action="store_true", help="continue the run from <run folder>/checkpoints/latest.pt")
    parser.add_argument(
        "--stop-after",
        type=int,
        metavar="N",
        help="stop after N iterations of this launch, saving a checkpoint (continue with --resume)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to train.log)")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "remn train") -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(build_parser(prog), words)
    command = [*prog.split(), *words]  # how the run was launched, for the resume command it prints
    return run_command(lambda: _train(args, command), interrupted="outside the training loop, no training was lost")


def _train(args: argparse.Namespace, command: list[str]) -> int:
    cfg = config_from_args(args)
    if args.stop_after is not None and args.stop_after < 1:
        raise UsageError(f"--stop-after {args.stop_after}: give a number of iterations of at least 1")
    if cfg.train.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before CUDA starts

    from ..training import Trainer, TrainingInterrupted, VideoDataSource
    from ..training.distributed import init_distributed, shutdown_distributed

    ctx = init_distributed(cfg.runtime.device)
    try:
        run_folder = Path(cfg.train.run_dir) / (args.run_name or cfg.name)
        trainer = Trainer(
            cfg,
            VideoDataSource(cfg),
            run_folder,
            ctx,
            resume=args.resume,
            load_weights=args.load_weights,
            progress=not args.no_progress,
            argv=command,
        )
        summary = trainer.run(stop_after=args.stop_after)
        if ctx.is_main and summary.finished:
            print(f"training finished: {summary.final_weights}")
        return 0
    except TrainingInterrupted as stop:  # SIGINT/SIGTERM in Trainer.run: it printed what was saved
        return stop.exit_code
    finally:
        shutdown_distributed(ctx)
