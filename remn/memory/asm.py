"""ASM, the Adaptive Sampling Module: write a frame to memory only when the objects changed.

ASM compares the current prediction ``M_t`` with the mask ``M_n`` of the latest memory
frame, object by object (docs/design.md, ASM-1..4):

* position: ``d_pos = ||c_t - c_n|| / sqrt(area_n)``, the centroid shift measured in
  object sizes;
* shape: ``d_shape = 1 - IoU(M_t shifted so that c_t lands on c_n, M_n)``;
* an object present in one mask and not the other changed maximally (``inf``);
  an object absent from both does not count.

The variation ``d = max_o (lambda_pos * d_pos + lambda_shape * d_shape)``; frame ``t``
is written when ``d > tau`` or ``max_interval`` frames have passed since the last
write, and never sooner than ``min_interval`` frames after it. Masks are the argmax of
the probabilities after area-downsampling by ``stride``; everything stays on the
device, and the only synchronisation is the final yes/no.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["binary_object_masks", "object_variation", "AdaptiveSampling"]


def binary_object_masks(prob: Tensor, stride: int) -> Tensor:
    """``(K+1, H, W)`` probabilities (background first) -> ``(K, H/stride, W/stride)`` bool
    masks of the argmax labels after area-downsampling."""
    if stride > 1:
        h, w = prob.shape[-2:]
        size = (max(1, h // stride), max(1, w // stride))
        prob = F.interpolate(prob[None].float(), size=size, mode="area")[0]
    labels = prob.argmax(dim=0)
    ids = torch.arange(1, prob.shape[0], device=prob.device)
    return labels[None] == ids[:, None, None]


def _translate(masks: Tensor, shift_y: Tensor, shift_x: Tensor) -> Tensor:
    """Move each mask ``(K, H, W)`` by ``(shift_y, shift_x)`` pixels (nearest, zero fill)."""
    k, h, w = masks.shape
    theta = torch.zeros(k, 2, 3, device=masks.device)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    # sampling grid: output pixel p reads input pixel p - shift, in normalised units
    theta[:, 0, 2] = -2 * shift_x / w
    theta[:, 1, 2] = -2 * shift_y / h
    grid = F.affine_grid(theta, [k, 1, h, w], align_corners=False)
    moved = F.grid_sample(masks[:, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return moved[:, 0] > 0.5


def object_variation(current: Tensor, reference: Tensor, lambda_pos: float = 1.0, lambda_shape: float = 1.0) -> Tensor:
    """Per-object change between two sets of binary masks.

    Args:
        current: ``(K, H, W)`` bool, ``M_t``.
        reference: ``(K, H, W)`` bool, ``M_n`` (same objects, same order).

    Returns:
        ``(K,)`` float: ``lambda_pos * d_pos + lambda_shape * d_shape``; ``inf`` where
        the object is in exactly one of the masks; 0 where it is in neither.
    """
    k, h, w = current.shape
    ys = torch.arange(h, device=current.device, dtype=torch.float32)
    xs = torch.arange(w, device=current.device, dtype=torch.float32)
    cur = current.float()
    ref = reference.float()
    area_t = cur.sum(dim=(1, 2))
    area_n = ref.sum(dim=(1, 2))
    safe_t = area_t.clamp(min=1)
    safe_n = area_n.clamp(min=1)
    cy_t = (cur.sum(dim=2) * ys).sum(dim=1) / safe_t
    cx_t = (cur.sum(dim=1) * xs).sum(dim=1) / safe_t
    cy_n = (ref.sum(dim=2) * ys).sum(dim=1) / safe_n
    cx_n = (ref.sum(dim=1) * xs).sum(dim=1) / safe_n

    d_pos = torch.sqrt((cy_t - cy_n) ** 2 + (cx_t - cx_n) ** 2) / torch.sqrt(safe_n)
    centred = _translate(current, torch.round(cy_n - cy_t), torch.round(cx_n - cx_t))
    inter = (centred & reference).float().sum(dim=(1, 2))
    union = (centred | reference).float().sum(dim=(1, 2))
    d_shape = 1 - inter / union.clamp(min=1)

    variation = lambda_pos * d_pos + lambda_shape * d_shape
    present_t = area_t > 0
    present_n = area_n > 0
    variation = torch.where(present_t != present_n, torch.full_like(variation, float("inf")), variation)
    return torch.where(~present_t & ~present_n, torch.zeros_like(variation), variation)


class AdaptiveSampling:
    """Write policy that follows the objects' change (ASM)."""

    def __init__(
        self,
        lambda_pos: float = 1.0,
        lambda_shape: float = 1.0,
        tau: float = 0.2,
        min_interval: int = 2,
        max_interval: int = 10,
        stride: int = 4,
    ) -> None:
        if not 1 <= min_interval <= max_interval:
            raise ValueError(f"need 1 <= min_interval <= max_interval, got {min_interval}, {max_interval}")
        self.lambda_pos = lambda_pos
        self.lambda_shape = lambda_shape
        self.tau = tau
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.stride = stride
        self.last_write: int | None = None
        self._reference: Tensor | None = None

    def variation(self, prob: Tensor) -> float:
        """Largest object variation between ``prob`` and the last memory frame's mask."""
        current = binary_object_masks(prob, self.stride)
        if self._reference is None:
            return float("inf")
        reference = self._reference
        if reference.shape[0] < current.shape[0]:  # objects that joined since: absent before
            pad = current.new_zeros(current.shape[0] - reference.shape[0], *reference.shape[1:])
            reference = torch.cat([reference, pad], dim=0)
        changes = object_variation(current, reference, self.lambda_pos, self.lambda_shape)
        return float(changes.max()) if changes.numel() else 0.0

    def should_write(self, frame_index: int, prob: Tensor) -> bool:
        """Decide for frame ``frame_index`` with probabilities ``prob (K+1, H, W)``."""
        if self.last_write is None:
            return True
        since = frame_index - self.last_write
        if since < self.min_interval:
            return False
        if since >= self.max_interval:
            return True
        return self.variation(prob) > self.tau

    def record_write(self, frame_index: int, prob: Tensor) -> None:
        """Remember the frame just written and its mask."""
        self.last_write = frame_index
        self._reference = binary_object_masks(prob, self.stride)

    def keep_objects(self, slots: list[int]) -> None:
        """Objects were removed: keep only ``slots`` of the reference mask."""
        if self._reference is not None:
            slots = [s for s in slots if s < self._reference.shape[0]]
            self._reference = self._reference[torch.tensor(slots, dtype=torch.long, device=self._reference.device)]
