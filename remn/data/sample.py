"""The training sample: what every training dataset yields, and a batch of them.

One **sample** is a dict (``T`` frames, ``O`` object slots, ``H x W`` the crop; the project's
datasets give ``O = data.max_objects`` and ``H = W = data.crop_size``):

``rgb``       float32 (T, 3, H, W), ImageNet-normalised frames in clip order;
``gt``        float32 (T, O, 1, H, W) in [0, 1], the mask of each picked object (0/1 for videos,
              soft grey levels for static images); empty slots are all 0;
``cls_gt``    int64 (T, H, W), 0 background, ``o`` where the o-th picked object is (1-based; for
              soft masks where ``gt > 0.5``); values in 0..num_objects;
``selector``  float32 (O,), 1 for the ``num_objects`` slots holding an object (the first ones),
              0 for empty slots;
``info``      dict: ``name`` (str), ``frames`` (int64 (T,), frame positions in the video's sorted
              frame list, in clip order; all 0 for a static image), ``num_objects`` (int).

Frame 0 is the given frame: the clip pass reads its masks, the loss covers frames 1..T-1. A
sample without any object (``num_objects = 0``) is valid and gives no segmentation signal.

A **batch** is what :func:`torch.utils.data.default_collate` makes of B samples: every tensor
gets a leading ``B`` (``rgb (B, T, 3, H, W)``, ``gt (B, T, O, 1, H, W)``, ``cls_gt (B, T, H, W)``,
``selector (B, O)``, ``info.frames (B, T)``, ``info.num_objects (B,)``), ``info.name`` becomes a
list of B names. The trainer takes batches whose ``T`` is the stage's ``clip_frames`` and whose
``H`` and ``W`` are multiples of 16 (:func:`batch_problems`).

:func:`pack_sample` builds a sample; :func:`sample_problems` checks one against this contract.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["SAMPLE_KEYS", "INFO_KEYS", "pack_sample", "sample_problems", "batch_problems", "batch_names"]

SAMPLE_KEYS = ("rgb", "gt", "cls_gt", "selector", "info")
"""The keys of a sample."""
INFO_KEYS = ("name", "frames", "num_objects")
"""The keys of a sample's ``info``."""


def pack_sample(
    name: str, frames: Sequence[int], rgb: Tensor, object_masks: Tensor, cls_gt: Tensor, max_objects: int
) -> dict:
    """A sample (see the module docstring) from ``object_masks`` (T, k, H, W) with ``k <= max_objects``
    used slots; ``rgb`` (T, 3, H, W) and ``cls_gt`` (T, H, W) are converted to the contract's dtypes."""
    steps, used, height, width = object_masks.shape
    if used > max_objects:
        raise ValueError(f"{used} objects do not fit in {max_objects} slots")
    gt = torch.zeros(steps, max_objects, 1, height, width, dtype=torch.float32)
    gt[:, :used, 0] = object_masks.to(torch.float32)
    selector = torch.zeros(max_objects, dtype=torch.float32)
    selector[:used] = 1.0
    return {
        "rgb": rgb.to(torch.float32),
        "gt": gt,
        "cls_gt": cls_gt.to(torch.int64),
        "selector": selector,
        "info": {"name": name, "frames": torch.as_tensor(list(frames), dtype=torch.int64), "num_objects": int(used)},
    }


def sample_problems(sample: Mapping[str, Any]) -> list[str]:
    """What is wrong with one sample against the contract (empty: nothing); reads every value."""
    if not isinstance(sample, Mapping) or set(sample) != set(SAMPLE_KEYS):
        keys = sorted(sample) if isinstance(sample, Mapping) else type(sample).__name__
        return [f"a sample is a dict with keys {list(SAMPLE_KEYS)}, got {keys}"]
    rgb, gt, cls_gt, selector, info = (sample[k] for k in SAMPLE_KEYS)
    if not all(isinstance(v, Tensor) for v in (rgb, gt, cls_gt, selector)):
        return ["rgb, gt, cls_gt and selector must be tensors"]
    problems = []
    if rgb.dtype != torch.float32 or rgb.dim() != 4 or rgb.shape[1] != 3:
        problems.append(f"rgb is {rgb.dtype} {tuple(rgb.shape)}, expected float32 (T, 3, H, W)")
        return problems
    steps, _, height, width = rgb.shape
    if gt.dtype != torch.float32 or gt.dim() != 5 or gt.shape[0] != steps or gt.shape[2:] != (1, height, width):
        problems.append(f"gt is {gt.dtype} {tuple(gt.shape)}, expected float32 ({steps}, O, 1, {height}, {width})")
        return problems
    slots = gt.shape[1]
    if cls_gt.dtype != torch.int64 or cls_gt.shape != (steps, height, width):
        problems.append(f"cls_gt is {cls_gt.dtype} {tuple(cls_gt.shape)}, expected int64 ({steps}, {height}, {width})")
    if selector.dtype != torch.float32 or selector.shape != (slots,):
        problems.append(f"selector is {selector.dtype} {tuple(selector.shape)}, expected float32 ({slots},)")
    if not isinstance(info, Mapping) or set(info) != set(INFO_KEYS):
        problems.append(f"info must be a dict with keys {list(INFO_KEYS)}")
        return problems
    name, frames, used = (info[k] for k in INFO_KEYS)
    if not isinstance(name, str) or not isinstance(used, int) or not 0 <= used <= slots:
        problems.append(f"info: name must be a str and num_objects an int in 0..{slots}, got {name!r}, {used!r}")
        return problems
    if not isinstance(frames, Tensor) or frames.dtype != torch.int64 or frames.shape != (steps,):
        problems.append(f"info.frames must be int64 ({steps},)")
    if problems:
        return problems
    if selector.tolist() != [1.0] * used + [0.0] * (slots - used):
        problems.append(f"selector {selector.tolist()} must be 1 for the {used} used slot(s), then 0")
    if gt.numel() and (float(gt.min()) < 0 or float(gt.max()) > 1):
        problems.append("gt must lie in [0, 1]")
    if gt[:, used:].any():
        problems.append("empty slots must have empty masks")
    if cls_gt.numel() and (int(cls_gt.min()) < 0 or int(cls_gt.max()) > used):
        problems.append(f"cls_gt must lie in 0..{used}")
    if not torch.isfinite(rgb).all():
        problems.append("rgb holds NaN or infinite values")
    return problems


def batch_names(batch: Mapping[str, Any]) -> list[str]:
    """The clip names of a batch (``info.name``), or [] when it has none."""
    info = batch.get("info")
    if isinstance(info, Mapping) and "name" in info:
        names = info["name"]
        return [str(n) for n in names] if isinstance(names, (list, tuple)) else [str(names)]
    return []


def batch_problems(batch: Mapping[str, Any], clip_frames: int, setting: str = "clip_frames") -> list[str]:
    """What keeps the trainer from using a batch (empty: nothing): shapes only, no values read.

    ``clip_frames``: the frames a clip must have; ``setting``: the setting that says so, for the message.
    """
    rgb, gt, cls_gt, selector = (batch[k] for k in ("rgb", "gt", "cls_gt", "selector"))
    b, t = rgb.shape[:2]
    problems = []
    if rgb.dim() != 5 or rgb.shape[2] != 3:
        problems.append(f"rgb has shape {tuple(rgb.shape)}, expected (B, T, 3, H, W)")
    elif t != clip_frames:
        problems.append(f"clips have {t} frames but {setting} is {clip_frames}")
    elif rgb.shape[-1] % 16 or rgb.shape[-2] % 16:
        problems.append(f"frames are {rgb.shape[-2]}x{rgb.shape[-1]}; height and width must be multiples of 16")
    if gt.dim() != 6 or gt.shape[:2] != rgb.shape[:2] or gt.shape[-2:] != rgb.shape[-2:]:
        problems.append(f"gt has shape {tuple(gt.shape)}, expected (B, T, K, 1, H, W) matching rgb")
    elif selector.shape != (b, gt.shape[2]) or cls_gt.shape != (b, t, *rgb.shape[-2:]):
        problems.append(
            f"selector {tuple(selector.shape)} / cls_gt {tuple(cls_gt.shape)} do not match "
            f"{b} clip(s) of {gt.shape[2]} object slot(s)"
        )
    return problems
