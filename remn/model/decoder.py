"""Mask decoder: memory readout + the query's features -> one logit map per object."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import ResBlock, UpsampleBlock

__all__ = ["Decoder"]


class Decoder(nn.Module):
    """``compress`` at 1/16, ``up_16_8`` and ``up_8_4`` with skips from the key encoder,
    ``pred`` to one channel, then bilinear x4 to the (padded) input size."""

    def __init__(self, value_dim: int = 512, f16_thin_dim: int = 512) -> None:
        super().__init__()
        self.compress = ResBlock(value_dim + f16_thin_dim, 512)
        self.up_16_8 = UpsampleBlock(512, 512, 256)
        self.up_8_4 = UpsampleBlock(256, 256, 256)
        self.pred = nn.Conv2d(256, 1, kernel_size=3, padding=1)

    def forward(self, readout: Tensor, f16_thin: Tensor, f8: Tensor, f4: Tensor) -> Tensor:
        """Decode N object-query pairs.

        Args:
            readout: memory readout ``(N, C^v, h, w)``.
            f16_thin: the query's compressed stride-16 feature ``(N, 512, h, w)``.
            f8: ``(N, 512, 2h, 2w)``; f4: ``(N, 256, 4h, 4w)`` (key encoder skips).

        Returns:
            logits ``(N, 1, 16h, 16w)``.
        """
        x = self.compress(torch.cat([readout, f16_thin], dim=1))
        x = self.up_16_8(f8, x)
        x = self.up_8_4(f4, x)
        x = self.pred(F.relu(x))
        return F.interpolate(x, scale_factor=4.0, mode="bilinear", align_corners=False)
