"""The training checks: the ``main`` stage's speed and memory, and a ``torchrun`` smoke run.

Both train on a DAVIS-layout dataset written by ``remn generate`` (``work/data``, written once),
with ``key=value`` overrides on ``configs/train/main.yaml`` as a user would give them; no
YouTube-VOS folder exists, so the stage trains on the generated DAVIS videos alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from .measure import Result, device_of, error_line, peak_mib, reset_peak, sync
from .settings import Settings, last_line

__all__ = ["check_train", "check_torchrun", "torchrun_rank", "run_rank", "child_env"]

_NEVER = str(10**9)


def _dataset(settings: Settings) -> Path:
    """The generated dataset (``remn generate``, written staged: it is either whole or absent)."""
    root = Path(settings.out) / "work" / "data"
    if not (root / "ImageSets").is_dir():
        height, width = settings.train_size
        command = [
            sys.executable,
            "-m",
            "remn",
            "generate",
            str(root),
            "--videos",
            str(settings.train_videos),
            "--frames",
            str(settings.train_frames),
            "--size",
            str(height),
            str(width),
            "--layout",
            "davis",
            "--quiet",
            "--workers",
            str(max(1, min(8, os.cpu_count() or 1))),
        ]
        done = subprocess.run(command, capture_output=True, text=True, env=child_env())
        if done.returncode != 0:
            raise RuntimeError(f"remn generate failed: {last_line(done.stderr or done.stdout)}")
    return root


def child_env() -> dict:
    """The environment of a child Python: this checkout's ``remn`` first."""
    repo = str(Path(__file__).resolve().parents[2])
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p))


def _overrides(settings: Settings, iterations: int, batch: int) -> list[str]:
    work = Path(settings.out) / "work"
    return [
        f"runtime.device={settings.device}",
        f"data.davis_root={work / 'data'}",
        f"data.youtube_root={work / 'no-youtube'}",
        f"data.crop_size={settings.train_crop}",
        f"train.run_dir={work / 'train'}",
        f"train.main.iterations={iterations}",
        f"train.main.batch_size={batch}",
        f"train.precision={settings.train_precision}",
        f"train.num_workers={settings.train_workers}",
        f"train.log_every={settings.train_log_every}",
        f"train.image_every={_NEVER}",
        f"train.save_every={_NEVER}",
        f"train.weights_every={_NEVER}",
        *settings.train_overrides,
    ]


def check_train(settings: Settings, result: Result) -> None:
    """The ``main`` stage through the trainer's public API: iterations per second (the trainer's
    own speed windows, the first one, which holds the start, left out) and peak memory."""
    from remn.config import load_config
    from remn.training import Trainer, VideoDataSource

    _dataset(settings)
    cfg = load_config("train/main", _overrides(settings, settings.train_iterations, settings.train_batch))
    device = device_of(settings)
    row = {
        "stage": "main",
        "crop": settings.train_crop,
        "batch": settings.train_batch,
        "iterations": settings.train_iterations,
        "precision": settings.train_precision,
        "overrides": settings.train_overrides,
    }
    reset_peak(device)
    began = time.perf_counter()
    summary = Trainer(cfg, VideoDataSource(cfg), Path(cfg.train.run_dir) / "main", progress=False).run()
    seconds = time.perf_counter() - began
    speeds = [h["speed/iterations_per_s"] for h in summary.history if "speed/iterations_per_s" in h]
    steady = speeds[1:] or speeds
    if not steady:
        result.data["notes"].append("the trainer reported no speed: iterations over the whole run, start included")
    row.update(
        it_per_s=round(sum(steady) / len(steady), 3) if steady else settings.train_iterations / seconds,
        windows=len(speeds),
        peak_mib=peak_mib(device),
        seconds=round(seconds, 1),
        note=f"main stage, {settings.train_crop}x{settings.train_crop}, batch {settings.train_batch}, "
        f"{settings.train_precision}, mean of {max(1, len(steady))} window(s) of "
        f"{settings.train_log_every} iteration(s)",
    )
    result.row(row)


def check_torchrun(settings: Settings, result: Result) -> None:
    """``torchrun --standalone --nproc_per_node 1`` running :func:`torchrun_rank`."""
    _dataset(settings)
    work = Path(settings.out) / "work"
    rank_file = work / "torchrun-rank.json"
    rank_file.unlink(missing_ok=True)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "1",
        "-m",
        "remn.benchmark.gpu_check",
        "--worker",
        "torchrun_rank",
        "--spec",
        str(work / "spec.json"),
    ]
    began = time.perf_counter()
    with (Path(settings.out) / "logs" / "torchrun-rank.log").open("w") as log:
        done = subprocess.run(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
            env=child_env(),
            timeout=max(1.0, result.deadline - time.time()),
        )
    rank = json.loads(rank_file.read_text()) if rank_file.is_file() else {}
    result.row({**rank, "exit_status": done.returncode, "seconds": round(time.perf_counter() - began, 1)})
    if done.returncode != 0 or rank.get("error"):
        text = (Path(settings.out) / "logs" / "torchrun-rank.log").read_text(errors="replace")
        raise RuntimeError(rank.get("error") or f"torchrun exited with {done.returncode}: {last_line(text)}")


def torchrun_rank(settings: Settings) -> dict:
    """Inside ``torchrun``: a process group of the device's backend (NCCL on CUDA, gloo on a
    CPU), an all-reduce and two DDP steps; then ``remn train`` a few iterations in the same
    launch (with one process it trains without a group, as it would for a user)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from remn.cli.train import main as train_main

    device = device_of(settings)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    info: dict = {"backend": backend, "world_size": int(os.environ.get("WORLD_SIZE", "1"))}
    began = time.perf_counter()
    dist.init_process_group(backend)
    try:
        total = torch.ones(4, device=device) * (dist.get_rank() + 1)
        dist.all_reduce(total)
        expected = sum(range(1, dist.get_world_size() + 1))
        if not bool((total == expected).all()):
            raise RuntimeError(f"all_reduce gave {total.tolist()}, expected {expected}")
        net = DistributedDataParallel(
            torch.nn.Conv2d(3, 8, 3).to(device), device_ids=[device.index] if device.type == "cuda" else None
        )
        optimiser = torch.optim.SGD(net.parameters(), lr=0.1)
        for _ in range(2):
            optimiser.zero_grad()
            net(torch.randn(2, 3, 16, 16, device=device)).square().mean().backward()
            optimiser.step()
        dist.barrier()
        sync(device)
        info["group_s"] = round(time.perf_counter() - began, 2)
    finally:
        dist.destroy_process_group()
    began, errors = time.perf_counter(), io.StringIO()
    with contextlib.redirect_stderr(errors):
        code = train_main(
            [
                "--config",
                "train/main",
                "--run-name",
                "torchrun",
                "--no-progress",
                *_overrides(settings, settings.torchrun_iterations, settings.torchrun_batch),
            ]
        )
    info.update(
        train_exit_status=code,
        train_s=round(time.perf_counter() - began, 1),
        note=f"{backend} group: all_reduce and 2 DDP steps in {info['group_s']} s; remn train under "
        f"torchrun: {settings.torchrun_iterations} iteration(s), exit {code}",
    )
    if code != 0:
        info["error"] = f"remn train under torchrun exited with {code}: {last_line(errors.getvalue())}"
    return info


def run_rank(spec: Path) -> int:
    """``python -m remn.benchmark.gpu_check --worker torchrun_rank``: :func:`torchrun_rank`, its result in
    ``work/torchrun-rank.json``."""
    from remn.outputs import atomic_write_text

    settings = Settings.load(spec)
    try:
        info = torchrun_rank(settings)
    except Exception as exc:
        import traceback

        traceback.print_exc()
        info = {"error": error_line(exc)}
    atomic_write_text(Path(settings.out) / "work" / "torchrun-rank.json", json.dumps(info, indent=2))
    return 0 if "error" not in info else 1
