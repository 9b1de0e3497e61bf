"""The run folder of a training run: its paths, and what each launch records in it.

``<train.run_dir>/<name>/`` holds::

    config.yaml            the resolved configuration of the first launch
    config-launch<N>.yaml  the configuration of a later launch (``--resume``) when it differs
    run.json               one entry per launch: command, git commit, software and hardware
    train.log              the messages printed during training
    tensorboard/           scalars, histograms and images (``tensorboard --logdir runs``)
    checkpoints/latest.pt  everything needed to resume (overwritten every ``save_every``)
    checkpoints/<stage>_<iteration>.pth, <stage>_final.pth   network weights

Only the main process (rank 0) writes. :mod:`remn.training.monitor` writes ``train.log`` and
``tensorboard/``, :mod:`remn.training.checkpoint` and the trainer the checkpoints.
"""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..config import REMNConfig, config_to_yaml
from ..outputs import atomic_write_text

__all__ = ["RunFolder", "git_state", "environment_info"]

_REPO = Path(__file__).resolve().parents[2]


def git_state(repo: Path = _REPO) -> dict[str, object]:
    """The commit the code was run from and whether the tree had changes; tolerates no git."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, capture_output=True, text=True, timeout=20, check=True
        ).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"commit": None, "note": f"no git information ({type(exc).__name__})"}


def environment_info(device: torch.device) -> dict[str, object]:
    """Software and hardware of this process."""
    info: dict[str, object] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(device),
        "cuda_available": torch.cuda.is_available(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


class RunFolder:
    """Paths inside ``<run_dir>/<name>`` (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def latest(self) -> Path:
        """The resume checkpoint."""
        return self.checkpoints / "latest.pt"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def log_file(self) -> Path:
        return self.root / "train.log"

    ENTRIES = ("config.yaml", "run.json", "train.log", "tensorboard", "checkpoints")
    """What a run folder holds (plus ``config-launch<N>.yaml``)."""

    def foreign_entries(self) -> list[str]:
        """Entries of the folder that a training run does not write (empty for a new folder)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.name not in self.ENTRIES and not (p.name.startswith("config-launch") and p.suffix == ".yaml")
        )

    def remove(self) -> None:
        """Delete a finished or abandoned run: only a folder holding nothing but a run's entries."""
        import shutil

        foreign = self.foreign_entries()
        if foreign or not (self.root / "run.json").is_file():
            what = f"files a training run does not write ({', '.join(foreign[:5])})" if foreign else "no run.json"
            raise OSError(f"{self.root}: not removed, it holds {what}")
        shutil.rmtree(self.root)

    def weights(self, stage: str, iteration: int | None = None) -> Path:
        """``<stage>_final.pth`` (``iteration=None``) or ``<stage>_<iteration>.pth``."""
        suffix = "final" if iteration is None else f"{iteration:07d}"
        return self.checkpoints / f"{stage}_{suffix}.pth"

    def record_launch(
        self, cfg: REMNConfig, device: torch.device, world_size: int, argv: list[str], resume: bool
    ) -> str:
        """Write the configuration and append this launch to ``run.json``; returns the name of
        the file holding this launch's configuration."""
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        info_path = self.root / "run.json"
        launches = json.loads(info_path.read_text())["launches"] if info_path.is_file() else []
        text = config_to_yaml(cfg)
        config_path = self.root / "config.yaml"
        if not config_path.is_file():
            atomic_write_text(config_path, text)
            config_file = config_path.name
        elif config_path.read_text() != text:
            config_file = f"config-launch{len(launches)}.yaml"
            atomic_write_text(self.root / config_file, text)
        else:
            config_file = config_path.name
        launches.append(
            {
                "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                "command": [sys.executable, *argv],
                "resume": resume,
                "config": config_file,
                "world_size": world_size,
                "git": git_state(),
                "environment": environment_info(device),
            }
        )
        atomic_write_text(info_path, json.dumps({"launches": launches}, indent=2) + "\n")
        return config_file
