"""Cost and agreement of two inference options on generated clips (quoted in docs/benchmarks.md).

    OMP_NUM_THREADS=1 python scripts/inference_options.py [--frames 30] [--size 480] [--videos 3]

* ``inference.flip``: frames per second with and without it on one generated clip;
* ``runtime.precision``: what ``auto`` resolves to here, and the label agreement of bf16 with
  fp32 on generated held-out videos, with random weights made decisive
  (:func:`remn.benchmark.suite.make_decisive`; a random network's near-ties would flip on any
  rounding).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from remn.benchmark.suite import make_decisive  # noqa: E402
from remn.config import load_config  # noqa: E402
from remn.data.synthetic import generate_video  # noqa: E402
from remn.data.video import Frame  # noqa: E402
from remn.inference import InferenceCore, segment_video, warm_up  # noqa: E402
from remn.model import build_model  # noqa: E402
from remn.runtime import resolve_precision, seed_everything  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "remn.yaml"


def _run(model, overrides: list[str], video) -> tuple[float, list[np.ndarray]]:
    core = InferenceCore(model, load_config(CONFIG, overrides))
    frames = [
        Frame(t, t, f"{t:05d}", image, video.masks[0] if t == 0 else None) for t, image in enumerate(video.frames)
    ]
    warm_up(core, frames, 3)
    done = list(segment_video(core, frames, len(frames), labels="all"))
    return len(done) / sum(d.seconds for d in done), [d.labels for d in done]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=480, help="frame height; width 16:9")
    parser.add_argument("--videos", type=int, default=3)
    args = parser.parse_args()
    seed_everything(0)
    model = build_model(load_config(CONFIG))
    make_decisive(model)
    size = [f"inference.size={args.size}", "runtime.device=cpu"]
    shape = (args.frames, args.size, args.size * 16 // 9)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU {torch.backends.cpu.get_cpu_capability()}"
    )
    video = generate_video(100, *shape)
    plain, _ = _run(model, [*size, "runtime.precision=fp32"], video)
    flip, _ = _run(model, [*size, "runtime.precision=fp32", "inference.flip=true"], video)
    print(f"flip: {plain:.2f} FPS without, {flip:.2f} FPS with ({plain / flip:.2f}x the time), {shape} clip, fp32")
    print(f"runtime.precision=auto resolves to {resolve_precision('auto', torch.device('cpu'))} on this CPU")
    agree, total = 0, 0
    for seed in range(200, 200 + args.videos):  # seeds no test or training run uses: held out
        video = generate_video(seed, *shape)
        fast32, fp32 = _run(model, [*size, "runtime.precision=fp32"], video)
        fast16, bf16 = _run(model, [*size, "runtime.precision=bf16"], video)
        agree += sum(int((a == b).sum()) for a, b in zip(fp32, bf16))
        total += sum(a.size for a in fp32)
        print(f"  video {seed}: fp32 {fast32:.2f} FPS, bf16 {fast16:.2f} FPS")
    print(f"bf16 vs fp32: {100 * agree / total:.3f}% of labels agree over {args.videos} videos of {shape}")


if __name__ == "__main__":
    main()
