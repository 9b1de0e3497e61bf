"""How surfaces look: textures (gradient, stripes, checks, blotches) in two colours, the
colours of objects, of their look-alikes and of the background."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import numpy as np

from .spec import TEXTURES


def _smooth_upsample(grid: np.ndarray, height: int, width: int, cell: float) -> np.ndarray:
    """Interpolate a coarse grid of values to (height, width) with smoothstep weights."""

    def axis(n: int) -> tuple[np.ndarray, np.ndarray]:
        pos = np.arange(n, dtype=np.float32) / np.float32(cell)
        low = pos.astype(np.int64)
        frac = pos - low
        return low, frac * frac * (3.0 - 2.0 * frac)

    rows, wy = axis(height)
    cols, wx = axis(width)
    tall = grid[rows] * (1.0 - wy)[:, None] + grid[rows + 1] * wy[:, None]
    return tall[:, cols] * (1.0 - wx)[None, :] + tall[:, cols + 1] * wx[None, :]


def _value_noise(rng: np.random.Generator, height: int, width: int, cell: float, octaves: int = 3) -> np.ndarray:
    """Blotchy noise in [0, 1]: random values on coarse grids, smoothly interpolated, octaves summed."""
    total = np.zeros((height, width), dtype=np.float32)
    weight = 0.0
    amplitude = 1.0
    for _ in range(octaves):
        cell = max(float(cell), 1.0)
        grid = rng.random((int(height / cell) + 2, int(width / cell) + 2), dtype=np.float32)
        total += np.float32(amplitude) * _smooth_upsample(grid, height, width, cell)
        weight += amplitude
        cell /= 2.0
        amplitude /= 2.0
    return total / np.float32(weight)


def _hsv(hue: float, saturation: float, value: float) -> np.ndarray:
    rgb = colorsys.hsv_to_rgb(hue % 1.0, min(max(saturation, 0.0), 1.0), min(max(value, 0.0), 1.0))
    return np.array(rgb, dtype=np.float32) * 255.0


@dataclass(frozen=True)
class Look:
    """How a surface is painted: a texture family and two colours in HSV."""

    family: str
    main: tuple[float, float, float]
    second: tuple[float, float, float]

    def colours(self) -> tuple[np.ndarray, np.ndarray]:
        return _hsv(*self.main), _hsv(*self.second)


def object_look(rng: np.random.Generator, hue: float) -> Look:
    main = (hue, rng.uniform(0.55, 0.95), rng.uniform(0.6, 1.0))
    second = (hue + rng.uniform(-0.06, 0.06), main[1] * rng.uniform(0.6, 1.0), main[2] * rng.uniform(0.35, 0.65))
    return Look(TEXTURES[int(rng.integers(len(TEXTURES)))], main, second)


def lookalike(rng: np.random.Generator, target: Look) -> Look:
    """Same texture family, nearly the same colours."""

    def nudge(colour: tuple[float, float, float]) -> tuple[float, float, float]:
        return (
            colour[0] + rng.uniform(-0.02, 0.02),
            colour[1] * rng.uniform(0.92, 1.08),
            colour[2] * rng.uniform(0.92, 1.08),
        )

    return Look(target.family, nudge(target.main), nudge(target.second))


def background_look(rng: np.random.Generator) -> Look:
    hue = rng.random()
    main = (hue, rng.uniform(0.1, 0.5), rng.uniform(0.35, 0.8))
    second = (hue + rng.uniform(-0.15, 0.15), rng.uniform(0.1, 0.5), rng.uniform(0.25, 0.8))
    return Look(TEXTURES[int(rng.integers(len(TEXTURES)))], main, second)


def paint(rng: np.random.Generator, look: Look, height: int, width: int, feature: float) -> np.ndarray:
    """A (height, width, 3) float32 texture; ``feature`` is the size of its large-scale pattern in pixels."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0.0, np.pi)
    along = xs * np.float32(math.cos(angle)) + ys * np.float32(math.sin(angle))
    across = -xs * np.float32(math.sin(angle)) + ys * np.float32(math.cos(angle))
    if look.family == "gradient":
        mix = (along - along.min()) / np.float32(max(float(np.ptp(along)), 1e-6))
        mix = 0.7 * mix + 0.3 * _value_noise(rng, height, width, cell=max(feature * 0.5, 2.0))
    elif look.family == "stripes":
        period = feature * rng.uniform(0.25, 0.55)
        mix = 0.5 + 0.5 * np.tanh(2.5 * np.sin(along * np.float32(2 * np.pi / period)))
    elif look.family == "checks":
        period = feature * rng.uniform(0.3, 0.6)
        wave = np.sin(along * np.float32(2 * np.pi / period)) * np.sin(across * np.float32(2 * np.pi / period))
        mix = 0.5 + 0.5 * np.tanh(4.0 * wave)
    elif look.family == "blotches":
        noise = _value_noise(rng, height, width, cell=max(feature * rng.uniform(0.2, 0.4), 2.0))
        mix = np.clip((noise - 0.5) * 3.0 + 0.5, 0.0, 1.0)
    else:
        raise ValueError(f"unknown texture family {look.family!r}; expected one of {TEXTURES}")
    main, second = look.colours()
    mix = mix.astype(np.float32)[..., None]
    image = main * (1.0 - mix) + second * mix
    grain = (_value_noise(rng, height, width, cell=2.0, octaves=1) - 0.5) * np.float32(20.0)
    return np.clip(image + grain[..., None], 0.0, 255.0).astype(np.float32)
