"""Segment your own video (``remn segment``; the command line is remn/cli/segment.py): a video
file or a folder of frames and a first mask in, one mask per frame and an overlay video out.

    segment_own_video(OwnVideoJob(input=Path("clip.mp4"), output=Path("out"), masks=[(0, Path("first.png"))]))

Everything is checked before anything is written (the input decodes, every mask is readable,
non-empty, fits the frames and names a frame inside the video, the output folder is free).
Frames are decoded, segmented and written one at a time, the writing on a background thread
behind a bounded queue, so memory does not depend on the video's length. Masks go to
``OUTPUT/masks/`` (named by frame index for a video file, by input name for a folder), the
overlay to ``OUTPUT/overlay.mp4`` (with ``OUTPUT/overlay.html``, a page showing it and the run's
record), with ``save_scores`` the objects' quantised probabilities to ``OUTPUT/scores/<name>.npz``
(:mod:`remn.inference.scores`), and a record of the run to ``OUTPUT/segment.json``. They are
built under ``OUTPUT/.remn-staging/`` and replace an earlier run's results (``--overwrite``)
only once the whole video is done (:mod:`remn.outputs`); an error, Ctrl-C or SIGTERM leaves
the earlier results as they were.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from remn.data.masks import (
    DAVIS_PALETTE,
    EMPTY_FIRST_MASK,
    IMAGE_EXTENSIONS,
    MISSING_FIRST_MASK,
    NO_FRAMES,
    SIZE_MISMATCH,
    TOO_MANY_OBJECTS,
    UNREADABLE,
    DataError,
    MaskRepair,
    list_files,
    read_mask,
    save_mask,
)
from remn.data.video import Frame, FrameSource, ImageFolderFrames
from remn.data.video_file import H264Writer, VideoFileFrames
from remn.outputs import OutputFolder, atomic_write_text

from .scores import SCORES, quantise, save_scores
from .video_loop import segment_video

__all__ = [
    "OwnVideoJob",
    "segment_own_video",
    "open_input",
    "load_masks",
    "overlay_frame",
    "MASK_BEYOND_VIDEO",
    "COMMAND",
]

MASK_BEYOND_VIDEO = "mask-beyond-video"
RECORD = "segment.json"
COMMAND = "remn segment"


def open_input(path: str | Path, allow_truncated: bool = False) -> FrameSource:
    """A video file or a folder of frames, checked: a video is decoded once (a file cut short is
    refused unless ``allow_truncated``), every frame of a folder has its header read."""
    path = Path(path)
    if path.is_dir():
        frames = list_files(path, IMAGE_EXTENSIONS)
        if not frames:
            raise DataError(
                NO_FRAMES,
                f"no frames ({', '.join(IMAGE_EXTENSIONS)}) in this folder; pass a folder of "
                "frame images or a video file",
                path,
            )
        source = ImageFolderFrames(frames)
        source.check_headers()
        return source
    if not path.exists():
        raise DataError(UNREADABLE, "input not found; pass an existing video file or folder of frames", path)
    return VideoFileFrames(path, allow_truncated=allow_truncated)


@dataclass
class GivenMask:
    index: int
    path: Path
    labels: np.ndarray
    palette: bytes | None


def _resize_nearest(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    return cv2.resize(labels.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(np.int64)


def load_masks(
    specs: Sequence[tuple[int, Path]],
    source: FrameSource,
    frame_size: tuple[int, int],
    resize: bool,
    repair: MaskRepair | None = None,
) -> list[GivenMask]:
    """Read and check every given mask before anything runs (``repair``: how to read soft or lossy
    masks instead of refusing them)."""
    width, height = frame_size
    out = []
    for index, path in specs:
        if not 0 <= index < len(source):
            raise DataError(
                MASK_BEYOND_VIDEO,
                f"mask given for frame {index}, but the video has {len(source)} "
                f"frames (0..{len(source) - 1}); give a frame index in that range (--mask-at FRAME:FILE)",
                path,
            )
        if not Path(path).is_file():
            raise DataError(UNREADABLE, "mask file not found; check the path given to --mask or --mask-at", path, index)
        labels, info = read_mask(path, frame=index, max_objects=255, repair=repair)
        if info.size != (width, height):
            if not resize:
                raise DataError(
                    SIZE_MISMATCH,
                    f"mask is {info.size[0]}x{info.size[1]} but the frames are "
                    f"{width}x{height}; pass --resize-masks to scale it",
                    path,
                    index,
                )
            labels = _resize_nearest(labels, width, height)
        if not labels.any():
            raise DataError(
                EMPTY_FIRST_MASK,
                "mask has no object pixels; mark at least one object (non-zero pixels) in it",
                path,
                index,
            )
        if labels.max() > 255:
            raise DataError(
                TOO_MANY_OBJECTS,
                f"object id {int(labels.max())} is above 255, which PNG masks cannot hold; renumber the objects 1..255",
                path,
                index,
            )
        out.append(GivenMask(index, Path(path), labels, info.palette))
    if not out:
        raise DataError(
            MISSING_FIRST_MASK,
            "no mask given: pass --mask FIRST.png (the first frame's mask), or --mask-at FRAME:FILE",
            None,
        )
    return sorted(out, key=lambda m: m.index)


def _colour_table(palette: bytes | None) -> np.ndarray:
    table = np.frombuffer(palette or DAVIS_PALETTE, dtype=np.uint8)
    table = np.concatenate([table, np.zeros(768 - len(table), dtype=np.uint8)]) if len(table) < 768 else table[:768]
    return table.reshape(256, 3)


def overlay_frame(
    image: np.ndarray, labels: np.ndarray, colours: np.ndarray, index: int | None = None, alpha: float = 0.5
) -> np.ndarray:
    """Objects filled with their colour at ``alpha``, outlined, and the frame index written in a corner."""
    import cv2

    out = image.astype(np.float32)
    labels = labels.astype(np.int64)
    present = labels > 0
    out[present] = (1 - alpha) * out[present] + alpha * colours[labels[present]]
    out = out.astype(np.uint8)
    for obj in np.unique(labels):
        if obj == 0:
            continue
        binary = (labels == obj).astype(np.uint8)
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        colour = tuple(int(c) for c in np.minimum(colours[obj].astype(int) + 60, 255))
        cv2.drawContours(out, contours, -1, colour, thickness=2)
    if index is not None:
        scale = max(0.4, image.shape[0] / 720)
        cv2.putText(
            out,
            str(index),
            (8, int(28 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (0, 0, 0),
            thickness=4,
            lineType=cv2.LINE_AA,
        )
        cv2.putText(
            out,
            str(index),
            (8, int(28 * scale)),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            thickness=1,
            lineType=cv2.LINE_AA,
        )
    return out


class _Writer:
    """Writes masks (and overlay frames) on a background thread; ``put`` blocks when the
    queue is full, which bounds the frames held in memory."""

    def __init__(
        self,
        mask_dir: Path,
        overlay_path: Path | None,
        fps: float,
        size: tuple[int, int],
        palette: bytes | None,
        queue_size: int = 8,
        scores_dir: Path | None = None,
    ):
        self.mask_dir = mask_dir
        self.scores_dir = scores_dir
        self.palette = palette
        self.colours = _colour_table(palette)
        self.queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.error: BaseException | None = None
        self.video = H264Writer(overlay_path, fps, size) if overlay_path is not None else None
        self.thread = threading.Thread(target=self._run, name="remn-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue
            name, index, image, labels, scores = item
            try:
                save_mask(self.mask_dir / f"{name}.png", labels.astype(np.uint8), palette=self.palette)
                if scores is not None and self.scores_dir is not None:
                    save_scores(self.scores_dir / f"{name}.npz", *scores)
                if self.video is not None:
                    self.video.write(overlay_frame(image, labels, self.colours, index))
            except BaseException as error:  # reported by the main thread
                self.error = error

    def put(
        self,
        name: str,
        index: int,
        image: np.ndarray,
        labels: np.ndarray,
        scores: tuple[np.ndarray, list[int]] | None = None,
    ) -> None:
        """Queue one frame: its labels, and its quantised scores with their ids when they are saved."""
        if self.error is not None:
            raise self.error
        self.queue.put((name, index, image, labels, scores))

    def close(self, abort: bool = False) -> None:
        """Wait for the queued frames to be written (``abort``: drop them) and close the video."""
        if abort:
            self.error = self.error or RuntimeError("aborted")
            with self.queue.mutex:
                self.queue.queue.clear()
        self.queue.put(None)
        self.thread.join()
        if self.video is not None:
            self.video.close()
        if self.error is not None and not abort:
            raise self.error


@dataclass
class OwnVideoJob:
    """What ``remn segment`` is asked to do (remn/cli/segment.py fills it from the command line)."""

    input: Path
    """A video file or a folder of frames."""
    output: Path
    masks: list[tuple[int, Path]]
    """(frame index, mask file); frame 0 first when there is a first mask."""
    checkpoint: Path | None = None
    config: str | Path | None = None
    overrides: list[str] = field(default_factory=list)
    device: str = "auto"
    overlay: bool = False
    save_scores: bool = False
    """Also write each frame's quantised object probabilities (``scores/<name>.npz``)."""
    fps: float | None = None
    resize_masks: bool = False
    repair: MaskRepair | None = None
    allow_truncated: bool = False
    overwrite: bool = False
    progress: bool = True


def segment_own_video(job: OwnVideoJob) -> dict:
    """Segment ``job.input`` from its masks into ``job.output`` (module docstring); returns the
    record also written to ``segment.json``."""
    from tqdm import tqdm

    from remn.predictor import Predictor

    specs = list(job.masks)
    inputs = [("input", job.input), ("--checkpoint", job.checkpoint), *((f"mask {path}", path) for _, path in specs)]
    output = OutputFolder.claim(job.output, COMMAND, overwrite=job.overwrite, inputs=inputs)
    if not specs:
        raise DataError(
            MISSING_FIRST_MASK,
            "no mask given: pass --mask FIRST.png (the first frame's mask), or --mask-at FRAME:FILE",
            None,
        )
    # the configuration, device and weights first: they are quick to check, the input may take long to decode
    predictor = Predictor.load(job.checkpoint, job.config, job.overrides, device=job.device)
    if not job.checkpoint:
        print("warning: no --checkpoint: random weights, the masks will mean nothing", file=sys.stderr)
    source = open_input(job.input, allow_truncated=job.allow_truncated)
    first = source.read(0)
    height, width = first.shape[:2]
    given = load_masks(specs, source, (width, height), job.resize_masks, job.repair)
    if given[0].index != 0:
        print(
            f"note: the first mask is at frame {given[0].index}; earlier frames are written as background",
            file=sys.stderr,
        )
    masks_at = {}
    for mask in given:  # a later entry for the same frame replaces the earlier one's objects
        if mask.index in masks_at:
            merged = masks_at[mask.index].labels.copy()
            merged[mask.labels > 0] = mask.labels[mask.labels > 0]
            mask = GivenMask(mask.index, mask.path, merged, mask.palette)
        masks_at[mask.index] = mask
    palette = given[0].palette or DAVIS_PALETTE

    staging = output.stage()
    try:
        record = _segment(job, source, predictor, masks_at, palette, staging, (width, height), tqdm)
        record["masks"] = {str(m.index): str(m.path) for m in given}
        atomic_write_text(staging / RECORD, json.dumps(record, indent=1))
        if job.overlay:
            from remn.evaluation.report import write_overlay_page

            write_overlay_page(staging, record)
    except BaseException:
        output.discard()
        raise
    output.commit({"input": str(job.input)})
    return record


def _segment(
    job: OwnVideoJob,
    source: FrameSource,
    predictor,
    masks_at: dict,
    palette: bytes,
    staging: Path,
    size: tuple[int, int],
    tqdm,
) -> dict:
    """Segment every frame into ``staging``; returns the run's record."""
    width, height = size
    (staging / "masks").mkdir()
    fps = job.fps or getattr(source, "fps", None) or 25.0
    scores_dir = staging / SCORES if job.save_scores else None
    if scores_dir is not None:
        scores_dir.mkdir()
    writer = _Writer(
        staging / "masks",
        staging / "overlay.mp4" if job.overlay else None,
        fps,
        (width, height),
        palette,
        scores_dir=scores_dir,
    )
    names = source.names
    total = len(source)
    model_seconds = 0.0
    started = time.perf_counter()
    finished = False
    try:
        bar = tqdm(source.iterate(range(total)), total=total, unit="frame", desc="segmenting", disable=not job.progress)

        def frames() -> Iterator[Frame]:
            for index, image in bar:
                if image.shape[:2] != (height, width):
                    raise DataError(
                        SIZE_MISMATCH,
                        f"frame is {image.shape[1]}x{image.shape[0]}, the first frame is "
                        f"{width}x{height}; all frames must have one size: re-export the video (or the "
                        "frames) at one size",
                        getattr(source, "path", job.input),
                        names[index],
                    )
                mask = masks_at.get(index)
                yield Frame(index, index, names[index], image, mask.labels if mask is not None else None)

        for done in segment_video(predictor.core, frames(), total, labels="all", probabilities=job.save_scores):
            model_seconds += done.seconds
            scores = (quantise(done.prob), done.ids) if done.prob is not None else None
            writer.put(done.frame.name, done.index, done.frame.image, done.labels, scores)
        finished = True
    finally:
        writer.close(abort=not finished)
    return {
        "input": str(job.input),
        "frames": total,
        "size": [width, height],
        "objects": predictor.object_ids,
        "checkpoint": str(job.checkpoint or ""),
        "device": str(predictor.device),
        "seconds": time.perf_counter() - started,
        "model_fps": total / model_seconds if model_seconds else None,
        "load": predictor.load_message,
        "overlay": bool(job.overlay),
        "scores": bool(job.save_scores),
    }
