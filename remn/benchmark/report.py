"""What a suite's runs say: the printed table (FPS, peak memory, memory-bank size, ratios 3x/1x
and REMN/configuration), the figures (FPS and memory against video length) and their title;
also for saved ``benchmark.json`` files (``remn benchmark --report``)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Sequence

import numpy as np

from .suite import LABELS, summarise

__all__ = ["format_table", "draw_figures", "report"]


def format_table(
    summary: dict, configs: Sequence[str], objects: Sequence[int], lengths: Sequence[int], header: str
) -> str:
    """The printed table: FPS, peak memory and memory frames per configuration, ratios 3x/1x
    and REMN/config."""
    lines = [header]
    short, long = min(lengths), max(lengths)
    for count in objects:
        lines.append("")
        lines.append(f"{count} object{'s' if count > 1 else ''}")
        cols = (
            [f"FPS {n}f" for n in lengths]
            + [f"FPS {long}/{short}"]
            + [f"peak MiB {n}f" for n in lengths]
            + [f"peak {long}/{short}", "bank MiB", "bank frames", "writes", "REMN/this FPS"]
        )
        lines.append(f"{'configuration':<14}" + "".join(f"{c:>15}" for c in cols))
        for name in configs:
            rows = [summary.get(f"{name}/{count}/{n}") for n in lengths]
            if any(r is None for r in rows):
                continue
            remn = [summary.get(f"remn/{count}/{n}") for n in lengths]
            fps = [r["fps"] for r in rows]
            mem = [r["peak_memory_bytes"] / 2**20 for r in rows]
            ratio = " / ".join(f"{a['fps'] / r['fps']:.2f}" for a, r in zip(remn, rows)) if all(remn) else "-"
            cells = (
                [f"{f:.2f}" for f in fps]
                + [f"{fps[-1] / fps[0]:.3f}"]
                + [f"{m:.0f}" for m in mem]
                + [
                    f"{mem[-1] / mem[0]:.3f}",
                    " / ".join(f"{r['bank_bytes'] / 2**20:.1f}" for r in rows),
                    " / ".join(str(r["bank_frames"]) for r in rows),
                    " / ".join(str(r["writes"]) for r in rows),
                    ratio,
                ]
            )
            lines.append(f"{LABELS.get(name, name):<14}" + "".join(f"{c:>15}" for c in cells))
    return "\n".join(lines)


def draw_figures(
    summary: dict, runs: list[dict], configs: Sequence[str], objects: Sequence[int], folder: Path, title: str
) -> list[Path]:
    """``fps_vs_length.png`` and ``memory_vs_length.png``: curves from the longest runs (FPS and
    peak memory of the video's prefix of each length), dots from the separate shorter runs.
    The memory figure has a second row with the memory bank's own size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    longest = max(r["frames"] for r in runs)
    kind_of_peak = "peak CUDA memory (MiB)" if runs[0]["device"].startswith("cuda") else "peak process RSS (MiB)"
    panels = {
        "fps": [("FPS (frames / second)", "fps")],
        "memory": [(kind_of_peak, "peak_memory_bytes"), ("memory bank buffers (MiB)", "bank_bytes")],
    }
    column = {"peak_memory_bytes": 3, "bank_bytes": 5}
    paths = []
    for kind, rows in panels.items():
        fig, axes = plt.subplots(len(rows), len(objects), figsize=(6 * len(objects), 4.2 * len(rows)), squeeze=False)
        for row, (ylabel, field) in enumerate(rows):
            for ax, count in zip(axes[row], objects):
                for i, name in enumerate(configs):
                    colour = f"C{i}"
                    curve_runs = [
                        r for r in runs if r["config"] == name and r["objects"] == count and r["frames"] == longest
                    ]
                    if curve_runs:
                        curve = np.asarray(curve_runs[0]["curve"], dtype=np.float64)
                        y = curve[:, 0] / curve[:, 1] if field == "fps" else curve[:, column[field]] / 2**20
                        ax.plot(curve[:, 0], y, color=colour, label=LABELS.get(name, name), linewidth=1.6)
                    points = sorted(
                        (v["frames"], v[field] if field == "fps" else v[field] / 2**20)
                        for v in summary.values()
                        if v["config"] == name and v["objects"] == count
                    )
                    if points:
                        ax.plot(*zip(*points), "o", color=colour, markersize=6)
                ax.set_xlabel("video length (frames)")
                ax.set_ylabel(ylabel)
                ax.set_title(f"{count} object{'s' if count > 1 else ''}")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
        fig.suptitle("\n".join(textwrap.wrap(title, 90 * len(objects))), fontsize=8)
        fig.tight_layout()
        path = folder / f"{kind}_vs_length.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def report(result: dict) -> dict:
    """Summary, printed table and figure title of a suite's runs (also for a saved JSON, ``--report``)."""
    runs, setting = result["runs"], result["setting"]
    setting.setdefault("configs", list(dict.fromkeys(r["config"] for r in runs)))
    setting.setdefault("objects", sorted({r["objects"] for r in runs}))
    summary = summarise(runs)
    first = runs[0]
    weights = first["weights"]
    overrides = setting["overrides"]
    repeats = max(len(v["fps_all"]) for v in summary.values())
    header = (
        f"REMN benchmark: {first['device_name']} ({first['device']}), {setting['precision']}, "
        f"{setting['width']}x{setting['height']}, torch {first['torch']}, {weights}; "
        f"overrides {overrides or 'none'}; median of {repeats} run(s); "
        f"peak memory = {first['peak_memory_kind']}; bank MiB = the memory bank's buffers"
    )
    if first["device"] == "cpu":
        header += f"; oneDNN primitive cache {first.get('onednn_primitive_cache', 'default (1024)')}"
    if not setting.get("checkpoint"):
        header += (
            "\nnote: random weights predict meaningless masks, so ASM's writes (column 'writes') are not "
            "those of a trained network"
        )
    table = format_table(summary, setting["configs"], setting["objects"], setting["frames"], header)
    title = (
        f"{first['device_name']}, {setting['precision']}, {setting['width']}x{setting['height']}, "
        f"{'checkpoint ' + Path(setting['checkpoint']).name if setting.get('checkpoint') else 'random weights'}"
        f"; overrides: {' '.join(overrides) or 'none'}"
    )
    result.update(
        title=title,
        table=table,
        summary=summary,
        weights=weights,
        device=first["device"],
        device_name=first["device_name"],
    )
    return result
