"""The training loop: stages one after the other, each step, checkpoints, stopping and resuming.

A run trains the stages listed in ``train.stages`` one after the other. Each stage starts from
the previous stage's final weights with a new optimiser and schedule (:mod:`remn.training.optim`)
and an iteration counter at 0, as STCN does; batch norm stays frozen unless
``train.freeze_batchnorm=false``. Its clips come from a :class:`~remn.training.batches.BatchStream`
and go through :class:`~remn.training.clip_pass.ClipPass` and STCN's loss (:mod:`remn.training.loss`).

Exact resume. ``checkpoints/latest.pt`` (:mod:`remn.training.checkpoint`) holds everything the
loop needs to go on as if it had not stopped: network, optimiser, gradient scaler and schedule,
stage and iteration, the data position and every process's random states.

Stopping (:mod:`remn.training.signals`). While :meth:`Trainer.run` runs, SIGINT (Ctrl-C) and
SIGTERM ask the run to stop: the current optimiser step finishes, ``latest.pt`` is written and
:class:`~remn.training.signals.TrainingInterrupted` is raised with one line saying what was saved
and the command that continues the run. Every process checks for a signal at the same point of
each iteration (one all-reduce of one integer when distributed), so they all stop at the same
step; ``save_checkpoint`` is collective. A second signal stops at once without saving. The
previous handlers are restored when ``run`` returns.

Why one module of more than 600 lines: it is the loop alone (stages, a step, checkpoints,
stopping and resuming); everything it calls lives in its own module (docs/training.md).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from ..config import REMNConfig, StageConfig
from ..data.sample import batch_names, batch_problems
from ..model import build_model
from ..model.checkpoint import atomic_save, load_network_weights, save_weights
from ..outputs import check_not_overlapping
from ..runtime import autocast, resolve_device, seed_everything
from .batches import BatchStream, DataSource, derived_seed
from .checkpoint import (
    capture_rng_state,
    load_training_checkpoint,
    restore_network,
    restore_rng_state,
    restore_stage,
    training_checkpoint,
)
from .clip_pass import ClipOutput, ClipPass
from .distributed import (
    DistributedContext,
    all_reduce_mean,
    any_process,
    gather_objects,
    max_over_processes,
    split_batch,
)
from .errors import NonFiniteLossError, TrainingError
from .loss import bootstrap_fraction, clip_segmentation_loss, mask_iou
from .monitor import StageProgress, TrainLogger, clip_image
from .optim import (
    check_lr_multipliers,
    clip_gradients,
    configure_trainable,
    describe_optimizer,
    gradient_norm,
    make_optimizer,
    make_scheduler,
    parameter_groups,
    stage_lr,
)
from .run_folder import RunFolder
from .signals import StopSignals, TrainingInterrupted, _StopAtOnce, resume_command

__all__ = ["Trainer", "TrainSummary", "StepResult", "resolve_precision"]


def resolve_precision(name: str, device: torch.device) -> str:
    """``auto``: bf16 on CUDA (fp16 where the GPU has no bf16), fp32 on CPU; else ``name``."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


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
        progress: show the progress (rank 0): a tqdm bar on a terminal, else a line every
            ``train.progress_every`` iterations (:class:`~remn.training.monitor.StageProgress`).
        argv: the command line (``sys.argv``), recorded in ``run.json`` and used for the
            command that continues the run after an interruption.
    """

    def __init__(
        self,
        cfg: REMNConfig,
        data: DataSource,
        run_folder: RunFolder | str | Path,
        ctx: DistributedContext | None = None,
        *,
        resume: bool = False,
        load_weights: str | Path | None = None,
        progress: bool = True,
        argv: Sequence[str] | None = None,
    ) -> None:
        self.cfg, self.train_cfg, self.data = cfg, cfg.train, data
        self.ctx = ctx or DistributedContext(device=resolve_device(cfg.runtime.device))
        self.device = self.ctx.device
        self.folder = run_folder if isinstance(run_folder, RunFolder) else RunFolder(run_folder)
        self.progress = progress
        self.argv = [str(a) for a in argv] if argv is not None else None
        if resume and load_weights is not None:
            raise TrainingError(
                "--resume continues from the run's own checkpoint; do not combine it with --load-weights"
            )
        if not resume and self.folder.latest.is_file():
            raise TrainingError(
                f"{self.folder.root} already holds a run (checkpoints/latest.pt); continue it with "
                "--resume or choose another --run-name"
            )
        data = cfg.data
        check_not_overlapping(
            self.folder.root,
            [
                (f"data.{key}", getattr(data, key))
                for key in ("davis_root", "youtube_root", "static_root", "bl30k_root", "synthetic_root")
                if getattr(data, key)
            ]
            + [("--load-weights file", load_weights)],
            option="--run-name or train.run_dir",
        )
        foreign = self.folder.foreign_entries()
        if foreign:
            listed = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise TrainingError(
                f"{self.folder.root}: holds files a training run does not write ({listed}); they are "
                "left alone. Choose another --run-name or train.run_dir"
            )
        self.precision = resolve_precision(self.train_cfg.precision, self.device)
        self.checkpoint = load_training_checkpoint(self.folder.latest) if resume else None
        if self.checkpoint is not None and list(self.checkpoint["stages"]) != list(self.train_cfg.stages):
            raise TrainingError(
                f"{self.folder.latest} was written for stages {list(self.checkpoint['stages'])}, "
                f"this launch asks for {list(self.train_cfg.stages)}; resume with the run's own "
                "train.stages, or start a new --run-name"
            )

        seed_everything(cfg.runtime.seed)  # the same initial weights on every process
        self.model = build_model(cfg).to(self.device)
        loaded = None  # the weights first: a file that does not fit is refused before the run folder is written
        if self.checkpoint is not None:
            restore_network(self.model, self.checkpoint, self.folder.latest, self.folder.root / "config.yaml")
        elif load_weights is not None:
            loaded = load_network_weights(self.model, load_weights).description
        for name in self.train_cfg.stages:  # before the run folder is written, as for the weights
            check_lr_multipliers(self.model, getattr(self.train_cfg, name), f"train.{name}.lr_multipliers")
        self.logger = TrainLogger(
            self.folder,
            self.ctx.is_main,
            purge_step=None if self.checkpoint is None else self.checkpoint["global_step"],
        )
        if self.ctx.is_main:
            config_file = self.folder.record_launch(
                cfg, self.device, self.ctx.world_size, list(argv) if argv is not None else [], resume
            )
            if config_file != "config.yaml":
                self.logger.message(
                    f"note: this launch's configuration differs from {self.folder.root}/config.yaml; "
                    f"it is saved as {config_file}"
                )
        if loaded is not None:
            self.logger.message(loaded)
        seed_everything(derived_seed(cfg.runtime.seed, self.ctx.rank))  # each process its own augmentations

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
        self.micro_batch = split_batch(
            stage.batch_size, ctx.world_size, self.train_cfg.grad_accumulation, where=f"train.{name}.batch_size"
        )
        trainable = configure_trainable(self.model, stage)
        groups = parameter_groups(self.model, stage)
        self.clip_pass = ClipPass(
            self.model, stage.reduce_memory, self.cfg.memory.capacity, self.cfg.train.freeze_batchnorm
        )
        self.clip_pass.train()
        self.ddp = None
        gc.collect()  # the previous stage's DDP (and its gradient hooks) must be gone
        if ctx.distributed:
            # RRM uses only the chosen policy's reducers in a step: the others get no gradient
            self.ddp = DistributedDataParallel(
                self.clip_pass,
                device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None,
                broadcast_buffers=False,
                find_unused_parameters=stage.reduce_memory,
            )
        self.optimizer = make_optimizer(groups, stage, self.train_cfg)
        self.scheduler = make_scheduler(self.optimizer, stage, self.train_cfg)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.iteration = 0
        position = None
        if state is not None:
            position = restore_stage(state, self.optimizer, self.scheduler, self.scaler, self.folder.latest)
            self.iteration = int(state["iteration"])
            if int(state["world_size"]) != ctx.world_size:
                self.logger.message(
                    f"note: the checkpoint was written by {state['world_size']} process(es), this "
                    f"launch has {ctx.world_size}; the epoch restarts and the resume is not exact"
                )
                position.batch_in_epoch = 0
        self.stream = BatchStream(
            self.data,
            name,
            stage.clip_frames,
            self.micro_batch,
            stage.iterations,
            self.train_cfg.grad_accumulation,
            ctx,
            derived_seed(self.cfg.runtime.seed, index),
            self.train_cfg.num_workers,
            position,
        )
        if hasattr(self.stream.dataset, "describe"):
            self.logger.message(self.stream.dataset.describe())
        if self.stream.note:
            self.logger.message(self.stream.note)
        total = sum(p.numel() for p in self.model.parameters())
        self.logger.message(
            f"stage {index + 1}/{len(self.train_cfg.stages)} {name!r}: {stage.iterations} iterations from "
            f"{self.iteration}; global batch {stage.batch_size} = {ctx.world_size} process(es) x "
            f"{self.micro_batch} per process x {self.train_cfg.grad_accumulation} accumulation step(s); "
            f"{describe_optimizer(stage, self.train_cfg)}; {stage.clip_frames}-frame clips; precision "
            f"{self.precision} on {self.device}; training {sum(p.numel() for p in trainable):,} of {total:,} parameters"
            + (" (encoders frozen)" if stage.freeze_encoders else "")
            + (f"; RRM reduces the memory at N={self.cfg.memory.capacity}" if stage.reduce_memory else "")
        )

    # ------------------------------------------------------------------ steps
    def _to_device(self, batch: Mapping[str, Any]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The batch's tensors on this process's device, once :func:`batch_problems` finds nothing wrong."""
        problems = batch_problems(batch, self.stage.clip_frames, f"train.{self.stage_name}.clip_frames")
        if problems:
            raise TrainingError(f"stage {self.stage_name!r}, clips {batch_names(batch)}: " + "; ".join(problems))
        move = {"device": self.device, "non_blocking": True}
        rgb, gt, cls_gt, selector = (batch[k] for k in ("rgb", "gt", "cls_gt", "selector"))
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
            names += batch_names(batch)
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
            values["iou"] = float(
                torch.stack([mask_iou(p, gt_masks[:, t + 1], selector) for t, p in enumerate(out.probs)]).mean()
            )
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
        grad_norm = gradient_norm(self.optimizer)
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
                "saved. Last good checkpoint: "
                + (f"{saved} (resume with --resume)" if saved else "none yet")
                + f"; if it happens again, lower train.{self.stage_name}.lr or use train.precision=fp32"
            )
        if self.train_cfg.clip_grad_norm:
            clip_gradients(self.optimizer, self.train_cfg.clip_grad_norm)
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
        state = training_checkpoint(
            cfg=self.cfg,
            stage_index=self.stage_index,
            iteration=self.iteration,
            global_step=self.global_step,
            completed=completed,
            world_size=self.ctx.world_size,
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            scaler=self.scaler,
            position=self.stream.position,
            rng=rng,
        )
        atomic_save(state, self.folder.latest)

    def _save_weights(self, final: bool) -> Path | None:
        if not self.ctx.is_main:
            return None
        path = self.folder.weights(self.stage_name, None if final else self.iteration)
        save_weights(self.model, path)
        return path

    # ------------------------------------------------------------------ logging
    def _log(self, window: list[StepResult], started: float, bar: StageProgress | None) -> None:
        keys = sorted({k for r in window for k in r.values})
        values = {
            k: sum(r.values.get(k, 0.0) for r in window) / max(1, sum(k in r.values for r in window)) for k in keys
        }
        values = all_reduce_mean(values, self.ctx)
        values["lr"] = stage_lr(self.optimizer)
        for group in self.optimizer.param_groups:
            if group.get("name"):  # lr_multipliers
                values[f"lr/{group['name']}"] = float(group["lr"])
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
            self.logger.histogram(
                step,
                f"{self.stage_name}/rrm/policy",
                [p for r in window for p in r.policies],
                bins=len(self.model.rrm.strides),
            )
        self.history.append({"stage": self.stage_name, "iteration": self.iteration, "global_step": step, **values})
        if bar is not None:
            bar.postfix(values)

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
                raise self._interrupted(
                    stop.signum, f"at stage {self.stage_name!r} iteration {self.iteration}", immediate=True
                ) from None
            finally:
                self._signals = None

    def _run_with_settings(self, stop_after: int | None) -> TrainSummary:
        previous = (
            torch.are_deterministic_algorithms_enabled(),
            torch.backends.cudnn.benchmark,
            torch.backends.cudnn.deterministic,
        )
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
            self.logger.message(
                f"resuming {self.folder.root}: stage {ckpt['stage']!r}, iteration {ckpt['iteration']}"
                + (" (completed)" if ckpt["completed"] else "")
            )
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
            self.logger.message(
                f"note: {signal.Signals(self._signals.requested).name} arrived as the last stage "
                "finished; every stage is complete"
            )
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

    def _interrupted(
        self, signum: int, where: str, immediate: bool = False, in_loop: bool = False
    ) -> TrainingInterrupted:
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
        return TrainingInterrupted(
            text, signum, immediate=immediate, checkpoint=latest if self._saved is not None else None
        )

    def _restore_rng(self, ckpt: Mapping[str, Any]) -> None:
        states = ckpt["rng"]
        if self.ctx.rank < len(states):
            restore_rng_state(states[self.ctx.rank], self.device)
        else:
            self.logger.message(f"note: no saved random state for rank {self.ctx.rank}; the resume is not exact")

    def _train_stage(self, stop_after: int | None) -> bool:
        """Iterate to the end of the stage (True) or until ``stop_after`` (False)."""
        stage, cfg = self.stage, self.train_cfg
        bar = StageProgress(
            self.stage_name,
            stage.iterations,
            self.iteration,
            self.progress and self.ctx.is_main,
            cfg.progress_every,
        )
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
                it = self.iteration
                bar.update(it, result.values)
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
                    self.logger.message(
                        f"stopped after {self._launch_iterations} iteration(s) at "
                        f"{self.stage_name} iteration {it}; continue with --resume"
                    )
                    self.logger.flush()
                    return False
        finally:
            bar.close()
        path = self._save_weights(final=True)
        self.save_checkpoint(completed=True)
        self.logger.flush()
        if path is not None:
            self.logger.message(f"stage {self.stage_name!r} done: weights in {path}")
        if (
            stop_after is not None
            and self._launch_iterations >= stop_after
            and self.stage_index + 1 < len(self.train_cfg.stages)
        ):
            return False
        return True
