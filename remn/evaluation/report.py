"""``report.html``: one static, self-contained page on an evaluation's scores.

:func:`write_report` turns what scoring produced (an :class:`~remn.evaluation.results.EvaluationResult`,
whose :class:`~remn.evaluation.results.SequenceScore` keep every object's J and F per scored frame)
into one HTML file, with nothing fetched from elsewhere (no network, no script): CSS in the page,
charts as inline SVG, thumbnails as JPEG data URIs. It holds

* a summary (what was scored; with ``timing``: frames, FPS, device, precision, memory);
* the global table (J&F, J and F Mean, Recall and Decay, in %);
* one row per sequence: objects, J&F, J, F and a J&F bar;
* one small chart per sequence: J (solid) and F (dashed) of each object over the scored frames
  (a sequence with more than :data:`CHART_POINTS` scored frames is drawn as the means of equal
  runs of frames);
* the worst frames (:func:`worst_frames`: the lowest J, a frame's J being the mean over the objects
  scored in it), each as two thumbnails, the prediction and the ground truth drawn over the frame
  (translucent fill and outline, one colour per object id, the DAVIS palette), with a legend.

Thumbnails need the ground-truth and prediction folders (``<root>/<sequence>/<frame>.png``) and,
for the frame itself, ``images``: a folder laid out alike (``<root>/<sequence>/<frame>.jpg``), or
``{sequence: [frame files]}`` matched by name; without a frame file the masks are drawn on grey.

Called by ``remn eval`` (remn/evaluation/run.py, inside the staged output) and ``remn score``
(remn/cli/score.py) where they write their CSV files. :func:`write_overlay_page` writes the small
page that ``remn segment --overlay`` puts beside its ``overlay.mp4``: the video and the run's record.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from remn.evaluation.results import GLOBAL_COLUMNS, EvaluationResult, SequenceScore

__all__ = [
    "REPORT_FILE",
    "OVERLAY_PAGE",
    "WORST_FRAMES",
    "CHART_POINTS",
    "WorstFrame",
    "worst_frames",
    "write_report",
    "render_report",
    "write_overlay_page",
]

REPORT_FILE = "report.html"
GENERATOR_META = '<meta name="generator" content="remn report">'
"""Marks a report this module wrote: only such a file is ever replaced."""
OVERLAY_PAGE = "overlay.html"
WORST_FRAMES = 8
CHART_POINTS = 600
THUMB_WIDTH = 240
FILL_ALPHA = 0.5


@dataclass(frozen=True)
class WorstFrame:
    """One of the worst frames: its sequence, name, J and F (means over the objects scored in it)
    and each scored object's J."""

    sequence: str
    frame: str
    j: float
    f: float
    object_j: dict[int, float]


def worst_frames(result: EvaluationResult, count: int = WORST_FRAMES) -> list[WorstFrame]:
    """The ``count`` frames with the lowest J, lowest first. A frame's J (and F) is the mean over
    the objects scored in it (NaN entries, objects not scored there, are left out); ties keep
    sequence order, then frame order."""
    frames: list[tuple[float, int, int, WorstFrame]] = []
    for s_index, sequence in enumerate(result.sequences):
        for t, name in enumerate(sequence.frame_names):
            j_column = sequence.j[:, t]
            scored = ~np.isnan(j_column)
            if not scored.any():
                continue
            f_column = sequence.f[:, t]
            entry = WorstFrame(
                sequence.name,
                name,
                float(j_column[scored].mean()),
                float(np.nanmean(f_column)),
                {int(i): float(v) for i, v, ok in zip(sequence.object_ids, j_column, scored) if ok},
            )
            frames.append((entry.j, s_index, t, entry))
    frames.sort(key=lambda item: item[:3])
    return [item[3] for item in frames[:count]]


# ---------------------------------------------------------------- formatting


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _percent(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100.0 * value:.1f}"


def _sequence_jf(sequence: SequenceScore) -> tuple[float, float, float]:
    j, f = sequence.j_mean(), sequence.f_mean()
    return (j + f) / 2.0, j, f


def _palette() -> np.ndarray:
    from remn.data.masks import DAVIS_PALETTE

    return np.frombuffer(DAVIS_PALETTE, dtype=np.uint8).reshape(256, 3)


def _colour(object_id: int, palette: np.ndarray) -> str:
    r, g, b = (int(c) for c in palette[int(object_id) % 256])
    return f"#{r:02x}{g:02x}{b:02x}"


# ---------------------------------------------------------------- charts


def _runs(values: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` points: means of equal runs of consecutive values (NaN ignored)."""
    if values.size <= limit:
        return values
    edges = np.linspace(0, values.size, limit + 1).astype(int)
    out = np.full(limit, np.nan)
    for k in range(limit):
        chunk = values[edges[k] : edges[k + 1]]
        if np.isfinite(chunk).any():
            out[k] = np.nanmean(chunk)
    return out


def _polylines(values: np.ndarray, x0: float, width: float, y0: float, height: float) -> list[str]:
    """Point lists of the finite stretches of ``values`` (NaN breaks the line)."""
    count = values.size
    pieces: list[str] = []
    current: list[str] = []
    for k, value in enumerate(values):
        if not np.isfinite(value):
            if current:
                pieces.append(" ".join(current))
            current = []
            continue
        x = x0 + (width * k / (count - 1) if count > 1 else width / 2)
        y = y0 + height * (1.0 - float(np.clip(value, 0.0, 1.0)))
        current.append(f"{x:.1f},{y:.1f}")
    if current:
        pieces.append(" ".join(current))
    return pieces


def _chart(sequence: SequenceScore, palette: np.ndarray, width: int = 420, height: int = 130) -> str:
    left, right, top, bottom = 30, 8, 8, 20
    plot_w, plot_h = width - left - right, height - top - bottom
    parts = [
        f'<svg class="chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="J and F over time, {_esc(sequence.name)}">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for level in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - level)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e2e2e2"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end" class="tick">{level:g}</text>')
    names = sequence.frame_names
    if names:
        parts.append(f'<text x="{left}" y="{height - 5}" class="tick">{_esc(names[0])}</text>')
        parts.append(
            f'<text x="{left + plot_w}" y="{height - 5}" text-anchor="end" class="tick">{_esc(names[-1])}</text>'
        )
    for row, object_id in enumerate(sequence.object_ids):
        colour = _colour(object_id, palette)
        for measure, dash in ((sequence.j, ""), (sequence.f, ' stroke-dasharray="4 3"')):
            for points in _polylines(_runs(measure[row], CHART_POINTS), left, plot_w, top, plot_h):
                if " " not in points:  # a single point: a dot
                    x, y = points.split(",")
                    parts.append(f'<circle cx="{x}" cy="{y}" r="2" fill="{colour}"/>')
                else:
                    parts.append(
                        f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"{dash}/>'
                    )
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- thumbnails


def _find(folder: Path, stem: str, extensions: Sequence[str]) -> Path | None:
    for extension in extensions:
        for candidate in (folder / f"{stem}{extension}", folder / f"{stem}{extension.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def _image_file(images, sequence: str, frame: str) -> Path | None:
    from remn.data.masks import IMAGE_EXTENSIONS

    if images is None:
        return None
    if isinstance(images, Mapping):
        for path in images.get(sequence, ()):
            if Path(path).stem == frame:
                return Path(path)
        return None
    return _find(Path(images) / sequence, frame, IMAGE_EXTENSIONS)


def _labels(path: Path | None, size: tuple[int, int] | None, davis2016: bool) -> np.ndarray | None:
    from remn.data.masks import read_mask

    if path is None:
        return None
    labels, _ = read_mask(path, frame=path.stem, warn=False)
    if davis2016:
        labels = (labels != 0).astype(np.int64)
    if size is not None and labels.shape != (size[1], size[0]):
        return None
    return labels


def _resize(array: np.ndarray, width: int, height: int, nearest: bool) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(array.astype(np.uint8))
    return np.asarray(image.resize((width, height), Image.NEAREST if nearest else Image.BILINEAR))


def _edges(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the frame border counts as outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _draw(frame: np.ndarray, labels: np.ndarray | None, objects: Sequence[int], palette: np.ndarray) -> np.ndarray:
    out = frame.astype(np.float32)
    if labels is not None:
        for object_id in objects:
            mask = labels == object_id
            if not mask.any():
                continue
            colour = palette[int(object_id) % 256].astype(np.float32)
            out[mask] = (1 - FILL_ALPHA) * out[mask] + FILL_ALPHA * colour
            out[_edges(mask)] = np.minimum(colour + 70, 255)
    return out.clip(0, 255).astype(np.uint8)


def _data_uri(rgb: np.ndarray) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _thumbnails(
    entry: WorstFrame,
    objects: Sequence[int],
    gt_root,
    pred_root,
    images,
    davis2016: bool,
    palette: np.ndarray,
    width: int,
) -> tuple[str, str] | None:
    """Data URIs of the prediction and the ground truth over the frame; None without masks to draw."""
    from remn.data.masks import MASK_EXTENSIONS, read_image

    gt_path = _find(Path(gt_root) / entry.sequence, entry.frame, MASK_EXTENSIONS) if gt_root else None
    pred_path = _find(Path(pred_root) / entry.sequence, entry.frame, MASK_EXTENSIONS) if pred_root else None
    gt = _labels(gt_path, None, davis2016)
    size = (gt.shape[1], gt.shape[0]) if gt is not None else None
    pred = _labels(pred_path, size, False)
    if gt is None and pred is None:
        return None
    shape = (gt if gt is not None else pred).shape
    image_path = _image_file(images, entry.sequence, entry.frame)
    frame = read_image(image_path) if image_path is not None else None
    if frame is None or frame.shape[:2] != shape:
        frame = np.full((*shape, 3), 96, dtype=np.uint8)
    height = max(1, round(shape[0] * width / shape[1]))
    small = _resize(frame, width, height, nearest=False)
    panels = []
    for labels in (pred, gt):
        scaled = _resize(labels, width, height, nearest=True) if labels is not None else None
        panels.append(_data_uri(_draw(small, scaled, objects, palette)))
    return panels[0], panels[1]


# ---------------------------------------------------------------- the page

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; background: #fff; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
table.global td { font-size: 15px; font-weight: 600; }
.bar { background: #e8e8e8; width: 220px; height: 12px; }
.bar div { height: 12px; background: #3b7dd8; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.charts figure, .worst figure { margin: 0; }
figcaption { font-size: 12px; color: #444; }
.tick { font-size: 9px; fill: #777; }
.worst { display: flex; flex-wrap: wrap; gap: 18px; }
.worst img { display: block; border: 1px solid #ccc; }
.pair { display: flex; gap: 4px; }
.swatch { display: inline-block; width: 10px; height: 10px; margin: 0 3px 0 8px; vertical-align: middle; }
.key { font-size: 12px; color: #444; }
"""


def _legend(objects: Sequence[int], palette: np.ndarray, values: Mapping[int, float] | None = None) -> str:
    items = []
    for object_id in objects:
        shown = f" J {_percent(values[object_id])}" if values and object_id in values else ""
        items.append(
            f'<span class="swatch" style="background:{_colour(object_id, palette)}"></span>object {object_id}{shown}'
        )
    return '<div class="key">' + "".join(items) + "</div>"


def _summary_rows(
    result: EvaluationResult, summary: Mapping[str, object] | None, timing: Mapping[str, object] | None
) -> list[tuple[str, str]]:
    frames = sum(int(np.isfinite(s.j).any(axis=0).sum()) for s in result.sequences)
    rows = [
        ("sequences", str(len(result.sequences))),
        ("objects", str(result.num_objects)),
        ("scored frames", str(frames)),
    ]
    if timing:
        fps = timing.get("fps")
        peak = timing.get("peak_memory_bytes")
        for key, value in (
            ("frames processed", timing.get("frames")),
            ("FPS (model time)", None if fps is None else f"{float(fps):.2f}"),
            ("device", timing.get("device")),
            ("precision", timing.get("precision")),
            ("processing size", timing.get("processing_size")),
            (
                "peak memory",
                None if not peak else f"{int(peak) / 2**20:.0f} MiB ({timing.get('peak_memory_kind', '')})",
            ),
            ("modules", timing.get("modules")),
        ):
            if value is not None:
                rows.append((key, str(value)))
    for key, value in (summary or {}).items():
        rows.append((str(key), str(value)))
    return rows


def render_report(
    result: EvaluationResult,
    *,
    title: str = "Evaluation report",
    gt_root=None,
    pred_root=None,
    images=None,
    gt_format: str = "davis2017",
    summary: Mapping[str, object] | None = None,
    timing: Mapping[str, object] | None = None,
    worst: int = WORST_FRAMES,
    thumb_width: int = THUMB_WIDTH,
) -> str:
    """The report's HTML text (see the module docstring; :func:`write_report` writes it)."""
    palette = _palette()
    table = result.global_table()
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="en"><head><meta charset="utf-8">{GENERATOR_META}',
        f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
    ]

    parts.append('<table class="summary">')
    for key, value in _summary_rows(result, summary, timing):
        parts.append(f"<tr><th>{_esc(key)}</th><td>{_esc(value)}</td></tr>")
    parts.append("</table>")

    parts.append(
        '<h2>Global</h2><table class="global"><tr>'
        + "".join(f"<th>{_esc(c)}</th>" for c in GLOBAL_COLUMNS)
        + "</tr><tr>"
        + "".join(f'<td data-column="{_esc(c)}">{_percent(table[c])}</td>' for c in GLOBAL_COLUMNS)
        + "</tr></table>"
        + '<p class="key">Percent; means over all objects of all sequences, J&amp;F = (J-Mean + F-Mean) / 2.'
        "</p>"
    )

    parts.append(
        '<h2>Sequences</h2><table class="sequences"><tr><th>Sequence</th><th>objects</th>'
        "<th>J&amp;F</th><th>J</th><th>F</th><th></th></tr>"
    )
    for sequence in result.sequences:
        jf, j, f = _sequence_jf(sequence)
        bar = 0.0 if math.isnan(jf) else max(0.0, min(1.0, jf))
        parts.append(
            f'<tr class="sequence" data-sequence="{_esc(sequence.name)}"><td>{_esc(sequence.name)}</td>'
            f"<td>{sequence.num_objects}</td><td>{_percent(jf)}</td><td>{_percent(j)}</td>"
            f'<td>{_percent(f)}</td><td><div class="bar"><div style="width:{100 * bar:.1f}%"></div></div>'
            "</td></tr>"
        )
    parts.append("</table>")

    parts.append(
        '<h2>J and F over time</h2><p class="key">J solid, F dashed; one colour per object; '
        'x: scored frames, first to last.</p><div class="charts">'
    )
    for sequence in result.sequences:
        parts.append(
            f'<figure data-sequence="{_esc(sequence.name)}">{_chart(sequence, palette)}'
            f"<figcaption>{_esc(sequence.name)}</figcaption>"
            f"{_legend(sequence.object_ids, palette)}</figure>"
        )
    parts.append("</div>")

    chosen = worst_frames(result, worst)
    objects_of = {s.name: s.object_ids for s in result.sequences}
    parts.append(
        f'<h2>Worst frames</h2><p class="key">The {len(chosen)} frames with the lowest J (mean over the '
        "objects scored in the frame); left the prediction, right the ground truth.</p>"
        '<div class="worst">'
    )
    for rank, entry in enumerate(chosen, 1):
        objects = objects_of[entry.sequence]
        thumbs = _thumbnails(entry, objects, gt_root, pred_root, images, gt_format == "davis2016", palette, thumb_width)
        pictures = ""
        if thumbs is not None:
            pictures = (
                '<div class="pair">'
                f'<img alt="prediction" src="{thumbs[0]}" width="{thumb_width}">'
                f'<img alt="ground truth" src="{thumbs[1]}" width="{thumb_width}"></div>'
            )
        parts.append(
            f'<figure class="worst-frame" data-rank="{rank}" data-sequence="{_esc(entry.sequence)}" '
            f'data-frame="{_esc(entry.frame)}" data-j="{entry.j:.6f}">{pictures}'
            f"<figcaption>#{rank} {_esc(entry.sequence)} / {_esc(entry.frame)}: J {_percent(entry.j)}, "
            f"F {_percent(entry.f)}</figcaption>{_legend(objects, palette, entry.object_j)}</figure>"
        )
    parts.append("</div></body></html>")
    return "\n".join(parts) + "\n"


def write_report(out_dir: str | os.PathLike, result: EvaluationResult, **options) -> Path:
    """Write ``out_dir/report.html`` (atomically) and return its path.

    ``result``: what scoring returned; ``gt_root`` / ``pred_root``: the folders it scored
    (``<root>/<sequence>/<frame>.png``), read again for the worst frames' thumbnails;
    ``images``: the frames (a folder ``<root>/<sequence>/<frame>.jpg`` or ``{sequence: [files]}``);
    ``gt_format``: ``davis2016`` draws every non-zero ground-truth pixel as object 1;
    ``summary``: extra ``key: value`` lines; ``timing``: an eval's ``timing.json`` (the options of
    :func:`render_report`).

    A ``report.html`` already there is replaced only when this module wrote it (its generator
    tag); any other file of that name is the user's and is refused with an :class:`OutputError`.
    """
    from remn.outputs import OutputError, atomic_write

    path = Path(out_dir) / REPORT_FILE
    if path.exists() and GENERATOR_META not in path.read_text(encoding="utf-8", errors="replace")[:2000]:
        raise OutputError(
            f"{path}: a report.html that remn did not write is in the way; move it, or write the scores "
            "elsewhere (remn score --out DIR)"
        )
    text = render_report(result, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda target: Path(target).write_text(text, encoding="utf-8"))
    return path


_OVERLAY_KEYS = (
    ("input", "input"),
    ("frames", "frames"),
    ("size", "size (width x height)"),
    ("objects", "objects"),
    ("checkpoint", "checkpoint"),
    ("device", "device"),
    ("model_fps", "FPS (model time)"),
    ("seconds", "seconds in all"),
    ("load", "weights"),
    ("masks", "given masks"),
)


def write_overlay_page(out_dir: str | os.PathLike, record: Mapping[str, object], video: str = "overlay.mp4") -> Path:
    """Write ``out_dir/overlay.html``: a ``<video>`` of ``video`` (a file beside it) and the run's record
    (``segment.json``); returns its path."""
    from remn.outputs import atomic_write

    rows = []
    for key, label in _OVERLAY_KEYS:
        value = record.get(key)
        if value in (None, "", [], {}):
            continue
        if key == "size" and isinstance(value, (list, tuple)):
            value = " x ".join(str(v) for v in value)
        elif key == "model_fps":
            value = f"{float(value):.2f}"
        elif key == "seconds":
            value = f"{float(value):.1f}"
        elif key == "masks" and isinstance(value, Mapping):
            value = "; ".join(f"frame {frame}: {path}" for frame, path in value.items())
        elif isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        rows.append(f"<tr><th>{_esc(label)}</th><td>{_esc(value)}</td></tr>")
    title = f"remn segment: {Path(str(record.get('input', ''))).name}"
    text = (
        "\n".join(
            [
                "<!DOCTYPE html>",
                '<html lang="en"><head><meta charset="utf-8">',
                f"<title>{_esc(title)}</title><style>{_STYLE}</style></head><body>",
                f"<h1>{_esc(title)}</h1>",
                f'<video src="{_esc(video)}" controls muted loop playsinline style="max-width:100%"></video>',
                '<h2>Run</h2><table class="summary">',
                *rows,
                "</table></body></html>",
            ]
        )
        + "\n"
    )
    path = Path(out_dir) / OVERLAY_PAGE
    atomic_write(path, lambda target: Path(target).write_text(text, encoding="utf-8"))
    return path
