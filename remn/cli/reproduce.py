"""``remn reproduce`` (also ``python scripts/reproduce.py``): the paper's Tables I-IV in one command.

    remn reproduce --scale smoke|tiny|full --out DIR [--dry-run] [--gpus N] [--jobs N]
        [--davis ROOT --youtube ROOT --static ROOT --bl30k ROOT --long-time ROOT
         --davis-test-dev ROOT --youtube-valid ROOT] [--stcn-weights FILE] [--server-scores FILE] [key=value ...]

One plan of steps for every scale (remn/reproduce/plan.py): generated data (smoke, tiny), training,
evaluation of every row on its benchmarks, local scores where the data is generated, then
``DIR/tables.md``, ``DIR/results.json`` and the figures. Each step writes under ``DIR/<step>/`` and is
skipped once complete, so the same command continues a stopped run. ``--dry-run`` prints every
command and needs no data. ``key=value`` overrides go to every training and evaluation command.

Exit status: 0 done, 1 a step failed, an input is missing or ``DIR`` holds another run's step,
2 bad arguments or configuration, 130 Ctrl-C, 143 SIGTERM (docs/errors.md, docs/reproduce.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from .common import UsageError, parse_args, run_command

_ROOTS = (
    ("davis", "DAVIS 2017 trainval: training and davis2017-val (default ../DAVIS/2017/trainval)"),
    ("youtube", "YouTube-VOS train_480p: training (default ../YouTube/train_480p)"),
    ("static", "the static image sets: the static stage (default ../static)"),
    ("bl30k", "BL30K: STCN's stage 1, run when given or when the default ../BL30K exists"),
    ("long-time", "the long-time video set: long-time, long-time-x3 (default ../long_video_set)"),
    ("davis-test-dev", "DAVIS 2017 test-dev: davis2017-test-dev (default ../DAVIS/2017/test-dev)"),
    ("youtube-valid", "YouTube-VOS 2018: youtube2018-valid (default ../YouTube2018)"),
)


def build_parser(prog: str = "remn reproduce") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Reproduce the REMN paper's Tables I-IV: data, training, evaluation, tables.",
        epilog="Scales, steps, rows and outputs: docs/reproduce.md. key=value overrides (anywhere on the line) go to "
        "every training and evaluation command, e.g. runtime.precision=bf16.",
    )
    parser.add_argument(
        "--scale",
        required=True,
        metavar="smoke|tiny|full",
        help="configs/reproduce/<scale>.yaml, or a YAML file of that form",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (new, or an earlier run's to continue)")
    parser.add_argument("--dry-run", action="store_true", help="print every command of the plan; run nothing")
    parser.add_argument(
        "--gpus",
        type=int,
        default=1,
        help="GPUs for training: N > 1 launches it with torchrun --nproc_per_node (default 1)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="steps run at once when their inputs allow (default 1; more distorts the FPS figures)",
    )
    for name, text in _ROOTS:
        parser.add_argument(f"--{name}", metavar="ROOT", help=f"{text}; full scale only")
    parser.add_argument(
        "--stcn-weights",
        type=Path,
        metavar="FILE",
        help="STCN's released weights: an extra row, evaluated on every benchmark of the STCN row",
    )
    parser.add_argument(
        "--server-scores",
        type=Path,
        metavar="FILE",
        help="JSON or YAML of the evaluation servers' figures (test-dev, YouTube-VOS)",
    )
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides for every command")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = "remn reproduce") -> int:
    args = parse_args(build_parser(prog), None if argv is None else list(argv))
    return run_command(lambda: _reproduce(args), interrupted=lambda: _kept(args.out))


def _kept(out: Path) -> str:
    return (
        f"the steps finished so far are kept in {out}; give the same command again to continue (a stopped "
        "training step resumes from its checkpoint, an evaluation from its last video)"
    )


def _reproduce(args: argparse.Namespace) -> int:
    from ..reproduce.plan import PlanOptions, build_plan
    from ..reproduce.runner import claim_out, describe, run_plan
    from ..reproduce.scale import load_scale

    if args.gpus < 1 or args.jobs < 1:
        raise UsageError(f"--gpus {args.gpus} --jobs {args.jobs}: give at least 1 for each")
    scale = load_scale(args.scale)
    roots = {name.replace("-", "_"): getattr(args, name.replace("-", "_")) for name, _ in _ROOTS}
    given = [f"--{name}" for name, _ in _ROOTS if roots[name.replace("-", "_")] is not None]
    if given and scale.generated is not None:
        raise UsageError(
            f"{' '.join(given)}: dataset roots are for --scale full; scale {scale.name} generates its data"
        )
    for option, path in (("--stcn-weights", args.stcn_weights), ("--server-scores", args.server_scores)):
        if path is not None and not args.dry_run and not path.is_file():
            raise UsageError(f"{path}: file not found ({option})")
    out = args.out.expanduser().absolute()
    options = PlanOptions(
        scale=scale,
        out=out,
        gpus=args.gpus,
        roots=roots,
        stcn_weights=args.stcn_weights,
        server_scores=args.server_scores,
        overrides=list(args.overrides),
        python=sys.executable,
    )
    plan = build_plan(options)
    if args.dry_run:
        print("\n".join(describe(plan)))
        return 0
    inputs = [(f"--{name}", Path(value)) for name, value in roots.items() if value] + [
        ("--stcn-weights", args.stcn_weights),
        ("--server-scores", args.server_scores),
    ]
    claim_out(plan, inputs)
    summary = run_plan(plan, jobs=args.jobs)
    print(
        f"{len(summary.ran)} steps run, {len(summary.skipped)} skipped (already complete) in "
        f"{summary.seconds / 60:.1f} min; tables: {out / 'tables.md'}, figures and results.json beside it"
    )
    return 0
