"""The inference checks: bf16 against fp32, speed and memory, CUDA graphs, torch.compile, a profile.

Every run goes through the project's own paths: :func:`remn.inference.build_core` builds the
core, :func:`remn.inference.segment_video` runs and times the frames (the device synchronised
around each step and its labels), :func:`remn.data.synthetic.generate_video` makes the video.
Frames are put on the device before the timer starts. Two cores compared "in lockstep" see
the same frames one by one; from frame 1 on, each frame's labels and probabilities are compared.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .measure import Result, Skip, device_of, peak_mib, reset_peak, sync
from .settings import Settings, one_line

__all__ = ["check_agreement", "check_speed", "check_cuda_graphs", "check_compile", "check_profile"]


def _config(settings: Settings, name: str, *overrides: str):
    from remn.config import load_config

    size = ["inference.size=-1"] if settings.tiny else []  # the GPU setting's 854x480 is processed as is (480)
    return load_config(name, [*size, f"runtime.device={settings.device}", "runtime.precision=bf16", *overrides])


def _core(settings: Settings, cfg, model=None):
    """A core of ``cfg``: a new network (``build_core``), or ``model`` again."""
    from remn.inference import InferenceCore, build_core

    if model is not None:
        return InferenceCore(model, cfg, next(model.parameters()).device)
    return build_core(cfg, settings.checkpoint, settings.device)[0]


def _video(settings: Settings, frames: int, objects: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Generated frames (every object in frame 0, none leaves) and frame 0's labels, kept in
    ``work/`` for the next check that asks for the same video."""
    from remn.data.synthetic import generate_video

    path = Path(settings.out) / "work" / f"video_{settings.width}x{settings.height}_{frames}f_{objects}obj_{seed}.npz"
    if path.is_file():
        with np.load(path) as saved:
            return list(saved["frames"]), saved["first"]
    video = generate_video(seed, frames, settings.height, settings.width, objects=(objects, objects), leave=0.0)
    staged = path.with_name(path.stem + ".partial.npz")
    np.savez(staged, frames=np.stack(video.frames), first=video.masks[0])
    staged.replace(path)
    return video.frames, video.masks[0]


def _playback(images: list[np.ndarray], first: np.ndarray, steps: int, device: torch.device) -> list:
    """``steps`` frames on the device: ``images`` played forwards and backwards (no jump)."""
    from remn.data.video import Frame

    on_device = [
        torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).contiguous().to(device) for image in images
    ]
    period = max(1, 2 * len(on_device) - 2)

    def pick(t: int) -> torch.Tensor:
        p = t % period
        return on_device[p if p < len(on_device) else period - p]

    return [Frame(t, t, f"{t:05d}", pick(t), first if t == 0 else None, write=False) for t in range(steps)]


def _lockstep(a, b, frames: list) -> dict:
    """Cores ``a`` and ``b`` over the same frames: share of equal label pixels (over frames 1..,
    and the worst frame), largest probability difference."""
    a.reset()
    b.reset()
    equal = total = 0
    worst, max_diff = 1.0, 0.0
    for frame in frames:
        last = frame.position == len(frames) - 1
        pa, pb = a.step(frame.image, frame.mask, last=last), b.step(frame.image, frame.mask, last=last)
        if frame.position == 0:
            continue
        same, pixels = int((pa.argmax(0) == pb.argmax(0)).sum()), pa[0].numel()
        equal, total, worst = equal + same, total + pixels, min(worst, same / pixels)
        max_diff = max(max_diff, float((pa - pb).abs().max()))
    return {"label_agreement": equal / max(1, total), "worst_frame": worst, "max_prob_diff": max_diff}


def _measure(core, images: list[np.ndarray], first: np.ndarray, steps: int, warmup: int) -> dict:
    """FPS and peak memory of ``steps`` frames, after ``warmup`` untimed ones (compilation and
    graph capture happen there: ``warmup_s``)."""
    from remn.inference import segment_video, warm_up

    frames = _playback(images, first, steps, core.device)
    began = time.perf_counter()
    warm_up(core, frames, warmup)
    sync(core.device)
    warm = time.perf_counter() - began
    reset_peak(core.device)
    seconds = sum(step.seconds for step in segment_video(core, frames, steps, labels="all"))
    return {
        "fps": round(steps / seconds, 2),
        "peak_mib": peak_mib(core.device),
        "bank_frames": len(core.bank),
        "warmup_s": round(warm, 2),
        "seconds": round(seconds, 2),
    }


def _videos(settings: Settings) -> dict:
    return {k: _video(settings, settings.cycle, k, seed=k) for k in settings.objects}


def _speed_rows(
    settings: Settings,
    result: Result,
    config: str,
    variant: str,
    overrides: list[str],
    videos: dict,
    compare: bool = False,
) -> None:
    """Rows at the short and the long length for each object count, one core for all of them;
    ``compare``: first the agreement with the plain bf16 core (same network), in lockstep."""
    core = None
    for objects in settings.objects:
        images, first = videos[objects]
        for length, steps in (("short", settings.length), ("long", 3 * settings.length)):
            row = {
                "config": config,
                "variant": variant,
                "objects": objects,
                "length": length,
                "frames": steps,
                "overrides": overrides,
            }
            if not result.time_left(row):
                continue
            began = time.perf_counter()
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    if core is None:
                        core = _core(settings, _config(settings, config, *overrides))
                    if compare and length == "short":
                        plain = _core(settings, _config(settings, config), core.model)
                        frames = _playback(images, first, settings.compare_frames, core.device)
                        row.update(_lockstep(plain, core, frames), compare_frames=len(frames))
                    row["setup_s"] = round(time.perf_counter() - began, 2)  # a compilation happens here
                    row.update(_measure(core, images, first, steps, settings.warmup))
                row["warnings"] = sorted({one_line(w.message) for w in caught})
                result.row(row)
            except Exception as exc:  # one measurement failing does not stop the others
                result.error(row, exc)
                core = None
            result.timed(time.perf_counter() - began)


def check_agreement(settings: Settings, result: Result) -> None:
    """bf16 against fp32 (same network): one forward pass, then a whole generated video."""
    objects = max(settings.objects)
    images, first = _video(settings, settings.agreement_frames, objects, seed=7)
    fp32 = _core(settings, _config(settings, "remn", "runtime.precision=fp32"))
    bf16 = _core(settings, _config(settings, "remn"), fp32.model)
    for what, count in (
        ("forward (frame 1 from frame 0's memory)", 2),
        (f"{settings.agreement_frames}-frame video", len(images)),
    ):
        row = {"what": what, "objects": objects, "config": "remn", "frames": count}
        try:
            result.row({**row, **_lockstep(fp32, bf16, _playback(images, first, count, fp32.device))})
        except Exception as exc:
            result.error(row, exc)


def check_speed(settings: Settings, result: Result) -> None:
    """REMN and STCN mode in bf16, then REMN with channels-last."""
    videos = _videos(settings)
    for config in ("remn", "stcn"):
        _speed_rows(settings, result, config, "bf16", [], videos)
    _speed_rows(settings, result, "remn", "channels_last", ["inference.channels_last=true"], videos)


def check_cuda_graphs(settings: Settings, result: Result) -> None:
    """REMN with ``inference.cuda_graphs``; on a CPU only the warning is checked."""
    if device_of(settings).type != "cuda":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            from remn.inference import InferenceCore
            from remn.model import build_model

            cfg = _config(settings, "remn", "inference.cuda_graphs=true")
            InferenceCore(build_model(cfg), cfg, torch.device("cpu"))
        seen = [str(w.message) for w in caught if "cuda_graphs" in str(w.message)]
        raise Skip(
            "needs CUDA"
            + (
                f" (here the switch warned and was ignored: {seen[0]})"
                if seen
                else " (and the CPU gave no warning about it)"
            )
        )
    _speed_rows(
        settings, result, "remn", "cuda_graphs", ["inference.cuda_graphs=true"], _videos(settings), compare=True
    )


def check_compile(settings: Settings, result: Result) -> None:
    """REMN with ``inference.compile`` (its warm-up holds the compilation); dynamo's counters."""
    import torch._dynamo

    backend = settings.compile_backend
    if backend != "inductor":
        result.data["notes"].append(
            f"backend {backend}: dynamo traces the stages, no kernels are generated (inductor takes minutes on a CPU)"
        )
    _speed_rows(
        settings,
        result,
        "remn",
        f"compile ({backend})",
        ["inference.compile=true", f"inference.compile_backend={backend}"],
        _videos(settings),
        compare=True,
    )
    counters = torch._dynamo.utils.counters
    result.data["dynamo"] = {
        "unique_graphs": counters["stats"].get("unique_graphs", 0),
        "graph_breaks": sum(counters["graph_break"].values()),
        "break_reasons": [one_line(k, 160) for k in list(counters["graph_break"])[:5]],
    }


def _self_time(event, on: str) -> float:
    if on == "cpu":
        return float(event.self_cpu_time_total)
    return float(getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0.0)))


def check_profile(settings: Settings, result: Result) -> None:
    """A few frame steps of REMN and STCN mode (1 object, bf16) under torch.profiler, after
    ``profile_after`` steps filled the memory: the top kernels by self time on the device."""
    from torch.profiler import ProfilerActivity, profile

    images, first = _video(settings, settings.cycle, 1, seed=1)
    for config in ("remn", "stcn"):
        row = {"config": config, "objects": 1, "after": settings.profile_after, "steps": settings.profile_steps}
        try:
            core = _core(settings, _config(settings, config))
            device = core.device
            frames = _playback(images, first, settings.profile_after + settings.profile_steps, device)
            for frame in frames[: settings.profile_after]:
                core.step(frame.image, frame.mask)
            on = "device" if device.type == "cuda" else "cpu"
            activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on == "device" else [])
            sync(device)
            with profile(activities=activities) as prof:
                began = time.perf_counter()
                for frame in frames[settings.profile_after :]:
                    core.labels(core.step(frame.image, frame.mask))
                sync(device)
                wall = time.perf_counter() - began
            events = prof.key_averages()
            if on == "device":  # the kernels themselves (an operator's self device time is its kernels')
                events = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA] or list(events)
            total = sum(_self_time(e, on) for e in events) or 1.0
            ranked = sorted(events, key=lambda e: _self_time(e, on), reverse=True)[:10]
            # on a GPU, busy < 1 means the device waited for the host (launches, Python, syncs)
            row.update(
                measured="kernel time on the device" if on == "device" else "self CPU time",
                total_ms=round(total / 1000, 2),
                wall_ms=round(1000 * wall, 2),
                busy=round(total / 1e6 / wall, 3) if on == "device" else None,
                top=[
                    {
                        "name": e.key,
                        "ms": round(_self_time(e, on) / 1000, 3),
                        "share": _self_time(e, on) / total,
                        "calls": e.count,
                    }
                    for e in ranked
                ],
            )
            path = Path(settings.out) / f"profile_{config}.txt"
            table = prof.key_averages()
            try:
                path.write_text(
                    table.table(sort_by="self_cpu_time_total" if on == "cpu" else "self_cuda_time_total", row_limit=30)
                )
            except Exception:  # the sort key's name differs between torch versions
                path.write_text(table.table(row_limit=30))
            row["table"] = path.name
            result.row(row)
        except Exception as exc:
            result.error(row, exc)
