"""What a training run shows while it runs: messages, tensorboard scalars, histograms and images.

:class:`TrainLogger` prints messages (above the progress bar) and appends them to ``train.log``,
and writes tensorboard events to ``tensorboard/`` of the run folder; only the main process writes.
:class:`StageProgress` shows a stage's progress: a tqdm bar on a terminal, plain lines otherwise.
:func:`clip_image` draws one training clip (frames, ground truth, prediction) for tensorboard.
"""

from __future__ import annotations

import math
import sys
import time
from typing import TextIO

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from ..data.masks import DAVIS_PALETTE
from .run_folder import RunFolder

__all__ = ["StageProgress", "TrainLogger", "clip_image"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


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


class StageProgress:
    """A stage's progress on the main process: a tqdm bar when ``stream`` is a terminal, else a
    plain line every ``every`` iterations and at the last one (logs, pipes, ``nohup``).

    A line reads ``<stage> <iteration>/<total> | <rate> it/s | ETA <time> | loss <l> | IoU <i>``;
    the rate counts this launch's iterations of the stage, loss and IoU are this process's means
    over the iterations since the previous line.

    Args:
        stage: the stage's name.
        total: the stage's iterations.
        initial: the iteration the stage starts from (on resume).
        enabled: show anything (``--no-progress`` and processes other than rank 0: False).
        every: iterations between lines; 0 = a twentieth of the stage (about 20 lines).
        stream: where it goes (default: ``sys.stderr`` at construction).
    """

    def __init__(
        self, stage: str, total: int, initial: int, enabled: bool, every: int = 0, stream: TextIO | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        terminal = enabled and bool(getattr(self.stream, "isatty", lambda: False)())
        self.lines = enabled and not terminal
        self.stage, self.total, self.initial = stage, total, initial
        self.every = every if every > 0 else max(1, math.ceil(total / 20))
        self.bar = tqdm(
            total=total, initial=initial, desc=stage, dynamic_ncols=True, disable=not terminal, file=self.stream
        )
        self.started = time.perf_counter()
        self._window: list[tuple[float, float | None]] = []

    def update(self, iteration: int, values: dict[str, float]) -> None:
        """After the step that reached ``iteration``; ``values``: that step's ``loss/total`` and ``iou``."""
        self.bar.update(1)
        if not self.lines:
            return
        self._window.append((values["loss/total"], values.get("iou")))
        if iteration % self.every != 0 and iteration != self.total:
            return
        elapsed = max(1e-9, time.perf_counter() - self.started)
        rate = (iteration - self.initial) / elapsed
        eta = tqdm.format_interval((self.total - iteration) / rate) if rate > 0 else "?"
        loss = sum(v[0] for v in self._window) / len(self._window)
        ious = [v[1] for v in self._window if v[1] is not None]
        iou = f"{sum(ious) / len(ious):.3f}" if ious else "-"
        self._window = []
        print(
            f"{self.stage} {iteration}/{self.total} | {rate:.2f} it/s | ETA {eta} | loss {loss:.4f} | IoU {iou}",
            file=self.stream,
            flush=True,
        )

    def postfix(self, values: dict[str, float]) -> None:
        """The bar's loss, IoU and learning rate (every ``train.log_every`` iterations)."""
        self.bar.set_postfix(loss=f"{values['loss/total']:.4f}", iou=f"{values['iou']:.3f}", lr=f"{values['lr']:.2g}")

    def close(self) -> None:
        self.bar.close()


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
