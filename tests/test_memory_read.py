"""The memory read equals the explicit L2-softmax formula; top-k behaves as documented."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from remn.model.memory_read import affinity_logits, memory_affinity, read_memory, topk_softmax


def _explicit_read(mk, mv, qk):
    """float64 loops: W(i, j) = softmax_i(-||k_i - q_j||^2 / sqrt(C^k)); out_j = sum_i W(i, j) v_i."""
    b, ck, t, h, w = mk.shape
    k, cv = mv.shape[1:3]
    mk = mk.double().reshape(b, ck, -1)
    mv = mv.double().reshape(b, k, cv, -1)
    qk = qk.double().reshape(b, ck, -1)
    out = torch.zeros(b, k, cv, h * w, dtype=torch.float64)
    weights = torch.zeros(b, t * h * w, h * w, dtype=torch.float64)
    for n in range(b):
        for j in range(h * w):
            dist = ((mk[n] - qk[n, :, j : j + 1]) ** 2).sum(0)
            wj = torch.softmax(-dist / math.sqrt(ck), dim=0)
            weights[n, :, j] = wj
            out[n, :, :, j] = (mv[n] * wj).sum(-1)
    return weights, out.view(b, k, cv, h, w)


def test_read_equals_explicit_formula_in_float64():
    gen = torch.Generator().manual_seed(0)
    mk = torch.randn(2, 64, 3, 4, 5, generator=gen) * 0.3
    qk = torch.randn(2, 64, 4, 5, generator=gen) * 0.3
    mv = torch.randn(2, 3, 16, 3, 4, 5, generator=gen)
    weights, expected = _explicit_read(mk, mv, qk)
    got_w = memory_affinity(mk.reshape(2, 64, -1), qk.reshape(2, 64, -1))
    assert (got_w.double() - weights).abs().max() < 1e-5
    got = read_memory(mk, mv, qk, top_k=None)
    assert got.shape == (2, 3, 16, 4, 5)
    assert (got.double() - expected).abs().max() < 1e-5


def test_query_norm_term_is_dropped_but_softmax_unchanged():
    gen = torch.Generator().manual_seed(1)
    mk = torch.randn(1, 8, 6, generator=gen)
    qk = torch.randn(1, 8, 4, generator=gen)
    logits = affinity_logits(mk, qk)
    full = -((mk[0, :, :, None] - qk[0, :, None, :]) ** 2).sum(0) / math.sqrt(8)
    # the logits differ from -||k - q||^2 / sqrt(C) by ||q||^2 / sqrt(C), constant per column
    torch.testing.assert_close(logits[0] - full, (qk[0] ** 2).sum(0, keepdim=True).expand(6, 4) / math.sqrt(8))


def test_topk_with_k_at_least_memory_size_equals_full_softmax():
    gen = torch.Generator().manual_seed(2)
    mk = torch.randn(1, 64, 2 * 3 * 3, generator=gen)
    qk = torch.randn(1, 64, 9, generator=gen)
    full = memory_affinity(mk, qk, top_k=None)
    logits = affinity_logits(mk, qk)
    torch.testing.assert_close(topk_softmax(logits, k=logits.shape[1]), full)
    torch.testing.assert_close(memory_affinity(mk, qk, top_k=1000), full)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_topk_keeps_k_entries_per_column_and_renormalises(k, q, seed):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, 40, q, generator=gen, dtype=torch.float64)
    sparse = topk_softmax(logits, k)
    assert ((sparse > 0).sum(1) == k).all()
    torch.testing.assert_close(sparse.sum(1), torch.ones(1, q, dtype=torch.float64))
    # the kept entries are the k largest, in the ratios of the full softmax
    kth = torch.topk(logits, k, dim=1).values[:, -1:]
    assert ((sparse > 0) == (logits >= kth)).all()
    full = torch.softmax(logits, 1)
    kept = full * (sparse > 0)
    torch.testing.assert_close(sparse, kept / kept.sum(1, keepdim=True))


def test_read_is_shared_across_objects():
    gen = torch.Generator().manual_seed(3)
    mk = torch.randn(1, 8, 2, 3, 3, generator=gen)
    qk = torch.randn(1, 8, 3, 3, generator=gen)
    mv = torch.randn(1, 4, 5, 2, 3, 3, generator=gen)
    together = read_memory(mk, mv, qk, top_k=5)
    for obj in range(4):
        alone = read_memory(mk, mv[:, obj : obj + 1], qk, top_k=5)
        torch.testing.assert_close(together[:, obj : obj + 1], alone)


def test_affinity_stays_float32_under_bf16_autocast():
    from remn.runtime import autocast

    gen = torch.Generator().manual_seed(4)
    mk = torch.randn(1, 64, 30, generator=gen) * 3
    qk = torch.randn(1, 64, 7, generator=gen) * 3
    reference = affinity_logits(mk, qk)
    with autocast(torch.device("cpu"), "bf16"):
        inside = affinity_logits(mk.bfloat16(), qk.bfloat16())
    assert inside.dtype == torch.float32
    # only the inputs' rounding to bf16 differs, not the arithmetic
    torch.testing.assert_close(inside, affinity_logits(mk.bfloat16().float(), qk.bfloat16().float()))
    assert not torch.equal(inside, reference)


def test_whole_step_runs_under_bf16_autocast_on_cpu(stcn_model):
    from remn.runtime import autocast

    frames = torch.randn(2, 3, 48, 64)
    masks = torch.rand(1, 2, 48, 64)
    with torch.inference_mode(), autocast(torch.device("cpu"), "bf16"):
        feats = stcn_model.encode_key(frames)
        values = stcn_model.encode_value(frames[:1], feats.f16[:1], masks)
        readout = stcn_model.read_memory(feats.key[:1, :, None], values[:, :, :, None], feats.key[1:], top_k=20)
        prob = stcn_model.segment(readout, feats.select(slice(1, 2), dim=0)).prob
    assert prob.shape == (1, 3, 48, 64) and torch.isfinite(prob).all()
    torch.testing.assert_close(prob.float().sum(1), torch.ones(1, 48, 64), atol=2e-2, rtol=0)
