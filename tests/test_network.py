"""Shapes through every stage, padding, soft aggregation, and STCN equivalence at initialisation."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from remn.config import load_config
from remn.memory import build_memory_bank
from remn.model import normalize_image, pad_divide_by, soft_aggregate, unpad

from conftest import REPO

H, W = 67, 93  # not multiples of 16


def _first_frame_prob(k: int, h: int, w: int) -> torch.Tensor:
    """One-hot (K+1, H, W): object i is a vertical band, background elsewhere."""
    labels = torch.zeros(h, w, dtype=torch.long)
    for i in range(k):
        labels[h // 4 : 3 * h // 4, (2 * i + 1) * w // (2 * k + 1) : (2 * i + 2) * w // (2 * k + 1)] = i + 1
    return torch.nn.functional.one_hot(labels, k + 1).permute(2, 0, 1).float()


@pytest.mark.parametrize("num_objects", [1, 2, 5])
def test_two_frame_pipeline_shapes(remn_model, num_objects):
    torch.manual_seed(num_objects)
    model = remn_model
    frames = normalize_image(torch.rand(2, 3, H, W))
    first_prob = _first_frame_prob(num_objects, H, W)
    padded, pads = pad_divide_by(frames)
    prob0, pads_mask = pad_divide_by(first_prob)
    assert pads == pads_mask and padded.shape[-2:] == (80, 96)
    h, w = 80 // 16, 96 // 16

    with torch.inference_mode():
        feats = model.encode_key(padded)
        assert feats.key.shape == (2, 64, h, w)
        assert feats.f16_thin.shape == (2, 512, h, w) and feats.f16.shape == (2, 1024, h, w)
        assert feats.f8.shape == (2, 512, 2 * h, 2 * w) and feats.f4.shape == (2, 256, 4 * h, 4 * w)

        key0 = model.enhance_key(feats.key[:1], prob0[None])
        values = model.encode_value(padded[:1], feats.f16[:1], prob0[None, 1:])
        assert values.shape == (1, num_objects, 512, h, w)

        bank = build_memory_bank(load_config(REPO / "configs" / "remn.yaml").memory, model)
        bank.write(0, key0[0], values[0], prob0, permanent=True)
        key1 = model.enhance_key(feats.key[1:], prob0[None])
        readout = bank.read(key1[0])
        assert readout.shape == (num_objects, 512, h, w)

        seg = model.segment(readout[None], feats.select(slice(1, 2), dim=0))
    assert seg.logits.shape == seg.prob.shape == (1, num_objects + 1, 80, 96)
    out = unpad(seg.prob[0], pads)
    assert out.shape == (num_objects + 1, H, W)
    torch.testing.assert_close(out.sum(0), torch.ones(H, W))


def test_clip_encoding_keeps_leading_dims(stcn_model):
    clip = torch.randn(2, 3, 3, 32, 48)  # (B, T, 3, H, W), as in training
    with torch.inference_mode():
        feats = stcn_model.encode_key(clip)
        single = stcn_model.encode_key(clip[1, 2][None])
    assert feats.key.shape == (2, 3, 64, 2, 3) and feats.f4.shape == (2, 3, 256, 8, 12)
    torch.testing.assert_close(feats.key[1, 2], single.key[0], rtol=1e-4, atol=1e-4)
    assert feats.select(0).key.shape == (2, 64, 2, 3)


def test_encode_value_uses_sum_of_other_objects(stcn_model):
    torch.manual_seed(1)
    frame = torch.randn(1, 3, 32, 32)
    masks = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        f16 = stcn_model.encode_key(frame).f16
        values = stcn_model.encode_value(frame, f16, masks)
        manual = stcn_model.value_encoder(frame, f16, masks[:, 1:2], masks[:, 0:1] + masks[:, 2:3])
        single = stcn_model.value_encoder(frame, f16, masks[:, :1], torch.zeros(1, 1, 32, 32))
        one_object = stcn_model.encode_value(frame, f16, masks[:, :1])
    # batched and single convolutions round differently: compare at float32 noise level
    torch.testing.assert_close(values[:, 1], manual, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(one_object[:, 0], single, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(values[:, 0], values[:, 1], atol=1e-3)


def test_segment_object_valid_zeroes_absent_objects(stcn_model):
    torch.manual_seed(2)
    frame = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        feats = stcn_model.encode_key(frame)
        seg = stcn_model.segment(torch.randn(1, 2, 512, 2, 2), feats, object_valid=torch.tensor([[1.0, 0.0]]))
    # an absent object's probability is clamped to 1e-7 before the softmax
    assert float(seg.prob[0, 2].max()) < 1e-6
    torch.testing.assert_close(seg.prob.sum(1), torch.ones(1, 32, 32))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_soft_aggregate_is_a_distribution(k, h, w, seed):
    gen = torch.Generator().manual_seed(seed)
    prob = torch.rand(2, k, h, w, generator=gen)
    prob[0, 0] = 1.0  # saturated inputs are clamped, not NaN
    logits, agg = soft_aggregate(prob)
    assert agg.shape == (2, k + 1, h, w)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(agg.sum(1), torch.ones(2, h, w))
    torch.testing.assert_close(torch.softmax(logits, 1), agg)


def test_soft_aggregate_matches_formula():
    p = torch.tensor([0.9, 0.2], dtype=torch.float64).view(1, 2, 1, 1)
    _, agg = soft_aggregate(p)
    stacked = torch.tensor([0.1 * 0.8, 0.9, 0.2], dtype=torch.float64)
    odds = stacked / (1 - stacked)
    torch.testing.assert_close(agg.flatten(), odds / odds.sum())


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 70), st.integers(1, 70), st.sampled_from([8, 16, 32]))
def test_pad_and_unpad_round_trip(h, w, divisor):
    x = torch.randn(2, 3, h, w)
    padded, pads = pad_divide_by(x, divisor)
    assert padded.shape[-2] % divisor == 0 and padded.shape[-1] % divisor == 0
    assert padded.shape[-2] - h < divisor and padded.shape[-1] - w < divisor
    left, right, top, bottom = pads
    assert 0 <= right - left <= 1 and 0 <= bottom - top <= 1  # split evenly, extra pixel bottom/right
    assert torch.equal(unpad(padded, pads), x)


def test_remn_at_initialisation_equals_stcn(stcn_model, remn_model, stcn_random_state):
    """With the same STCN weights, REMN (FRM at its identity start) segments exactly as STCN."""
    import copy

    from remn.model import load_network_weights

    stcn_model, remn_model = copy.deepcopy(stcn_model), copy.deepcopy(remn_model)  # the shared ones stay as seeded
    load_network_weights(stcn_model, stcn_random_state)
    load_network_weights(remn_model, stcn_random_state)
    torch.manual_seed(3)
    frames = torch.randn(2, 3, 48, 64)
    prob0 = _first_frame_prob(2, 48, 64)
    outputs = []
    with torch.inference_mode():
        for model in (stcn_model, remn_model):
            feats = model.encode_key(frames)
            key0 = model.enhance_key(feats.key[:1], prob0[None])
            key1 = model.enhance_key(feats.key[1:], prob0[None])
            values = model.encode_value(frames[:1], feats.f16[:1], prob0[None, 1:])
            readout = model.read_memory(key0[:, :, None], values[:, :, :, None], key1, top_k=20)
            outputs.append(model.segment(readout, feats.select(slice(1, 2), dim=0)).prob)
    assert torch.equal(outputs[0], outputs[1])
