"""Video files through PyAV (FFmpeg): reading frames with their count checked, writing H.264.

* :class:`VideoFileFrames`: a :class:`~remn.data.video.FrameSource` over a video file
  (``.mp4`` and whatever FFmpeg decodes), frame count from the container, rotation applied,
  truncated or damaged files refused (``truncated-video``) unless explicitly allowed, FFmpeg's
  own messages quoted in the error;
* :class:`H264Writer`: overlay videos in H.264 (yuv420p, mp4) that browsers play; PyAV's
  wheels bundle libx264.

Why one module of more than 600 lines: reading and writing through PyAV share FFmpeg's log
capture and its error texts; split, each half would need the other's internals.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import threading
import warnings
from collections import OrderedDict, deque
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from .masks import UNREADABLE, DataError, DataWarning
from .video import FrameSource, error_text

TRUNCATED_VIDEO = "truncated-video"
"""DataError code: a video file decodes fewer frames than its container declares, or its
decoding stops at damaged data."""

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")

__all__ = ["VideoFileFrames", "H264Writer", "VIDEO_EXTENSIONS", "TRUNCATED_VIDEO"]


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
        source = record.name[len("libav.") :] if record.name.startswith("libav.") else record.name
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
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
                    raise DataError(
                        UNREADABLE,
                        f"FFmpeg cannot decode this video ({said or error_text(error)}): "
                        "not a video file, or one cut short or damaged; re-download or re-export it",
                        path,
                    ) from None
                raise DataError(
                    UNREADABLE,
                    f"FFmpeg cannot open this file ({error_text(error)}); check that it is a video file you can read",
                    path,
                ) from None
        self.demuxer = self.container.format.name
        if not self.container.streams.video:
            self.container.close()
            raise DataError(
                UNREADABLE, "this file has no video stream (audio only?); pass a video file or a folder of frames", path
            )
        self.stream = self.container.streams.video[0]
        if self.stream.codec_context is None:
            self.container.close()
            raise DataError(
                UNREADABLE,
                "PyAV's FFmpeg has no decoder for this video's codec; re-export the video as H.264 (mp4)",
                path,
            )
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
                raise DataError(
                    UNREADABLE,
                    f"FFmpeg cannot seek in this video ({error_text(error)}); re-export it "
                    "(e.g. as H.264 mp4) or extract its frames to a folder",
                    self.path,
                ) from None
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
            said = _ffmpeg_says(mark, self.demuxer) or error_text(error)
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

    def __init__(
        self,
        path: str | Path,
        count: bool = True,
        allow_truncated: bool = False,
        window_frames: int = 64,
        window_bytes: int = 128 * 2**20,
    ):
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
                raise DataError(UNREADABLE, "no frame of this video decodes; re-download or re-export it", self.path)
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
            warnings.warn(
                f"{self.path}: only {frames}, {declared} ({cause}); "
                f"using {'it' if total == 1 else 'those'} (--allow-truncated)",
                DataWarning,
                stacklevel=3,
            )
            return True
        fix = "re-download or re-export the video (remuxing, e.g. ffmpeg -c copy, cannot restore missing data)"
        if total > 0:
            fix += f", or pass --allow-truncated to segment the {frames.replace(' decode', ' that decode')}"
        raise DataError(
            TRUNCATED_VIDEO,
            f"decoding stops here ({cause}) but {declared}: the file is cut short or damaged; {fix}",
            self.path,
            total,
        )

    # ------------------------------------------------------------------ frames
    def _rgb(self, frame, reformatter) -> np.ndarray:
        """A decoded frame as (H, W, 3) uint8 RGB, rotated for display; never a view of the frame.
        The frame's colour matrix and range tags are honoured (untagged: BT.601, limited range)."""
        rgb = reformatter.reformat(frame, format="rgb24", src_color_range=frame.color_range, threads=1).to_ndarray()
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
        if (
            self.decoding is None
            or self.next is None
            or index < self.next
            or (source._seekable and source._keyframe_before(index) > self.next)
        ):
            self._start(index)
        while True:
            frame = self.decoding.next()
            if frame is None:
                raise DataError(
                    UNREADABLE,
                    "frame cannot be decoded now though it decoded when the video "
                    "was opened (was the file changed?); leave the file unchanged while it is read "
                    "and run again",
                    source.path,
                    index,
                )
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

    def __init__(
        self,
        path: str | Path,
        fps: float | Fraction,
        size: tuple[int, int],
        crf: int = 20,
        preset: str = "veryfast",
        format: str = "mp4",
    ):
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
                self.container = av.open(
                    str(self.path), "w", format=format, options={"movflags": "+faststart"} if format == "mp4" else {}
                )
                try:
                    stream = self.container.add_stream(
                        "libx264", rate=self.rate, options={"crf": str(crf), "preset": preset}
                    )
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
                raise OSError(
                    f"{self.path}: FFmpeg cannot write an H.264 video here "
                    f"({_ffmpeg_says(mark) or error_text(error)}); check the free space and that PyAV's "
                    "FFmpeg has libx264, or leave out --overlay"
                ) from None
        self.stream = stream

    def write(self, rgb: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame of the writer's size."""
        av = _pyav()
        rgb = np.asarray(rgb)
        width, height = self.size
        if rgb.shape != (height, width, 3) or rgb.dtype != np.uint8:
            raise ValueError(
                f"{self.path}: frame is {rgb.shape} {rgb.dtype}, the video is ({height}, {width}, 3) uint8"
            )
        pad_w, pad_h = self.coded_size[0] - width, self.coded_size[1] - height
        if pad_w or pad_h:
            rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        yuv = self._reformatter.reformat(frame, format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")
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
                raise OSError(
                    f"{self.path}: FFmpeg cannot write this video "
                    f"({_ffmpeg_says(mark) or error_text(error)}); check the free space"
                ) from None

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
                    raise OSError(
                        f"{self.path}: FFmpeg cannot finish this video "
                        f"({_ffmpeg_says(mark) or error_text(error)}); check the free space"
                    ) from None

    def __enter__(self) -> "H264Writer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
