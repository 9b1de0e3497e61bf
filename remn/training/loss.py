"""Training losses: STCN's bootstrapped cross-entropy per clip, RRM's loss, IoU for the logs.

The segmentation loss of a clip is the sum over frames ``1..T-1`` (frame 0 is given) of
a bootstrapped cross-entropy on the aggregated logits (background first). Each sample
is scored on its own: a sample with ``n`` objects uses the first ``n + 1`` channels only,
so an empty object slot does not count as a class the network could have predicted.
Bootstrapping keeps the hardest fraction ``p`` of the pixels of the sample: ``p = 1``
(plain mean) early in a stage, falling linearly to ``train.bootstrap_final``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import TrainConfig

__all__ = ["bootstrap_fraction", "bootstrapped_cross_entropy", "clip_segmentation_loss", "SegmentationLoss", "mask_iou"]


def bootstrap_fraction(iteration: int, cfg: TrainConfig) -> float:
    """Fraction ``p`` of the hardest pixels kept at ``iteration`` of the current stage.

    ``1`` before ``bootstrap_start``; linear from 1 to ``bootstrap_final`` up to
    ``bootstrap_end``; ``bootstrap_final`` after.
    """
    start, end, final = cfg.bootstrap_start, cfg.bootstrap_end, cfg.bootstrap_final
    if iteration < start:
        return 1.0
    if iteration >= end:
        return final
    return final + (1.0 - final) * (end - iteration) / (end - start)


def bootstrapped_cross_entropy(logits: Tensor, target: Tensor, num_objects: Tensor, fraction: float) -> Tensor:
    """Mean over the batch of each sample's bootstrapped cross-entropy.

    Args:
        logits: ``(B, K+1, H, W)`` aggregated logits, background first.
        target: ``(B, H, W)`` int64 class per pixel in ``0..K``.
        num_objects: ``(B,)`` objects used by each sample (their slots come first).
        fraction: ``p`` in (0, 1]; each sample keeps its ``int(H*W*p)`` largest pixel losses.

    Returns:
        a scalar (float32).
    """
    per_sample = []
    for b in range(logits.shape[0]):
        channels = int(num_objects[b]) + 1
        pixel_loss = F.cross_entropy(
            logits[b : b + 1, :channels].float(), target[b : b + 1], reduction="none"
        ).flatten()
        if fraction < 1.0:
            keep = max(1, int(pixel_loss.numel() * fraction))
            pixel_loss = torch.topk(pixel_loss, keep, sorted=False).values
        per_sample.append(pixel_loss.mean())
    return torch.stack(per_sample).mean()


@dataclass
class SegmentationLoss:
    """The segmentation loss of a batch of clips."""

    total: Tensor
    """Sum over frames of the per-frame losses."""
    per_frame: list[Tensor]
    """Loss of frames ``1..T-1`` in order."""


def clip_segmentation_loss(
    frame_logits: list[Tensor], cls_gt: Tensor, selector: Tensor, fraction: float
) -> SegmentationLoss:
    """Bootstrapped CE summed over the predicted frames of a clip.

    Args:
        frame_logits: logits ``(B, K+1, H, W)`` of frames ``1..T-1``.
        cls_gt: ``(B, T, H, W)`` classes of every frame (frame 0 unused).
        selector: ``(B, K)`` 1 for the used object slots (a prefix of the slots).
        fraction: bootstrapping ``p``.
    """
    num_objects = selector.sum(dim=1).round().long()
    per_frame = [
        bootstrapped_cross_entropy(logits, cls_gt[:, t + 1], num_objects, fraction)
        for t, logits in enumerate(frame_logits)
    ]
    return SegmentationLoss(torch.stack(per_frame).sum(), per_frame)


@torch.no_grad()
def mask_iou(prob: Tensor, gt: Tensor, selector: Tensor) -> Tensor:
    """IoU of the thresholded (0.5) prediction per used object, averaged (logged only).

    Args:
        prob: ``(B, K+1, H, W)`` probabilities, background first.
        gt: ``(B, K, H, W)`` object masks in [0, 1].
        selector: ``(B, K)``.

    Returns:
        a scalar; an object absent from both prediction and ground truth scores 1.
    """
    pred = prob[:, 1:] > 0.5
    truth = gt > 0.5
    inter = (pred & truth).flatten(2).sum(-1).float()
    union = (pred | truth).flatten(2).sum(-1).float()
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    used = selector > 0
    return iou[used].mean() if bool(used.any()) else iou.new_tensor(1.0)
