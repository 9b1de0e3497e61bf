"""Score a YouTube-VOS-layout evaluation against the generator's ground truth, seen and unseen.

    python -m remn.reproduce.score_youtube --objects PREPARED --pred EVAL_OUTPUT --out DIR

``PREPARED`` is what ``python -m remn.reproduce.prepare youtube`` wrote: one ground-truth folder per
valid object (its listed frames from its first) and ``objects.json``. Each object's predicted masks
(``EVAL_OUTPUT/Annotations/<video>/<frame>.png`` equal to its id) are scored as a sequence of their
own by ``remn score`` (the DAVIS protocol: the first and last listed frames are not scored), then
averaged over the objects of the held-out shape ("unseen") and over the others ("seen"), as the
YouTube-VOS server averages over categories seen in training and not. ``DIR/youtube.json`` holds the
four means (fractions), G (their mean), the object counts and the per-object figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from remn.cli.common import UsageError, run_command
from remn.errors import REMNError
from remn.outputs import OutputFolder

__all__ = ["main"]

COMMAND = "remn reproduce score_youtube"
SPLIT = "youtube"


def _score(gt: Path, pred: Path, out: Path) -> dict[str, tuple[float, float]]:
    """``remn score`` over the per-object folders: sequence -> (J-Mean, F-Mean)."""
    from remn.cli.score import main as score

    words = ["--gt", str(gt), "--pred", str(pred), "--out", str(out), "--split", SPLIT, "--quiet"]
    status = score(words)  # prints its own error line
    if status != 0:
        raise REMNError(f"remn score {' '.join(words)} failed (exit status {status}); see the line above")
    scores = {}
    with open(out / f"per-sequence_results-{SPLIT}.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            sequence = row["Sequence"].rsplit("_", 1)[0]  # <video>_<id> scored as object 1: "<video>_<id>_1"
            scores[sequence] = (float(row["J-Mean"]), float(row["F-Mean"]))
    return scores


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remn.reproduce.score_youtube", description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=Path, required=True, help="output of `prepare youtube`")
    parser.add_argument("--pred", type=Path, required=True, help="output folder of `remn eval --benchmark youtube...`")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)

    def body() -> int:
        try:
            listing = json.loads((args.objects / "objects.json").read_text())
            objects = listing["objects"]
        except (OSError, ValueError, KeyError) as error:
            raise UsageError(f"{args.objects}: no objects.json of `prepare youtube` ({error})") from None
        annotations = args.pred / "Annotations"
        if not annotations.is_dir():
            raise UsageError(
                f"{args.pred}: no Annotations/ folder; give --pred the output of `remn eval` on a YouTube-VOS benchmark"
            )
        folder = OutputFolder.claim(
            args.out, COMMAND, overwrite=True, inputs=[("--objects", args.objects), ("--pred", args.pred)]
        )
        staging = folder.stage()
        try:
            predicted = staging / "objects"
            for sequence, entry in objects.items():
                for frame in entry["frames"]:
                    path = annotations / entry["video"] / f"{frame}.png"
                    if not path.is_file():
                        raise REMNError(f"{path}: missing; the evaluation wrote no mask for this listed frame")
                    with Image.open(path) as image:
                        mask = np.array(image) == entry["id"]
                    target = predicted / sequence / f"{frame}.png"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(mask.astype(np.uint8), mode="L").save(target)
            scores = _score(args.objects / "objects", predicted, staging)
            shutil.rmtree(predicted)
            groups = {
                "seen": [s for s, e in objects.items() if not e["unseen"]],
                "unseen": [s for s, e in objects.items() if e["unseen"]],
            }
            summary: dict = {
                "split": "seen = objects of shapes in training, unseen = the held-out shape "
                f"{listing.get('unseen_shape')!r}; fractions"
            }
            for group, names in groups.items():
                summary[f"{group}_j"] = float(np.mean([scores[n][0] for n in names])) if names else None
                summary[f"{group}_f"] = float(np.mean([scores[n][1] for n in names])) if names else None
                summary[f"{group}_objects"] = len(names)
            parts = [summary[k] for k in ("seen_j", "seen_f", "unseen_j", "unseen_f")]
            summary["g"] = float(np.mean(parts)) if None not in parts else None
            summary["left_out"] = listing.get("skipped", {})
            summary["objects"] = {
                n: {"j": scores[n][0], "f": scores[n][1], "unseen": objects[n]["unseen"]} for n in objects
            }
            (staging / "youtube.json").write_text(json.dumps(summary, indent=1) + "\n")
        except BaseException:
            folder.discard()
            raise
        folder.commit()
        shown = "  ".join(
            f"{k} {summary[k]:.3f}" for k in ("seen_j", "seen_f", "unseen_j", "unseen_f", "g") if summary[k] is not None
        )
        print(f"{len(objects)} objects ({summary['seen_objects']} seen, {summary['unseen_objects']} unseen): {shown}")
        return 0

    return run_command(body, interrupted=f"{args.out} is as it was")


if __name__ == "__main__":
    sys.exit(main())
