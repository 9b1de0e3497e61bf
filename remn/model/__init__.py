"""The REMN network (STCN + FRM + RRM) and how to build and load it.

from remn.config import load_config
from remn.model import build_model, load_network_weights

cfg = load_config("configs/remn.yaml")
model = build_model(cfg)
report = load_network_weights(model, "saves/stcn.pth")  # REMN or STCN weights
print(report.description)
"""

from __future__ import annotations

from ..config import REMNConfig
from .aggregate import soft_aggregate
from .checkpoint import (
    CheckpointError,
    LoadReport,
    load_network_weights,
    load_stcn_checkpoint,
    load_weights,
    read_state_dict,
    save_weights,
)
from .frm import ForegroundReinforcingModule, foreground_prior
from .memory_read import memory_affinity, read_memory
from .network import REMN, KeyFeatures, Segmentation
from .preprocess import normalize_image, pad_divide_by, unpad
from .rrm import Reduction, RedundancyReduction, reduced_length, rrm_loss

__all__ = [
    "REMN",
    "KeyFeatures",
    "Segmentation",
    "build_model",
    "load_network_weights",
    "load_stcn_checkpoint",
    "load_weights",
    "save_weights",
    "read_state_dict",
    "CheckpointError",
    "LoadReport",
    "ForegroundReinforcingModule",
    "foreground_prior",
    "RedundancyReduction",
    "Reduction",
    "reduced_length",
    "rrm_loss",
    "memory_affinity",
    "read_memory",
    "soft_aggregate",
    "normalize_image",
    "pad_divide_by",
    "unpad",
]


def build_model(cfg: REMNConfig) -> REMN:
    """The network described by ``cfg.model`` and ``cfg.memory`` (random weights, or
    ImageNet backbones when ``cfg.model.pretrained_backbones`` is set)."""
    model = REMN(
        key_dim=cfg.model.key_dim,
        value_dim=cfg.model.value_dim,
        frm=cfg.model.frm,
        frm_window=cfg.model.frm_window,
        rrm=cfg.memory.rrm,
        rrm_policies=cfg.memory.rrm_policies,
        rrm_hidden=cfg.memory.rrm_hidden,
    )
    if cfg.model.pretrained_backbones:
        model.load_imagenet_backbones()
    return model
