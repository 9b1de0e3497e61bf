"""The memory bank: bounded with RRM, unbounded without, annotated frames kept, late objects."""

from __future__ import annotations

import pytest
import torch

from remn.config import load_config
from remn.memory import FixedInterval, MemoryBank, build_memory_bank
from remn.model import RedundancyReduction
from remn.model.memory_read import read_memory

CK, CV, HW = 4, 6, (2, 3)


def _frame(seed: int, objects: int = 2):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(CK, *HW, generator=gen), torch.randn(objects, CV, *HW, generator=gen)


@pytest.fixture()
def reducer():
    torch.manual_seed(0)
    return RedundancyReduction(key_dim=CK, value_dim=CV, num_policies=3, hidden=8).eval()


def test_rrm_keeps_working_memory_within_capacity_over_1000_writes(reducer):
    bank = MemoryBank(FixedInterval(1), reducer=reducer, capacity=16)
    key0, values0 = _frame(0)
    bank.write(0, key0, values0, permanent=True)
    sizes = []
    with torch.inference_mode():
        for t in range(1, 1001):
            bank.write(t, *_frame(t))
            sizes.append(bank.num_working)
            assert bank.num_working <= 16 and len(bank) <= 17
            bank.read(torch.randn(CK, *HW))
    assert max(sizes) == 15 and min(sizes) >= 1
    assert len(bank.reductions) > 50
    # the annotated frame is never reduced and the working spans cover frames 1..1000 in order
    assert bank.num_permanent == 1 and torch.equal(bank.permanent_keys[:, 0], key0)
    spans = bank.working_spans
    assert spans[0][0] == 1 and spans[-1][1] == 1000
    assert all(a[1] + 1 == b[0] for a, b in zip(spans, spans[1:]))


def test_without_rrm_the_bank_grows_by_one_per_write():
    bank = MemoryBank(FixedInterval(1), reducer=None, capacity=16)
    bank.write(0, *_frame(0), permanent=True)
    for t in range(1, 1001):
        bank.write(t, *_frame(t))
        assert bank.num_working == t and len(bank) == t + 1
    assert bank.reductions == []


def test_reading_all_valid_frames_equals_plain_read():
    bank = MemoryBank(FixedInterval(1), top_k=5)
    frames = [_frame(t) for t in range(4)]
    query = torch.randn(CK, *HW)
    bank.write(0, *frames[0], permanent=True)
    early = bank.read(query)  # a read between writes must not hide later writes
    for t in range(1, 4):
        bank.write(t, *frames[t])
    assert not torch.allclose(bank.read(query), early)
    keys = torch.stack([f[0] for f in frames], dim=1)
    values = torch.stack([f[1] for f in frames], dim=2)
    torch.testing.assert_close(bank.read(query), read_memory(keys[None], values[None], query[None], 5)[0])


def test_late_object_reads_only_frames_since_it_joined(reducer):
    bank = MemoryBank(FixedInterval(1), reducer=None, top_k=None)
    k0, v0 = _frame(0, objects=1)
    bank.write(0, k0, v0, permanent=True)
    k1, v1 = _frame(1, objects=1)
    bank.write(1, k1, v1)
    k2, v2 = _frame(2, objects=2)  # object 2 given at frame 2: a second reference frame
    bank.write(2, k2, v2, permanent=True)
    k3, v3 = _frame(3, objects=2)
    bank.write(3, k3, v3)
    assert bank.num_objects == 2 and bank.num_permanent == 2
    query = torch.randn(CK, *HW)
    out = bank.read(query)
    old_keys = torch.stack([k0, k2, k1, k3], dim=1)  # permanent first, then working
    old_values = torch.stack([v0[0], v2[0], v1[0], v3[0]], dim=1)
    expected_old = read_memory(old_keys[None], old_values[None, None], query[None], None)[0, 0]
    new_keys = torch.stack([k2, k3], dim=1)
    new_values = torch.stack([v2[1], v3[1]], dim=1)
    expected_new = read_memory(new_keys[None], new_values[None, None], query[None], None)[0, 0]
    torch.testing.assert_close(out[0], expected_old)
    torch.testing.assert_close(out[1], expected_new)


def test_reduction_merges_validity(reducer):
    bank = MemoryBank(FixedInterval(1), reducer=reducer, capacity=4, top_k=None)
    bank.write(0, *_frame(0, objects=1), permanent=True)
    bank.write(1, *_frame(1, objects=1))
    bank.write(2, *_frame(2, objects=2), permanent=True)  # object 2 joins
    bank.write(3, *_frame(3, objects=2))
    bank.write(4, *_frame(4, objects=2))
    with torch.no_grad():
        reducer.gate.gamma.copy_(torch.tensor([5.0, 0.0, 0.0]))  # halve
    bank.write(5, *_frame(5, objects=2))  # 4 working frames (1, 3, 4, 5) -> 2
    assert bank.num_working == 2 and bank.working_spans == [(1, 3), (4, 5)]
    valid = bank._working.valid
    assert valid[0].tolist() == [True, True]
    assert valid[1].tolist() == [False, True]  # merged (1, 3) includes frame 1, before object 2


def test_remove_objects_keeps_the_others():
    bank = MemoryBank(FixedInterval(1), top_k=None)
    k, v = _frame(0, objects=3)
    bank.write(0, k, v, permanent=True)
    query = torch.randn(CK, *HW)
    before = bank.read(query)
    bank.remove_objects([1])
    after = bank.read(query)
    assert bank.num_objects == 2
    torch.testing.assert_close(after, before[[0, 2]])
    with pytest.raises(ValueError, match="unknown object"):
        bank.remove_objects([5])
    with pytest.raises(ValueError, match="tracks 2"):
        bank.write(1, *_frame(1, objects=1))


def test_empty_bank_refuses_to_read():
    with pytest.raises(RuntimeError, match="empty"):
        MemoryBank(FixedInterval(1)).read(torch.randn(CK, *HW))


def test_build_memory_bank_from_config(stcn_model, remn_model):
    cfg = load_config()
    bank = build_memory_bank(cfg.memory, remn_model)
    assert bank.reducer is not None and bank.capacity == 16 and bank.top_k == 20
    stcn_cfg = load_config(overrides=["memory.rrm=false", "memory.asm=false"])
    bank = build_memory_bank(stcn_cfg.memory, stcn_model)
    assert bank.reducer is None and isinstance(bank.policy, FixedInterval)
    with pytest.raises(ValueError, match="without RRM"):
        build_memory_bank(cfg.memory, stcn_model)


def test_new_objects_must_come_with_an_annotated_frame():
    bank = MemoryBank(FixedInterval(1))
    bank.write(0, *_frame(0, objects=1), permanent=True)
    with pytest.raises(ValueError, match="permanent"):
        bank.write(1, *_frame(1, objects=2))
    bank.write(1, *_frame(1, objects=2), permanent=True)
    assert bank.num_objects == 2


def test_writes_inform_the_policy_and_removal_keeps_asm_consistent():
    from remn.memory import AdaptiveSampling

    policy = AdaptiveSampling(min_interval=1, max_interval=50, stride=1)
    bank = MemoryBank(policy)
    prob = torch.zeros(4, 8, 8)
    prob[0] = 1
    for i, (top, left) in enumerate([(0, 0), (0, 4), (4, 0)]):
        prob[0, top : top + 3, left : left + 3] = 0
        prob[i + 1, top : top + 3, left : left + 3] = 1
    bank.write(0, *_frame(0, objects=3), prob, permanent=True)
    assert policy.last_write == 0
    bank.write(3, *_frame(3, objects=3), prob)
    assert policy.last_write == 3 and not bank.should_write(4, prob)
    bank.remove_objects([1])
    remaining = prob[[0, 1, 3]]
    remaining[0] += prob[2]  # the removed object's pixels become background
    assert not bank.should_write(5, remaining)  # no crash, and nothing changed for the others
