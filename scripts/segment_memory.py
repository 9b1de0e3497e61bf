"""Does `remn segment` run a long video in bounded memory?

Writes a generated video (default 2,000 frames at 854x480: two textured objects that drift,
spin and cross over a textured background, drawn one frame at a time by
``remn.data.synthetic.SyntheticStream``), runs ``remn segment`` on it in a child process with
RRM on, and samples the child's resident memory (VmRSS, ``remn.runtime.process_memory``) while
it runs. Prints the memory after the first 200 frames, the peak after that, and the growth in
percent.

    python scripts/segment_memory.py [--frames 2000] [--size 240] [--device cpu] [--out /tmp/remn-long]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from remn.data.masks import save_mask  # noqa: E402
from remn.data.synthetic import SyntheticStream  # noqa: E402
from remn.outputs import STAGING  # noqa: E402
from remn.runtime import process_memory  # noqa: E402


def write_video(path: Path, frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Write the generated video (two objects, no distractors, no pixel noise) as MPEG-4; returns
    frame 0's labels."""
    stream = SyntheticStream(
        seed, frames=frames, height=height, width=width, objects=(2, 2), distractors=(0, 0), noise=0.0
    )
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    for frame, _ in stream:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return stream.labels(0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--size", type=int, default=240, help="processing size (shorter side)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--after", type=int, default=200, help="frames before the reference measurement")
    parser.add_argument("--out", type=Path, default=Path("/tmp/remn-long"))
    parser.add_argument("overrides", nargs="*", help="config overrides for remn segment")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    video = args.out / "long.mp4"
    started = time.perf_counter()
    first = write_video(video, args.frames, args.height, args.width)
    save_mask(args.out / "first.png", first)
    print(f"wrote {args.frames} frames of {args.width}x{args.height} in {time.perf_counter() - started:.0f} s")

    output = args.out / "segment"
    command = [
        sys.executable,
        "-m",
        "remn",
        "segment",
        str(video),
        "--mask",
        str(args.out / "first.png"),
        "--output",
        str(output),
        "--size",
        str(args.size),
        "--device",
        args.device,
        "--overwrite",
        "--quiet",
        "memory.rrm=true",
        *args.overrides,
    ]
    child = subprocess.Popen(command, cwd=REPO)
    staging = output / STAGING / "masks"  # where remn segment writes its masks until it is done
    samples: list[tuple[int, int]] = []  # (frames written, rss KiB)
    while child.poll() is None:
        memory = process_memory(child.pid)
        done = len(list(staging.iterdir())) if staging.is_dir() else 0
        if memory is not None:
            samples.append((done, memory[0] // 1024))
        time.sleep(0.5)
    if child.returncode != 0:
        print(f"remn segment failed with status {child.returncode}")
        return 1
    reference = next((rss for done, rss in samples if done >= args.after), None)
    later = [rss for done, rss in samples if done >= args.after]
    if reference is None or not later:
        print("the run was too short to measure after the reference frame")
        return 1
    peak = max(later)
    growth = 100.0 * (peak - reference) / reference
    record = json.loads((output / "segment.json").read_text())
    result = {
        "frames": args.frames,
        "input": f"{args.width}x{args.height}",
        "processing_size": args.size,
        "device": args.device,
        "rss_at_reference_mib": reference / 1024,
        "peak_rss_after_mib": peak / 1024,
        "growth_percent": growth,
        "reference_frame": args.after,
        "model_fps": record["model_fps"],
        "seconds": record["seconds"],
    }
    (args.out / "segment_memory.json").write_text(json.dumps(result, indent=1))
    print(
        f"RSS after {args.after} frames: {reference / 1024:.0f} MiB; peak afterwards: {peak / 1024:.0f} MiB; "
        f"growth {growth:+.2f}% (limit 5%)"
    )
    print(
        f"model FPS {record['model_fps']:.2f} on {args.device} at processing size {args.size}; "
        f"whole run {record['seconds']:.0f} s"
    )
    return 0 if growth < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
