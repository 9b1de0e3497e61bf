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

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .errors import EXIT_USAGE, REMNError

__all__ = [
    "ModelConfig",
    "MemoryConfig",
    "RuntimeConfig",
    "DataConfig",
    "TrainConfig",
    "StageConfig",
    "TRAIN_STAGES",
    "SCHEDULES",
    "InferenceConfig",
    "REMNConfig",
    "ConfigError",
    "CONFIG_DIR",
    "find_config",
    "load_config",
    "config_to_yaml",
]


class ConfigError(REMNError, ValueError):
    """A configuration file or override that cannot be used (exit status 2)."""

    exit_status = EXIT_USAGE


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
    precision: str = "auto"
    """Inference autocast: ``auto`` (bf16 where the device computes it natively: a CUDA GPU with
    bf16, a CPU with AVX512-BF16 or AMX; else fp32), ``fp32``, ``bf16`` or ``fp16``."""
    seed: int = 0
    """Seed for torch, numpy and random."""


@dataclass
class DataConfig:
    """Training data: where the datasets live and how clips are sampled and augmented.

    Relative roots are relative to the working directory (STCN's ``../DAVIS`` convention).
    Clip lengths are per stage (``train.<stage>.clip_frames``); loader workers are
    ``train.num_workers``.
    """

    davis_root: str = "../DAVIS/2017/trainval"
    """DAVIS 2017 trainval (``JPEGImages/480p``, ``Annotations/480p``, ``ImageSets/2017/train.txt``)."""
    youtube_root: str = "../YouTube/train_480p"
    """YouTube-VOS training set at 480p (``JPEGImages/<video>``, ``Annotations/<video>``)."""
    static_root: str = "../static"
    """Folder of the static image sets (fss, DUTS-TR, DUTS-TE, ecssd, BIG_small, HRSOD_small)."""
    bl30k_root: str = "../BL30K"
    """BL30K (``JPEGImages/<video>``, ``Annotations/<video>``)."""
    synthetic_root: str = ""
    """A DAVIS-style synthetic video set for the synthetic stage (the videos of its
    ``ImageSets/2017/train.txt`` when present, else all); empty: none."""
    davis_subset: str = ""
    """File listing the DAVIS videos to train on; empty: ``ImageSets/2017/train.txt``."""
    youtube_subset: str = ""
    """File listing the YouTube-VOS videos to train on; empty: all."""
    davis_repeat: int = 5
    """Times DAVIS is repeated next to YouTube-VOS in one epoch (STCN: 5)."""
    crop_size: int = 384
    """Side of the square training crop (a multiple of 16)."""
    crop_scale_min: float = 0.36
    """Smallest area fraction of RandomResizedCrop for video clips."""
    bl30k_crop_scale_min: float = 0.25
    """Smallest area fraction of RandomResizedCrop for BL30K."""
    max_objects: int = 2
    """Objects per training clip (object slots of a sample)."""
    max_skip_start: int = 5
    """Max skip between clip frames at the start of a stage (the curriculum's first value)."""
    skip_values: list[int] = field(default_factory=lambda: [10, 15, 20, 25, 5])
    """Max skip from ``skip_fractions[i]`` of the stage on."""
    skip_fractions: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.9])
    """Fractions of the stage at which ``skip_values`` take over (increasing)."""
    youtube_skip_divisor: int = 5
    """YouTube-VOS training frames are every 5th frame: its skip is max skip // this."""
    static_hr_repeat: int = 5
    """Times BIG_small and HRSOD_small are repeated in the static set."""
    static_tps_probability: float = 0.33
    """Probability of a thin-plate-spline bend per static pseudo frame."""
    static_tps_points: int = 12
    """Control points of the thin-plate-spline bend."""
    static_tps_std: float = 0.02
    """Spread of the control-point offsets, in fractions of the image size."""


@dataclass
class StageConfig:
    """One training stage. STCN restarts the iteration counter, the optimiser and the
    learning-rate schedule at every stage; only the network weights carry over."""

    iterations: int = 150_000
    """Optimiser steps in the stage."""
    batch_size: int = 8
    """Global batch per optimiser step = processes x per-process batch x
    ``train.grad_accumulation`` (STCN: 2 GPUs x 4 clips; 2 x 8 images in the static stage)."""
    lr: float = 1e-5
    """Adam learning rate at the start of the stage."""
    milestones: list[int] = field(default_factory=lambda: [125_000])
    """Iterations of the stage at which the learning rate is multiplied by ``train.lr_gamma``
    (``schedule: step``)."""
    schedule: str = "step"
    """Learning-rate schedule: ``step`` (STCN: ``lr`` times ``train.lr_gamma`` at each milestone)
    or ``cosine`` (from ``lr`` down to 0 at the end of the stage)."""
    warmup: int = 0
    """Iterations of linear warm-up before the schedule: the rate rises from ``lr / warmup`` to
    ``lr``; 0 = none."""
    lr_multipliers: dict[str, float] = field(default_factory=dict)
    """Learning-rate factors by parameter-name prefix, e.g. ``{frm: 10.0, rrm.gate: 10.0}``: the
    parameters under that module learn at ``lr`` times the factor (the longest prefix wins; the
    schedule scales every rate alike); empty: one rate for all."""
    clip_frames: int = 3
    """Frames per training clip: frame 0 is given, the loss covers the others."""
    freeze_encoders: bool = False
    """Keep the key encoder, key projection, key compression and value encoder fixed."""
    reduce_memory: bool = False
    """Apply RRM whenever the clip's working memory reaches ``memory.capacity`` frames."""
    rrm_loss_weight: float = 0.0
    """Weight of RRM's KL loss added to the segmentation loss."""


SCHEDULES = ("step", "cosine")
"""Values of ``train.<stage>.schedule``."""

TRAIN_STAGES = ("static", "synthetic", "main", "rrm")
"""Stage names ``train.stages`` may list; each has its own :class:`StageConfig` under ``train``."""


@dataclass
class TrainConfig:
    """Training: stages, optimiser, schedule, loss, logging, checkpoints."""

    stages: list[str] = field(default_factory=lambda: ["main"])
    """Stages run one after the other in one launch, each from the previous one's weights."""
    static: StageConfig = field(
        default_factory=lambda: StageConfig(iterations=300_000, batch_size=16, milestones=[150_000])
    )
    """Pre-training on static images turned into pseudo clips (STCN stage 0)."""
    synthetic: StageConfig = field(
        default_factory=lambda: StageConfig(iterations=500_000, batch_size=8, milestones=[400_000])
    )
    """Synthetic videos (STCN stage 1, BL30K)."""
    main: StageConfig = field(
        default_factory=lambda: StageConfig(iterations=150_000, batch_size=8, milestones=[125_000])
    )
    """DAVIS + YouTube-VOS (STCN stage 3, after static; stage 2 after synthetic: 300k, [250k])."""
    rrm: StageConfig = field(
        default_factory=lambda: StageConfig(
            iterations=20_000,
            batch_size=4,
            milestones=[15_000],
            clip_frames=19,
            freeze_encoders=True,
            reduce_memory=True,
            rrm_loss_weight=1.0,
        )
    )
    """Long clips that fill the memory to N frames, reduce it with RRM and segment on (ours)."""
    weight_decay: float = 1e-7
    """Adam weight decay (all trained parameters, batch norm affine ones included)."""
    lr_gamma: float = 0.1
    """Learning-rate factor at each milestone."""
    clip_grad_norm: float = 0.0
    """Largest L2 norm of all gradients together before each optimiser step (scaled down to it
    when above; after the fp16 gradient scaler's unscaling); 0 = no clipping (STCN)."""
    bootstrap_start: int = 20_000
    """Bootstrapped CE: plain mean CE before this iteration of the stage."""
    bootstrap_end: int = 70_000
    """Iteration where the kept fraction of hardest pixels reaches ``bootstrap_final``."""
    bootstrap_final: float = 0.15
    """Fraction of the hardest pixels kept from ``bootstrap_end`` on."""
    grad_accumulation: int = 1
    """Micro-batches whose gradients are summed before each optimiser step."""
    precision: str = "auto"
    """Autocast in training: ``auto`` (bf16 on CUDA, fp16 if the GPU lacks bf16; fp32 on
    CPU), ``fp32``, ``bf16`` or ``fp16`` (with a gradient scaler)."""
    num_workers: int = 4
    """Data-loading worker processes per training process."""
    deterministic: bool = False
    """Deterministic algorithms and no cuDNN autotuning (slower; for exact reproduction)."""
    freeze_batchnorm: bool = True
    """Keep batch-norm statistics fixed (STCN, starting from ImageNet weights); false lets
    them adapt, which training from scratch (the demo) needs."""
    run_dir: str = "runs"
    """Folder holding one sub-folder per run (``<run_dir>/<name>``)."""
    log_every: int = 100
    """Iterations between tensorboard scalars."""
    progress_every: int = 0
    """Iterations between the plain progress lines printed when stderr is not a terminal (a
    terminal gets a tqdm bar); 0 = a twentieth of the stage (about 20 lines per stage)."""
    image_every: int = 800
    """Iterations between tensorboard images (frames, ground truth, predictions)."""
    save_every: int = 5_000
    """Iterations between resume checkpoints (``checkpoints/latest.pt``, overwritten)."""
    weights_every: int = 50_000
    """Iterations between kept weight files (``checkpoints/<stage>_<iteration>.pth``)."""


@dataclass
class InferenceConfig:
    """Inference: processing size, fast paths and how outputs are produced."""

    size: int = 480
    """Shorter side of the frames the network sees (outputs keep the input size); -1 keeps
    the input size."""
    topk_gather: bool = True
    """Top-k memory read by gathering the k picked values per query position; false:
    STCN's dense read (scatter into an M x Q matrix, multiply with every value)."""
    chunk_size: int = 0
    """Memory positions whose affinities exist at once in the gathered read, with a running
    top-k across chunks; 0 = all at once."""
    batch_objects: bool = True
    """Decode (and encode the values of) all objects in one batch; false: one at a time."""
    channels_last: bool = False
    """Run the convolutions in channels-last layout (converts the model in place)."""
    compile: bool = False
    """``torch.compile`` the per-frame stages (encoder, FRM, decoder, value encoder); compiles
    once per input size and object count. Off until measured on a GPU."""
    compile_backend: str = "inductor"
    """The ``torch.compile`` backend: ``inductor`` generates kernels; ``eager`` only traces
    (a quick check on a CPU that the stages compile, without the minutes of code generation)."""
    cuda_graphs: bool = False
    """Capture each per-frame stage as a CUDA graph per input size and object count and replay
    it (CUDA only; ignored with a warning elsewhere). Off until measured on a GPU."""
    flip: bool = False
    """Flip test-time augmentation: each frame and its horizontal mirror are segmented, each with
    its own memory, and their probabilities averaged (about twice the time)."""


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
    "runtime.precision": ("auto", "fp32", "bf16", "fp16"),
    "inference.compile_backend": ("inductor", "eager", "aot_eager"),
}


def _train_problems(cfg: REMNConfig) -> list[str]:
    """What is wrong with ``cfg.train`` (stages, schedule, loss, logging)."""
    train, problems = cfg.train, []
    if not train.stages:
        problems.append("train.stages is empty; list at least one of " + ", ".join(TRAIN_STAGES))
    for name in train.stages:
        if name not in TRAIN_STAGES:
            problems.append(f"train.stages names {name!r}, which is not one of {TRAIN_STAGES}")
    repeated = sorted({name for name in train.stages if train.stages.count(name) > 1})
    if repeated:
        problems.append(f"train.stages lists {repeated} more than once; a stage runs once per launch")
    if train.precision not in ("auto", "fp32", "bf16", "fp16"):
        problems.append(f"train.precision={train.precision!r} is not one of ('auto', 'fp32', 'bf16', 'fp16')")
    for key in ("grad_accumulation", "log_every", "image_every", "save_every", "weights_every"):
        if getattr(train, key) < 1:
            problems.append(f"train.{key}={getattr(train, key)} must be at least 1")
    if train.num_workers < 0:
        problems.append(f"train.num_workers={train.num_workers} must be >= 0")
    if train.progress_every < 0:
        problems.append(f"train.progress_every={train.progress_every} must be >= 0 (0: about 20 lines per stage)")
    if not train.clip_grad_norm >= 0:
        problems.append(f"train.clip_grad_norm={train.clip_grad_norm} must be >= 0 (0: no clipping)")
    if train.weight_decay < 0 or not 0 < train.lr_gamma <= 1:
        problems.append(
            f"train.weight_decay={train.weight_decay} must be >= 0 and train.lr_gamma={train.lr_gamma} in (0, 1]"
        )
    if not 0 <= train.bootstrap_start <= train.bootstrap_end or not 0 < train.bootstrap_final <= 1:
        problems.append(
            "bootstrapped CE needs 0 <= train.bootstrap_start <= train.bootstrap_end and "
            f"0 < train.bootstrap_final <= 1, got {train.bootstrap_start}, {train.bootstrap_end}, "
            f"{train.bootstrap_final}"
        )
    for name in TRAIN_STAGES:
        stage: StageConfig = getattr(train, name)
        where = f"train.{name}"
        if stage.iterations < 1 or stage.batch_size < 1:
            problems.append(f"{where}.iterations and {where}.batch_size must be at least 1")
        if stage.lr <= 0 or stage.rrm_loss_weight < 0:
            problems.append(f"{where}.lr must be > 0 and {where}.rrm_loss_weight >= 0")
        if list(stage.milestones) != sorted(stage.milestones) or any(m < 1 for m in stage.milestones):
            problems.append(f"{where}.milestones={list(stage.milestones)} must be increasing positive iterations")
        if stage.schedule not in SCHEDULES:
            problems.append(f"{where}.schedule={stage.schedule!r} is not one of {SCHEDULES}")
        if not 0 <= stage.warmup < stage.iterations:
            problems.append(
                f"{where}.warmup={stage.warmup} must be >= 0 and below {where}.iterations={stage.iterations}"
            )
        bad = {
            k: v for k, v in stage.lr_multipliers.items() if not k or k.startswith(".") or k.endswith(".") or not v > 0
        }
        if bad:
            problems.append(
                f"{where}.lr_multipliers={bad}: give module names of the network (e.g. frm, rrm.gate, "
                "decoder) and factors > 0"
            )
        if stage.clip_frames < 2:
            problems.append(
                f"{where}.clip_frames={stage.clip_frames} must be at least 2 (a given frame and one to segment)"
            )
        if stage.reduce_memory and name in train.stages:
            if not cfg.memory.rrm:
                problems.append(f"{where}.reduce_memory=true needs RRM in the network (memory.rrm=true)")
            elif stage.clip_frames < cfg.memory.capacity + 2:
                problems.append(
                    f"{where}.clip_frames={stage.clip_frames} is too short to train RRM: frame 0, "
                    f"memory.capacity={cfg.memory.capacity} frames to fill the memory and at least "
                    f"one frame segmented from the reduced memory need {cfg.memory.capacity + 2}"
                )
    return problems


def _data_problems(data: DataConfig) -> list[str]:
    """What is wrong with ``cfg.data`` (sizes, curriculum, probabilities)."""
    problems = []
    if data.crop_size < 16 or data.crop_size % 16:
        problems.append(f"data.crop_size={data.crop_size} must be a positive multiple of 16")
    for key in ("crop_scale_min", "bl30k_crop_scale_min"):
        if not 0 < getattr(data, key) <= 1:
            problems.append(f"data.{key}={getattr(data, key)} must be in (0, 1]")
    for key in ("davis_repeat", "max_objects", "max_skip_start", "youtube_skip_divisor", "static_hr_repeat"):
        if getattr(data, key) < 1:
            problems.append(f"data.{key}={getattr(data, key)} must be at least 1")
    if len(data.skip_values) != len(data.skip_fractions):
        problems.append(
            f"data.skip_values ({len(data.skip_values)} values) and data.skip_fractions "
            f"({len(data.skip_fractions)}) must have the same length"
        )
    if any(v < 1 for v in data.skip_values):
        problems.append(f"data.skip_values={list(data.skip_values)} must all be at least 1")
    fractions = list(data.skip_fractions)
    if fractions != sorted(fractions) or any(not 0 <= f <= 1 for f in fractions):
        problems.append(f"data.skip_fractions={fractions} must be increasing fractions in [0, 1]")
    if not 0 <= data.static_tps_probability <= 1 or data.static_tps_std < 0:
        problems.append(
            f"data.static_tps_probability={data.static_tps_probability} must be in [0, 1] and "
            f"data.static_tps_std={data.static_tps_std} >= 0"
        )
    if data.static_tps_points < 3:
        problems.append(f"data.static_tps_points={data.static_tps_points} must be at least 3")
    return problems


def _validate(cfg: REMNConfig, origin: str) -> None:
    problems = _train_problems(cfg)
    if cfg.memory.interval_mode not in _CHOICES["memory.interval_mode"]:
        problems.append(
            f"memory.interval_mode={cfg.memory.interval_mode!r} is not one of {_CHOICES['memory.interval_mode']}"
        )
    if cfg.runtime.precision not in _CHOICES["runtime.precision"]:
        problems.append(f"runtime.precision={cfg.runtime.precision!r} is not one of {_CHOICES['runtime.precision']}")
    if cfg.inference.compile_backend not in _CHOICES["inference.compile_backend"]:
        problems.append(
            f"inference.compile_backend={cfg.inference.compile_backend!r} is not one of "
            f"{_CHOICES['inference.compile_backend']}"
        )
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
        problems.append(
            "memory.asm_min_interval and memory.asm_max_interval must satisfy "
            f"1 <= min <= max, got {cfg.memory.asm_min_interval} and "
            f"{cfg.memory.asm_max_interval}"
        )
    if cfg.memory.asm_stride < 1:
        problems.append(f"memory.asm_stride={cfg.memory.asm_stride} must be at least 1")
    if cfg.inference.size == 0 or cfg.inference.size < -1:
        problems.append(
            f"inference.size={cfg.inference.size} must be a positive shorter side in pixels, or -1 for the input size"
        )
    if cfg.inference.chunk_size < 0:
        problems.append(f"inference.chunk_size={cfg.inference.chunk_size} must be >= 0 (0: no chunking)")
    problems.extend(_data_problems(cfg.data))
    if problems:
        raise ConfigError(f"{origin}: " + "; ".join(problems))


def _one_line(text: object, limit: int = 300) -> str:
    """A library's message as one line: whitespace runs (newlines too) become one space."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> object:
    """Read one YAML file, merged on top of the ``base`` file it names (if any)."""
    path = path.resolve()
    if path in seen:
        chain = " -> ".join(str(p) for p in (*seen, path))
        raise ConfigError(f"config files include each other in a loop: {chain}; remove one of these base: entries")
    if not path.is_file():
        if seen:
            raise ConfigError(
                f"{path}: config file not found, named by 'base:' in {seen[-1]}; fix that base: "
                "entry (a path relative to the file that names it)"
            )
        raise ConfigError(f"config file not found: {path}; check the --config path")
    try:
        node = OmegaConf.load(path)
    except Exception as exc:  # yaml errors come in several classes
        raise ConfigError(f"{path}: not valid YAML ({_one_line(exc)}); fix the file at the line named") from exc
    if not OmegaConf.is_dict(node):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys to values (e.g. 'memory:' and below it "
            "'  rrm: false'); see configs/remn.yaml"
        )
    base = node.pop("base", None)
    if base is None:
        return node
    parent = _read_yaml((path.parent / str(base)), (*seen, path))
    return OmegaConf.merge(parent, node)


def _omegaconf_problem(exc: Exception) -> str:
    """An OmegaConf or YAML error as one line naming the setting and the fix."""
    if not isinstance(exc, OmegaConfBaseException):  # YAML that does not parse, in an override's value
        said = " ".join(str(part) for part in (getattr(exc, "context", None), getattr(exc, "problem", None)) if part)
        return f"an override's value is not valid YAML ({_one_line(said or exc)}); quote it or fix its brackets"
    text = _one_line((str(exc).splitlines() or [type(exc).__name__])[0])
    key = getattr(exc, "full_key", None)
    where = f"{key}: " if key else ""
    if type(exc).__name__ == "ConfigKeyError":
        fix = "no such setting; check its spelling (docs/config.md lists every setting)"
    else:
        fix = "give a value of the type docs/config.md lists for it"
    return f"{where}{text}; {fix}"


CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
"""The project's ``configs/`` folder, found from the package (not from the current folder)."""


def find_config(name: str | Path) -> Path:
    """The YAML file a ``--config`` value names: an existing path as given; otherwise a file of
    the project's ``configs/`` folder named with or without ``configs/`` and ``.yaml``
    (``remn``, ``train/main``, ``configs/ablation/no_rrm.yaml``)."""
    path = Path(name).expanduser()
    if path.is_file():
        return path
    relative = Path(*path.parts[1:]) if path.parts[:1] == ("configs",) else path
    for candidate in (CONFIG_DIR / relative, CONFIG_DIR / relative.with_name(relative.name + ".yaml")):
        if not path.is_absolute() and candidate.is_file():
            return candidate
    known = ", ".join(
        sorted(
            p.relative_to(CONFIG_DIR).with_suffix("").as_posix()
            for p in CONFIG_DIR.rglob("*.yaml")
            if p.name != "benchmarks.yaml"
        )
    )
    raise ConfigError(
        f"config file not found: {name}; pass --config a YAML file or one of the project's configs: {known}"
    )


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> REMNConfig:
    """Build a typed :class:`REMNConfig`.

    Args:
        path: a YAML file (your own, or one of ``configs/``, also by name: see
            :func:`find_config`); ``None`` keeps the defaults, which are REMN with every module on.
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
            schema = OmegaConf.merge(schema, _read_yaml(find_config(path)))
        bad = [o for o in overrides if "=" not in o or o.startswith("=")]
        if bad:
            raise ConfigError(f"overrides must look like key=value, got {bad}; write e.g. memory.rrm=false")
        if overrides:
            origin = f"{origin} with overrides {list(overrides)}"
            schema = OmegaConf.merge(schema, OmegaConf.from_dotlist(list(overrides)))
        cfg = OmegaConf.to_object(schema)
    except ConfigError:
        raise
    except (OmegaConfBaseException, yaml.YAMLError) as exc:
        raise ConfigError(f"{origin}: {_omegaconf_problem(exc)}") from exc
    assert isinstance(cfg, REMNConfig)
    _validate(cfg, origin)
    return cfg


def config_to_yaml(cfg: REMNConfig) -> str:
    """The resolved configuration as YAML (for run folders and logs)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
