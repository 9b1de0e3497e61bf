"""What every command shares: ``--config`` and ``key=value`` overrides, exit statuses, and
turning expected failures into one ``error:`` line (docs/errors.md lists them all).

Exit statuses of every command:

==== ==========================================================================
0    done
1    the input data, a weight file, the output folder or the run failed (the line says which)
2    bad command line or configuration (unknown option, bad override, missing config, no GPU)
3    ``train``: the loss became non-finite (the last good checkpoint is kept)
130  interrupted by Ctrl-C (SIGINT)
143  interrupted by SIGTERM
==== ==========================================================================
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import os
import re
import signal
import sys
import threading
import warnings
from typing import Callable, Iterator

from ..config import REMNConfig, load_config
from ..errors import EXIT_FAILED, EXIT_SIGINT, EXIT_SIGTERM, EXIT_USAGE, REMNError

__all__ = [
    "add_config_arguments",
    "add_mask_repair_arguments",
    "mask_repair_from_args",
    "config_from_args",
    "parse_args",
    "split_overrides",
    "run_command",
    "Terminated",
    "UsageError",
]


class UsageError(REMNError, ValueError):
    """A command line that cannot be run as given (exit status 2)."""

    exit_status = EXIT_USAGE


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C (``finally`` blocks run,
    staged outputs are left or removed, earlier results stay)."""


def add_config_arguments(parser: argparse.ArgumentParser, default: str | None = "remn") -> None:
    """``--config FILE`` and ``key=value`` overrides (anywhere on the line: see :func:`parse_args`)."""
    shown = default or "remn"
    parser.add_argument(
        "--config",
        default=default,
        help=f"YAML file, or a name in the project's configs/ folder such as remn, stcn, "
        f"train/main, ablation/no_rrm (default {shown})",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides anywhere on the line, e.g. memory.rrm=false"
    )


_SECTIONS = tuple(f.name for f in dataclasses.fields(REMNConfig))
_OVERRIDE = re.compile(r"^(?P<key>[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)=")


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate ``key=value`` overrides (a key of the config: ``memory.rrm=false``,
    ``name=run1``) from the rest of a command line, wherever they are; ``--`` ends them."""
    rest, overrides = [], []
    for position, token in enumerate(argv):
        if token == "--":
            rest += argv[position:]
            break
        match = _OVERRIDE.match(token)
        if match and match["key"].split(".")[0] in _SECTIONS:
            overrides.append(token)
        else:
            rest.append(token)
    return rest, overrides


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse a command line whose ``key=value`` overrides may come anywhere, also before a
    positional argument; they end up in ``args.overrides``."""
    rest, overrides = split_overrides(list(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(rest)
    args.overrides = [*overrides, *getattr(args, "overrides", [])]
    return args


def add_mask_repair_arguments(parser: argparse.ArgumentParser) -> None:
    """``--mask-threshold T`` and ``--mask-snap``: read soft or lossy given masks instead of
    refusing them (:class:`remn.data.masks.MaskRepair`)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--mask-threshold",
        type=float,
        metavar="T",
        help="binarise soft or lossy masks (anti-aliased, blurred, JPEG): object 1 where the grey "
        "value (or a colour's brightness) is at least T of the brightest, 0 < T <= 1; for "
        "one-object masks",
    )
    group.add_argument(
        "--mask-snap",
        action="store_true",
        help="snap every pixel of a soft or lossy mask to its nearest main value (several objects)",
    )


def mask_repair_from_args(args: argparse.Namespace):
    """The :class:`~remn.data.masks.MaskRepair` the options ask for, or ``None``."""
    from ..data.masks import MaskRepair

    if args.mask_threshold is None and not args.mask_snap:
        return None
    try:
        return MaskRepair(threshold=args.mask_threshold) if args.mask_threshold is not None else MaskRepair(snap=True)
    except ValueError as error:
        raise UsageError(f"--mask-threshold {args.mask_threshold}: {error}") from None


def config_from_args(args: argparse.Namespace, extra: list[str] | tuple[str, ...] = ()) -> REMNConfig:
    """The config named by the parsed arguments, ``extra`` overrides first (raises ConfigError)."""
    return load_config(args.config, [*extra, *args.overrides])


def _one_line(text: str) -> str:
    """Every message is one line, whatever a library put into it."""
    return " ".join(str(text).split())


def _failure_line(error: BaseException) -> tuple[str, int]:
    """The one line and the exit status for an expected failure; ``("", -1)`` for a bug."""
    if isinstance(error, REMNError):
        return _one_line(str(error)), error.exit_status
    if isinstance(error, OSError) and error.errno is None:  # raised with a message of ours
        return _one_line(str(error)), EXIT_FAILED
    if isinstance(error, OSError):
        where = error.filename or ""
        reason = error.strerror or str(error)
        fix = {
            errno.ENOSPC: "free some space or choose another --output",
            errno.EACCES: "check the folder's permissions or choose another --output",
            errno.EROFS: "choose a writable --output",
            errno.ENOENT: "check the path",
            errno.EISDIR: "give a file here, not a folder",
            errno.ENOTDIR: "a part of this path is a file, not a folder; check the path",
        }.get(error.errno or 0, "check the path")
        return f"{where}: {reason}; {fix}" if where else f"{reason}; {fix}", EXIT_FAILED
    return "", -1


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Warnings about input data print as one ``warning:`` line (no source line, no category),
    above any progress bar."""
    from tqdm import tqdm

    from ..data.masks import DataWarning

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, DataWarning):
            tqdm.write(f"warning: {message}", file=sys.stderr if file is None else file)
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.showwarning = show
        warnings.simplefilter("always", DataWarning)
        yield


def run_command(body: Callable[[], int], interrupted: Callable[[], str] | str | None = None) -> int:
    """Run a command's body and return its exit status.

    Expected failures (bad data, weights, output folder, configuration, a full disk) print one
    ``error:`` line; Ctrl-C and SIGTERM print what was kept (``interrupted``: text or a function
    giving it) and return 130 and 143. Anything else is a bug and keeps its traceback.
    """
    try:
        with _sigterm_raises(), _warnings_as_lines():
            return body()
    except KeyboardInterrupt as stop:
        name = "SIGTERM" if isinstance(stop, Terminated) else "SIGINT"
        note = interrupted() if callable(interrupted) else interrupted
        print(f"\ninterrupted ({name})" + (f": {note}" if note else ""), file=sys.stderr)
        return EXIT_SIGTERM if isinstance(stop, Terminated) else EXIT_SIGINT
    except BrokenPipeError:  # the reader of stdout went away (``| head``): nothing left to say, nowhere to say it
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so that exiting flushes nothing
        return EXIT_FAILED
    except Exception as error:  # expected failures only; the rest is re-raised below
        line, status = _failure_line(error)
        if status < 0:
            raise
        print(f"error: {line}", file=sys.stderr)
        return status
