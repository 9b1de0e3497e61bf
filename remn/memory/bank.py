"""The memory bank used at inference.

The bank holds memory frames in two parts:

* **permanent**: annotated frames (the first frame, and the frame where each later
  object was given). Never reduced, never dropped.
* **working**: frames the write policy chose. With RRM on, as soon as the working part
  holds ``capacity`` (N) frames it is reduced in time by the network's RRM, so it
  never exceeds N; with RRM off it grows by one frame per write (STCN).

Keys are stored once per frame and shared by all objects; values are stored per
object. An object that joins mid-video has no value in the frames written before it
appeared: each (object, frame) pair carries a validity flag and an object reads only
the frames valid for it, its own reference frame included. After a reduction, a
merged frame is valid for an object only when every frame it merged was.

The bank stores whatever device and dtype it is given and does no gradient
bookkeeping; run it under ``torch.inference_mode()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch
from torch import Tensor

from ..model.memory_read import read_memory
from ..model.rrm import Reduction, reduction_groups
from .policy import WritePolicy, build_write_policy

if TYPE_CHECKING:
    from ..config import MemoryConfig
    from ..model.network import REMN

__all__ = ["MemoryBank", "Reducer", "build_memory_bank"]

Reducer = Callable[[Tensor, Tensor], Reduction]
"""``(keys (1, C^k, T, h, w), values (1, K, C^v, T, h, w)) -> Reduction``, e.g. ``model.reduce_memory``."""


@dataclass
class _Part:
    """Frames of one part of the bank, along a time axis of length T."""

    keys: Tensor | None = None  # (C^k, T, h, w)
    values: Tensor | None = None  # (K, C^v, T, h, w)
    valid: Tensor | None = None  # (K, T) bool
    spans: list[tuple[int, int]] = field(default_factory=list)  # first and last source frame per entry

    def __len__(self) -> int:
        return len(self.spans)

    def append(self, key: Tensor, values: Tensor, valid: Tensor, frame_index: int) -> None:
        if self.keys is None:
            self.keys, self.values, self.valid = key[:, None], values[:, :, None], valid[:, None]
        else:
            self.keys = torch.cat([self.keys, key[:, None]], dim=1)
            self.values = torch.cat([self.values, values[:, :, None]], dim=2)
            self.valid = torch.cat([self.valid, valid[:, None]], dim=1)
        self.spans.append((frame_index, frame_index))

    def add_objects(self, count: int) -> None:
        """New objects have no value (and are not valid) in the frames already stored."""
        if self.values is None:
            return
        k, cv, t, h, w = self.values.shape
        self.values = torch.cat([self.values, self.values.new_zeros(count, cv, t, h, w)], dim=0)
        self.valid = torch.cat([self.valid, self.valid.new_zeros(count, t)], dim=0)

    def keep_objects(self, slots: list[int]) -> None:
        if self.values is not None:
            index = torch.tensor(slots, dtype=torch.long, device=self.values.device)
            self.values = self.values[index]
            self.valid = self.valid[index]


class MemoryBank:
    """Permanent + working memory with a write policy and optional RRM reduction.

    Args:
        policy: decides which frames are written (:class:`~remn.memory.policy.FixedInterval`
            or :class:`~remn.memory.asm.AdaptiveSampling`).
        reducer: RRM (``model.reduce_memory``); ``None`` keeps every frame (STCN).
        capacity: N, the most working frames kept when ``reducer`` is given.
        top_k: top-k of the memory read; ``None`` or 0 for the full softmax.
    """

    def __init__(self, policy: WritePolicy, reducer: Reducer | None = None, capacity: int = 16,
                 top_k: int | None = 20) -> None:
        if reducer is not None and capacity < 2:
            raise ValueError(f"capacity must be at least 2 to reduce, got {capacity}")
        self.policy = policy
        self.reducer = reducer
        self.capacity = capacity
        self.top_k = top_k or None
        self.num_objects = 0
        self.reductions: list[int] = []  # chosen policy of each RRM call
        self._permanent = _Part()
        self._working = _Part()
        # both parts concatenated (keys, values, valid, all valid?), rebuilt after each change
        self._joined: tuple[Tensor, Tensor, Tensor, bool] | None = None

    # ----------------------------------------------------------------- sizes
    @property
    def num_permanent(self) -> int:
        """Annotated frames held."""
        return len(self._permanent)

    @property
    def num_working(self) -> int:
        """Working frames held (at most ``capacity`` with RRM on)."""
        return len(self._working)

    def __len__(self) -> int:
        return self.num_permanent + self.num_working

    @property
    def working_spans(self) -> list[tuple[int, int]]:
        """For each working entry, the first and last frame it stands for."""
        return list(self._working.spans)

    @property
    def permanent_keys(self) -> Tensor | None:
        """``(C^k, P, h, w)`` keys of the annotated frames."""
        return self._permanent.keys

    # ---------------------------------------------------------------- writing
    def should_write(self, frame_index: int, prob: Tensor) -> bool:
        """Ask the write policy about frame ``frame_index`` (``prob (K+1, H, W)``)."""
        return self.policy.should_write(frame_index, prob)

    def write(self, frame_index: int, key: Tensor, values: Tensor, prob: Tensor | None = None,
              permanent: bool = False) -> None:
        """Store one frame.

        Args:
            frame_index: the frame's index in the video.
            key: ``(C^k, h, w)`` (the FRM-enhanced key when FRM is on).
            values: ``(K, C^v, h, w)`` for every object currently tracked; objects
                beyond ``num_objects`` are new and start here, which only an
                annotated (``permanent``) frame may do.
            prob: ``(K+1, H, W)`` the mask written, for the write policy.
            permanent: an annotated frame (kept for good, never reduced).
        """
        count = values.shape[0]
        if count < self.num_objects:
            raise ValueError(f"frame {frame_index}: got values for {count} objects, the bank tracks "
                             f"{self.num_objects}; remove objects with remove_objects() first")
        if count > self.num_objects and not permanent:
            raise ValueError(f"frame {frame_index}: {count - self.num_objects} new object(s) must arrive with "
                             "their annotated frame (permanent=True), or RRM could merge their only frame away")
        if key.dim() != 3 or values.dim() != 4 or key.shape[-2:] != values.shape[-2:]:
            raise ValueError(f"frame {frame_index}: key {tuple(key.shape)} and values {tuple(values.shape)} "
                             "must be (C^k, h, w) and (K, C^v, h, w)")
        if count > self.num_objects:
            self._permanent.add_objects(count - self.num_objects)
            self._working.add_objects(count - self.num_objects)
            self.num_objects = count
        valid = torch.ones(count, dtype=torch.bool, device=values.device)
        (self._permanent if permanent else self._working).append(key, values, valid, frame_index)
        self._joined = None
        if prob is not None:
            self.policy.record_write(frame_index, prob)
        if not permanent and self.reducer is not None and self.num_working >= self.capacity:
            self._reduce()

    def remove_objects(self, slots: list[int]) -> None:
        """Forget the objects in ``slots`` (their values and flags); the others keep their order."""
        drop = set(slots)
        unknown = sorted(drop - set(range(self.num_objects)))
        if unknown:
            raise ValueError(f"unknown object slots {unknown}; the bank tracks {self.num_objects}")
        keep = [i for i in range(self.num_objects) if i not in drop]
        self._permanent.keep_objects(keep)
        self._working.keep_objects(keep)
        self.policy.keep_objects(keep)
        self.num_objects = len(keep)
        self._joined = None

    def _reduce(self) -> None:
        part = self._working
        assert part.keys is not None and part.values is not None and part.valid is not None
        length = len(part)
        reduction = self.reducer(part.keys[None], part.values[None])
        groups = reduction_groups(length, reduction.stride)
        part.keys = reduction.keys[0]
        part.values = reduction.values[0]
        part.valid = torch.stack([part.valid[:, g.start:g.stop].all(dim=1) for g in groups], dim=1)
        part.spans = [(part.spans[g.start][0], part.spans[g.stop - 1][1]) for g in groups]
        self.reductions.append(reduction.policy)
        self._joined = None

    # ---------------------------------------------------------------- reading
    def read(self, query_key: Tensor) -> Tensor:
        """Readout for every object: ``query_key (C^k, h, w)`` -> ``(K, C^v, h, w)``.

        Objects that share the same valid frames (all of them, unless some joined
        mid-video) are read together with one affinity.
        """
        if len(self) == 0:
            raise RuntimeError("the memory is empty: write the annotated frame first")
        if self._joined is None:
            parts = [p for p in (self._permanent, self._working) if len(p)]
            valid = torch.cat([p.valid for p in parts], dim=1)
            self._joined = (torch.cat([p.keys for p in parts], dim=1),
                            torch.cat([p.values for p in parts], dim=2),
                            valid, bool(valid.all()))
        keys, values, valid, all_valid = self._joined
        if all_valid:
            return read_memory(keys[None], values[None], query_key[None], self.top_k)[0]
        out = values.new_zeros(values.shape[0], values.shape[1], *query_key.shape[-2:])
        patterns, group_of = torch.unique(valid, dim=0, return_inverse=True)
        for g, pattern in enumerate(patterns):
            objects = (group_of == g).nonzero().flatten()
            frames = pattern.nonzero().flatten()
            if frames.numel() == 0:
                continue
            out[objects] = read_memory(keys[:, frames][None], values[objects][:, :, frames][None],
                                       query_key[None], self.top_k)[0]
        return out


def build_memory_bank(cfg: "MemoryConfig", model: "REMN") -> MemoryBank:
    """The bank described by ``cfg`` (ASM or fixed interval; RRM through ``model`` or unbounded)."""
    if cfg.rrm and model.rrm is None:
        raise ValueError("memory.rrm is on but the model was built without RRM; build it from the same config")
    reducer = model.reduce_memory if cfg.rrm else None
    return MemoryBank(build_write_policy(cfg), reducer, cfg.capacity, cfg.top_k)
