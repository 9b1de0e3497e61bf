"""``remn segment``: your own video (a file or a folder of frames) and a first mask in, one mask
per frame and an overlay video out (remn/inference/own_video.py does the work).

    remn segment clip.mp4 --mask first.png --output out/ [--mask-at 120:fix.png] [--overlay]
        [--save-scores] [--checkpoint remn.pth] [--size 480] [--device auto|cpu|cuda] [key=value ...]

Exit status: 0 done, 1 bad input, weights or output folder, 2 bad arguments or configuration,
130 Ctrl-C, 143 SIGTERM (docs/errors.md); the earlier results in the output folder survive every
failure.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from .common import add_mask_repair_arguments, mask_repair_from_args, parse_args, run_command


def _parse_mask_at(text: str) -> tuple[int, Path]:
    frame, sep, file = text.partition(":")
    if not sep or not frame.strip().lstrip("-").isdigit() or not file:
        raise argparse.ArgumentTypeError(f"--mask-at wants FRAME:FILE (a frame index and a mask file), got {text!r}")
    return int(frame), Path(file)


def _positive_fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 10_000:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"--fps wants a positive frame rate such as 25 or 29.97, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remn segment", description="Segment your own video from a first mask.")
    parser.add_argument("input", type=Path, help="a video file (mp4, mov, avi, mkv, ...) or a folder of frames")
    parser.add_argument(
        "--mask", type=Path, help="mask of the first frame (palette, 0/255 or 0..K grey, or colour PNG)"
    )
    parser.add_argument(
        "--mask-at",
        type=_parse_mask_at,
        action="append",
        default=[],
        metavar="FRAME:FILE",
        help="a mask for a later frame (index from 0): adds or corrects objects; repeatable",
    )
    parser.add_argument("--output", type=Path, required=True, help="output folder")
    parser.add_argument("--checkpoint", type=Path, help="REMN or STCN weights (default: random weights, a warning)")
    parser.add_argument(
        "--config",
        default=None,
        help="YAML file, or a name in the project's configs/ folder (default remn: every module on)",
    )
    parser.add_argument("--size", type=int, default=None, help="processing size, shorter side (default 480; -1: as is)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default=None)
    parser.add_argument("--overlay", action="store_true", help="also write overlay.mp4 (H.264, plays in browsers)")
    parser.add_argument(
        "--fps", type=_positive_fps, default=None, help="overlay frame rate (default: the input's, or 25)"
    )
    parser.add_argument(
        "--save-scores",
        action="store_true",
        help="also write each frame's object probabilities, uint8, to scores/<frame>.npz (docs/segment.md)",
    )
    parser.add_argument("--resize-masks", action="store_true", help="scale masks of another size to the frames")
    add_mask_repair_arguments(parser)
    parser.add_argument(
        "--allow-truncated",
        action="store_true",
        help="segment the frames that decode from a video file cut short, with a warning",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier `remn segment` run's results in --output once this run has succeeded",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides anywhere on the line, e.g. memory.capacity=8",
    )
    return parser


def job_from_args(args: argparse.Namespace):
    """The :class:`~remn.inference.own_video.OwnVideoJob` the command line asks for."""
    from ..inference.own_video import OwnVideoJob

    overrides = list(args.overrides)
    if args.size is not None:
        overrides.append(f"inference.size={args.size}")
    if args.precision is not None:
        overrides.append(f"runtime.precision={args.precision}")
    masks = ([(0, args.mask)] if args.mask is not None else []) + list(args.mask_at)
    return OwnVideoJob(
        input=args.input,
        output=args.output,
        masks=masks,
        checkpoint=args.checkpoint,
        config=args.config,
        overrides=overrides,
        device=args.device,
        overlay=args.overlay,
        save_scores=args.save_scores,
        fps=args.fps,
        resize_masks=args.resize_masks,
        repair=mask_repair_from_args(args),
        allow_truncated=args.allow_truncated,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), None if argv is None else list(argv))

    def body() -> int:
        from ..inference.own_video import segment_own_video

        record = segment_own_video(job_from_args(args))
        print(
            f"{record['frames']} frames, objects {record['objects']}, {record['model_fps']:.2f} FPS (model) on "
            f"{record['device']}; masks in {args.output / 'masks'}"
            + (f", overlay {args.output / 'overlay.mp4'}" if record["overlay"] else "")
        )
        return 0

    return run_command(body, interrupted=f"no results were replaced; {args.output} is as it was")
