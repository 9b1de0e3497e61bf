"""Check a dataset before a long run fails on it.

    remn check ROOT --layout davis|youtube|generic|long-time [--split val] [--max-objects N]

Reads every video the way evaluation will: every frame is decoded (``--quick``: headers
only), every mask file is read and compared with its frame, and the first mask of each video
must name an object. Mask files are read by :func:`remn.data.masks.read_mask` with no repair,
so soft masks (``soft-mask``), lossy files such as a JPEG named ``.png`` (``lossy-mask``) and
16-bit values above 255 (``ids-above-255``) are problems; so is an image in a mask folder that
is never read as a mask (a ``.jpg`` or ``.webp``: ``lossy-mask``, or ``ignored-mask-file`` when
it is lossless). Prints what it found (videos, frames, objects, resolutions, annotated frames)
and every problem with its file; exits with status 1 when there are problems.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from remn.data.masks import (
    BAD_LAYOUT,
    IMAGE_EXTENSIONS,
    LOSSY_MASK,
    MASK_EXTENSIONS,
    NO_FRAMES,
    DataError,
    image_size,
    list_files,
    read_mask,
)
from remn.data.vos import DAVIS2017, VOSDataset, _DAVISLayout, open_dataset

__all__ = ["VideoReport", "DatasetReport", "check_dataset", "IGNORED_MASK_FILE", "LAYOUTS"]

LAYOUTS = ("davis", "youtube", "generic", "long-time")
"""The layouts `remn check` reads (docs/data.md)."""

IGNORED_MASK_FILE = "ignored-mask-file"  # an image in a mask folder that is never read (a lossless .webp)
_NOT_MASKS = tuple(e for e in IMAGE_EXTENSIONS if e not in MASK_EXTENSIONS)


@dataclass
class VideoReport:
    name: str
    frames: int = 0
    resolutions: Counter = field(default_factory=Counter)
    objects: tuple[int, ...] = ()
    annotated: int = 0
    first_frames: dict[int, str] = field(default_factory=dict)
    problems: list[DataError] = field(default_factory=list)


@dataclass
class DatasetReport:
    root: Path
    layout: str
    videos: list[VideoReport] = field(default_factory=list)
    problems: list[DataError] = field(default_factory=list)

    @property
    def all_problems(self) -> list[DataError]:
        return self.problems + [p for v in self.videos for p in v.problems]

    def summary(self) -> str:
        frames = sum(v.frames for v in self.videos)
        resolutions = Counter()
        for v in self.videos:
            resolutions.update(v.resolutions)
        objects = sum(len(v.objects) for v in self.videos)
        lines = [f"{self.root} ({self.layout}): {len(self.videos)} videos, {frames} frames, {objects} objects"]
        if resolutions:
            common = ", ".join(f"{w}x{h} ({n})" for (w, h), n in resolutions.most_common(5))
            lines.append(f"  resolutions (frames): {common}")
        for v in self.videos:
            firsts = ", ".join(f"{o}@{f}" for o, f in v.first_frames.items())
            lines.append(
                f"  {v.name}: {v.frames} frames, objects {list(v.objects)}, {v.annotated} annotated "
                f"frames; first appearance: {firsts or '-'}"
            )
        problems = self.all_problems
        lines.append(f"{len(problems)} problem(s)" + (":" if problems else ""))
        lines += [f"  {p}" for p in problems]
        return "\n".join(lines)


def _open(root: Path, layout: str, split: str | None, max_objects: int | None) -> VOSDataset:
    kwargs: dict = {"max_objects": max_objects}
    if layout == "davis":
        if split is not None:
            return DAVIS2017(root, split=split, **kwargs)
        return _DAVISLayout(root, **kwargs)  # every video folder
    if layout == "youtube":
        return open_dataset("youtube", root, split=split or "valid", **kwargs)
    return open_dataset(layout, root, **kwargs)


def check_video(dataset: VOSDataset, name: str, quick: bool = False) -> VideoReport:
    report = VideoReport(name)
    try:
        video = dataset.video(name)
    except DataError as error:
        report.problems.append(error)
        return report
    report.frames = len(video)
    sizes: dict[int, tuple[int, int]] = {}
    frames = video.frames
    for index in range(len(frames)):
        try:
            if quick and hasattr(frames, "location"):
                size = image_size(frames.location(index), frames.names[index])
            else:
                image = frames.read(index)
                size = (image.shape[1], image.shape[0])
        except DataError as error:
            report.problems.append(error)
            continue
        sizes[index] = size
        report.resolutions[size] += 1
    # every mask file of the video, not only those used as input
    mask_folder = getattr(dataset, "mask_root", None)
    files = list_files(mask_folder / name, MASK_EXTENSIONS) if mask_folder and (mask_folder / name).is_dir() else []
    index_of = {n: i for i, n in enumerate(frames.names)}
    if mask_folder and (mask_folder / name).is_dir():
        report.problems += [_ignored(path) for path in list_files(mask_folder / name, _NOT_MASKS)]
    ids: set[int] = set()
    for path in files:
        index = index_of.get(path.stem)
        try:
            labels, info = read_mask(
                path,
                frame=path.stem,
                expected_size=sizes.get(index),
                max_objects=video.max_objects,
                void=video.void,
                warn=False,
            )
        except DataError as error:
            report.problems.append(error)
            continue
        report.annotated += 1
        if index in video.masks:
            for obj in info.ids:
                if obj not in report.first_frames:
                    report.first_frames[obj] = path.stem
            ids.update(info.ids)
    try:
        video.read_input_mask(video.first_annotated)
    except DataError as error:
        if all(str(error) != str(p) for p in report.problems):
            report.problems.append(error)
    report.objects = tuple(sorted(ids))
    return report


def _ignored(path: Path) -> DataError:
    """An image in a mask folder that no dataset reads as a mask (masks are read from MASK_EXTENSIONS)."""
    readable = ", ".join(MASK_EXTENSIONS)
    try:
        read_mask(path, frame=path.stem, warn=False)
    except DataError as error:
        if error.code == LOSSY_MASK:
            return DataError(
                LOSSY_MASK,
                f"this {path.suffix} file is not read as a mask (masks are read from "
                f"{readable} files) and its lossy compression changes the values along every edge; "
                "save the mask as PNG (palette or 0..K grey)",
                path,
                path.stem,
            )
    return DataError(
        IGNORED_MASK_FILE,
        f"this {path.suffix} file is not read as a mask (masks are read from {readable} files); save it as PNG",
        path,
        path.stem,
    )


def check_dataset(
    root: str | Path,
    layout: str,
    split: str | None = None,
    max_objects: int | None = None,
    quick: bool = False,
    videos: Sequence[str] | None = None,
    progress: bool = True,
) -> DatasetReport:
    root = Path(root)
    report = DatasetReport(root, layout)
    if not root.is_dir():
        report.problems.append(DataError(BAD_LAYOUT, "dataset root not found; check the path", root))
        return report
    try:
        dataset = _open(root, layout, split, max_objects)
    except DataError as error:
        report.problems.append(error)
        return report
    names = list(videos) if videos is not None else dataset.videos
    if not names:
        report.problems.append(
            DataError(
                NO_FRAMES,
                f"no videos found; is this the root of a {layout}-layout dataset? (docs/data.md lists the layouts)",
                root,
            )
        )
    for name in tqdm(names, desc="checking videos", unit="video", disable=not progress):
        report.videos.append(check_video(dataset, name, quick=quick))
    return report
