"""What to generate: the generator's knobs (:class:`SyntheticSpec`), a layout's rules
(:func:`layout_spec`), what comes out (:class:`SyntheticVideo`), the seeds of a dataset's
videos (:func:`video_rng`) and the constants every module of the generator shares."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

LAYOUTS = ("davis", "youtube", "generic")
SHAPES = ("ellipse", "polygon", "blob")
TEXTURES = ("gradient", "stripes", "checks", "blotches")
ID_STYLES = ("contiguous", "sparse")

YOUTUBE_STRIDE = 5  # YouTube-VOS annotates and ships every 5th frame
JPEG_QUALITY = 90
MANIFEST_NAME = "synthetic.json"
COMMAND = "remn generate"
MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class SyntheticSpec:
    """The knobs of the generator, shared by :func:`generate_video`, :class:`SyntheticStream`,
    :func:`write_dataset` and the CLI."""

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
                raise ValueError(
                    f"SyntheticSpec.{name} must be an inclusive range (low, high) with 0 <= low <= high, got {value}"
                )
        if self.objects[0] < 1 or self.objects[1] > 255:
            raise ValueError(f"SyntheticSpec.objects must lie in 1..255, got {self.objects}")
        if self.frames < 1:
            raise ValueError(f"SyntheticSpec.frames must be at least 1, got {self.frames}")
        if self.height < 16 or self.width < 16:
            raise ValueError(
                f"SyntheticSpec.height and .width must be at least 16 pixels, got "
                f"height={self.height}, width={self.width}"
            )
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
        defaults = {
            "davis": {},
            "youtube": {"objects": (2, 3), "enter_late": 0.75, "entry_stride": YOUTUBE_STRIDE, "id_style": "sparse"},
            "generic": {"enter_late": 0.5},
        }[layout]
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


def spec_with(
    spec: SyntheticSpec,
    caller: str,
    frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
    **knobs,
) -> SyntheticSpec:
    """``spec`` with the sizes given and any other fields of :class:`SyntheticSpec` changed;
    an unknown name is a TypeError naming ``caller`` and the valid fields."""
    sizes = {
        name: value for name, value in (("frames", frames), ("height", height), ("width", width)) if value is not None
    }
    if not sizes and not knobs:
        return spec
    unknown = sorted(set(knobs) - set(SyntheticSpec.__dataclass_fields__))
    if unknown:
        raise TypeError(
            f"{caller} got unknown options {unknown}; valid ones are the fields of "
            f"SyntheticSpec: {sorted(SyntheticSpec.__dataclass_fields__)}"
        )
    return replace(spec, **sizes, **knobs)
