"""Generated datasets (``remn generate``) put in the layouts the benchmarks and training stages read.

    python -m remn.reproduce.prepare static    --src DAVIS-LAYOUT --unseen-shape blob --out DIR
    python -m remn.reproduce.prepare test-dev  --src DAVIS-LAYOUT --out DIR
    python -m remn.reproduce.prepare long-time --src DAVIS-LAYOUT --every 20 --out DIR
    python -m remn.reproduce.prepare youtube   --src YOUTUBE-LAYOUT --unseen-shape blob --out DIR
    python -m remn.reproduce.prepare subsets   --davis DAVIS-SET --youtube YOUTUBE-SET --unseen-shape blob --out DIR

* ``static``: each video's first frame with one object (the largest not of the held-out shape) as a
  flat ``DUTS-TR/<name>.jpg`` + ``<name>.png`` (0/255) set, the layout of the static stage;
* ``test-dev``: ``JPEGImages/480p``, the first mask of each video only, ``ImageSets/2017/test-dev.txt``
  (the ground truth stays in the source, for local scoring);
* ``long-time``: ``JPEGImages/<video>/`` and ``Annotations/<video>/`` with the masks of every n-th
  frame and of the last (sparse, as the long-time set is annotated);
* ``youtube``: the valid objects of a YouTube-VOS-layout set, one ground-truth folder
  ``objects/<video>_<id>/`` (0/1 masks of the listed frames from the object's first) per object,
  and ``objects.json`` saying which are "unseen" (of the held-out shape);
* ``subsets``: ``davis-train.txt`` and ``youtube-train.txt``, the training videos without any object of
  the held-out shape (``data.davis_subset``, ``data.youtube_subset``).

Each reads the source's ``synthetic.json`` (the generator's manifest: splits, ids, categories, look-alike
counts) and writes its output staged (remn/outputs.py). Exit statuses as every command (docs/errors.md).
"""

from __future__ import annotations

import argparse
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

__all__ = ["main", "read_manifest"]

COMMAND = "remn reproduce prepare"


def read_manifest(root: Path) -> dict:
    """The generator's ``synthetic.json`` of ``root``, checked for what these tools use."""
    path = root / "synthetic.json"
    try:
        manifest = json.loads(path.read_text())
        videos = manifest["videos"]
        for entry in videos.values():
            entry["split"], entry["ids"], entry["categories"]  # noqa: B018 - the keys this module reads
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise REMNError(
            f"{path}: not a manifest of `remn generate` ({type(error).__name__}: {error}); give --src a "
            "folder written by `remn generate`"
        ) from None
    return manifest


def _labels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image)


def _save_binary(path: Path, mask: np.ndarray, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask.astype(np.uint8) * np.uint8(value), mode="L").save(path)


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _static(args: argparse.Namespace, out: Path) -> str:
    manifest = read_manifest(args.src)
    kept = 0
    for name, entry in sorted(manifest["videos"].items()):
        frame = entry.get("frame_names", ["00000"])[0]
        labels = _labels(args.src / "Annotations" / "480p" / name / f"{frame}.png")
        candidates = [int(i) for i in entry["ids"] if entry["categories"][str(i)] != args.unseen_shape]
        areas = {i: int((labels == i).sum()) for i in candidates}
        if not areas or max(areas.values()) == 0:
            continue
        chosen = max(areas, key=lambda i: (areas[i], -i))
        _copy(args.src / "JPEGImages" / "480p" / name / f"{frame}.jpg", out / "DUTS-TR" / f"{name}.jpg")
        _save_binary(out / "DUTS-TR" / f"{name}.png", labels == chosen, 255)
        kept += 1
    if not kept:
        raise REMNError(
            f"{args.src}: no video has an object that is not a {args.unseen_shape}; generate more videos "
            "or another seed"
        )
    return f"{kept} static images in {args.out / 'DUTS-TR'}"


def _davis_videos(src: Path) -> list[str]:
    return sorted(p.name for p in (src / "JPEGImages" / "480p").iterdir() if p.is_dir())


def _test_dev(args: argparse.Namespace, out: Path) -> str:
    videos = _davis_videos(args.src)
    for name in videos:
        frames = sorted((args.src / "JPEGImages" / "480p" / name).glob("*.jpg"))
        for frame in frames:
            _copy(frame, out / "JPEGImages" / "480p" / name / frame.name)
        first = frames[0].stem
        _copy(
            args.src / "Annotations" / "480p" / name / f"{first}.png",
            out / "Annotations" / "480p" / name / f"{first}.png",
        )
    listing = out / "ImageSets" / "2017" / "test-dev.txt"
    listing.parent.mkdir(parents=True, exist_ok=True)
    listing.write_text("".join(f"{name}\n" for name in videos))
    return f"{len(videos)} test-dev videos, first masks only"


def _long_time(args: argparse.Namespace, out: Path) -> str:
    if args.every < 1:
        raise UsageError(f"--every {args.every}: give the annotation interval in frames, at least 1")
    videos = _davis_videos(args.src)
    kept = 0
    for name in videos:
        frames = sorted((args.src / "JPEGImages" / "480p" / name).glob("*.jpg"))
        for index, frame in enumerate(frames):
            _copy(frame, out / "JPEGImages" / name / frame.name)
            if index % args.every == 0 or index == len(frames) - 1:
                _copy(
                    args.src / "Annotations" / "480p" / name / f"{frame.stem}.png",
                    out / "Annotations" / name / f"{frame.stem}.png",
                )
                kept += 1
    return f"{len(videos)} long videos, {kept} masks (every {args.every}th frame and the last)"


def _youtube(args: argparse.Namespace, out: Path) -> str:
    manifest = read_manifest(args.src)
    meta_path = args.src / "valid" / "meta.json"
    try:
        meta = json.loads(meta_path.read_text())["videos"]
    except (OSError, ValueError, KeyError) as error:
        raise REMNError(
            f"{meta_path}: unreadable ({error}); give --src a YouTube-VOS-layout set of `remn generate`"
        ) from None
    gt_root = args.src / "valid_gt" / "Annotations"
    objects, skipped = {}, {}
    for video in sorted(meta):
        entry = manifest["videos"].get(video)
        if entry is None:
            raise REMNError(f"{args.src / 'synthetic.json'}: no entry for valid video {video}")
        for object_id, info in sorted(meta[video]["objects"].items(), key=lambda item: int(item[0])):
            sequence = f"{video}_{object_id}"
            frames = [f for f in info["frames"] if (gt_root / video / f"{f}.png").is_file()]
            if len(frames) < 3:
                skipped[sequence] = f"{len(frames)} listed frames (3 are needed: the first and last are not scored)"
                continue
            masks = [_labels(gt_root / video / f"{f}.png") == int(object_id) for f in frames]
            if not masks[0].any():
                skipped[sequence] = f"not visible in its first listed frame {frames[0]}"
                continue
            for frame, mask in zip(frames, masks):
                _save_binary(out / "objects" / sequence / f"{frame}.png", mask, 1)
            category = entry["categories"][str(object_id)]
            objects[sequence] = {
                "video": video,
                "id": int(object_id),
                "category": category,
                "unseen": category == args.unseen_shape,
                "frames": frames,
            }
    unseen = sum(o["unseen"] for o in objects.values())
    if not unseen or unseen == len(objects):
        raise REMNError(
            f"{args.src}: the valid videos hold {unseen} scorable objects of the held-out shape "
            f"{args.unseen_shape!r} and {len(objects) - unseen} of the others; both are needed for the "
            "seen/unseen split: generate more videos or choose another seed"
        )
    (out / "objects.json").write_text(
        json.dumps({"unseen_shape": args.unseen_shape, "objects": objects, "skipped": skipped}, indent=1) + "\n"
    )
    return f"{len(objects)} valid objects ({unseen} unseen), {len(skipped)} left out"


def _subsets(args: argparse.Namespace, out: Path) -> str:
    said = []
    for option, root, file in (
        ("--davis", args.davis, "davis-train.txt"),
        ("--youtube", args.youtube, "youtube-train.txt"),
    ):
        videos = read_manifest(root)["videos"]
        train = [n for n, e in sorted(videos.items()) if e["split"] == "train"]
        kept = [n for n in train if all(videos[n]["categories"][str(i)] != args.unseen_shape for i in videos[n]["ids"])]
        if not kept:
            raise REMNError(
                f"{root}: every training video holds a {args.unseen_shape}; generate more videos "
                f"({option}) or choose another seed"
            )
        (out / file).write_text("".join(f"{n}\n" for n in kept))
        said.append(f"{file}: {len(kept)} of {len(train)} training videos")
    return "; ".join(said)


_TOOLS = {"static": _static, "test-dev": _test_dev, "long-time": _long_time, "youtube": _youtube, "subsets": _subsets}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m remn.reproduce.prepare",
        description="Put generated datasets in the layouts the reproduction reads.",
    )
    tools = parser.add_subparsers(dest="tool", required=True)
    for name in _TOOLS:
        tool = tools.add_parser(name)
        tool.add_argument("--out", type=Path, required=True, help="output folder (new, or one this tool wrote)")
        if name == "subsets":
            tool.add_argument("--davis", type=Path, required=True, help="the DAVIS-layout set of `remn generate`")
            tool.add_argument("--youtube", type=Path, required=True, help="the YouTube-layout set of `remn generate`")
        else:
            tool.add_argument("--src", type=Path, required=True, help="a dataset written by `remn generate`")
        if name in ("static", "youtube", "subsets"):
            tool.add_argument("--unseen-shape", default="blob", help="the generator's shape held out of training")
        if name == "long-time":
            tool.add_argument("--every", type=int, default=20, help="keep the masks of every n-th frame")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        sources = [
            ("--src", getattr(args, "src", None)),
            ("--davis", getattr(args, "davis", None)),
            ("--youtube", getattr(args, "youtube", None)),
        ]
        for option, path in sources:
            if path is not None and not path.is_dir():
                raise UsageError(f"{path}: not a folder; give {option} a dataset written by `remn generate`")
        folder = OutputFolder.claim(args.out, f"{COMMAND} {args.tool}", overwrite=True, inputs=sources)
        staging = folder.stage()
        try:
            said = _TOOLS[args.tool](args, staging)
        except BaseException:
            folder.discard()
            raise
        folder.commit({"tool": args.tool})
        print(f"{args.tool}: {said}")
        return 0

    return run_command(body, interrupted=f"{args.out} is as it was")


if __name__ == "__main__":
    sys.exit(main())
