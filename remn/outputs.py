"""Output folders: what a command wrote, and how it replaces it without losing anything.

Every command that writes results (``eval``, ``segment``, the video generator) writes into an
output folder through an :class:`OutputFolder`, with three rules:

* **Only what we wrote.** ``.remn-output.json`` in the folder (the manifest) lists the entries
  this project wrote there and the command that wrote them. Anything else in the folder is the
  user's: a run into a folder that holds anything else is refused with a message naming what
  is in the way, even with ``--overwrite``, and nothing of it is ever moved or removed.
* **Stage, then swap.** A run writes its outputs under ``.remn-staging/`` inside the folder.
  Only when it has succeeded are the earlier results moved aside (``.remn-old/``), the new ones
  renamed into place and the manifest rewritten, with SIGINT and SIGTERM held off during those
  few renames; then the earlier results are removed. A journal (``.remn-swap.json``) lets the
  next run undo a swap cut short by a crash, so the earlier results come back. An error, Ctrl-C
  or SIGTERM before the swap leaves the earlier results as they were.
* **Never over an input.** An output folder equal to, inside or containing one of the command's
  inputs (a data root, a video, a mask, a checkpoint) is refused.

A staging folder is kept when a run stops (``eval`` resumes from it); the next run of the same
command either continues it or, if it was another run, discards it (it is ours).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .errors import REMNError

__all__ = [
    "OutputError",
    "OutputFolder",
    "MANIFEST",
    "STAGING",
    "signals_held",
    "check_not_overlapping",
    "atomic_write_text",
    "atomic_write",
]

MANIFEST = ".remn-output.json"
STAGING = ".remn-staging"
OLD = ".remn-old"
JOURNAL = ".remn-swap.json"
FORMAT = "remn-output-v1"
_OWN = (MANIFEST, STAGING, OLD, JOURNAL)


class OutputError(REMNError, RuntimeError):
    """An output folder that cannot be used as asked; the message names it and the fix."""


# ------------------------------------------------------------------------- small writes


def atomic_write(path: str | os.PathLike, write, suffix: str | None = None) -> None:
    """Call ``write(temporary_path)`` and rename the result over ``path``.

    The temporary file is created with mode 0666 minus the process's umask, as ``open`` would
    create ``path`` itself (``tempfile.mkstemp`` would give 0600 whatever the umask).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    for attempt in range(100):
        temporary = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident() % 10**6}.{attempt}{suffix}"
        try:
            os.close(os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 stale files of this very process and thread
        raise OutputError(
            f"{path.parent}: cannot create a temporary file for {path.name}; remove the stale "
            f".{path.name}.* files there"
        )
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda target: Path(target).write_text(text))


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back (delivered on exit) around a few renames that must not be cut
    in half. Only the main thread can do this; elsewhere it does nothing.

    The Python handlers are swapped for one that only notes the signal, and the signals noted are
    raised again, to the handlers that were in place, when the block ends. (Blocking the signals
    with ``pthread_sigmask`` would hold them in the main thread only: with any other thread
    running, a tqdm monitor for instance, the kernel hands the signal to that thread and Python
    runs the handler in the main thread anyway, in the middle of the renames.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    noted: list[int] = []

    def note(signum, frame) -> None:
        noted.append(signum)

    previous = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is not None:  # None: set outside Python, and it could not be put back
            previous[sig] = signal.signal(sig, note)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(noted):  # once each, in the order they came
            signal.raise_signal(sig)


# ------------------------------------------------------------------------- inputs


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def check_not_overlapping(
    output: str | os.PathLike, inputs: Iterable[tuple[str, str | os.PathLike | None]], option: str = "--output"
) -> None:
    """Refuse an output folder equal to, inside or containing an input.

    ``inputs``: ``(what, path)`` pairs, e.g. ``("--data-root", root)``; ``None`` paths are skipped.
    ``option``: what sets the output folder, named in the message.
    """
    out = _resolved(output)
    for what, path in inputs:
        if path is None or str(path) == "":
            continue
        given = _resolved(path)
        if out == given:
            raise OutputError(f"{output}: the output folder is the {what} ({path}); choose another {option}")
        if given in out.parents:
            raise OutputError(
                f"{output}: the output folder is inside the {what} ({path}); choose {option} outside your input data"
            )
        if out in given.parents:
            raise OutputError(
                f"{output}: the output folder contains the {what} ({path}); choose {option} that holds no input"
            )


# ------------------------------------------------------------------------- the folder


def _describe(names: Sequence[str], root: Path) -> str:
    shown = [f"{n}/" if (root / n).is_dir() else n for n in sorted(names)[:6]]
    more = f" and {len(names) - 6} more" if len(names) > 6 else ""
    return ", ".join(shown) + more


@dataclass
class OutputFolder:
    """An output folder claimed by one command (see the module docstring).

    Use :meth:`claim`, write into :attr:`staging`, then :meth:`commit`; :meth:`discard` drops the
    staging folder (the earlier results stay either way until a commit).
    """

    root: Path
    command: str
    manifest: dict | None
    """The manifest of earlier results (``None``: the folder held none)."""

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    @property
    def has_results(self) -> bool:
        return bool(self.manifest and self.manifest.get("entries"))

    @classmethod
    def claim(
        cls,
        root: str | os.PathLike,
        command: str,
        *,
        overwrite: bool = False,
        inputs: Iterable[tuple[str, str | os.PathLike | None]] = (),
        option: str = "--output",
        allow_existing: bool = False,
    ) -> "OutputFolder":
        """Check that ``root`` may receive this command's outputs; nothing is written yet.

        Refused (:class:`OutputError`): a file in the way, a folder holding anything this project did
        not write, a manifest of another command, earlier results without ``overwrite`` (unless
        ``allow_existing``: the caller decides, e.g. ``eval`` resuming its own run), an output
        overlapping an input.
        """
        root = Path(root)
        check_not_overlapping(root, inputs, option)
        if root.exists() and not root.is_dir():
            raise OutputError(f"{root}: exists and is not a folder; choose a folder for {option}")
        folder = cls(root, command, None)
        if not root.is_dir():
            return folder
        folder._recover()
        folder.manifest = _read_manifest(root, option)
        listed = set(folder.manifest["entries"]) if folder.manifest else set()
        foreign = [p.name for p in root.iterdir() if p.name not in _OWN and p.name not in listed]
        if foreign:
            raise OutputError(
                f"{root}: holds files this program did not write ({_describe(foreign, root)}); they "
                f"are left alone. Choose a new or empty folder for {option}"
            )
        if folder.manifest and folder.manifest.get("command") != command:
            raise OutputError(
                f"{root}: holds the results of `{folder.manifest.get('command')}`, not of `{command}`; "
                f"choose another {option}"
            )
        if folder.has_results and not overwrite and not allow_existing:
            raise OutputError(
                f"{root}: already holds results of another run of `{command}` (written "
                f"{folder.manifest.get('written', 'on an unknown date')}); pass --overwrite to replace "
                f"them once this run has succeeded, or choose another {option}"
            )
        return folder

    def stage(self, keep: bool = False) -> Path:
        """Create (``keep``: or reuse) the staging folder and return it."""
        staging = self.staging
        if staging.exists() and not keep:
            shutil.rmtree(staging)
        staging.mkdir(parents=True, exist_ok=True)
        return staging

    def discard(self) -> None:
        """Remove the staging folder; earlier results are untouched."""
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self._remove_if_empty()

    def commit(self, info: dict | None = None) -> list[str]:
        """Swap the staged entries in for the earlier results; returns the entries now in place."""
        root, staging = self.root, self.staging
        new = sorted(p.name for p in staging.iterdir())
        old = [n for n in (self.manifest or {}).get("entries", []) if (root / n).exists() or (root / n).is_symlink()]
        old_dir = root / OLD
        swap = f"{os.getpid()}-{time.time_ns()}"
        manifest = {
            "format": FORMAT,
            "command": self.command,
            "entries": new,
            "written": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "swap": swap,
            **(info or {}),
        }
        with signals_held():
            if old_dir.exists():
                shutil.rmtree(old_dir)
            atomic_write_text(root / JOURNAL, json.dumps({"swap": swap, "old": old, "new": new}))
            old_dir.mkdir()
            for name in old:
                os.replace(root / name, old_dir / name)
            for name in new:
                os.replace(staging / name, root / name)
            atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=1) + "\n")
            (root / JOURNAL).unlink()
        shutil.rmtree(old_dir, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        self.manifest = manifest
        return new

    # ------------------------------------------------------------------ internals
    def _recover(self) -> None:
        """Finish or undo a swap that a crash cut short (its journal is still there). If the new
        manifest was written the swap is complete; otherwise the earlier results go back in place
        and the new ones back to the staging folder."""
        root = self.root
        journal = root / JOURNAL
        if journal.is_file():
            try:
                record = json.loads(journal.read_text())
                swap, old, new = str(record["swap"]), list(record["old"]), list(record["new"])
            except (ValueError, KeyError, TypeError) as exc:
                raise OutputError(
                    f"{journal}: unreadable record of an interrupted swap ({exc}); move the contents "
                    f"of {OLD}/ back by hand if they are missing, then delete it"
                ) from None
            try:
                done = (_read_manifest(root) or {}).get("swap") == swap
            except OutputError:
                done = False
            if not done:
                (root / STAGING).mkdir(exist_ok=True)
                for name in new:
                    here = root / name
                    if not (here.exists() or here.is_symlink()) or (name in old and not (root / OLD / name).exists()):
                        continue  # not moved yet, or still the earlier result
                    os.replace(here, root / STAGING / name)
                for name in old:
                    if (root / OLD / name).exists():
                        os.replace(root / OLD / name, root / name)
            journal.unlink()
        if (root / OLD).exists():
            shutil.rmtree(root / OLD)

    def _remove_if_empty(self) -> None:
        with contextlib.suppress(OSError):
            if self.root.is_dir() and not any(self.root.iterdir()):
                self.root.rmdir()


def _read_manifest(root: Path, option: str = "--output") -> dict | None:
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except ValueError as exc:
        raise OutputError(
            f"{path}: unreadable ({exc}); this folder's contents cannot be told apart from yours, so "
            f"nothing is replaced. Choose another {option}"
        ) from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("entries"), list)
        or not all(isinstance(e, str) for e in manifest["entries"])
    ):
        raise OutputError(
            f"{path}: not a manifest this version writes (expected format {FORMAT!r}); choose another {option}"
        )
    bad = [e for e in manifest["entries"] if not e or "/" in e or e in (".", "..") or e in _OWN]
    if bad:
        raise OutputError(f"{path}: lists entries that are not plain names ({bad[:3]}); choose another {option}")
    return manifest
