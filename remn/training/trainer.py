"""The training loop: stages, optimiser and schedule, data order, checkpoints, resume.

A run trains the stages listed in ``train.stages`` one after the other. Each stage
starts from the previous stage's final weights with a new Adam optimiser, a new
MultiStepLR schedule (stepped every iteration) and an iteration counter at 0, as STCN
does. Batch norm stays frozen throughout.

Exact resume. ``checkpoints/latest.pt`` holds the network, optimiser, gradient scaler
and schedule, the stage and iteration, the data position (epoch, batches taken from
it, current max skip) and every process's random states (torch, CUDA, NumPy, Python).
The data order is a function of (seed, stage, epoch) alone (:class:`ResumableSampler`
and a seeded loader generator), so a resumed run takes exactly the batches the
uninterrupted one would have taken. With ``train.num_workers=0`` and
``train.deterministic=true`` a resumed run reproduces the uninterrupted one bit for bit;
with loader workers the order is still exact but the augmentations of the interrupted
epoch may differ (workers take batches round-robin from their own random streams).

Everything in a checkpoint is a tensor or a plain Python value, so it is read with
``torch.load(weights_only=True)``.

Stopping. While :meth:`Trainer.run` runs, SIGINT (Ctrl-C) and SIGTERM (a scheduler, or
torchrun passing either on) ask the run to stop: the current optimiser step finishes,
``latest.pt`` is written and :class:`TrainingInterrupted` is raised with one line saying
what was saved and the command that continues the run (``train.py`` exits 130 or 143).
Every process checks for a signal at the same point of each iteration (one all-reduce of
one integer when distributed), so they all stop at the same step; ``save_checkpoint`` is
collective. A second signal stops at once without saving (``latest.pt`` is written
atomically, so the previous one is intact); a third ends the process with ``os._exit`` in
case the cleanup hangs. Loader workers ignore both signals, so only the main process
decides. The previous handlers are restored when ``run`` returns.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import random
import shlex
import shutil
import signal
import sys
import threading
import time
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..config import REMNConfig, StageConfig, TrainConfig, config_to_yaml
from ..errors import EXIT_NON_FINITE, REMNError
from ..outputs import check_not_overlapping
from ..model import REMN, build_model
from ..model.checkpoint import CheckpointError, atomic_save, load_stcn_checkpoint, read_state_dict, save_weights
from ..runtime import autocast, resolve_device, seed_everything
from .distributed import (DistributedContext, ResumableSampler, all_reduce_mean, any_process, gather_objects,
                          max_over_processes, split_batch)
from .logging import RunFolder, TrainLogger, clip_image
from .loss import bootstrap_fraction, clip_segmentation_loss, mask_iou
from .step import ClipOutput, ClipPass

__all__ = [
    "Trainer",
    "TrainSummary",
    "TrainingError",
    "DataLoadError",
    "NonFiniteLossError",
    "TrainingInterrupted",
    "StopSignals",
    "STOP_SIGNALS",
    "resume_command",
    "DataSource",
    "VideoDataSource",
    "DataPosition",
    "BatchStream",
    "ENCODER_MODULES",
    "resolve_precision",
    "configure_trainable",
    "make_optimizer",
    "make_scheduler",
    "capture_rng_state",
    "restore_rng_state",
    "load_training_checkpoint",
    "load_initial_weights",
    "CHECKPOINT_FORMAT",
]

CHECKPOINT_FORMAT = "remn-training-checkpoint-v1"
"""Value of the ``format`` entry of ``latest.pt``."""

ENCODER_MODULES = ("key_encoder", "key_proj", "key_comp", "value_encoder")
"""Top-level modules a stage with ``freeze_encoders`` keeps fixed."""


class TrainingError(REMNError, RuntimeError):
    """Training cannot go on (bad data, nothing to resume, a run folder in use...)."""


_STAGE_DATA = {"static": "data.static_root", "synthetic": "data.synthetic_root and data.bl30k_root",
               "main": "data.davis_root and data.youtube_root", "rrm": "data.davis_root and data.youtube_root"}
"""The settings that say where a stage's training data is."""


def _first_line(error: BaseException, limit: int = 200) -> str:
    """A library's (often multi-line) message as one short line."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


class DataLoadError(REMNError, RuntimeError):
    """Bad training data met in a DataLoader worker process (exit status 1).

    The worker raises it with the one-line message of the data error. PyTorch raises it again in
    the main process with the worker's whole traceback as its text; the message keeps only the
    worker's line, so ``train.py`` prints one ``error:`` line as for the same error without workers.
    """

    def __init__(self, message: str) -> None:
        super().__init__(_worker_line(str(message)))


def _worker_line(text: str) -> str:
    """The original one-line message inside PyTorch's 'Caught ... in DataLoader worker' text."""
    if not text.startswith("Caught ") or "Traceback" not in text:
        return text
    tag = f"{DataLoadError.__qualname__}: "
    for line in reversed(text.splitlines()):
        head, found, rest = line.partition(tag)
        if found and (head == "" or head.endswith(".")):
            return rest.strip()
    return " ".join(text.split())


class _WorkerErrors(Dataset):
    """A dataset whose expected failures in a loader worker reach the main process as one line."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        from ..data.masks import DataError

        try:
            return self.dataset[index]
        except (REMNError, DataError) as error:
            raise DataLoadError(str(error)) from None


class NonFiniteLossError(TrainingError):
    """The loss became NaN or infinite; the run stopped without saving that step (exit status 3)."""

    exit_status = EXIT_NON_FINITE


class TrainingInterrupted(BaseException):
    """SIGINT or SIGTERM stopped :meth:`Trainer.run`; ``train.py`` exits with :attr:`exit_code`.

    A ``BaseException``, as ``KeyboardInterrupt`` is, so that ``except Exception`` does not
    swallow it. The message (also in ``train.log``) says what was saved and how to continue.

    Attributes:
        signal_name: ``"SIGINT"`` or ``"SIGTERM"``.
        exit_code: 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM.
        immediate: a second signal stopped the run at once, without saving.
        checkpoint: ``latest.pt`` when the run has one (None: nothing was saved yet).
    """

    def __init__(self, message: str, signum: int, *, immediate: bool = False,
                 checkpoint: Path | None = None) -> None:
        super().__init__(message)
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + int(signum)
        self.immediate = immediate
        self.checkpoint = checkpoint


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals :class:`StopSignals` takes over: Ctrl-C and a scheduler's (or torchrun's) stop."""


class _StopAtOnce(BaseException):
    """Raised by the handler on a second signal; :meth:`Trainer.run` turns it into TrainingInterrupted."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)


class StopSignals:
    """SIGINT and SIGTERM as requests to stop, while active (``with StopSignals() as stop:``).

    The first signal only records its number in :attr:`requested`; the training loop looks at
    it once per iteration. The second raises wherever the main thread is (to stop at once),
    the third ends the process with ``os._exit(128 + signal)`` in case the cleanup hangs. The
    previous handlers come back when the block ends. Signals reach the main thread only: in
    another thread this does nothing (:attr:`active` stays False). A forked child that
    inherited the handler (a loader worker before its init function runs) ignores the signal.
    """

    def __init__(self) -> None:
        self.requested = 0
        """Number of the first signal received (0: none)."""
        self.active = False
        self._received = 0
        self._pid = os.getpid()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._pid = os.getpid()
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
            self.active = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        self._previous.clear()
        self.active = False

    def _handle(self, signum: int, frame: object) -> None:
        if os.getpid() != self._pid:
            return
        self._received += 1
        if self._received == 1:
            self.requested = int(signum)
        elif self._received == 2:
            raise _StopAtOnce(signum)
        else:
            name = signal.Signals(signum).name
            os.write(2, f"interrupted ({name}) a third time: exiting at once; the last checkpoint on disk is "
                        "kept\n".encode())
            os._exit(128 + int(signum))


def _ignore_stop_signals(worker_id: int) -> None:
    """Loader workers' init: ignore SIGINT and SIGTERM. Ctrl-C reaches the terminal's whole
    process group, torchrun and schedulers signal process groups; a worker that died of it
    would make the loader raise in the main process before it can save. Workers still end
    with the main process (the loader stops them; they also watch their parent)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _is_option(word: str, option: str, shortest: int) -> bool:
    """``word`` names ``option`` (argparse accepts unambiguous prefixes, and ``--opt=value``)."""
    name = word.split("=", 1)[0]
    return len(name) >= shortest and option.startswith(name)


def resume_command(argv: Sequence[str], resume: bool = True, environ: Mapping[str, str] | None = None) -> str:
    """The command that continues a run launched with ``argv`` (``sys.argv``: script, then arguments).

    ``--load-weights FILE`` is replaced by ``--resume`` (``resume=False``: the command as it
    was, to start again). The interpreter is named as on ``PATH`` when it is the one found
    there, else by its full path; under torchrun the launcher and its process counts come first.
    """
    env = os.environ if environ is None else environ
    script, args = str(argv[0]), [str(a) for a in argv[1:]]
    if resume:
        kept: list[str] = []
        has_resume = False
        i = 0
        while i < len(args):
            word = args[i]
            if word == "--":  # only positional arguments follow
                break
            if _is_option(word, "--load-weights", 3):
                i += 1 if "=" in word else 2
                continue
            has_resume = has_resume or _is_option(word, "--resume", 4)
            kept.append(word)
            i += 1
        args = kept + ([] if has_resume else ["--resume"]) + args[i:]
    if os.path.basename(script) == "remn":  # the console script: `remn train ...`, `torchrun -m remn train ...`
        if "TORCHELASTIC_RUN_ID" in env:
            script, args = "-m", ["remn", *args]
        else:
            return shlex.join(["remn", *args])
    words = shlex.join([script, *args])
    if "TORCHELASTIC_RUN_ID" in env:
        nodes = env.get("GROUP_WORLD_SIZE", "1") or "1"
        launcher = f"torchrun --nproc_per_node={env.get('LOCAL_WORLD_SIZE', '1')}"
        if nodes != "1":
            launcher = f"torchrun --nnodes={nodes} --nproc_per_node={env.get('LOCAL_WORLD_SIZE', '1')} " \
                       "<this launch's rendezvous options>"
        return f"{launcher} {words}"
    python = sys.executable or "python"
    short = os.path.basename(python)
    found = shutil.which(short)
    if found is not None and os.path.abspath(found) == os.path.abspath(python):
        python = short
    return f"{shlex.quote(python)} {words}"


class DataSource(Protocol):
    """Where a stage's clips come from (the real one is :class:`VideoDataSource`).

    ``dataset`` returns a map-style dataset whose items are dicts with ``rgb (T,3,H,W)``,
    ``gt (T,K,1,H,W)``, ``cls_gt (T,H,W)``, ``selector (K,)`` and ``info``. A dataset with a
    ``set_max_skip(int)`` method is updated in place when the curriculum moves on; others
    are built again. One with ``describe()`` is described in the log.
    """

    def dataset(self, stage: str, max_skip: int, clip_frames: int) -> Dataset: ...

    def max_skip_at(self, progress: float) -> int: ...


class VideoDataSource:
    """The project's training datasets (``remn.data.train_video``), imported on first use."""

    def __init__(self, cfg: REMNConfig) -> None:
        try:
            from ..data import train_video
        except ImportError as exc:
            raise TrainingError("the training datasets (remn/data/train_video.py) are not available in this "
                                f"version ({exc})") from exc
        self._module = train_video
        self._data_cfg = cfg.data

    def dataset(self, stage: str, max_skip: int, clip_frames: int) -> Dataset:
        return self._module.build_training_dataset(stage, self._data_cfg, max_skip, clip_frames=clip_frames)

    def max_skip_at(self, progress: float) -> int:
        return int(self._module.max_skip_at(progress, self._data_cfg))


# ----------------------------------------------------------------------------- pieces


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto``: bf16 on CUDA (fp16 where the GPU has no bf16), fp32 on CPU; else ``name``."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def configure_trainable(model: REMN, stage: StageConfig) -> list[nn.Parameter]:
    """Set ``requires_grad`` for a stage and return the parameters it trains.

    Frozen: the encoders (``freeze_encoders``) and RRM when the stage does not reduce
    memory (it would get no gradient; distributed training needs every trained
    parameter to get one).
    """
    for name, parameter in model.named_parameters():
        top = name.split(".", 1)[0]
        frozen = (stage.freeze_encoders and top in ENCODER_MODULES) or (top == "rrm" and not stage.reduce_memory)
        parameter.requires_grad_(not frozen)
    return [p for p in model.parameters() if p.requires_grad]


def make_optimizer(parameters: Sequence[nn.Parameter], stage: StageConfig, train: TrainConfig) -> torch.optim.Adam:
    """STCN's optimiser: Adam with the stage's lr and a small weight decay."""
    return torch.optim.Adam(parameters, lr=stage.lr, weight_decay=train.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, stage: StageConfig,
                   train: TrainConfig) -> torch.optim.lr_scheduler.MultiStepLR:
    """Multiply the rate by ``lr_gamma`` at each milestone; stepped once per iteration."""
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(stage.milestones), gamma=train.lr_gamma)


def _scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    """The schedule's state with plain types only (``Counter`` is not loadable with weights_only)."""
    return {k: (dict(v) if isinstance(v, Counter) else v) for k, v in scheduler.state_dict().items()}


def _load_scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler, state: Mapping[str, Any]) -> None:
    state = dict(state)
    if "milestones" in state:
        state["milestones"] = Counter({int(k): int(v) for k, v in state["milestones"].items()})
    scheduler.load_state_dict(state)


def capture_rng_state(device: torch.device = torch.device("cpu")) -> dict[str, Any]:
    """This process's random states as tensors and plain values (CUDA: ``device``'s only)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": [torch.cuda.get_rng_state(device)] if device.type == "cuda" else [],
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "state": torch.tensor(internal, dtype=torch.int64),
                   "gauss": gauss_next},
    }


def restore_rng_state(state: Mapping[str, Any], device: torch.device = torch.device("cpu")) -> None:
    """Undo :func:`capture_rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"][0], device)
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read ``latest.pt`` safely (``weights_only=True``).

    Raises:
        CheckpointError: missing, truncated or corrupt file, or not a training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no training checkpoint to resume from: {path} does not exist; give the --config and "
                              "--run-name of the run to continue, or start a new run without --resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, not a torch file, pickled code, ...
        raise CheckpointError(f"cannot read training checkpoint {path} ({path.stat().st_size} bytes); it is "
                              f"truncated or corrupt: {type(exc).__name__}: {_first_line(exc)}; restore it from a "
                              "copy, or start a new --run-name with --load-weights from one of the run's .pth "
                              "files") from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a REMN training checkpoint (expected format {CHECKPOINT_FORMAT!r}); "
                              "network weights go to --load-weights instead")
    return state


def load_initial_weights(model: REMN, path: str | Path) -> str:
    """Load network weights before training: a REMN weight file (strict) or STCN's
    released weights (FRM and RRM stay at their initialisation). Returns a report line."""
    state = read_state_dict(path)
    own = model.state_dict()
    if set(state) == set(own):
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            raise CheckpointError(f"{path} does not fit this network: {_first_line(exc, 400)}; use the --config these "
                                  "weights were trained with") from exc
        return f"loaded {len(state)} entries from {path}"
    report = load_stcn_checkpoint(model, state, name=path)
    new = ", ".join(sorted({k.rsplit('.', 2)[0] for k in report.new})) or "none"
    widened = "; value_encoder.conv1 widened from 4 to 5 channels" if report.widened_value_conv else ""
    return (f"loaded {len(report.loaded)} STCN entries from {path}; {len(report.new)} REMN entries are new "
            f"(kept at their initialisation: {new}){widened}")


def _derived_seed(*parts: int) -> int:
    """A 31-bit seed (valid for torch, NumPy and Python) that depends on every part."""
    return int(np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(1)[0] >> 1)


# ----------------------------------------------------------------------------- data


@dataclass
class DataPosition:
    """Where a stage is in its data (saved in checkpoints)."""

    epoch: int = 0
    batch_in_epoch: int = 0
    """Micro-batches this process has taken from the current epoch."""
    max_skip: int = 0
    total_epochs: int = 1
    """Epochs the stage will take; the curriculum's progress is ``epoch / total_epochs``."""


class BatchStream:
    """Micro-batches of one stage, epoch after epoch, with the max-skip curriculum.

    The dataset's ``max_skip`` follows ``data.max_skip_at(epoch / total_epochs)`` and
    changes only at epoch boundaries (the dataset is rebuilt then). The order within an
    epoch depends only on (seed, epoch); resuming skips the batches already taken.
    """

    def __init__(self, data: DataSource, stage: str, clip_frames: int, micro_batch: int, iterations: int,
                 accumulation: int, ctx: DistributedContext, seed: int, num_workers: int,
                 position: DataPosition | None = None) -> None:
        self.data, self.stage, self.clip_frames = data, stage, clip_frames
        self.micro_batch, self.ctx, self.seed, self.num_workers = micro_batch, ctx, seed, num_workers
        fresh = position is None
        self.position = DataPosition() if position is None else position
        if fresh:
            self.position.max_skip = int(data.max_skip_at(0.0))
        self._build(self.position.max_skip)
        per_epoch = self.sampler.num_samples // micro_batch
        self.note = None
        if len(self.dataset) < micro_batch * ctx.world_size:
            self.note = (f"note: stage {stage!r} has {len(self.dataset)} clip(s), fewer than one batch of "
                         f"{micro_batch} x {ctx.world_size} process(es); clips repeat within an epoch")
        if fresh:
            self.position.total_epochs = max(1, math.ceil(iterations * accumulation / per_epoch))
        self._iterator = None
        self.skip_changes: list[tuple[int, int]] = []
        """``(epoch, new max_skip)`` for every change in this launch."""

    def _build(self, max_skip: int) -> None:
        self.dataset = self.data.dataset(self.stage, max_skip, self.clip_frames)
        if len(self.dataset) == 0:
            raise TrainingError(f"stage {self.stage!r}: the training dataset is empty; check "
                                f"{_STAGE_DATA.get(self.stage, 'the data.*_root settings')}")
        self.sampler = ResumableSampler(self.dataset, self.ctx.world_size, self.ctx.rank, seed=self.seed,
                                        min_samples=self.micro_batch)

    def _start_epoch(self) -> None:
        p = self.position
        self.sampler.set_epoch(p.epoch, skip=p.batch_in_epoch * self.micro_batch)
        generator = torch.Generator().manual_seed(_derived_seed(self.seed, p.epoch, self.ctx.rank))
        dataset = _WorkerErrors(self.dataset) if self.num_workers > 0 else self.dataset
        loader = DataLoader(dataset, batch_size=self.micro_batch, sampler=self.sampler,
                            num_workers=self.num_workers, pin_memory=self.ctx.device.type == "cuda",
                            drop_last=True, generator=generator, worker_init_fn=_ignore_stop_signals)
        self._iterator = iter(loader)

    def _next_epoch(self) -> None:
        p = self.position
        p.epoch += 1
        p.batch_in_epoch = 0
        max_skip = int(self.data.max_skip_at(min(1.0, p.epoch / p.total_epochs)))
        if max_skip != p.max_skip:
            p.max_skip = max_skip
            if hasattr(self.dataset, "set_max_skip"):
                self.dataset.set_max_skip(max_skip)
            else:
                self._build(max_skip)
            self.skip_changes.append((p.epoch, max_skip))

    def next(self) -> dict[str, Any]:
        """The next micro-batch (collated dict of the dataset's items)."""
        empty_epochs = 0
        while True:
            if self._iterator is None:
                self._start_epoch()
            try:
                batch = next(self._iterator)
            except StopIteration:
                self._iterator = None
                empty_epochs += 1
                if empty_epochs > 2:
                    raise TrainingError(f"stage {self.stage!r}: the dataset gives no full batch any more "
                                        f"(max_skip {self.position.max_skip}); lower the batch size "
                                        f"(train.{self.stage}.batch_size) or add videos "
                                        f"({_STAGE_DATA.get(self.stage, 'data.*_root')})") from None
                self._next_epoch()
                continue
            except BaseException:
                # the error's traceback keeps the loader alive, and its workers ignore SIGTERM: tell
                # them to stop now, or the interpreter would wait for them forever at exit
                self.close()
                raise
            self.position.batch_in_epoch += 1
            return batch

    def close(self) -> None:
        """Stop the loader's worker processes (if any); the next batch starts a new loader."""
        iterator, self._iterator = self._iterator, None
        shutdown = getattr(iterator, "_shutdown_workers", None)  # PyTorch has no public way to do this
        if shutdown is not None:
            shutdown()


# ----------------------------------------------------------------------------- trainer


@dataclass
class StepResult:
    """What one optimiser step measured (averaged over its micro-batches)."""

    values: dict[str, float]
    policies: list[int] = field(default_factory=list)
    picture: Tensor | None = None
    names: list[str] = field(default_factory=list)


@dataclass
class TrainSummary:
    """What :meth:`Trainer.run` did."""

    history: list[dict[str, float | int | str]]
    """Every logged row (rank 0): stage, iteration, global step and the scalars."""
    finished: bool
    """All stages completed (False when ``stop_after`` stopped the run)."""
    final_weights: Path | None
    """The last stage's ``<stage>_final.pth`` when finished."""


class Trainer:
    """Trains a REMN through the configured stages.

    Args:
        cfg: the resolved configuration.
        data: where clips come from (:class:`VideoDataSource` in ``train.py``).
        run_folder: ``<train.run_dir>/<name>``.
        ctx: the process group (default: one process on ``runtime.device``).
        resume: continue from ``checkpoints/latest.pt``.
        load_weights: initial network weights (REMN or STCN file); not with ``resume``.
        progress: show a tqdm bar (rank 0).
        argv: the command line (``sys.argv``), recorded in ``run.json`` and used for the
            command that continues the run after an interruption.
    """

    def __init__(self, cfg: REMNConfig, data: DataSource, run_folder: RunFolder | str | Path,
                 ctx: DistributedContext | None = None, *, resume: bool = False,
                 load_weights: str | Path | None = None, progress: bool = True,
                 argv: Sequence[str] | None = None) -> None:
        self.cfg, self.train_cfg, self.data = cfg, cfg.train, data
        self.ctx = ctx or DistributedContext(device=resolve_device(cfg.runtime.device))
        self.device = self.ctx.device
        self.folder = run_folder if isinstance(run_folder, RunFolder) else RunFolder(run_folder)
        self.progress = progress
        self.argv = [str(a) for a in argv] if argv is not None else None
        if resume and load_weights is not None:
            raise TrainingError("--resume continues from the run's own checkpoint; do not combine it with "
                                "--load-weights")
        if not resume and self.folder.latest.is_file():
            raise TrainingError(f"{self.folder.root} already holds a run (checkpoints/latest.pt); continue it with "
                                "--resume or choose another --run-name")
        data = cfg.data
        check_not_overlapping(self.folder.root, [(f"data.{key}", getattr(data, key)) for key in
                                                 ("davis_root", "youtube_root", "static_root", "bl30k_root",
                                                  "synthetic_root") if getattr(data, key)]
                              + [("--load-weights file", load_weights)], option="--run-name or train.run_dir")
        foreign = self.folder.foreign_entries()
        if foreign:
            raise TrainingError(f"{self.folder.root}: holds files a training run does not write ({', '.join(foreign[:5])}"
                                f"{' ...' if len(foreign) > 5 else ''}); they are left alone. Choose another --run-name "
                                "or train.run_dir")
        self.precision = resolve_precision(self.train_cfg.precision, self.device)
        self.checkpoint = load_training_checkpoint(self.folder.latest) if resume else None
        if self.checkpoint is not None and list(self.checkpoint["stages"]) != list(self.train_cfg.stages):
            raise TrainingError(f"{self.folder.latest} was written for stages {list(self.checkpoint['stages'])}, "
                                f"this launch asks for {list(self.train_cfg.stages)}; resume with the run's own "
                                "train.stages, or start a new --run-name")

        seed_everything(cfg.runtime.seed)  # the same initial weights on every process
        self.model = build_model(cfg).to(self.device)
        loaded = None  # the weights first: a file that does not fit is refused before the run folder is written
        if self.checkpoint is not None:
            try:
                self.model.load_state_dict(self.checkpoint["model"])
            except RuntimeError as exc:
                raise CheckpointError(f"{self.folder.latest} does not fit this network: {_first_line(exc, 400)}; "
                                      f"resume with the run's own configuration ({self.folder.root / 'config.yaml'})"
                                      ) from exc
        elif load_weights is not None:
            loaded = load_initial_weights(self.model, load_weights)
        self.logger = TrainLogger(self.folder, self.ctx.is_main,
                                  purge_step=None if self.checkpoint is None else self.checkpoint["global_step"])
        if self.ctx.is_main:
            config_file = self.folder.record_launch(cfg, self.device, self.ctx.world_size,
                                                    list(argv) if argv is not None else [], resume)
            if config_file != "config.yaml":
                self.logger.message(f"note: this launch's configuration differs from {self.folder.root}/config.yaml; "
                                    f"it is saved as {config_file}")
        if loaded is not None:
            self.logger.message(loaded)
        seed_everything(_derived_seed(cfg.runtime.seed, self.ctx.rank))  # each process its own augmentations

        self.history: list[dict[str, Any]] = []
        self.stage_index = 0
        self.iteration = 0
        self._launch_iterations = 0
        self._signals: StopSignals | None = None
        self._saved: tuple[int, int, bool] | None = None
        """(stage index, iteration, completed) of ``latest.pt`` as this process knows it; None: none yet."""
        if self.checkpoint is not None:
            ckpt = self.checkpoint
            self._saved = (int(ckpt["stage_index"]), int(ckpt["iteration"]), bool(ckpt["completed"]))

    # ------------------------------------------------------------------ stages
    @property
    def stage_name(self) -> str:
        return self.train_cfg.stages[self.stage_index]

    @property
    def stage(self) -> StageConfig:
        return getattr(self.train_cfg, self.stage_name)

    @property
    def global_step(self) -> int:
        """Iterations of the earlier stages plus this one's (tensorboard's x axis)."""
        earlier = sum(getattr(self.train_cfg, name).iterations for name in self.train_cfg.stages[: self.stage_index])
        return earlier + self.iteration

    def start_stage(self, index: int, state: Mapping[str, Any] | None = None) -> None:
        """Set up stage ``index``: trained parameters, DDP, optimiser, schedule, scaler, data.

        ``state``: a checkpoint taken inside this stage, to continue from.
        """
        self.stage_index = index
        stage, name, ctx = self.stage, self.stage_name, self.ctx
        self.micro_batch = split_batch(stage.batch_size, ctx.world_size, self.train_cfg.grad_accumulation,
                                       where=f"train.{name}.batch_size")
        trainable = configure_trainable(self.model, stage)
        self.clip_pass = ClipPass(self.model, stage.reduce_memory, self.cfg.memory.capacity,
                                  self.cfg.train.freeze_batchnorm)
        self.clip_pass.train()
        self.ddp = None
        gc.collect()  # the previous stage's DDP (and its gradient hooks) must be gone
        if ctx.distributed:
            # RRM uses only the chosen policy's reducers in a step: the others get no gradient
            self.ddp = DistributedDataParallel(
                self.clip_pass, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                broadcast_buffers=False, find_unused_parameters=stage.reduce_memory)
        self.optimizer = make_optimizer(trainable, stage, self.train_cfg)
        self.scheduler = make_scheduler(self.optimizer, stage, self.train_cfg)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.iteration = 0
        position = None
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            _load_scheduler_state(self.scheduler, state["scheduler"])
            if state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            self.iteration = int(state["iteration"])
            position = DataPosition(**state["data"])
            if int(state["world_size"]) != ctx.world_size:
                self.logger.message(f"note: the checkpoint was written by {state['world_size']} process(es), this "
                                    f"launch has {ctx.world_size}; the epoch restarts and the resume is not exact")
                position.batch_in_epoch = 0
        self.stream = BatchStream(self.data, name, stage.clip_frames, self.micro_batch, stage.iterations,
                                  self.train_cfg.grad_accumulation, ctx, _derived_seed(self.cfg.runtime.seed, index),
                                  self.train_cfg.num_workers, position)
        if hasattr(self.stream.dataset, "describe"):
            self.logger.message(self.stream.dataset.describe())
        if self.stream.note:
            self.logger.message(self.stream.note)
        total = sum(p.numel() for p in self.model.parameters())
        self.logger.message(
            f"stage {index + 1}/{len(self.train_cfg.stages)} {name!r}: {stage.iterations} iterations from "
            f"{self.iteration}; global batch {stage.batch_size} = {ctx.world_size} process(es) x "
            f"{self.micro_batch} per process x {self.train_cfg.grad_accumulation} accumulation step(s); "
            f"Adam lr {stage.lr:g} (x{self.train_cfg.lr_gamma:g} at {list(stage.milestones)}), weight decay "
            f"{self.train_cfg.weight_decay:g}; {stage.clip_frames}-frame clips; precision {self.precision} on "
            f"{self.device}; training {sum(p.numel() for p in trainable):,} of {total:,} parameters"
            + (" (encoders frozen)" if stage.freeze_encoders else "")
            + (f"; RRM reduces the memory at N={self.cfg.memory.capacity}" if stage.reduce_memory else ""))

    # ------------------------------------------------------------------ steps
    def _to_device(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        rgb, gt, cls_gt, selector = (batch[k] for k in ("rgb", "gt", "cls_gt", "selector"))
        names = _clip_names(batch)
        b, t = rgb.shape[:2]
        problems = []
        if rgb.dim() != 5 or rgb.shape[2] != 3:
            problems.append(f"rgb has shape {tuple(rgb.shape)}, expected (B, T, 3, H, W)")
        elif t != self.stage.clip_frames:
            problems.append(f"clips have {t} frames but train.{self.stage_name}.clip_frames is "
                            f"{self.stage.clip_frames}")
        elif rgb.shape[-1] % 16 or rgb.shape[-2] % 16:
            problems.append(f"frames are {rgb.shape[-2]}x{rgb.shape[-1]}; height and width must be multiples of 16")
        if gt.dim() != 6 or gt.shape[:2] != rgb.shape[:2] or gt.shape[-2:] != rgb.shape[-2:]:
            problems.append(f"gt has shape {tuple(gt.shape)}, expected (B, T, K, 1, H, W) matching rgb")
        elif selector.shape != (b, gt.shape[2]) or cls_gt.shape != (b, t, *rgb.shape[-2:]):
            problems.append(f"selector {tuple(selector.shape)} / cls_gt {tuple(cls_gt.shape)} do not match "
                            f"{b} clip(s) of {gt.shape[2]} object slot(s)")
        if problems:
            raise TrainingError(f"stage {self.stage_name!r}, clips {names}: " + "; ".join(problems))
        move = {"device": self.device, "non_blocking": True}
        return rgb.to(**move), gt.to(**move), cls_gt.to(**move).long(), selector.to(**move)

    def forward_backward(self, micro_batches: Sequence[Mapping[str, Any]], keep_picture: bool = False) -> StepResult:
        """Forward and backward over the micro-batches of one step; gradients are left in
        ``.grad`` (averaged over processes by DDP), nothing is stepped."""
        fraction = bootstrap_fraction(self.iteration, self.train_cfg)
        module = self.ddp if self.ddp is not None else self.clip_pass
        sums: dict[str, float] = {}
        policies: list[int] = []
        picture, names = None, []
        count = len(micro_batches)
        for j, batch in enumerate(micro_batches):
            names += _clip_names(batch)
            rgb, gt, cls_gt, selector = self._to_device(batch)
            syncing = self.ddp is None or j == count - 1
            with contextlib.nullcontext() if syncing else self.ddp.no_sync():
                with autocast(self.device, self.precision):
                    out: ClipOutput = module(rgb, gt, selector)
                seg = clip_segmentation_loss(out.logits, cls_gt, selector, fraction)
                rrm = torch.stack(out.rrm_losses).mean() if out.rrm_losses else seg.total.new_zeros(())
                total = seg.total + self.stage.rrm_loss_weight * rrm
                self.scaler.scale(total / count).backward()
            values = {"loss/total": total.item(), "loss/segmentation": seg.total.item()}
            values.update({f"loss/frame{t + 1}": v.item() for t, v in enumerate(seg.per_frame)})
            gt_masks = gt.squeeze(3)
            values["iou"] = float(torch.stack([mask_iou(p, gt_masks[:, t + 1], selector)
                                               for t, p in enumerate(out.probs)]).mean())
            if out.rrm_losses:
                values["loss/rrm"] = rrm.item()
                gate = torch.stack(out.rrm_probs).float().mean(dim=(0, 1))
                values.update({f"rrm/gate_prob{s}": float(v) for s, v in enumerate(gate.detach())})
                policies += out.rrm_policies
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + value / count
            if keep_picture and j == count - 1:
                picture = clip_image(rgb[0], gt_masks[0], [p[0] for p in out.probs])
        sums["bootstrap_p"] = fraction
        return StepResult(sums, policies, picture, names)

    def train_step(self, micro_batches: Sequence[Mapping[str, Any]], keep_picture: bool = False) -> StepResult:
        """One optimiser step; stops the run on a non-finite loss (on every process)."""
        result = self.forward_backward(micro_batches, keep_picture)
        self.scaler.unscale_(self.optimizer)  # no-op without fp16
        grad_norm = _gradient_norm(self.optimizer)
        result.values["grad_norm"] = grad_norm
        loss = result.values["loss/total"]
        # fp16 overflows are routine (the scaler skips the step); anything else non-finite is fatal
        bad_grad = not math.isfinite(grad_norm) and not self.scaler.is_enabled()
        if any_process(not math.isfinite(loss) or bad_grad, self.ctx):
            saved = self.folder.latest if self.folder.latest.is_file() else None
            parts = ", ".join(f"{k} {v:.4g}" for k, v in result.values.items() if k.startswith("loss/"))
            what = "loss" if not math.isfinite(loss) else "gradient"
            raise NonFiniteLossError(
                f"non-finite {what} in stage {self.stage_name!r} at iteration {self.iteration + 1} ({parts}, gradient "
                f"norm {grad_norm:.4g}; clips {result.names}); training stopped and this step was not applied or "
                "saved. Last good checkpoint: " + (f"{saved} (resume with --resume)" if saved else "none yet")
                + f"; if it happens again, lower train.{self.stage_name}.lr or use train.precision=fp32")
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        with warnings.catch_warnings():  # the schedule counts iterations, also those fp16 skipped
            warnings.filterwarnings("ignore", message="Detected call of", category=UserWarning)
            self.scheduler.step()
        self.iteration += 1
        return result

    # ------------------------------------------------------------------ saving
    def save_checkpoint(self, completed: bool = False) -> None:
        """Write ``latest.pt`` atomically (collective: every process must call it)."""
        rng = gather_objects(capture_rng_state(self.device), self.ctx)
        if self.ctx.is_main:
            self._write_checkpoint(completed, rng)
        self._saved = (self.stage_index, self.iteration, completed)

    def _write_checkpoint(self, completed: bool, rng: list[object]) -> None:
        state = {
            "format": CHECKPOINT_FORMAT,
            "config": config_to_yaml(self.cfg),
            "stages": list(self.train_cfg.stages),
            "stage_index": self.stage_index,
            "stage": self.stage_name,
            "iteration": self.iteration,
            "global_step": self.global_step,
            "completed": completed,
            "world_size": self.ctx.world_size,
            "model": self.model.state_dict(),
            "optimizer": None if completed else self.optimizer.state_dict(),
            "scheduler": None if completed else _scheduler_state(self.scheduler),
            "scaler": None if completed else self.scaler.state_dict(),
            "data": None if completed else asdict(self.stream.position),
            "rng": rng,
        }
        atomic_save(state, self.folder.latest)

    def _save_weights(self, final: bool) -> Path | None:
        if not self.ctx.is_main:
            return None
        path = self.folder.weights(self.stage_name, None if final else self.iteration)
        save_weights(self.model, path)
        return path

    # ------------------------------------------------------------------ logging
    def _log(self, window: list[StepResult], started: float, bar: tqdm | None) -> None:
        keys = sorted({k for r in window for k in r.values})
        values = {k: sum(r.values.get(k, 0.0) for r in window) / max(1, sum(k in r.values for r in window))
                  for k in keys}
        values = all_reduce_mean(values, self.ctx)
        values["lr"] = self.scheduler.get_last_lr()[0]
        values["data/max_skip"] = float(self.stream.position.max_skip)
        values["data/epoch"] = float(self.stream.position.epoch)
        values["speed/iterations_per_s"] = len(window) / max(1e-9, time.perf_counter() - started)
        if self.model.frm is not None:
            values["frm/gate"] = float(self.model.frm.gate.detach())
        if self.scaler.is_enabled():
            values["amp/scale"] = float(self.scaler.get_scale())
        if not self.ctx.is_main:
            return
        step = self.global_step
        self.logger.scalars(step, {f"{self.stage_name}/{k}": v for k, v in values.items()})
        if self.model.rrm is not None:
            self.logger.histogram(step, f"{self.stage_name}/rrm/policy", [p for r in window for p in r.policies],
                                  bins=len(self.model.rrm.strides))
        self.history.append({"stage": self.stage_name, "iteration": self.iteration, "global_step": step, **values})
        if bar is not None:
            bar.set_postfix(loss=f"{values['loss/total']:.4f}", iou=f"{values['iou']:.3f}", lr=f"{values['lr']:.2g}")

    # ------------------------------------------------------------------ loop
    def run(self, stop_after: int | None = None, catch_signals: bool = True) -> TrainSummary:
        """Train every remaining stage; ``stop_after``: stop (with a checkpoint) after that
        many iterations of this launch.

        ``catch_signals``: while this runs (in the main thread), SIGINT and SIGTERM stop the
        run after the current step with a checkpoint (see the module's docstring); the
        previous handlers come back when it returns.

        Raises:
            TrainingInterrupted: a signal stopped the run (the message says what was saved).
        """
        signals = StopSignals() if catch_signals else None
        with signals if signals is not None else contextlib.nullcontext():
            self._signals = signals
            try:
                return self._run_with_settings(stop_after)
            except _StopAtOnce as stop:
                raise self._interrupted(stop.signum, f"at stage {self.stage_name!r} iteration {self.iteration}",
                                        immediate=True) from None
            finally:
                self._signals = None

    def _run_with_settings(self, stop_after: int | None) -> TrainSummary:
        previous = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark,
                    torch.backends.cudnn.deterministic)
        if self.train_cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
        elif self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # clips have a fixed size
        try:
            return self._run(stop_after)
        finally:
            torch.use_deterministic_algorithms(previous[0])
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = previous[1], previous[2]
            if getattr(self, "stream", None) is not None:
                self.stream.close()
            self.logger.close()

    def _run(self, stop_after: int | None) -> TrainSummary:
        stages = self.train_cfg.stages
        start, state = 0, None
        if self.checkpoint is not None:
            ckpt = self.checkpoint
            start = int(ckpt["stage_index"]) + (1 if ckpt["completed"] else 0)
            state = None if ckpt["completed"] else ckpt
            if ckpt["completed"]:
                self._restore_rng(ckpt)
            self.logger.message(f"resuming {self.folder.root}: stage {ckpt['stage']!r}, iteration {ckpt['iteration']}"
                                + (" (completed)" if ckpt["completed"] else ""))
            self.checkpoint = None
        final = None
        for index in range(start, len(stages)):
            self._stop_if_signalled(f"before stage {stages[index]!r}")
            self.start_stage(index, state)
            if state is not None:
                self._restore_rng(state)
                state = None
            self._stop_if_signalled(f"during the setup of stage {self.stage_name!r}")
            if not self._train_stage(stop_after):
                return TrainSummary(self.history, False, None)
            final = self.folder.weights(self.stage_name)
        if start >= len(stages):
            self.logger.message("every stage of this run is already complete; nothing to do")
            final = self.folder.weights(stages[-1])
        if self._signals is not None and self._signals.requested:
            self.logger.message(f"note: {signal.Signals(self._signals.requested).name} arrived as the last stage "
                                "finished; every stage is complete")
        return TrainSummary(self.history, True, final)

    # ------------------------------------------------------------------ stopping
    def _stop_if_signalled(self, where: str, in_loop: bool = False) -> None:
        """Stop the run when a process received SIGINT/SIGTERM (collective: every process calls
        this at the same points). In the loop, save first unless ``latest.pt`` is up to date."""
        if self._signals is None:
            return
        signum = max_over_processes(self._signals.requested, self.ctx)
        if not signum:
            return
        if in_loop and not self._up_to_date():
            self.save_checkpoint()
        raise self._interrupted(signum, where, in_loop=in_loop)

    def _up_to_date(self) -> bool:
        """``latest.pt`` holds the current position (a completed stage k counts as stage k+1 at 0)."""
        if self._saved is None:
            return False
        index, iteration, completed = self._saved
        saved = (index + 1, 0) if completed else (index, iteration)
        return saved == (self.stage_index, self.iteration)

    def _describe_saved(self) -> str:
        index, iteration, completed = self._saved
        name = self.train_cfg.stages[index]
        return f"stage {name!r} complete" if completed else f"stage {name!r} iteration {iteration}"

    def _interrupted(self, signum: int, where: str, immediate: bool = False,
                     in_loop: bool = False) -> TrainingInterrupted:
        """Log the line that says what a signal stopped and how to continue; the exception to raise."""
        name = signal.Signals(signum).name
        latest = self.folder.latest
        if self._saved is None:  # no latest.pt: the same command starts again
            state = "stopped at once; nothing was saved yet" if immediate else "nothing was lost (no iteration had run)"
            hint = "start again with: " + (resume_command(self.argv, resume=False) if self.argv else "the same call")
        else:
            if immediate:
                state = f"stopped at once; the last checkpoint, {latest} ({self._describe_saved()}), is intact"
            elif in_loop:
                state = f"checkpoint saved to {latest}"
            else:
                state = f"nothing was lost: {latest} ({self._describe_saved()}) is up to date"
            hint = "continue with: " + (resume_command(self.argv) if self.argv else "Trainer(..., resume=True)")
        text = f"interrupted{' again' if immediate else ''} ({name}) {where}: {state}; {hint}"
        self.logger.message(text)
        self.logger.flush()
        return TrainingInterrupted(text, signum, immediate=immediate,
                                   checkpoint=latest if self._saved is not None else None)

    def _restore_rng(self, ckpt: Mapping[str, Any]) -> None:
        states = ckpt["rng"]
        if self.ctx.rank < len(states):
            restore_rng_state(states[self.ctx.rank], self.device)
        else:
            self.logger.message(f"note: no saved random state for rank {self.ctx.rank}; the resume is not exact")

    def _train_stage(self, stop_after: int | None) -> bool:
        """Iterate to the end of the stage (True) or until ``stop_after`` (False)."""
        stage, cfg = self.stage, self.train_cfg
        bar = tqdm(total=stage.iterations, initial=self.iteration, desc=self.stage_name, dynamic_ncols=True,
                   disable=not (self.progress and self.ctx.is_main))
        window: list[StepResult] = []
        started = time.perf_counter()
        skips_logged = len(self.stream.skip_changes)
        try:
            while self.iteration < stage.iterations:
                want_picture = (self.iteration + 1) % cfg.image_every == 0
                micro = [self.stream.next() for _ in range(cfg.grad_accumulation)]
                result = self.train_step(micro, keep_picture=want_picture and self.ctx.is_main)
                self._launch_iterations += 1
                window.append(result)
                bar.update(1)
                it = self.iteration
                for epoch, skip in self.stream.skip_changes[skips_logged:]:
                    self.logger.message(f"{self.stage_name}: max_skip {skip} from epoch {epoch}")
                skips_logged = len(self.stream.skip_changes)
                if it % cfg.log_every == 0 or it == stage.iterations:
                    self._log(window, started, bar)
                    window, started = [], time.perf_counter()
                if result.picture is not None:
                    self.logger.image(self.global_step, f"{self.stage_name}/clip", result.picture)
                last = it == stage.iterations
                if it % cfg.weights_every == 0 and not last:
                    self._save_weights(final=False)
                if it % cfg.save_every == 0 and not last:
                    self.save_checkpoint()
                if last:
                    break
                self._stop_if_signalled(f"at stage {self.stage_name!r} iteration {it}", in_loop=True)
                if stop_after is not None and self._launch_iterations >= stop_after:
                    if not self._up_to_date():
                        self.save_checkpoint()
                    self.logger.message(f"stopped after {self._launch_iterations} iteration(s) at "
                                        f"{self.stage_name} iteration {it}; continue with --resume")
                    self.logger.flush()
                    return False
        finally:
            bar.close()
        path = self._save_weights(final=True)
        self.save_checkpoint(completed=True)
        self.logger.flush()
        if path is not None:
            self.logger.message(f"stage {self.stage_name!r} done: weights in {path}")
        if stop_after is not None and self._launch_iterations >= stop_after \
                and self.stage_index + 1 < len(self.train_cfg.stages):
            return False
        return True


def _gradient_norm(optimizer: torch.optim.Optimizer) -> float:
    """L2 norm of every gradient the optimiser will use."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))


def _clip_names(batch: Mapping[str, Any]) -> list[str]:
    info = batch.get("info")
    if isinstance(info, Mapping) and "name" in info:
        names = info["name"]
        return [str(n) for n in names] if isinstance(names, (list, tuple)) else [str(names)]
    return []
