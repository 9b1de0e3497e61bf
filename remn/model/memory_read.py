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

Two ways to apply the top-k at inference, equal up to float rounding:

* **dense** (:func:`topk_softmax` + :func:`readout`): the k weights are scattered into an
  ``M x Q`` matrix and multiplied with every value, as STCN does; time and memory grow
  with ``M * Q * C^v``;
* **gathered** (:func:`topk_affinity` + :func:`topk_readout`, the default): only the k
  weights and their memory indices are kept, and each query position sums the k values
  it picked. The readout no longer depends on ``M``; with ``chunk_size`` the affinity is
  computed ``chunk_size`` memory positions at a time while a running top-k is kept, so
  no ``M x Q`` matrix exists at all.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "affinity_logits",
    "memory_affinity",
    "topk_softmax",
    "readout",
    "topk_affinity",
    "topk_readout",
    "read_memory",
]


def affinity_logits(memory_key: Tensor, query_key: Tensor, query_major: bool = False) -> Tensor:
    """Similarity before the softmax.

    Args:
        memory_key: ``(B, C^k, M)`` with ``M = T*h*w`` memory positions.
        query_key: ``(B, C^k, Q)`` with ``Q = h*w`` query positions.
        query_major: return the transpose, ``(B, Q, M)``, computed as such: each query
            position's logits are contiguous, where top-k along them is fastest.

    Returns:
        ``(B, M, Q)``: ``(2 k.q - ||k||^2) / sqrt(C^k)``, float32.
    """
    with torch.autocast(device_type=memory_key.device.type, enabled=False):
        mk = memory_key.float()
        qk = query_key.float()
        scale = 1 / math.sqrt(mk.shape[1])
        mk_sq = mk.pow(2).sum(dim=1, keepdim=True)  # (B, 1, M)
        # one pass: scale * (2 k.q - ||k||^2), the product and the norm term fused
        if query_major:
            return torch.baddbmm(mk_sq, qk.transpose(1, 2), mk, beta=-scale, alpha=2 * scale)
        return torch.baddbmm(mk_sq.transpose(1, 2), mk.transpose(1, 2), qk, beta=-scale, alpha=2 * scale)


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
    if m > 1 and memory_value.stride(3) == k * c and memory_value.stride(2) == 1 and memory_value.stride(1) == c:
        # position-major (the bank's layout): multiply from the other side, no transposed copy of the values
        rows = memory_value.permute(0, 3, 1, 2).reshape(b, m, k * c)
        out = torch.bmm(affinity.transpose(1, 2).to(rows.dtype), rows)  # (B, Q, K * C^v)
        return out.view(b, -1, k, c).permute(0, 2, 3, 1)
    flat = memory_value.reshape(b, k * c, m)
    out = torch.bmm(flat, affinity.to(flat.dtype))
    return out.view(b, k, c, -1)


def topk_affinity(memory_key: Tensor, query_key: Tensor, k: int, chunk_size: int = 0) -> tuple[Tensor, Tensor]:
    """The top-k of each query position without the dense ``M x Q`` matrix.

    Args:
        memory_key: ``(B, C^k, M)``.
        query_key: ``(B, C^k, Q)``.
        k: entries kept per query position (at most ``M`` are).
        chunk_size: memory positions whose logits exist at once; ``0`` computes all ``M``
            in one go. Each chunk's own top-k is merged with the running one, so the
            result does not depend on the chunking (up to ties).

    Returns:
        ``(weights, indices)``, both ``(B, Q, min(k, M))``: softmax over the kept logits
        (float32) and the memory positions they came from (int64).
    """
    m = memory_key.shape[2]
    step = m if chunk_size <= 0 else chunk_size
    best_logits: Tensor | None = None
    best_index: Tensor | None = None
    for start in range(0, m, step):
        logits = affinity_logits(memory_key[:, :, start : start + step], query_key, query_major=True)  # (B, Q, m')
        values, index = torch.topk(logits, k=min(k, logits.shape[2]), dim=2)
        if start:
            index = index + start
        if best_logits is None or best_index is None:
            best_logits, best_index = values, index
            continue
        values = torch.cat([best_logits, values], dim=2)
        index = torch.cat([best_index, index], dim=2)
        if values.shape[2] > k:
            values, pick = torch.topk(values, k=k, dim=2)
            index = torch.gather(index, 2, pick)
        best_logits, best_index = values, index
    if best_logits is None or best_index is None:
        raise ValueError("the memory is empty: no position to read")
    return torch.softmax(best_logits, dim=2), best_index


def topk_readout(weights: Tensor, indices: Tensor, memory_value: Tensor) -> Tensor:
    """Sum of the picked values: ``readout_j = sum_n weights[j, n] * v[indices[j, n]]``.

    Args:
        weights: ``(B, Q, k)`` from :func:`topk_affinity`.
        indices: ``(B, Q, k)`` memory positions.
        memory_value: ``(B, K, C^v, M)``. Stored position-major (``K`` and ``C^v`` the
            fastest-moving dims, as :class:`~remn.memory.MemoryBank` keeps them) it is
            read in place; otherwise one transposed copy is made.

    Returns:
        ``(B, K, C^v, Q)`` in the values' dtype (accumulated in it as well).
    """
    b, k, c, m = memory_value.shape
    rows = memory_value.permute(0, 3, 1, 2).reshape(b, m, k * c)  # a view when position-major
    with torch.autocast(device_type=memory_value.device.type, enabled=False):
        out = torch.stack(
            [
                F.embedding_bag(indices[n], rows[n], per_sample_weights=weights[n].to(rows.dtype), mode="sum")
                for n in range(b)
            ]
        )  # (B, Q, K * C^v)
    return out.view(b, -1, k, c).permute(0, 2, 3, 1)


def read_memory(
    memory_key: Tensor,
    memory_value: Tensor,
    query_key: Tensor,
    top_k: int | None = None,
    *,
    gather: bool = True,
    chunk_size: int = 0,
) -> Tensor:
    """Read the memory for one query frame.

    Args:
        memory_key: ``(B, C^k, T, h, w)``.
        memory_value: ``(B, K, C^v, T, h, w)``.
        query_key: ``(B, C^k, h, w)``.
        top_k: ``None`` for the full softmax (training).
        gather: with top-k, gather the k picked values (:func:`topk_readout`) instead of
            multiplying a dense, mostly-zero affinity with every value.
        chunk_size: with ``gather``, memory positions whose logits exist at once (0: all).

    Returns:
        readout ``(B, K, C^v, h, w)``.
    """
    b, ck, t, h, w = memory_key.shape
    _, k, cv = memory_value.shape[:3]
    mk = memory_key.reshape(b, ck, t * h * w)
    qk = query_key.reshape(b, ck, h * w)
    mv = memory_value.reshape(b, k, cv, t * h * w)
    if gather and top_k is not None and top_k < mk.shape[2]:
        weights, indices = topk_affinity(mk, qk, top_k, chunk_size)
        return topk_readout(weights, indices, mv).reshape(b, k, cv, h, w)
    out = readout(memory_affinity(mk, qk, top_k), mv)
    return out.view(b, k, cv, h, w)
