"""RRM: lengths per policy, temporal-average start, gate gradient, and the RRM loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from remn.model import RedundancyReduction, reduced_length, rrm_loss
from remn.model.rrm import reduction_groups

CK, CV, K = 8, 12, 2


def _memory(t, seed=0, h=3, w=4):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(1, CK, t, h, w, generator=gen), torch.randn(1, K, CV, t, h, w, generator=gen)


@pytest.fixture()
def rrm():
    torch.manual_seed(0)
    return RedundancyReduction(key_dim=CK, value_dim=CV, num_policies=3, hidden=16).eval()


@pytest.mark.parametrize("t, expected", [(16, [8, 4, 2]), (13, [7, 4, 6]), (8, [4, 2, 1])])
def test_each_policy_shrinks_to_documented_length(rrm, t, expected):
    keys, values = _memory(t)
    for policy, length in enumerate(expected):
        red = rrm(keys, values, policy=policy)
        assert red.stride == 2 ** (policy + 1)
        assert red.keys.shape == (1, CK, length, 3, 4)
        assert red.values.shape == (1, K, CV, length, 3, 4)
        assert length == reduced_length(t, red.stride) < t


def test_untrained_reduction_is_temporal_average_and_keeps_tail(rrm):
    keys, values = _memory(7)
    red = rrm(keys, values, policy=1)  # stride 4: frames 0-3 averaged, 4, 5, 6 kept
    torch.testing.assert_close(red.keys[:, :, 0], keys[:, :, :4].mean(2))
    torch.testing.assert_close(red.values[:, :, :, 0], values[:, :, :, :4].mean(3))
    assert torch.equal(red.keys[:, :, 1:], keys[:, :, 4:])
    assert torch.equal(red.values[:, :, :, 1:], values[:, :, :, 4:])


def test_gate_probabilities_and_eligible_policies(rrm):
    keys, values = _memory(3)
    prob = rrm.gate(keys)
    assert prob.shape == (1, 3)
    torch.testing.assert_close(prob.sum(1), torch.ones(1))
    assert (prob > 0).all()
    red = rrm(keys, values)  # only stride 2 fits 3 frames
    assert red.stride == 2 and red.keys.shape[2] == 2
    with pytest.raises(ValueError, match="cannot reduce"):
        rrm(*_memory(1))


def test_gate_choice_is_argmax(rrm):
    keys, values = _memory(16)
    with torch.no_grad():
        rrm.gate.gamma.copy_(torch.tensor([0.0, 0.0, 5.0]))
    red = rrm(keys, values)
    assert red.policy == 2 and red.stride == 8 and red.keys.shape[2] == 2


def test_gate_receives_gradient_through_straight_through_factor(rrm):
    keys, values = _memory(16)
    red = rrm(keys, values)
    # the factor is exactly 1 in value: outputs equal the reducer's
    plain = rrm.key_reducers[red.policy](keys)[0]
    torch.testing.assert_close(red.keys[:, :, : plain.shape[2]], plain)
    loss = red.values.pow(2).mean() + red.keys.pow(2).mean()
    loss.backward()
    assert float(rrm.gate.gamma.grad.abs().sum()) > 0
    assert float(rrm.gate.conv1.weight.grad.abs().sum()) + float(rrm.gate.conv2.weight.grad.abs().sum()) > 0
    assert float(rrm.value_reducers[red.policy].conv.weight.grad.abs().sum()) > 0


def test_rrm_loss_zero_for_constant_memory_positive_otherwise(rrm):
    keys, values = _memory(16)
    constant_keys = keys[:, :, :1].expand(-1, -1, 16, -1, -1).contiguous()
    constant_values = values[:, :, :, :1].expand(-1, -1, -1, 16, -1, -1).contiguous()
    for policy in range(3):
        with torch.no_grad():
            red = rrm(constant_keys, constant_values, policy=policy)
        assert float(rrm_loss(constant_keys, constant_values, red)) < 1e-6
        with torch.no_grad():
            red = rrm(keys, values, policy=policy)
        assert float(rrm_loss(keys, values, red)) > 1e-3


def test_rrm_loss_trains_the_reducers(rrm):
    keys, values = _memory(8)
    red = rrm(keys, values, policy=0)
    loss = rrm_loss(keys, values, red)
    loss.backward()
    assert float(rrm.key_reducers[0].conv.weight.grad.abs().sum()) > 0
    assert float(rrm.value_reducers[0].conv.weight.grad.abs().sum()) > 0
    assert rrm.key_reducers[1].conv.weight.grad is None  # unused policies are untouched


def test_batch_shares_one_policy(rrm):
    keys = torch.randn(3, CK, 16, 2, 2)
    values = torch.randn(3, K, CV, 16, 2, 2)
    red = rrm(keys, values)
    assert red.prob.shape == (3, 3)
    assert red.policy == int(red.prob.mean(0).argmax())
    assert red.keys.shape == (3, CK, reduced_length(16, red.stride), 2, 2)


@given(st.integers(1, 100), st.sampled_from([2, 4, 8, 16]))
def test_groups_partition_the_frames(length, stride):
    groups = reduction_groups(length, stride)
    assert len(groups) == reduced_length(length, stride)
    assert [t for g in groups for t in g] == list(range(length))
    assert all(len(g) in (1, stride) for g in groups)


def test_gate_matches_its_formula(rrm):
    keys, _ = _memory(6)
    gate = rrm.gate
    pooled = keys.mean(dim=(3, 4))  # (B, C^k, T)
    hidden = F.relu(gate.bn(F.conv1d(pooled, gate.conv1.weight, gate.conv1.bias)))
    scores = F.conv1d(hidden, gate.conv2.weight, gate.conv2.bias).mean(dim=2)  # mean over T
    expected = torch.softmax(torch.clamp(torch.tanh(scores), min=0) + gate.gamma, dim=1)
    torch.testing.assert_close(gate(keys), expected)


def test_rrm_loss_matches_framewise_kl_formula(rrm):
    keys, values = _memory(5)
    red = rrm(keys, values, policy=0)  # groups (0, 1), (2, 3), tail 4

    def kl(original, reduced):  # mean over frames and positions of KL(p_t || q_group(t))
        cover = [0, 0, 1, 1, 2]
        total = []
        for t, g in enumerate(cover):
            p = torch.softmax(original[:, :, t], dim=1)
            q = torch.softmax(reduced[:, :, g], dim=1)
            total.append((p * (p.log() - q.log())).sum(1).mean())
        return torch.stack(total).mean()

    expected = kl(keys, red.keys) + kl(values.flatten(0, 1), red.values.flatten(0, 1))
    torch.testing.assert_close(rrm_loss(keys, values, red), expected)


@pytest.mark.parametrize("length, expected_stride", [(2, 2), (3, 2), (4, 4), (7, 4), (8, 8)])
def test_longest_eligible_stride_fits_the_memory(rrm, length, expected_stride):
    with torch.no_grad():
        rrm.gate.gamma.copy_(torch.tensor([0.0, 1.0, 2.0]))  # the gate prefers the longest stride
    red = rrm(*_memory(length))
    assert red.stride == expected_stride
    with pytest.raises(ValueError, match="cannot reduce"):
        rrm(*_memory(3), policy=1)
