"""Cost and agreement of two inference options on generated clips (quoted in docs/benchmarks.md).

    OMP_NUM_THREADS=1 python scripts/inference_options.py [--frames 30] [--size 480] [--videos 3]
        [--checkpoint W --heldout DIR]   # trained weights on a DAVIS-layout held-out set (make demo's)

* ``inference.flip``: frames per second with and without it on one generated clip;
* ``runtime.precision``: what ``auto`` resolves to here, and the label agreement of bf16 with
  fp32 on generated held-out videos, with random weights made decisive
  (:func:`remn.benchmark.suite.make_decisive`; a random network's near-ties would flip on any
  rounding), or with ``--checkpoint`` on the videos of ``--heldout`` (e.g. ``make demo``'s
  runs/demo/data/heldout and its weights), at their own size.
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
from remn.data.vos import DAVIS2017  # noqa: E402
from remn.inference import InferenceCore, build_core, segment_video, warm_up  # noqa: E402
from remn.runtime import resolve_precision  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "remn.yaml"


def _run(model, overrides: list[str], video) -> tuple[float, list[np.ndarray]]:
    core = InferenceCore(model, load_config(CONFIG, overrides))
    frames = [
        Frame(t, t, f"{t:05d}", image, video.masks[0] if t == 0 else None) for t, image in enumerate(video.frames)
    ]
    warm_up(core, frames, 3)
    done = list(segment_video(core, frames, len(frames), labels="all"))
    return len(done) / sum(d.seconds for d in done), [d.labels for d in done]


def _heldout_agreement(model, root: Path) -> None:
    """bf16 against fp32 on every video of a DAVIS-layout set, at the videos' own size."""
    dataset = DAVIS2017(root, split="val")
    agree = total = 0
    for name in dataset.videos:
        labels = {}
        for precision in ("fp32", "bf16"):
            core = InferenceCore(model, load_config(CONFIG, ["inference.size=-1", f"runtime.precision={precision}"]))
            video = dataset.video(name)
            labels[precision] = [d.labels for d in segment_video(core, video, video.num_steps) if d.labels is not None]
        agree += sum(int((a == b).sum()) for a, b in zip(labels["fp32"], labels["bf16"]))
        total += sum(a.size for a in labels["fp32"])
    print(
        f"bf16 vs fp32 with the trained weights: {100 * agree / total:.3f}% of labels agree over "
        f"{len(dataset.videos)} held-out videos of {root}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=480, help="frame height; width 16:9")
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--checkpoint", help="trained weights (with --heldout: agreement on those videos)")
    parser.add_argument("--heldout", type=Path, help="a DAVIS-layout set whose val list is held out")
    args = parser.parse_args()
    core, _ = build_core(load_config(CONFIG, ["runtime.device=cpu"]), args.checkpoint)
    model = core.model
    if args.checkpoint and args.heldout:
        _heldout_agreement(model, args.heldout)
        return
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
