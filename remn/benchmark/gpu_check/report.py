"""The report of a GPU check: one line per check, the speed table, and markdown rows for docs/benchmarks.md."""

from __future__ import annotations

__all__ = ["SPEED_CHECKS", "add_gains", "headline", "summary_table", "rows_markdown", "environment"]

SPEED_CHECKS = ("speed", "cuda_graphs", "compile")
"""Checks whose rows are speed rows (configuration, variant, objects, length)."""
CONFIG_NAMES = {"remn": "REMN", "stcn": "STCN mode"}


def environment(report: dict) -> dict:
    """The device as the ``device`` check saw it (the parent never touches CUDA: its workers are forked)."""
    info = report["checks"].get("device", {}).get("info", {})
    return {
        "name": info.get("name") or "unknown device",
        "type": info.get("type") or report["settings"]["device"],
        "torch": info.get("torch") or report.get("torch"),
        "cuda": info.get("cuda") or report.get("torch_cuda"),
    }


def add_gains(report: dict) -> None:
    """FPS of each speed row over the plain bf16 row of the speed check (same configuration,
    objects and length)."""
    base = {
        (r["config"], r["objects"], r["frames"]): r["fps"]
        for r in report["checks"].get("speed", {}).get("rows", [])
        if r.get("variant") == "bf16" and r.get("fps")
    }
    for name in SPEED_CHECKS:
        for row in report["checks"].get(name, {}).get("rows", []):
            key = (row.get("config"), row.get("objects"), row.get("frames"))
            if row.get("fps") and key in base:
                row["gain"] = round(row["fps"] / base[key], 3)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def _speed_line(row: dict) -> str:
    text = f"{CONFIG_NAMES[row['config']]} {row['variant']} {row['objects']} obj {row['fps']:.1f} FPS"
    if "gain" in row and row["variant"] != "bf16":
        text += f" ({row['gain']:.2f}x)"
    if "label_agreement" in row:
        text += f" agree {_pct(row['label_agreement'])}"
    setup = row.get("setup_s", 0) + row.get("warmup_s", 0)
    if row["variant"] != "bf16" and setup > 5:
        text += f", {setup:.0f} s before the first timed frame"
    return text


def headline(name: str, report: dict) -> str:
    """What check ``name`` found (or why it failed or was skipped), on one line."""
    try:
        return _headline(name, report)
    except (KeyError, TypeError, ValueError) as exc:  # a row without the expected fields: the report still stands
        return f"{len(report['checks'][name].get('rows', []))} row(s) (no summary: {type(exc).__name__} {exc})"


def _headline(name: str, report: dict) -> str:
    result = report["checks"].get(name, {})
    rows = result.get("rows", [])
    if result.get("status") in ("failed", "timeout", "skipped"):
        measured = sum(1 for r in rows if not r.get("error") and not r.get("skipped"))
        text = result.get("error") or result.get("reason") or ""
        return text + (f" ({measured} row(s) measured)" if measured else "")
    if name == "device":
        info = result.get("info", {})
        memory = f", {info['memory_gib']} GiB" if info.get("memory_gib") else ""
        return f"{info.get('name')}, torch {info.get('torch')}, CUDA {info.get('cuda')}{memory}"
    if name == "agreement":
        return "; ".join(
            f"{r['what']}: {_pct(r['label_agreement'])} labels equal (worst frame "
            f"{_pct(r['worst_frame'])}), largest probability difference {r['max_prob_diff']:.4f}"
            for r in rows
        )
    if name in SPEED_CHECKS:
        return "; ".join(_speed_line(r) for r in rows if r.get("fps") and r.get("length") == "short")
    if name == "profile":
        return "; ".join(
            f"{CONFIG_NAMES[r['config']]} {r['wall_ms'] / r['steps']:.1f} ms/step"
            + (f", device busy {_pct(r['busy'])}" if r.get("busy") is not None else "")
            + ": "
            + ", ".join(f"{k['name'][:40]} {_pct(k['share'])}" for k in r["top"][:3])
            for r in rows
        )
    if name == "train":
        return "; ".join(
            f"{_num(r['it_per_s'], 2)} it/s, peak {_num(r['peak_mib'], 0)} MiB ({r['note']})" for r in rows
        )
    if name == "torchrun":
        return "; ".join(r.get("note", "") for r in rows)
    return ""


def _peak_kind(report: dict) -> str:
    return (
        "the CUDA allocator's peak after the warm-up"
        if environment(report)["type"] == "cuda"
        else "the process's peak RSS after the warm-up"
    )


def _speed_pairs(report: dict) -> list[tuple[str, str, int, dict, dict]]:
    pairs: dict[tuple[str, str, int], dict] = {}
    for name in SPEED_CHECKS:
        for row in report["checks"].get(name, {}).get("rows", []):
            if "length" in row and not row.get("error") and not row.get("skipped"):
                pairs.setdefault((row["config"], row["variant"], row["objects"]), {})[row["length"]] = row
    return [(*key, pair.get("short", {}), pair.get("long", {})) for key, pair in pairs.items()]


def _ratio(a: dict, b: dict, key: str) -> float | None:
    return b[key] / a[key] if a.get(key) and b.get(key) else None


def summary_table(report: dict) -> str:
    """The checks (status, seconds, budget, what they found) and the speed rows, as plain text."""
    env, settings = environment(report), report["settings"]
    lines = [
        f"GPU check on {env['name']} ({env['type']}, torch {env['torch']}, CUDA {env['cuda']}), "
        f"{report['seconds']:.0f} s; passed {len(report['passed'])}, failed {len(report['failed'])}, "
        f"skipped {len(report['skipped'])}",
        "",
        f"{'check':<12} {'status':<8} {'s':>6} {'budget':>6}  result",
    ]
    for name, r in report["checks"].items():
        lines.append(
            f"{name:<12} {r['status']:<8} {r['seconds']:>6.1f} {r['budget_s']:>6.0f}  {headline(name, report)}"
        )
    short, long = settings["length"], 3 * settings["length"]
    if not _speed_pairs(report):
        return "\n".join(lines)
    lines += [
        "",
        f"speed: {settings['width']}x{settings['height']}, bf16; peak = {_peak_kind(report)}; gain = FPS "
        "over the plain bf16 row; agree = labels equal to the plain bf16 core's",
        f"{'configuration':<13} {'variant':<18} {'obj':>3} {f'FPS {short}f':>10} {f'FPS {long}f':>10} "
        f"{'ratio':>6} {f'MiB {short}f':>10} {f'MiB {long}f':>10} {'ratio':>6} {'bank':>9} {'gain':>6} "
        f"{'agree':>8}",
    ]
    for cfg, variant, objects, a, b in _speed_pairs(report):
        bank = f"{a.get('bank_frames', '-')} / {b.get('bank_frames', '-')}"
        lines.append(
            f"{CONFIG_NAMES[cfg]:<13} {variant:<18} {objects:>3} {_num(a.get('fps')):>10} "
            f"{_num(b.get('fps')):>10} {_num(_ratio(a, b, 'fps'), 3):>6} {_num(a.get('peak_mib'), 0):>10} "
            f"{_num(b.get('peak_mib'), 0):>10} {_num(_ratio(a, b, 'peak_mib'), 3):>6} {bank:>9} "
            f"{_num(a.get('gain'), 2):>6} {_pct(a.get('label_agreement')):>8}"
        )
    return "\n".join(lines)


def rows_markdown(report: dict) -> str:
    """The results as markdown tables whose rows name the device, ready to paste into docs/benchmarks.md."""
    env, settings = environment(report), report["settings"]
    name, short, long = env["name"], settings["length"], 3 * settings["length"]
    weights = settings["checkpoint"] or "random weights"
    speed = [
        f"| device | configuration | variant | objects | FPS {short}f | FPS {long}f | peak MiB {short}f | "
        f"peak MiB {long}f | bank frames | gain | agreement |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    lines = [
        f"`python scripts/gpu_check.py` on {name} ({env['type']}, torch {env['torch']}, CUDA {env['cuda']}), "
        f"{report['started']}, {report['seconds']:.0f} s{' (--tiny)' if settings['tiny'] else ''}; {weights}; "
        f"{settings['width']}x{settings['height']}, bf16; peak memory = {_peak_kind(report)}",
        "",
    ]
    for cfg, variant, objects, a, b in _speed_pairs(report):
        speed.append(
            f"| {name} | {CONFIG_NAMES[cfg]} | {variant} | {objects} | {_num(a.get('fps'))} | "
            f"{_num(b.get('fps'))} | {_num(a.get('peak_mib'), 0)} | {_num(b.get('peak_mib'), 0)} | "
            f"{a.get('bank_frames', '-')} / {b.get('bank_frames', '-')} | {_num(a.get('gain'), 2)} | "
            f"{_pct(a.get('label_agreement'))} |"
        )
    if len(speed) > 2:
        lines += [*speed, ""]
    lines += ["| device | check | status | result |", "|---|---|---|---|"]
    for check, result in report["checks"].items():
        lines.append(f"| {name} | {check} | {result['status']} | {headline(check, report).replace('|', '/')} |")
    return "\n".join(lines) + "\n"
