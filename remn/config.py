"""Typed configuration for REMN.

One tree of dataclasses describes every setting. YAML files in ``configs/`` fill it
in, a file may name a ``base`` file that it modifies, and ``key=value`` overrides
from the command line come last::

    cfg = load_config("configs/remn.yaml", overrides=["memory.rrm=false"])
    cfg.memory.rrm  # False

Unknown keys and values of the wrong type are refused with an error that names the
file or the override. ``docs/config.md`` documents every field; a test keeps the two
in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

__all__ = [
    "ModelConfig",
    "MemoryConfig",
    "RuntimeConfig",
    "DataConfig",
    "TrainConfig",
    "InferenceConfig",
    "REMNConfig",
    "ConfigError",
    "load_config",
    "config_to_yaml",
]


class ConfigError(ValueError):
    """A configuration file or override that cannot be used."""


@dataclass
class ModelConfig:
    """The network: STCN's layers plus FRM (the RRM layers are switched by ``memory.rrm``)."""

    key_dim: int = 64
    """C^k, channels of a key. STCN's checkpoints need 64."""
    value_dim: int = 512
    """C^v, channels of a memory value. STCN's checkpoints need 512."""
    frm: bool = True
    """Foreground Reinforcing Module on the query key."""
    frm_window: int = 7
    """w = h, side of FRM's local attention window (odd)."""
    pretrained_backbones: bool = False
    """Initialise both encoders from torchvision's ImageNet weights (downloads them)."""


@dataclass
class MemoryConfig:
    """The memory bank: what is written (ASM or a fixed interval) and how much is kept (RRM)."""

    asm: bool = True
    """Adaptive Sampling Module decides which frames enter memory; else every ``mem_every``."""
    rrm: bool = True
    """Redundancy Reduction Module keeps at most ``capacity`` working frames; else unbounded."""
    capacity: int = 16
    """N, working frames kept when RRM is on (the annotated frames are not counted)."""
    top_k: int = 20
    """k of the top-k softmax of the memory read at inference; 0 means the full softmax."""
    mem_every: int = 5
    """Fixed write interval used when ASM is off (STCN: 5)."""
    interval_mode: str = "absolute"
    """Fixed interval counted on the ``absolute`` frame index (STCN DAVIS) or ``relative``
    to the last write (STCN YouTube-VOS)."""
    rrm_policies: int = 3
    """S^t, temporal policies of the RRM gate; policy s reduces by 2^(s+1)."""
    rrm_hidden: int = 64
    """Hidden channels of the RRM gate."""
    asm_lambda_pos: float = 1.0
    """lambda_pos, weight of the centroid shift (in object sizes)."""
    asm_lambda_shape: float = 1.0
    """lambda_shape, weight of the shape change (1 - IoU after centring)."""
    asm_tau: float = 0.2
    """tau, write a frame when the largest object variation exceeds it."""
    asm_min_interval: int = 2
    """Never write sooner than this many frames after the last write."""
    asm_max_interval: int = 10
    """Always write once this many frames have passed since the last write."""
    asm_stride: int = 4
    """ASM compares masks downsampled by this factor (4 or 16)."""


@dataclass
class RuntimeConfig:
    """Where and how the network runs."""

    device: str = "auto"
    """``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``."""
    precision: str = "fp32"
    """``fp32``, ``bf16`` or ``fp16`` (autocast)."""
    seed: int = 0
    """Seed for torch, numpy and random."""


@dataclass
class DataConfig:
    """Training data: where the datasets live and how clips are sampled and augmented."""

    # Fields are added by the data issue (training datasets).


@dataclass
class TrainConfig:
    """Training: stages, optimiser, schedule, loss, logging, checkpoints."""

    # Fields are added by the training issue.


@dataclass
class InferenceConfig:
    """Inference: processing size, fast paths and how outputs are produced."""

    # Fields are added by the inference issue.


@dataclass
class REMNConfig:
    """Everything a run needs."""

    name: str = "remn"
    """Name of the configuration, used for run folders."""
    model: ModelConfig = field(default_factory=ModelConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)


_CHOICES = {
    "memory.interval_mode": ("absolute", "relative"),
    "runtime.precision": ("fp32", "bf16", "fp16"),
}


def _validate(cfg: REMNConfig, origin: str) -> None:
    problems = []
    if cfg.memory.interval_mode not in _CHOICES["memory.interval_mode"]:
        problems.append(f"memory.interval_mode={cfg.memory.interval_mode!r} is not one of "
                        f"{_CHOICES['memory.interval_mode']}")
    if cfg.runtime.precision not in _CHOICES["runtime.precision"]:
        problems.append(f"runtime.precision={cfg.runtime.precision!r} is not one of "
                        f"{_CHOICES['runtime.precision']}")
    if cfg.model.frm_window < 1 or cfg.model.frm_window % 2 == 0:
        problems.append(f"model.frm_window={cfg.model.frm_window} must be a positive odd number")
    if cfg.memory.capacity < 2:
        problems.append(f"memory.capacity={cfg.memory.capacity} must be at least 2")
    if cfg.memory.rrm_policies < 1:
        problems.append(f"memory.rrm_policies={cfg.memory.rrm_policies} must be at least 1")
    if cfg.memory.top_k < 0:
        problems.append(f"memory.top_k={cfg.memory.top_k} must be >= 0 (0: full softmax)")
    if cfg.memory.mem_every < 1:
        problems.append(f"memory.mem_every={cfg.memory.mem_every} must be at least 1")
    if not 1 <= cfg.memory.asm_min_interval <= cfg.memory.asm_max_interval:
        problems.append("memory.asm_min_interval and memory.asm_max_interval must satisfy "
                        f"1 <= min <= max, got {cfg.memory.asm_min_interval} and "
                        f"{cfg.memory.asm_max_interval}")
    if cfg.memory.asm_stride < 1:
        problems.append(f"memory.asm_stride={cfg.memory.asm_stride} must be at least 1")
    if problems:
        raise ConfigError(f"{origin}: " + "; ".join(problems))


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> object:
    """Read one YAML file, merged on top of the ``base`` file it names (if any)."""
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"config files include each other in a loop: {chain}")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        node = OmegaConf.load(path)
    except Exception as exc:  # yaml errors come in several classes
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not OmegaConf.is_dict(node):
        raise ConfigError(f"{path}: the top level must be a mapping of keys to values")
    base = node.pop("base", None)
    if base is None:
        return node
    parent = _read_yaml((path.parent / str(base)), (*seen, path))
    return OmegaConf.merge(parent, node)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> REMNConfig:
    """Build a typed :class:`REMNConfig`.

    Args:
        path: a YAML file from ``configs/`` (or your own); ``None`` keeps the defaults,
            which are REMN with every module on.
        overrides: ``key=value`` strings applied last, e.g. ``["memory.rrm=false"]``.

    Raises:
        ConfigError: unknown key, wrong type, bad value, missing file, or a
            malformed override; the message names where it came from.
    """
    schema = OmegaConf.structured(REMNConfig)
    origin = "defaults"
    try:
        if path is not None:
            origin = str(path)
            schema = OmegaConf.merge(schema, _read_yaml(Path(path)))
        bad = [o for o in overrides if "=" not in o or o.startswith("=")]
        if bad:
            raise ConfigError(f"overrides must look like key=value, got {bad}")
        if overrides:
            origin = f"{origin} with overrides {list(overrides)}"
            schema = OmegaConf.merge(schema, OmegaConf.from_dotlist(list(overrides)))
        cfg = OmegaConf.to_object(schema)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{origin}: {exc}".strip()) from exc
    assert isinstance(cfg, REMNConfig)
    _validate(cfg, origin)
    return cfg


def config_to_yaml(cfg: REMNConfig) -> str:
    """The resolved configuration as YAML (for run folders and logs)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
