"""Shared fixtures: full-size networks are built once per test session (about a second each)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from remn.config import load_config
from remn.model import REMN, build_model

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


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
