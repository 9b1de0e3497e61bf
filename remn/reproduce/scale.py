"""The per-scale numbers of ``remn reproduce``: one YAML file per scale in ``configs/reproduce/``
(``smoke``, ``tiny``, ``full``), read into :class:`ScaleConfig`, and the paper's figures
(``configs/reproduce/paper.yaml``).

Only these numbers differ between scales: the generated data (sizes, videos, frames, seeds; none
at full scale, where the real datasets are used), the training stages' iterations, batch sizes,
learning rates, milestones and clip lengths (STCN's recipe from ``configs/train/`` at full scale),
the seeds, and config overrides of the training and evaluation commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from remn.config import ConfigError, find_config, load_config

__all__ = [
    "GeneratedSet",
    "GeneratedData",
    "StageNumbers",
    "Stages",
    "ScaleConfig",
    "SCALES",
    "STAGE_FIELDS",
    "load_scale",
    "recipe_stage",
    "load_paper",
]

SCALES = ("smoke", "tiny", "full")
STAGE_FIELDS = ("iterations", "batch_size", "lr", "milestones", "clip_frames")
"""The fields of ``train.<stage>`` a scale sets; the others keep the training config's values."""


@dataclass
class GeneratedSet:
    """One ``remn generate`` call (its layout is fixed by the set's role)."""

    videos: int = 1
    frames: int = 1
    seed: int = 0
    val_fraction: float = 0.2
    objects: Optional[list[int]] = None
    """``--objects MIN MAX``; None: the layout's default."""
    distractors: Optional[list[int]] = None
    """``--distractors MIN MAX`` (look-alikes of the targets); None: the layout's default."""


@dataclass
class GeneratedData:
    """The generated analogues of the benchmarks and training sets (smoke and tiny scales)."""

    size: list[int] = field(default_factory=lambda: [64, 64])
    """H W of every generated frame."""
    unseen_shape: str = "blob"
    """Objects of this shape are kept out of every training set: YouTube-VOS's unseen categories."""
    long_time_annotate_every: int = 20
    """The long-time analogue keeps the masks of every n-th frame (and of the last)."""
    davis: GeneratedSet = field(default_factory=GeneratedSet)
    """DAVIS 2017-like train and val videos (davis layout)."""
    test_dev: GeneratedSet = field(default_factory=GeneratedSet)
    """DAVIS 2017 test-dev-like videos (only the first mask is given; the rest scores locally)."""
    youtube: GeneratedSet = field(default_factory=GeneratedSet)
    """YouTube-VOS-like train and valid videos, objects entering late (youtube layout)."""
    long_time: GeneratedSet = field(default_factory=GeneratedSet)
    """Long videos, turned into the long-time layout with sparse masks."""
    static: GeneratedSet = field(default_factory=GeneratedSet)
    """Single frames with one object, turned into a static-image set (the static stage)."""


@dataclass
class StageNumbers:
    """The numbers of one training stage (``train.<stage>.*``)."""

    iterations: int = 1
    batch_size: int = 1
    lr: float = 1e-5
    milestones: list[int] = field(default_factory=list)
    clip_frames: int = 3


@dataclass
class Stages:
    static: StageNumbers = field(default_factory=StageNumbers)
    main: StageNumbers = field(default_factory=StageNumbers)
    rrm: StageNumbers = field(default_factory=StageNumbers)


@dataclass
class ScaleConfig:
    """Everything that differs between the scales of the plan."""

    name: str = ""
    description: str = ""
    seeds: list[int] = field(default_factory=lambda: [0])
    """``runtime.seed`` of the trained models; each seed trains REMN and w/o FRM once."""
    generated: Optional[GeneratedData] = None
    """Generated analogues; None: the real datasets (``--davis`` ...)."""
    stages: Optional[Stages] = None
    """Stage numbers; None: STCN's recipe from ``configs/train/<stage>.yaml``."""
    main_after_bl30k_iterations: int = 300_000
    """The main stage after BL30K (STCN's stage 2) when ``stages`` is None and BL30K is given."""
    main_after_bl30k_milestones: list[int] = field(default_factory=lambda: [250_000])
    first_stage_overrides: list[str] = field(default_factory=list)
    """Overrides of the first training launch only (e.g. ImageNet initialisation)."""
    common_overrides: list[str] = field(default_factory=list)
    """Overrides of every training and evaluation command."""
    train_overrides: list[str] = field(default_factory=list)
    eval_overrides: list[str] = field(default_factory=list)


def _problems(scale: ScaleConfig) -> list[str]:
    problems = []
    if not scale.seeds or len(set(scale.seeds)) != len(scale.seeds) or any(s < 0 for s in scale.seeds):
        problems.append(f"seeds={list(scale.seeds)} must be distinct non-negative integers, at least one")
    data = scale.generated
    if data is not None:
        if len(data.size) != 2 or min(data.size) < 16:
            problems.append(f"generated.size={list(data.size)} must be H W, each at least 16")
        if data.long_time_annotate_every < 1:
            problems.append("generated.long_time_annotate_every must be at least 1")
        for name in ("davis", "test_dev", "youtube", "long_time", "static"):
            entry: GeneratedSet = getattr(data, name)
            if entry.videos < 1 or entry.frames < 1:
                problems.append(f"generated.{name}: videos and frames must be at least 1")
            for key in ("objects", "distractors"):
                value = getattr(entry, key)
                if value is not None and len(value) != 2:
                    problems.append(f"generated.{name}.{key}={list(value)} must be [MIN, MAX]")
    return problems


def load_scale(name: str | Path) -> ScaleConfig:
    """The scale named ``smoke``, ``tiny`` or ``full`` (``configs/reproduce/<name>.yaml``), or a YAML file
    of the same form (raises :class:`~remn.config.ConfigError`)."""
    text = str(name)
    path = Path(text)
    if not path.is_file():
        if text in SCALES:
            path = find_config(f"reproduce/{text}")
        else:
            raise ConfigError(
                f"--scale {text}: neither one of {', '.join(SCALES)} nor a YAML file of that form "
                "(configs/reproduce/smoke.yaml shows one)"
            )
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ScaleConfig), OmegaConf.load(path))
        scale = OmegaConf.to_object(merged)
    except (OmegaConfBaseException, OSError, ValueError) as error:
        first = " ".join(str(error).split("\n")[0].split())
        raise ConfigError(
            f"{path}: {first}; fix this scale file (its fields: ScaleConfig in "
            "remn/reproduce/scale.py, docs/reproduce.md)"
        ) from None
    assert isinstance(scale, ScaleConfig)
    scale.name = scale.name or path.stem
    problems = _problems(scale)
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return scale


def recipe_stage(stage: str) -> StageNumbers:
    """A stage's numbers in STCN's recipe: those of ``configs/train/<stage>.yaml``."""
    values = getattr(load_config(f"train/{stage}").train, stage)
    return StageNumbers(**{key: getattr(values, key) for key in STAGE_FIELDS})


def load_paper() -> dict[str, dict]:
    """``configs/reproduce/paper.yaml``: per table its ``columns`` and ``rows`` (method -> values), the
    values as dicts keyed by column."""
    path = find_config("reproduce/paper")
    raw = OmegaConf.to_container(OmegaConf.load(path))
    tables = {}
    for table, entry in raw.items():
        columns = list(entry["columns"])
        rows = {}
        for method, values in entry["rows"].items():
            if len(values) != len(columns):
                raise ConfigError(f"{path}: {table}.{method} has {len(values)} values for {len(columns)} columns")
            rows[str(method)] = dict(zip(columns, values))
        tables[table] = {"columns": columns, "rows": rows}
    return tables
