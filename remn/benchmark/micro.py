"""Micro-benchmarks: what each inference fast path gains and how its labels agree with the
plain path's (:func:`run_fast_paths`), the memory bank's storage against concatenation
(:func:`run_bank`), one memory read of each kind (:func:`run_read`, each in a worker:
:func:`read_one`) and a profile of steady-state frame steps (:func:`run_profile`)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from remn.memory.bank import MemoryBank
from remn.memory.policy import FixedInterval
from remn.runtime import resolve_device

from .clip import BenchmarkClip
from .probes import PeakMemory, device_name, sync
from .suite import LABELS, PLAIN_PATH, Options, Setting, benchmark_core, median, spawn

__all__ = [
    "FAST_PATHS",
    "run_fast_paths",
    "ConcatenatingBank",
    "run_bank",
    "READ_VARIANTS",
    "read_one",
    "run_read",
    "run_profile",
]


FAST_PATHS = {
    "plain (all off, fp32)": (),
    "topk_gather": ("inference.topk_gather=true",),
    "topk_gather + chunk_size": ("inference.topk_gather=true", "inference.chunk_size={chunk}"),
    "batch_objects": ("inference.batch_objects=true",),
    "channels_last": ("inference.channels_last=true",),
    "bf16 autocast": ("runtime.precision=bf16",),
    "defaults (gather, batch)": ("inference.topk_gather=true", "inference.batch_objects=true"),
    "defaults + bf16 + channels_last": (
        "inference.topk_gather=true",
        "inference.batch_objects=true",
        "runtime.precision=bf16",
        "inference.channels_last=true",
    ),
}
"""Each variant is the plain path with the listed switches turned on."""


def run_fast_paths(options: Options, setting: Setting) -> dict:
    """Each fast path on top of the plain path: FPS over the setting's video, and the share of
    label pixels equal to the plain fp32 path's, over that video and per frame against a memory
    fixed to the annotated frame (``--agreement-frames`` frames; no error feeds back through
    the memory there)."""
    import tempfile

    memory_overrides = [o for o in setting.overrides if not o.startswith("inference.")]  # variants set those
    variants = [v for v in FAST_PATHS if v in options.variants] if options.variants else list(FAST_PATHS)
    decisive = not options.checkpoint
    fixed = ["memory.asm=false", f"memory.mem_every={10**9}"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(options.repeats):
            for name in options.configs:
                reference: dict[str, np.ndarray] = {}
                for variant in tqdm(variants, desc=f"fast paths {name}", unit="variant"):
                    switches = [s.format(chunk=options.chunk) for s in FAST_PATHS[variant]]
                    precision = next(
                        (s.split("=", 1)[1] for s in switches if s.startswith("runtime.precision=")), "fp32"
                    )
                    inference = [s for s in switches if not s.startswith("runtime.precision=")]
                    run = None
                    for mode, frames, schedule in (
                        ("video", setting.frames, memory_overrides),
                        ("fixed", options.agreement_frames, fixed),
                    ):
                        out = Path(tmp) / f"{name}_{repeat}_{len(results)}_{mode}.npy"
                        spec = {
                            "config": name,
                            "objects": options.objects[-1],
                            "frames": frames,
                            "height": setting.height,
                            "width": setting.width,
                            "device": options.device,
                            "precision": precision,
                            "checkpoint": options.checkpoint,
                            "seed": options.seed,
                            "warmup": options.warmup,
                            "labels_out": str(out),
                            "threads": setting.threads,
                            "decisive": decisive,
                            "overrides": [*schedule, *PLAIN_PATH[:-1], *options.set, *inference],
                        }
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
    lines = [
        f"Fast paths: {results[0]['device_name']}, {setting.width}x{setting.height}, "
        f"{setting.frames} frames, {options.objects[-1]} object(s), {results[0]['weights']}, "
        f"overrides {memory_overrides + list(options.set) or 'none'}; chunk_size {options.chunk}; "
        f"median of {options.repeats} run(s)",
        "agreement = share of label pixels equal to the plain fp32 path's: over the video, and per frame "
        f"with the memory fixed to the annotated frame ({options.agreement_frames} frames)",
    ]
    lines.append(
        f"{'configuration':<14}{'variant':<34}{'FPS':>9}{'gain':>8}{'agree video':>13}"
        f"{'agree fixed':>13}{'peak MiB':>10}"
    )
    for name in options.configs:
        plain = median([r["fps"] for r in results if r["config"] == name and r["variant"] == variants[0]])
        for variant in variants:
            group = [r for r in results if r["config"] == name and r["variant"] == variant]
            if not group:
                lines.append(f"{LABELS.get(name, name):<14}{variant:<34}{'failed':>9}")
                continue
            fps = median([r["fps"] for r in group])
            video = min(r["agreement"] for r in group)
            fixed_agreement = min(r["agreement_fixed_memory"] for r in group)
            peak = max(r["peak_memory_bytes"] for r in group) / 2**20
            lines.append(
                f"{LABELS.get(name, name):<14}{variant:<34}{fps:>9.2f}{fps / plain:>8.2f}"
                f"{100 * video:>12.2f}%{100 * fixed_agreement:>12.2f}%{peak:>10.0f}"
            )
    return {"table": "\n".join(lines), "runs": results, "command": options.command}


# --------------------------------------------------------------------------------------------
# Bank storage


class ConcatenatingBank:
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


def run_bank(options: Options, setting: Setting) -> dict:
    """Time ``writes`` STCN-style writes (one read view after each) with both storages."""
    device = resolve_device(options.device)
    if setting.threads:
        torch.set_num_threads(setting.threads)
    h, w = -(-setting.height // 16), -(-setting.width // 16)
    count = options.objects[-1]
    writes = options.bank_writes
    gen = torch.Generator().manual_seed(0)
    key = torch.randn(64, h, w, generator=gen).to(device)
    values = torch.randn(count, 512, h, w, generator=gen).to(device)
    lines = [
        f"Bank storage: {device_name(device)}, {writes} writes of a {w * 16}x{h * 16} frame "
        f"({h}x{w} positions), {count} object(s), fp32, a read view after each write"
    ]
    timings = {}
    for name in ("concatenation (before)", "preallocated (now)"):
        sync(device)
        start = time.perf_counter()
        with torch.inference_mode():
            if name.startswith("concat"):
                old = ConcatenatingBank()
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
        sync(device)
        timings[name] = time.perf_counter() - start
        lines.append(f"{name:<26}{timings[name]:>9.2f} s")
    lines.append(f"{'gain':<26}{timings['concatenation (before)'] / timings['preallocated (now)']:>9.1f} x")
    return {"table": "\n".join(lines), "seconds": timings, "command": options.command}


# --------------------------------------------------------------------------------------------
# One memory read


READ_VARIANTS = {
    "dense (STCN)": {"gather": False},
    "gathered": {"gather": True},
    "gathered, chunk_size {chunk}": {"gather": True, "chunk_size": None},
}


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
        sync(device)
        memory = PeakMemory(device)
        memory.reset()
        before, _ = memory.read()
        start = time.perf_counter()
        for _ in range(spec["repeats"]):
            read_memory(keys, values, query, 20, **options)
        sync(device)
        seconds = (time.perf_counter() - start) / spec["repeats"]
    peak = memory.peak
    return {"seconds": seconds, "extra_peak_bytes": peak - before}


def run_read(options: Options, setting: Setting) -> dict:
    """One memory read of each kind at each memory length: time and the memory it needs."""
    h, w = -(-setting.height // 16), -(-setting.width // 16)
    lengths = [setting.frames * m for m in options.lengths]
    lines = [
        f"Memory read: {options.objects[-1]} object(s), query {setting.width}x{setting.height} "
        f"({h}x{w} positions), top-20, {setting.precision}, {setting.threads or 'default'} thread(s); "
        "extra peak = memory the read needed beyond the stored memory"
    ]
    lines.append(
        f"{'memory frames':>14}{'positions':>11}  {'read':<28}{'ms':>10}{'speed-up':>10}{'extra peak MiB':>16}"
    )
    rows = []
    for frames in lengths:
        base = None
        for name, read in READ_VARIANTS.items():
            read = {k: (options.chunk if v is None else v) for k, v in read.items()}
            spec = {
                "frames": frames,
                "h": h,
                "w": w,
                "objects": options.objects[-1],
                "device": options.device,
                "precision": setting.precision,
                "threads": setting.threads,
                "options": read,
                "repeats": options.read_repeats,
            }
            measured = spawn(spec, worker="--read-worker")
            base = base or measured["seconds"]
            label = name.format(chunk=options.chunk)
            rows.append({"frames": frames, "read": label, **measured})
            lines.append(
                f"{frames:>14}{frames * h * w:>11}  {label:<28}{1000 * measured['seconds']:>10.1f}"
                f"{base / measured['seconds']:>10.2f}{measured['extra_peak_bytes'] / 2**20:>16.0f}"
            )
    return {"table": "\n".join(lines), "rows": rows, "command": options.command}


# --------------------------------------------------------------------------------------------
# Profile of one frame step


def run_profile(options: Options, setting: Setting) -> dict:
    """Profile steady-state frame steps of each configuration; the kernels that take the time."""
    from torch.profiler import ProfilerActivity, profile

    device = resolve_device(options.device)
    if setting.threads:
        torch.set_num_threads(setting.threads)
    tables = []
    for name in options.configs:
        core, _ = benchmark_core(
            name, [*setting.overrides, *options.set], setting.precision, device, options.checkpoint
        )
        video = BenchmarkClip(
            setting.height,
            setting.width,
            options.objects[-1],
            options.profile_after + 3,
            seed=options.seed,
            device=device,
        )
        first = video.labels(0)
        warm = options.profile_after
        for t in tqdm(range(warm), desc=f"profile {name}: filling the memory", leave=False):
            core.labels(core.step(video.frame(t), first if t == 0 else None))
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        frames = [video.frame(warm + i) for i in range(3)]
        sync(device)
        with profile(activities=activities) as prof:
            for image in frames:
                core.labels(core.step(image))
            sync(device)
        sort = "cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
        tables.append(
            f"{LABELS.get(name, name)}: 3 frame steps after {warm} frames "
            f"(memory {len(core.bank)} frames), sorted by {sort}\n"
            + prof.key_averages().table(sort_by=sort, row_limit=options.profile_rows)
        )
    return {"table": "\n\n".join(tables), "command": options.command}
