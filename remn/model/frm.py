"""FRM, the Foreground Reinforcing Module (paper Sec. II-A; decisions FRM-1..6 in docs/design.md).

FRM strengthens the query key around where the objects were in the previous frame,
so that look-alike objects far from them match the memory less well.

For a query key ``k`` (C^k x h x w) and the previous frame's foreground probability
``m`` (1 x h x w, the union of all objects, at 1/16 resolution):

1. ``F_att = relu(conv_{w x h}(cat[k, m]))``  (C^k channels)
2. ``alpha = softmax_z(conv_{1x1}(F_att))``      (Z = w*h weights per position)
3. ``alpha~_z(i,j) = alpha_z(i,j) * m(n_z(i,j))``  (background neighbours suppressed;
   ``n_z(i,j)`` is the z-th position of the window centred on ``(i,j)``, zero outside)
4. ``k_hat(i,j) = k(i,j) + g * sum_z alpha~_z(i,j) * k(n_z(i,j))``

``g`` is a learnable scalar that starts at 0, so an untrained FRM is the identity and
STCN weights keep their meaning. Because the enhancement is multiplied by ``g``, the
two convolutions receive no gradient until ``g`` has moved away from 0 (after the
first optimiser step); ``g`` itself receives one from the start.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ForegroundReinforcingModule", "foreground_prior"]


def foreground_prior(prob: Tensor, size: tuple[int, int]) -> Tensor:
    """Foreground probability ``1 - P(background)`` at the key's resolution.

    Args:
        prob: ``(B, K+1, H, W)`` with background first (aggregated probabilities or
            a one-hot mask).
        size: ``(h, w)`` of the key.

    Returns:
        ``(B, 1, h, w)``, area-averaged.
    """
    foreground = 1 - prob[:, :1]
    return F.interpolate(foreground, size=size, mode="area")


class ForegroundReinforcingModule(nn.Module):
    """Local attention of the query key, restricted to the previous frame's foreground."""

    def __init__(self, key_dim: int = 64, window: int = 7) -> None:
        super().__init__()
        if window % 2 != 1:
            raise ValueError(f"FRM window must be odd, got {window}")
        self.window = window
        self.attention_conv = nn.Conv2d(key_dim + 1, key_dim, kernel_size=window, padding=window // 2)
        self.weight_conv = nn.Conv2d(key_dim, window * window, kernel_size=1)
        self.gate = nn.Parameter(torch.zeros(()))

    def attention(self, key: Tensor, prev_mask: Tensor) -> Tensor:
        """Local attention weights ``alpha`` before suppression: ``(B, Z, h, w)``, sums to 1 over Z."""
        features = F.relu(self.attention_conv(torch.cat([key, prev_mask.to(key.dtype)], dim=1)))
        return torch.softmax(self.weight_conv(features), dim=1)

    def forward(self, key: Tensor, prev_mask: Tensor) -> Tensor:
        """Enhance a query key.

        Args:
            key: ``(B, C^k, h, w)``.
            prev_mask: ``(B, 1, h, w)`` previous foreground probability in [0, 1].

        Returns:
            enhanced key ``(B, C^k, h, w)``.
        """
        b, c, h, w = key.shape
        alpha = self.attention(key, prev_mask)  # (B, Z, h, w)
        # alpha~_z * k(n_z) = alpha_z * (m * k)(n_z): one unfold of the masked key
        masked_key = key * prev_mask.to(key.dtype)
        neighbours = F.unfold(masked_key, kernel_size=self.window, padding=self.window // 2)
        neighbours = neighbours.view(b, c, self.window * self.window, h, w)
        enhancement = (neighbours * alpha.unsqueeze(1)).sum(dim=2)
        return key + self.gate * enhancement
