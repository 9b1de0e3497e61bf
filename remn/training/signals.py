"""SIGINT and SIGTERM as requests to stop a training run, and the command that continues it.

While :meth:`remn.training.trainer.Trainer.run` runs, the first signal only asks the run to stop:
the current optimiser step finishes, ``latest.pt`` is written and :class:`TrainingInterrupted` is
raised with one line saying what was saved and the command that continues the run
(:func:`resume_command`; ``train.py`` exits 130 or 143). A second signal stops at once without
saving (the handler raises ``_StopAtOnce``, which the trainer turns into
:class:`TrainingInterrupted`; ``latest.pt`` is written atomically, so the previous one is intact);
a third ends the process with ``os._exit`` in case the cleanup hangs. Loader workers ignore both
signals (:func:`ignore_stop_signals`), so only the main process decides.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["TrainingInterrupted", "StopSignals", "STOP_SIGNALS", "ignore_stop_signals", "resume_command"]


class TrainingInterrupted(BaseException):
    """SIGINT or SIGTERM stopped :meth:`Trainer.run`; ``train.py`` exits with :attr:`exit_code`.

    A ``BaseException``, as ``KeyboardInterrupt`` is, so that ``except Exception`` does not
    swallow it. The message (also in ``train.log``) says what was saved and how to continue.

    Attributes:
        signal_name: ``"SIGINT"`` or ``"SIGTERM"``.
        exit_code: 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM.
        immediate: a second signal stopped the run at once, without saving.
        checkpoint: ``latest.pt`` when the run has one (None: nothing was saved yet).
    """

    def __init__(self, message: str, signum: int, *, immediate: bool = False, checkpoint: Path | None = None) -> None:
        super().__init__(message)
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + int(signum)
        self.immediate = immediate
        self.checkpoint = checkpoint


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals :class:`StopSignals` takes over: Ctrl-C and a scheduler's (or torchrun's) stop."""


class _StopAtOnce(BaseException):
    """Raised by the handler on a second signal; :meth:`Trainer.run` turns it into TrainingInterrupted."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)


class StopSignals:
    """SIGINT and SIGTERM as requests to stop, while active (``with StopSignals() as stop:``).

    The first signal only records its number in :attr:`requested`; the training loop looks at
    it once per iteration. The second raises wherever the main thread is (to stop at once),
    the third ends the process with ``os._exit(128 + signal)`` in case the cleanup hangs. The
    previous handlers come back when the block ends. Signals reach the main thread only: in
    another thread this does nothing (:attr:`active` stays False). A forked child that
    inherited the handler (a loader worker before its init function runs) ignores the signal.
    """

    def __init__(self) -> None:
        self.requested = 0
        """Number of the first signal received (0: none)."""
        self.active = False
        self._received = 0
        self._pid = os.getpid()
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._pid = os.getpid()
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
            self.active = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
        self._previous.clear()
        self.active = False

    def _handle(self, signum: int, frame: object) -> None:
        if os.getpid() != self._pid:
            return
        self._received += 1
        if self._received == 1:
            self.requested = int(signum)
        elif self._received == 2:
            raise _StopAtOnce(signum)
        else:
            name = signal.Signals(signum).name
            os.write(
                2, f"interrupted ({name}) a third time: exiting at once; the last checkpoint on disk is kept\n".encode()
            )
            os._exit(128 + int(signum))


def ignore_stop_signals(worker_id: int) -> None:
    """Loader workers' init: ignore SIGINT and SIGTERM. Ctrl-C reaches the terminal's whole
    process group, torchrun and schedulers signal process groups; a worker that died of it
    would make the loader raise in the main process before it can save. Workers still end
    with the main process (the loader stops them; they also watch their parent)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _is_option(word: str, option: str, shortest: int) -> bool:
    """``word`` names ``option`` (argparse accepts unambiguous prefixes, and ``--opt=value``)."""
    name = word.split("=", 1)[0]
    return len(name) >= shortest and option.startswith(name)


def resume_command(argv: Sequence[str], resume: bool = True, environ: Mapping[str, str] | None = None) -> str:
    """The command that continues a run launched with ``argv`` (``sys.argv``: script, then arguments).

    ``--load-weights FILE`` is replaced by ``--resume`` (``resume=False``: the command as it
    was, to start again). The interpreter is named as on ``PATH`` when it is the one found
    there, else by its full path; under torchrun the launcher and its process counts come first.
    """
    env = os.environ if environ is None else environ
    script, args = str(argv[0]), [str(a) for a in argv[1:]]
    if resume:
        kept: list[str] = []
        has_resume = False
        i = 0
        while i < len(args):
            word = args[i]
            if word == "--":  # only positional arguments follow
                break
            if _is_option(word, "--load-weights", 3):
                i += 1 if "=" in word else 2
                continue
            has_resume = has_resume or _is_option(word, "--resume", 4)
            kept.append(word)
            i += 1
        args = kept + ([] if has_resume else ["--resume"]) + args[i:]
    if os.path.basename(script) == "remn":  # the console script: `remn train ...`, `torchrun -m remn train ...`
        if "TORCHELASTIC_RUN_ID" in env:
            script, args = "-m", ["remn", *args]
        else:
            return shlex.join(["remn", *args])
    words = shlex.join([script, *args])
    if "TORCHELASTIC_RUN_ID" in env:
        nodes = env.get("GROUP_WORLD_SIZE", "1") or "1"
        launcher = f"torchrun --nproc_per_node={env.get('LOCAL_WORLD_SIZE', '1')}"
        if nodes != "1":
            launcher = (
                f"torchrun --nnodes={nodes} --nproc_per_node={env.get('LOCAL_WORLD_SIZE', '1')} "
                "<this launch's rendezvous options>"
            )
        return f"{launcher} {words}"
    python = sys.executable or "python"
    short = os.path.basename(python)
    found = shutil.which(short)
    if found is not None and os.path.abspath(found) == os.path.abspath(python):
        python = short
    return f"{shlex.quote(python)} {words}"
