"""Soft aggregation: independent per-object probabilities -> one distribution per pixel.

Given per-object foreground probabilities ``p_1..p_K`` (sigmoids of the decoder),
background is ``p_0 = prod_i (1 - p_i)``. The stack ``[p_0, ..., p_K]`` is clamped to
``[1e-7, 1 - 1e-7]``, turned into logits ``log(p / (1 - p))`` and normalised with a
softmax over the object axis. The logits feed the training loss; the softmax is the
output probability (background included).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["soft_aggregate"]

_EPS = 1e-7


def soft_aggregate(object_prob: Tensor, dim: int = 1) -> tuple[Tensor, Tensor]:
    """Aggregate ``object_prob`` (``K`` objects along ``dim``) with a background channel.

    Args:
        object_prob: e.g. ``(B, K, H, W)`` in [0, 1].
        dim: the object axis.

    Returns:
        ``(logits, prob)``, each with ``K + 1`` entries along ``dim`` (background first);
        ``prob`` sums to 1 along ``dim``.
    """
    background = torch.prod(1 - object_prob, dim=dim, keepdim=True)
    stacked = torch.cat([background, object_prob], dim=dim).clamp(_EPS, 1 - _EPS)
    logits = torch.log(stacked / (1 - stacked))
    return logits, torch.softmax(logits, dim=dim)
