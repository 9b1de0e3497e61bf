"""One video to segment: its frames streamed one at a time, its given masks, where outputs go.

A :class:`Video` knows

* its frames in *play order* (normally file order; the long-time x3 protocol plays the video
  forward, backward and forward again), read from disk only when iterated;
* the masks given as input and the frame each belongs to (DAVIS: frame 0; YouTube-VOS and the
  generic layout: the frame where each object first appears);
* which frames need an output, under which name, at which size and with which palette.

Datasets (``remn/data/vos.py``) build :class:`Video` objects from their layouts; a video file
(``.mp4`` and whatever FFmpeg decodes) is a :class:`VideoFileFrames` source, read with PyAV.
:class:`H264Writer` writes overlay videos that browsers play.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import os
import threading
import warnings
from collections import OrderedDict, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
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

TRUNCATED_VIDEO = "truncated-video"
"""DataError code: a video file decodes fewer frames than its container declares, or its
decoding stops at damaged data."""

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")

__all__ = ["Frame", "FrameSource", "ImageFolderFrames", "VideoFileFrames", "H264Writer", "Video", "play_order",
           "VIDEO_EXTENSIONS", "TRUNCATED_VIDEO"]


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
            raise DataError(NO_FRAMES, "video has no frames: no frame files were given; pass a folder holding the "
                            "frames")
        first = None
        for index, path in enumerate(self.paths):
            size = _header_size(path, self.names[index])
            if first is None:
                first = size
            elif size != first:
                raise DataError(SIZE_MISMATCH, f"frame {index} is {size[0]}x{size[1]} but frame 0 "
                                f"({self.paths[0].name}) is {first[0]}x{first[1]}; all frames of a video "
                                "must have one size: resize or re-extract this frame", path, self.names[index])
        return first


_TAIL_BYTES = 65536
_END_MARKERS = {"JPEG": (b"\xff\xd9", "its end-of-image marker"), "PNG": (b"IEND\xaeB`\x82", "its IEND chunk")}


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
        raise DataError(UNREADABLE, "file not found (moved or deleted while it was read?); check the folder and "
                        "run again", path, frame) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(UNREADABLE, f"unreadable image ({_error_text(error)}); re-extract or re-export this frame",
                        path, frame) from None
    if data_start is not None:
        marker, what = _END_MARKERS[kind]
        with open(path, "rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            handle.seek(max(data_start, end - _TAIL_BYTES))
            tail = handle.read()
        if marker not in tail:
            raise DataError(UNREADABLE, f"truncated {kind}: the file ends before {what}; re-extract or "
                            "re-export this frame", path, frame)
    return size


# ------------------------------------------------------------------------ FFmpeg (PyAV)
class _FFmpegLog(logging.Handler):
    """FFmpeg's recent log lines (PyAV's ``libav`` logger), kept for error messages instead of
    reaching the terminal. Each line is (number, level, source, text)."""

    def __init__(self, keep: int = 64):
        super().__init__(level=logging.WARNING)
        self.lines: deque = deque(maxlen=keep)
        self._numbers = itertools.count(1)
        self.last = 0

    def emit(self, record: logging.LogRecord) -> None:
        number = next(self._numbers)
        source = record.name[len("libav."):] if record.name.startswith("libav.") else record.name
        self.lines.append((number, record.levelno, source, " ".join(record.getMessage().split())))
        self.last = number

    def since(self, mark: int) -> list[tuple[int, int, str, str]]:
        return [line for line in list(self.lines) if line[0] > mark]


_LOG = _FFmpegLog()
_LOG_LOCK = threading.Lock()
_log_users = 0
_log_restore: tuple | None = None


def _pyav():
    """PyAV, imported on first use (``import av`` costs ~0.1 s)."""
    import av
    import av.logging  # noqa: F401

    return av


@contextmanager
def _ffmpeg_log() -> Iterator[int]:
    """FFmpeg's log lines go to :data:`_LOG` (never to the terminal) while inside; yields the
    number of the last line before, for :meth:`_FFmpegLog.since`.

    PyAV keeps FFmpeg silent by default; its log can only be read by routing it through Python's
    logging, so this turns that on (level WARNING, logger ``libav`` not propagated) while any
    thread is inside and back off afterwards. A level the user chose (``av.logging.set_level``)
    is left alone; the lines still reach :data:`_LOG`. Decoding stays on PyAV's slice threads:
    with frame threads, a worker that logs while the main thread closes the decoder can deadlock
    on the GIL (PyAV issues #751, #909)."""
    global _log_users, _log_restore
    av = _pyav()
    logger = logging.getLogger("libav")
    with _LOG_LOCK:
        if _LOG not in logger.handlers:
            logger.addHandler(_LOG)
        if _log_users == 0 and av.logging.get_level() is None:
            _log_restore = (logger.propagate, av.logging.get_skip_repeated())
            logger.propagate = False
            av.logging.set_skip_repeated(False)  # else a repeated line is held and shows up later
            av.logging.set_level(av.logging.WARNING)
        _log_users += 1
    try:
        yield _LOG.last
    finally:
        with _LOG_LOCK:
            _log_users -= 1
            if _log_users == 0 and _log_restore is not None:
                av.logging.set_level(None)
                logger.propagate, skip_repeated = _log_restore
                av.logging.set_skip_repeated(skip_repeated)
                _log_restore = None


def _ffmpeg_says(mark: int, demuxer: str | None = None, limit: int = 100) -> str:
    """The most telling FFmpeg line logged since ``mark``, shortened, or ''. The demuxer's
    lines come first, as they are about the file ('partial file', 'Packet corrupt'), errors
    before warnings, then the decoder's, the earliest first."""
    lines = _LOG.since(mark)
    if not lines:
        return ""

    def rank(line):
        number, level, source, _ = line
        return (source != demuxer, level < logging.ERROR, number)
    text = min(lines, key=rank)[3]
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _error_text(error: BaseException) -> str:
    """An FFmpeg error's own words, without PyAV's call details."""
    text = getattr(error, "strerror", None) or str(error)
    return " ".join(str(text).split())


def _frame_rate(value: float | Fraction) -> Fraction:
    rate = Fraction(value).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"frame rate must be positive, got {value}")
    return rate


class _Decoding:
    """An open video file decoded forward from where it was last sent; frames come out in
    presentation order. ``stopped`` says why decoding ended before the end of the file
    (FFmpeg error or a frame the decoder flags as corrupt), or is None."""

    def __init__(self, path: Path):
        av = _pyav()
        self.path = path
        self.demuxer = None
        with _ffmpeg_log() as mark:
            try:
                self.container = av.open(str(path))
            except (av.FFmpegError, OSError) as error:
                said = _ffmpeg_says(mark)
                if isinstance(error, av.error.InvalidDataError) or said:
                    raise DataError(UNREADABLE, f"FFmpeg cannot decode this video ({said or _error_text(error)}): "
                                    "not a video file, or one cut short or damaged; re-download or re-export it",
                                    path) from None
                raise DataError(UNREADABLE, f"FFmpeg cannot open this file ({_error_text(error)}); check that it is "
                                "a video file you can read", path) from None
        self.demuxer = self.container.format.name
        if not self.container.streams.video:
            self.container.close()
            raise DataError(UNREADABLE, "this file has no video stream (audio only?); pass a video file or a "
                            "folder of frames", path)
        self.stream = self.container.streams.video[0]
        if self.stream.codec_context is None:
            self.container.close()
            raise DataError(UNREADABLE, "PyAV's FFmpeg has no decoder for this video's codec; re-export "
                            "the video as H.264 (mp4)", path)
        self.stream.thread_type = "SLICE"  # see _ffmpeg_log: no frame threads
        self.stopped: str | None = None
        self.mark = mark
        self._frames = self._decode(mark)

    def close(self) -> None:
        self.container.close()

    def seek(self, pts: int) -> None:
        """To the keyframe at or before ``pts`` (stream time base)."""
        av = _pyav()
        with _ffmpeg_log() as mark:
            try:
                self.container.seek(pts, stream=self.stream, backward=True)
            except av.FFmpegError as error:
                raise DataError(UNREADABLE, f"FFmpeg cannot seek in this video ({_error_text(error)}); re-export it "
                                "(e.g. as H.264 mp4) or extract its frames to a folder", self.path) from None
        self.stopped = None
        self.mark = mark
        self._frames = self._decode(mark, after_seek=True)

    def next(self):
        """The next decoded frame (av.VideoFrame), or None at the end or where decoding stops."""
        with _ffmpeg_log():
            return next(self._frames, None)

    def _decode(self, mark: int, after_seek: bool = False):
        """Frames until the end or the first damage. Just after a seek, frames flagged corrupt
        before the first good one are leading frames whose references lie before the seek point
        (the decoder usually drops them itself); they are skipped, not taken for damage."""
        av = _pyav()
        leading = after_seek
        try:
            for packet in self.container.demux(self.stream):
                for frame in packet.decode():
                    if frame.is_corrupt and leading:
                        continue
                    leading = False
                    if frame.is_corrupt:
                        said = _ffmpeg_says(mark, self.demuxer)
                        self.stopped = "a damaged frame" + (f"; FFmpeg: {said}" if said else "")
                        return
                    yield frame
        except av.FFmpegError as error:
            said = _ffmpeg_says(mark, self.demuxer) or _error_text(error)
            self.stopped = f"FFmpeg: {said}"
        else:
            return
        try:  # frames the decoder holds from packets before the bad one are good
            for frame in self.stream.codec_context.decode(None):
                if frame.is_corrupt:
                    return
                yield frame
        except av.FFmpegError:
            return


class VideoFileFrames(FrameSource):
    """Frames decoded from a video file with PyAV (FFmpeg), as (H, W, 3) uint8 RGB.

    At open the whole file is decoded once to count its frames (containers can be wrong about
    it) and compared with the count the container declares (``stream.frames``, less the frames
    an edit list hides, or duration x rate when the container has no count). A file that decodes
    fewer frames than declared, or whose decoding stops at damaged data, raises ``DataError``
    (``truncated-video``), or with ``allow_truncated=True`` warns (``DataWarning``) and keeps the
    frames that decode. FFmpeg's own log lines never reach the terminal; the telling one goes
    into the message.

    Frames are rotated as the container's display matrix says (multiples of 90 degrees; mirroring
    is not applied). ``iterate`` decodes forward with one open file and keeps the last
    ``window_frames`` decoded frames (at most ``window_bytes`` of decoded YUV), so turning back
    (the long-time x3 order) costs nothing for the frames still in the window; further back it
    seeks to the keyframe at or before the frame and decodes forward, keeping the window's worth
    of frames before the target. ``read(i)`` opens the file, seeks and decodes from the keyframe.
    """

    def __init__(self, path: str | Path, count: bool = True, allow_truncated: bool = False,
                 window_frames: int = 64, window_bytes: int = 128 * 2**20):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(UNREADABLE, "video file not found; check the path", self.path)
        self.window_frames = window_frames
        self.window_bytes = window_bytes
        decoding = _Decoding(self.path)
        try:
            stream = decoding.stream
            rate = stream.average_rate or stream.guessed_rate
            self.rate: Fraction = Fraction(rate) if rate else Fraction(25)
            self.fps = float(self.rate)
            self.declared, self.declared_exact = _declared_frames(decoding.container, stream)
            first = decoding.next()
            if first is None:
                if self.declared or decoding.stopped:
                    self._check_count(0, decoding, allow_truncated)
                raise DataError(UNREADABLE, "no frame of this video decodes; re-download or re-export it",
                                self.path)
            self.rotation = _quarter_turns(first.rotation) * 90
            width, height = first.width, first.height
            self.width, self.height = (height, width) if self.rotation % 180 else (width, height)
            self.frame_bytes = sum(plane.buffer_size for plane in first.planes)
            pts, keys = [first.pts], [0]
            if count:
                while (frame := decoding.next()) is not None:
                    if frame.key_frame:
                        keys.append(len(pts))
                    pts.append(frame.pts)
                total = len(pts)
                self.truncated = self._check_count(total, decoding, allow_truncated)
            else:
                total = self.declared or 1
                pts = [None] * total
                self.truncated = False
        finally:
            decoding.close()
        self.names = [f"{i:05d}" for i in range(total)]
        self._keys = keys
        self._pts = pts
        self._index_of = {p: i for i, p in enumerate(pts)} if None not in pts else {}
        self._seekable = len(self._index_of) == total and all(a < b for a, b in zip(pts, pts[1:]))

    # ------------------------------------------------------------------ the count
    def _slack(self) -> int:
        return 0 if self.declared_exact else ESTIMATE_SLACK

    def _check_count(self, total: int, decoding: _Decoding, allow_truncated: bool) -> bool:
        """Whether frames are missing (warned about); raises unless ``allow_truncated``."""
        stopped = decoding.stopped
        if self.declared is not None:
            if total >= self.declared - self._slack():
                return False  # nothing missing, even if trailing data failed to decode
        elif stopped is None:
            return False
        if self.declared is None:
            declared = "the container does not say how many frames it has"
        elif self.declared_exact:
            declared = f"the container declares {self.declared} frames"
        else:
            declared = f"the container's duration and frame rate give about {self.declared} frames"
        if stopped is None:
            said = _ffmpeg_says(decoding.mark, decoding.demuxer)
            stopped = f"FFmpeg: {said}" if said else "the data ends early"
        cause = stopped
        frames = "1 frame decodes" if total == 1 else f"{total} frames decode"
        if allow_truncated and total > 0:
            warnings.warn(f"{self.path}: only {frames}, {declared} ({cause}); "
                          f"using {'it' if total == 1 else 'those'} (--allow-truncated)", DataWarning, stacklevel=3)
            return True
        fix = "re-download or re-export the video (remuxing, e.g. ffmpeg -c copy, cannot restore missing data)"
        if total > 0:
            fix += f", or pass --allow-truncated to segment the {frames.replace(' decode', ' that decode')}"
        raise DataError(TRUNCATED_VIDEO, f"decoding stops here ({cause}) but {declared}: the file is cut "
                        f"short or damaged; {fix}", self.path, total)

    # ------------------------------------------------------------------ frames
    def _rgb(self, frame, reformatter) -> np.ndarray:
        """A decoded frame as (H, W, 3) uint8 RGB, rotated for display; never a view of the frame.
        The frame's colour matrix and range tags are honoured (untagged: BT.601, limited range)."""
        rgb = reformatter.reformat(frame, format="rgb24", src_color_range=frame.color_range,
                                   threads=1).to_ndarray()
        if frame.format.name == "rgb24":  # reformat passed the decoder's own buffer through
            rgb = rgb.copy()
        turns = _quarter_turns(self.rotation)
        return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb

    def _keyframe_before(self, index: int) -> int:
        return self._keys[bisect.bisect_right(self._keys, index) - 1]

    def read(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"{self.path}: frame {index} of a {len(self)}-frame video")
        reader = _WindowedReader(self, window=1)
        try:
            return self._rgb(reader.get(index), reader.reformatter)
        finally:
            reader.close()

    def iterate(self, order: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        order = list(order)
        forward = all(a < b for a, b in zip(order, order[1:]))
        window = 1 if forward else max(1, min(self.window_frames, self.window_bytes // max(1, self.frame_bytes)))
        reader = _WindowedReader(self, window)
        try:
            for index in order:
                yield index, self._rgb(reader.get(index), reader.reformatter)
        finally:
            reader.close()


ESTIMATE_SLACK = 1
"""Frames a count estimated from duration x rate may exceed the decoded count by (docs/data.md)."""


def _quarter_turns(degrees: float | int | None) -> int:
    """Counter-clockwise quarter turns for a display rotation; 0 unless a multiple of 90."""
    if not degrees:
        return 0
    turns = round(degrees / 90)
    return turns % 4 if abs(degrees - 90 * turns) < 1 else 0


def _declared_frames(container, stream) -> tuple[int | None, bool]:
    """(frames the container declares, whether it is a count rather than an estimate).

    The count is ``stream.frames`` (mp4 less the frames an edit list hides; Matroska files from
    mkvmerge carry a NUMBER_OF_FRAMES tag); otherwise duration x average frame rate, only when the
    container states an average rate (a guessed one gave 33 frames for a 1-frame ASF file)."""
    if stream.frames > 0:
        entries = stream.index_entries
        if len(entries) >= stream.frames:  # mp4: every sample indexed; an edit list hides some
            return sum(1 for entry in entries if not entry.is_discard), True
        return stream.frames, True
    tagged = stream.metadata.get("NUMBER_OF_FRAMES", "")
    if tagged.isdigit() and int(tagged) > 0:
        return int(tagged), True
    rate = stream.average_rate
    seconds = None
    if stream.duration and stream.time_base:
        seconds = stream.duration * stream.time_base
    elif "DURATION" in stream.metadata:  # Matroska/WebM: per-stream tag HH:MM:SS.nnnnnnnnn
        try:
            hours, minutes, secs = stream.metadata["DURATION"].split(":")
            seconds = Fraction(int(hours) * 3600 + int(minutes) * 60) + Fraction(secs)
        except ValueError:
            seconds = None
    elif container.duration and len(container.streams) == 1:
        seconds = Fraction(container.duration, 1_000_000)
    if not seconds or not rate:
        return None, False
    return round(seconds * rate), False


class _WindowedReader:
    """Decoded frames of a :class:`VideoFileFrames` by index, from one open file: forward
    decoding, the last ``window`` decoded frames kept, a seek to the keyframe before the wanted
    frame when it is behind (or far ahead)."""

    def __init__(self, source: VideoFileFrames, window: int):
        self.source = source
        self.window = max(1, window)
        self.kept: OrderedDict[int, object] = OrderedDict()
        self.decoding: _Decoding | None = None
        self.reformatter = _pyav().video.reformatter.VideoReformatter()  # keeps its scaler between frames
        self.next: int | None = 0  # index of the frame the decoder gives next
        self.key = 0

    def close(self) -> None:
        if self.decoding is not None:
            self.decoding.close()
            self.decoding = None
        self.kept.clear()

    def _start(self, index: int) -> None:
        """Position the decoder so that it reaches ``index`` decoding forward: a seek to the
        keyframe at or before it, or (no usable timestamps) the file opened again."""
        source = self.source
        self.key = source._keyframe_before(index) if source._seekable else 0
        if source._seekable and (self.key > 0 or self.decoding is not None):
            if self.decoding is None:
                self.decoding = _Decoding(source.path)
            self.decoding.seek(source._pts[self.key])
            self.next = None  # known from the first frame's timestamp
        else:
            if self.decoding is not None:
                self.decoding.close()
            self.decoding = _Decoding(source.path)
            self.next = 0

    def get(self, index: int):
        if index in self.kept:
            self.kept.move_to_end(index)
            return self.kept[index]
        source = self.source
        if (self.decoding is None or self.next is None or index < self.next
                or (source._seekable and source._keyframe_before(index) > self.next)):
            self._start(index)
        while True:
            frame = self.decoding.next()
            if frame is None:
                raise DataError(UNREADABLE, "frame cannot be decoded now though it decoded when the video "
                                "was opened (was the file changed?); leave the file unchanged while it is read "
                                "and run again", source.path, index)
            if self.next is None:  # just after a seek: place the frame by its timestamp
                position = source._index_of.get(frame.pts)
                if position is None or position > index:  # the seek missed: decode from the start
                    source._seekable = False
                    self._start(index)
                    continue
                if position < self.key:  # leading frames of an open GOP
                    continue
                self.next = position
            current = self.next
            self.next += 1
            self.kept[current] = frame
            if len(self.kept) > self.window:
                self.kept.popitem(last=False)
            if current == index:
                return frame


class H264Writer:
    """RGB frames to an H.264 video that browsers play: libx264 through PyAV, yuv420p, BT.709
    (tagged), constant quality ``crf``, in an mp4 whose index comes first (``+faststart``).

    H.264 in 4:2:0 needs even sizes: an odd width or height is padded by one column or row that
    repeats the last one, so the file is up to one pixel wider/taller than ``size`` and nothing of
    the frame is lost (``coded_size``). The file is written at ``path`` as given; callers pass a
    staging name and rename it when done. ``with H264Writer(...) as video: video.write(rgb)``."""

    def __init__(self, path: str | Path, fps: float | Fraction, size: tuple[int, int], crf: int = 20,
                 preset: str = "veryfast", format: str = "mp4"):
        av = _pyav()
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        width, height = self.size
        if width < 1 or height < 1:
            raise ValueError(f"video size must be positive, got {width}x{height}")
        self.coded_size = (width + width % 2, height + height % 2)
        self.rate = _frame_rate(fps)
        self.frames = 0
        self._reformatter = av.video.reformatter.VideoReformatter()
        with _ffmpeg_log() as mark:
            try:
                self.container = av.open(str(self.path), "w", format=format,
                                         options={"movflags": "+faststart"} if format == "mp4" else {})
                try:
                    stream = self.container.add_stream("libx264", rate=self.rate,
                                                       options={"crf": str(crf), "preset": preset})
                    stream.width, stream.height = self.coded_size
                    stream.pix_fmt = "yuv420p"
                    codec = stream.codec_context
                    codec.colorspace = codec.color_primaries = codec.color_trc = 1  # BT.709
                    codec.color_range = 1  # limited ("MPEG") range
                    codec.time_base = 1 / self.rate
                except BaseException:
                    self.container.close()
                    raise
            except av.FFmpegError as error:
                raise OSError(f"{self.path}: FFmpeg cannot write an H.264 video here "
                              f"({_ffmpeg_says(mark) or _error_text(error)}); check the free space and that PyAV's "
                              "FFmpeg has libx264, or leave out --overlay") from None
        self.stream = stream

    def write(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame of the writer's size."""
        av = _pyav()
        rgb = np.asarray(rgb)
        width, height = self.size
        if rgb.shape != (height, width, 3) or rgb.dtype != np.uint8:
            raise ValueError(f"{self.path}: frame is {rgb.shape} {rgb.dtype}, the video is "
                             f"({height}, {width}, 3) uint8")
        pad_w, pad_h = self.coded_size[0] - width, self.coded_size[1] - height
        if pad_w or pad_h:
            rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        yuv = self._reformatter.reformat(frame, format="yuv420p", dst_colorspace="ITU709",
                                         dst_color_range="MPEG")
        yuv.colorspace = yuv.color_primaries = yuv.color_trc = 1
        yuv.color_range = 1
        yuv.pts = self.frames
        yuv.time_base = 1 / self.rate
        self._encode(yuv)
        self.frames += 1

    def _encode(self, frame) -> None:
        av = _pyav()
        with _ffmpeg_log() as mark:
            try:
                for packet in self.stream.encode(frame):
                    self.container.mux(packet)
            except av.FFmpegError as error:
                raise OSError(f"{self.path}: FFmpeg cannot write this video "
                              f"({_ffmpeg_says(mark) or _error_text(error)}); check the free space") from None

    def close(self) -> None:
        """Flush the encoder and finish the file (moving its index to the front)."""
        if self.container is None:
            return
        try:
            self._encode(None)
        finally:
            container, self.container = self.container, None
            av = _pyav()
            with _ffmpeg_log() as mark:
                try:
                    container.close()
                except av.FFmpegError as error:
                    raise OSError(f"{self.path}: FFmpeg cannot finish this video "
                                  f"({_ffmpeg_says(mark) or _error_text(error)}); check the free space") from None

    def __enter__(self) -> "H264Writer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


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
            raise DataError(MISSING_FIRST_MASK, "no mask is given for any frame of this video; give the mask of "
                            "its first frame", self.name)
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
                                 max_objects=self.max_objects, void=self.void, repair=self.repair)
        if self.binary_input and info.ids and info.ids != (1,):
            found = ", ".join(str(i) for i in info.ids[:8])
            warnings.warn(f"{self.masks[index]}: DAVIS 2016 mask holds values other than 0 and 255 ({found}); read "
                          "by the official DAVIS 2016 rule: every non-zero pixel is the object", DataWarning,
                          stacklevel=2)
            labels = (labels > 0).astype(labels.dtype)
            info = MaskInfo(kind="binary", ids=(1,), size=info.size, palette=info.palette)
        if index == self.first_annotated and not info.ids:
            raise DataError(EMPTY_FIRST_MASK, "first-frame mask has no object pixels; mark at least one object "
                            "(non-zero pixels) in it", self.masks[index], self.names[index])
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

