"""Does `remn segment` run a long video in bounded memory?

Writes a generated video (default 2,000 frames at 854x480: a textured background with two
textured objects that drift, rotate and cross), runs ``remn segment`` on it in a child process
with RRM on, and samples the child's resident memory (VmRSS) while it runs. Prints the memory
after the first 200 frames, the peak after that, and the growth in percent.

    python scripts/segment_memory.py [--frames 2000] [--size 240] [--device cpu] [--out /tmp/remn-long]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from remn.data.masks import save_mask  # noqa: E402


def _texture(rng: np.random.Generator, height: int, width: int, colour) -> np.ndarray:
    small = rng.random((height // 16 + 2, width // 16 + 2, 1))
    noise = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    return np.clip(np.array(colour)[None, None] * (0.6 + 0.6 * noise), 0, 255)


def _ellipse_mask(height, width, cx, cy, ax, ay, angle) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    cv2.ellipse(mask, (int(cx), int(cy)), (int(ax), int(ay)), angle, 0, 360, 1, -1)
    return mask.astype(bool)


def scene(t: int, height: int, width: int, textures) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``t`` and its labels: two objects on elliptic paths; object 2 passes in front."""
    background, first, second = textures
    frame = background.copy()
    labels = np.zeros((height, width), np.int64)
    paths = [(0.35, 0.45, 0.18, 0.12, 0.011, 0.0), (0.62, 0.55, 0.22, 0.2, 0.007, 1.7)]
    for obj, (texture, (px, py, rx, ry, speed, phase)) in enumerate(zip((first, second), paths), start=1):
        cx = width * (px + rx * math.cos(speed * t + phase))
        cy = height * (py + ry * math.sin(speed * t + phase))
        mask = _ellipse_mask(height, width, cx, cy, width * 0.07, height * 0.1, (t * 0.7 * obj) % 360)
        frame[mask] = texture[mask]
        labels[mask] = obj
    return frame.astype(np.uint8), labels


def write_video(path: Path, frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    textures = (_texture(rng, height, width, (90, 120, 80)), _texture(rng, height, width, (220, 80, 60)),
                _texture(rng, height, width, (60, 90, 230)))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    first = None
    for t in range(frames):
        frame, labels = scene(t, height, width, textures)
        if t == 0:
            first = labels
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return first


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


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
    command = [sys.executable, "-m", "remn", "segment", str(video), "--mask", str(args.out / "first.png"),
               "--output", str(output), "--size", str(args.size), "--device", args.device, "--overwrite",
               "--quiet", "memory.rrm=true", *args.overrides]
    child = subprocess.Popen(command, cwd=REPO)
    staging = output / ".partial-masks"
    samples: list[tuple[int, int]] = []  # (frames written, rss KiB)
    while child.poll() is None:
        rss = rss_kib(child.pid)
        done = len(list(staging.iterdir())) if staging.is_dir() else 0
        if rss is not None:
            samples.append((done, rss))
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
    result = {"frames": args.frames, "input": f"{args.width}x{args.height}", "processing_size": args.size,
              "device": args.device, "rss_at_reference_mib": reference / 1024, "peak_rss_after_mib": peak / 1024,
              "growth_percent": growth, "reference_frame": args.after, "model_fps": record["model_fps"],
              "seconds": record["seconds"]}
    (args.out / "segment_memory.json").write_text(json.dumps(result, indent=1))
    print(f"RSS after {args.after} frames: {reference / 1024:.0f} MiB; peak afterwards: {peak / 1024:.0f} MiB; "
          f"growth {growth:+.2f}% (limit 5%)")
    print(f"model FPS {record['model_fps']:.2f} on {args.device} at processing size {args.size}; "
          f"whole run {record['seconds']:.0f} s")
    return 0 if growth < 5 else 1


if __name__ == "__main__":
    sys.exit(main())
