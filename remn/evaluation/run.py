"""Run a benchmark: segment every video, write outputs in the benchmark's layout, time it,
and score it where ground truth exists. ``eval.py`` is the command-line front end.

Outputs of a run in ``OUTPUT``:

* the masks (``<video>/<frame>.png``, or ``Annotations/<video>/<frame>.png`` for YouTube-VOS);
* with ``save_scores``: ``scores/<video>/<frame>.npz``, the objects' probabilities of each
  written frame, quantised (:mod:`remn.inference.scores`);
* ``timing.json``: frames, objects, seconds of model time, FPS, peak memory, memory bank size
  over time, precision and device, per video and in total;
* ``run.json``: benchmark, config and checkpoint, so a resume can tell it is the same run;
* with ground truth: ``global_results-<split>.csv``, ``per-sequence_results-<split>.csv``,
  ``results.md`` and ``report.html`` (:mod:`remn.evaluation.report`); for servers: the submission zip.

The output folder is an :class:`~remn.outputs.OutputFolder`: the run is built under
``OUTPUT/.remn-staging/`` (each video's folder appears there only once the video is written, so
a stopped run resumes from the videos already done) and swapped in for earlier results only when
it has succeeded. A folder holding anything this project did not write is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from remn.config import REMNConfig, config_to_yaml
from remn.data.masks import BAD_LAYOUT, NO_FRAMES, DataError, DataWarning, MaskRepair
from remn.data.video import Video
from remn.data.vos import VOSDataset, open_dataset
from remn.evaluation.benchmarks import BenchmarkSpec
from remn.inference.core import InferenceCore
from remn.inference.scores import SCORES, quantise
from remn.inference.scores import save_scores as save_scores_file
from remn.inference.video_loop import segment_video, warm_up
from remn.model.network import REMN
from remn.outputs import OutputError, OutputFolder, atomic_write, atomic_write_text, signals_held
from remn.runtime import PeakMemory, resolve_precision

__all__ = ["EvaluationRun", "run_benchmark", "OutputExistsError", "peak_memory_bytes", "COMMAND"]

STATE_FILE = "run.json"
PARTIAL = ".partial"
COMMAND = "remn eval"

OutputExistsError = OutputError
"""The output folder holds another run's results (an :class:`~remn.outputs.OutputError`)."""


def peak_memory_bytes(device: torch.device) -> tuple[int, str]:
    """Peak memory so far and its kind: CUDA allocations on a GPU, else the process's peak RSS (:class:`PeakMemory`)."""
    probe = PeakMemory(device)
    return probe.peak, probe.kind


def open_benchmark_dataset(spec: BenchmarkSpec, root: str | Path) -> VOSDataset:
    kwargs: dict = {}
    if spec.layout == "davis2017":
        kwargs["split"] = spec.split or "val"
    elif spec.layout in ("youtube", "mose", "lvos"):
        kwargs["split"] = spec.split or "valid"
    elif spec.layout == "long-time":
        kwargs["repeat"] = spec.repeat
    return open_dataset(spec.layout, root, **kwargs)


@dataclass
class EvaluationRun:
    """What a finished run measured."""

    output: Path
    videos: list[str]
    timing: dict
    scores: dict | None = None
    zip_path: Path | None = None
    files: list[Path] = field(default_factory=list)


def _video_folder(spec: BenchmarkSpec, output: Path, name: str) -> Path:
    return output / "Annotations" / name if spec.output == "youtube" else output / name


def _read_state(path: Path) -> dict | None:
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def _same(old: dict | None, state: dict) -> bool:
    return old is not None and {k: old.get(k) for k in state} == state


def _resume_or_refuse(folder: OutputFolder, state: dict, overwrite: bool) -> bool:
    """Whether the staging folder holds this very run, unfinished (then it is resumed).

    Refused without ``overwrite``: this run's or another run's complete results, and another
    run's unfinished staging folder.
    """
    output = folder.root
    if folder.has_results and not overwrite:
        if _same(_read_state(output / STATE_FILE), state):
            raise OutputError(
                f"{output}: holds a complete run of this evaluation; pass --overwrite to run it again "
                "(the results are replaced once the new run has succeeded)"
            )
        raise OutputError(
            f"{output}: holds the results of another run (benchmark, config or checkpoint differ); "
            "pass --overwrite to replace them once this run has succeeded, or choose another --output"
        )
    resume = _same(_read_state(folder.staging / STATE_FILE), state)
    if folder.staging.is_dir() and any(folder.staging.iterdir()) and not resume and not overwrite:
        raise OutputError(
            f"{output}: holds an unfinished evaluation with other settings (in {folder.staging.name}/); "
            "run that command again to finish it, or pass --overwrite to discard it"
        )
    return resume


def run_benchmark(
    model: REMN,
    cfg: REMNConfig,
    spec: BenchmarkSpec,
    data_root: str | Path,
    output: str | Path,
    *,
    checkpoint: str | None = None,
    subset: Sequence[str] | None = None,
    overwrite: bool = False,
    device: torch.device | None = None,
    score: bool = True,
    gt_root: str | Path | None = None,
    progress: bool = True,
    warmup: int = 3,
    subset_file: str | Path | None = None,
    mask_repair: MaskRepair | None = None,
    save_scores: bool = False,
) -> EvaluationRun:
    """Evaluate ``model`` on one benchmark (see the module docstring for the outputs).

    ``mask_repair``: how to read the given (input) masks that are soft or lossy instead of refusing
    them; ground truth and predictions are never repaired. ``save_scores``: also the quantised
    probabilities of every written frame, in ``scores/<video>/`` (:mod:`remn.inference.scores`)."""
    output = Path(output)
    data_root = Path(data_root)
    gt = Path(gt_root) if gt_root is not None else (data_root / spec.gt if spec.gt else None)
    inputs = [
        ("--data-root", data_root),
        ("--gt", gt_root),
        ("--checkpoint", checkpoint),
        ("--subset file", subset_file),
    ]
    folder = OutputFolder.claim(output, COMMAND, overwrite=overwrite, inputs=inputs, allow_existing=True)
    if score and gt_root is not None and not Path(gt_root).is_dir():
        raise DataError(
            BAD_LAYOUT,
            "ground-truth folder not found; check --gt (a folder of <video>/<frame>.png), "
            "or leave it out to use the benchmark's",
            gt_root,
        )
    dataset = open_benchmark_dataset(spec, data_root)
    if subset is not None:
        dataset.restrict(list(subset))
    if not dataset.videos:
        listing = getattr(dataset, "list_file", None)
        where = f"the video list {listing} is empty" if listing is not None else "the dataset holds no videos"
        raise DataError(
            NO_FRAMES,
            f"no videos to evaluate: {where}; check --data-root" + (" and --subset" if subset is not None else ""),
            data_root,
        )
    device = device or next(model.parameters()).device
    state = {
        "benchmark": spec.name,
        "data_root": str(data_root.resolve()),
        "checkpoint": checkpoint,
        "config": config_to_yaml(cfg),
        "videos": list(dataset.videos),
        "mask_repair": None if mask_repair is None else repr(mask_repair),
    }
    if save_scores:  # only then, so that runs recorded before the option still resume
        state["save_scores"] = True
        if spec.output != "youtube" and SCORES in dataset.videos:
            raise DataError(
                BAD_LAYOUT,
                f"a video is named {SCORES!r}, the folder --save-scores writes to; rename it or leave the option out",
                data_root,
            )
    resume = _resume_or_refuse(folder, state, overwrite)
    videos = _open_videos(dataset, spec, mask_repair)  # every video and given mask checked before any output
    staging = folder.stage(keep=resume)
    atomic_write_text(staging / STATE_FILE, json.dumps({**state, "complete": False}, indent=1))
    partial_root = staging / PARTIAL
    if partial_root.exists():
        shutil.rmtree(partial_root)  # an interrupted video restarts from its first frame

    core = InferenceCore(model, cfg, device)
    PeakMemory(device).reset(rss=False)  # the CUDA peak restarts; on a CPU it is the process's since it started
    per_video: dict[str, dict] = {}
    timing_path = staging / "timing.json"
    if timing_path.is_file():
        per_video = (_read_state(timing_path) or {}).get("videos", {})
    warmed = False
    terminal = progress and sys.stderr.isatty()  # a bar on a terminal, else one line per video (logs, pipes)
    bar = tqdm(dataset.videos, desc=f"{spec.name}", unit="video", disable=not terminal)
    for index, name in enumerate(bar, 1):
        final = _video_folder(spec, staging, name)
        scores_final = staging / SCORES / name
        if final.is_dir() and name in per_video and (not save_scores or scores_final.is_dir()):
            continue  # written by an earlier, interrupted run
        video = videos[name]
        if not warmed and warmup > 0:
            warm_up(core, video, warmup)
            warmed = True
        video_staging = partial_root / name
        video_staging.mkdir(parents=True, exist_ok=True)
        scores_staging = partial_root / SCORES / name
        if save_scores:
            scores_staging.mkdir(parents=True, exist_ok=True)
        seconds = 0.0
        objects: set[int] = set()
        bank_sizes: list[tuple[int, int]] = []
        steps = video.num_steps
        sample_every = max(1, steps // 500)
        frame_bar = tqdm(total=steps, desc=name, unit="frame", leave=False, disable=not terminal)
        for done in segment_video(core, video, steps, probabilities=save_scores):
            frame_bar.update(1)
            seconds += done.seconds
            objects.update(done.ids)
            position = done.frame.position
            if position % sample_every == 0 or position == steps - 1:
                bank_sizes.append((position, len(core.bank)))
            if done.labels is not None:
                video.save_output(video_staging, done.frame, done.labels)
            if done.prob is not None:
                save_scores_file(scores_staging / f"{done.frame.name}.npz", quantise(done.prob), done.ids)
        frame_bar.close()
        final.parent.mkdir(parents=True, exist_ok=True)
        for moved in (final, scores_final):
            if moved.exists():  # moved in by a run killed before it recorded the video's timing: ours, redone
                shutil.rmtree(moved)
        per_video[name] = {
            "frames": steps,
            "objects": len(objects),
            "seconds": seconds,
            "fps": steps / seconds if seconds > 0 else None,
            "bank_size": bank_sizes,
            "rrm_reductions": len(core.bank.reductions),
        }
        with signals_held():  # the video's folder and its timing go in together (a resume trusts both)
            os.replace(video_staging, final)
            if save_scores:
                scores_final.parent.mkdir(exist_ok=True)
                os.replace(scores_staging, scores_final)
            _write_timing(timing_path, per_video, cfg, device, spec)
        if progress and not terminal:
            fps = f"{steps / seconds:.1f}" if seconds > 0 else "-"
            print(
                f"{spec.name} {index}/{len(dataset.videos)}: {name} {steps} frames, {fps} FPS",
                file=sys.stderr,
                flush=True,
            )
    if partial_root.exists():
        shutil.rmtree(partial_root)
    timing = _write_timing(timing_path, per_video, cfg, device, spec)

    run = EvaluationRun(output=output, videos=list(dataset.videos), timing=timing)
    zip_name = _make_zip(spec, staging).name if spec.zip else None
    if score and gt is not None and gt.is_dir():
        run.scores = _score(spec, gt, staging, videos, timing, getattr(dataset, "object_ranges", None))
    atomic_write_text(staging / STATE_FILE, json.dumps({**state, "complete": True}, indent=1))
    folder.commit({"benchmark": spec.name})
    run.zip_path = output / zip_name if zip_name else None
    return run


def _open_videos(dataset: VOSDataset, spec: BenchmarkSpec, mask_repair: MaskRepair | None) -> dict[str, Video]:
    """Every video of the run, its given masks read once, so that a bad video or mask is found
    before anything is written (the masks are read again, one at a time, when reached)."""
    videos = {}
    for name in dataset.videos:
        video = dataset.video(name)
        video.binary_output = spec.binary_output or video.binary_output
        video.repair = mask_repair
        with warnings.catch_warnings():  # the warnings come when the masks are used
            warnings.simplefilter("ignore", DataWarning)
            for index in sorted(video.masks):
                video.read_input_mask(index)
        videos[name] = video
    return videos


def _write_timing(
    path: Path, per_video: dict[str, dict], cfg: REMNConfig, device: torch.device, spec: BenchmarkSpec
) -> dict:
    frames = sum(v["frames"] for v in per_video.values())
    seconds = sum(v["seconds"] for v in per_video.values())
    peak, kind = peak_memory_bytes(device)
    timing = {
        "benchmark": spec.name,
        "frames": frames,
        "objects": sum(v["objects"] for v in per_video.values()),
        "seconds": seconds,
        "fps": frames / seconds if seconds > 0 else None,
        "peak_memory_bytes": peak,
        "peak_memory_kind": kind,
        "precision": resolve_precision(cfg.runtime.precision, device),  # what ran (``auto`` resolved)
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "processing_size": cfg.inference.size,
        "modules": {"frm": cfg.model.frm, "asm": cfg.memory.asm, "rrm": cfg.memory.rrm},
        "note": "fps = frames / model time; model time covers the network, memory, resizing and the "
        "argmax, excludes reading and writing files and a warm-up",
        "videos": per_video,
    }
    atomic_write_text(path, json.dumps(timing, indent=1))
    return timing


def _make_zip(spec: BenchmarkSpec, output: Path) -> Path:
    if spec.zip == "annotations":
        source, arc_root, target = output / "Annotations", "Annotations", output / "submission.zip"
    else:
        source, arc_root, target = output, "", output / "results.zip"

    def write(temporary) -> None:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(source.rglob("*.png")):
                relative = path.relative_to(source).as_posix()
                if relative.startswith("."):
                    continue
                archive.write(path, f"{arc_root}/{relative}" if arc_root else relative)

    atomic_write(target, write)
    return target


def _score(
    spec: BenchmarkSpec,
    gt: Path,
    output: Path,
    videos: dict[str, Video],
    timing: dict,
    object_ranges: dict | None = None,
) -> dict:
    from remn.evaluation.lvos import score_object_ranges
    from remn.evaluation.report import write_report
    from remn.evaluation.results import davis_table, long_time_table, write_csvs
    from remn.evaluation.score import score_folders

    pred_root = output / "Annotations" if spec.output == "youtube" else output
    if object_ranges is not None:  # LVOS: each object on the frames of its range
        result = score_object_ranges(gt, pred_root, object_ranges, sequences=list(videos), progress=False)
    else:
        result = score_folders(
            gt, pred_root, sequences=list(videos), sparse=spec.sparse, progress=False, gt_format=spec.gt_format
        )
    write_csvs(result, output, spec.split or spec.name)
    write_report(
        output,
        result,
        title=f"remn eval: {spec.name}",
        gt_root=gt,
        pred_root=pred_root,
        gt_format=spec.gt_format,
        timing=timing,
        images={name: getattr(video.frames, "paths", ()) for name, video in videos.items()},
    )
    table = result.global_table()
    method = f"REMN ({spec.name})"
    if spec.layout == "long-time":
        length = f"x{spec.repeat}"
        # the paper's Table III reports J on this set
        text = long_time_table(
            [{"method": method, f"J {length}": table["J-Mean"], f"FPS {length}": timing.get("fps")}],
            metric="J",
            highlight=False,
        )
    else:
        text = davis_table([{"method": method, **table, "FPS": timing.get("fps")}], highlight=False)
    (output / "results.md").write_text(text + "\n")
    return table
