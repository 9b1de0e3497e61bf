"""``remn benchmark``: speed and memory of REMN against STCN mode and the single-module ablations
(Table III, Fig. 1(b)); remn/benchmark/ does the work, docs/benchmarks.md explains the settings.

One run measures, on the same machine and the same generated video, the FPS and peak memory
of every configuration at 1x and 3x video length, with 1 and 3 objects. Each measurement runs
in a fresh worker process (``python -m remn.benchmark.worker``), so that peak memory (process
RSS on CPU, the allocator's peak on CUDA) belongs to that configuration alone. Frames are
generated on the fly and put on the device before the timer starts (STCN's FPS protocol), and
the labels of every frame are copied to the host inside the timed step.

    remn benchmark                      # the suite; GPU setting on CUDA, CPU setting on CPU
    remn benchmark --quick              # a 2-minute smoke run
    remn benchmark --fast-paths         # gain and agreement of each inference fast path
    remn benchmark --bank               # memory-bank storage: preallocated vs concatenation
    remn benchmark --read               # one memory read: dense, gathered, chunked
    remn benchmark --profile            # which kernels take the time in one frame step
    remn benchmark --report runs/benchmark/benchmark.json [more.json]   # table and figures again

Settings: on a GPU, 2,000 and 6,000 frames at 854x480 under bf16. On a CPU, 400 and 1,200
frames at 288x160 under bf16 with channels-last, one thread per process, STCN's dense top-k read
(``inference.topk_gather=false``, as the paper measured STCN) and every fixed-interval write
(``memory.mem_every=1``), so that STCN's memory reaches the length it has after 6,000 frames at
its usual interval of 5. ``--set key=value`` changes any config field for every configuration.
``scripts/benchmark.py`` is the same command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from .common import run_command

DESCRIPTION = __doc__


def build_parser(prog: str = "remn benchmark") -> argparse.ArgumentParser:
    from ..benchmark.micro import FAST_PATHS
    from ..benchmark.suite import CONFIGS, REPO

    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )

    def ints(text: str) -> list[int]:
        return [int(v) for v in text.split(",") if v]

    def names(text: str) -> list[str]:
        chosen = [v for v in text.split(",") if v]
        unknown = sorted(set(chosen) - set(CONFIGS))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown configurations {unknown}; choose from {sorted(CONFIGS)}")
        return chosen

    parser.add_argument("--frames", type=int, help="frames of the 1x video (GPU: 2000, CPU: 400, --quick: 24)")
    parser.add_argument("--lengths", type=ints, default=[1, 3], help="video lengths as multiples of --frames")
    parser.add_argument("--height", type=int, help="frame height (GPU: 480, CPU: 160, --quick: 64)")
    parser.add_argument("--width", type=int, help="frame width (GPU: 854, CPU: 288, --quick: 112)")
    parser.add_argument(
        "--objects",
        type=ints,
        help="object counts, e.g. 1,3 (default on a GPU; on a CPU and with --quick: 1, see the docs)",
    )
    parser.add_argument(
        "--configs",
        type=names,
        help=f"comma-separated, from {', '.join(CONFIGS)} (default: "
        "remn,stcn,no_frm,no_asm,no_rrm; --quick and --fast-paths: remn,stcn)",
    )
    parser.add_argument("--checkpoint", help="trained weights (REMN or STCN); default: random weights")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="autocast (default: bf16; --quick: fp32)")
    parser.add_argument(
        "--threads", type=int, help="CPU threads per process (CPU setting: 1, see the docs; 0: torch's default)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override for every configuration (repeatable), e.g. inference.chunk_size=8192",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per measurement; FPS is their median")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames before each timed video")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated video")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "benchmark", help="folder for the JSON")
    parser.add_argument("--figures", type=Path, help="folder for the figures (suite; default docs/img, --quick: --out)")
    parser.add_argument(
        "--quick", action="store_true", help="a 2-minute smoke run (24/72 frames at 112x64, REMN and STCN, 1 object)"
    )
    parser.add_argument("--fast-paths", action="store_true", help="measure each inference fast path instead")
    parser.add_argument(
        "--variants",
        type=lambda t: [v.strip() for v in t.split(";") if v.strip()],
        help=f"fast-path variants, ';'-separated, from: {'; '.join(FAST_PATHS)}",
    )
    parser.add_argument("--chunk", type=int, default=8192, help="chunk_size of the chunked fast-path variant")
    parser.add_argument(
        "--agreement-frames",
        type=int,
        default=16,
        help="frames of the fixed-memory agreement run of each fast-path variant",
    )
    parser.add_argument(
        "--read",
        action="store_true",
        help="time one memory read (dense, gathered, chunked) at each memory length (--frames x --lengths)",
    )
    parser.add_argument("--read-repeats", type=int, default=3)
    parser.add_argument("--bank", action="store_true", help="compare the bank's storage with concatenation")
    parser.add_argument("--bank-writes", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="profile frame steps (kernels that take the time)")
    parser.add_argument("--profile-after", type=int, default=200, help="frames run before the profiled ones")
    parser.add_argument("--profile-rows", type=int, default=25)
    parser.add_argument(
        "--report",
        type=Path,
        nargs="+",
        help="print the table and draw the figures of saved "
        "benchmark.json files (their runs together) instead of measuring",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # the worker protocol: remn/benchmark/worker.py
    parser.add_argument("--read-worker", help=argparse.SUPPRESS)
    return parser


def _report_saved(args: argparse.Namespace) -> int:
    from ..benchmark.report import draw_figures, report

    saved = [json.loads(path.read_text()) for path in args.report]
    runs = [run for one in saved for run in one["runs"]]
    setting = dict(
        saved[0]["setting"],
        configs=list(dict.fromkeys(r["config"] for r in runs)),
        objects=sorted({r["objects"] for r in runs}),
    )
    result = report({"runs": runs, "setting": setting})
    figures = args.figures or args.report[0].parent
    draw_figures(
        result["summary"],
        result["runs"],
        result["setting"]["configs"],
        result["setting"]["objects"],
        figures,
        result["title"],
    )
    print(result["table"])
    print(f"\nfigures: {figures}")
    return 0


def _measure(args: argparse.Namespace) -> int:
    from ..benchmark import micro
    from ..benchmark.report import draw_figures, report
    from ..benchmark.suite import REPO, Options, resolve_setting, run_suite
    from ..runtime import resolve_device

    setting = resolve_setting(
        args.device,
        quick=args.quick,
        frames=args.frames,
        height=args.height,
        width=args.width,
        precision=args.precision,
        threads=args.threads,
    )
    if args.objects is None:
        cpu = resolve_device(args.device).type != "cuda"
        args.objects = [1] if args.quick or (cpu and not args.fast_paths) else [1, 3]
    options = Options(
        configs=args.configs,
        objects=args.objects,
        lengths=args.lengths,
        set=args.set,
        checkpoint=args.checkpoint,
        device=args.device,
        repeats=args.repeats,
        warmup=args.warmup,
        seed=args.seed,
        variants=args.variants,
        chunk=args.chunk,
        agreement_frames=args.agreement_frames,
        read_repeats=args.read_repeats,
        bank_writes=args.bank_writes,
        profile_after=args.profile_after,
        profile_rows=args.profile_rows,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    if args.fast_paths:
        result, name = micro.run_fast_paths(options, setting), "fast_paths.json"
    elif args.read:
        result, name = micro.run_read(options, setting), "read.json"
    elif args.bank:
        result, name = micro.run_bank(options, setting), "bank.json"
    elif args.profile:
        result, name = micro.run_profile(options, setting), "profile.json"
    else:
        result, name = report(run_suite(options, setting)), "benchmark.json"
        figures = args.figures or (args.out if args.quick else REPO / "docs" / "img")
        result["figures"] = [
            str(p)
            for p in draw_figures(
                result["summary"], result["runs"], args.configs, args.objects, figures, result["title"]
            )
        ]
    (args.out / name).write_text(json.dumps(result, indent=1))
    print(result["table"])
    if "wall_seconds" in result:
        print(
            f"\n{len(result['runs'])} runs in {result['wall_seconds'] / 60:.1f} min; JSON: {args.out / name}; "
            f"figures: {', '.join(result['figures'])}"
        )
    else:
        print(f"\nJSON: {args.out / name}")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "remn benchmark") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.worker or args.read_worker:
        from ..benchmark.worker import main as worker

        return worker(["--worker", args.worker] if args.worker else ["--read-worker", args.read_worker])
    if args.configs is None:
        args.configs = (
            ["remn", "stcn"] if args.quick or args.fast_paths else ["remn", "stcn", "no_frm", "no_asm", "no_rrm"]
        )

    def body() -> int:
        return _report_saved(args) if args.report else _measure(args)

    return run_command(body, interrupted="the runs measured so far were not saved")
