"""Speed and memory of REMN against STCN mode and the single-module ablations (Table III, Fig. 1(b)).

One run measures, on the same machine and the same generated video, the FPS and peak memory
of every configuration at 1x and 3x video length, with 1 and 3 objects. Each measurement runs
in a fresh subprocess, so that peak memory (process RSS on CPU, the allocator's peak on CUDA)
belongs to that configuration alone. Frames are generated on the fly on the device (the timer
starts with the frame on the device, as in STCN's FPS protocol) and the labels of every frame
are copied to the host inside the timed step.

    python scripts/benchmark.py                      # the suite; GPU setting on CUDA, CPU setting on CPU
    python scripts/benchmark.py --quick              # a 2-minute smoke run
    python scripts/benchmark.py --fast-paths         # gain and agreement of each inference fast path
    python scripts/benchmark.py --bank               # memory-bank storage: preallocated vs concatenation
    python scripts/benchmark.py --read               # one memory read: dense, gathered, chunked
    python scripts/benchmark.py --profile            # which kernels take the time in one frame step

Settings (docs/benchmarks.md explains them): on a GPU, 2,000 and 6,000 frames at 854x480 under
bf16. On a CPU, 400 and 1,200 frames at 288x160 under bf16 with channels-last, one thread per
process, STCN's dense top-k read (``inference.topk_gather=false``, as the paper measured STCN)
and every fixed-interval write (``memory.mem_every=1``), so that STCN's memory reaches the
length it has after 6,000 frames at its usual interval of 5. ``--set key=value`` changes any
config field for every configuration.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from remn.config import load_config  # noqa: E402
from remn.inference import InferenceCore  # noqa: E402
from remn.memory.bank import MemoryBank  # noqa: E402
from remn.memory.policy import FixedInterval  # noqa: E402
from remn.model import build_model  # noqa: E402
from remn.model.checkpoint import load_network_weights  # noqa: E402
from remn.runtime import resolve_device, seed_everything  # noqa: E402

CONFIGS = {
    "remn": "configs/remn.yaml",
    "stcn": "configs/stcn.yaml",
    "no_frm": "configs/ablation/no_frm.yaml",
    "no_asm": "configs/ablation/no_asm.yaml",
    "no_rrm": "configs/ablation/no_rrm.yaml",
    "frm_only": "configs/ablation/frm_only.yaml",
}
"""Names ``--configs`` accepts and the files they load."""

LABELS = {"remn": "REMN", "stcn": "STCN mode", "no_frm": "REMN w/o FRM", "no_asm": "REMN w/o ASM",
          "no_rrm": "REMN w/o RRM", "frm_only": "FRM only"}


@dataclass(frozen=True)
class Setting:
    """Video size and length of a suite run."""

    frames: int
    height: int
    width: int
    precision: str = "fp32"
    threads: int = 0
    """CPU threads per process; 0 keeps torch's default."""
    overrides: tuple[str, ...] = ()


GPU_SETTING = Setting(frames=2000, height=480, width=854, precision="bf16")
CPU_SETTING = Setting(frames=400, height=160, width=288, precision="bf16", threads=1,
                      overrides=("memory.mem_every=1", "inference.topk_gather=false", "inference.channels_last=true"))
QUICK_SETTING = Setting(frames=24, height=64, width=112, threads=1, overrides=("memory.mem_every=1",))

PLAIN_PATH = ("inference.topk_gather=false", "inference.chunk_size=0", "inference.batch_objects=false",
              "inference.channels_last=false",
              "runtime.precision=fp32")
"""Every fast path off: STCN's dense read, objects one at a time, fp32."""


# --------------------------------------------------------------------------------------------
# The video


class MovingObjects:
    """A synthetic video made on the fly: textured ellipses gliding over a slowly panning,
    textured background, each on its own smooth path and breathing slowly.

    Frame ``t`` depends only on ``t`` and the seed, so a video of length n is the prefix of
    every longer one: the 1x video is the first third of the 3x video. Nothing but the
    textures is held in memory.
    """

    def __init__(self, height: int, width: int, objects: int, seed: int = 0,
                 device: torch.device | str = "cpu") -> None:
        self.height, self.width, self.objects = height, width, objects
        self.device = torch.device(device)
        gen = torch.Generator().manual_seed(seed)
        margin = max(8, min(height, width) // 4)
        self.margin = margin
        self.background = self._texture(gen, height + 2 * margin, width + 2 * margin)
        self.skins = [self._texture(gen, height, width) for _ in range(objects)]
        size = torch.tensor([height, width], dtype=torch.float64)
        self.centre = (0.3 + 0.4 * torch.rand(objects, 2, generator=gen, dtype=torch.float64)) * size
        self.amplitude = (0.1 + 0.15 * torch.rand(objects, 2, generator=gen, dtype=torch.float64)) * size
        self.speed = (0.01 + 0.03 * torch.rand(objects, 2, generator=gen, dtype=torch.float64))
        self.phase = 2 * math.pi * torch.rand(objects, 2, generator=gen, dtype=torch.float64)
        self.radius = (0.08 + 0.07 * torch.rand(objects, 2, generator=gen, dtype=torch.float64)) * min(height, width)
        self.ys = torch.arange(height, device=self.device, dtype=torch.float32).view(-1, 1)
        self.xs = torch.arange(width, device=self.device, dtype=torch.float32).view(1, -1)

    def _texture(self, gen: torch.Generator, height: int, width: int) -> torch.Tensor:
        coarse = torch.rand(1, 3, max(2, height // 24), max(2, width // 24), generator=gen)
        smooth = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)[0]
        fine = 0.15 * (torch.rand(3, height, width, generator=gen) - 0.5)
        return ((smooth + fine).clamp(0, 1) * 255).to(torch.uint8).to(self.device)

    def _ellipses(self, t: int) -> list[torch.Tensor]:
        masks = []
        for i in range(self.objects):
            cy, cx = (self.centre[i] + self.amplitude[i] * torch.sin(self.speed[i] * t + self.phase[i])).tolist()
            breathe = 1 + 0.15 * math.sin(0.05 * t + i)
            ry, rx = (self.radius[i] * breathe).tolist()
            masks.append(((self.ys - cy) / ry) ** 2 + ((self.xs - cx) / rx) ** 2 <= 1)
        return masks

    def frame(self, t: int) -> torch.Tensor:
        """``(3, H, W)`` uint8 RGB on the device."""
        dy = int(round(self.margin * (1 + math.sin(0.013 * t))))
        dx = int(round(self.margin * (1 + math.sin(0.009 * t + 1.0))))
        image = self.background[:, dy:dy + self.height, dx:dx + self.width].clone()
        for skin, inside in zip(self.skins, self._ellipses(t)):
            image = torch.where(inside, skin, image)
        return image

    def labels(self, t: int) -> np.ndarray:
        """``(H, W)`` int64 object ids 1..K (later objects in front), on the host."""
        labels = torch.zeros(self.height, self.width, dtype=torch.int64, device=self.device)
        for i, inside in enumerate(self._ellipses(t)):
            labels[inside] = i + 1
        return labels.cpu().numpy()


# --------------------------------------------------------------------------------------------
# One measurement (runs in its own process)


def make_decisive(model: torch.nn.Module) -> None:
    """Random weights, made decisive: the value encoder's mask inputs x300, the decoder's head x10.

    A random network's top two probabilities differ by less than 1e-3 at every pixel, so its
    labels flip on any rounding and comparing labels between fast paths would measure nothing;
    amplified, its readouts differ between objects and its predictions are confident, as a
    trained network's are (the same network as ``tests/test_fast_paths.py``).
    """
    with torch.no_grad():
        model.value_encoder.conv1.weight[:, 3:].mul_(300)
        model.decoder.pred.weight.mul_(10)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS count (Linux: ``clear_refs`` 5); False where impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _memory_now(device: torch.device) -> tuple[int, int]:
    """(current, peak so far) in bytes: CUDA allocations on a GPU, process RSS on a CPU."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device)), int(torch.cuda.max_memory_allocated(device))
    try:
        return _proc_status_kib("VmRSS") * 1024, _proc_status_kib("VmHWM") * 1024
    except (OSError, KeyError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return peak, peak


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{name}, {threads} thread{'s' if threads > 1 else ''}"


def build_core(config: str, overrides: Sequence[str], precision: str, device: torch.device,
               checkpoint: str | None = None, decisive: bool = False) -> tuple[InferenceCore, str]:
    """The inference core of configuration ``config`` and a line saying which weights it has.

    Frames are generated at the size the network should see, so nothing is resized.
    """
    cfg = load_config(REPO / CONFIGS[config], ["inference.size=-1", *overrides, f"runtime.precision={precision}",
                                               f"runtime.device={device}"])
    seed_everything(cfg.runtime.seed)
    model = build_model(cfg)
    if checkpoint:
        weights = load_network_weights(model, checkpoint).description
    elif decisive:
        make_decisive(model)
        weights = f"random weights made decisive (seed {cfg.runtime.seed}; mask inputs x300, head x10)"
    else:
        weights = f"random weights (seed {cfg.runtime.seed}; FRM at its identity initialisation)"
    return InferenceCore(model.to(device), cfg, device), weights


def run_one(spec: dict) -> dict:
    """Segment one generated video with one configuration; returns what was measured."""
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = resolve_device(spec["device"])
    core, weights = build_core(spec["config"], spec["overrides"], spec["precision"], device, spec.get("checkpoint"),
                               spec.get("decisive", False))
    video = MovingObjects(spec["height"], spec["width"], spec["objects"], seed=spec["seed"], device=device)
    first = video.labels(0)
    frames = spec["frames"]

    for t in range(min(spec["warmup"], frames)):  # untimed: lazy initialisation, kernel choices
        core.labels(core.step(video.frame(t), first if t == 0 else None))
    core.reset()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss_reset = device.type == "cuda" or _reset_peak_rss()

    keep_labels = spec.get("labels_out")
    kept: list[np.ndarray] = []
    samples = sorted({max(1, round(frames * i / 50)) for i in range(1, 51)})
    curve = []  # (frames so far, seconds so far, memory now, peak so far, bank frames, bank bytes)
    seconds = 0.0
    writes = 0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    for t in tqdm(range(frames), desc=f"{spec['config']} x{spec['objects']} {frames}f", leave=False,
                  disable=not spec.get("progress", False)):
        image = video.frame(t)
        _sync(device)
        start = time.perf_counter()
        prob = core.step(image, first if t == 0 else None, last=t == frames - 1)
        labels = core.labels(prob)  # the mask leaves the device: the step's one synchronisation
        seconds += time.perf_counter() - start
        writes += int(getattr(core.bank.policy, "last_write", None) == t)
        if keep_labels:
            kept.append(labels.astype(np.uint8))
        if t + 1 in samples:
            now, peak = _memory_now(device)
            curve.append((t + 1, seconds, now, peak, len(core.bank), core.bank.buffer_bytes))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = usage.ru_utime + usage.ru_stime - cpu_start
    if keep_labels:
        np.save(keep_labels, np.stack(kept))
    _, peak = _memory_now(device)
    return {
        "config": spec["config"], "objects": spec["objects"], "frames": frames,
        "height": spec["height"], "width": spec["width"], "precision": spec["precision"],
        "overrides": spec["overrides"], "device": str(device), "device_name": device_name(device),
        "weights": weights, "seconds": seconds, "fps": frames / seconds, "cpu_seconds": cpu_seconds,
        "peak_memory_bytes": peak,
        "peak_memory_kind": "cuda_max_allocated" if device.type == "cuda" else
        ("process_peak_rss_after_warmup" if rss_reset else "process_peak_rss"),
        "bank_frames": len(core.bank), "bank_buffer_frames": core.bank.buffer_frames,
        "bank_bytes": core.bank.buffer_bytes, "writes": writes,
        "reductions": len(core.bank.reductions), "curve": curve,
        "torch": torch.__version__,
        "onednn_primitive_cache": os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "default (1024)"),
    }


ONEDNN_CACHE = "64"
"""oneDNN primitive cache size of the workers (``ONEDNN_PRIMITIVE_CACHE_CAPACITY``, unless set).

On a CPU, a bf16 matrix product goes through oneDNN, which caches one primitive, with its
buffers, per input shape (1,024 by default). A memory that grows by a frame at each write
gives the dense read a new shape every frame, and the cache kept about 10 MiB per frame:
STCN mode's process grew to 5.3 GiB after 450 frames at 288x160 with a 0.1 GiB memory bank.
64 entries hold every shape of the fixed-size layers (REMN's FPS was unchanged: 10.20 against
10.27) and let the stale ones go (STCN mode: 1.1 GiB at 150 frames instead of 2.2 GiB).
"""


def worker_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE)
    return env


def spawn(spec: dict, worker: str = "--worker") -> dict:
    """:func:`run_one` (or :func:`read_one`) in a fresh Python process (peak memory is per process)."""
    result = subprocess.run([sys.executable, str(Path(__file__).resolve()), worker, json.dumps(spec)],
                            capture_output=True, text=True, cwd=REPO, env=worker_environment())
    if result.returncode != 0:
        raise RuntimeError(f"benchmark run {spec['config']} ({spec['frames']} frames, {spec['objects']} "
                           f"object(s)) failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# The suite


def _median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def summarise(runs: list[dict]) -> dict:
    """Median FPS and largest peak memory of repeated runs, keyed ``config/objects/frames``."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault(f"{run['config']}/{run['objects']}/{run['frames']}", []).append(run)
    summary = {}
    for key, group in groups.items():
        first = group[0]
        summary[key] = {
            "config": first["config"], "objects": first["objects"], "frames": first["frames"],
            "fps": _median([r["fps"] for r in group]),
            "fps_all": [r["fps"] for r in group],
            "peak_memory_bytes": max(r["peak_memory_bytes"] for r in group),
            "bank_bytes": max(r["bank_bytes"] for r in group),
            "bank_frames": first["bank_frames"], "writes": first["writes"], "reductions": first["reductions"],
        }
    return summary


def format_table(summary: dict, configs: Sequence[str], objects: Sequence[int], lengths: Sequence[int],
                 header: str) -> str:
    """The printed table: FPS, peak memory and memory frames per configuration, ratios 3x/1x
    and REMN/config."""
    lines = [header]
    short, long = min(lengths), max(lengths)
    for count in objects:
        lines.append("")
        lines.append(f"{count} object{'s' if count > 1 else ''}")
        cols = [f"FPS {n}f" for n in lengths] + [f"FPS {long}/{short}"] + \
            [f"peak MiB {n}f" for n in lengths] + [f"peak {long}/{short}", "bank MiB", "bank frames", "writes",
                                                   "REMN/this FPS"]
        lines.append(f"{'configuration':<14}" + "".join(f"{c:>15}" for c in cols))
        for name in configs:
            rows = [summary.get(f"{name}/{count}/{n}") for n in lengths]
            if any(r is None for r in rows):
                continue
            remn = [summary.get(f"remn/{count}/{n}") for n in lengths]
            fps = [r["fps"] for r in rows]
            mem = [r["peak_memory_bytes"] / 2**20 for r in rows]
            ratio = " / ".join(f"{a['fps'] / r['fps']:.2f}" for a, r in zip(remn, rows)) if all(remn) else "-"
            cells = [f"{f:.2f}" for f in fps] + [f"{fps[-1] / fps[0]:.3f}"] + [f"{m:.0f}" for m in mem] + \
                [f"{mem[-1] / mem[0]:.3f}", " / ".join(f"{r['bank_bytes'] / 2**20:.1f}" for r in rows),
                 " / ".join(str(r["bank_frames"]) for r in rows), " / ".join(str(r["writes"]) for r in rows), ratio]
            lines.append(f"{LABELS.get(name, name):<14}" + "".join(f"{c:>15}" for c in cells))
    return "\n".join(lines)


def draw_figures(summary: dict, runs: list[dict], configs: Sequence[str], objects: Sequence[int],
                 folder: Path, title: str) -> list[Path]:
    """``fps_vs_length.png`` and ``memory_vs_length.png``: curves from the longest runs (FPS and
    peak memory of the video's prefix of each length), dots from the separate shorter runs.
    The memory figure has a second row with the memory bank's own size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    longest = max(r["frames"] for r in runs)
    kind_of_peak = "peak CUDA memory (MiB)" if runs[0]["device"].startswith("cuda") else "peak process RSS (MiB)"
    panels = {"fps": [("FPS (frames / second)", "fps")],
              "memory": [(kind_of_peak, "peak_memory_bytes"), ("memory bank buffers (MiB)", "bank_bytes")]}
    column = {"peak_memory_bytes": 3, "bank_bytes": 5}
    paths = []
    for kind, rows in panels.items():
        fig, axes = plt.subplots(len(rows), len(objects), figsize=(6 * len(objects), 4.2 * len(rows)),
                                 squeeze=False)
        for row, (ylabel, field) in enumerate(rows):
            for ax, count in zip(axes[row], objects):
                for i, name in enumerate(configs):
                    colour = f"C{i}"
                    curve_runs = [r for r in runs if r["config"] == name and r["objects"] == count
                                  and r["frames"] == longest]
                    if curve_runs:
                        curve = np.asarray(curve_runs[0]["curve"], dtype=np.float64)
                        y = curve[:, 0] / curve[:, 1] if field == "fps" else curve[:, column[field]] / 2**20
                        ax.plot(curve[:, 0], y, color=colour, label=LABELS.get(name, name), linewidth=1.6)
                    points = sorted((v["frames"], v[field] if field == "fps" else v[field] / 2**20)
                                    for v in summary.values() if v["config"] == name and v["objects"] == count)
                    if points:
                        ax.plot(*zip(*points), "o", color=colour, markersize=6)
                ax.set_xlabel("video length (frames)")
                ax.set_ylabel(ylabel)
                ax.set_title(f"{count} object{'s' if count > 1 else ''}")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
        fig.suptitle("\n".join(textwrap.wrap(title, 90 * len(objects))), fontsize=8)
        fig.tight_layout()
        path = folder / f"{kind}_vs_length.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def run_suite(args: argparse.Namespace, setting: Setting) -> dict:
    lengths = [setting.frames * m for m in args.lengths]
    overrides = [*setting.overrides, *args.set]
    specs = []
    for repeat in range(args.repeats):
        for count in args.objects:
            for frames in lengths:
                for name in args.configs:  # configurations interleaved: same load, back to back
                    specs.append({"config": name, "objects": count, "frames": frames, "height": setting.height,
                                  "width": setting.width, "device": args.device, "precision": setting.precision,
                                  "overrides": overrides, "checkpoint": args.checkpoint, "seed": args.seed,
                                  "warmup": args.warmup, "threads": setting.threads})
    runs = []
    started = time.perf_counter()
    for spec in tqdm(specs, desc="benchmark", unit="run"):
        runs.append(spawn(spec))
    result = {"runs": runs, "wall_seconds": time.perf_counter() - started,
              "setting": {"frames": lengths, "height": setting.height, "width": setting.width,
                          "overrides": overrides, "precision": setting.precision, "repeats": args.repeats,
                          "checkpoint": args.checkpoint, "configs": list(args.configs),
                          "objects": list(args.objects), "command": " ".join(sys.argv)}}
    return report(result)


def report(result: dict) -> dict:
    """Summary, printed table and figure title of a suite's runs (also for a saved JSON, ``--report``)."""
    runs, setting = result["runs"], result["setting"]
    setting.setdefault("configs", list(dict.fromkeys(r["config"] for r in runs)))
    setting.setdefault("objects", sorted({r["objects"] for r in runs}))
    summary = summarise(runs)
    first = runs[0]
    weights = first["weights"]
    overrides = setting["overrides"]
    repeats = max(len(v["fps_all"]) for v in summary.values())
    header = (f"REMN benchmark: {first['device_name']} ({first['device']}), {setting['precision']}, "
              f"{setting['width']}x{setting['height']}, torch {first['torch']}, {weights}; "
              f"overrides {overrides or 'none'}; median of {repeats} run(s); "
              f"peak memory = {first['peak_memory_kind']}; bank MiB = the memory bank's buffers")
    if first["device"] == "cpu":
        header += f"; oneDNN primitive cache {first.get('onednn_primitive_cache', 'default (1024)')}"
    if not setting.get("checkpoint"):
        header += ("\nnote: random weights predict meaningless masks, so ASM's writes (column 'writes') are not "
                   "those of a trained network")
    table = format_table(summary, setting["configs"], setting["objects"], setting["frames"], header)
    title = (f"{first['device_name']}, {setting['precision']}, {setting['width']}x{setting['height']}, "
             f"{'checkpoint ' + Path(setting['checkpoint']).name if setting.get('checkpoint') else 'random weights'}"
             f"; overrides: {' '.join(overrides) or 'none'}")
    result.update(title=title, table=table, summary=summary, weights=weights, device=first["device"],
                  device_name=first["device_name"])
    return result


# --------------------------------------------------------------------------------------------
# Fast paths


FAST_PATHS = {
    "plain (all off, fp32)": (),
    "topk_gather": ("inference.topk_gather=true",),
    "topk_gather + chunk_size": ("inference.topk_gather=true", "inference.chunk_size={chunk}"),
    "batch_objects": ("inference.batch_objects=true",),
    "channels_last": ("inference.channels_last=true",),
    "bf16 autocast": ("runtime.precision=bf16",),
    "defaults (gather, batch)": ("inference.topk_gather=true", "inference.batch_objects=true"),
    "defaults + bf16 + channels_last": ("inference.topk_gather=true", "inference.batch_objects=true",
                                        "runtime.precision=bf16", "inference.channels_last=true"),
}
"""Each variant is the plain path with the listed switches turned on."""


def run_fast_paths(args: argparse.Namespace, setting: Setting) -> dict:
    """Each fast path on top of the plain path: FPS over the setting's video, and the share of
    label pixels equal to the plain fp32 path's, over that video and per frame against a memory
    fixed to the annotated frame (``--agreement-frames`` frames; no error feeds back through
    the memory there)."""
    import tempfile

    memory_overrides = [o for o in setting.overrides if not o.startswith("inference.")]  # variants set those
    variants = [v for v in FAST_PATHS if v in args.variants] if args.variants else list(FAST_PATHS)
    decisive = not args.checkpoint
    fixed = ["memory.asm=false", f"memory.mem_every={10 ** 9}"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name in args.configs:
                reference: dict[str, np.ndarray] = {}
                for variant in tqdm(variants, desc=f"fast paths {name}", unit="variant"):
                    switches = [s.format(chunk=args.chunk) for s in FAST_PATHS[variant]]
                    precision = next((s.split("=", 1)[1] for s in switches if s.startswith("runtime.precision=")),
                                     "fp32")
                    inference = [s for s in switches if not s.startswith("runtime.precision=")]
                    run = None
                    for mode, frames, schedule in (("video", setting.frames, memory_overrides),
                                                   ("fixed", args.agreement_frames, fixed)):
                        out = Path(tmp) / f"{name}_{repeat}_{len(results)}_{mode}.npy"
                        spec = {"config": name, "objects": args.objects[-1], "frames": frames,
                                "height": setting.height, "width": setting.width, "device": args.device,
                                "precision": precision, "checkpoint": args.checkpoint, "seed": args.seed,
                                "warmup": args.warmup, "labels_out": str(out), "threads": setting.threads,
                                "decisive": decisive,
                                "overrides": [*schedule, *PLAIN_PATH[:-1], *args.set, *inference]}
                        try:
                            measured = spawn(spec)
                        except RuntimeError as error:  # one variant failing must not end the rest
                            tqdm.write(f"{variant}: {error}")
                            run = None
                            break
                        labels = np.load(out)
                        reference.setdefault(mode, labels)
                        if mode == "video":
                            run = measured
                            run["agreement"] = float((labels == reference[mode]).mean())
                        else:
                            assert run is not None
                            run["agreement_fixed_memory"] = float((labels == reference[mode]).mean())
                    if run is None:
                        continue
                    run["variant"] = variant
                    run["repeat"] = repeat
                    results.append(run)
    lines = [f"Fast paths: {results[0]['device_name']}, {setting.width}x{setting.height}, "
             f"{setting.frames} frames, {args.objects[-1]} object(s), {results[0]['weights']}, "
             f"overrides {memory_overrides + list(args.set) or 'none'}; chunk_size {args.chunk}; "
             f"median of {args.repeats} run(s)",
             "agreement = share of label pixels equal to the plain fp32 path's: over the video, and per frame "
             f"with the memory fixed to the annotated frame ({args.agreement_frames} frames)"]
    lines.append(f"{'configuration':<14}{'variant':<34}{'FPS':>9}{'gain':>8}{'agree video':>13}"
                 f"{'agree fixed':>13}{'peak MiB':>10}")
    for name in args.configs:
        plain = _median([r["fps"] for r in results if r["config"] == name and r["variant"] == variants[0]])
        for variant in variants:
            group = [r for r in results if r["config"] == name and r["variant"] == variant]
            if not group:
                lines.append(f"{LABELS.get(name, name):<14}{variant:<34}{'failed':>9}")
                continue
            fps = _median([r["fps"] for r in group])
            video = min(r["agreement"] for r in group)
            fixed_agreement = min(r["agreement_fixed_memory"] for r in group)
            peak = max(r["peak_memory_bytes"] for r in group) / 2**20
            lines.append(f"{LABELS.get(name, name):<14}{variant:<34}{fps:>9.2f}{fps / plain:>8.2f}"
                         f"{100 * video:>12.2f}%{100 * fixed_agreement:>12.2f}%{peak:>10.0f}")
    return {"table": "\n".join(lines), "runs": results, "command": " ".join(sys.argv)}


# --------------------------------------------------------------------------------------------
# Bank storage


class _ConcatenatingBank:
    """The storage the bank had before preallocation, for comparison: each write concatenates
    the new frame onto the part, each change concatenates the two parts again for reading."""

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None
        self.joined: tuple[torch.Tensor, torch.Tensor] | None = None
        self.permanent: tuple[torch.Tensor, torch.Tensor] | None = None

    def write(self, key: torch.Tensor, values: torch.Tensor, permanent: bool) -> None:
        if permanent:
            self.permanent = (key[:, None], values[:, :, None])
        elif self.keys is None:
            self.keys, self.values = key[:, None], values[:, :, None]
        else:
            self.keys = torch.cat([self.keys, key[:, None]], dim=1)
            self.values = torch.cat([self.values, values[:, :, None]], dim=2)
        self.joined = None

    def read_views(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.joined is None:
            assert self.permanent is not None
            keys = [self.permanent[0]] + ([self.keys] if self.keys is not None else [])
            values = [self.permanent[1]] + ([self.values] if self.values is not None else [])
            self.joined = (torch.cat(keys, dim=1), torch.cat(values, dim=2))
        return self.joined


def run_bank(args: argparse.Namespace, setting: Setting) -> dict:
    """Time ``writes`` STCN-style writes (one read view after each) with both storages."""
    device = resolve_device(args.device)
    if setting.threads:
        torch.set_num_threads(setting.threads)
    h, w = -(-setting.height // 16), -(-setting.width // 16)
    count = args.objects[-1]
    writes = args.bank_writes
    gen = torch.Generator().manual_seed(0)
    key = torch.randn(64, h, w, generator=gen).to(device)
    values = torch.randn(count, 512, h, w, generator=gen).to(device)
    lines = [f"Bank storage: {device_name(device)}, {writes} writes of a {w * 16}x{h * 16} frame "
             f"({h}x{w} positions), {count} object(s), fp32, a read view after each write"]
    timings = {}
    for name in ("concatenation (before)", "preallocated (now)"):
        _sync(device)
        start = time.perf_counter()
        with torch.inference_mode():
            if name.startswith("concat"):
                old = _ConcatenatingBank()
                old.write(key, values, permanent=True)
                for _ in range(writes):
                    old.write(key, values, permanent=False)
                    old.read_views()
            else:
                bank = MemoryBank(FixedInterval(1), reducer=None)
                bank.write(0, key, values, permanent=True)
                for t in range(writes):
                    bank.write(t + 1, key, values)
                    bank._store.key_view(0, len(bank)), bank._store.value_view(0, len(bank))
        _sync(device)
        timings[name] = time.perf_counter() - start
        lines.append(f"{name:<26}{timings[name]:>9.2f} s")
    lines.append(f"{'gain':<26}{timings['concatenation (before)'] / timings['preallocated (now)']:>9.1f} x")
    return {"table": "\n".join(lines), "seconds": timings, "command": " ".join(sys.argv)}


# --------------------------------------------------------------------------------------------
# One memory read


READ_VARIANTS = {"dense (STCN)": {"gather": False}, "gathered": {"gather": True},
                 "gathered, chunk_size {chunk}": {"gather": True, "chunk_size": None}}


def read_one(spec: dict) -> dict:
    """Time one read of a memory of ``spec['frames']`` frames; runs in its own process."""
    from remn.model.memory_read import read_memory

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = resolve_device(spec["device"])
    h, w, count, frames = spec["h"], spec["w"], spec["objects"], spec["frames"]
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[spec["precision"]]
    gen = torch.Generator().manual_seed(0)
    keys = torch.randn(1, 64, frames, h, w, generator=gen).to(device, dtype)
    values = torch.randn(frames, h, w, count, 512, generator=gen).to(device, dtype)  # the bank's layout
    values = values.permute(3, 4, 0, 1, 2)[None]
    query = torch.randn(1, 64, h, w, generator=gen).to(device, dtype)
    options = dict(spec["options"])
    with torch.inference_mode():
        read_memory(keys, values, query, 20, **options)  # warm-up
        _sync(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        else:
            _reset_peak_rss()
        before, _ = _memory_now(device)
        start = time.perf_counter()
        for _ in range(spec["repeats"]):
            read_memory(keys, values, query, 20, **options)
        _sync(device)
        seconds = (time.perf_counter() - start) / spec["repeats"]
    _, peak = _memory_now(device)
    return {"seconds": seconds, "extra_peak_bytes": peak - before}


def run_read(args: argparse.Namespace, setting: Setting) -> dict:
    """One memory read of each kind at each memory length: time and the memory it needs."""
    h, w = -(-setting.height // 16), -(-setting.width // 16)
    lengths = [setting.frames * m for m in args.lengths]
    lines = [f"Memory read: {args.objects[-1]} object(s), query {setting.width}x{setting.height} ({h}x{w} positions), "
             f"top-20, {setting.precision}, {setting.threads or 'default'} thread(s); "
             "extra peak = memory the read needed beyond the stored memory"]
    lines.append(f"{'memory frames':>14}{'positions':>11}  {'read':<28}{'ms':>10}{'speed-up':>10}{'extra peak MiB':>16}")
    rows = []
    for frames in lengths:
        base = None
        for name, options in READ_VARIANTS.items():
            options = {k: (args.chunk if v is None else v) for k, v in options.items()}
            spec = {"frames": frames, "h": h, "w": w, "objects": args.objects[-1], "device": args.device,
                    "precision": setting.precision, "threads": setting.threads, "options": options,
                    "repeats": args.read_repeats}
            measured = spawn(spec, worker="--read-worker")
            base = base or measured["seconds"]
            label = name.format(chunk=args.chunk)
            rows.append({"frames": frames, "read": label, **measured})
            lines.append(f"{frames:>14}{frames * h * w:>11}  {label:<28}{1000 * measured['seconds']:>10.1f}"
                         f"{base / measured['seconds']:>10.2f}{measured['extra_peak_bytes'] / 2**20:>16.0f}")
    return {"table": "\n".join(lines), "rows": rows, "command": " ".join(sys.argv)}


# --------------------------------------------------------------------------------------------
# Profile of one frame step


def run_profile(args: argparse.Namespace, setting: Setting) -> dict:
    """Profile steady-state frame steps of each configuration; the kernels that take the time."""
    from torch.profiler import ProfilerActivity, profile

    device = resolve_device(args.device)
    if setting.threads:
        torch.set_num_threads(setting.threads)
    tables = []
    for name in args.configs:
        core, _ = build_core(name, [*setting.overrides, *args.set], setting.precision, device, args.checkpoint)
        video = MovingObjects(setting.height, setting.width, args.objects[-1], seed=args.seed, device=device)
        first = video.labels(0)
        warm = args.profile_after
        for t in tqdm(range(warm), desc=f"profile {name}: filling the memory", leave=False):
            core.labels(core.step(video.frame(t), first if t == 0 else None))
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        frames = [video.frame(warm + i) for i in range(3)]
        _sync(device)
        with profile(activities=activities) as prof:
            for image in frames:
                core.labels(core.step(image))
            _sync(device)
        sort = "cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        tables.append(f"{LABELS.get(name, name)}: 3 frame steps after {warm} frames "
                      f"(memory {len(core.bank)} frames), sorted by {sort}\n"
                      + prof.key_averages().table(sort_by=sort, row_limit=args.profile_rows))
    return {"table": "\n\n".join(tables), "command": " ".join(sys.argv)}


# --------------------------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)

    def ints(text: str) -> list[int]:
        return [int(v) for v in text.split(",") if v]

    def names(text: str) -> list[str]:
        chosen = [v for v in text.split(",") if v]
        unknown = sorted(set(chosen) - set(CONFIGS))
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown configurations {unknown}; choose from {sorted(CONFIGS)}")
        return chosen

    parser.add_argument("--frames", type=int, help="frames of the 1x video (GPU: 2000, CPU: 400, --quick: 24)")
    parser.add_argument("--lengths", type=ints, default=[1, 3], help="video lengths as multiples of --frames")
    parser.add_argument("--height", type=int, help="frame height (GPU: 480, CPU: 160, --quick: 64)")
    parser.add_argument("--width", type=int, help="frame width (GPU: 854, CPU: 288, --quick: 112)")
    parser.add_argument("--objects", type=ints, help="object counts, e.g. 1,3 (default on a GPU; on a CPU and "
                        "with --quick: 1, see the docs)")
    parser.add_argument("--configs", type=names, help=f"comma-separated, from {', '.join(CONFIGS)} (default: "
                        "remn,stcn,no_frm,no_asm,no_rrm; --quick and --fast-paths: remn,stcn)")
    parser.add_argument("--checkpoint", help="trained weights (REMN or STCN); default: random weights")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="autocast (default: bf16; "
                        "--quick: fp32)")
    parser.add_argument("--threads", type=int, help="CPU threads per process (CPU setting: 1, see the docs; "
                        "0: torch's default)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every configuration (repeatable), e.g. inference.chunk_size=8192")
    parser.add_argument("--repeats", type=int, default=1, help="runs per measurement; FPS is their median")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames before each timed video")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated video")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "benchmark", help="folder for the JSON")
    parser.add_argument("--figures", type=Path, help="folder for the figures (suite; default docs/img, "
                        "--quick: --out)")
    parser.add_argument("--quick", action="store_true", help="a 2-minute smoke run (24/72 frames at 112x64, "
                        "REMN and STCN, 1 object)")
    parser.add_argument("--fast-paths", action="store_true", help="measure each inference fast path instead")
    parser.add_argument("--variants", type=lambda t: [v.strip() for v in t.split(";") if v.strip()],
                        help=f"fast-path variants, ';'-separated, from: {'; '.join(FAST_PATHS)}")
    parser.add_argument("--chunk", type=int, default=8192, help="chunk_size of the chunked fast-path variant")
    parser.add_argument("--agreement-frames", type=int, default=16,
                        help="frames of the fixed-memory agreement run of each fast-path variant")
    parser.add_argument("--read", action="store_true", help="time one memory read (dense, gathered, chunked) "
                        "at each memory length (--frames x --lengths)")
    parser.add_argument("--read-repeats", type=int, default=3)
    parser.add_argument("--read-worker", help=argparse.SUPPRESS)
    parser.add_argument("--bank", action="store_true", help="compare the bank's storage with concatenation")
    parser.add_argument("--bank-writes", type=int, default=1000)
    parser.add_argument("--profile", action="store_true", help="profile frame steps (kernels that take the time)")
    parser.add_argument("--profile-after", type=int, default=200, help="frames run before the profiled ones")
    parser.add_argument("--profile-rows", type=int, default=25)
    parser.add_argument("--report", type=Path, nargs="+", help="print the table and draw the figures of saved "
                        "benchmark.json files (their runs together) instead of measuring")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser


def resolve_setting(args: argparse.Namespace) -> Setting:
    """The GPU or CPU default setting (or the quick one), with any size given on the command line."""
    device = resolve_device(args.device)
    base = QUICK_SETTING if args.quick else (GPU_SETTING if device.type == "cuda" else CPU_SETTING)
    return Setting(frames=args.frames or base.frames, height=args.height or base.height,
                   width=args.width or base.width, precision=args.precision or base.precision,
                   threads=base.threads if args.threads is None else args.threads, overrides=base.overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        print(json.dumps(run_one(json.loads(args.worker))))
        return 0
    if args.read_worker:
        print(json.dumps(read_one(json.loads(args.read_worker))))
        return 0
    if args.configs is None:
        args.configs = ["remn", "stcn"] if args.quick or args.fast_paths else \
            ["remn", "stcn", "no_frm", "no_asm", "no_rrm"]
    if args.report:
        saved = [json.loads(path.read_text()) for path in args.report]
        runs = [run for one in saved for run in one["runs"]]
        setting = dict(saved[0]["setting"], configs=list(dict.fromkeys(r["config"] for r in runs)),
                       objects=sorted({r["objects"] for r in runs}))
        result = report({"runs": runs, "setting": setting})
        figures = args.figures or args.report[0].parent
        draw_figures(result["summary"], result["runs"], result["setting"]["configs"], result["setting"]["objects"],
                     figures, result["title"])
        print(result["table"])
        print(f"\nfigures: {figures}")
        return 0
    setting = resolve_setting(args)
    if args.objects is None:
        cpu = resolve_device(args.device).type != "cuda"
        args.objects = [1] if args.quick or (cpu and not args.fast_paths) else [1, 3]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.fast_paths:
        result, name = run_fast_paths(args, setting), "fast_paths.json"
    elif args.read:
        result, name = run_read(args, setting), "read.json"
    elif args.bank:
        result, name = run_bank(args, setting), "bank.json"
    elif args.profile:
        result, name = run_profile(args, setting), "profile.json"
    else:
        result, name = run_suite(args, setting), "benchmark.json"
        figures = args.figures or (args.out if args.quick else REPO / "docs" / "img")
        result["figures"] = [str(p) for p in draw_figures(result["summary"], result["runs"], args.configs,
                                                          args.objects, figures, result["title"])]
    (args.out / name).write_text(json.dumps(result, indent=1))
    print(result["table"])
    if "wall_seconds" in result:
        print(f"\n{len(result['runs'])} runs in {result['wall_seconds'] / 60:.1f} min; JSON: {args.out / name}; "
              f"figures: {', '.join(result['figures'])}")
    else:
        print(f"\nJSON: {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
