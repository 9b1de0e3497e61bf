"""Run REMN and STCN mode side by side over a generated clip and report what happens.

With random weights (the default here) the
masks it predicts mean nothing. What this shows is the machinery: shapes through
every stage, padding to multiples of 16 and back, which frames ASM or the fixed
interval writes, how RRM keeps the memory bounded, and the time per frame.

    python scripts/compare_modes.py [--frames 40] [--height 240] [--width 424] [--objects 2] [key=value ...]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from remn.config import REMNConfig, load_config  # noqa: E402
from remn.memory import build_memory_bank  # noqa: E402
from remn.model import build_model, normalize_image, pad_divide_by, unpad  # noqa: E402
from remn.runtime import autocast, resolve_device, seed_everything  # noqa: E402


def make_clip(frames: int, height: int, width: int, objects: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A small synthetic clip: textured ellipses moving over a textured background.

    Returns RGB frames ``(T, 3, H, W)`` in [0, 1] and label maps ``(T, H, W)``.
    """
    gen = torch.Generator().manual_seed(seed)

    def texture(h: int, w: int) -> torch.Tensor:
        coarse = torch.rand(1, 3, max(2, h // 24), max(2, w // 24), generator=gen)
        return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)

    background = texture(height, width)
    skins = [texture(height, width) for _ in range(objects)]
    ys = torch.arange(height).view(-1, 1).float()
    xs = torch.arange(width).view(1, -1).float()
    start = torch.rand(objects, 2, generator=gen) * torch.tensor([height, width]) * 0.6 + \
        torch.tensor([height, width]) * 0.2
    velocity = (torch.rand(objects, 2, generator=gen) - 0.5) * 6
    radii = (torch.rand(objects, 2, generator=gen) * 0.08 + 0.08) * min(height, width)
    images, labels = [], []
    for t in range(frames):
        image = background.clone()
        label = torch.zeros(height, width, dtype=torch.long)
        for i in range(objects):
            cy, cx = (start[i] + velocity[i] * t + 10 * torch.sin(torch.tensor(t / 7.0 + i))).tolist()
            ry, rx = (radii[i] * (1 + 0.2 * math.sin(t / 5.0))).tolist()
            inside = ((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2 <= 1
            image = torch.where(inside, skins[i], image)
            label[inside] = i + 1
        images.append(image)
        labels.append(label)
    return torch.stack(images), torch.stack(labels)


def run_clip(cfg: REMNConfig, images: torch.Tensor, first_labels: torch.Tensor, device: torch.device,
             show_shapes: bool) -> dict:
    """Propagate the first frame's labels through the clip; return timings and memory sizes."""
    seed_everything(cfg.runtime.seed)
    model = build_model(cfg).to(device).eval()
    bank = build_memory_bank(cfg.memory, model)
    num_objects = int(first_labels.max())
    first_prob = F.one_hot(first_labels, num_objects + 1).permute(2, 0, 1).float()
    times, sizes, written = [], [], []
    prev_prob = None
    with torch.inference_mode(), autocast(device, cfg.runtime.precision):
        for t in tqdm(range(images.shape[0]), desc=cfg.name, leave=False):
            start = time.perf_counter()
            frame, pads = pad_divide_by(normalize_image(images[t].to(device)))
            feats = model.encode_key(frame[None])
            if t == 0:
                prob, _ = pad_divide_by(first_prob.to(device))
                prob[0] += 1 - prob.sum(0)  # padded pixels are background
                key = model.enhance_key(feats.key, prob[None])[0]
            else:
                key = model.enhance_key(feats.key, prev_prob[None])[0]
                prob = model.segment(bank.read(key)[None], feats).prob[0]
            if t == 0 or bank.should_write(t, prob):
                values = model.encode_value(frame[None], feats.f16, prob[None, 1:])[0]
                bank.write(t, key, values, prob, permanent=(t == 0))
                written.append(t)
            output = unpad(prob, pads).argmax(0).cpu()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - start)
            sizes.append(len(bank))
            prev_prob = prob
            if t == 0:
                shapes = {"frame": tuple(images[t].shape), "padded": tuple(frame.shape), "key": tuple(key.shape),
                          "f16": tuple(feats.f16.shape), "f8": tuple(feats.f8.shape), "f4": tuple(feats.f4.shape),
                          "values": tuple(values.shape)}
            elif t == 1:
                shapes.update(readout=tuple(bank.read(key).shape), prob=tuple(prob.shape),
                              output=tuple(output.shape))
    if show_shapes:
        print("  shapes: " + ", ".join(f"{k} {v}" for k, v in shapes.items()))
    steady = times[1:] or times
    return {"ms": 1000 * sum(steady) / len(steady), "sizes": sizes, "written": written,
            "reductions": list(bank.reductions), "working": bank.num_working}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--width", type=int, default=424)
    parser.add_argument("--objects", type=int, default=2)
    parser.add_argument("overrides", nargs="*", help="key=value config overrides for both modes")
    args = parser.parse_args()

    remn_cfg = load_config(REPO / "configs" / "remn.yaml", args.overrides)
    stcn_cfg = load_config(REPO / "configs" / "stcn.yaml", args.overrides)
    device = resolve_device(remn_cfg.runtime.device)
    images, labels = make_clip(args.frames, args.height, args.width, args.objects)
    print(f"REMN demo on {device} ({torch.get_num_threads()} CPU threads), {remn_cfg.runtime.precision}: "
          f"a generated clip of {args.frames} frames at {args.height}x{args.width} with {args.objects} objects.")
    print("Weights are random until training lands: the masks are meaningless, the machinery is not.\n")

    results = {}
    for cfg in (remn_cfg, stcn_cfg):
        print(f"[{cfg.name}] FRM={cfg.model.frm} ASM={cfg.memory.asm} RRM={cfg.memory.rrm} "
              f"(N={cfg.memory.capacity}, mem_every={cfg.memory.mem_every})")
        res = run_clip(cfg, images, labels[0], device, show_shapes=True)
        results[cfg.name] = res
        print(f"  frames written to memory: {res['written']}")
        print(f"  memory size (frames) over time: {res['sizes']}")
        if cfg.memory.rrm:
            print(f"  RRM reductions (policy per call): {res['reductions']}; working frames at the end: "
                  f"{res['working']} <= N = {cfg.memory.capacity}")
        print(f"  {res['ms']:.0f} ms per frame after the first ({1000 / res['ms']:.2f} FPS)\n")
    ratio = results[stcn_cfg.name]["ms"] / results[remn_cfg.name]["ms"]
    print(f"REMN/STCN speed ratio on this {args.frames}-frame clip: {ratio:.2f}. Both memories are small here; "
          "RRM's bounded memory pays off on long videos (scripts/benchmark.py, once the speed issue lands).")


if __name__ == "__main__":
    main()
