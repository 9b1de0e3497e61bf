"""Motion: smooth paths through key points that drift and bounce inside the frame, and the
exits of objects that leave the frame and come back."""

from __future__ import annotations

import bisect
import math
from typing import Callable

import numpy as np

from .spec import SyntheticSpec


def hermite(times: np.ndarray, points: np.ndarray, at: np.ndarray) -> np.ndarray:
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
    return (
        (2 * s3 - 3 * s2 + 1) * points[segment]
        + (s3 - 2 * s2 + s) * span[:, None] * tangents[segment]
        + (-2 * s3 + 3 * s2) * points[segment + 1]
        + (s3 - s2) * span[:, None] * tangents[segment + 1]
    )


def reflect(value: float, low: float, high: float) -> tuple[float, bool]:
    """Mirror a coordinate back into [low, high]; says whether it bounced."""
    if high <= low:
        return (low + high) / 2, False
    bounced = False
    if value < low:
        value, bounced = 2 * low - value, True
    if value > high:
        value, bounced = 2 * high - value, True
    return float(min(max(value, low), high)), bounced


def next_key(
    rng: np.random.Generator,
    t: int,
    position: np.ndarray,
    heading: float,
    speed: float,
    box: tuple[float, float, float, float],
) -> tuple[int, np.ndarray, float]:
    """The key point after ``(t, position)`` of a path that drifts with a slowly turning heading
    and bounces inside ``box`` (x_low, x_high, y_low, y_high): its frame, its position and the
    heading from there."""
    gap = int(rng.integers(5, 10))
    step = speed * gap * rng.uniform(0.6, 1.0)
    heading += rng.normal(0.0, 0.7)
    x, bounce_x = reflect(position[0] + step * math.cos(heading), box[0], box[1])
    y, bounce_y = reflect(position[1] + step * math.sin(heading), box[2], box[3])
    if bounce_x:
        heading = math.pi - heading
    if bounce_y:
        heading = -heading
    return t + gap, np.array([x, y]), heading


def wander(
    rng: np.random.Generator,
    start: np.ndarray,
    heading: float,
    t0: int,
    last: int,
    speed: float,
    box: tuple[float, float, float, float],
) -> list[tuple[int, np.ndarray]]:
    """Key points of a drifting path (:func:`next_key`) from frame t0 until at least frame ``last``."""
    keys = [(t0, np.asarray(start, dtype=np.float64))]
    t, position = keys[0]
    while t < last:
        t, position, heading = next_key(rng, t, position, heading, speed, box)
        keys.append((t, position))
    return keys


class Wander:
    """A drifting path (:func:`next_key`) from frame 0, made only as far as it is asked for.

    Its key points come from its own seed, one after the other, so the centre at frame t is
    the same however far the path goes and in whatever order frames are asked for. It holds
    the few key points around the last frame asked for; an earlier frame replays the path
    from its start.
    """

    def __init__(
        self,
        seed: np.random.SeedSequence,
        start: np.ndarray,
        heading: float,
        speed: float,
        box: tuple[float, float, float, float],
    ) -> None:
        self._seed, self._start, self._heading0 = seed, np.asarray(start, dtype=np.float64), heading
        self._speed, self._box = speed, box
        self._restart()

    def _restart(self) -> None:
        self._rng = np.random.default_rng(self._seed)
        self._heading = self._heading0
        self._times, self._points = [0], [self._start]
        self._from_start = True  # the first key held is the path's first

    def at(self, t: int) -> np.ndarray:
        """Centre ``(x, y)`` at frame ``t`` (cubic Hermite through the key points, as :func:`hermite`)."""
        if t < 0:
            raise ValueError(f"frame index must not be negative, got {t}")
        if not self._from_start and t < self._times[1]:
            self._restart()
        while len(self._times) < 3 or self._times[-2] <= t:  # the segment's both tangents need a key beyond it
            time, point, self._heading = next_key(
                self._rng, self._times[-1], self._points[-1], self._heading, self._speed, self._box
            )
            self._times.append(time)
            self._points.append(point)
        segment = bisect.bisect_right(self._times, t) - 1
        low = max(segment - 1, 0)
        times = np.array(self._times[low : segment + 3], dtype=np.float64)
        centre = hermite(times, np.stack(self._points[low : segment + 3]), np.array([t], dtype=np.float64))[0]
        if low > 0:  # forget the keys behind: however long the video, a path holds a few
            del self._times[:low], self._points[:low]
            self._from_start = False
        return centre


def edge_point(edge: int, depth: float, along: float, width: int, height: int) -> np.ndarray:
    """A point ``depth`` pixels inside edge (0 left, 1 right, 2 top, 3 bottom; negative = outside)
    at ``along`` pixels along it."""
    if edge == 0:
        return np.array([depth, along])
    if edge == 1:
        return np.array([width - 1 - depth, along])
    if edge == 2:
        return np.array([along, depth])
    return np.array([along, height - 1 - depth])


def inward(edge: int) -> float:
    return (0.0, math.pi, math.pi / 2, -math.pi / 2)[edge]


def plan_path(
    rng: np.random.Generator, spec: SyntheticSpec, start: int, radius: float, reach: float, leave: bool, from_edge: bool
) -> tuple[np.ndarray, tuple[int, int] | None]:
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
            first = edge_point(edge, radius * rng.uniform(0.4, 1.0), along_edge(), width, height)
            heading = inward(edge) + rng.uniform(-0.6, 0.6)
        else:
            low_x, high_x = radius, width - 1 - radius
            low_y, high_y = radius, height - 1 - radius
            first = np.array(
                [
                    rng.uniform(low_x, high_x) if high_x > low_x else (width - 1) / 2,
                    rng.uniform(low_y, high_y) if high_y > low_y else (height - 1) / 2,
                ]
            )
            heading = rng.uniform(-np.pi, np.pi)
        keys = wander(rng, first, heading, start, last, speed, box)
    times = np.array([k[0] for k in keys], dtype=np.float64)
    points = np.stack([k[1] for k in keys])
    centres = np.zeros((spec.frames, 2))
    centres[start:] = hermite(times, points, np.arange(start, spec.frames, dtype=np.float64))
    return centres, gone


def _plan_exit(
    rng: np.random.Generator,
    spec: SyntheticSpec,
    start: int,
    radius: float,
    reach: float,
    speed: float,
    edge: int,
    along_edge: Callable[[], float],
    box: tuple[float, float, float, float],
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
    keys = [(start, edge_point(edge, depth_in, along, width, height))]
    if wait:
        along_low, along_high = (box[2], box[3]) if edge < 2 else (box[0], box[1])
        drift = float(np.clip(along + rng.uniform(-1, 1) * speed * wait, along_low, along_high))
        keys.append((start + wait, edge_point(edge, depth_in, drift, width, height)))
        along = drift
    first_out = start + wait + exit_frames
    last_out = first_out + out_frames - 1
    keys.append((first_out, edge_point(edge, -beyond, along + rng.uniform(-1, 1) * radius, width, height)))
    if out_frames > 1:
        keys.append((last_out, edge_point(edge, -beyond, along + rng.uniform(-1, 1) * radius, width, height)))
    back = last_out + return_frames
    back_at = edge_point(edge, depth_back, along + rng.uniform(-1, 1) * radius, width, height)
    keys.append((back, back_at))
    if back < last:
        keys.extend(wander(rng, back_at, inward(edge) + rng.uniform(-0.6, 0.6), back, last, speed, box)[1:])
    return keys, (first_out, last_out)
