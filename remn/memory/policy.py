"""Write policies: which frames enter the memory.

* :class:`FixedInterval`: STCN's rule, every ``mem_every`` frames, counted on the
  absolute frame index (STCN on DAVIS: frames 5, 10, 15, ...) or from the last write
  (STCN on YouTube-VOS, where objects join mid-video).
* :class:`~remn.memory.asm.AdaptiveSampling`: ASM, when the objects changed enough.

Both answer ``should_write(frame_index, prob)`` and are told ``record_write(...)``
when a frame was written (annotated frames included).
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor

from ..config import MemoryConfig
from .asm import AdaptiveSampling

__all__ = ["WritePolicy", "FixedInterval", "build_write_policy"]


class WritePolicy(Protocol):
    """What the memory bank asks of a policy."""

    def should_write(self, frame_index: int, prob: Tensor) -> bool:
        """Whether frame ``frame_index``, predicted as ``prob (K+1, H, W)``, enters memory."""
        ...

    def record_write(self, frame_index: int, prob: Tensor) -> None:
        """Frame ``frame_index`` was written with mask ``prob``."""
        ...

    def keep_objects(self, slots: list[int]) -> None:
        """Only the objects in ``slots`` (in this order) remain tracked."""
        ...


class FixedInterval:
    """Every ``mem_every`` frames: ``absolute`` (``t % mem_every == 0``) or ``relative``
    (``t - last_write >= mem_every``)."""

    def __init__(self, mem_every: int = 5, mode: str = "absolute") -> None:
        if mem_every < 1:
            raise ValueError(f"mem_every must be at least 1, got {mem_every}")
        if mode not in ("absolute", "relative"):
            raise ValueError(f"mode must be 'absolute' or 'relative', got {mode!r}")
        self.mem_every = mem_every
        self.mode = mode
        self.last_write: int | None = None

    def should_write(self, frame_index: int, prob: Tensor) -> bool:
        if self.mode == "absolute":
            return frame_index % self.mem_every == 0 and frame_index != self.last_write
        return self.last_write is None or frame_index - self.last_write >= self.mem_every

    def record_write(self, frame_index: int, prob: Tensor) -> None:
        self.last_write = frame_index

    def keep_objects(self, slots: list[int]) -> None:
        pass  # the schedule does not depend on the objects


def build_write_policy(cfg: MemoryConfig) -> WritePolicy:
    """ASM when ``cfg.asm``, else the fixed interval."""
    if cfg.asm:
        return AdaptiveSampling(
            lambda_pos=cfg.asm_lambda_pos,
            lambda_shape=cfg.asm_lambda_shape,
            tau=cfg.asm_tau,
            min_interval=cfg.asm_min_interval,
            max_interval=cfg.asm_max_interval,
            stride=cfg.asm_stride,
        )
    return FixedInterval(cfg.mem_every, cfg.interval_mode)
