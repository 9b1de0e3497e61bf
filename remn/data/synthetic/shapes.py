"""Shapes: star-shaped contours (ellipse, polygon, blob) and the layers that carry them: a
:class:`Sprite` is how a drawn thing looks, a :class:`Layer` adds the motion planned for a
whole video; :mod:`.stream` has a layer whose motion is made as it goes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .appearance import Look
from .spec import SHAPES

CONTOUR_SAMPLES = 256  # angles at which a contour's radius is stored
CONTOUR_ANGLES = np.linspace(-np.pi, np.pi, CONTOUR_SAMPLES, endpoint=False)


def make_contour(rng: np.random.Generator, kind: str, radius: float) -> np.ndarray:
    """Radius of a star-shaped contour at each of CONTOUR_ANGLES; its largest value is ``radius``."""
    phi = CONTOUR_ANGLES
    if kind == "ellipse":
        a, b = radius, radius * rng.uniform(0.55, 1.0)
        tilt = rng.uniform(0.0, np.pi)
        r = a * b / np.sqrt((b * np.cos(phi - tilt)) ** 2 + (a * np.sin(phi - tilt)) ** 2)
    elif kind == "polygon":
        count = int(rng.integers(3, 8))
        spacing = 2 * np.pi / count
        corners = np.arange(count) * spacing + rng.uniform(-np.pi, np.pi) + rng.uniform(-0.2, 0.2, count) * spacing
        corners = np.sort(np.mod(corners + np.pi, 2 * np.pi) - np.pi)
        lengths = radius * rng.uniform(0.7, 1.0, count)
        vx, vy = lengths * np.cos(corners), lengths * np.sin(corners)
        start = (np.searchsorted(corners, phi, side="right") - 1) % count
        end = (start + 1) % count
        ex, ey = vx[end] - vx[start], vy[end] - vy[start]
        # the ray at angle phi meets the edge start->end where cross(ray, edge) scales cross(start, edge)
        r = (vx[start] * ey - vy[start] * ex) / (np.cos(phi) * ey - np.sin(phi) * ex)
    elif kind == "blob":
        r = np.ones_like(phi)
        for k in range(2, 6):
            r = r + rng.uniform(0.0, 0.3 / k) * np.cos(k * phi + rng.uniform(0, 2 * np.pi))
    else:
        raise ValueError(f"unknown shape {kind!r}; expected one of {SHAPES}")
    return (r * (radius / r.max())).astype(np.float32)


def make_wobble(rng: np.random.Generator, deform: float) -> np.ndarray:
    """The contour's wobble (:attr:`Sprite.wobble`): harmonics 2, 3 and 4, their amplitudes
    (scaled by ``deform``), phases and angular speeds."""
    return np.stack(
        [
            np.array([2.0, 3.0, 4.0]),
            rng.uniform(0.015, 0.05, 3) * deform,
            rng.uniform(0, 2 * np.pi, 3),
            rng.uniform(0.15, 0.4, 3) * rng.choice([-1.0, 1.0], 3),
        ]
    )


@dataclass
class Sprite:
    """One drawn thing (labelled object or distractor) as it looks; :meth:`pose` says where it is."""

    key: int  # object id, or -1, -2, ... for a distractor
    shape: str
    look: Look
    contour: np.ndarray  # radius per contour angle at scale 1
    texture: np.ndarray  # (S, S, 3) in the object's own coordinates, centred
    start: int  # first frame it is drawn
    wobble: np.ndarray  # (4, 3): rows harmonic, amplitude, phase, angular speed; a column per harmonic

    def contour_at(self, t: int) -> np.ndarray:
        k, amp, phase, rate = self.wobble
        bend = (
            amp[:, None]
            * np.sin(k[:, None] * CONTOUR_ANGLES[None, :] + phase[:, None] + rate[:, None] * (t - self.start))
        ).sum(axis=0)
        return self.contour * (1.0 + bend.astype(np.float32))

    def pose(self, t: int) -> tuple[float, float, float, float]:
        """Centre x, centre y (pixel-centre coordinates), scale and angle (radians) at frame t."""
        raise NotImplementedError


@dataclass
class Layer(Sprite):
    """A sprite with its motion planned for every frame of a video."""

    centres: np.ndarray  # (T, 2) x, y in pixel-centre coordinates
    angles: np.ndarray  # (T,) radians
    scales: np.ndarray  # (T,)
    gone: tuple[int, int] | None = None

    def pose(self, t: int) -> tuple[float, float, float, float]:
        cx, cy = self.centres[t]
        return cx, cy, float(self.scales[t]), float(self.angles[t])

    def reach(self) -> float:
        """Largest distance of any pixel of the object from its centre over the whole video."""
        return float(self.contour.max() * self.scales.max() * (1.0 + self.wobble[1].sum()) + 1.5)
