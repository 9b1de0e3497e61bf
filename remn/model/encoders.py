"""The two encoders and the key heads.

* :class:`KeyEncoder`: torchvision's ResNet-50 up to ``layer3`` (``layer1`` is stored
  as ``res2``), image only. Gives the stride-16, -8 and -4 features of a frame.
* :class:`KeyProjection`: 3x3 conv from the stride-16 feature to the key (C^k).
* :class:`ValueEncoder`: a ResNet-18 up to ``layer3`` whose convolutions all carry a
  bias, with 5 input channels (image, object mask, other objects' masks), followed by
  the CBAM :class:`~remn.model.blocks.FeatureFusionBlock` that mixes in the key
  encoder's stride-16 feature of the same frame. Gives one value (C^v) per object.

ImageNet weights come through torchvision's weights API (``IMAGENET1K_V1``) when
:func:`load_imagenet_weights` is called; that downloads them, so tests never do.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import ResNet18_Weights, ResNet50_Weights, resnet18, resnet50

from .blocks import FeatureFusionBlock

__all__ = [
    "KeyEncoder",
    "KeyProjection",
    "ValueEncoder",
    "load_imagenet_weights",
    "copy_resnet18_weights",
    "copy_resnet50_weights",
]


class KeyEncoder(nn.Module):
    """ResNet-50 stem, ``res2`` (torchvision's ``layer1``), ``layer2`` and ``layer3``."""

    def __init__(self) -> None:
        super().__init__()
        backbone = resnet50(weights=None)
        self.conv1 = backbone.conv1
        self.bn1 = backbone.bn1
        self.relu = backbone.relu
        self.maxpool = backbone.maxpool
        self.res2 = backbone.layer1
        self.layer2 = backbone.layer2
        self.layer3 = backbone.layer3

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(N, 3, H, W)`` normalised RGB -> ``f16 (N, 1024, H/16, W/16)``,
        ``f8 (N, 512, H/8, W/8)``, ``f4 (N, 256, H/4, W/4)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(image))))
        f4 = self.res2(x)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return f16, f8, f4


class KeyProjection(nn.Module):
    """Projects the stride-16 feature to the key space (held as ``key_proj.key_proj``)."""

    def __init__(self, in_channels: int, key_dim: int) -> None:
        super().__init__()
        self.key_proj = nn.Conv2d(in_channels, key_dim, kernel_size=3, padding=1)
        nn.init.orthogonal_(self.key_proj.weight.data)
        nn.init.zeros_(self.key_proj.bias.data)

    def forward(self, f16: Tensor) -> Tensor:
        """``(N, 1024, h, w) -> (N, C^k, h, w)``."""
        return self.key_proj(f16)


class _BiasedBasicBlock(nn.Module):
    """ResNet basic block whose convolutions (shortcut included) carry biases."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(y + shortcut)


def _stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        _BiasedBasicBlock(in_channels, out_channels, stride),
        _BiasedBasicBlock(out_channels, out_channels, 1),
    )


class ValueEncoder(nn.Module):
    """ResNet-18 (biased convs, 5 input channels) to ``layer3``, then the fusion block.

    Input channels, in order: normalised RGB (3), the object's mask (1), the sum of
    the other objects' masks (1). Masks are soft probabilities in [0, 1].
    """

    in_channels = 5

    def __init__(self, value_dim: int = 512, key_f16_channels: int = 1024) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(self.in_channels, 64, kernel_size=7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _stage(64, 64, 1)
        self.layer2 = _stage(64, 128, 2)
        self.layer3 = _stage(128, 256, 2)
        self.fuser = FeatureFusionBlock(256 + key_f16_channels, value_dim)
        self._init_backbone()

    def _init_backbone(self) -> None:
        # He-normal convolutions with zero biases, unit batch norms (overwritten by
        # ImageNet weights when those are loaded).
        for name, module in self.named_modules():
            if name.startswith("fuser"):
                continue
            if isinstance(module, nn.Conv2d):
                fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, image: Tensor, key_f16: Tensor, mask: Tensor, others: Tensor) -> Tensor:
        """``image (N, 3, H, W)``, ``key_f16 (N, 1024, H/16, W/16)``, ``mask`` and
        ``others (N, 1, H, W)`` -> value ``(N, C^v, H/16, W/16)``."""
        x = torch.cat([image, mask, others], dim=1)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fuser(x, key_f16)


def copy_resnet18_weights(encoder: ValueEncoder, source: dict[str, Tensor]) -> list[str]:
    """Copy a torchvision ResNet-18 state_dict into the value encoder's backbone.

    Matching names are copied. ``conv1``'s weight has 3 input channels in the source;
    the two mask channels are initialised orthogonally. The biases the source lacks
    keep their zero initialisation. Returns the names that were copied.
    """
    own = encoder.state_dict()
    copied = []
    for name, tensor in source.items():
        if name not in own or name.endswith("num_batches_tracked"):
            continue
        if name == "conv1.weight" and tensor.shape[1] != own[name].shape[1]:
            extra = own[name].shape[1] - tensor.shape[1]
            pad = torch.empty(tensor.shape[0], extra, *tensor.shape[2:], dtype=tensor.dtype)
            nn.init.orthogonal_(pad)
            tensor = torch.cat([tensor, pad], dim=1)
        if own[name].shape != tensor.shape:
            raise ValueError(
                f"ResNet-18 weight {name}: shape {tuple(tensor.shape)} does not fit {tuple(own[name].shape)}"
            )
        own[name] = tensor
        copied.append(name)
    encoder.load_state_dict(own)
    return copied


def copy_resnet50_weights(encoder: KeyEncoder, source: dict[str, Tensor]) -> None:
    """Copy a torchvision ResNet-50 state_dict into the key encoder (``layer1`` -> ``res2``;
    ``layer4`` and ``fc`` are dropped). Every key-encoder entry must be in ``source``."""
    renamed = {
        ("res2." + name[len("layer1.") :] if name.startswith("layer1.") else name): t for name, t in source.items()
    }
    own = encoder.state_dict()
    encoder.load_state_dict({k: v for k, v in renamed.items() if k in own}, strict=True)


def load_imagenet_weights(key_encoder: KeyEncoder, value_encoder: ValueEncoder) -> None:
    """Initialise both backbones from torchvision's ``IMAGENET1K_V1`` weights (downloads)."""
    copy_resnet50_weights(key_encoder, resnet50(weights=ResNet50_Weights.IMAGENET1K_V1).state_dict())
    copy_resnet18_weights(value_encoder, resnet18(weights=ResNet18_Weights.IMAGENET1K_V1).state_dict())
