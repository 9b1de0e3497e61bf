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

from remn.config import load_config
from remn.inference.build import build_core
from remn.inference.core import InferenceCore

__all__ = ["Predictor"]

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "remn.yaml"


class Predictor:
    """An :class:`InferenceCore` for one video at a time (built by :meth:`load`)."""

    def __init__(self, core: InferenceCore, load_message: str = "") -> None:
        self.core = core
        self.cfg = core.cfg
        self.device = core.device
        self.model = core.model
        self.load_message = load_message

    @classmethod
    def load(
        cls,
        checkpoint: str | Path | None = None,
        config: str | Path | None = None,
        overrides: Sequence[str] = (),
        device: str = "auto",
    ) -> "Predictor":
        """Build the network from ``config`` (default: every module on), load ``checkpoint``
        (REMN or STCN weights; ``None`` keeps random weights) and put it on ``device``."""
        path = config if config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None)
        cfg = load_config(path, [f"runtime.device={device}", *overrides])
        return cls(*build_core(cfg, checkpoint))

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
