"""The figures of ``remn reproduce`` (matplotlib, PNG), from the evaluations' own outputs:

* ``fps_vs_length.png``: FPS of each long-time video against its length in play steps, at x1 and x3
  (``timing.json``: per-video frames and FPS), for the rows evaluated on the long-time set;
* ``memory_vs_length.png``: the memory bank's size (frames) against the play position over the
  longest x3 video (``timing.json``: ``bank_size``), the same rows;
* ``jf_by_distractors.png`` (generated data only): J&F of the DAVIS-like validation videos grouped by
  how many look-alike distractors the generator put in them (its manifest records how many, not how
  close they come to the targets: J&F against distractor distance is not measured).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

__all__ = ["draw_figures", "DISTANCE_NOTE"]

DISTANCE_NOTE = "J&F against distractor distance: not measured at this scale ({why})."
_COLOURS = {"stcn": "tab:blue", "remn": "tab:red", "no-frm": "tab:orange", "stcn-released": "tab:purple"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _timing(path: Path) -> dict:
    return json.loads(path.read_text())


def _per_video_jf(path: Path) -> dict[str, float]:
    """Mean J&F of each video from a per-sequence CSV (rows ``<video>_<id>``)."""
    objects: dict[str, list[float]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            video = row["Sequence"].rsplit("_", 1)[0]
            objects.setdefault(video, []).append((float(row["J-Mean"]) + float(row["F-Mean"])) / 2)
    return {video: sum(v) / len(v) for video, v in objects.items()}


def _long_time(plan: dict, out: Path, labels: dict[str, str], figures: Path) -> dict[str, Optional[str]]:
    plt = _pyplot()
    runs = [e for e in plan["evaluations"] if e["benchmark"] in ("long-time", "long-time-x3")]
    if not runs:
        return {"fps_vs_length": None, "memory_vs_length": None}
    figure, axis = plt.subplots(figsize=(6, 4))
    for row in dict.fromkeys(e["row"] for e in runs):
        points = []
        for entry in (e for e in runs if e["row"] == row):
            for video in _timing(out / entry["eval"] / "out" / "timing.json")["videos"].values():
                if video.get("fps"):
                    points.append((video["frames"], video["fps"]))
        lengths = sorted({p[0] for p in points})
        means = [sum(p[1] for p in points if p[0] == n) / sum(1 for p in points if p[0] == n) for n in lengths]
        axis.plot([p[0] for p in points], [p[1] for p in points], "o", color=_COLOURS.get(row), alpha=0.5)
        axis.plot(lengths, means, "-", color=_COLOURS.get(row), label=f"{labels[row]} (line: mean per length)")
    axis.set_xlabel("video length (play steps; x1 and x3)")
    axis.set_ylabel("FPS")
    axis.set_title("Speed against length (long-time set)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(figures / "fps_vs_length.png", dpi=120)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(6, 4))
    for row in dict.fromkeys(e["row"] for e in runs):
        entry = next((e for e in runs if e["row"] == row and e["benchmark"] == "long-time-x3"), None)
        if entry is None:
            continue
        videos = _timing(out / entry["eval"] / "out" / "timing.json")["videos"]
        longest = max(videos.values(), key=lambda v: v["frames"])
        series = longest.get("bank_size") or []
        axis.plot([s[0] for s in series], [s[1] for s in series], color=_COLOURS.get(row), label=labels[row])
    axis.set_xlabel("play position (x3: forward, backward, forward)")
    axis.set_ylabel("memory bank size (frames)")
    axis.set_title("Memory against length (longest long-time video, x3)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(figures / "memory_vs_length.png", dpi=120)
    plt.close(figure)
    return {"fps_vs_length": "figures/fps_vs_length.png", "memory_vs_length": "figures/memory_vs_length.png"}


def _distractors(plan: dict, out: Path, labels: dict[str, str], figures: Path) -> tuple[Optional[str], str]:
    manifest_path = plan.get("davis_manifest")
    if not manifest_path:
        return None, DISTANCE_NOTE.format(why="the real datasets do not mark distractors")
    videos = json.loads(Path(manifest_path).read_text()).get("videos", {})
    counts = {name: entry.get("distractors") for name, entry in videos.items()}
    why = "the generator's manifest records how many look-alike distractors a video has, not how close they come"
    if any(count is None for count in counts.values()):
        return None, DISTANCE_NOTE.format(why="the generator's manifest does not record distractors")
    plt = _pyplot()
    rows = [r for r in ("remn", "no-frm", "stcn") if any(e["row"] == r for e in plan["evaluations"])]
    groups: dict[str, dict[int, list[float]]] = {}
    for row in rows:
        for entry in (e for e in plan["evaluations"] if e["row"] == row and e["benchmark"] == "davis2017-val"):
            per_video = _per_video_jf(out / entry["eval"] / "out" / "per-sequence_results-val.csv")
            for video, jf in per_video.items():
                groups.setdefault(row, {}).setdefault(counts.get(video, -1), []).append(100 * jf)
    numbers = sorted({n for g in groups.values() for n in g if n >= 0})
    if not numbers:
        return None, DISTANCE_NOTE.format(why=why)
    figure, axis = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(1, len(rows))
    for index, row in enumerate(rows):
        means = [sum(groups[row].get(n, [0])) / max(1, len(groups[row].get(n, []))) for n in numbers]
        axis.bar(
            [n + (index - (len(rows) - 1) / 2) * width for n in numbers],
            means,
            width,
            color=_COLOURS.get(row),
            label=labels[row],
        )
    axis.set_xticks(numbers)
    axis.set_xlabel("look-alike distractors in the video")
    axis.set_ylabel("J&F (%)")
    axis.set_title("J&F by number of look-alikes (DAVIS-like validation)")
    axis.legend()
    figure.tight_layout()
    figure.savefig(figures / "jf_by_distractors.png", dpi=120)
    plt.close(figure)
    return "figures/jf_by_distractors.png", DISTANCE_NOTE.format(why=why) + (
        " The figure shows J&F by how many look-alikes a video holds instead."
    )


def draw_figures(plan: dict, out: Path, target: Path) -> tuple[dict[str, Optional[str]], list[str]]:
    """Draw the figures into ``target/figures/``; returns their paths relative to ``target`` and notes."""
    figures = target / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    labels = {row["id"]: row["label"] for row in plan["rows"]}
    drawn = _long_time(plan, out, labels, figures)
    drawn["jf_by_distractors"], note = _distractors(plan, out, labels, figures)
    return drawn, [note]
