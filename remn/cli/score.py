"""``remn score``: score predicted masks against ground truth with the DAVIS semi-supervised
protocol (remn/evaluation/score.py does the work), write davis2017-evaluation's CSV files and
``report.html`` (remn/evaluation/report.py) beside them.

    remn score --gt DIR --pred DIR [--out DIR] [--split NAME] [--sequences FILE] [--sparse]
               [--format davis2016|davis2017] [--lvos-meta FILE] [--images DIR]

``--lvos-meta`` scores by the LVOS protocol instead (remn/evaluation/lvos.py): each object on the
frames of its range in LVOS's ``<split>_meta.json``.

Exit status: 0 done, 1 bad ground truth or predictions, 2 bad arguments (docs/errors.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from ..evaluation.score import DEFAULT_GT_FORMAT, GT_FORMATS
from .common import UsageError, run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="remn score", description="Score predicted masks with the DAVIS semi-supervised protocol."
    )
    parser.add_argument("--gt", required=True, help="ground-truth folder: <sequence>/<frame>.png")
    parser.add_argument("--pred", required=True, help="prediction folder: <sequence>/<frame>.png")
    parser.add_argument("--out", help="folder for the CSV files (default: the prediction folder)")
    parser.add_argument("--split", default="val", help="name in the CSV file names (default: val)")
    parser.add_argument(
        "--sequences", help="file listing the sequences to score, one per line (default: every folder of --gt)"
    )
    parser.add_argument(
        "--sparse", action="store_true", help="the ground truth annotates only some frames (long-time video set)"
    )
    parser.add_argument(
        "--format",
        dest="gt_format",
        choices=GT_FORMATS,
        default=DEFAULT_GT_FORMAT,
        help="how the ground truth is read: davis2017 (ids, 255 void, objects 1..the largest id of the "
        "first annotated frame; default) or davis2016 (0/255 masks, every non-zero pixel is the "
        "object)",
    )
    parser.add_argument(
        "--lvos-meta",
        help="LVOS <split>_meta.json: score each object on the frames of its "
        "frame_range (the LVOS protocol) instead of the DAVIS one",
    )
    parser.add_argument(
        "--images",
        help="frames <sequence>/<frame>.jpg for the report's thumbnails (default: the masks are drawn on grey)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ..evaluation.report import write_report
    from ..evaluation.results import format_global_table, write_csvs
    from ..evaluation.score import read_sequence_list, score_folders

    args = build_parser().parse_args(argv)

    def body() -> int:
        if args.sequences and not Path(args.sequences).is_file():
            raise UsageError(
                f"{args.sequences}: sequence list not found (--sequences wants a text file with one "
                "sequence name per line)"
            )
        if args.images and not Path(args.images).is_dir():
            raise UsageError(
                f"{args.images}: frame folder not found (--images wants a folder of <sequence>/<frame>.jpg)"
            )
        if args.lvos_meta and not Path(args.lvos_meta).is_file():
            raise UsageError(
                f"{args.lvos_meta}: LVOS meta file not found (--lvos-meta wants the split's "
                "<split>_meta.json, e.g. LVOS/valid/valid_meta.json)"
            )
        if args.lvos_meta and args.sparse:
            raise UsageError(
                "--sparse and --lvos-meta do not go together: the LVOS meta file says which frames are scored"
            )
        sequences = read_sequence_list(args.sequences) if args.sequences else None
        if args.lvos_meta:
            from ..data.vos import read_lvos_meta
            from ..evaluation.lvos import score_object_ranges

            result = score_object_ranges(
                args.gt, args.pred, read_lvos_meta(args.lvos_meta), sequences=sequences, progress=not args.quiet
            )
        else:
            result = score_folders(
                args.gt,
                args.pred,
                sequences=sequences,
                sparse=args.sparse,
                progress=not args.quiet,
                gt_format=args.gt_format,
            )
        out_dir = Path(args.out) if args.out else Path(args.pred)
        report = write_report(
            out_dir,
            result,
            title=f"remn score: {args.split}",
            gt_root=args.gt,
            pred_root=args.pred,
            images=args.images,
            gt_format=args.gt_format,
            summary={
                "protocol": "LVOS (each object on its frame range)"
                if args.lvos_meta
                else f"DAVIS ({args.gt_format} ground truth)",
                "ground truth": args.gt,
                "predictions": args.pred,
            },
        )  # first: a user's report.html in the way is refused before anything is written
        global_path, sequence_path = write_csvs(result, out_dir, args.split)
        title = f"Global results for {args.split} ({result.num_objects} objects in {len(result.sequences)} sequences)"
        print(format_global_table(result.global_table(), title))
        print(f"wrote {global_path}, {sequence_path} and {report}")
        return 0

    return run_command(body, interrupted="no scores were written")
