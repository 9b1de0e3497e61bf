"""Run a plan: each step a subprocess of the same Python, skipped when its output is complete.

A step writes under ``DIR/<step>/``: its command's outputs (``out/``), ``log.txt`` (the command's
stdout and stderr), ``started.json`` when it starts and ``done.json`` last, once the command has
succeeded and its outputs exist. A step with a ``done.json`` of the same identity (its command
without the launcher, ``DIR`` written ``{out}``) is skipped; one of another identity is refused
(or, for the tables, redone); a stopped step runs again, and its command continues: ``remn eval``
resumes its staging folder, ``remn train`` gets ``--resume``. So a stopped run continues with the
same command line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from remn.cli.common import Terminated
from remn.errors import REMNError
from remn.outputs import OutputError, atomic_write_text, check_not_overlapping

from .plan import REPO, Plan, Step

__all__ = ["MARKER", "STARTED", "LOG", "PLAN_FILE", "RunSummary", "step_status", "describe", "run_plan", "claim_out"]

MARKER = "done.json"
STARTED = "started.json"
LOG = "log.txt"
PLAN_FILE = "plan.json"
_OURS = re.compile(
    r"^((data|prep|train|eval|score)-[A-Za-z0-9._-]+|tables|plan\.json|tables\.md|results\.json"
    r"|\.(plan|tables|results)\.(json|md)\..*)$"
)
_WAIT_BEFORE_FORWARDING = 60.0  # seconds the steps get to stop on the Ctrl-C they saw before it is passed on


@dataclass
class RunSummary:
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _read(path: Path) -> Optional[dict]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _fingerprint(step: Step, out: Path) -> str:
    digest = hashlib.sha256(json.dumps(step.identity).encode())
    for path in step.fingerprint_files:
        digest.update(path.read_bytes() if path.is_file() else b"(missing)")
    if step.redo_when_changed:  # derived from the steps before it: redone when one of them was
        for name in step.after:
            marker = _read(out / name / MARKER) or {}
            digest.update(json.dumps([name, marker.get("fingerprint"), marker.get("finished")]).encode())
    return digest.hexdigest()


def step_status(step: Step, out: Path) -> str:
    """``done``, ``changed`` (done or started with another identity), ``resume`` (stopped) or ``new``."""
    folder = out / step.name
    fingerprint = _fingerprint(step, out)
    marker = _read(folder / MARKER)
    if marker is not None:
        if marker.get("fingerprint") != fingerprint:
            return "changed"
        return "done" if all(p.exists() for p in step.outputs) else "resume"
    started = _read(folder / STARTED)
    if started is not None and started.get("fingerprint") != fingerprint:
        return "changed"
    return "resume" if folder.exists() else "new"


def _command(step: Step) -> list[str]:
    if step.resume_command is not None and step.resume_if is not None and step.resume_if.is_file():
        return step.resume_command
    return step.command


def describe(plan: Plan) -> list[str]:
    """The plan as the dry run prints it: a comment line per step, then its command."""
    out = plan.options.out
    scale = plan.options.scale
    lines = [
        f"# remn reproduce: scale {scale.name} ({scale.description}); {len(plan.steps)} steps into {out}",
        f"# seeds {', '.join(str(s) for s in scale.seeds)}; each step writes under {out}/<step>/ and is "
        f"skipped once {MARKER} is there",
    ]
    for number, step in enumerate(plan.steps, 1):
        status = step_status(step, out) if out.is_dir() else "new"
        note = {
            "done": " [done: skipped]",
            "resume": " [stopped: continues]",
            "changed": " [made by another command]",
            "new": "",
        }[status]
        lines.append(f"# [{number}/{len(plan.steps)}] {step.name}: {step.describe}{note}")
        lines.append(shlex.join(_command(step)))
    return lines


def claim_out(plan: Plan, inputs: list[tuple[str, Optional[Path]]]) -> None:
    """Refuse an output folder that holds files this command did not write, or overlaps an input."""
    out = plan.options.out
    check_not_overlapping(out, inputs, option="--out")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder; choose a folder for --out")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if not _OURS.match(p.name))
        if foreign:
            raise OutputError(
                f"{out}: holds files `remn reproduce` did not write ({', '.join(foreign[:5])}); they are "
                "left alone. Choose a new or empty folder for --out"
            )


def _missing_inputs(steps: list[Step]) -> list[str]:
    missing: dict[str, Path] = {}
    for step in steps:
        for option, path in step.needs:
            if not path.exists():
                missing.setdefault(option, path)
    return [f"{option} {path}" for option, path in missing.items()]


def _refusal(step: Step, out: Path) -> OutputError:
    record = _read(out / step.name / MARKER) or _read(out / step.name / STARTED) or {}
    then = record.get("identity")
    said = f" (it ran: {shlex.join(then)})" if isinstance(then, list) else ""
    return OutputError(
        f"{out / step.name}: made by another command than this plan's{said}; give the options of that "
        f"run again, choose another --out, or remove {out / step.name} to redo the step"
    )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])  # this remn/, always
    env["PYTHONUNBUFFERED"] = "1"
    return env


class _Running:
    def __init__(self, step: Step, out: Path, fingerprint: str, env: dict[str, str]) -> None:
        self.step = step
        self.folder = out / step.name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        atomic_write_text(
            self.folder / STARTED,
            json.dumps(
                {
                    "step": step.name,
                    "fingerprint": fingerprint,
                    "identity": step.identity,
                    "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                },
                indent=1,
            )
            + "\n",
        )
        self.command = _command(step)
        self.log = open(self.folder / LOG, "a")
        self.log.write(f"\n$ {shlex.join(self.command)}\n")
        self.log.flush()
        self.began = time.perf_counter()
        self.process = subprocess.Popen(
            self.command, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )

    def finish(self) -> float:
        self.log.close()
        return time.perf_counter() - self.began


def run_plan(plan: Plan, jobs: int = 1, echo: Callable[[str], None] = print) -> RunSummary:
    """Run every step that is not done, at most ``jobs`` at a time, in the plan's order as far as
    their dependencies allow; raises :class:`~remn.errors.REMNError` naming the step that failed and
    its log."""
    out = plan.options.out
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / PLAN_FILE, json.dumps(plan.to_json(), indent=1) + "\n")
    summary = RunSummary()
    began = time.perf_counter()
    statuses = {step.name: step_status(step, out) for step in plan.steps}
    for step in plan.steps:  # a step is done only when what it reads is done too
        if statuses[step.name] == "done" and any(statuses[d] != "done" for d in step.after) and step.redo_when_changed:
            statuses[step.name] = "resume"
    changed = [s for s in plan.steps if statuses[s.name] == "changed" and not s.redo_when_changed]
    if changed:
        raise _refusal(changed[0], out)
    pending = [s for s in plan.steps if statuses[s.name] != "done"]
    summary.skipped = [s.name for s in plan.steps if statuses[s.name] == "done"]
    missing = _missing_inputs(pending)
    if missing:
        raise REMNError(
            f"inputs not found: {'; '.join(missing)}; lay the datasets out as docs/data.md says and name "
            "them with these options (docs/reproduce.md)"
        )
    done = set(summary.skipped)
    if summary.skipped:
        echo(f"{len(summary.skipped)} of {len(plan.steps)} steps already complete: skipped")
    running: dict[str, _Running] = {}
    failed: Optional[tuple[_Running, int, list[str]]] = None
    env = _environment()
    total = len(plan.steps)
    try:
        while pending or running:
            if failed is None:
                for step in list(pending):
                    if len(running) >= max(1, jobs):
                        break
                    if all(name in done for name in step.after):
                        pending.remove(step)
                        resumed = " (continuing)" if statuses[step.name] in ("resume", "changed") else ""
                        echo(f"[{plan.steps.index(step) + 1}/{total}] {step.name}: {step.describe}{resumed}")
                        running[step.name] = _Running(step, out, _fingerprint(step, out), env)
            if not running:
                if pending and failed is None:
                    raise REMNError(f"steps wait for steps that are not in the plan: {[s.name for s in pending]}")
                break
            time.sleep(0.05)
            for name, job in list(running.items()):
                code = job.process.poll()
                if code is None:
                    continue
                seconds = job.finish()
                del running[name]
                absent = [str(p) for p in job.step.outputs if not p.exists()]
                if code == 0 and not absent:
                    atomic_write_text(
                        job.folder / MARKER,
                        json.dumps(
                            {
                                "step": name,
                                "kind": job.step.kind,
                                "fingerprint": job.fingerprint,
                                "identity": job.step.identity,
                                "command": shlex.join(job.command),
                                "seconds": seconds,
                                "finished": time.strftime("%Y-%m-%d %H:%M:%S %z"),
                            },
                            indent=1,
                        )
                        + "\n",
                    )
                    done.add(name)
                    summary.ran.append(name)
                    echo(f"  {name}: done in {seconds:.1f} s")
                elif failed is None:
                    failed = (job, code, absent)
    except BaseException as stop:
        _stop(running, terminate=isinstance(stop, Terminated))
        raise
    summary.seconds = time.perf_counter() - began
    if failed is not None:
        job, code, absent = failed
        tail = _tail(job.folder / LOG)
        if tail:
            echo(f"--- last lines of {job.folder / LOG}:\n{tail}\n---")
        status = (
            {130: "interrupted by SIGINT", 143: "interrupted by SIGTERM"}.get(code, f"exit status {code}")
            if code > 0
            else f"signal {-code}"
            if code < 0
            else f"it wrote no {', '.join(absent)}"
        )
        raise REMNError(
            f"step {job.step.name} failed ({status}); its log: {job.folder / LOG}; the steps finished "
            "so far are kept: give the same command again to continue after fixing the cause"
        )
    return summary


def _stop(running: dict[str, _Running], terminate: bool) -> None:
    """Let the running steps stop as their commands do on a signal (training saves a checkpoint)."""
    if terminate:
        for job in running.values():
            job.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + _WAIT_BEFORE_FORWARDING
    forwarded = terminate
    while running:
        for name, job in list(running.items()):
            try:
                job.process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                continue
            job.finish()
            del running[name]
        if running and not forwarded and time.monotonic() > deadline:  # they did not see the Ctrl-C
            for job in running.values():
                job.process.send_signal(signal.SIGINT)
            forwarded = True
