"""The tables of ``remn reproduce``: Tables I-IV in the paper's layout, our figures beside the paper's.

    python -m remn.reproduce.tables --plan DIR/plan.json --out DIR/tables/out [--server-scores FILE]

Reads what the plan's evaluations wrote (davis2017-evaluation's CSV files, ``timing.json``, the local
scores of the server benchmarks) and writes ``tables.md``, ``results.json`` and the figures
(:mod:`remn.reproduce.figures`) to ``--out``, then ``DIR/tables.md`` and ``DIR/results.json``. With
several seeds a cell is the mean ± the spread (half the range) over the seeds; derived cells
(Gen-error, G, the x1 -> x3 differences) are computed per seed first. A cell a server scores says
``server`` until ``--server-scores`` gives it (docs/reproduce.md, "Server scores").
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Optional, Sequence, Union

from omegaconf import OmegaConf

from remn.cli.common import UsageError, run_command
from remn.errors import REMNError
from remn.outputs import OutputFolder, atomic_write_text

from .figures import draw_figures
from .scale import load_paper

__all__ = ["main", "Cell", "aggregate", "format_cell", "read_server_scores", "TABLES", "SERVER"]

SERVER = "server"
Value = Union[float, str, None]  # a figure, SERVER, or None (not measured)

TABLES = {
    "table1": (
        "Table I: DAVIS 2017 validation and test-dev",
        [
            ("val_jf", "Val J&F"),
            ("val_j", "Val J"),
            ("val_f", "Val F"),
            ("testdev_jf", "Test-dev J&F"),
            ("testdev_j", "Test-dev J"),
            ("testdev_f", "Test-dev F"),
            ("fps", "FPS"),
            ("gen_error", "Gen-error"),
        ],
    ),
    "table2": (
        "Table II: YouTube-VOS 2018 validation",
        [
            ("seen_j", "Seen J"),
            ("seen_f", "Seen F"),
            ("unseen_j", "Unseen J"),
            ("unseen_f", "Unseen F"),
            ("g", "G"),
            ("fps", "FPS"),
            ("gen_error", "Gen-error"),
        ],
    ),
    "table3": (
        "Table III: long-time videos (x1, and replayed x3)",
        [
            ("j_x1", "J (x1)"),
            ("fps_x1", "FPS (x1)"),
            ("j_x3", "J (x3)"),
            ("fps_x3", "FPS (x3)"),
            ("j_diff", "J (x1->x3)"),
            ("fps_diff", "FPS (x1->x3)"),
        ],
    ),
    "table4": (
        "Table IV: module ablation (J&F: DAVIS 2017 validation; G and FPS: YouTube-VOS 2018 validation)",
        [("jf", "J&F"), ("g", "G"), ("fps", "FPS")],
    ),
}
_MAIN_ROWS = ("stcn", "remn", "stcn-released")
_PAPER_ROW = {"stcn": "STCN", "remn": "REMN"}


# ------------------------------------------------------------------ cells


class Cell:
    """Our figure for one cell: the per-seed values, or SERVER, or None."""

    def __init__(self, values: list[Value]) -> None:
        self.values = values

    @property
    def state(self) -> str:
        if any(v is None for v in self.values) or not self.values:
            return "missing"
        return SERVER if any(v == SERVER for v in self.values) else "measured"

    def to_json(self):
        if self.state != "measured":
            return SERVER if self.state == SERVER else None
        mean, spread = aggregate([float(v) for v in self.values])
        return {"mean": mean, "spread": spread, "values": [float(v) for v in self.values]}


def aggregate(values: Sequence[float]) -> tuple[float, float]:
    """Mean and spread (half the range) over seeds."""
    return statistics.fmean(values), (max(values) - min(values)) / 2


def format_cell(cell: Cell) -> str:
    if cell.state == "missing":
        return "n/a"
    if cell.state == SERVER:
        return SERVER
    mean, spread = aggregate([float(v) for v in cell.values])
    return f"{mean:.1f}" if len(cell.values) == 1 else f"{mean:.1f} ± {spread:.1f}"


def _paper(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.1f}"


def _sub(a: Value, b: Value) -> Value:
    if a is None or b is None:
        return None
    return SERVER if SERVER in (a, b) else float(a) - float(b)


def _mean(*values: Value) -> Value:
    if any(v is None for v in values):
        return None
    return SERVER if SERVER in values else sum(float(v) for v in values) / len(values)


# ------------------------------------------------------------------ reading


def _global(path: Path) -> dict[str, float]:
    with open(path, newline="") as handle:
        row = next(csv.DictReader(handle))
    return {key: 100.0 * float(value) for key, value in row.items() if value != ""}


def read_server_scores(path: Optional[Path]) -> dict:
    """``--server-scores FILE``: ``{benchmark: {row or row-s<seed>: {metric: percent}}}`` (JSON or YAML)."""
    if path is None:
        return {}
    try:
        data = OmegaConf.to_container(OmegaConf.load(path))
    except Exception as error:  # yaml and OmegaConf raise several classes
        raise UsageError(
            f"{path}: not a JSON or YAML file of server scores ({' '.join(str(error).split())}); see "
            "docs/reproduce.md, 'Server scores'"
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise UsageError(
            f"{path}: expected benchmark -> row -> metric -> value; see docs/reproduce.md, 'Server scores'"
        )
    return data


def _server(scores: dict, benchmark: str, row: str, seed: Optional[int], keys: Sequence[str]) -> dict[str, Value]:
    table = scores.get(benchmark, {})
    entry = table.get(f"{row}-s{seed}") if seed is not None else None
    entry = entry if entry is not None else table.get(row)
    if not isinstance(entry, dict):
        return {key: SERVER for key in keys}
    return {key: float(entry[key]) if entry.get(key) is not None else SERVER for key in keys}


def _measure(plan: dict, out: Path, scores: dict) -> dict[tuple[str, Optional[int]], dict[str, Value]]:
    """Per (row, seed): every figure the tables use, in percent (scores) or frames per second."""
    found: dict[tuple[str, Optional[int]], dict[str, Value]] = {}
    for entry in plan["evaluations"]:
        key = (entry["row"], entry["seed"])
        m = found.setdefault(key, {})
        run = out / entry["eval"] / "out"
        fps = json.loads((run / "timing.json").read_text()).get("fps")
        benchmark = entry["benchmark"]
        score = out / entry["score"] / "out" if entry["score"] else None
        if benchmark == "davis2017-val":
            table = _global(run / "global_results-val.csv")
            m.update(val_jf=table["J&F-Mean"], val_j=table["J-Mean"], val_f=table["F-Mean"], val_fps=fps)
        elif benchmark == "davis2017-test-dev":
            if score is not None:
                table = _global(score / "global_results-test-dev.csv")
                m.update(testdev_jf=table["J&F-Mean"], testdev_j=table["J-Mean"], testdev_f=table["F-Mean"])
            else:
                got = _server(scores, benchmark, *key, ("J&F", "J", "F"))
                if got["J&F"] == SERVER:
                    got["J&F"] = _mean(got["J"], got["F"])
                m.update(testdev_jf=got["J&F"], testdev_j=got["J"], testdev_f=got["F"])
        elif benchmark == "youtube2018-valid":
            m["yt_fps"] = fps
            if score is not None:
                local = json.loads((score / "youtube.json").read_text())
                for name in ("seen_j", "seen_f", "unseen_j", "unseen_f"):
                    m[name] = None if local.get(name) is None else 100.0 * local[name]
                m["g"] = _mean(m["seen_j"], m["seen_f"], m["unseen_j"], m["unseen_f"])
            else:
                got = _server(scores, benchmark, *key, ("J_seen", "F_seen", "J_unseen", "F_unseen", "G"))
                m.update(seen_j=got["J_seen"], seen_f=got["F_seen"], unseen_j=got["J_unseen"], unseen_f=got["F_unseen"])
                m["g"] = (
                    got["G"]
                    if got["G"] != SERVER
                    else _mean(got["J_seen"], got["F_seen"], got["J_unseen"], got["F_unseen"])
                )
        elif benchmark in ("long-time", "long-time-x3"):
            length = "x1" if benchmark == "long-time" else "x3"
            table = _global(run / f"global_results-{benchmark}.csv")
            m.update({f"j_{length}": table["J-Mean"], f"fps_{length}": fps})
    return found


def _derive(table: str, m: dict[str, Value]) -> dict[str, Value]:
    get = m.get
    if table == "table1":
        return {
            "val_jf": get("val_jf"),
            "val_j": get("val_j"),
            "val_f": get("val_f"),
            "testdev_jf": get("testdev_jf"),
            "testdev_j": get("testdev_j"),
            "testdev_f": get("testdev_f"),
            "fps": get("val_fps"),
            "gen_error": _sub(get("val_jf"), get("testdev_jf")),
        }
    if table == "table2":
        return {
            "seen_j": get("seen_j"),
            "seen_f": get("seen_f"),
            "unseen_j": get("unseen_j"),
            "unseen_f": get("unseen_f"),
            "g": get("g"),
            "fps": get("yt_fps"),
            "gen_error": _sub(_mean(get("seen_j"), get("seen_f")), _mean(get("unseen_j"), get("unseen_f"))),
        }
    if table == "table3":
        return {
            "j_x1": get("j_x1"),
            "fps_x1": get("fps_x1"),
            "j_x3": get("j_x3"),
            "fps_x3": get("fps_x3"),
            "j_diff": _sub(get("j_x3"), get("j_x1")),
            "fps_diff": _sub(get("fps_x3"), get("fps_x1")),
        }
    return {"jf": get("val_jf"), "g": get("g"), "fps": get("yt_fps")}


def _cells(table: str, row: str, seeds: list[Optional[int]], found: dict) -> dict[str, Cell]:
    per_seed = [_derive(table, found.get((row, seed), {})) for seed in seeds]
    return {key: Cell([values[key] for values in per_seed]) for key, _ in TABLES[table][1]}


# ------------------------------------------------------------------ writing


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _tables(plan: dict, found: dict, paper: dict) -> tuple[list[str], dict]:
    rows = {row["id"]: row for row in plan["rows"]}
    seeds = {rid: (list(plan["seeds"]) if rows[rid]["seeded"] else [None]) for rid in rows}
    count = len(plan["seeds"])
    ours = "ours" + (f", {count} seeds" if count > 1 else "")
    parts: list[str] = []
    result: dict = {}
    for table in ("table1", "table2", "table3"):
        title, columns = TABLES[table]
        keys = [key for key, _ in columns]
        lines, entries = [], []
        for rid in _MAIN_ROWS:
            if rid not in rows:
                continue
            if rid in _PAPER_ROW:
                values = paper[table]["rows"][_PAPER_ROW[rid]]
                lines.append([f"{_PAPER_ROW[rid]} (paper)", *(_paper(values.get(k)) for k in keys)])
                entries.append(
                    {"method": _PAPER_ROW[rid], "source": "paper", "cells": {k: values.get(k) for k in keys}}
                )
            cells = _cells(table, rid, seeds[rid], found)
            label = rows[rid]["label"]
            who = ours if rows[rid]["seeded"] else "ours"
            lines.append([f"{label} ({who})", *(format_cell(cells[k]) for k in keys)])
            entries.append(
                {"method": label, "source": "ours", "row": rid, "cells": {k: cells[k].to_json() for k in keys}}
            )
        parts += [f"## {title}", "", _markdown(["Method", *(label for _, label in columns)], lines), ""]
        result[table] = {"title": title, "columns": [list(c) for c in columns], "rows": entries}
    title, columns = TABLES["table4"]
    keys = [key for key, _ in columns]
    header = ["FRM", "ASM", "RRM"] + [f"{label} ({who})" for _, label in columns for who in ("paper", "ours")]
    lines, entries = [], []
    for row in plan["rows"]:
        if row["id"] in ("stcn", "stcn-released"):
            continue
        flags = row["modules"]
        key = "+".join(name for name, on in zip(("FRM", "ASM", "RRM"), flags) if on)
        values = paper["table4"]["rows"].get(key, {})
        cells = _cells("table4", row["id"], seeds[row["id"]], found)
        lines.append(
            [
                *("✓" if on else "✗" for on in flags),
                *(text for k in keys for text in (_paper(values.get(k)), format_cell(cells[k]))),
            ]
        )
        entries.append(
            {
                "method": row["label"],
                "row": row["id"],
                "modules": flags,
                "paper": {k: values.get(k) for k in keys},
                "ours": {k: cells[k].to_json() for k in keys},
            }
        )
    parts += [f"## {title}", "", _markdown(header, lines), ""]
    result["table4"] = {"title": title, "columns": [list(c) for c in columns], "rows": entries}
    return parts, result


def _times(out: Path, plan: dict) -> tuple[list[str], dict]:
    kinds: dict[str, list[float]] = {}
    steps = {}
    for step in plan["steps"]:
        if step["kind"] == "tables":
            continue
        try:
            seconds = float(json.loads((out / step["name"] / "done.json").read_text())["seconds"])
        except (OSError, ValueError, KeyError):
            continue
        steps[step["name"]] = seconds
        kinds.setdefault(step["kind"], []).append(seconds)
    rows = [[kind, str(len(v)), f"{sum(v) / 60:.1f}"] for kind, v in kinds.items()]
    rows.append(["all", str(sum(len(v) for v in kinds.values())), f"{sum(map(sum, kinds.values())) / 60:.1f}"])
    return [
        "## Times",
        "",
        "Wall time of each kind of step (the last time each ran):",
        "",
        _markdown(["steps", "count", "minutes"], rows),
        "",
    ], steps


def _notes(plan: dict) -> list[str]:
    device = None
    for entry in plan["evaluations"]:
        timing = json.loads((Path(plan["out"]) / entry["eval"] / "out" / "timing.json").read_text())
        device = f"{timing.get('device')} ({timing.get('precision')})"
        break
    notes = [
        f"Ours: this run at scale {plan['scale']}, evaluated on {device}; paper: its Tables I-IV "
        "(configs/reproduce/paper.yaml), FPS measured on its GPU.",
        "STCN (ours) is the w/o-FRM model after STCN's recipe (before the rrm stage) with ASM and RRM off; "
        "w/o FRM is trained separately; w/o ASM (a write every 5th frame), w/o RRM (an unbounded memory) "
        "and FRM only are the REMN model with those switches off at inference (docs/reproduce.md).",
    ]
    if plan["generated"]:
        notes.append(
            "Every benchmark is a generated analogue (docs/reproduce.md, 'What the analogues lack'); "
            "test-dev and YouTube-VOS, scored by servers at full scale, are scored here against the "
            "generator's ground truth; 'unseen' objects are those of the shape held out of training."
        )
    else:
        notes.append(
            "Cells marked 'server' are scored by the evaluation servers: submit the zips of the eval-* "
            "steps and pass the figures with --server-scores FILE (docs/reproduce.md, 'Server scores')."
        )
    return notes


def write_tables(plan_path: Path, target: Path, server_scores: Optional[Path]) -> tuple[str, dict]:
    """Build the tables and figures into ``target``; returns the markdown (figure links relative to
    ``target``) and the results."""
    plan = json.loads(plan_path.read_text())
    out = Path(plan["out"])
    found = _measure(plan, out, read_server_scores(server_scores))
    parts, result = _tables(plan, found, load_paper())
    figures, figure_notes = draw_figures(plan, out, target)
    notes = _notes(plan)
    times, seconds = _times(out, plan)
    head = [f"# REMN paper, Tables I-IV: scale {plan['scale']}", "", *(f"- {n}" for n in notes), ""]
    shown = [f"![{name}]({path})" for name, path in figures.items() if path]
    tail = ["## Figures", "", *shown, "", *(f"- {n}" for n in figure_notes), "", *times]
    text = "\n".join(head + parts + tail)
    result = {
        "format": "remn-reproduce-results-v1",
        "scale": plan["scale"],
        "seeds": plan["seeds"],
        "written": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "notes": notes + figure_notes,
        "tables": result,
        "figures": figures,
        "step_seconds": seconds,
    }
    return text, result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remn.reproduce.tables", description=__doc__.split("\n")[0])
    parser.add_argument("--plan", type=Path, required=True, help="DIR/plan.json, written by remn reproduce")
    parser.add_argument("--out", type=Path, required=True, help="output folder (DIR/tables/out)")
    parser.add_argument("--server-scores", type=Path, help="JSON or YAML of the servers' figures")
    args = parser.parse_args(argv)

    def body() -> int:
        if not args.plan.is_file():
            raise UsageError(f"{args.plan}: plan not found; run remn reproduce, which writes it")
        if args.server_scores is not None and not args.server_scores.is_file():
            raise UsageError(f"{args.server_scores}: server scores not found (--server-scores)")
        folder = OutputFolder.claim(args.out, "remn reproduce tables", overwrite=True, inputs=[("--plan", args.plan)])
        staging = folder.stage()
        try:
            text, result = write_tables(args.plan, staging, args.server_scores)
            (staging / "tables.md").write_text(text + "\n")
            (staging / "results.json").write_text(json.dumps(result, indent=1) + "\n")
        except (OSError, KeyError, ValueError, StopIteration) as error:
            folder.discard()
            raise REMNError(
                f"the outputs of the plan's steps cannot be read ({type(error).__name__}: {error}); "
                "rerun remn reproduce, which redoes incomplete steps"
            ) from None
        except BaseException:
            folder.discard()
            raise
        folder.commit()
        top = Path(json.loads(args.plan.read_text())["out"])
        prefix = args.out.resolve().relative_to(top.resolve()).as_posix() + "/"
        atomic_write_text(top / "tables.md", text.replace("](figures/", f"]({prefix}figures/") + "\n")
        result["figures"] = {k: (prefix + v if v else None) for k, v in result["figures"].items()}
        atomic_write_text(top / "results.json", json.dumps(result, indent=1) + "\n")
        print(f"wrote {top / 'tables.md'} and {top / 'results.json'}")
        return 0

    return run_command(body, interrupted="the tables were not replaced")


if __name__ == "__main__":
    sys.exit(main())
