"""``remn segment``: your own video (a file or a folder of frames) and a first mask in, one mask
per frame and an overlay video out.

    remn segment clip.mp4 --mask first.png --output out/ [--mask-at 120:fix.png] [--overlay]
        [--checkpoint remn.pth] [--size 480] [--device auto|cpu|cuda] [key=value ...]

Everything is checked before anything is written (the input decodes, every mask is readable,
non-empty, fits the frames and names a frame inside the video, the output folder is free).
Frames are decoded, segmented and written one at a time, the writing on a background thread
behind a bounded queue, so memory does not depend on the video's length. Masks go to
``OUTPUT/masks/`` (named by frame index for a video file, by input name for a folder), the
overlay to ``OUTPUT/overlay.mp4`` and a record of the run to ``OUTPUT/segment.json``. They are
built under ``OUTPUT/.remn-staging/`` and replace an earlier run's results (``--overwrite``)
only once the whole video is done (:mod:`remn.outputs`); an error, Ctrl-C or SIGTERM leaves
the earlier results as they were.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

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
from remn.data.video import FrameSource, H264Writer, ImageFolderFrames, VideoFileFrames
from remn.cli import add_mask_repair_arguments, mask_repair_from_args, parse_args, run_command
from remn.outputs import OutputError, OutputFolder, atomic_write_text

__all__ = ["main", "open_input", "overlay_frame", "OutputInUseError", "MASK_BEYOND_VIDEO", "COMMAND"]

MASK_BEYOND_VIDEO = "mask-beyond-video"
RECORD = "segment.json"
COMMAND = "remn segment"

OutputInUseError = OutputError
"""The output folder cannot take this run's results (an :class:`~remn.outputs.OutputError`)."""


def open_input(path: str | Path, allow_truncated: bool = False) -> FrameSource:
    """A video file or a folder of frames, checked: a video is decoded once (a file cut short is
    refused unless ``allow_truncated``), every frame of a folder has its header read."""
    path = Path(path)
    if path.is_dir():
        frames = list_files(path, IMAGE_EXTENSIONS)
        if not frames:
            raise DataError(NO_FRAMES, f"no frames ({', '.join(IMAGE_EXTENSIONS)}) in this folder; pass a folder of "
                            "frame images or a video file", path)
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


def _parse_mask_at(text: str) -> tuple[int, Path]:
    frame, sep, file = text.partition(":")
    if not sep or not frame.strip().lstrip("-").isdigit() or not file:
        raise argparse.ArgumentTypeError(f"--mask-at wants FRAME:FILE (a frame index and a mask file), got {text!r}")
    return int(frame), Path(file)


def _positive_fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 10_000:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"--fps wants a positive frame rate such as 25 or 29.97, got {text!r}")
    return value


def _resize_nearest(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    import cv2

    return cv2.resize(labels.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(np.int64)


def load_masks(specs: Sequence[tuple[int, Path]], source: FrameSource, frame_size: tuple[int, int],
               resize: bool, repair: MaskRepair | None = None) -> list[GivenMask]:
    """Read and check every given mask before anything runs (``repair``: how to read soft or lossy
    masks instead of refusing them)."""
    width, height = frame_size
    out = []
    for index, path in specs:
        if not 0 <= index < len(source):
            raise DataError(MASK_BEYOND_VIDEO, f"mask given for frame {index}, but the video has {len(source)} "
                            f"frames (0..{len(source) - 1}); give a frame index in that range (--mask-at FRAME:FILE)",
                            path)
        if not Path(path).is_file():
            raise DataError(UNREADABLE, "mask file not found; check the path given to --mask or --mask-at", path,
                            index)
        labels, info = read_mask(path, frame=index, max_objects=255, repair=repair)
        if info.size != (width, height):
            if not resize:
                raise DataError(SIZE_MISMATCH, f"mask is {info.size[0]}x{info.size[1]} but the frames are "
                                f"{width}x{height}; pass --resize-masks to scale it", path, index)
            labels = _resize_nearest(labels, width, height)
        if not labels.any():
            raise DataError(EMPTY_FIRST_MASK, "mask has no object pixels; mark at least one object (non-zero "
                            "pixels) in it", path, index)
        if labels.max() > 255:
            raise DataError(TOO_MANY_OBJECTS, f"object id {int(labels.max())} is above 255, which PNG masks cannot "
                            "hold; renumber the objects 1..255", path, index)
        out.append(GivenMask(index, Path(path), labels, info.palette))
    if not out:
        raise DataError(MISSING_FIRST_MASK, "no mask given: pass --mask FIRST.png (the first frame's mask), or "
                        "--mask-at FRAME:FILE", None)
    return sorted(out, key=lambda m: m.index)


def _colour_table(palette: bytes | None) -> np.ndarray:
    table = np.frombuffer(palette or DAVIS_PALETTE, dtype=np.uint8)
    table = np.concatenate([table, np.zeros(768 - len(table), dtype=np.uint8)]) if len(table) < 768 else table[:768]
    return table.reshape(256, 3)


def overlay_frame(image: np.ndarray, labels: np.ndarray, colours: np.ndarray, index: int | None = None,
                  alpha: float = 0.5) -> np.ndarray:
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
        cv2.putText(out, str(index), (8, int(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                    thickness=4, lineType=cv2.LINE_AA)
        cv2.putText(out, str(index), (8, int(28 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                    thickness=1, lineType=cv2.LINE_AA)
    return out


class _Writer:
    """Writes masks (and overlay frames) on a background thread; ``put`` blocks when the
    queue is full, which bounds the frames held in memory."""

    def __init__(self, mask_dir: Path, overlay_path: Path | None, fps: float, size: tuple[int, int],
                 palette: bytes | None, queue_size: int = 8):
        self.mask_dir = mask_dir
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
            name, index, image, labels = item
            try:
                save_mask(self.mask_dir / f"{name}.png", labels.astype(np.uint8), palette=self.palette)
                if self.video is not None:
                    self.video.write(overlay_frame(image, labels, self.colours, index))
            except BaseException as error:  # reported by the main thread
                self.error = error

    def put(self, name: str, index: int, image: np.ndarray, labels: np.ndarray) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put((name, index, image, labels))

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="remn segment", description="Segment your own video from a first mask.")
    parser.add_argument("input", type=Path, help="a video file (mp4, mov, avi, mkv, ...) or a folder of frames")
    parser.add_argument("--mask", type=Path, help="mask of the first frame (palette, 0/255 or 0..K grey, or colour PNG)")
    parser.add_argument("--mask-at", type=_parse_mask_at, action="append", default=[], metavar="FRAME:FILE",
                        help="a mask for a later frame (index from 0): adds or corrects objects; repeatable")
    parser.add_argument("--output", type=Path, required=True, help="output folder")
    parser.add_argument("--checkpoint", type=Path, help="REMN or STCN weights (default: random weights, a warning)")
    parser.add_argument("--config", default=None, help="YAML file, or a name in the project's configs/ folder "
                        "(default remn: every module on)")
    parser.add_argument("--size", type=int, default=None, help="processing size, shorter side (default 480; -1: as is)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default=None)
    parser.add_argument("--overlay", action="store_true", help="also write overlay.mp4 (H.264, plays in browsers)")
    parser.add_argument("--fps", type=_positive_fps, default=None,
                        help="overlay frame rate (default: the input's, or 25)")
    parser.add_argument("--resize-masks", action="store_true", help="scale masks of another size to the frames")
    add_mask_repair_arguments(parser)
    parser.add_argument("--allow-truncated", action="store_true",
                        help="segment the frames that decode from a video file cut short, with a warning")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier `remn segment` run's results in --output once this run has succeeded")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides anywhere on the line, e.g. memory.capacity=8")
    return parser


def run(args: argparse.Namespace) -> dict:
    from tqdm import tqdm

    from remn.predictor import Predictor

    specs = ([(0, args.mask)] if args.mask is not None else []) + list(args.mask_at)
    inputs = [("input", args.input), ("--checkpoint", args.checkpoint),
              *((f"mask {path}", path) for _, path in specs)]
    output = OutputFolder.claim(args.output, COMMAND, overwrite=args.overwrite, inputs=inputs)
    if not specs:
        raise DataError(MISSING_FIRST_MASK, "no mask given: pass --mask FIRST.png (the first frame's mask), or "
                        "--mask-at FRAME:FILE", None)
    # the configuration, device and weights first: they are quick to check, the input may take long to decode
    overrides = list(args.overrides)
    if args.size is not None:
        overrides.append(f"inference.size={args.size}")
    if args.precision is not None:
        overrides.append(f"runtime.precision={args.precision}")
    predictor = Predictor.load(args.checkpoint, args.config, overrides, device=args.device)
    if not args.checkpoint:
        print("warning: no --checkpoint: random weights, the masks will mean nothing", file=sys.stderr)
    source = open_input(args.input, allow_truncated=args.allow_truncated)
    first = source.read(0)
    height, width = first.shape[:2]
    given = load_masks(specs, source, (width, height), args.resize_masks, mask_repair_from_args(args))
    if given[0].index != 0 and args.mask is None:
        print(f"note: the first mask is at frame {given[0].index}; earlier frames are written as background",
              file=sys.stderr)
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
        record = _segment(args, source, predictor, masks_at, palette, staging, (width, height), tqdm)
        record["masks"] = {str(m.index): str(m.path) for m in given}
        atomic_write_text(staging / RECORD, json.dumps(record, indent=1))
    except BaseException:
        output.discard()
        raise
    output.commit({"input": str(args.input)})
    return record


def _segment(args, source: FrameSource, predictor, masks_at: dict, palette: bytes, staging: Path,
             size: tuple[int, int], tqdm) -> dict:
    """Segment every frame into ``staging``; returns the run's record."""
    width, height = size
    (staging / "masks").mkdir()
    fps = args.fps or getattr(source, "fps", None) or 25.0
    writer = _Writer(staging / "masks", staging / "overlay.mp4" if args.overlay else None, fps, (width, height),
                     palette)
    names = source.names
    total = len(source)
    model_seconds = 0.0
    started = time.perf_counter()
    finished = False
    try:
        bar = tqdm(source.iterate(range(total)), total=total, unit="frame", desc="segmenting", disable=args.quiet)
        for index, image in bar:
            if image.shape[:2] != (height, width):
                raise DataError(SIZE_MISMATCH, f"frame is {image.shape[1]}x{image.shape[0]}, the first frame is "
                                f"{width}x{height}; all frames must have one size: re-export the video (or the "
                                "frames) at one size", getattr(source, "path", args.input), names[index])
            mask = masks_at.get(index)
            tick = time.perf_counter()
            labels = predictor.step(image, mask.labels if mask is not None else None, last=index == total - 1)
            model_seconds += time.perf_counter() - tick
            writer.put(names[index], index, image, labels)
        finished = True
    finally:
        writer.close(abort=not finished)
    return {"input": str(args.input), "frames": total, "size": [width, height], "objects": predictor.object_ids,
            "checkpoint": str(args.checkpoint or ""), "device": str(predictor.device),
            "seconds": time.perf_counter() - started,
            "model_fps": total / model_seconds if model_seconds else None, "load": predictor.load_message,
            "overlay": bool(args.overlay)}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)

    def body() -> int:
        record = run(args)
        print(f"{record['frames']} frames, objects {record['objects']}, {record['model_fps']:.2f} FPS (model) on "
              f"{record['device']}; masks in {args.output / 'masks'}"
              + (f", overlay {args.output / 'overlay.mp4'}" if record["overlay"] else ""))
        return 0

    return run_command(body, interrupted=f"no results were replaced; {args.output} is as it was")


if __name__ == "__main__":
    sys.exit(main())
