"""What the checks measure and how long each may take: the GPU setting and the CPU rehearsal (``--tiny``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["CHECKS", "Settings", "make_settings", "one_line", "last_line"]

CHECKS = ("device", "agreement", "speed", "profile", "train", "torchrun", "cuda_graphs", "compile")
"""The checks, in the order they run: the most needed first, compilation (the slowest) last."""

GPU_BUDGETS = {
    "device": 30,
    "agreement": 45,
    "speed": 150,
    "profile": 35,
    "train": 80,
    "torchrun": 50,
    "cuda_graphs": 60,
    "compile": 140,
}
"""Seconds each check may take on a GPU; their sum is over ``total_budget`` on purpose: the total
decides, and what is left when compile starts is what it gets."""


@dataclass
class Settings:
    """Sizes, lengths and time budgets (seconds) of the checks; defaults are the GPU setting."""

    out: str
    """Absolute output folder."""
    device: str = "auto"
    tiny: bool = False
    checkpoint: str | None = None
    """REMN or STCN weights; None: random weights."""
    height: int = 480
    width: int = 854
    objects: tuple[int, ...] = (1, 3)
    agreement_frames: int = 60
    length: int = 200
    """The short length of the speed runs; the long one is 3x this."""
    cycle: int = 100
    """Generated frames, played forwards and backwards to any length."""
    warmup: int = 5
    compare_frames: int = 30
    """Frames of a switch compared in lockstep with the plain bf16 core."""
    profile_after: int = 30
    profile_steps: int = 5
    train_size: tuple[int, int] = (480, 854)
    """(H, W) of the generated training videos."""
    train_videos: int = 8
    train_frames: int = 24
    train_crop: int = 384
    train_batch: int = 8
    train_iterations: int = 30
    train_log_every: int = 10
    """Iterations per speed window; the first window (the start) is left out of it/s."""
    train_workers: int = 8
    train_precision: str = "bf16"
    train_overrides: list[str] = field(default_factory=list)
    torchrun_iterations: int = 3
    torchrun_batch: int = 2
    compile_backend: str = "inductor"
    total_budget: float = 420.0
    """All checks together: 7 minutes, so that a run ends within 8 and leaves a loan time to rerun."""
    min_budget: float = 10.0
    """A check is not started with less than this left."""
    budgets: dict[str, float] = field(default_factory=lambda: dict(GPU_BUDGETS))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> "Settings":
        data = json.loads(Path(path).read_text())
        data["objects"], data["train_size"] = tuple(data["objects"]), tuple(data["train_size"])
        return cls(**data)


TINY = dict(
    height=48,
    width=64,
    agreement_frames=6,
    length=4,
    cycle=6,
    warmup=1,
    compare_frames=3,
    profile_after=3,
    profile_steps=2,
    train_size=(48, 64),
    train_videos=2,
    train_frames=6,
    train_crop=32,
    train_batch=2,
    train_iterations=3,
    train_log_every=1,
    train_workers=0,
    train_precision="fp32",
    torchrun_iterations=1,
    torchrun_batch=1,
    train_overrides=["train.main.freeze_encoders=true"],
    compile_backend="eager",
    total_budget=300.0,
    min_budget=5.0,
)
"""The CPU rehearsal: every check at sizes a CPU runs in seconds. Training in fp32 with the
encoders fixed (a bf16 step on a CPU is slower; Adam over the whole network dominates a tiny
step), compile with dynamo's tracing only (inductor's code generation takes minutes on a CPU)."""


def make_settings(
    out: str | Path,
    device: str = "auto",
    tiny: bool = False,
    checkpoint: str | None = None,
    total_budget: float | None = None,
    compile_backend: str | None = None,
) -> Settings:
    """The GPU setting (854x480, 200 and 600 frames, training at 384x384, batch 8, bf16), or with
    ``tiny`` the CPU rehearsal (64x48, a few frames and iterations)."""
    settings = Settings(
        out=str(Path(out).resolve()), device=device, tiny=tiny, checkpoint=checkpoint, **(TINY if tiny else {})
    )
    if tiny:
        settings.budgets = {name: 60.0 for name in CHECKS}
    if total_budget is not None:
        settings.total_budget = float(total_budget)
    if compile_backend is not None:
        settings.compile_backend = compile_backend
    return settings


def one_line(text: object, limit: int = 300) -> str:
    """``text`` on one line of at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def last_line(text: str) -> str:
    """The last non-empty line of ``text`` (an error's last words), on one line."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return one_line(lines[-1]) if lines else ""
