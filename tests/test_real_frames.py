"""The network on real DAVIS 2016 frames at 480p (skipped where the real-data folder is absent: conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from remn.config import load_config
from remn.memory import build_memory_bank
from remn.model import normalize_image, pad_divide_by, unpad

from conftest import DAVIS_MINI, REPO, needs_davis_mini

SEQUENCE = DAVIS_MINI / "JPEGImages" / "480p" / "blackswan"


@pytest.mark.slow
@needs_davis_mini
def test_three_real_frames_through_remn(remn_model):
    images = [np.array(Image.open(SEQUENCE / f"{t:05d}.jpg").convert("RGB")) for t in range(3)]
    mask = np.asarray(Image.open(DAVIS_MINI / "Annotations" / "480p" / "blackswan" / "00000.png"))
    assert images[0].shape == (480, 854, 3) and set(np.unique(mask)) <= {0, 255}
    fg = torch.from_numpy(mask > 127).float()
    first = torch.stack([1 - fg, fg])

    model = remn_model
    bank = build_memory_bank(load_config(REPO / "configs" / "remn.yaml").memory, model)
    outputs = []
    with torch.inference_mode():
        prev = None
        for t, image in enumerate(images):
            rgb = torch.from_numpy(image).permute(2, 0, 1).float() / 255
            frame, pads = pad_divide_by(normalize_image(rgb))
            assert frame.shape[-2:] == (480, 864)
            feats = model.encode_key(frame[None])
            if t == 0:
                prob, _ = pad_divide_by(first)
                prob[0] += 1 - prob.sum(0)
            key = model.enhance_key(feats.key, (prob if t == 0 else prev)[None])[0]
            if t > 0:
                prob = model.segment(bank.read(key)[None], feats).prob[0]
            if t == 0 or bank.should_write(t, prob):
                bank.write(
                    t, key, model.encode_value(frame[None], feats.f16, prob[None, 1:])[0], prob, permanent=t == 0
                )
            prev = prob
            outputs.append(unpad(prob, pads))
    assert all(o.shape == (2, 480, 854) for o in outputs)
    torch.testing.assert_close(outputs[-1].sum(0), torch.ones(480, 854))
    assert len(bank) >= 1 and bank.num_objects == 1
