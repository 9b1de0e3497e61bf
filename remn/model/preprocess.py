"""Image normalisation and padding to the network's stride.

The encoders downsample by 16, so every frame and mask is padded to a multiple of 16
before it enters the network and cropped back afterwards. Padding is split evenly
between the two sides (the odd pixel goes to the bottom / right) and is applied to
normalised images, so a padded pixel is the ImageNet mean colour.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "normalize_image", "pad_divide_by", "unpad", "Padding"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Padding = tuple[int, int, int, int]
"""(left, right, top, bottom), as ``torch.nn.functional.pad`` takes it."""


def normalize_image(image: Tensor) -> Tensor:
    """RGB in [0, 1], shape ``(..., 3, H, W)``, to ImageNet-normalised values."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image - mean) / std


def pad_divide_by(x: Tensor, divisor: int = 16) -> tuple[Tensor, Padding]:
    """Zero-pad the last two dims of ``x`` (``(..., H, W)``) up to multiples of ``divisor``.

    Returns the padded tensor and the padding, which :func:`unpad` undoes.
    """
    h, w = x.shape[-2:]
    pad_h = (-h) % divisor
    pad_w = (-w) % divisor
    padding = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    if pad_h == 0 and pad_w == 0:
        return x, padding
    return F.pad(x, padding), padding


def unpad(x: Tensor, padding: Padding) -> Tensor:
    """Crop what :func:`pad_divide_by` added; ``x`` is ``(..., H_padded, W_padded)``."""
    left, right, top, bottom = padding
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]
