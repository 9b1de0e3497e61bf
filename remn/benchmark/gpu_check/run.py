"""The parent of a GPU check: each check in a forked process of its own, under its own time budget.

The parent imports torch and the project once and never touches CUDA; every check runs in a
child forked from it (no second start-up of torch, a CUDA context of its own, its own peak
memory, its own session, so that a check past its budget is stopped with everything it started,
``torchrun`` and loader workers included). With ``spawn`` (``--spawn``), or when a forked child
cannot start CUDA, each check is a fresh ``python -m remn.benchmark.gpu_check --worker NAME`` instead (a
few seconds more each). A check that fails, crashes or hangs is recorded with its one-line
error and the next one runs. The report is written after every check.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from remn.outputs import atomic_write_text

from .report import add_gains, environment, headline, rows_markdown
from .settings import CHECKS, Settings, last_line
from .workers import worker_main

__all__ = ["run_checks"]

_PRELOAD = (
    "remn.config",
    "remn.inference",
    "remn.data.synthetic",
    "remn.training",
    "remn.cli.train",
    "torch.distributed",
    "torch.profiler",
)
"""Imported once in the parent, so that no forked check pays for them again."""


def _fork(name: str, settings: Settings, deadline: float, log_path: Path) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:  # the child: its own session and log, default signal handling, never back into the parent's code
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        sys.stdout = open(1, "w", buffering=1, closefd=False)  # also where the parent had replaced them
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        code = worker_main(name, settings, deadline)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _spawn(name: str, settings: Settings, deadline: float, log_path: Path) -> int:
    from .training_checks import child_env

    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "remn.benchmark.gpu_check",
                "--worker",
                name,
                "--spec",
                str(Path(settings.out) / "work" / "spec.json"),
                "--deadline",
                str(deadline),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(),
            start_new_session=True,
        )
    process.returncode = 0  # reaped by _wait (os.waitpid), not by the Popen object
    return process.pid


_FORK_FAILURES = ("forked subprocess", "initialization error", "cudaErrorInitializationError")
"""What a forked child says when the parent's process had started CUDA before the fork."""


def _wait(pid: int, until: float) -> int | None:
    """The child's exit status, or None if it still runs at ``until``."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.time() >= until:
            return None
        time.sleep(0.1)


def _stop(pid: int) -> int | None:
    """SIGTERM to the child's whole session, then SIGKILL: the training loop saves and stops on SIGTERM."""
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        code = _wait(pid, time.time() + grace)
        if code is not None:
            return code
    return None


def _run_worker(name: str, settings: Settings, budget: float, spawn: bool = False) -> dict:
    out = Path(settings.out)
    result_path, log_path = out / "work" / f"{name}.json", out / "logs" / f"{name}.log"
    result_path.unlink(missing_ok=True)
    started = time.perf_counter()
    deadline = time.time() + budget
    pid = (_spawn if spawn else _fork)(name, settings, deadline, log_path)
    code = None
    try:
        code = _wait(pid, deadline)
    finally:
        timed_out = code is None
        if timed_out:
            code = _stop(pid)
    result = {"status": "failed", "rows": []}
    try:
        result = json.loads(result_path.read_text())
    except (OSError, ValueError):
        pass
    result.update(
        seconds=round(time.perf_counter() - started, 1), budget_s=round(budget, 1), log=str(log_path.relative_to(out))
    )
    if timed_out:
        kept = sum(1 for r in result.get("rows", []) if not r.get("error") and not r.get("skipped"))
        result.update(
            status="timeout",
            error=f"ran past its budget of {budget:.0f} s and was stopped; the {kept} row(s) it measured are kept",
        )
    elif code != 0 or result.get("status") not in ("passed", "skipped", "failed"):
        result["status"] = "failed"
        text = log_path.read_text(errors="replace") if log_path.is_file() else ""
        died = f"the check's process ended with status {code}" + (" (killed by a signal)" if code and code < 0 else "")
        result["error"] = result.get("error") or last_line(text) or died
    return result


def run_checks(
    settings: Settings, only: list[str] | None = None, say: Callable[[str], None] = print, spawn: bool = False
) -> dict:
    """Run the checks (``only``: a subset, in the usual order) and write ``gpu_check.json`` and
    ``benchmarks_rows.md`` into ``settings.out`` after each one; returns the report. ``spawn``:
    a fresh Python per check instead of a fork (taken on by itself when a fork cannot use CUDA)."""
    import importlib

    out = Path(settings.out)
    for sub in ("work", "logs"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    settings.save(out / "work" / "spec.json")  # for torchrun's process, which is not forked
    for module in _PRELOAD:
        importlib.import_module(module)
    started = time.perf_counter()
    report: dict = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": [sys.executable, *sys.argv],
        "settings": asdict(settings),
        "checks": {},
        "passed": [],
        "failed": [],
        "skipped": [],
        "processes": "spawned" if spawn else "forked",
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
    }
    for name in (n for n in CHECKS if only is None or n in only):
        remaining = settings.total_budget - (time.perf_counter() - started)
        budget = min(settings.budgets.get(name, 60.0), remaining)
        if budget < settings.min_budget:
            result = {
                "status": "skipped",
                "rows": [],
                "seconds": 0.0,
                "budget_s": round(max(budget, 0.0), 1),
                "reason": f"not started: too little left of the {settings.total_budget:.0f} s total budget (--budget)",
            }
        else:
            say(f"[{time.perf_counter() - started:6.1f} s] {name}: running (budget {budget:.0f} s)")
            result = _run_worker(name, settings, budget, spawn)
            if not spawn and result["status"] == "failed" and any(t in result.get("error", "") for t in _FORK_FAILURES):
                say(f"{name}: a forked process cannot use CUDA here ({result['error']}); one fresh Python per check")
                spawn, report["processes"] = True, "spawned (a fork could not use CUDA)"
                result = _run_worker(
                    name,
                    settings,
                    max(1.0, min(budget, settings.total_budget - (time.perf_counter() - started))),
                    spawn,
                )
        report["checks"][name] = result
        _write_report(report, time.perf_counter() - started)
        say(f"[{time.perf_counter() - started:6.1f} s] {name}: {result['status']}  {headline(name, report)}")
    return report


def _write_report(report: dict, seconds: float) -> None:
    report["seconds"] = round(seconds, 1)
    report["device"] = environment(report)
    add_gains(report)
    for key, statuses in (("passed", ("passed",)), ("failed", ("failed", "timeout")), ("skipped", ("skipped",))):
        report[key] = [n for n, r in report["checks"].items() if r["status"] in statuses]
    out = Path(report["settings"]["out"])
    atomic_write_text(out / "gpu_check.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out / "benchmarks_rows.md", rows_markdown(report))
