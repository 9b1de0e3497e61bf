"""Procedural videos for tests, the demo and benchmarks.

Each video is a textured background with several textured objects moving over it. The
hard cases of video object segmentation are built in and recorded, so that tests can check
them and a model can be scored on them:

* motion with acceleration (smooth paths through random key points), rotation and scale change;
* non-rigid deformation: the contour wobbles a little from frame to frame;
* occlusion: a depth order; an object's mask holds only its visible pixels;
* objects that leave the frame and come back (``SyntheticVideo.gone`` says when they are out);
* objects that enter mid-video (``SyntheticVideo.first_frame``);
* look-alike distractors: unlabelled objects with the texture family and nearly the colour
  of a labelled one.

Everything comes from one seed, bit for bit. An object keeps its texture and colour for the
whole video and moves a few pixels per frame at 256x256, so that a small model trained for
minutes on CPU can learn to track it.

In memory::

    video = generate_video(0, frames=30, height=256, width=256, objects=(2, 3))
    video.frames[t]   # (H, W, 3) uint8
    video.masks[t]    # (H, W) uint8 object ids, 0 = background

On disk, in the layout of DAVIS 2017, YouTube-VOS 2019 or a generic folder::

    remn generate OUT --videos 50 --frames 30 --size 256 256 --layout davis

``write_dataset`` describes the three layouts.
"""

from __future__ import annotations

import colorsys
import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from tqdm import tqdm

from remn.data.masks import save_image, save_mask
from remn.errors import EXIT_USAGE, REMNError
from remn.outputs import OutputFolder

__all__ = [
    "LAYOUTS",
    "SHAPES",
    "TEXTURES",
    "SyntheticSpec",
    "GenerationError",
    "SyntheticVideo",
    "generate_video",
    "video_rng",
    "layout_spec",
    "write_dataset",
    "frame_name",
]

LAYOUTS = ("davis", "youtube", "generic")
SHAPES = ("ellipse", "polygon", "blob")
TEXTURES = ("gradient", "stripes", "checks", "blotches")
ID_STYLES = ("contiguous", "sparse")

YOUTUBE_STRIDE = 5  # YouTube-VOS annotates and ships every 5th frame
JPEG_QUALITY = 90
MANIFEST_NAME = "synthetic.json"
COMMAND = "remn generate"
MAX_ATTEMPTS = 50

_CONTOUR_SAMPLES = 256  # angles at which a contour's radius is stored
_CONTOUR_ANGLES = np.linspace(-np.pi, np.pi, _CONTOUR_SAMPLES, endpoint=False)


# --------------------------------------------------------------------------------------------
# What to generate


@dataclass(frozen=True)
class SyntheticSpec:
    """The knobs of the generator, shared by :func:`generate_video`, :func:`write_dataset` and the CLI."""

    frames: int = 30
    """Frames per video."""
    height: int = 256
    width: int = 256
    objects: tuple[int, int] = (1, 3)
    """Labelled objects per video, drawn uniformly from this inclusive range."""
    distractors: tuple[int, int] = (0, 2)
    """Unlabelled look-alikes per video (inclusive range)."""
    enter_late: float = 0.0
    """Probability that an object other than the first appears after frame 0."""
    entry_stride: int = 1
    """Late objects appear on a multiple of this frame index (5 for YouTube-VOS's annotated frames)."""
    leave: float = 0.3
    """Probability that an object leaves the frame completely and comes back, when the video is long enough."""
    speed: float = 3.0
    """Typical speed in pixels per frame at a 256-pixel shorter side (scaled with the frame size);
    also scales rotation. Objects that leave the frame move faster while out of view or on their way
    (twice this, more in short videos, never over 10 pixels per frame at 256) to be back before the end."""
    deform: float = 1.0
    """Strength of the contour wobble; 0 makes objects rigid."""
    noise: float = 2.0
    """Standard deviation of the per-frame pixel noise (0..255 scale)."""
    id_style: str = "contiguous"
    """``contiguous`` ids 1..K, or ``sparse``: K distinct ids drawn from 1..255 (e.g. 3, 7, 200)."""

    def __post_init__(self) -> None:
        for name in ("objects", "distractors"):
            value = getattr(self, name)
            if isinstance(value, (int, np.integer)):
                value = (int(value), int(value))
            value = tuple(int(v) for v in value)
            object.__setattr__(self, name, value)
            if len(value) != 2 or value[0] > value[1] or value[0] < 0:
                raise ValueError(f"SyntheticSpec.{name} must be an inclusive range (low, high) with "
                                 f"0 <= low <= high, got {value}")
        if self.objects[0] < 1 or self.objects[1] > 255:
            raise ValueError(f"SyntheticSpec.objects must lie in 1..255, got {self.objects}")
        if self.frames < 1:
            raise ValueError(f"SyntheticSpec.frames must be at least 1, got {self.frames}")
        if self.height < 16 or self.width < 16:
            raise ValueError(f"SyntheticSpec.height and .width must be at least 16 pixels, got "
                             f"height={self.height}, width={self.width}")
        for name in ("enter_late", "leave"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"SyntheticSpec.{name} is a probability, got {getattr(self, name)}")
        if self.entry_stride < 1:
            raise ValueError(f"SyntheticSpec.entry_stride must be at least 1, got {self.entry_stride}")
        for name in ("speed", "deform", "noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"SyntheticSpec.{name} must not be negative, got {getattr(self, name)}")
        if self.id_style not in ID_STYLES:
            raise ValueError(f"SyntheticSpec.id_style must be one of {ID_STYLES}, got {self.id_style!r}")

    def to_dict(self) -> dict:
        """Plain JSON-ready values (tuples become lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def layout_spec(layout: str, spec: SyntheticSpec | None = None, **changes) -> SyntheticSpec:
    """The spec a layout writes: its defaults when ``spec`` is None, then the layout's own rules.

    * ``davis``: every object is in frame 0 (``enter_late`` 0) and ids are 1..K;
    * ``youtube``: defaults to 2-3 objects, late entries likely, sparse ids; late entries always
      fall on every-5th frames, the only frames YouTube-VOS annotates;
    * ``generic``: defaults to late entries at probability 0.5.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if spec is None:
        defaults = {"davis": {},
                    "youtube": {"objects": (2, 3), "enter_late": 0.75, "entry_stride": YOUTUBE_STRIDE,
                                "id_style": "sparse"},
                    "generic": {"enter_late": 0.5}}[layout]
        spec = SyntheticSpec(**defaults)
    spec = replace(spec, **changes) if changes else spec
    if layout == "davis":
        spec = replace(spec, enter_late=0.0, id_style="contiguous")
    elif layout == "youtube" and spec.entry_stride % YOUTUBE_STRIDE:
        spec = replace(spec, entry_stride=math.lcm(spec.entry_stride, YOUTUBE_STRIDE))
    return spec


@dataclass(frozen=True, eq=False)  # arrays inside: compare fields explicitly
class SyntheticVideo:
    """A generated video with its ground truth and what the generator did to make it hard."""

    frames: list[np.ndarray]
    """RGB frames, (H, W, 3) uint8."""
    masks: list[np.ndarray]
    """Object ids per pixel, (H, W) uint8, 0 = background (distractors are background)."""
    ids: tuple[int, ...]
    """Labelled object ids, ascending."""
    first_frame: dict[int, int]
    """Object id -> the first frame where it has pixels."""
    categories: dict[int, str]
    """Object id -> its shape (one of SHAPES)."""
    gone: dict[int, tuple[int, int]]
    """Object id -> (first, last) frames, inclusive, of the run it spends wholly outside the frame
    (objects that leave and come back only; it is in view before and after)."""
    distractors: dict[int, int]
    """Distractor key (-1, -2, ...) -> the id of the object it imitates."""
    depth: tuple[int, ...]
    """Layer keys (object ids and distractor keys) from back to front."""
    spec: SyntheticSpec
    layers: dict[int, list[np.ndarray]] | None = None
    """Only when asked for: each layer's full silhouette per frame (bool, clipped to the frame,
    before occlusion). Empty frames before a late object's entry are all False."""

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def video_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for video ``index`` of a dataset made from ``seed``: independent of
    how many videos there are and of which worker makes it."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


# --------------------------------------------------------------------------------------------
# Textures and colours


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
class _Look:
    """How a surface is painted: a texture family and two colours in HSV."""

    family: str
    main: tuple[float, float, float]
    second: tuple[float, float, float]

    def colours(self) -> tuple[np.ndarray, np.ndarray]:
        return _hsv(*self.main), _hsv(*self.second)


def _object_look(rng: np.random.Generator, hue: float) -> _Look:
    main = (hue, rng.uniform(0.55, 0.95), rng.uniform(0.6, 1.0))
    second = (hue + rng.uniform(-0.06, 0.06), main[1] * rng.uniform(0.6, 1.0), main[2] * rng.uniform(0.35, 0.65))
    return _Look(TEXTURES[int(rng.integers(len(TEXTURES)))], main, second)


def _lookalike(rng: np.random.Generator, target: _Look) -> _Look:
    """Same texture family, nearly the same colours."""
    def nudge(colour: tuple[float, float, float]) -> tuple[float, float, float]:
        return (colour[0] + rng.uniform(-0.02, 0.02), colour[1] * rng.uniform(0.92, 1.08),
                colour[2] * rng.uniform(0.92, 1.08))

    return _Look(target.family, nudge(target.main), nudge(target.second))


def _background_look(rng: np.random.Generator) -> _Look:
    hue = rng.random()
    main = (hue, rng.uniform(0.1, 0.5), rng.uniform(0.35, 0.8))
    second = (hue + rng.uniform(-0.15, 0.15), rng.uniform(0.1, 0.5), rng.uniform(0.25, 0.8))
    return _Look(TEXTURES[int(rng.integers(len(TEXTURES)))], main, second)


def _paint(rng: np.random.Generator, look: _Look, height: int, width: int, feature: float) -> np.ndarray:
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


# --------------------------------------------------------------------------------------------
# Shapes


def _contour(rng: np.random.Generator, kind: str, radius: float) -> np.ndarray:
    """Radius of a star-shaped contour at each of _CONTOUR_ANGLES; its largest value is ``radius``."""
    phi = _CONTOUR_ANGLES
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


@dataclass
class _Layer:
    """One drawn thing (labelled object or distractor) and its planned motion."""

    key: int
    shape: str
    look: _Look
    contour: np.ndarray  # radius per contour angle at scale 1
    texture: np.ndarray  # (S, S, 3) in the object's own coordinates, centred
    start: int  # first frame it is drawn
    centres: np.ndarray  # (T, 2) x, y in pixel-centre coordinates
    angles: np.ndarray  # (T,) radians
    scales: np.ndarray  # (T,)
    wobble: np.ndarray  # (4, 3): rows harmonic, amplitude, phase, angular speed; a column per harmonic
    gone: tuple[int, int] | None = None

    def contour_at(self, t: int) -> np.ndarray:
        k, amp, phase, rate = self.wobble
        bend = (amp[:, None] * np.sin(k[:, None] * _CONTOUR_ANGLES[None, :] + phase[:, None]
                                      + rate[:, None] * (t - self.start))).sum(axis=0)
        return self.contour * (1.0 + bend.astype(np.float32))

    def reach(self) -> float:
        """Largest distance of any pixel of the object from its centre over the whole video."""
        return float(self.contour.max() * self.scales.max() * (1.0 + self.wobble[1].sum()) + 1.5)


# --------------------------------------------------------------------------------------------
# Motion


def _hermite(times: np.ndarray, points: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Smooth path through key points (cubic Hermite, finite-difference tangents) sampled at ``at``."""
    if len(times) == 1:
        return np.repeat(points[:1], len(at), axis=0)
    tangents = np.empty_like(points)
    tangents[0] = (points[1] - points[0]) / (times[1] - times[0])
    tangents[-1] = (points[-1] - points[-2]) / (times[-1] - times[-2])
    if len(times) > 2:
        tangents[1:-1] = (points[2:] - points[:-2]) / (times[2:] - times[:-2])[:, None]
    segment = np.clip(np.searchsorted(times, at, side="right") - 1, 0, len(times) - 2)
    span = (times[segment + 1] - times[segment]).astype(np.float64)
    s = ((at - times[segment]) / span)[:, None]
    s2, s3 = s * s, s * s * s
    return ((2 * s3 - 3 * s2 + 1) * points[segment] + (s3 - 2 * s2 + s) * span[:, None] * tangents[segment]
            + (-2 * s3 + 3 * s2) * points[segment + 1] + (s3 - s2) * span[:, None] * tangents[segment + 1])


def _reflect(value: float, low: float, high: float) -> tuple[float, bool]:
    """Mirror a coordinate back into [low, high]; says whether it bounced."""
    if high <= low:
        return (low + high) / 2, False
    bounced = False
    if value < low:
        value, bounced = 2 * low - value, True
    if value > high:
        value, bounced = 2 * high - value, True
    return float(min(max(value, low), high)), bounced


def _wander(rng: np.random.Generator, start: np.ndarray, heading: float, t0: int, last: int, speed: float,
            box: tuple[float, float, float, float]) -> list[tuple[int, np.ndarray]]:
    """Key points of a path that drifts with a slowly turning heading and bounces inside ``box``
    (x_low, x_high, y_low, y_high), from frame t0 until at least frame ``last``."""
    keys = [(t0, np.asarray(start, dtype=np.float64))]
    t, position = t0, keys[0][1]
    while t < last:
        gap = int(rng.integers(5, 10))
        step = speed * gap * rng.uniform(0.6, 1.0)
        heading += rng.normal(0.0, 0.7)
        x, bounce_x = _reflect(position[0] + step * math.cos(heading), box[0], box[1])
        y, bounce_y = _reflect(position[1] + step * math.sin(heading), box[2], box[3])
        if bounce_x:
            heading = math.pi - heading
        if bounce_y:
            heading = -heading
        t += gap
        position = np.array([x, y])
        keys.append((t, position))
    return keys


def _edge_point(edge: int, depth: float, along: float, width: int, height: int) -> np.ndarray:
    """A point ``depth`` pixels inside edge (0 left, 1 right, 2 top, 3 bottom; negative = outside)
    at ``along`` pixels along it."""
    if edge == 0:
        return np.array([depth, along])
    if edge == 1:
        return np.array([width - 1 - depth, along])
    if edge == 2:
        return np.array([along, depth])
    return np.array([along, height - 1 - depth])


def _inward(edge: int) -> float:
    return (0.0, math.pi, math.pi / 2, -math.pi / 2)[edge]


def _plan_path(rng: np.random.Generator, spec: SyntheticSpec, start: int, radius: float, reach: float,
               leave: bool, from_edge: bool) -> tuple[np.ndarray, tuple[int, int] | None]:
    """Centres (T, 2) from frame ``start`` on, and the stretch spent outside the frame if it leaves."""
    width, height, last = spec.width, spec.height, spec.frames - 1
    unit = min(width, height) / 256.0
    speed = spec.speed * unit * rng.uniform(0.5, 1.2)
    margin = 0.5 * radius
    box = (margin, width - 1 - margin, margin, height - 1 - margin)
    edge = int(rng.integers(4))
    edge_length = height if edge < 2 else width

    def along_edge() -> float:
        low, high = radius, edge_length - 1 - radius
        return rng.uniform(low, high) if high > low else (edge_length - 1) / 2

    gone = None
    keys: list[tuple[int, np.ndarray]] | None = None
    if leave:
        keys, gone = _plan_exit(rng, spec, start, radius, reach, speed, edge, along_edge, box) or (None, None)
    if keys is None:
        if from_edge:
            first = _edge_point(edge, radius * rng.uniform(0.4, 1.0), along_edge(), width, height)
            heading = _inward(edge) + rng.uniform(-0.6, 0.6)
        else:
            low_x, high_x = radius, width - 1 - radius
            low_y, high_y = radius, height - 1 - radius
            first = np.array([rng.uniform(low_x, high_x) if high_x > low_x else (width - 1) / 2,
                              rng.uniform(low_y, high_y) if high_y > low_y else (height - 1) / 2])
            heading = rng.uniform(-np.pi, np.pi)
        keys = _wander(rng, first, heading, start, last, speed, box)
    times = np.array([k[0] for k in keys], dtype=np.float64)
    points = np.stack([k[1] for k in keys])
    centres = np.zeros((spec.frames, 2))
    centres[start:] = _hermite(times, points, np.arange(start, spec.frames, dtype=np.float64))
    return centres, gone


def _plan_exit(rng: np.random.Generator, spec: SyntheticSpec, start: int, radius: float, reach: float,
               speed: float, edge: int, along_edge: Callable[[], float], box: tuple[float, float, float, float]
               ) -> tuple[list[tuple[int, np.ndarray]], tuple[int, int]] | None:
    """Key points for an object that starts near ``edge``, leaves through it, stays out a few
    frames and comes back; None when the video is too short for it at a moderate speed."""
    width, height, last = spec.width, spec.height, spec.frames - 1
    available = last - start
    out_frames = int(rng.integers(1, 4))
    depth_in, depth_back = radius * rng.uniform(0.6, 1.2), radius * rng.uniform(0.6, 1.2)
    beyond = reach + 1.0 + radius * rng.uniform(0.0, 0.3)
    way_out, way_back = depth_in + beyond, beyond + depth_back
    fastest = 0.04 * min(width, height)  # 10 pixels per frame at 256
    pace = max(2.0 * speed, (way_out + way_back) / max(available - out_frames, 1))
    while math.ceil(way_out / pace) + out_frames + math.ceil(way_back / pace) > available:
        pace *= 1.1
        if pace > fastest:
            return None
    exit_frames, return_frames = math.ceil(way_out / pace), math.ceil(way_back / pace)
    slack = available - exit_frames - out_frames - return_frames
    wait = int(rng.integers(0, slack // 2 + 1))
    along = along_edge()
    keys = [(start, _edge_point(edge, depth_in, along, width, height))]
    if wait:
        along_low, along_high = (box[2], box[3]) if edge < 2 else (box[0], box[1])
        drift = float(np.clip(along + rng.uniform(-1, 1) * speed * wait, along_low, along_high))
        keys.append((start + wait, _edge_point(edge, depth_in, drift, width, height)))
        along = drift
    first_out = start + wait + exit_frames
    last_out = first_out + out_frames - 1
    keys.append((first_out, _edge_point(edge, -beyond, along + rng.uniform(-1, 1) * radius, width, height)))
    if out_frames > 1:
        keys.append((last_out, _edge_point(edge, -beyond, along + rng.uniform(-1, 1) * radius, width, height)))
    back = last_out + return_frames
    back_at = _edge_point(edge, depth_back, along + rng.uniform(-1, 1) * radius, width, height)
    keys.append((back, back_at))
    if back < last:
        keys.extend(_wander(rng, back_at, _inward(edge) + rng.uniform(-0.6, 0.6), back, last, speed, box)[1:])
    return keys, (first_out, last_out)


# --------------------------------------------------------------------------------------------
# Drawing


def _draw(layer: _Layer, t: int, height: int, width: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    """The layer's silhouette at frame t inside its bounding box, and the colours of its pixels."""
    cx, cy = layer.centres[t]
    scale, angle = float(layer.scales[t]), float(layer.angles[t])
    contour = layer.contour_at(t)
    bound = float(contour.max()) * scale + 1.5
    x0, x1 = max(0, math.floor(cx - bound)), min(width, math.ceil(cx + bound) + 1)
    y0, y1 = max(0, math.floor(cy - bound)), min(height, math.ceil(cy + bound) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    dx = (np.arange(x0, x1, dtype=np.float32) - np.float32(cx))[None, :]
    dy = (np.arange(y0, y1, dtype=np.float32) - np.float32(cy))[:, None]
    cos, sin = np.float32(math.cos(angle) / scale), np.float32(math.sin(angle) / scale)
    u = cos * dx + sin * dy  # the object's own coordinates: undo rotation and scale
    v = cos * dy - sin * dx
    phi = np.arctan2(v, u)
    position = (phi + np.float32(np.pi)) * np.float32(_CONTOUR_SAMPLES / (2 * np.pi))
    low = np.floor(position).astype(np.int64)
    frac = position - low
    low %= _CONTOUR_SAMPLES
    limit = contour[low] * (1.0 - frac) + contour[(low + 1) % _CONTOUR_SAMPLES] * frac
    inside = u * u + v * v <= limit * limit
    if not inside.any():
        return None
    size = layer.texture.shape[0]
    tu = np.clip(u[inside] + np.float32(size / 2), 0, size - 1.001)
    tv = np.clip(v[inside] + np.float32(size / 2), 0, size - 1.001)
    iu, iv = tu.astype(np.int64), tv.astype(np.int64)
    fu, fv = (tu - iu)[:, None], (tv - iv)[:, None]
    tex = layer.texture
    colours = ((tex[iv, iu] * (1 - fu) + tex[iv, iu + 1] * fu) * (1 - fv)
               + (tex[iv + 1, iu] * (1 - fu) + tex[iv + 1, iu + 1] * fu) * fv)
    return (slice(y0, y1), slice(x0, x1)), inside, colours


def _make_layer(rng: np.random.Generator, spec: SyntheticSpec, key: int, look: _Look, start: int, leave: bool,
                from_edge: bool, radius: float | None = None) -> _Layer:
    unit = min(spec.width, spec.height)
    radius = radius if radius is not None else unit * rng.uniform(0.08, 0.15)
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    contour = _contour(rng, shape, radius)
    size = 2 * math.ceil(radius * 1.2) + 4
    texture = _paint(rng, look, size, size, feature=2 * radius)
    frames = np.arange(spec.frames, dtype=np.float64) - start
    turn = spec.speed / 3.0
    angles = (rng.uniform(0, 2 * np.pi) + np.radians(rng.uniform(-2.0, 2.0) * turn) * frames
              + 0.5 * np.radians(rng.uniform(-0.04, 0.04) * turn) * frames ** 2)
    scales = np.exp(rng.uniform(0.0, 0.15) * np.sin(2 * np.pi * frames / rng.uniform(25, 60) + rng.uniform(0, 2 * np.pi)))
    scales = scales / scales[start]
    wobble = np.stack([np.array([2.0, 3.0, 4.0]),
                       rng.uniform(0.015, 0.05, 3) * spec.deform,
                       rng.uniform(0, 2 * np.pi, 3),
                       rng.uniform(0.15, 0.4, 3) * rng.choice([-1.0, 1.0], 3)])
    layer = _Layer(key, shape, look, contour, texture, start, np.zeros((spec.frames, 2)), angles.astype(np.float64),
                   scales, wobble)
    layer.centres, layer.gone = _plan_path(rng, spec, start, radius, layer.reach(), leave, from_edge)
    return layer


def _late_start(rng: np.random.Generator, spec: SyntheticSpec) -> int:
    """A frame after 0 on the entry stride, preferring the first 70% of the video; 0 if none exists."""
    candidates = list(range(spec.entry_stride, spec.frames, spec.entry_stride))
    early = [t for t in candidates if t <= 0.7 * (spec.frames - 1)]
    pool = early or candidates
    return int(pool[int(rng.integers(len(pool)))]) if pool else 0


def _out_of_view(planned: tuple[int, int], area: np.ndarray, start: int) -> tuple[int, int]:
    """The whole run of frames around the planned exit in which no pixel of the object is in the frame."""
    first, last = planned
    while first - 1 > start and area[first - 1] == 0:
        first -= 1
    while last + 1 < len(area) and area[last + 1] == 0:
        last += 1
    return first, last


def _attempt(rng: np.random.Generator, spec: SyntheticSpec, keep_layers: bool) -> SyntheticVideo | None:
    """One try at a video; None when an object is not visible enough where it must be."""
    height, width, count = spec.height, spec.width, spec.frames
    n_objects = int(rng.integers(spec.objects[0], spec.objects[1] + 1))
    n_distractors = int(rng.integers(spec.distractors[0], spec.distractors[1] + 1))
    if spec.id_style == "contiguous":
        ids = list(range(1, n_objects + 1))
    else:
        ids = [int(i) for i in rng.choice(np.arange(1, 256), size=n_objects, replace=False)]
    background = _paint(rng, _background_look(rng), height, width, feature=min(height, width))
    first_hue = rng.random()
    objects: list[_Layer] = []
    for index, object_id in enumerate(ids):
        hue = first_hue + index / n_objects + rng.uniform(-0.05, 0.05)
        start = _late_start(rng, spec) if index > 0 and rng.random() < spec.enter_late else 0
        leave = rng.random() < spec.leave
        objects.append(_make_layer(rng, spec, object_id, _object_look(rng, hue), start, leave, from_edge=start > 0))
    distractors: dict[int, int] = {}
    fakes: list[_Layer] = []
    for index in range(n_distractors):
        target = objects[int(rng.integers(n_objects))]
        key = -(index + 1)
        distractors[key] = target.key
        size = float(target.contour.max()) * rng.uniform(0.8, 1.2)
        fakes.append(_make_layer(rng, spec, key, _lookalike(rng, target.look), 0, False, False, radius=size))
    layers = objects + fakes
    order = [layers[i] for i in rng.permutation(len(layers))]

    frames, masks = [], []
    amodal_area = {layer.key: np.zeros(count, dtype=np.int64) for layer in objects}
    silhouettes = {layer.key: [] for layer in layers} if keep_layers else None
    for t in range(count):
        canvas = background.copy()
        labels = np.zeros((height, width), dtype=np.uint8)
        for layer in order:
            drawn = _draw(layer, t, height, width) if t >= layer.start else None
            if silhouettes is not None:
                full = np.zeros((height, width), dtype=bool)
                if drawn is not None:
                    full[drawn[0]] = drawn[1]
                silhouettes[layer.key].append(full)
            if drawn is None:
                continue
            where, inside, colours = drawn
            canvas[where][inside] = colours
            labels[where][inside] = max(layer.key, 0)
            if layer.key > 0:
                amodal_area[layer.key][t] = int(inside.sum())
        if spec.noise > 0:
            noise = rng.standard_normal(canvas.shape, dtype=np.float32)
            noise *= np.float32(spec.noise)
            canvas += noise
        np.clip(canvas, 0.0, 255.0, out=canvas)
        canvas += np.float32(0.5)  # round to nearest on the cast below
        frames.append(canvas.astype(np.uint8))
        masks.append(labels)

    least = max(6, int(0.002 * height * width))
    for layer in objects:
        visible = np.array([int((m == layer.key).sum()) for m in masks])
        if visible[layer.start] < max(least, 0.3 * amodal_area[layer.key][layer.start]):
            return None
        if layer.gone is not None and visible[layer.gone[1] + 1:].max(initial=0) < least:
            return None
    return SyntheticVideo(
        frames=frames, masks=masks, ids=tuple(sorted(ids)),
        first_frame={layer.key: layer.start for layer in objects},
        categories={layer.key: layer.shape for layer in objects},
        gone={layer.key: _out_of_view(layer.gone, amodal_area[layer.key], layer.start)
              for layer in objects if layer.gone is not None},
        distractors=distractors, depth=tuple(layer.key for layer in order), spec=spec, layers=silhouettes)


class GenerationError(REMNError, RuntimeError):
    """The generator cannot make what its settings ask for (objects that do not fit the frames):
    exit status 2, as for any other bad setting."""

    exit_status = EXIT_USAGE


def generate_video(rng_or_seed: int | np.random.Generator | np.random.SeedSequence = 0,
                   frames: int | None = None, height: int | None = None, width: int | None = None, *,
                   spec: SyntheticSpec | None = None, layers: bool = False, **knobs) -> SyntheticVideo:
    """Generate one video.

    Starts from ``spec`` (default :class:`SyntheticSpec()`); ``frames``, ``height``, ``width`` and
    any other keyword named like a spec field (``objects=(2, 3)``, ``enter_late=0.5`` ...) replace
    its values. ``layers=True`` keeps every layer's full silhouette per frame (for tests and figures).
    The same seed or generator state gives the same video, bit for bit.
    """
    spec = spec if spec is not None else SyntheticSpec()
    sizes = {name: value for name, value in (("frames", frames), ("height", height), ("width", width))
             if value is not None}
    if sizes or knobs:
        unknown = sorted(set(knobs) - set(SyntheticSpec.__dataclass_fields__))
        if unknown:
            raise TypeError(f"generate_video got unknown options {unknown}; valid ones are the fields of "
                            f"SyntheticSpec: {sorted(SyntheticSpec.__dataclass_fields__)}")
        spec = replace(spec, **sizes, **knobs)
    rng = rng_or_seed if isinstance(rng_or_seed, np.random.Generator) else np.random.default_rng(rng_or_seed)
    for _ in range(MAX_ATTEMPTS):
        video = _attempt(rng, spec, layers)
        if video is not None:
            return video
    raise GenerationError(f"could not place the objects visibly in {MAX_ATTEMPTS} tries ({spec.objects[0]} to "
                          f"{spec.objects[1]} objects and {spec.distractors[0]} to {spec.distractors[1]} distractors "
                          f"in {spec.height}x{spec.width} frames); use larger frames (--size) or fewer objects "
                          "(--objects) and distractors (--distractors)")


# --------------------------------------------------------------------------------------------
# Writing datasets


def frame_name(layout: str, index: int) -> str:
    """A frame's file name without extension: ``00005`` (DAVIS, YouTube-VOS) or ``frame_6`` (generic,
    numbered from 1 so that names do not sort lexically)."""
    return f"frame_{index + 1}" if layout == "generic" else f"{index:05d}"


def _only(mask: np.ndarray, keep: Sequence[int]) -> np.ndarray:
    return np.where(np.isin(mask, list(keep)), mask, 0).astype(np.uint8)


def _appearances(video: SyntheticVideo) -> dict[int, list[int]]:
    """Frame index -> ids that first appear there."""
    out: dict[int, list[int]] = {}
    for object_id, t in sorted(video.first_frame.items(), key=lambda item: (item[1], item[0])):
        out.setdefault(t, []).append(object_id)
    return out


def _write_davis(root: Path, name: str, video: SyntheticVideo) -> None:
    for t, (frame, mask) in enumerate(zip(video.frames, video.masks)):
        save_image(root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg", frame, quality=JPEG_QUALITY)
        save_mask(root / "Annotations" / "480p" / name / f"{t:05d}.png", mask)


def _write_youtube(root: Path, name: str, video: SyntheticVideo, split: str) -> None:
    part = root / ("valid" if split == "val" else "train")
    for t in range(0, video.num_frames, YOUTUBE_STRIDE):
        save_image(part / "JPEGImages" / name / f"{t:05d}.jpg", video.frames[t], quality=JPEG_QUALITY)
        if split != "val":
            save_mask(part / "Annotations" / name / f"{t:05d}.png", video.masks[t])
    if split != "val":
        return
    for t, new_ids in _appearances(video).items():
        save_mask(part / "Annotations" / name / f"{t:05d}.png", _only(video.masks[t], new_ids))
    for t, (frame, mask) in enumerate(zip(video.frames, video.masks)):
        save_image(root / "all_frames" / "valid_all_frames" / "JPEGImages" / name / f"{t:05d}.jpg", frame,
                   quality=JPEG_QUALITY)
        save_mask(root / "valid_gt" / "Annotations" / name / f"{t:05d}.png", mask)


def _write_generic(root: Path, name: str, video: SyntheticVideo) -> None:
    for t, (frame, mask) in enumerate(zip(video.frames, video.masks)):
        save_image(root / "JPEGImages" / name / f"{frame_name('generic', t)}.jpg", frame, quality=JPEG_QUALITY)
        save_mask(root / "GroundTruth" / name / f"{frame_name('generic', t)}.png", mask)
    for t, new_ids in _appearances(video).items():
        save_mask(root / "Annotations" / name / f"{frame_name('generic', t)}.png", _only(video.masks[t], new_ids))


def _write_video(job: tuple) -> dict:
    """Generate video ``index`` and write it; returns its manifest entry (runs in a worker)."""
    root, layout, spec, seed, index, name, split = job
    video = generate_video(video_rng(seed, index), spec=spec)
    root = Path(root)
    if layout == "davis":
        _write_davis(root, name, video)
    elif layout == "youtube":
        _write_youtube(root, name, video, split)
    else:
        _write_generic(root, name, video)
    return {
        "split": split,
        "frames": video.num_frames,
        "frame_names": [frame_name(layout, t) for t in range(video.num_frames)],
        "ids": list(video.ids),
        "first_frame": {str(i): video.first_frame[i] for i in video.ids},
        "categories": {str(i): video.categories[i] for i in video.ids},
        "gone": {str(i): list(video.gone[i]) for i in video.ids if i in video.gone},
        "distractors": len(video.distractors),
    }


def _youtube_meta(entries: dict[str, dict]) -> dict:
    """meta.json as YouTube-VOS ships it: per object its category and the every-5th frame
    names from its first appearance to the end."""
    videos = {}
    for name, entry in entries.items():
        objects = {}
        for object_id in entry["ids"]:
            first = entry["first_frame"][str(object_id)]
            objects[str(object_id)] = {
                "category": entry["categories"][str(object_id)],
                "frames": [f"{t:05d}" for t in range(0, entry["frames"], YOUTUBE_STRIDE) if t >= first],
            }
        videos[name] = {"objects": objects}
    return {"videos": videos}


def _default_workers(videos: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8, videos))


def write_dataset(root: str | os.PathLike, layout: str = "davis", videos: int = 50, spec: SyntheticSpec | None = None,
                  seed: int = 0, val_fraction: float = 0.2, workers: int | None = None, overwrite: bool = False,
                  progress: bool = True) -> dict:
    """Generate ``videos`` videos and write them to ``root`` in one of three layouts.

    Frames are JPEG (quality 90), masks palette PNGs of object ids. Videos are named
    ``syn0000``, ``syn0001``, ...; the last ``round(videos * val_fraction)`` form the validation split.

    ``davis`` (DAVIS 2017 as distributed): ``JPEGImages/480p/<vid>/00000.jpg`` and
    ``Annotations/480p/<vid>/00000.png`` for every frame, ``ImageSets/2017/{train,val}.txt``;
    ids 1..K, every object in frame 0.

    ``youtube`` (YouTube-VOS 2019 as distributed): ``train/JPEGImages/<vid>/`` and
    ``train/Annotations/<vid>/`` with every 5th frame (named by its index: 00000, 00005, ...),
    ``train/meta.json``; ``valid/JPEGImages/<vid>/`` with every 5th frame,
    ``valid/Annotations/<vid>/<frame>.png`` only where objects first appear (holding only those
    objects), ``valid/meta.json``, ``all_frames/valid_all_frames/JPEGImages/<vid>/`` with every
    frame. Not part of YouTube-VOS: ``valid_gt/Annotations/<vid>/<frame>.png``, the full ground
    truth of every frame of the valid videos, for scoring.

    ``generic``: ``JPEGImages/<vid>/frame_1.jpg`` ... (natural order), ``Annotations/<vid>/``
    only where objects first appear, ``GroundTruth/<vid>/`` the full ground truth of every frame;
    no splits (``val_fraction`` is ignored).

    ``spec`` defaults to the layout's (:func:`layout_spec`). Returns the manifest, also written
    to ``root/synthetic.json``. ``root`` is an output folder of :mod:`remn.outputs`: the dataset is
    written under ``root/.remn-staging/`` and swapped in when complete; a folder holding anything
    this project did not write is refused, and a dataset this generator wrote before is replaced
    only with ``overwrite`` (raises :class:`~remn.outputs.OutputError`).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if videos < 1:
        raise ValueError(f"videos must be at least 1, got {videos}")
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    began = time.perf_counter()
    spec = layout_spec(layout, spec)
    output = OutputFolder.claim(root, COMMAND, overwrite=overwrite, option="OUT")
    try:
        manifest = _write_staged(output.stage(), layout, videos, spec, seed, val_fraction, workers, progress, began)
    except BaseException:
        output.discard()
        raise
    output.commit({"layout": layout})
    return manifest


def _write_staged(root: Path, layout: str, videos: int, spec: SyntheticSpec, seed: int, val_fraction: float,
                  workers: int | None, progress: bool, began: float) -> dict:
    names = [f"syn{index:04d}" for index in range(videos)]
    n_val = 0 if layout == "generic" else int(round(videos * val_fraction))
    splits = ["all"] * videos if layout == "generic" else ["train"] * (videos - n_val) + ["val"] * n_val
    jobs = [(str(root), layout, spec, seed, index, name, split)
            for index, (name, split) in enumerate(zip(names, splits))]
    workers = _default_workers(videos) if workers is None else max(1, min(int(workers), videos))
    bar = tqdm(total=videos, desc=f"synthetic {layout}", unit="video", disable=not progress)
    if workers == 1:
        entries = []
        for job in jobs:
            entries.append(_write_video(job))
            bar.update()
    else:
        # Forked workers need nothing from the caller's main module, so scripts without a
        # __main__ guard, notebooks and stdin work; the workers use only numpy and PIL.
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                              else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            entries = []
            for entry in pool.map(_write_video, jobs):
                entries.append(entry)
                bar.update()
    bar.close()
    by_name = dict(zip(names, entries))

    if layout == "davis":
        sets = root / "ImageSets" / "2017"
        sets.mkdir(parents=True, exist_ok=True)
        for split in ("train", "val"):
            listed = [name for name, s in zip(names, splits) if s == split]
            (sets / f"{split}.txt").write_text("".join(f"{name}\n" for name in listed))
    elif layout == "youtube":
        for split, folder in (("train", "train"), ("val", "valid")):
            chosen = {name: by_name[name] for name, s in zip(names, splits) if s == split}
            (root / folder).mkdir(parents=True, exist_ok=True)
            (root / folder / "meta.json").write_text(json.dumps(_youtube_meta(chosen)))

    manifest = {
        "generator": "remn.data.synthetic",
        "layout": layout,
        "seed": seed,
        "val_fraction": val_fraction,
        "spec": spec.to_dict(),
        "workers": workers,
        "frames": sum(entry["frames"] for entry in entries),
        "seconds": round(time.perf_counter() - began, 3),
        "videos": by_name,
    }
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    return manifest
