"""``remn generate``: write a procedurally generated VOS dataset (remn/data/synthetic/ does the work).

    remn generate OUT --videos 50 --frames 30 --size 256 256 --layout davis|youtube|generic [--seed 0]

The folder is written staged and swapped in only when complete (remn/outputs.py); ``--overwrite``
replaces only a dataset this generator wrote. Exit statuses: docs/errors.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from ..data.synthetic import LAYOUTS, MANIFEST_NAME, GenerationError, layout_spec, write_dataset
from .common import UsageError, run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="remn generate",
        description="Write a procedurally generated VOS dataset in the DAVIS 2017, YouTube-VOS 2019 or a "
        "generic layout. Options left out take the layout's defaults.",
    )
    parser.add_argument(
        "out",
        type=Path,
        metavar="OUT",
        help="output folder (new or empty; or a dataset this generator wrote, with --overwrite)",
    )
    parser.add_argument("--videos", type=int, default=50)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=(256, 256))
    parser.add_argument("--layout", choices=LAYOUTS, default="davis")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: the CPU cores, at most 8)")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--objects", type=int, nargs=2, metavar=("MIN", "MAX"), default=None)
    parser.add_argument("--distractors", type=int, nargs=2, metavar=("MIN", "MAX"), default=None)
    parser.add_argument("--enter-late", type=float, default=None, help="probability an object appears after frame 0")
    parser.add_argument("--leave", type=float, default=None, help="probability an object leaves and comes back")
    parser.add_argument("--speed", type=float, default=None, help="pixels per frame at a 256-pixel shorter side")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a dataset this generator wrote before, once the new one is complete",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _describe(root: Path, layout: str, manifest: dict) -> list[str]:
    videos = manifest["videos"]
    splits = {s: sum(1 for v in videos.values() if v["split"] == s) for s in ("train", "val", "all")}
    if layout == "davis":
        return [
            f"  {root / 'JPEGImages/480p'}/<video>/00000.jpg ... (every frame)",
            f"  {root / 'Annotations/480p'}/<video>/00000.png ... (every frame)",
            f"  {root / 'ImageSets/2017'}/train.txt ({splits['train']} videos), val.txt ({splits['val']} videos)",
        ]
    if layout == "youtube":
        return [
            f"  {root / 'train'}/{{JPEGImages,Annotations}}/<video>/ every 5th frame, meta.json "
            f"({splits['train']} videos)",
            f"  {root / 'valid'}/JPEGImages/<video>/ every 5th frame, Annotations/ at first appearances, "
            f"meta.json ({splits['val']} videos)",
            f"  {root / 'all_frames/valid_all_frames/JPEGImages'}/<video>/ every frame",
            f"  {root / 'valid_gt/Annotations'}/<video>/ full ground truth of every valid frame "
            "(generator only, not part of YouTube-VOS)",
        ]
    return [
        f"  {root / 'JPEGImages'}/<video>/frame_1.jpg ... ({splits['all']} videos)",
        f"  {root / 'Annotations'}/<video>/ masks where objects first appear",
        f"  {root / 'GroundTruth'}/<video>/ full ground truth of every frame",
    ]


_OPTION_NAMES = (
    ("SyntheticSpec.height and .width", "--size H W"),
    ("val_fraction", "--val-fraction"),
    ("videos must", "--videos must"),
    ("SyntheticSpec.enter_late", "--enter-late"),
    ("SyntheticSpec.", "--"),
)


def _in_option_names(message: str) -> str:
    """A message about the generator's settings in the words of its command line."""
    for field_name, option in _OPTION_NAMES:
        message = message.replace(field_name, option)
    return message


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        changes = {"frames": args.frames, "height": args.size[0], "width": args.size[1]}
        for name in ("objects", "distractors", "enter_late", "leave", "speed"):
            value = getattr(args, name)
            if value is not None:
                changes[name] = tuple(value) if isinstance(value, list) else value
        if args.layout == "davis" and args.enter_late:
            print("note: the davis layout puts every object in frame 0; --enter-late is ignored", file=sys.stderr)
        try:
            spec = layout_spec(args.layout, **changes)
            manifest = write_dataset(
                args.out,
                layout=args.layout,
                videos=args.videos,
                spec=spec,
                seed=args.seed,
                val_fraction=args.val_fraction,
                workers=args.workers,
                overwrite=args.overwrite,
                progress=not args.quiet,
            )
        except GenerationError:
            raise
        except ValueError as error:
            raise UsageError(_in_option_names(str(error))) from None
        print(
            f"wrote {len(manifest['videos'])} videos, {manifest['frames']} frames of {spec.height}x{spec.width} "
            f"({args.layout} layout, seed {args.seed}, {manifest['workers']} workers) to {args.out}:"
        )
        for line in _describe(args.out, args.layout, manifest):
            print(line)
        print(f"  {args.out / MANIFEST_NAME} (manifest: ids, first frames, frames out of view)")
        print(f"took {manifest['seconds']:.2f} s")
        return 0

    return run_command(body, interrupted=f"no dataset was replaced; {args.out} is as it was")
