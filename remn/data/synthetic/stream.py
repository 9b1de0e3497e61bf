"""Generated videos of any length, one frame at a time: :class:`SyntheticStream`.

:func:`~remn.data.synthetic.compose.generate_video` plans a whole video and keeps every
frame; a stream keeps only what frames are drawn from (the background, each layer's
texture and the few key points of its path around the frame last asked for) and draws
frame t when it is asked for, so thousands of frames (long-video runs, the speed and memory
benchmarks) cost the memory of one. It draws the same things (textured objects with a depth
order, wobbling contours, look-alike distractors, pixel noise) from a
:class:`~remn.data.synthetic.spec.SyntheticSpec`, with motion made for any length: paths that
drift and bounce inside the frame, a steady spin with a slow sway, a slow breathing of the
scale. It has no late entries and no exits (``enter_late`` and ``leave`` must be 0): every
object is in frame 0, and visible enough there.

Frame t depends only on the seed, t and the spec's fields other than ``frames``: a stream of
n frames is the beginning of every longer one, frames come out alike in any order, and a
stream's frames differ from :func:`generate_video`'s for the same seed.

    stream = SyntheticStream(0, frames=2000, height=480, width=854, objects=(2, 2))
    first = stream.labels(0)            # (H, W) uint8 object ids, 0 = background
    for frame, labels in stream:        # (H, W, 3) uint8 RGB, (H, W) uint8
        ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .appearance import background_look, lookalike, object_look, paint
from .compose import GenerationError, Piece, cast, composite, draw, fewest_pixels, label_map
from .motion import Wander
from .shapes import Sprite, make_contour, make_wobble
from .spec import MAX_ATTEMPTS, SHAPES, SyntheticSpec, spec_with

__all__ = ["SyntheticStream", "STREAM_SPEC"]

STREAM_SPEC = SyntheticSpec(leave=0.0)
"""A stream's spec when none is given: the generator's defaults without exits."""

_SCENE, _PATH, _NOISE = 0, 1, 2  # the first spawn-key entry of each random stream


@dataclass
class _StreamLayer(Sprite):
    """A sprite whose pose is a function of the frame index, however far the video goes."""

    path: Wander
    angle: float  # at frame 0
    spin: float  # radians per frame
    sway: tuple[float, float, float]  # amplitude (radians), period (frames), phase of the angle's sway
    breathe: tuple[float, float, float]  # amplitude (log scale), period (frames), phase of the scale

    def pose(self, t: int) -> tuple[float, float, float, float]:
        cx, cy = self.path.at(t)
        amplitude, period, phase = self.sway
        angle = self.angle + self.spin * t + amplitude * math.sin(2 * math.pi * t / period + phase)
        amplitude, period, phase = self.breathe
        scale = math.exp(amplitude * (math.sin(2 * math.pi * t / period + phase) - math.sin(phase)))  # 1 at frame 0
        return float(cx), float(cy), scale, angle


class SyntheticStream:
    """A generated video drawn one frame at a time (module docstring).

    Args:
        seed: an int, or a :class:`numpy.random.SeedSequence` (e.g. one per video of a set).
        frames, height, width, **knobs: replace the fields of ``spec`` (default
            :data:`STREAM_SPEC`) of those names, as :func:`generate_video` does; ``frames`` is
            only the length that ``len()`` and iteration give.

    Raises:
        ValueError: ``enter_late`` or ``leave`` is not 0, or a spec field is out of range.
        GenerationError: no placement in :data:`MAX_ATTEMPTS` tries shows every object in frame 0.
    """

    def __init__(
        self,
        seed: int | np.random.SeedSequence = 0,
        frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        *,
        spec: SyntheticSpec | None = None,
        **knobs,
    ) -> None:
        spec = spec if spec is not None else STREAM_SPEC
        spec = spec_with(spec, "SyntheticStream", frames, height, width, **knobs)
        if spec.enter_late or spec.leave:
            raise ValueError(
                f"SyntheticStream has no late entries and no exits: set enter_late=0 and leave=0 "
                f"(got enter_late={spec.enter_late}, leave={spec.leave})"
            )
        self.spec = spec
        self.seed = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        for attempt in range(MAX_ATTEMPTS):
            if self._plan(attempt):
                return
        raise GenerationError(
            f"could not place the objects visibly in frame 0 in {MAX_ATTEMPTS} tries "
            f"({spec.objects[0]} to {spec.objects[1]} objects and {spec.distractors[0]} to "
            f"{spec.distractors[1]} distractors in {spec.height}x{spec.width} frames); use larger "
            "frames or fewer objects and distractors"
        )

    # ------------------------------------------------------------------ planning
    def _child(self, *key: int) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.seed.entropy, spawn_key=(*self.seed.spawn_key, *key))

    def _plan(self, attempt: int) -> bool:
        """One try at the scene; False when an object is not visible enough in frame 0."""
        spec = self.spec
        rng = np.random.default_rng(self._child(_SCENE, attempt))
        ids, n_distractors = cast(rng, spec)
        self.background = paint(
            rng, background_look(rng), spec.height, spec.width, feature=min(spec.height, spec.width)
        )
        first_hue = rng.random()
        objects = []
        for index, object_id in enumerate(ids):
            hue = first_hue + index / len(ids) + rng.uniform(-0.05, 0.05)
            objects.append(self._layer(rng, object_id, object_look(rng, hue), self._child(_PATH, attempt, index)))
        self.distractors: dict[int, int] = {}  # distractor key (-1, -2, ...) -> the id of the object it imitates
        fakes = []
        for index in range(n_distractors):
            target = objects[int(rng.integers(len(objects)))]
            key = -(index + 1)
            self.distractors[key] = target.key
            size = float(target.contour.max()) * rng.uniform(0.8, 1.2)
            path = self._child(_PATH, attempt, len(ids) + index)
            fakes.append(self._layer(rng, key, lookalike(rng, target.look), path, radius=size))
        layers = objects + fakes
        self._order = [layers[i] for i in rng.permutation(len(layers))]
        self.ids = tuple(sorted(ids))  # labelled object ids, ascending
        self.categories = {layer.key: layer.shape for layer in objects}  # object id -> its shape (SHAPES)
        self.depth = tuple(layer.key for layer in self._order)  # layer keys from back to front

        pieces = self._pieces(0)
        labels = label_map((spec.height, spec.width), pieces)
        least = fewest_pixels(spec.height, spec.width)
        drawn = dict(pieces)
        for layer in objects:
            whole = int(drawn[layer.key][1].sum()) if drawn[layer.key] is not None else 0
            if int((labels == layer.key).sum()) < max(least, 0.3 * whole):
                return False
        return True

    def _layer(
        self, rng: np.random.Generator, key: int, look, path_seed: np.random.SeedSequence, radius: float | None = None
    ) -> _StreamLayer:
        spec = self.spec
        width, height = spec.width, spec.height
        unit = min(width, height)
        radius = radius if radius is not None else unit * rng.uniform(0.08, 0.15)
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        contour = make_contour(rng, shape, radius)
        size = 2 * math.ceil(radius * 1.2) + 4
        texture = paint(rng, look, size, size, feature=2 * radius)
        turn = spec.speed / 3.0
        angle, spin = rng.uniform(0, 2 * np.pi), math.radians(rng.uniform(-2.0, 2.0) * turn)
        sway = (math.radians(rng.uniform(0.0, 15.0) * turn), rng.uniform(40, 120), rng.uniform(0, 2 * np.pi))
        breathe = (rng.uniform(0.0, 0.15), rng.uniform(25, 60), rng.uniform(0, 2 * np.pi))
        wobble = make_wobble(rng, spec.deform)
        low_x, high_x, low_y, high_y = radius, width - 1 - radius, radius, height - 1 - radius
        start = np.array(
            [
                rng.uniform(low_x, high_x) if high_x > low_x else (width - 1) / 2,
                rng.uniform(low_y, high_y) if high_y > low_y else (height - 1) / 2,
            ]
        )
        speed = spec.speed * unit / 256.0 * rng.uniform(0.5, 1.2)
        margin = 0.5 * radius
        path = Wander(
            path_seed,
            start,
            rng.uniform(-np.pi, np.pi),
            speed,
            (margin, width - 1 - margin, margin, height - 1 - margin),
        )
        return _StreamLayer(
            key=key,
            shape=shape,
            look=look,
            contour=contour,
            texture=texture,
            start=0,
            wobble=wobble,
            path=path,
            angle=angle,
            spin=spin,
            sway=sway,
            breathe=breathe,
        )

    # ------------------------------------------------------------------ frames
    def __len__(self) -> int:
        return self.spec.frames

    def _pieces(self, t: int) -> list[tuple[int, Piece | None]]:
        if not 0 <= t < self.spec.frames:
            raise IndexError(f"frame {t} is outside the stream's {self.spec.frames} frames")
        return [(layer.key, draw(layer, t, self.spec.height, self.spec.width)) for layer in self._order]

    def render(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame ``t``: RGB ``(H, W, 3)`` uint8 and its labels ``(H, W)`` uint8 (0 = background;
        distractors are background)."""
        noise = np.random.default_rng(self._child(_NOISE, t))
        return composite(self.background, self._pieces(t), self.spec.noise, noise)

    def frame(self, t: int) -> np.ndarray:
        """RGB frame ``t``, ``(H, W, 3)`` uint8."""
        return self.render(t)[0]

    def labels(self, t: int) -> np.ndarray:
        """Object ids of frame ``t``, ``(H, W)`` uint8, without painting the frame."""
        return label_map((self.spec.height, self.spec.width), self._pieces(t))

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for t in range(len(self)):
            yield self.render(t)
