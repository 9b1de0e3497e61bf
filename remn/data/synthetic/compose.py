"""Drawing: a layer's silhouette and colours at a frame, frames composited back to front with
pixel noise, and :func:`generate_video`, which plans a whole video and draws it."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from remn.errors import EXIT_USAGE, REMNError

from .appearance import Look, background_look, lookalike, object_look, paint
from .motion import plan_path
from .shapes import CONTOUR_SAMPLES, Layer, Sprite, make_contour, make_wobble
from .spec import MAX_ATTEMPTS, SHAPES, SyntheticSpec, SyntheticVideo, spec_with

Piece = tuple[tuple[slice, slice], np.ndarray, np.ndarray]
"""A drawn layer: its bounding box in the frame, its silhouette there (bool) and the colours of
the silhouette's pixels (float32, (N, 3))."""


def draw(layer: Sprite, t: int, height: int, width: int) -> Piece | None:
    """The layer's silhouette at frame t inside its bounding box, and the colours of its pixels;
    None where none of it is in the frame."""
    cx, cy, scale, angle = layer.pose(t)
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
    position = (phi + np.float32(np.pi)) * np.float32(CONTOUR_SAMPLES / (2 * np.pi))
    low = np.floor(position).astype(np.int64)
    frac = position - low
    low %= CONTOUR_SAMPLES
    limit = contour[low] * (1.0 - frac) + contour[(low + 1) % CONTOUR_SAMPLES] * frac
    inside = u * u + v * v <= limit * limit
    if not inside.any():
        return None
    size = layer.texture.shape[0]
    tu = np.clip(u[inside] + np.float32(size / 2), 0, size - 1.001)
    tv = np.clip(v[inside] + np.float32(size / 2), 0, size - 1.001)
    iu, iv = tu.astype(np.int64), tv.astype(np.int64)
    fu, fv = (tu - iu)[:, None], (tv - iv)[:, None]
    tex = layer.texture
    colours = (tex[iv, iu] * (1 - fu) + tex[iv, iu + 1] * fu) * (1 - fv) + (
        tex[iv + 1, iu] * (1 - fu) + tex[iv + 1, iu + 1] * fu
    ) * fv
    return (slice(y0, y1), slice(x0, x1)), inside, colours


def composite(
    background: np.ndarray, pieces: Sequence[tuple[int, Piece | None]], noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One frame and its labels: the layers' pieces ``(key, piece)`` painted back to front over
    ``background`` (float32, (H, W, 3)), then pixel noise of standard deviation ``noise`` drawn
    from ``rng``, rounded to uint8. Distractors (negative keys) are background in the labels."""
    canvas = background.copy()
    labels = np.zeros(background.shape[:2], dtype=np.uint8)
    for key, piece in pieces:
        if piece is None:
            continue
        where, inside, colours = piece
        canvas[where][inside] = colours
        labels[where][inside] = max(key, 0)
    if noise > 0:
        grain = rng.standard_normal(canvas.shape, dtype=np.float32)
        grain *= np.float32(noise)
        canvas += grain
    np.clip(canvas, 0.0, 255.0, out=canvas)
    canvas += np.float32(0.5)  # round to nearest on the cast below
    return canvas.astype(np.uint8), labels


def label_map(shape: tuple[int, int], pieces: Sequence[tuple[int, Piece | None]]) -> np.ndarray:
    """The labels :func:`composite` would give, without painting the frame."""
    labels = np.zeros(shape, dtype=np.uint8)
    for key, piece in pieces:
        if piece is not None:
            labels[piece[0]][piece[1]] = max(key, 0)
    return labels


def make_layer(
    rng: np.random.Generator,
    spec: SyntheticSpec,
    key: int,
    look: Look,
    start: int,
    leave: bool,
    from_edge: bool,
    radius: float | None = None,
) -> Layer:
    """A layer with its shape, texture, rotation, scale, wobble and path planned for the whole video."""
    unit = min(spec.width, spec.height)
    radius = radius if radius is not None else unit * rng.uniform(0.08, 0.15)
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    contour = make_contour(rng, shape, radius)
    size = 2 * math.ceil(radius * 1.2) + 4
    texture = paint(rng, look, size, size, feature=2 * radius)
    frames = np.arange(spec.frames, dtype=np.float64) - start
    turn = spec.speed / 3.0
    angles = (
        rng.uniform(0, 2 * np.pi)
        + np.radians(rng.uniform(-2.0, 2.0) * turn) * frames
        + 0.5 * np.radians(rng.uniform(-0.04, 0.04) * turn) * frames**2
    )
    scales = np.exp(
        rng.uniform(0.0, 0.15) * np.sin(2 * np.pi * frames / rng.uniform(25, 60) + rng.uniform(0, 2 * np.pi))
    )
    scales = scales / scales[start]
    wobble = make_wobble(rng, spec.deform)
    layer = Layer(
        key=key,
        shape=shape,
        look=look,
        contour=contour,
        texture=texture,
        start=start,
        wobble=wobble,
        centres=np.zeros((spec.frames, 2)),
        angles=angles.astype(np.float64),
        scales=scales,
    )
    layer.centres, layer.gone = plan_path(rng, spec, start, radius, layer.reach(), leave, from_edge)
    return layer


def fewest_pixels(height: int, width: int) -> int:
    """The fewest visible pixels an object must have where it must be seen (its first frame, after an exit)."""
    return max(6, int(0.002 * height * width))


def cast(rng: np.random.Generator, spec: SyntheticSpec) -> tuple[list[int], int]:
    """The ids of a video's labelled objects (in the order they are made) and its number of distractors."""
    n_objects = int(rng.integers(spec.objects[0], spec.objects[1] + 1))
    n_distractors = int(rng.integers(spec.distractors[0], spec.distractors[1] + 1))
    if spec.id_style == "contiguous":
        ids = list(range(1, n_objects + 1))
    else:
        ids = [int(i) for i in rng.choice(np.arange(1, 256), size=n_objects, replace=False)]
    return ids, n_distractors


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
    ids, n_distractors = cast(rng, spec)
    n_objects = len(ids)
    background = paint(rng, background_look(rng), height, width, feature=min(height, width))
    first_hue = rng.random()
    objects: list[Layer] = []
    for index, object_id in enumerate(ids):
        hue = first_hue + index / n_objects + rng.uniform(-0.05, 0.05)
        start = _late_start(rng, spec) if index > 0 and rng.random() < spec.enter_late else 0
        leave = rng.random() < spec.leave
        objects.append(make_layer(rng, spec, object_id, object_look(rng, hue), start, leave, from_edge=start > 0))
    distractors: dict[int, int] = {}
    fakes: list[Layer] = []
    for index in range(n_distractors):
        target = objects[int(rng.integers(n_objects))]
        key = -(index + 1)
        distractors[key] = target.key
        size = float(target.contour.max()) * rng.uniform(0.8, 1.2)
        fakes.append(make_layer(rng, spec, key, lookalike(rng, target.look), 0, False, False, radius=size))
    layers = objects + fakes
    order = [layers[i] for i in rng.permutation(len(layers))]

    frames, masks = [], []
    amodal_area = {layer.key: np.zeros(count, dtype=np.int64) for layer in objects}
    silhouettes = {layer.key: [] for layer in layers} if keep_layers else None
    for t in range(count):
        pieces = [(layer.key, draw(layer, t, height, width) if t >= layer.start else None) for layer in order]
        for key, piece in pieces:
            if silhouettes is not None:
                full = np.zeros((height, width), dtype=bool)
                if piece is not None:
                    full[piece[0]] = piece[1]
                silhouettes[key].append(full)
            if piece is not None and key > 0:
                amodal_area[key][t] = int(piece[1].sum())
        frame, labels = composite(background, pieces, spec.noise, rng)
        frames.append(frame)
        masks.append(labels)

    least = fewest_pixels(height, width)
    for layer in objects:
        visible = np.array([int((m == layer.key).sum()) for m in masks])
        if visible[layer.start] < max(least, 0.3 * amodal_area[layer.key][layer.start]):
            return None
        if layer.gone is not None and visible[layer.gone[1] + 1 :].max(initial=0) < least:
            return None
    return SyntheticVideo(
        frames=frames,
        masks=masks,
        ids=tuple(sorted(ids)),
        first_frame={layer.key: layer.start for layer in objects},
        categories={layer.key: layer.shape for layer in objects},
        gone={
            layer.key: _out_of_view(layer.gone, amodal_area[layer.key], layer.start)
            for layer in objects
            if layer.gone is not None
        },
        distractors=distractors,
        depth=tuple(layer.key for layer in order),
        spec=spec,
        layers=silhouettes,
    )


class GenerationError(REMNError, RuntimeError):
    """The generator cannot make what its settings ask for (objects that do not fit the frames):
    exit status 2, as for any other bad setting."""

    exit_status = EXIT_USAGE


def generate_video(
    rng_or_seed: int | np.random.Generator | np.random.SeedSequence = 0,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    *,
    spec: SyntheticSpec | None = None,
    layers: bool = False,
    **knobs,
) -> SyntheticVideo:
    """Generate one video.

    Starts from ``spec`` (default :class:`SyntheticSpec()`); ``frames``, ``height``, ``width`` and
    any other keyword named like a spec field (``objects=(2, 3)``, ``enter_late=0.5`` ...) replace
    its values. ``layers=True`` keeps every layer's full silhouette per frame (for tests and figures).
    The same seed or generator state gives the same video, bit for bit.
    """
    spec = spec if spec is not None else SyntheticSpec()
    spec = spec_with(spec, "generate_video", frames, height, width, **knobs)
    rng = rng_or_seed if isinstance(rng_or_seed, np.random.Generator) else np.random.default_rng(rng_or_seed)
    for _ in range(MAX_ATTEMPTS):
        video = _attempt(rng, spec, layers)
        if video is not None:
            return video
    raise GenerationError(
        f"could not place the objects visibly in {MAX_ATTEMPTS} tries ({spec.objects[0]} to "
        f"{spec.objects[1]} objects and {spec.distractors[0]} to {spec.distractors[1]} distractors "
        f"in {spec.height}x{spec.width} frames); use larger frames (--size) or fewer objects "
        "(--objects) and distractors (--distractors)"
    )
