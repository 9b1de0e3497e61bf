"""One check in this process: the ``device`` check, the table of checks, and :func:`worker_main`."""

from __future__ import annotations

import os
import platform
import re
import traceback
from pathlib import Path
from typing import Callable

import torch

from .inference_checks import check_agreement, check_compile, check_cuda_graphs, check_profile, check_speed
from .measure import Result, Skip, device_of, error_line, sync
from .settings import Settings
from .training_checks import check_torchrun, check_train

__all__ = ["WORKERS", "worker_main", "check_device"]


def check_device(settings: Settings, result: Result) -> None:
    """What this process sees: the device, torch, CUDA, cuDNN, NCCL, Triton; a bf16 product on it."""
    device = device_of(settings)
    info: dict = {
        "type": device.type,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "nccl": torch.distributed.is_available() and torch.distributed.is_nccl_available(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            name=props.name,
            memory_gib=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}",
            bf16=torch.cuda.is_bf16_supported(),
            nccl_version=".".join(map(str, torch.cuda.nccl.version())),
        )
    else:
        cpuinfo = Path("/proc/cpuinfo")
        model = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text()) if cpuinfo.is_file() else None
        info.update(
            name=model.group(1).strip() if model else platform.processor() or "CPU", threads=torch.get_num_threads()
        )
    x = torch.randn(256, 256, device=device, dtype=torch.bfloat16)
    info["bf16_matmul_finite"] = bool(torch.isfinite(x @ x).all())
    sync(device)
    try:
        import triton

        info["triton"] = triton.__version__
    except ImportError:
        info["triton"] = None
    result.data["info"] = info


WORKERS: dict[str, Callable[[Settings, Result], None]] = {
    "device": check_device,
    "agreement": check_agreement,
    "speed": check_speed,
    "profile": check_profile,
    "train": check_train,
    "torchrun": check_torchrun,
    "cuda_graphs": check_cuda_graphs,
    "compile": check_compile,
}


def worker_main(name: str, settings: Settings, deadline: float) -> int:
    """Run check ``name`` here, writing ``work/<name>.json`` as it goes; 0 unless it failed."""
    result = Result(Path(settings.out) / "work" / f"{name}.json", deadline)
    try:
        WORKERS[name](settings, result)
        result.data["status"] = "failed" if "error" in result.data else "passed"
    except Skip as skip:
        result.data.update(status="skipped", reason=str(skip))
    except Exception as exc:
        traceback.print_exc()
        result.data.update(status="failed", error=error_line(exc))
    result.save()
    return 0 if result.data["status"] != "failed" else 1
