"""One video to segment: its frames streamed one at a time, its given masks, where outputs go.

A :class:`Video` knows

* its frames in *play order* (normally file order; the long-time x3 protocol plays the video
  forward, backward and forward again), read from disk only when iterated;
* the masks given as input and the frame each belongs to (DAVIS: frame 0; YouTube-VOS and the
  generic layout: the frame where each object first appears);
* which frames need an output, under which name, at which size and with which palette.

Datasets (``remn/data/vos.py``) build :class:`Video` objects from their layouts; a video file
(``.mp4`` and whatever OpenCV decodes) is a :class:`VideoFileFrames` source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from remn.data.masks import (
    DAVIS_PALETTE,
    EMPTY_FIRST_MASK,
    MISSING_FIRST_MASK,
    NO_FRAMES,
    UNREADABLE,
    DataError,
    MaskInfo,
    read_image,
    read_mask,
    save_mask,
)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")

__all__ = ["Frame", "FrameSource", "ImageFolderFrames", "VideoFileFrames", "Video", "play_order",
           "VIDEO_EXTENSIONS"]


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


class VideoFileFrames(FrameSource):
    """Frames decoded from a video file with OpenCV, one at a time.

    The number of frames is counted once by decoding (containers often report it wrongly);
    sequential reading is the fast path, random access reopens the file and seeks.
    """

    def __init__(self, path: str | Path, count: bool = True):
        import cv2

        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(UNREADABLE, "video file not found", self.path)
        capture = cv2.VideoCapture(str(self.path))
        ok, first = capture.read() if capture.isOpened() else (False, None)
        if not ok or first is None:
            capture.release()
            raise DataError(UNREADABLE, "OpenCV cannot decode this video (unsupported codec or "
                            "not a video file)", self.path)
        self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
        self.height, self.width = first.shape[:2]
        total = 1
        if count:
            while capture.grab():
                total += 1
        else:
            total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
        self.names = [f"{i:05d}" for i in range(total)]

    def _open(self):
        import cv2

        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise DataError(UNREADABLE, "OpenCV cannot open this video", self.path)
        return capture

    def read(self, index: int) -> np.ndarray:
        import cv2

        capture = self._open()
        try:
            capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, bgr = capture.read()
        finally:
            capture.release()
        if not ok:
            raise DataError(UNREADABLE, "frame cannot be decoded", self.path, index)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def iterate(self, order: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        order = list(order)
        capture = self._open()
        current = 0  # index of the frame the next read() returns
        try:
            for index in order:
                if index != current:
                    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
                ok, bgr = capture.read()
                if not ok:
                    raise DataError(UNREADABLE, "frame cannot be decoded (truncated video?)", self.path, index)
                current = index + 1
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()


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
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.frames) == 0:
            where = getattr(self.frames, "path", None) or self.name
            raise DataError(NO_FRAMES, "video has no frames", where)
        if not self.masks:
            raise DataError(MISSING_FIRST_MASK, "no mask is given for any frame of this video", self.name)
        bad = [i for i in self.masks if not 0 <= i < len(self.frames)]
        if bad:
            raise DataError(MISSING_FIRST_MASK, f"masks given for frames {bad} beyond the video's "
                            f"{len(self.frames)} frames", self.name)
        self.order = play_order(len(self.frames), self.repeat)
        last_visit = {index: position for position, index in enumerate(self.order)}
        self._output_positions = {
            position for index, position in last_visit.items()
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

    def read_input_mask(self, index: int, expected_size: tuple[int, int] | None = None
                        ) -> tuple[np.ndarray, MaskInfo]:
        """The given mask of frame ``index`` (ids as in the file)."""
        labels, info = read_mask(self.masks[index], frame=self.names[index], expected_size=expected_size,
                                 max_objects=self.max_objects, void=self.void)
        if index == self.first_annotated and not info.ids:
            raise DataError(EMPTY_FIRST_MASK, "first-frame mask has no object pixels",
                            self.masks[index], self.names[index])
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
            yield Frame(position=position, index=index, name=self.names[index], image=image, mask=mask,
                        mask_info=info, write=position in self._output_positions)

    # --------------------------------------------------------------- outputs
    def save_output(self, folder: str | Path, frame: Frame, labels: np.ndarray) -> Path:
        """Write a frame's predicted ids at the original size under the frame's name."""
        height, width = frame.image.shape[:2]
        labels = np.asarray(labels)
        if labels.shape != (height, width):
            raise ValueError(f"{self.name}/{frame.name}: prediction is {labels.shape[1]}x{labels.shape[0]}, "
                             f"the frame is {width}x{height}")
        path = Path(folder) / f"{frame.name}.png"
        if self.binary_output:
            save_mask(path, (labels > 0).astype(np.uint8) * 255, palette=None)
        else:
            save_mask(path, labels, palette=self.palette)
        return path

