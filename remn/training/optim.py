"""What a stage trains and how: trained parameters, the optimiser, the learning-rate schedule, clipping.

Each stage starts a new Adam optimiser (``train.weight_decay``) and a new schedule, stepped once
per iteration, as STCN does:

* ``schedule: step`` (default, STCN): ``lr``, times ``train.lr_gamma`` at each of the stage's
  ``milestones`` (``MultiStepLR``);
* ``schedule: cosine``: from ``lr`` down to 0 at the stage's last iteration;
* ``warmup: W`` (either schedule): the first ``W`` iterations rise linearly, ``lr / W``,
  ``2 lr / W``, ..., ``lr``; the schedule starts after them (cosine) or is multiplied by them
  (step: the milestones keep their iterations).

``lr_multipliers`` give modules their own rate, ``lr`` times a factor (one parameter group per
prefix; the schedule scales every group alike). ``train.clip_grad_norm`` scales all gradients
together down to that L2 norm before the step (:func:`clip_gradients`). With the defaults (step
schedule, no warm-up, no multipliers, no clipping) the optimiser has one group and the schedule
is STCN's ``MultiStepLR``, exactly as before these options existed.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from ..config import StageConfig, TrainConfig
from ..model.network import REMN
from .errors import TrainingError

__all__ = [
    "ENCODER_MODULES",
    "configure_trainable",
    "check_lr_multipliers",
    "parameter_groups",
    "make_optimizer",
    "lr_factor",
    "make_scheduler",
    "stage_lr",
    "describe_optimizer",
    "scheduler_state",
    "load_scheduler_state",
    "gradient_norm",
    "clip_gradients",
]


ENCODER_MODULES = ("key_encoder", "key_proj", "key_comp", "value_encoder")
"""Top-level modules a stage with ``freeze_encoders`` keeps fixed."""


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


def _multiplier_of(name: str, prefixes: Sequence[str]) -> str | None:
    """The longest prefix naming ``name`` or a module above it (``frm`` names ``frm.gate``, not ``frm_x``)."""
    found = [p for p in prefixes if name == p or name.startswith(p + ".")]
    return max(found, key=len) if found else None


def check_lr_multipliers(model: nn.Module, stage: StageConfig, where: str = "lr_multipliers") -> None:
    """Refuse prefixes of ``stage.lr_multipliers`` that name no parameter of ``model`` (``where``: the
    setting, for the message).

    Raises:
        TrainingError: a typo, or a module this configuration does not build.
    """
    names = [n for n, _ in model.named_parameters()]
    unknown = [p for p in stage.lr_multipliers if not any(_multiplier_of(n, [p]) for n in names)]
    if unknown:
        modules = sorted({n.split(".", 1)[0] for n in names})
        raise TrainingError(
            f"{where} names {unknown}, which is no module of this network; prefixes are module "
            f"paths such as {', '.join(modules)}, frm.attention_conv or rrm.gate"
        )


def parameter_groups(model: nn.Module, stage: StageConfig) -> list[nn.Parameter] | list[dict[str, Any]]:
    """The parameters ``model`` trains (``requires_grad``) as the optimiser takes them.

    Without ``stage.lr_multipliers``: the parameters, one group. With them: a group of the
    parameters under no prefix (``lr_multiplier`` 1) and one per prefix that has trained
    parameters (``name`` the prefix, ``lr`` the stage's rate times its factor); groups keep the
    network's parameter order.

    Raises:
        TrainingError: a prefix that names no parameter of the network (a typo, or a module this
            configuration does not build).
    """
    named = list(model.named_parameters())
    if not stage.lr_multipliers:
        return [p for _, p in named if p.requires_grad]
    check_lr_multipliers(model, stage)
    prefixes = list(stage.lr_multipliers)
    members: dict[str, list[nn.Parameter]] = {"": [], **{p: [] for p in prefixes}}
    for name, parameter in named:
        if parameter.requires_grad:
            members[_multiplier_of(name, prefixes) or ""].append(parameter)
    groups = []
    for prefix, params in members.items():
        factor = float(stage.lr_multipliers[prefix]) if prefix else 1.0
        if params:
            groups.append({"params": params, "lr": stage.lr * factor, "name": prefix, "lr_multiplier": factor})
    return groups


def make_optimizer(
    parameters: Sequence[nn.Parameter] | Sequence[dict[str, Any]], stage: StageConfig, train: TrainConfig
) -> torch.optim.Adam:
    """STCN's optimiser: Adam with the stage's lr and a small weight decay; ``parameters`` as
    :func:`parameter_groups` gives them (or any parameters: one group)."""
    return torch.optim.Adam(parameters, lr=stage.lr, weight_decay=train.weight_decay)


def lr_factor(iteration: int, stage: StageConfig, train: TrainConfig) -> float:
    """The stage's rate is ``lr`` times this for the step that follows ``iteration`` steps."""
    warm = min(1.0, (iteration + 1) / stage.warmup) if stage.warmup else 1.0
    if stage.schedule == "cosine":
        if iteration < stage.warmup:
            return warm
        progress = min(1.0, (iteration - stage.warmup) / (stage.iterations - stage.warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return warm * train.lr_gamma ** bisect_right(list(stage.milestones), iteration)


def make_scheduler(
    optimizer: torch.optim.Optimizer, stage: StageConfig, train: TrainConfig
) -> torch.optim.lr_scheduler.LRScheduler:
    """The stage's schedule (:func:`lr_factor`), stepped once per iteration: STCN's ``MultiStepLR``
    for a step schedule without warm-up, else a ``LambdaLR`` of :func:`lr_factor`."""
    if stage.schedule == "step" and not stage.warmup:
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(stage.milestones), gamma=train.lr_gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda iteration: lr_factor(iteration, stage, train))


def stage_lr(optimizer: torch.optim.Optimizer) -> float:
    """The stage's current rate (the schedule's value, before any multiplier)."""
    group = optimizer.param_groups[0]
    return float(group["lr"]) / float(group.get("lr_multiplier", 1.0))


def describe_optimizer(stage: StageConfig, train: TrainConfig) -> str:
    """The optimiser and schedule of a stage in a few words (for the log)."""
    if stage.schedule == "cosine":
        schedule = f"cosine to 0 at iteration {stage.iterations}"
    else:
        schedule = f"x{train.lr_gamma:g} at {list(stage.milestones)}"
    if stage.warmup:
        schedule = f"linear warm-up over {stage.warmup} iterations, {schedule}"
    text = f"Adam lr {stage.lr:g} ({schedule}), weight decay {train.weight_decay:g}"
    if stage.lr_multipliers:
        text += ", lr " + ", ".join(f"x{factor:g} for {prefix}" for prefix, factor in stage.lr_multipliers.items())
    if train.clip_grad_norm:
        text += f", gradient norm clipped at {train.clip_grad_norm:g}"
    return text


def scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler) -> dict[str, Any]:
    """The schedule's state with plain types only (``Counter`` is not loadable with weights_only)."""
    return {k: (dict(v) if isinstance(v, Counter) else v) for k, v in scheduler.state_dict().items()}


def load_scheduler_state(scheduler: torch.optim.lr_scheduler.LRScheduler, state: Mapping[str, Any]) -> None:
    """Undo :func:`scheduler_state`."""
    state = dict(state)
    if "milestones" in state:
        state["milestones"] = Counter({int(k): int(v) for k, v in state["milestones"].items()})
    scheduler.load_state_dict(state)


def gradient_norm(optimizer: torch.optim.Optimizer) -> float:
    """L2 norm of every gradient the optimiser will use."""
    grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])))


def clip_gradients(optimizer: torch.optim.Optimizer, max_norm: float) -> None:
    """Scale every gradient the optimiser will use by one factor so that their L2 norm together is
    at most ``max_norm`` (``torch.nn.utils.clip_grad_norm_``); call it after the scaler's ``unscale_``."""
    grads = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
    if grads:
        torch.nn.utils.clip_grad_norm_(grads, max_norm)
