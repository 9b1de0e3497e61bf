"""The object manager: user object ids <-> the core's internal slots.

Users name objects by any positive integers (the values of their masks: 1, 2, 7, 200, ...);
the network works on contiguous channels. :class:`ObjectManager` keeps the mapping for one
video, in the order objects were first given, and closes gaps when objects are removed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["ObjectManager", "UnknownObjectError"]


class UnknownObjectError(KeyError):
    """An object id the core does not track."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown object"


class ObjectManager:
    """Maps user object ids (any non-negative integers) to internal slots 0..K-1 and back.

    Slot ``i`` is channel ``i + 1`` of the probabilities (channel 0 is background). Removing
    an object closes the gap so that slots stay contiguous.
    """

    def __init__(self) -> None:
        self._ids: list[int] = []

    @property
    def ids(self) -> list[int]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, obj: int) -> bool:
        return obj in self._ids

    def slot(self, obj: int) -> int:
        try:
            return self._ids.index(obj)
        except ValueError:
            raise UnknownObjectError(f"unknown object id {obj}; tracked ids: {self._ids}") from None

    def add(self, ids: Sequence[int]) -> list[int]:
        """Track the ids not yet tracked; returns those that are new."""
        new = []
        for obj in ids:
            obj = int(obj)
            if obj <= 0:
                raise ValueError(f"object ids must be positive (0 is background), got {obj}")
            if obj not in self._ids and obj not in new:
                new.append(obj)
        self._ids.extend(new)
        return new

    def remove(self, ids: Sequence[int]) -> list[int]:
        """Stop tracking ``ids``; returns their former slots."""
        slots = [self.slot(int(obj)) for obj in ids]
        self._ids = [obj for i, obj in enumerate(self._ids) if i not in set(slots)]
        return slots

    def channel_to_id(self) -> np.ndarray:
        """Lookup table: probability channel -> user id (channel 0 -> 0)."""
        return np.array([0, *self._ids], dtype=np.int64)
