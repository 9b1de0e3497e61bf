"""Does REMN learn? Train the demo configuration on generated videos and compare J&F on
held-out generated videos with the copy-the-first-mask baseline.

    python scripts/learning_check.py [--work runs/learning_check] [--config demo] [key=value ...]

``make demo`` (scripts/demo.py) runs it with ``--overlay`` into runs/demo/.

Steps (each printed with its time):
1. generate a training set and a held-out set (different seeds, DAVIS 2017 layout);
2. ``remn train --config demo`` on the training set;
3. ``remn eval --benchmark davis2017-val`` on the held-out set with the trained weights;
4. the baseline: every frame predicted as the first frame's mask, scored the same way;
5. ``<work>/report.html`` (remn/evaluation/report.py): the model's scores, worst frames and the baseline.
Training prints a progress line every ``train.progress_every`` iterations (stderr is not a terminal
here), evaluation one per video.
Exit status 0 when the trained model beats the baseline by at least ``--margin`` J&F points.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

from .config import load_config
from .outputs import OutputFolder
from .training.run_folder import RunFolder

REPO = Path(__file__).resolve().parents[1]

TRAIN_SEED, HELDOUT_SEED = 0, 1000


def _run(command: list[str], what: str) -> float:
    print(f"$ {' '.join(command)}", flush=True)
    started = time.perf_counter()
    result = subprocess.run(command)
    if result.returncode != 0:
        raise SystemExit(f"{what} failed with status {result.returncode}")
    return time.perf_counter() - started


def generate(work: Path, videos: int, heldout: int, frames: int, size: int) -> tuple[Path, Path, float]:
    """Training set (every video in train.txt) and held-out set (every video in val.txt)."""
    from remn.data.synthetic import layout_spec, write_dataset

    started = time.perf_counter()
    train_root, heldout_root = work / "data" / "train", work / "data" / "heldout"
    for root, count, seed, fraction in (
        (train_root, videos, TRAIN_SEED, 0.0),
        (heldout_root, heldout, HELDOUT_SEED, 1.0),
    ):
        write_dataset(
            root,
            layout="davis",
            videos=count,
            seed=seed,
            val_fraction=fraction,
            progress=False,
            overwrite=True,
            spec=layout_spec("davis", frames=frames, height=size, width=size),
        )
    return train_root, heldout_root, time.perf_counter() - started


def copy_first_mask(heldout_root: Path, out: Path) -> None:
    """The baseline: the first frame's mask for every frame."""
    from remn.data.masks import read_mask, save_mask

    images = heldout_root / "JPEGImages" / "480p"
    for video in sorted(p.name for p in images.iterdir()):
        labels, info = read_mask(heldout_root / "Annotations" / "480p" / video / "00000.png")
        for frame in sorted(images.joinpath(video).iterdir()):
            save_mask(out / video / f"{frame.stem}.png", labels, palette=info.palette)


def global_jf(folder: Path, split: str) -> dict[str, float]:
    row = next(csv.DictReader((folder / f"global_results-{split}.csv").open()))
    return {k: float(v) for k, v in row.items()}


def write_demo_report(
    work: Path,
    heldout_root: Path,
    model_out: Path,
    model: dict[str, float],
    baseline: dict[str, float],
    lead: float,
    weights: Path,
    timing: dict,
) -> Path:
    """``work/report.html``: the trained model's scores on the held-out videos (remn/evaluation/report.py),
    with the baseline and the lead in its summary."""
    from remn.evaluation.report import write_report
    from remn.evaluation.score import score_folders

    gt = heldout_root / "Annotations" / "480p"
    result = score_folders(gt, model_out, progress=False)
    return write_report(
        work,
        result,
        title="REMN demo: held-out generated videos",
        gt_root=gt,
        pred_root=model_out,
        images=heldout_root / "JPEGImages" / "480p",
        timing=timing,
        summary={
            "model J&F": f"{100 * model['J&F-Mean']:.1f}",
            "copy the first mask J&F": f"{100 * baseline['J&F-Mean']:.1f}",
            "lead over the baseline": f"{lead:+.1f} J&F points",
            "weights": str(weights),
        },
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "learning_check", help="working folder")
    parser.add_argument("--config", default="demo")
    parser.add_argument("--videos", type=int, default=60, help="training videos")
    parser.add_argument("--heldout", type=int, default=10, help="held-out videos")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=96, help="side of the generated frames")
    parser.add_argument("--margin", type=float, default=10.0, help="required lead over the baseline, J&F points")
    parser.add_argument("--overlay", action="store_true", help="also write an overlay video of one held-out video")
    parser.add_argument("overrides", nargs="*", help="config overrides for training and evaluation")
    args = parser.parse_intermixed_args(argv)

    cfg = load_config(args.config, args.overrides)  # checked before anything runs
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    times = {}

    train_root, heldout_root, times["generate"] = generate(work, args.videos, args.heldout, args.frames, args.size)
    print(
        f"generated {args.videos} training and {args.heldout} held-out videos of {args.frames} frames at "
        f"{args.size}x{args.size} in {times['generate']:.1f} s",
        flush=True,
    )

    run_name = cfg.name
    runs = work / "runs"
    if (runs / run_name).exists():
        RunFolder(runs / run_name).remove()  # the previous check's run, and nothing else
    times["train"] = _run(
        [
            python,
            "-m",
            "remn",
            "train",
            "--config",
            args.config,
            "--run-name",
            run_name,
            f"data.synthetic_root={train_root}",
            f"train.run_dir={runs}",
            *args.overrides,
        ],
        "training",
    )
    weights = runs / run_name / "checkpoints" / "synthetic_final.pth"
    if not weights.is_file():
        candidates = sorted((runs / run_name / "checkpoints").glob("*_final.pth"))
        if not candidates:
            raise SystemExit(f"no final weights in {runs / run_name / 'checkpoints'}")
        weights = candidates[-1]

    model_out = work / "eval" / "model"
    times["evaluate"] = _run(
        [
            python,
            "-m",
            "remn",
            "eval",
            "--benchmark",
            "davis2017-val",
            "--data-root",
            str(heldout_root),
            "--output",
            str(model_out),
            "--checkpoint",
            str(weights),
            "--overwrite",
            "--config",
            args.config,
            f"inference.size={cfg.inference.size}",
            *args.overrides,
        ],
        "evaluation",
    )
    model = global_jf(model_out, "val")

    from remn.evaluation.results import write_csvs
    from remn.evaluation.score import score_folders

    baseline_out = work / "eval" / "copy_first_mask"
    folder = OutputFolder.claim(baseline_out, "learning_check baseline", overwrite=True)
    staging = folder.stage()
    copy_first_mask(heldout_root, staging)
    result = score_folders(heldout_root / "Annotations" / "480p", staging, progress=False)
    write_csvs(result, staging, "val")
    folder.commit()
    baseline = global_jf(baseline_out, "val")
    timing = json.loads((model_out / "timing.json").read_text())

    lead = 100 * (model["J&F-Mean"] - baseline["J&F-Mean"])
    print()
    print(
        f"held-out generated videos: {args.heldout} x {args.frames} frames at {args.size}x{args.size} "
        f"(seed {HELDOUT_SEED}; training seed {TRAIN_SEED})"
    )
    print("| method | J&F | J | F |")
    print("|---|---:|---:|---:|")
    for name, row in (("REMN, demo configuration", model), ("copy the first mask", baseline)):
        print(f"| {name} | {100 * row['J&F-Mean']:.1f} | {100 * row['J-Mean']:.1f} | {100 * row['F-Mean']:.1f} |")
    print(f"lead over the baseline: {lead:+.1f} J&F points (required: {args.margin:+.1f})")
    print(
        f"times: generate {times['generate']:.0f} s, train {times['train']:.0f} s, evaluate "
        f"{times['evaluate']:.0f} s ({timing['fps']:.1f} FPS on {timing['device']})"
    )
    summary = {
        "model": model,
        "baseline": baseline,
        "lead_points": lead,
        "times_s": times,
        "weights": str(weights),
        "eval_fps": timing["fps"],
        "config": args.config,
        "overrides": args.overrides,
    }
    (work / "learning_check.json").write_text(json.dumps(summary, indent=1))
    report = write_demo_report(work, heldout_root, model_out, model, baseline, lead, weights, timing)
    outputs = [f"report: {report}"]

    if args.overlay:
        video = sorted((heldout_root / "JPEGImages" / "480p").iterdir())[0]
        overlay_out = work / "overlay"
        _run(
            [
                python,
                "-m",
                "remn",
                "segment",
                str(video),
                "--mask",
                str(heldout_root / "Annotations" / "480p" / video.name / "00000.png"),
                "--output",
                str(overlay_out),
                "--checkpoint",
                str(weights),
                "--overlay",
                "--overwrite",
                "--quiet",
                "--config",
                args.config,
                "--size",
                str(cfg.inference.size),
                "--fps",
                "8",
            ],
            "overlay",
        )
        outputs.append(f"overlay video (H.264): {overlay_out / 'overlay.mp4'}")
    print("\n".join(outputs))
    return 0 if lead >= args.margin else 1


if __name__ == "__main__":
    sys.exit(main())
