"""The memory read: L2 affinity between memory and query keys, then a weighted sum of values.

For memory key ``k_i`` and query key ``q_j`` (both C^k channels)::

    W(i, j) = softmax_i( -||k_i - q_j||^2 / sqrt(C^k) )
    readout_j = sum_i W(i, j) v_i

``-||k_i - q_j||^2 = 2 k_i.q_j - ||k_i||^2 - ||q_j||^2``; the last term is the same
for every ``i`` and cancels in the softmax over ``i``, so it is never computed.
Training uses the full softmax; inference keeps only the ``top_k`` largest
affinities of each query position (all memory frames compete jointly).

The affinity is computed in float32 even under autocast: it is a difference of
large numbers, and bf16 would round it away.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["affinity_logits", "memory_affinity", "topk_softmax", "readout", "read_memory"]


def affinity_logits(memory_key: Tensor, query_key: Tensor) -> Tensor:
    """Similarity before the softmax.

    Args:
        memory_key: ``(B, C^k, M)`` with ``M = T*h*w`` memory positions.
        query_key: ``(B, C^k, Q)`` with ``Q = h*w`` query positions.

    Returns:
        ``(B, M, Q)``: ``(2 k.q - ||k||^2) / sqrt(C^k)``, float32.
    """
    with torch.autocast(device_type=memory_key.device.type, enabled=False):
        mk = memory_key.float()
        qk = query_key.float()
        key_dim = mk.shape[1]
        dot = torch.bmm(mk.transpose(1, 2), qk)  # (B, M, Q)
        mk_sq = mk.pow(2).sum(dim=1).unsqueeze(2)  # (B, M, 1)
        return (2 * dot - mk_sq) / math.sqrt(key_dim)


def memory_affinity(memory_key: Tensor, query_key: Tensor, top_k: int | None = None) -> Tensor:
    """Softmax-normalised affinity ``W`` of shape ``(B, M, Q)``; each column sums to 1.

    ``top_k=None`` (or ``top_k >= M``) gives the full softmax; otherwise only the
    ``top_k`` largest logits of each column are kept and renormalised, the rest are 0.
    """
    logits = affinity_logits(memory_key, query_key)
    if top_k is None or top_k >= logits.shape[1]:
        return torch.softmax(logits, dim=1)
    return topk_softmax(logits, top_k)


def topk_softmax(logits: Tensor, k: int) -> Tensor:
    """Softmax over dim 1 of the ``k`` largest entries of each column; the others become 0.

    ``logits (B, M, Q)`` -> ``(B, M, Q)``; ``k`` must not exceed ``M``.
    """
    values, indices = torch.topk(logits, k=k, dim=1)
    weights = torch.softmax(values, dim=1)
    return torch.zeros_like(logits).scatter_(1, indices, weights)


def readout(affinity: Tensor, memory_value: Tensor) -> Tensor:
    """Weighted sum of memory values.

    Args:
        affinity: ``(B, M, Q)``, shared by all objects.
        memory_value: ``(B, K, C^v, M)``.

    Returns:
        ``(B, K, C^v, Q)``.
    """
    b, k, c, m = memory_value.shape
    flat = memory_value.reshape(b, k * c, m)
    out = torch.bmm(flat, affinity.to(flat.dtype))
    return out.view(b, k, c, -1)


def read_memory(
    memory_key: Tensor, memory_value: Tensor, query_key: Tensor, top_k: int | None = None
) -> Tensor:
    """Read the memory for one query frame.

    Args:
        memory_key: ``(B, C^k, T, h, w)``.
        memory_value: ``(B, K, C^v, T, h, w)``.
        query_key: ``(B, C^k, h, w)``.
        top_k: ``None`` for the full softmax (training).

    Returns:
        readout ``(B, K, C^v, h, w)``.
    """
    b, ck, t, h, w = memory_key.shape
    _, k, cv = memory_value.shape[:3]
    affinity = memory_affinity(memory_key.reshape(b, ck, t * h * w), query_key.reshape(b, ck, h * w), top_k)
    out = readout(affinity, memory_value.reshape(b, k, cv, t * h * w))
    return out.view(b, k, cv, h, w)
