"""Shared fixtures: full-size networks built once per test session (about a second each), the
real-data folder (skipped cleanly where it is absent) and a small generated clip.

Real data: ``REMN_REAL_DATA`` (default: ``shared/data`` beside the repository) holding
``davis2016-mini``, three DAVIS 2016 sequences in their distributed layout. Tests that read it
carry ``@needs_davis_mini``; nothing is ever copied from it into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from remn.config import load_config
from remn.model import REMN, build_model

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"

REAL_DATA = Path(os.environ.get("REMN_REAL_DATA", REPO.parent / "shared" / "data"))
DAVIS_MINI = REAL_DATA / "davis2016-mini"
"""Three real DAVIS 2016 sequences (blackswan among them), 480p, as distributed."""

needs_davis_mini = pytest.mark.skipif(
    not DAVIS_MINI.is_dir(), reason=f"{DAVIS_MINI} is not present (set REMN_REAL_DATA)"
)


def _seeded(build):
    torch.manual_seed(0)
    return build().eval()


@pytest.fixture(scope="session")
def stcn_model() -> REMN:
    """The network in STCN mode (FRM and RRM off), random weights."""
    return _seeded(lambda: build_model(load_config(REPO / "configs" / "stcn.yaml")))


@pytest.fixture(scope="session")
def remn_model() -> REMN:
    """The network with every module on, random weights, FRM at its identity initialisation."""
    return _seeded(lambda: build_model(load_config(REPO / "configs" / "remn.yaml")))


@pytest.fixture(scope="session")
def stcn_key_list() -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) pairs of STCN's released state_dict, in file order."""
    entries = []
    for line in (DATA / "stcn-state-dict-keys.txt").read_text().splitlines():
        if not line.strip():
            continue
        name, shape = line.rsplit(" (", 1)
        dims = tuple(int(d) for d in shape.rstrip(")").split(",") if d.strip())
        entries.append((name, dims))
    return entries


@pytest.fixture(scope="session")
def stcn_random_state(stcn_key_list) -> dict[str, torch.Tensor]:
    """A state_dict in STCN's layout with random values (what a released file looks like)."""
    gen = torch.Generator().manual_seed(123)
    state = {}
    for name, shape in stcn_key_list:
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(1000, dtype=torch.long)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[name] = torch.randn(shape, generator=gen) * 0.02
    return state


@pytest.fixture(scope="session")
def toy_clip() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A generated 8-frame clip at 48x64 with two objects and a look-alike distractor:
    ``(frames, masks)``, RGB uint8 and id maps (remn.data.synthetic, seed 0)."""
    from remn.data.synthetic import generate_video

    video = generate_video(0, frames=8, height=48, width=64, objects=(2, 2), distractors=(1, 1))
    return video.frames, video.masks
