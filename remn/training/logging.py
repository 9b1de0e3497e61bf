"""The run folder and what is written into it while training.

``<train.run_dir>/<name>/`` holds::

    config.yaml            the resolved configuration of the first launch
    config-launch<N>.yaml  the configuration of a later launch (``--resume``) when it differs
    run.json               one entry per launch: command, git commit, software and hardware
    train.log              the messages printed during training
    tensorboard/           scalars, histograms and images (``tensorboard --logdir runs``)
    checkpoints/latest.pt  everything needed to resume (overwritten every ``save_every``)
    checkpoints/<stage>_<iteration>.pth, <stage>_final.pth   network weights

Only the main process (rank 0) writes.
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
from torch import Tensor
from tqdm import tqdm

from ..config import REMNConfig, config_to_yaml
from ..data.masks import DAVIS_PALETTE
from ..outputs import atomic_write_text

__all__ = ["RunFolder", "TrainLogger", "git_state", "environment_info", "clip_image"]

_REPO = Path(__file__).resolve().parents[2]
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def git_state(repo: Path = _REPO) -> dict[str, object]:
    """The commit the code was run from and whether the tree had changes; tolerates no git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=20,
                              check=True).stdout.strip()
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
        return sorted(p.name for p in self.root.iterdir()
                      if p.name not in self.ENTRIES and not (p.name.startswith("config-launch") and p.suffix == ".yaml"))

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

    def record_launch(self, cfg: REMNConfig, device: torch.device, world_size: int, argv: list[str],
                      resume: bool) -> str:
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
        launches.append({
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "command": [sys.executable, *argv],
            "resume": resume,
            "config": config_file,
            "world_size": world_size,
            "git": git_state(),
            "environment": environment_info(device),
        })
        atomic_write_text(info_path, json.dumps({"launches": launches}, indent=2) + "\n")
        return config_file


def _palette(count: int) -> Tensor:
    colours = np.frombuffer(DAVIS_PALETTE, dtype=np.uint8).reshape(256, 3)[:count]
    return torch.from_numpy(colours.astype(np.float32) / 255.0)


def clip_image(rgb: Tensor, gt: Tensor, probs: list[Tensor]) -> Tensor:
    """One picture of a training clip: frames, ground truth and prediction, one row each.

    Args:
        rgb: ``(T, 3, H, W)`` ImageNet-normalised frames of one clip.
        gt: ``(T, K, H, W)`` object masks.
        probs: ``T - 1`` predictions ``(K+1, H, W)`` of frames ``1..T-1`` (frame 0 shows
            the ground truth in the prediction row, since it is given).

    Returns:
        ``(3, 3H, T*W)`` float image in [0, 1]; masks are drawn in DAVIS colours over the frames.
    """
    mean = torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1)
    frames = (rgb.detach().float().cpu() * std + mean).clamp(0, 1)
    gt = gt.detach().float().cpu()
    k = gt.shape[1]
    colours = _palette(k + 1)
    gt_labels = torch.where(gt.max(dim=1).values > 0.5, gt.argmax(dim=1) + 1, 0)  # (T, H, W)
    pred_labels = torch.stack([gt_labels[0]] + [p.detach().float().cpu().argmax(dim=0) for p in probs])

    def overlay(labels: Tensor) -> Tensor:
        colour = colours[labels].permute(0, 3, 1, 2)  # (T, 3, H, W)
        alpha = (labels > 0).float().unsqueeze(1) * 0.6
        return frames * (1 - alpha) + colour * alpha

    rows = [frames, overlay(gt_labels), overlay(pred_labels)]
    return torch.cat([torch.cat(list(row), dim=2) for row in rows], dim=1)


class TrainLogger:
    """Tensorboard, ``train.log`` and console messages; silent on processes other than rank 0.

    Args:
        folder: the run folder.
        enabled: whether this process writes (rank 0).
        purge_step: on resume, the global step of the checkpoint; tensorboard drops events a
            crashed launch wrote after it.
    """

    def __init__(self, folder: RunFolder, enabled: bool, purge_step: int | None = None) -> None:
        self.folder = folder
        self.enabled = enabled
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            folder.tensorboard.mkdir(parents=True, exist_ok=True)
            self.writer = SummaryWriter(log_dir=str(folder.tensorboard), purge_step=purge_step)

    def message(self, text: str) -> None:
        """Print (without breaking a progress bar) and append to ``train.log``."""
        if not self.enabled:
            return
        tqdm.write(text)
        self.folder.root.mkdir(parents=True, exist_ok=True)
        with self.folder.log_file.open("a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer is not None:
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)

    def histogram(self, step: int, tag: str, values: list[int], bins: int) -> None:
        """Counts of integer values ``0..bins-1`` (e.g. the RRM policy chosen at each reduction)."""
        if self.writer is not None and values:
            edges = np.arange(bins + 1, dtype=np.float64) - 0.5
            self.writer.add_histogram(tag, np.asarray(values, dtype=np.float64), step, bins=edges)

    def image(self, step: int, tag: str, picture: Tensor) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, picture, step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
