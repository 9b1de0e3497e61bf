"""A small Python API for segmenting your own frames.

    from remn.predictor import Predictor

    predictor = Predictor.load("remn.pth", device="cpu")          # or Predictor.load(None): random weights
    labels = predictor.step(first_frame, mask=first_mask)          # (H, W) uint8 RGB + (H, W) ids
    for frame in later_frames:
        labels = predictor.step(frame)                            # (H, W) ids, same values as the mask

Frames are ``(H, W, 3)`` uint8 RGB arrays; masks are ``(H, W)`` integer id maps (0 =
background). A mask given at a later frame adds its objects (or corrects them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from remn.config import REMNConfig, load_config
from remn.inference.core import InferenceCore
from remn.model import build_model
from remn.model.checkpoint import load_network_weights
from remn.runtime import resolve_device

__all__ = ["Predictor"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "remn.yaml"


class Predictor:
    """A model and an :class:`InferenceCore` for one video at a time."""

    def __init__(self, model, cfg: REMNConfig, device: torch.device) -> None:
        self.cfg = cfg
        self.device = device
        self.model = model.to(device).eval()
        self.core = InferenceCore(self.model, cfg, device)
        self.load_message = ""

    @classmethod
    def load(cls, checkpoint: str | Path | None = None, config: str | Path | None = None,
             overrides: Sequence[str] = (), device: str = "auto") -> "Predictor":
        """Build the network from ``config`` (default: every module on), load ``checkpoint``
        (REMN or STCN weights; ``None`` keeps random weights) and put it on ``device``."""
        path = config if config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
        cfg = load_config(path, [f"runtime.device={device}", *overrides])
        model = build_model(cfg)
        message = "random weights (no checkpoint)"
        if checkpoint:
            message = load_network_weights(model, checkpoint).description
        predictor = cls(model, cfg, resolve_device(cfg.runtime.device))
        predictor.load_message = message
        return predictor

    @property
    def object_ids(self) -> list[int]:
        return self.core.objects.ids

    def reset(self) -> None:
        """Start a new video."""
        self.core.reset()

    def step(self, frame: np.ndarray, mask: np.ndarray | None = None, last: bool = False) -> np.ndarray:
        """Segment the next frame; returns an ``(H, W)`` int64 map of object ids."""
        return self.core.labels(self.core.step(frame, mask, last=last))

    def probabilities(self, frame: np.ndarray, mask: np.ndarray | None = None, last: bool = False) -> torch.Tensor:
        """Like :meth:`step`, but the ``(K+1, H, W)`` probabilities (channel i+1 is ``object_ids[i]``)."""
        return self.core.step(frame, mask, last=last)
