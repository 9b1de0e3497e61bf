"""Pick a few frames of an overlay video written by `remn segment --overlay` and put them side
by side in one picture (docs/img/segment_overlay.png by default).

    python scripts/make_segment_figure.py OUTPUT_DIR/overlay.mp4 [--frames 0 10 20 29] \
        [--out docs/img/segment_overlay.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("--frames", type=int, nargs="+", default=[0, 10, 20, 29])
    parser.add_argument("--scale", type=float, default=2.0, help="enlarge small frames by this factor")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img" / "segment_overlay.png"
    )
    args = parser.parse_args()
    capture = cv2.VideoCapture(str(args.video))
    if not capture.isOpened():
        raise SystemExit(f"{args.video}: cannot open")
    frames, index = {}, 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index in args.frames:
            frames[index] = frame
        index += 1
    capture.release()
    missing = [f for f in args.frames if f not in frames]
    if missing:
        raise SystemExit(f"{args.video} has {index} frames; cannot take {missing}")
    tiles = [
        cv2.resize(frames[f], None, fx=args.scale, fy=args.scale, interpolation=cv2.INTER_NEAREST) for f in args.frames
    ]
    gap = np.full((tiles[0].shape[0], 6, 3), 255, np.uint8)
    row = np.concatenate([x for tile in tiles for x in (tile, gap)][:-1], axis=1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), row)
    print(f"wrote {args.out} ({len(tiles)} frames: {args.frames})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
