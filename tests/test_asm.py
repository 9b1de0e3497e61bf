"""ASM and the fixed interval: which frames a policy writes."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from remn.config import load_config
from remn.memory import AdaptiveSampling, FixedInterval, binary_object_masks, build_write_policy, object_variation

H, W = 64, 64


def _prob(boxes: list[tuple[int, int, int, int] | None]) -> torch.Tensor:
    """(K+1, H, W) one-hot probabilities; box = (top, left, height, width) or None (absent)."""
    labels = torch.zeros(H, W, dtype=torch.long)
    for i, box in enumerate(boxes):
        if box is not None:
            top, left, hh, ww = box
            labels[top : top + hh, left : left + ww] = i + 1
    return torch.nn.functional.one_hot(labels, len(boxes) + 1).permute(2, 0, 1).float()


def _asm(**kw) -> AdaptiveSampling:
    params = dict(lambda_pos=1.0, lambda_shape=1.0, tau=0.2, min_interval=2, max_interval=10, stride=1)
    params.update(kw)
    return AdaptiveSampling(**params)


def test_writes_after_a_large_jump_and_skips_a_still_object():
    asm = _asm()
    still = _prob([(10, 10, 12, 12)])
    asm.record_write(0, still)
    assert asm.variation(still) == 0.0
    assert not asm.should_write(3, still)
    jumped = _prob([(30, 40, 12, 12)])
    assert asm.variation(jumped) > 1.0
    assert asm.should_write(3, jumped)


def test_min_interval_blocks_early_writes_even_after_a_jump():
    asm = _asm(min_interval=4)
    asm.record_write(10, _prob([(10, 10, 12, 12)]))
    jumped = _prob([(40, 40, 12, 12)])
    assert [asm.should_write(t, jumped) for t in range(11, 16)] == [False, False, False, True, True]


def test_max_interval_forces_a_write_of_a_still_object():
    asm = _asm(max_interval=6)
    still = _prob([(10, 10, 12, 12)])
    asm.record_write(0, still)
    assert [asm.should_write(t, still) for t in range(1, 8)] == [False] * 5 + [True, True]


def test_threshold_tau_separates_small_from_large_motion():
    asm = _asm(tau=0.3)
    asm.record_write(0, _prob([(10, 10, 16, 16)]))
    assert not asm.should_write(5, _prob([(10, 12, 16, 16)]))  # 2 px on a 16 px object: 0.125
    assert asm.should_write(5, _prob([(10, 16, 16, 16)]))  # 6 px: 0.375


def test_appearing_and_disappearing_objects_force_a_write():
    asm = _asm()
    asm.record_write(0, _prob([(10, 10, 12, 12), None]))
    assert asm.variation(_prob([(10, 10, 12, 12), (40, 40, 8, 8)])) == math.inf
    assert asm.variation(_prob([None, None])) == math.inf
    # an object that joined later (more channels than the reference) counts as appearing
    assert asm.should_write(2, _prob([(10, 10, 12, 12), None, (40, 40, 8, 8)]))


def test_first_frame_is_always_written():
    assert _asm().should_write(0, _prob([(1, 1, 3, 3)]))


def test_variation_values_for_translation_and_shape_change():
    ref = binary_object_masks(_prob([(10, 10, 16, 16)]), 1)
    moved = binary_object_masks(_prob([(10, 18, 16, 16)]), 1)
    d = object_variation(moved, ref, lambda_pos=1.0, lambda_shape=1.0)
    torch.testing.assert_close(d, torch.tensor([8 / 16]))  # 8 px / sqrt(256), same shape
    taller = binary_object_masks(_prob([(10, 10, 32, 16)]), 1)  # twice the area, same top-left
    d_shape = object_variation(taller, ref, lambda_pos=0.0, lambda_shape=1.0)
    torch.testing.assert_close(d_shape, torch.tensor([0.5]))  # centred: IoU = 256 / 512


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 20),
    st.integers(2, 20),
    st.integers(0, 20),
    st.integers(0, 20),
    st.integers(-10, 10),
    st.integers(-10, 10),
)
def test_pure_translation_changes_position_only(hh, ww, top, left, dy, dx):
    top, left = top + 12, left + 12  # keep both boxes inside the frame
    ref = binary_object_masks(_prob([(top, left, hh, ww)]), 1)
    cur = binary_object_masks(_prob([(top + dy, left + dx, hh, ww)]), 1)
    pos = object_variation(cur, ref, lambda_pos=1.0, lambda_shape=0.0)
    shape = object_variation(cur, ref, lambda_pos=0.0, lambda_shape=1.0)
    torch.testing.assert_close(pos, torch.tensor([math.hypot(dy, dx) / math.sqrt(hh * ww)]))
    assert float(shape) == 0.0


def test_masks_are_downsampled_before_comparison():
    masks = binary_object_masks(_prob([(0, 0, 32, 32), (32, 32, 32, 32)]), 4)
    assert masks.shape == (2, 16, 16)
    assert int(masks[0].sum()) == 64 and int(masks[1].sum()) == 64


def test_fixed_interval_absolute_and_relative():
    prob = _prob([(1, 1, 3, 3)])
    absolute = FixedInterval(5, "absolute")
    absolute.record_write(0, prob)
    assert [t for t in range(1, 21) if absolute.should_write(t, prob)] == [5, 10, 15, 20]
    relative = FixedInterval(5, "relative")
    relative.record_write(3, prob)  # an object given at frame 3
    written = []
    for t in range(4, 20):
        if relative.should_write(t, prob):
            relative.record_write(t, prob)
            written.append(t)
    assert written == [8, 13, 18]


def test_build_write_policy_follows_the_flag():
    assert isinstance(build_write_policy(load_config().memory), AdaptiveSampling)
    policy = build_write_policy(load_config(overrides=["memory.asm=false", "memory.mem_every=3"]).memory)
    assert isinstance(policy, FixedInterval) and policy.mem_every == 3
    with pytest.raises(ValueError):
        AdaptiveSampling(min_interval=5, max_interval=2)


def test_position_change_is_measured_in_units_of_the_reference_size():
    ref = binary_object_masks(_prob([(10, 10, 8, 8)]), 1)  # area 64: size 8
    grown = binary_object_masks(_prob([(10, 14, 16, 16)]), 1)  # centroid moves by (4, 8)
    d = object_variation(grown, ref, lambda_pos=1.0, lambda_shape=0.0)
    torch.testing.assert_close(d, torch.tensor([math.hypot(4, 8) / 8]))


def test_variation_on_downsampled_masks():
    asm = _asm(stride=4)
    asm.record_write(0, _prob([(8, 8, 16, 16)]))
    # a 16 px object moved by 8 px: at 1/4 scale a 4 px object moved by 2 px
    assert asm.variation(_prob([(8, 16, 16, 16)])) == pytest.approx(0.5)
    assert asm.variation(_prob([(8, 8, 16, 16)])) == 0.0


def test_reference_follows_removed_objects():
    asm = _asm()
    asm.record_write(0, _prob([(10, 10, 12, 12), (40, 40, 8, 8), (5, 40, 6, 6)]))
    asm.keep_objects([0, 2])
    assert asm.variation(_prob([(10, 10, 12, 12), (5, 40, 6, 6)])) == 0.0
