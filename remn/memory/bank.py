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

The frames live in preallocated buffers (permanent frames first, then working ones)
that double in size when full, so a write copies one frame, not the whole memory, and a
read needs no concatenation. Values are stored position-major, ``(T, h, w, K, C^v)``:
the top-k read gathers, for each picked memory position, the values of every object in
one contiguous row. The validity flags are kept on the CPU, so deciding how to read never
waits for the device.

The bank stores whatever device and dtype it is first given (the inference core gives it
the compute dtype) and does no gradient bookkeeping; run it under ``torch.inference_mode()``.
"""

from __future__ import annotations

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


class _Store:
    """Every frame of the bank in growable buffers: ``num_permanent`` permanent frames, then
    the working ones, ``length`` in all.

    Args:
        initial: frames the buffers hold before they first grow.
    """

    def __init__(self, initial: int = 8) -> None:
        self.initial = max(1, initial)
        self.keys: Tensor | None = None  # (C^k, capacity, h, w)
        self.values: Tensor | None = None  # (capacity, h, w, K, C^v)
        self.valid = torch.zeros(0, 0, dtype=torch.bool)  # (K, capacity), on the CPU
        self.num_permanent = 0
        self.length = 0
        self.permanent_spans: list[tuple[int, int]] = []
        self.working_spans: list[tuple[int, int]] = []

    @property
    def capacity(self) -> int:
        return 0 if self.keys is None else self.keys.shape[1]

    @property
    def num_objects(self) -> int:
        return self.valid.shape[0]

    # ------------------------------------------------------------------ views
    def key_view(self, start: int, stop: int) -> Tensor:
        """``(C^k, stop - start, h, w)``, a view."""
        assert self.keys is not None
        return self.keys[:, start:stop]

    def value_view(self, start: int, stop: int) -> Tensor:
        """``(K, C^v, stop - start, h, w)``, a (permuted) view."""
        assert self.values is not None
        return self.values[start:stop].permute(3, 4, 0, 1, 2)

    # ---------------------------------------------------------------- changes
    def _allocate(self, key: Tensor, values: Tensor, capacity: int) -> None:
        """New buffers of ``capacity`` frames, holding the frames stored so far."""
        ck, h, w = key.shape
        count, cv = values.shape[:2]
        keys = key.new_zeros(ck, capacity, h, w)
        vals = values.new_zeros(capacity, h, w, count, cv)
        valid = torch.zeros(count, capacity, dtype=torch.bool)
        if self.keys is not None and self.values is not None:
            keys[:, : self.length] = self.keys[:, : self.length]
            vals[: self.length, :, :, : self.num_objects] = self.values[: self.length]
            valid[: self.num_objects, : self.length] = self.valid[:, : self.length]
        self.keys, self.values, self.valid = keys, vals, valid

    def insert(self, key: Tensor, values: Tensor, frame_index: int, permanent: bool) -> None:
        """Store one frame (``key (C^k, h, w)``, ``values (K, C^v, h, w)``, K >= the objects
        tracked so far: new objects are invalid in the frames stored before)."""
        count = values.shape[0]
        if self.keys is not None and self.values is not None:
            if (
                key.shape[0] != self.keys.shape[0]
                or tuple(key.shape[1:]) != tuple(self.keys.shape[2:])
                or values.shape[1] != self.values.shape[-1]
            ):
                raise ValueError(
                    f"frame {frame_index}: key {tuple(key.shape)} and values {tuple(values.shape)} "
                    f"do not match the memory's (C^k, h, w) = ({self.keys.shape[0]}, "
                    f"{self.keys.shape[2]}, {self.keys.shape[3]}) and C^v = {self.values.shape[-1]}"
                )
        if self.keys is None or self.length == self.capacity or count > self.num_objects:
            grow = self.keys is None or self.length == self.capacity
            capacity = max(self.initial, 2 * self.capacity) if grow else self.capacity
            self._allocate(key, values, capacity)
        assert self.keys is not None and self.values is not None
        at = self.num_permanent if permanent else self.length
        if at < self.length:  # make room after the permanent frames: move the working ones up
            self.keys[:, at + 1 : self.length + 1] = self.keys[:, at : self.length].clone()
            self.values[at + 1 : self.length + 1] = self.values[at : self.length].clone()
            self.valid[:, at + 1 : self.length + 1] = self.valid[:, at : self.length].clone()
        self.keys[:, at] = key
        self.values[at] = values.permute(2, 3, 0, 1)
        self.valid[:, at] = True
        self.length += 1
        if permanent:
            self.num_permanent += 1
            self.permanent_spans.append((frame_index, frame_index))
        else:
            self.working_spans.append((frame_index, frame_index))

    def replace_working(self, keys: Tensor, values: Tensor, valid: Tensor, spans: list[tuple[int, int]]) -> None:
        """Put ``keys (C^k, T', h, w)``, ``values (K, C^v, T', h, w)`` in place of the working frames."""
        assert self.keys is not None and self.values is not None
        start = self.num_permanent
        stop = start + keys.shape[1]
        self.keys[:, start:stop] = keys
        self.values[start:stop] = values.permute(2, 3, 4, 0, 1)
        self.valid[:, start:stop] = valid
        self.length = stop
        self.working_spans = list(spans)

    def keep_objects(self, slots: list[int]) -> None:
        """Only the objects in ``slots`` remain, in this order."""
        index = torch.tensor(slots, dtype=torch.long)
        self.valid = self.valid[index]
        if self.values is not None:
            self.values = self.values[:, :, :, index.to(self.values.device)].contiguous()


class _PartView:
    """One part of the bank (permanent or working) as slices of the store."""

    def __init__(self, store: _Store, permanent: bool) -> None:
        self._store = store
        self._permanent = permanent

    @property
    def _range(self) -> tuple[int, int]:
        store = self._store
        return (0, store.num_permanent) if self._permanent else (store.num_permanent, store.length)

    def __len__(self) -> int:
        start, stop = self._range
        return stop - start

    @property
    def spans(self) -> list[tuple[int, int]]:
        return self._store.permanent_spans if self._permanent else self._store.working_spans

    @property
    def keys(self) -> Tensor | None:
        """``(C^k, T, h, w)``; None while the part is empty."""
        return self._store.key_view(*self._range) if len(self) else None

    @property
    def values(self) -> Tensor | None:
        """``(K, C^v, T, h, w)``; None while the part is empty."""
        return self._store.value_view(*self._range) if len(self) else None

    @property
    def valid(self) -> Tensor | None:
        """``(K, T)`` bool (CPU): whether each object has a value in each frame."""
        start, stop = self._range
        return self._store.valid[:, start:stop] if len(self) else None


class MemoryBank:
    """Permanent + working memory with a write policy and optional RRM reduction.

    Args:
        policy: decides which frames are written (:class:`~remn.memory.policy.FixedInterval`
            or :class:`~remn.memory.asm.AdaptiveSampling`).
        reducer: RRM (``model.reduce_memory``); ``None`` keeps every frame (STCN).
        capacity: N, the most working frames kept when ``reducer`` is given.
        top_k: top-k of the memory read; ``None`` or 0 for the full softmax.
        gather: read the top-k by gathering the picked values (``inference.topk_gather``).
        chunk_size: memory positions whose affinities exist at once (``inference.chunk_size``).
    """

    def __init__(
        self,
        policy: WritePolicy,
        reducer: Reducer | None = None,
        capacity: int = 16,
        top_k: int | None = 20,
        gather: bool = True,
        chunk_size: int = 0,
    ) -> None:
        if reducer is not None and capacity < 2:
            raise ValueError(f"capacity must be at least 2 to reduce, got {capacity}")
        if chunk_size < 0:
            raise ValueError(f"chunk_size must be 0 (no chunking) or positive, got {chunk_size}")
        self.policy = policy
        self.reducer = reducer
        self.capacity = capacity
        self.top_k = top_k or None
        self.gather = gather
        self.chunk_size = chunk_size
        self.reductions: list[int] = []  # chosen policy of each RRM call
        # bounded with RRM: the annotated frame and N working frames fit without growing
        self._store = _Store(initial=capacity + 1 if reducer is not None else 8)
        self._permanent = _PartView(self._store, permanent=True)
        self._working = _PartView(self._store, permanent=False)

    # ----------------------------------------------------------------- sizes
    @property
    def num_objects(self) -> int:
        """Objects the bank holds values for."""
        return self._store.num_objects

    @property
    def num_permanent(self) -> int:
        """Annotated frames held."""
        return self._store.num_permanent

    @property
    def num_working(self) -> int:
        """Working frames held (at most ``capacity`` with RRM on)."""
        return self._store.length - self._store.num_permanent

    def __len__(self) -> int:
        return self._store.length

    @property
    def working_spans(self) -> list[tuple[int, int]]:
        """For each working entry, the first and last frame it stands for."""
        return list(self._store.working_spans)

    @property
    def permanent_keys(self) -> Tensor | None:
        """``(C^k, P, h, w)`` keys of the annotated frames."""
        return self._permanent.keys

    @property
    def buffer_frames(self) -> int:
        """Frames the preallocated buffers can hold before they grow."""
        return self._store.capacity

    @property
    def buffer_bytes(self) -> int:
        """Bytes the key and value buffers take (what the memory costs, allocated frames included)."""
        store = self._store
        return sum(t.numel() * t.element_size() for t in (store.keys, store.values) if t is not None)

    # ---------------------------------------------------------------- writing
    def should_write(self, frame_index: int, prob: Tensor) -> bool:
        """Ask the write policy about frame ``frame_index`` (``prob (K+1, H, W)``)."""
        return self.policy.should_write(frame_index, prob)

    def write(
        self, frame_index: int, key: Tensor, values: Tensor, prob: Tensor | None = None, permanent: bool = False
    ) -> None:
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
            raise ValueError(
                f"frame {frame_index}: got values for {count} objects, the bank tracks "
                f"{self.num_objects}; remove objects with remove_objects() first"
            )
        if count > self.num_objects and not permanent:
            raise ValueError(
                f"frame {frame_index}: {count - self.num_objects} new object(s) must arrive with "
                "their annotated frame (permanent=True), or RRM could merge their only frame away"
            )
        if key.dim() != 3 or values.dim() != 4 or key.shape[-2:] != values.shape[-2:]:
            raise ValueError(
                f"frame {frame_index}: key {tuple(key.shape)} and values {tuple(values.shape)} "
                "must be (C^k, h, w) and (K, C^v, h, w)"
            )
        self._store.insert(key, values, frame_index, permanent)
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
        self._store.keep_objects(keep)
        self.policy.keep_objects(keep)

    def _reduce(self) -> None:
        part = self._working
        keys, values, valid = part.keys, part.values, part.valid
        assert keys is not None and values is not None and valid is not None
        length = len(part)
        reduction = self.reducer(keys[None], values[None])
        groups = reduction_groups(length, reduction.stride)
        merged_valid = torch.stack([valid[:, g.start : g.stop].all(dim=1) for g in groups], dim=1)
        spans = [(part.spans[g.start][0], part.spans[g.stop - 1][1]) for g in groups]
        self._store.replace_working(reduction.keys[0], reduction.values[0], merged_valid, spans)
        self.reductions.append(reduction.policy)

    # ---------------------------------------------------------------- reading
    def read(self, query_key: Tensor) -> Tensor:
        """Readout for every object: ``query_key (C^k, h, w)`` -> ``(K, C^v, h, w)``.

        Objects that share the same valid frames (all of them, unless some joined
        mid-video) are read together with one affinity.
        """
        length = len(self)
        if length == 0:
            raise RuntimeError("the memory is empty: write the annotated frame first")
        store = self._store
        keys = store.key_view(0, length)
        values = store.value_view(0, length)
        valid = store.valid[:, :length]  # on the CPU: no device synchronisation
        options = {"gather": self.gather, "chunk_size": self.chunk_size}
        if bool(valid.all()):
            return read_memory(keys[None], values[None], query_key[None], self.top_k, **options)[0]
        out = values.new_zeros(values.shape[0], values.shape[1], *query_key.shape[-2:])
        patterns, group_of = torch.unique(valid, dim=0, return_inverse=True)
        for g, pattern in enumerate(patterns):
            objects = (group_of == g).nonzero().flatten().to(values.device)
            frames = pattern.nonzero().flatten().to(values.device)
            if frames.numel() == 0:
                continue
            out[objects] = read_memory(
                keys[:, frames][None], values[objects][:, :, frames][None], query_key[None], self.top_k, **options
            )[0]
        return out


def build_memory_bank(cfg: "MemoryConfig", model: "REMN", gather: bool = True, chunk_size: int = 0) -> MemoryBank:
    """The bank described by ``cfg`` (ASM or fixed interval; RRM through ``model`` or unbounded);
    ``gather`` and ``chunk_size`` choose how it is read (``inference.topk_gather``, ``inference.chunk_size``)."""
    if cfg.rrm and model.rrm is None:
        raise ValueError("memory.rrm is on but the model was built without RRM; build it from the same config")
    reducer = model.reduce_memory if cfg.rrm else None
    return MemoryBank(build_write_policy(cfg), reducer, cfg.capacity, cfg.top_k, gather, chunk_size)
