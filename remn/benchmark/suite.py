"""The suite: FPS and peak memory of every configuration at 1x and 3x video length.

One measurement (:func:`run_one`) segments the generated clip with one configuration in a
fresh worker process (:func:`spawn`, ``python -m remn.benchmark.worker``), so that its peak
memory is its own; :func:`run_suite` interleaves the configurations, so that they share the
machine's load, and :func:`summarise` takes the median FPS of repeated runs.

Worker protocol: the parent passes one JSON object (the measurement's settings) as the
argument of ``--worker`` (or ``--read-worker`` for :func:`remn.benchmark.micro.read_one`); the
worker prints the result as one JSON line, its last line of output, and exits 0.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from remn.config import CONFIG_DIR, load_config
from remn.data.video import Frame
from remn.inference import InferenceCore, build_core, segment_video, warm_up
from remn.runtime import resolve_device

from .clip import BenchmarkClip
from .probes import PeakMemory, device_name, peak_memory_kind, sync

__all__ = [
    "CONFIGS",
    "LABELS",
    "Setting",
    "GPU_SETTING",
    "CPU_SETTING",
    "QUICK_SETTING",
    "PLAIN_PATH",
    "Options",
    "resolve_setting",
    "make_decisive",
    "benchmark_core",
    "run_one",
    "ONEDNN_CACHE",
    "worker_environment",
    "spawn",
    "summarise",
    "run_suite",
    "median",
]

REPO = CONFIG_DIR.parent
"""The repository: the configurations' files and the default output folders are relative to it."""

CONFIGS = {
    "remn": "configs/remn.yaml",
    "stcn": "configs/stcn.yaml",
    "no_frm": "configs/ablation/no_frm.yaml",
    "no_asm": "configs/ablation/no_asm.yaml",
    "no_rrm": "configs/ablation/no_rrm.yaml",
    "frm_only": "configs/ablation/frm_only.yaml",
}
"""Names ``--configs`` accepts and the files they load."""

LABELS = {
    "remn": "REMN",
    "stcn": "STCN mode",
    "no_frm": "REMN w/o FRM",
    "no_asm": "REMN w/o ASM",
    "no_rrm": "REMN w/o RRM",
    "frm_only": "FRM only",
}


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
CPU_SETTING = Setting(
    frames=400,
    height=160,
    width=288,
    precision="bf16",
    threads=1,
    overrides=("memory.mem_every=1", "inference.topk_gather=false", "inference.channels_last=true"),
)
QUICK_SETTING = Setting(frames=24, height=64, width=112, threads=1, overrides=("memory.mem_every=1",))

PLAIN_PATH = (
    "inference.topk_gather=false",
    "inference.chunk_size=0",
    "inference.batch_objects=false",
    "inference.channels_last=false",
    "runtime.precision=fp32",
)
"""Every fast path off: STCN's dense read, objects one at a time, fp32."""


@dataclass
class Options:
    """What to measure, beyond the :class:`Setting` (``remn benchmark``'s options, docs/benchmarks.md)."""

    configs: list[str] = field(default_factory=lambda: ["remn", "stcn"])
    objects: list[int] = field(default_factory=lambda: [1])
    lengths: list[int] = field(default_factory=lambda: [1, 3])
    """Video lengths as multiples of the setting's frames."""
    set: list[str] = field(default_factory=list)
    """Config overrides for every configuration."""
    checkpoint: str | None = None
    device: str = "auto"
    repeats: int = 1
    warmup: int = 3
    seed: int = 0
    variants: list[str] | None = None
    chunk: int = 8192
    agreement_frames: int = 16
    read_repeats: int = 3
    bank_writes: int = 1000
    profile_after: int = 200
    profile_rows: int = 25
    command: str = field(default_factory=lambda: " ".join(sys.argv))
    """The command line, recorded with the results."""


def resolve_setting(
    device: str = "auto",
    quick: bool = False,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    precision: str | None = None,
    threads: int | None = None,
) -> Setting:
    """The GPU or CPU default setting (or the quick one), with any size given replacing its own."""
    kind = resolve_device(device).type
    base = QUICK_SETTING if quick else (GPU_SETTING if kind == "cuda" else CPU_SETTING)
    return Setting(
        frames=frames or base.frames,
        height=height or base.height,
        width=width or base.width,
        precision=precision or base.precision,
        threads=base.threads if threads is None else threads,
        overrides=base.overrides,
    )


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


def benchmark_core(
    config: str,
    overrides: Sequence[str],
    precision: str,
    device: torch.device,
    checkpoint: str | None = None,
    decisive: bool = False,
) -> tuple[InferenceCore, str]:
    """The inference core of configuration ``config`` (:func:`remn.inference.build_core`) and a
    line saying which weights it has.

    Frames are generated at the size the network should see, so nothing is resized.
    """
    cfg = load_config(
        REPO / CONFIGS[config],
        ["inference.size=-1", *overrides, f"runtime.precision={precision}", f"runtime.device={device}"],
    )
    core, weights = build_core(cfg, checkpoint, device)
    if checkpoint:
        return core, weights
    if decisive:
        make_decisive(core.model)
        return core, f"random weights made decisive (seed {cfg.runtime.seed}; mask inputs x300, head x10)"
    return core, f"random weights (seed {cfg.runtime.seed}; FRM at its identity initialisation)"


def run_one(spec: dict) -> dict:
    """Segment one generated video with one configuration; returns what was measured."""
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = resolve_device(spec["device"])
    core, weights = benchmark_core(
        spec["config"],
        spec["overrides"],
        spec["precision"],
        device,
        spec.get("checkpoint"),
        spec.get("decisive", False),
    )
    frames = spec["frames"]
    video = BenchmarkClip(spec["height"], spec["width"], spec["objects"], frames, seed=spec["seed"], device=device)
    first = video.labels(0)

    def played(count: int):
        for t in range(count):
            yield Frame(t, t, str(t), video.frame(t), first if t == 0 else None)

    warm_up(core, played(min(spec["warmup"], frames)), spec["warmup"])  # untimed: lazy initialisation, kernels
    sync(device)
    memory = PeakMemory(device)
    restarted = memory.reset()

    keep_labels = spec.get("labels_out")
    kept: list[np.ndarray] = []
    samples = sorted({max(1, round(frames * i / 50)) for i in range(1, 51)})
    curve = []  # (frames so far, seconds so far, memory now, peak so far, bank frames, bank bytes)
    seconds = 0.0
    writes = 0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_start = usage.ru_utime + usage.ru_stime
    steps = tqdm(
        segment_video(core, played(frames), frames, labels="all"),
        total=frames,
        leave=False,
        desc=f"{spec['config']} x{spec['objects']} {frames}f",
        disable=not spec.get("progress", False),
    )
    for done in steps:
        t = done.index
        seconds += done.seconds
        writes += int(getattr(core.bank.policy, "last_write", None) == t)
        if keep_labels:
            kept.append(done.labels.astype(np.uint8))
        if t + 1 in samples:
            now, peak = memory.read()
            curve.append((t + 1, seconds, now, peak, len(core.bank), core.bank.buffer_bytes))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = usage.ru_utime + usage.ru_stime - cpu_start
    if keep_labels:
        np.save(keep_labels, np.stack(kept))
    return {
        "config": spec["config"],
        "objects": spec["objects"],
        "frames": frames,
        "height": spec["height"],
        "width": spec["width"],
        "precision": spec["precision"],
        "overrides": spec["overrides"],
        "device": str(device),
        "device_name": device_name(device),
        "weights": weights,
        "seconds": seconds,
        "fps": frames / seconds,
        "cpu_seconds": cpu_seconds,
        "peak_memory_bytes": memory.peak,
        "peak_memory_kind": peak_memory_kind(device, restarted),
        "bank_frames": len(core.bank),
        "bank_buffer_frames": core.bank.buffer_frames,
        "bank_bytes": core.bank.buffer_bytes,
        "writes": writes,
        "reductions": len(core.bank.reductions),
        "curve": curve,
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

WORKER_MODULE = "remn.benchmark.worker"
"""The workers' entry point, run as ``python -m remn.benchmark.worker --worker SPEC``."""

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding this remn package


def worker_environment() -> dict[str, str]:
    """The workers' environment: this process's, with :data:`ONEDNN_CACHE` unless set, and this
    ``remn`` package first on ``PYTHONPATH`` so that the workers run the same code."""
    env = dict(os.environ)
    env.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", ONEDNN_CACHE)
    env["PYTHONPATH"] = os.pathsep.join([str(_PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def spawn(spec: dict, worker: str = "--worker") -> dict:
    """:func:`run_one` (or :func:`~remn.benchmark.micro.read_one`, ``worker="--read-worker"``) in a
    fresh Python process (peak memory is per process)."""
    result = subprocess.run(
        [sys.executable, "-m", WORKER_MODULE, worker, json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=worker_environment(),
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"benchmark run {spec.get('config', 'read')} ({spec['frames']} frames, {spec['objects']} "
            f"object(s)) failed:\n{result.stderr[-4000:]}"
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# The suite


def median(values: Sequence[float]) -> float:
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
            "config": first["config"],
            "objects": first["objects"],
            "frames": first["frames"],
            "fps": median([r["fps"] for r in group]),
            "fps_all": [r["fps"] for r in group],
            "peak_memory_bytes": max(r["peak_memory_bytes"] for r in group),
            "bank_bytes": max(r["bank_bytes"] for r in group),
            "bank_frames": first["bank_frames"],
            "writes": first["writes"],
            "reductions": first["reductions"],
        }
    return summary


def run_suite(options: Options, setting: Setting) -> dict:
    """Every configuration x object count x length, ``options.repeats`` times, each in a worker;
    the runs and the setting (:func:`remn.benchmark.report.report` adds the summary and tables)."""
    lengths = [setting.frames * m for m in options.lengths]
    overrides = [*setting.overrides, *options.set]
    specs = []
    for repeat in range(options.repeats):
        for count in options.objects:
            for frames in lengths:
                for name in options.configs:  # configurations interleaved: same load, back to back
                    specs.append(
                        {
                            "config": name,
                            "objects": count,
                            "frames": frames,
                            "height": setting.height,
                            "width": setting.width,
                            "device": options.device,
                            "precision": setting.precision,
                            "overrides": overrides,
                            "checkpoint": options.checkpoint,
                            "seed": options.seed,
                            "warmup": options.warmup,
                            "threads": setting.threads,
                        }
                    )
    runs = []
    started = time.perf_counter()
    for spec in tqdm(specs, desc="benchmark", unit="run"):
        runs.append(spawn(spec))
    result = {
        "runs": runs,
        "wall_seconds": time.perf_counter() - started,
        "setting": {
            "frames": lengths,
            "height": setting.height,
            "width": setting.width,
            "overrides": overrides,
            "precision": setting.precision,
            "repeats": options.repeats,
            "checkpoint": options.checkpoint,
            "configs": list(options.configs),
            "objects": list(options.objects),
            "command": options.command,
        },
    }
    return result
