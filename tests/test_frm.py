"""FRM: identity at start, no effect on an all-background mask, the explicit formula, gradients."""

from __future__ import annotations

import torch

from remn.model import ForegroundReinforcingModule, foreground_prior


def _inputs(seed=0, b=2, c=8, h=6, w=7):
    gen = torch.Generator().manual_seed(seed)
    key = torch.randn(b, c, h, w, generator=gen)
    mask = torch.rand(b, 1, h, w, generator=gen)
    return key, mask


def test_identity_at_initialisation():
    torch.manual_seed(0)
    frm = ForegroundReinforcingModule(key_dim=8, window=5)
    key, mask = _inputs()
    assert float(frm.gate.detach()) == 0.0
    assert torch.equal(frm(key, mask), key)


def test_all_background_previous_mask_leaves_key_unchanged():
    torch.manual_seed(0)
    frm = ForegroundReinforcingModule(key_dim=8, window=5)
    with torch.no_grad():
        frm.gate.fill_(0.8)
    key, _ = _inputs()
    assert torch.equal(frm(key, torch.zeros(2, 1, 6, 7)), key)
    assert not torch.allclose(frm(key, torch.ones(2, 1, 6, 7)), key)


def test_matches_explicit_local_attention_formula():
    torch.manual_seed(1)
    window, c, h, w = 3, 4, 5, 6
    frm = ForegroundReinforcingModule(key_dim=c, window=window)
    with torch.no_grad():
        frm.gate.fill_(0.3)
    key, mask = _inputs(seed=2, b=1, c=c, h=h, w=w)
    out = frm(key, mask)
    alpha = frm.attention(key, mask)[0]  # (Z, h, w)
    r = window // 2
    for i, j in [(0, 0), (2, 3), (4, 5), (1, 4)]:
        total = torch.zeros(c)
        z = 0
        for di in range(-r, r + 1):
            for dj in range(-r, r + 1):
                ni, nj = i + di, j + dj
                if 0 <= ni < h and 0 <= nj < w:  # zero padding outside the frame
                    total += alpha[z, i, j] * mask[0, 0, ni, nj] * key[0, :, ni, nj]
                z += 1
        torch.testing.assert_close(out[0, :, i, j], key[0, :, i, j] + 0.3 * total)


def test_attention_weights_are_a_distribution_over_the_window():
    frm = ForegroundReinforcingModule(key_dim=8, window=7)
    key, mask = _inputs()
    alpha = frm.attention(key, mask)
    assert alpha.shape == (2, 49, 6, 7)
    torch.testing.assert_close(alpha.sum(1), torch.ones(2, 6, 7))


def test_gradients_reach_gate_and_convolutions():
    torch.manual_seed(3)
    frm = ForegroundReinforcingModule(key_dim=8, window=5)
    key, mask = _inputs()
    frm(key, mask).pow(2).sum().backward()
    # at g = 0 only the gate learns; the convolutions' gradient is exactly zero
    assert float(frm.gate.grad.abs()) > 0
    assert float(frm.attention_conv.weight.grad.abs().sum()) == 0.0

    frm.zero_grad()
    with torch.no_grad():
        frm.gate.fill_(0.5)  # as after the first optimiser step
    frm(key, mask).pow(2).sum().backward()
    for param in (
        frm.gate,
        frm.attention_conv.weight,
        frm.attention_conv.bias,
        frm.weight_conv.weight,
        frm.weight_conv.bias,
    ):
        assert param.grad is not None and float(param.grad.abs().sum()) > 0


def test_foreground_prior_is_area_average_of_one_minus_background():
    prob = torch.zeros(1, 3, 32, 32)
    prob[0, 0] = 1
    prob[0, 0, :16, :16] = 0
    prob[0, 1, :16, :16] = 1  # object in the top-left quarter
    prior = foreground_prior(prob, (2, 2))
    torch.testing.assert_close(prior, torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]))
    prior = foreground_prior(prob, (4, 4))
    assert float(prior.sum()) == 4.0


def test_model_enhance_key_uses_frm_only_when_built(stcn_model, remn_model):
    key = torch.randn(1, 64, 3, 4)
    prob = torch.rand(1, 2, 48, 64)
    assert stcn_model.enhance_key(key, prob) is key
    assert remn_model.enhance_key(key, None) is key
    assert torch.equal(remn_model.enhance_key(key, prob), key)  # identity at initialisation


def test_foreground_prior_equals_average_pooling():
    prob = torch.softmax(torch.randn(2, 4, 48, 64), dim=1)
    expected = torch.nn.functional.avg_pool2d(1 - prob[:, :1], 16)
    torch.testing.assert_close(foreground_prior(prob, (3, 4)), expected)
