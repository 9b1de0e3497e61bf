"""The inference memory: a bank with permanent and working frames, and its write policies."""

from .asm import AdaptiveSampling, binary_object_masks, object_variation
from .bank import MemoryBank, Reducer, build_memory_bank
from .policy import FixedInterval, WritePolicy, build_write_policy

__all__ = [
    "MemoryBank",
    "build_memory_bank",
    "Reducer",
    "WritePolicy",
    "FixedInterval",
    "AdaptiveSampling",
    "build_write_policy",
    "binary_object_masks",
    "object_variation",
]
