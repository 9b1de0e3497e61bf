"""Small building blocks shared by the value encoder and the decoder.

Attribute names follow STCN's so that its checkpoints load (``conv1``, ``conv2``,
``downsample``; ``ChannelGate.mlp.1``; ``SpatialGate.spatial.conv``; ``skip_conv``,
``out_conv``). None of these blocks uses batch norm.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ResBlock", "CBAM", "FeatureFusionBlock", "UpsampleBlock"]


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3x3 convolution, stride 1, 'same' padding, with bias."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


class ResBlock(nn.Module):
    """Pre-activation residual block: ``shortcut(x) + conv2(relu(conv1(relu(x))))``.

    When the channel count changes, the shortcut is a 3x3 convolution named
    ``downsample`` (it changes channels, not resolution); otherwise it is the identity.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        # registered first so that the state_dict order matches STCN's files
        self.downsample = conv3x3(in_channels, out_channels) if in_channels != out_channels else None
        self.conv1 = conv3x3(in_channels, out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in, H, W) -> (N, out, H, W)``."""
        residual = self.conv2(F.relu(self.conv1(F.relu(x))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return shortcut + residual


class _ChannelGate(nn.Module):
    """Scales each channel by a sigmoid of an MLP over its global average and max."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        # index 0 is the Flatten, so the Linear layers are stored as mlp.1 and mlp.3
        self.mlp = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels, channels // reduction),
            nn.ReLU(),
            nn.Linear(channels // reduction, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        peak = self.mlp(F.adaptive_max_pool2d(x, 1))
        scale = torch.sigmoid(avg + peak)
        return x * scale[:, :, None, None]


class _SpatialConv(nn.Module):
    """Holds the spatial gate's convolution under the name ``conv`` (checkpoint layout)."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class _SpatialGate(nn.Module):
    """Scales each position by a sigmoid of a 7x7 conv over [channel max, channel mean]."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.spatial = _SpatialConv(kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    """Convolutional block attention: a channel gate followed by a spatial gate."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.ChannelGate = _ChannelGate(channels, reduction)
        self.SpatialGate = _SpatialGate()

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) -> (N, C, H, W)``."""
        return self.SpatialGate(self.ChannelGate(x))


class FeatureFusionBlock(nn.Module):
    """Fuses the value encoder's stride-16 feature with the key encoder's of the same frame.

    ``block2(y + CBAM(y))`` with ``y = block1(cat[value_feature, key_f16])``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.block1 = ResBlock(in_channels, out_channels)
        self.attention = CBAM(out_channels)
        self.block2 = ResBlock(out_channels, out_channels)

    def forward(self, value_feature: Tensor, key_f16: Tensor) -> Tensor:
        """``(N, 256, h, w)`` and ``(N, 1024, h, w)`` -> ``(N, out, h, w)``."""
        x = self.block1(torch.cat([value_feature, key_f16], dim=1))
        return self.block2(x + self.attention(x))


class UpsampleBlock(nn.Module):
    """Doubles the resolution of ``x`` and merges a skip feature: ``out_conv(skip_conv(skip) + up(x))``."""

    def __init__(self, skip_channels: int, up_channels: int, out_channels: int) -> None:
        super().__init__()
        self.skip_conv = conv3x3(skip_channels, up_channels)
        self.out_conv = ResBlock(up_channels, out_channels)

    def forward(self, skip: Tensor, x: Tensor) -> Tensor:
        """``skip (N, S, 2h, 2w)``, ``x (N, U, h, w)`` -> ``(N, out, 2h, 2w)``."""
        up = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.out_conv(self.skip_conv(skip) + up)
