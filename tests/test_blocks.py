"""STCN's building blocks equal their written-out formulas (docs/design.md BASE-1 and READ-3).

Checkpoint tests only see names and shapes; these see what the layers compute:
pre-activation residual blocks, CBAM's order ([max, mean] spatial pool, channel gate
first, used residually), bilinear upsampling without corner alignment, the decoder's
concatenation order and final ReLU, and the value encoder's input order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from remn.model.blocks import CBAM, FeatureFusionBlock, ResBlock, UpsampleBlock
from remn.model.decoder import Decoder
from remn.model.encoders import ValueEncoder

torch.manual_seed(0)


def _conv(conv, x):
    return F.conv2d(x, conv.weight, conv.bias, padding=conv.padding)


def test_resblock_is_pre_activation_with_conv_shortcut():
    block = ResBlock(6, 4)
    x = torch.randn(2, 6, 5, 5)
    expected = _conv(block.downsample, x) + _conv(block.conv2, F.relu(_conv(block.conv1, F.relu(x))))
    torch.testing.assert_close(block(x), expected)
    same = ResBlock(4, 4)
    assert same.downsample is None
    y = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(same(y), y + _conv(same.conv2, F.relu(_conv(same.conv1, F.relu(y)))))


def _cbam_formula(cbam: CBAM, x: torch.Tensor) -> torch.Tensor:
    mlp = cbam.ChannelGate.mlp

    def shared(v):
        return F.linear(F.relu(F.linear(v, mlp[1].weight, mlp[1].bias)), mlp[3].weight, mlp[3].bias)

    avg = shared(x.mean(dim=(2, 3)))
    peak = shared(x.amax(dim=(2, 3)))
    x = x * torch.sigmoid(avg + peak)[:, :, None, None]
    pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], dim=1)  # max first
    conv = cbam.SpatialGate.spatial.conv
    return x * torch.sigmoid(F.conv2d(pooled, conv.weight, conv.bias, padding=3))


def test_cbam_channel_gate_then_spatial_gate_max_before_mean():
    cbam = CBAM(32)
    x = torch.randn(2, 32, 6, 7)
    torch.testing.assert_close(cbam(x), _cbam_formula(cbam, x))


def test_fusion_block_uses_cbam_residually_and_value_first():
    fuser = FeatureFusionBlock(12 + 20, 32)
    value, key = torch.randn(2, 12, 5, 5), torch.randn(2, 20, 5, 5)
    y = fuser.block1(torch.cat([value, key], dim=1))
    expected = fuser.block2(y + _cbam_formula(fuser.attention, y))
    torch.testing.assert_close(fuser(value, key), expected)


def test_upsample_block_bilinear_without_corner_alignment():
    block = UpsampleBlock(6, 4, 3)
    skip, x = torch.randn(1, 6, 8, 10), torch.randn(1, 4, 4, 5)
    up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(block(skip, x), block.out_conv(_conv(block.skip_conv, skip) + up))


def test_decoder_readout_first_and_relu_before_pred():
    decoder = Decoder()
    readout, thin = torch.randn(1, 512, 2, 3), torch.randn(1, 512, 2, 3)
    f8, f4 = torch.randn(1, 512, 4, 6), torch.randn(1, 256, 8, 12)
    with torch.no_grad():
        x = decoder.compress(torch.cat([readout, thin], dim=1))
        x = decoder.up_8_4(f4, decoder.up_16_8(f8, x))
        logits = _conv(decoder.pred, F.relu(x))
        expected = F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)
        got = decoder(readout, thin, f8, f4)
    assert got.shape == (1, 1, 32, 48)
    torch.testing.assert_close(got, expected)


def test_value_encoder_input_order_image_mask_others():
    encoder = ValueEncoder(value_dim=64).eval()
    image = torch.randn(1, 3, 32, 32)
    mask, others = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    f16 = torch.randn(1, 1024, 2, 2)
    with torch.no_grad():
        encoder.conv1.weight[:, 4].zero_()  # silence the 5th input channel: "others" must not matter
        base = encoder(image, f16, mask, others)
        assert torch.equal(encoder(image, f16, mask, torch.rand(1, 1, 32, 32)), base)
        assert not torch.allclose(encoder(image, f16, torch.rand(1, 1, 32, 32), others), base)
        # the fuser sees [value feature (256), key f16 (1024)]: silence the key's weights
        for conv in (encoder.fuser.block1.conv1, encoder.fuser.block1.downsample):
            conv.weight[:, 256:].zero_()
        again = encoder(image, f16, mask, others)
        assert torch.equal(encoder(image, torch.randn(1, 1024, 2, 2), mask, others), again)
