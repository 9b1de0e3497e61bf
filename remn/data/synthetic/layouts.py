"""Datasets on disk: generated videos written in the layout of DAVIS 2017, YouTube-VOS 2019 or
a generic folder (:func:`write_dataset`), by a pool of processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from remn.data.masks import save_image, save_mask
from remn.outputs import OutputFolder

from .compose import generate_video
from .spec import (
    COMMAND,
    JPEG_QUALITY,
    LAYOUTS,
    MANIFEST_NAME,
    YOUTUBE_STRIDE,
    SyntheticSpec,
    SyntheticVideo,
    layout_spec,
    video_rng,
)


def frame_name(layout: str, index: int) -> str:
    """A frame's file name without extension: ``00005`` (DAVIS, YouTube-VOS) or ``frame_6`` (generic,
    numbered from 1 so that names do not sort lexically)."""
    return f"frame_{index + 1}" if layout == "generic" else f"{index:05d}"


def _only(mask: np.ndarray, keep: Sequence[int]) -> np.ndarray:
    return np.where(np.isin(mask, list(keep)), mask, 0).astype(np.uint8)


def _appearances(video: SyntheticVideo) -> dict[int, list[int]]:
    """Frame index -> ids that first appear there."""
    out: dict[int, list[int]] = {}
    for object_id, t in sorted(video.first_frame.items(), key=lambda item: (item[1], item[0])):
        out.setdefault(t, []).append(object_id)
    return out


def _write_davis(root: Path, name: str, video: SyntheticVideo) -> None:
    for t, (frame, mask) in enumerate(zip(video.frames, video.masks)):
        save_image(root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg", frame, quality=JPEG_QUALITY)
        save_mask(root / "Annotations" / "480p" / name / f"{t:05d}.png", mask)


def _write_youtube(root: Path, name: str, video: SyntheticVideo, split: str) -> None:
    part = root / ("valid" if split == "val" else "train")
    for t in range(0, video.num_frames, YOUTUBE_STRIDE):
        save_image(part / "JPEGImages" / name / f"{t:05d}.jpg", video.frames[t], quality=JPEG_QUALITY)
        if split != "val":
            save_mask(part / "Annotations" / name / f"{t:05d}.png", video.masks[t])
    if split != "val":
        return
    for t, new_ids in _appearances(video).items():
        save_mask(part / "Annotations" / name / f"{t:05d}.png", _only(video.masks[t], new_ids))
    for t, (frame, mask) in enumerate(zip(video.frames, video.masks)):
        save_image(
            root / "all_frames" / "valid_all_frames" / "JPEGImages" / name / f"{t:05d}.jpg", frame, quality=JPEG_QUALITY
        )
        save_mask(root / "valid_gt" / "Annotations" / name / f"{t:05d}.png", mask)


def _write_generic(root: Path, name: str, video: SyntheticVideo) -> None:
    for t, (frame, mask) in enumerate(zip(video.frames, video.masks)):
        save_image(root / "JPEGImages" / name / f"{frame_name('generic', t)}.jpg", frame, quality=JPEG_QUALITY)
        save_mask(root / "GroundTruth" / name / f"{frame_name('generic', t)}.png", mask)
    for t, new_ids in _appearances(video).items():
        save_mask(root / "Annotations" / name / f"{frame_name('generic', t)}.png", _only(video.masks[t], new_ids))


def _write_video(job: tuple) -> dict:
    """Generate video ``index`` and write it; returns its manifest entry (runs in a worker)."""
    root, layout, spec, seed, index, name, split = job
    video = generate_video(video_rng(seed, index), spec=spec)
    root = Path(root)
    if layout == "davis":
        _write_davis(root, name, video)
    elif layout == "youtube":
        _write_youtube(root, name, video, split)
    else:
        _write_generic(root, name, video)
    return {
        "split": split,
        "frames": video.num_frames,
        "frame_names": [frame_name(layout, t) for t in range(video.num_frames)],
        "ids": list(video.ids),
        "first_frame": {str(i): video.first_frame[i] for i in video.ids},
        "categories": {str(i): video.categories[i] for i in video.ids},
        "gone": {str(i): list(video.gone[i]) for i in video.ids if i in video.gone},
        "distractors": len(video.distractors),
    }


def _youtube_meta(entries: dict[str, dict]) -> dict:
    """meta.json as YouTube-VOS ships it: per object its category and the every-5th frame
    names from its first appearance to the end."""
    videos = {}
    for name, entry in entries.items():
        objects = {}
        for object_id in entry["ids"]:
            first = entry["first_frame"][str(object_id)]
            objects[str(object_id)] = {
                "category": entry["categories"][str(object_id)],
                "frames": [f"{t:05d}" for t in range(0, entry["frames"], YOUTUBE_STRIDE) if t >= first],
            }
        videos[name] = {"objects": objects}
    return {"videos": videos}


def _default_workers(videos: int) -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8, videos))


def write_dataset(
    root: str | os.PathLike,
    layout: str = "davis",
    videos: int = 50,
    spec: SyntheticSpec | None = None,
    seed: int = 0,
    val_fraction: float = 0.2,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Generate ``videos`` videos and write them to ``root`` in one of three layouts.

    Frames are JPEG (quality 90), masks palette PNGs of object ids. Videos are named
    ``syn0000``, ``syn0001``, ...; the last ``round(videos * val_fraction)`` form the validation split.

    ``davis`` (DAVIS 2017 as distributed): ``JPEGImages/480p/<vid>/00000.jpg`` and
    ``Annotations/480p/<vid>/00000.png`` for every frame, ``ImageSets/2017/{train,val}.txt``;
    ids 1..K, every object in frame 0.

    ``youtube`` (YouTube-VOS 2019 as distributed): ``train/JPEGImages/<vid>/`` and
    ``train/Annotations/<vid>/`` with every 5th frame (named by its index: 00000, 00005, ...),
    ``train/meta.json``; ``valid/JPEGImages/<vid>/`` with every 5th frame,
    ``valid/Annotations/<vid>/<frame>.png`` only where objects first appear (holding only those
    objects), ``valid/meta.json``, ``all_frames/valid_all_frames/JPEGImages/<vid>/`` with every
    frame. Not part of YouTube-VOS: ``valid_gt/Annotations/<vid>/<frame>.png``, the full ground
    truth of every frame of the valid videos, for scoring.

    ``generic``: ``JPEGImages/<vid>/frame_1.jpg`` ... (natural order), ``Annotations/<vid>/``
    only where objects first appear, ``GroundTruth/<vid>/`` the full ground truth of every frame;
    no splits (``val_fraction`` is ignored).

    ``spec`` defaults to the layout's (:func:`layout_spec`). Returns the manifest, also written
    to ``root/synthetic.json``. ``root`` is an output folder of :mod:`remn.outputs`: the dataset is
    written under ``root/.remn-staging/`` and swapped in when complete; a folder holding anything
    this project did not write is refused, and a dataset this generator wrote before is replaced
    only with ``overwrite`` (raises :class:`~remn.outputs.OutputError`).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if videos < 1:
        raise ValueError(f"videos must be at least 1, got {videos}")
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    began = time.perf_counter()
    spec = layout_spec(layout, spec)
    output = OutputFolder.claim(root, COMMAND, overwrite=overwrite, option="OUT")
    try:
        manifest = _write_staged(output.stage(), layout, videos, spec, seed, val_fraction, workers, progress, began)
    except BaseException:
        output.discard()
        raise
    output.commit({"layout": layout})
    return manifest


def _write_staged(
    root: Path,
    layout: str,
    videos: int,
    spec: SyntheticSpec,
    seed: int,
    val_fraction: float,
    workers: int | None,
    progress: bool,
    began: float,
) -> dict:
    names = [f"syn{index:04d}" for index in range(videos)]
    n_val = 0 if layout == "generic" else int(round(videos * val_fraction))
    splits = ["all"] * videos if layout == "generic" else ["train"] * (videos - n_val) + ["val"] * n_val
    jobs = [
        (str(root), layout, spec, seed, index, name, split) for index, (name, split) in enumerate(zip(names, splits))
    ]
    workers = _default_workers(videos) if workers is None else max(1, min(int(workers), videos))
    bar = tqdm(total=videos, desc=f"synthetic {layout}", unit="video", disable=not progress)
    if workers == 1:
        entries = []
        for job in jobs:
            entries.append(_write_video(job))
            bar.update()
    else:
        # Forked workers need nothing from the caller's main module, so scripts without a
        # __main__ guard, notebooks and stdin work; the workers use only numpy and PIL.
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            entries = []
            for entry in pool.map(_write_video, jobs):
                entries.append(entry)
                bar.update()
    bar.close()
    by_name = dict(zip(names, entries))

    if layout == "davis":
        sets = root / "ImageSets" / "2017"
        sets.mkdir(parents=True, exist_ok=True)
        for split in ("train", "val"):
            listed = [name for name, s in zip(names, splits) if s == split]
            (sets / f"{split}.txt").write_text("".join(f"{name}\n" for name in listed))
    elif layout == "youtube":
        for split, folder in (("train", "train"), ("val", "valid")):
            chosen = {name: by_name[name] for name, s in zip(names, splits) if s == split}
            (root / folder).mkdir(parents=True, exist_ok=True)
            (root / folder / "meta.json").write_text(json.dumps(_youtube_meta(chosen)))

    manifest = {
        "generator": "remn.data.synthetic",
        "layout": layout,
        "seed": seed,
        "val_fraction": val_fraction,
        "spec": spec.to_dict(),
        "workers": workers,
        "frames": sum(entry["frames"] for entry in entries),
        "seconds": round(time.perf_counter() - began, 3),
        "videos": by_name,
    }
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
    return manifest
