"""The forward pass over a training clip: STCN's three-frame pass generalised to T frames.

For a batch of clips ``rgb (B, T, 3, H, W)`` with the masks of frame 0 given:

1. keys and features of all ``T`` frames in one key-encoder call;
2. frame 0: probabilities from its ground truth (soft aggregation, background first);
   its key is enhanced by FRM with that mask (a first frame has no previous one) and
   its values are encoded from the ground-truth masks; it is the permanent memory;
3. frame ``t = 1..T-1``: FRM enhances the key with the previous frame's probabilities
   (the ground truth for ``t = 1``, the soft prediction of ``t - 1`` afterwards, with
   gradient); the memory (frame 0 plus the working frames) is read with the full
   softmax; the decoder gives logits and probabilities. Unless it is the last frame,
   its values are encoded from its soft prediction (no threshold, no detach) and it
   joins the working memory under its enhanced key, as at inference;
4. with ``reduce_memory``, whenever the working memory holds ``capacity`` frames RRM
   shortens it and its KL loss is recorded; later frames are segmented from the
   reduced memory. Frame 0 is never reduced.

:class:`ClipPass` is an ``nn.Module`` so that ``DistributedDataParallel`` can wrap the
whole pass (DDP synchronises gradients of what runs inside ``forward``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..model.aggregate import soft_aggregate
from ..model.network import REMN

__all__ = ["ClipPass", "ClipOutput", "first_frame_prob"]


@dataclass
class ClipOutput:
    """What one pass over a batch of clips produced."""

    logits: list[Tensor]
    """Aggregated logits ``(B, K+1, H, W)`` of frames ``1..T-1``."""
    probs: list[Tensor]
    """Probabilities ``(B, K+1, H, W)`` of frames ``1..T-1`` (background first)."""
    rrm_losses: list[Tensor] = field(default_factory=list)
    """RRM's KL loss of every reduction in the clip, in order."""
    rrm_policies: list[int] = field(default_factory=list)
    """The policy each reduction used."""
    rrm_probs: list[Tensor] = field(default_factory=list)
    """The gate probabilities ``(B, S^t)`` of every reduction."""


def first_frame_prob(masks: Tensor, selector: Tensor) -> Tensor:
    """Probabilities of the given frame, background first: ``(B, K, H, W) -> (B, K+1, H, W)``.

    Unused slots are zeroed first; soft aggregation makes the result a distribution
    (near one-hot for binary masks), the same form the predictions take.
    """
    return soft_aggregate(masks * selector[:, :, None, None].to(masks.dtype), dim=1)[1]


def _concat(parts: list[Tensor], dim: int) -> Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=dim)


class ClipPass(nn.Module):
    """Runs a :class:`REMN` over batches of training clips.

    Args:
        model: the network.
        reduce_memory: apply RRM when the working memory reaches ``capacity`` frames.
        capacity: N (``memory.capacity``).
        freeze_batchnorm: keep batch-norm statistics fixed in training mode (STCN).
    """

    def __init__(
        self, model: REMN, reduce_memory: bool = False, capacity: int = 16, freeze_batchnorm: bool = True
    ) -> None:
        super().__init__()
        if reduce_memory and model.rrm is None:
            raise ValueError("reduce_memory needs a network with RRM (memory.rrm=true)")
        self.model = model
        self.reduce_memory = reduce_memory
        self.capacity = capacity
        self.freeze_batchnorm = freeze_batchnorm

    def train(self, mode: bool = True) -> "ClipPass":
        """Training mode, batch norm frozen unless asked otherwise (STCN keeps BN statistics fixed)."""
        super().train(mode)
        if mode and self.freeze_batchnorm:
            self.model.freeze_batchnorm()
        return self

    def forward(self, rgb: Tensor, gt: Tensor, selector: Tensor) -> ClipOutput:
        """One pass.

        Args:
            rgb: ``(B, T, 3, H, W)`` normalised frames, ``H`` and ``W`` multiples of 16.
            gt: ``(B, T, K, 1, H, W)`` or ``(B, T, K, H, W)`` object masks in [0, 1]
                (only frame 0 is read here).
            selector: ``(B, K)`` 1 for used object slots.
        """
        model = self.model
        if gt.dim() == 6:
            gt = gt.squeeze(3)
        b, t_len = rgb.shape[:2]
        if t_len < 2:
            raise ValueError(f"a training clip needs at least 2 frames, got {t_len}")
        features = model.encode_key(rgb)  # leading dims (B, T)
        first = features.select(0)
        first_masks = gt[:, 0] * selector[:, :, None, None].to(gt.dtype)
        prev_prob = first_frame_prob(gt[:, 0], selector)

        permanent_key = model.enhance_key(first.key, prev_prob).unsqueeze(2)  # (B, C^k, 1, h, w)
        permanent_value = model.encode_value(rgb[:, 0], first.f16, first_masks).unsqueeze(3)  # (B, K, C^v, 1, h, w)
        working_keys: list[Tensor] = []
        working_values: list[Tensor] = []

        out = ClipOutput(logits=[], probs=[])
        for t in range(1, t_len):
            query = features.select(t)
            key = model.enhance_key(query.key, prev_prob)
            memory_key = _concat([permanent_key, *working_keys], dim=2)
            memory_value = _concat([permanent_value, *working_values], dim=3)
            readout = model.read_memory(memory_key, memory_value, key, top_k=None)
            seg = model.segment(readout, query, object_valid=selector)
            out.logits.append(seg.logits)
            out.probs.append(seg.prob)
            prev_prob = seg.prob
            if t == t_len - 1:
                break  # nothing reads the last frame's memory
            working_keys.append(key.unsqueeze(2))
            working_values.append(model.encode_value(rgb[:, t], query.f16, seg.prob[:, 1:]).unsqueeze(3))
            if self.reduce_memory and sum(k.shape[2] for k in working_keys) >= self.capacity:
                keys, values = torch.cat(working_keys, dim=2), torch.cat(working_values, dim=3)
                reduction = model.reduce_memory(keys, values)
                out.rrm_losses.append(model.rrm_loss(keys, values, reduction))
                out.rrm_policies.append(reduction.policy)
                out.rrm_probs.append(reduction.prob)
                working_keys, working_values = [reduction.keys], [reduction.values]
        return out
