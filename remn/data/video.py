"""One video to segment: its frames streamed one at a time, its given masks, where outputs go.

A :class:`Video` knows

* its frames in *play order* (normally file order; the long-time x3 protocol plays the video
  forward, backward and forward again), read from disk only when iterated;
* the masks given as input and the frame each belongs to (DAVIS: frame 0; YouTube-VOS and the
  generic layout: the frame where each object first appears);
* which frames need an output, under which name, at which size and with which palette.

Datasets (``remn/data/vos.py``) build :class:`Video` objects from their layouts. Frames come
from a :class:`FrameSource`: image files here (:class:`ImageFolderFrames`), or a video file
(``.mp4`` and whatever FFmpeg decodes) read with PyAV in remn/data/video_file.py, which also
holds the H.264 writer of overlay videos.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from remn.data.masks import (
    DAVIS_PALETTE,
    EMPTY_FIRST_MASK,
    MISSING_FIRST_MASK,
    NO_FRAMES,
    SIZE_MISMATCH,
    UNREADABLE,
    DataError,
    DataWarning,
    MaskInfo,
    MaskRepair,
    read_image,
    read_mask,
    save_mask,
)

__all__ = ["Frame", "FrameSource", "ImageFolderFrames", "Video", "play_order"]


@dataclass
class Frame:
    """One frame as the inference loop sees it."""

    position: int
    """Step in play order (0, 1, ...)."""
    index: int
    """Frame index in the video's own order."""
    name: str
    """Output name (no extension)."""
    image: np.ndarray
    """(H, W, 3) uint8 RGB at the video's original size."""
    mask: np.ndarray | None = None
    """(H, W) ids given for this frame (original ids), or None."""
    mask_info: MaskInfo | None = None
    write: bool = True
    """Whether an output is wanted for this frame at this step."""


class FrameSource:
    """Frames of a video in file order. Subclasses read images or decode a video file."""

    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def read(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def iterate(self, order: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        for index in order:
            yield index, self.read(index)


class ImageFolderFrames(FrameSource):
    """Frames stored as image files."""

    def __init__(self, paths: Sequence[Path], names: Sequence[str] | None = None):
        self.paths = [Path(p) for p in paths]
        self.names = list(names) if names is not None else [p.stem for p in self.paths]

    def read(self, index: int) -> np.ndarray:
        return read_image(self.paths[index], frame=self.names[index])

    def location(self, index: int) -> Path:
        return self.paths[index]

    def check_headers(self) -> tuple[int, int]:
        """Read every frame's header (no pixel data; about 0.1 ms a frame, docs/data.md) and
        return the frames' (width, height).

        Raises :class:`DataError` on the first file that cannot be opened as an image, the first
        JPEG or PNG that ends before its end marker (``unreadable-image``), and the first frame
        whose size differs from frame 0's (``size-mismatch``)."""
        if not self.paths:
            raise DataError(
                NO_FRAMES, "video has no frames: no frame files were given; pass a folder holding the frames"
            )
        first = None
        for index, path in enumerate(self.paths):
            size = _header_size(path, self.names[index])
            if first is None:
                first = size
            elif size != first:
                raise DataError(
                    SIZE_MISMATCH,
                    f"frame {index} is {size[0]}x{size[1]} but frame 0 "
                    f"({self.paths[0].name}) is {first[0]}x{first[1]}; all frames of a video "
                    "must have one size: resize or re-extract this frame",
                    path,
                    self.names[index],
                )
        return first


_TAIL_BYTES = 65536
_END_MARKERS = {"JPEG": (b"\xff\xd9", "its end-of-image marker"), "PNG": (b"IEND\xaeB`\x82", "its IEND chunk")}


def error_text(error: BaseException) -> str:
    """An error's own words (FFmpeg's, PIL's), without the library's call details."""
    text = getattr(error, "strerror", None) or str(error)
    return " ".join(str(text).split())


def _header_size(path: Path, frame: str | int | None) -> tuple[int, int]:
    """(width, height) from an image's header. For JPEG and PNG also the end marker, looked
    for in the last 64 KiB after the start of the image data (a truncated file has none; 64 KiB
    leaves room for data some writers append after it)."""
    try:
        with Image.open(path) as image:
            size, kind = image.size, image.format
            if kind == "JPEG":
                data_start = image.fp.tell()  # just after the first start-of-scan header
            elif kind == "PNG" and image.tile:
                data_start = image.tile[0][2]  # the first IDAT chunk's data
            else:
                data_start = None
    except FileNotFoundError:
        raise DataError(
            UNREADABLE,
            "file not found (moved or deleted while it was read?); check the folder and run again",
            path,
            frame,
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(
            UNREADABLE, f"unreadable image ({error_text(error)}); re-extract or re-export this frame", path, frame
        ) from None
    if data_start is not None:
        marker, what = _END_MARKERS[kind]
        with open(path, "rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            handle.seek(max(data_start, end - _TAIL_BYTES))
            tail = handle.read()
        if marker not in tail:
            raise DataError(
                UNREADABLE,
                f"truncated {kind}: the file ends before {what}; re-extract or re-export this frame",
                path,
                frame,
            )
    return size


def play_order(num_frames: int, repeat: int = 1) -> list[int]:
    """Frame indices in play order. ``repeat=3``: forward, backward, forward, without
    repeating the frame at each turn (``3 * n - 2`` steps); odd repeats end going forward."""
    if num_frames < 1:
        return []
    if repeat < 1 or repeat % 2 == 0:
        raise ValueError(f"repeat must be a positive odd number, got {repeat}")
    order = list(range(num_frames))
    forward = True
    for _ in range(repeat - 1):
        forward = not forward
        leg = range(num_frames - 2, -1, -1) if not forward else range(1, num_frames)
        order.extend(leg)
    return order


@dataclass
class Video:
    """A video to segment and how its outputs are written."""

    name: str
    frames: FrameSource
    masks: Mapping[int, Path]
    """Frame index -> mask file given as input (ids as in the file)."""
    write: set[int] | None = None
    """Frame indices that need an output; None = every frame."""
    repeat: int = 1
    """1, or 3 for the long-time x3 protocol (outputs come from each frame's last visit)."""
    palette: bytes | None = DAVIS_PALETTE
    """Palette of output PNGs; None writes 0/255 grey masks (DAVIS 2016)."""
    void: int | None = None
    """Id in the input masks that means 'ignore' (read as background)."""
    max_objects: int | None = None
    binary_output: bool = False
    """Write 0/255 grey PNGs (DAVIS 2016) instead of palette PNGs."""
    binary_input: bool = False
    """Read the given masks by DAVIS 2016's rule: every non-zero pixel is object 1 (a value other
    than 0 and 255 gets a warning)."""
    repair: MaskRepair | None = None
    """How to read given masks that are soft or lossy instead of refusing them (``--mask-threshold``,
    ``--mask-snap``)."""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.frames) == 0:
            where = getattr(self.frames, "path", None) or self.name
            raise DataError(NO_FRAMES, "video has no frames; give it at least one frame", where)
        if not self.masks:
            raise DataError(
                MISSING_FIRST_MASK,
                "no mask is given for any frame of this video; give the mask of its first frame",
                self.name,
            )
        bad = [i for i in self.masks if not 0 <= i < len(self.frames)]
        if bad:
            raise DataError(
                MISSING_FIRST_MASK,
                f"masks given for frames {bad} beyond the video's {len(self.frames)} frames",
                self.name,
            )
        self.order = play_order(len(self.frames), self.repeat)
        last_visit = {index: position for position, index in enumerate(self.order)}
        self._output_positions = {
            position
            for index, position in last_visit.items()
            if (self.write is None or index in self.write) and index >= self.first_annotated
        }

    # ----------------------------------------------------------------- facts
    @property
    def names(self) -> list[str]:
        return self.frames.names

    @property
    def first_annotated(self) -> int:
        return min(self.masks)

    @property
    def num_steps(self) -> int:
        """Frames the model processes (in play order)."""
        return len(self.order)

    def __len__(self) -> int:
        return len(self.frames)

    def output_names(self) -> list[str]:
        return [self.names[self.order[p]] for p in sorted(self._output_positions)]

    def read_input_mask(self, index: int, expected_size: tuple[int, int] | None = None) -> tuple[np.ndarray, MaskInfo]:
        """The given mask of frame ``index`` (ids as in the file)."""
        labels, info = read_mask(
            self.masks[index],
            frame=self.names[index],
            expected_size=expected_size,
            max_objects=self.max_objects,
            void=self.void,
            repair=self.repair,
        )
        if self.binary_input and info.ids and info.ids != (1,):
            found = ", ".join(str(i) for i in info.ids[:8])
            warnings.warn(
                f"{self.masks[index]}: DAVIS 2016 mask holds values other than 0 and 255 ({found}); read "
                "by the official DAVIS 2016 rule: every non-zero pixel is the object",
                DataWarning,
                stacklevel=2,
            )
            labels = (labels > 0).astype(labels.dtype)
            info = MaskInfo(kind="binary", ids=(1,), size=info.size, palette=info.palette)
        if index == self.first_annotated and not info.ids:
            raise DataError(
                EMPTY_FIRST_MASK,
                "first-frame mask has no object pixels; mark at least one object (non-zero pixels) in it",
                self.masks[index],
                self.names[index],
            )
        return labels, info

    def object_first_frames(self) -> dict[int, int]:
        """Object id -> index of the first frame whose given mask contains it."""
        first: dict[int, int] = {}
        for index in sorted(self.masks):
            _, info = self.read_input_mask(index)
            for obj in info.ids:
                first.setdefault(obj, index)
        return first

    # ------------------------------------------------------------- streaming
    def __iter__(self) -> Iterator[Frame]:
        """Frames in play order, each read when reached; given masks come with the first visit."""
        seen: set[int] = set()
        for position, (index, image) in enumerate(self.frames.iterate(self.order)):
            mask = info = None
            if index in self.masks and index not in seen:
                height, width = image.shape[:2]
                mask, info = self.read_input_mask(index, expected_size=(width, height))
            seen.add(index)
            yield Frame(
                position=position,
                index=index,
                name=self.names[index],
                image=image,
                mask=mask,
                mask_info=info,
                write=position in self._output_positions,
            )

    # --------------------------------------------------------------- outputs
    def save_output(self, folder: str | Path, frame: Frame, labels: np.ndarray) -> Path:
        """Write a frame's predicted ids at the original size under the frame's name."""
        height, width = frame.image.shape[:2]
        labels = np.asarray(labels)
        if labels.shape != (height, width):
            raise ValueError(
                f"{self.name}/{frame.name}: prediction is {labels.shape[1]}x{labels.shape[0]}, "
                f"the frame is {width}x{height}"
            )
        path = Path(folder) / f"{frame.name}.png"
        if self.binary_output:
            save_mask(path, (labels > 0).astype(np.uint8) * 255, palette=None)
        else:
            save_mask(path, labels, palette=self.palette)
        return path
