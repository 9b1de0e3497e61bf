"""Stopping training with Ctrl-C (SIGINT) or SIGTERM: ``train.py`` finishes the step, saves
``latest.pt``, prints the command that continues, exits 130 / 143 without a traceback; a
second signal stops at once and keeps the previous checkpoint; loader workers ignore the
signals; several processes agree on the step to stop at; the handlers are given back.

The end-to-end tests run ``python train.py`` as a child on a tiny generated video set
(``remn.data.synthetic``: 3 videos, the demo configuration at 32x32, batch 1, the encoders
frozen) and signal its process group, as a terminal's Ctrl-C, torchrun or a scheduler do.
They wait for the line ``max_skip 5 from epoch 1`` in ``train.log``, written right after
step 4 (the first step of epoch 1), so the signal arrives after the periodic checkpoint of
step 3 (``train.save_every=3``) and the run stops at step 4 or 5.
"""

from __future__ import annotations

import datetime
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st
from test_training import CONFIG, FakeSource, MovingSquares

from remn.config import load_config
from remn.training.batches import BatchStream
from remn.training.checkpoint import load_training_checkpoint
from remn.training.distributed import DistributedContext, init_distributed, max_over_processes, shutdown_distributed
from remn.training.signals import StopSignals, TrainingInterrupted, resume_command
from remn.training.trainer import Trainer

from conftest import REPO

ITERATIONS = 6
SAVE_EVERY = 3
AFTER_STEP_4 = "synthetic: max_skip 5 from epoch 1"
INTERRUPTED_LINE = re.compile(
    r"^interrupted \((SIG\w+)\) at stage 'synthetic' iteration (\d+): checkpoint saved to "
    r"(\S+); continue with: (.+)$",
    re.M,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    from remn.data.synthetic import layout_spec, write_dataset

    root = tmp_path_factory.mktemp("signals") / "videos"
    write_dataset(
        root,
        layout="davis",
        videos=3,
        seed=0,
        val_fraction=0.0,
        workers=1,
        progress=False,
        spec=layout_spec("davis", frames=6, height=48, width=48),
    )
    return root


def _command(videos: Path, run_dir: Path, name: str, workers: int) -> list[str]:
    return [
        sys.executable,
        "train.py",
        "--config",
        "configs/demo.yaml",
        "--run-name",
        name,
        "--no-progress",
        f"data.synthetic_root={videos}",
        f"train.run_dir={run_dir}",
        "data.crop_size=32",
        "runtime.device=cpu",
        "train.synthetic.batch_size=1",
        f"train.synthetic.iterations={ITERATIONS}",
        "train.synthetic.freeze_encoders=true",
        f"train.num_workers={workers}",
        f"train.save_every={SAVE_EVERY}",
        "data.max_skip_start=3",
        "data.skip_values=[5,5,5,5,5]",
    ]  # max_skip changes at epoch 1 (step 4)


def _environment() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _interrupt(command: list[str], log: Path, signals: list[int]) -> subprocess.CompletedProcess:
    """Start ``command`` in its own process group, wait until step 4 is done (``train.log``),
    then send ``signals`` to the whole group (0.1 s apart)."""
    child = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (log.is_file() and AFTER_STEP_4 in log.read_text()):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "step 4 not done after 60 s"
            time.sleep(0.02)
        for number, sig in enumerate(signals):
            if number:
                time.sleep(0.1)
            os.killpg(child.pid, sig)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    return subprocess.CompletedProcess(command, child.returncode, out, err)


def _quiet(err: str) -> None:
    for noise in ("Traceback", "KeyboardInterrupt", "Exception ignored", "DataLoader worker", "Error"):
        assert noise not in err, err


def _interrupt_and_resume(videos: Path, tmp_path: Path, sig: int, workers: int) -> None:
    name = f"run-{signal.Signals(sig).name}"
    latest = tmp_path / name / "checkpoints" / "latest.pt"
    stopped = _interrupt(_command(videos, tmp_path, name, workers), tmp_path / name / "train.log", [sig])
    assert stopped.returncode == 128 + sig, stopped.stdout + stopped.stderr
    _quiet(stopped.stderr)
    found = INTERRUPTED_LINE.search(stopped.stdout)
    assert found, stopped.stdout
    signal_name, iteration, saved_to, continue_with = found.groups()
    assert signal_name == signal.Signals(sig).name and Path(saved_to) == latest
    checkpoint = load_training_checkpoint(latest)
    # the step that was running finished and was saved: after the last periodic checkpoint (3)
    assert checkpoint["iteration"] == int(iteration) and int(iteration) in (4, 5) and not checkpoint["completed"]
    assert found.group(0) in (tmp_path / name / "train.log").read_text()
    words = shlex.split(continue_with)
    assert words[-1] == "--resume" and words[1:-1] == _command(videos, tmp_path, name, workers)[1:]

    resumed = subprocess.run(words, cwd=REPO, capture_output=True, text=True, env=_environment(), timeout=120)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming {tmp_path / name}: stage 'synthetic', iteration {iteration}" in resumed.stdout
    assert (tmp_path / name / "checkpoints" / "synthetic_final.pth").is_file()
    done = load_training_checkpoint(latest)
    assert done["completed"] and done["iteration"] == ITERATIONS
    # nothing on stderr that an uninterrupted launch does not print as well
    assert set(stopped.stderr.splitlines()) <= set(resumed.stderr.splitlines()), stopped.stderr


@pytest.mark.slow
def test_ctrl_c_saves_the_step_reached_and_the_printed_command_finishes_the_stage(videos, tmp_path):
    _interrupt_and_resume(videos, tmp_path, signal.SIGINT, workers=0)


@pytest.mark.slow
def test_sigterm_to_the_process_group_with_loader_workers_exits_143_and_resumes(videos, tmp_path):
    _interrupt_and_resume(videos, tmp_path, signal.SIGTERM, workers=1)


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once_and_keeps_the_previous_checkpoint(videos, tmp_path):
    latest = tmp_path / "twice" / "checkpoints" / "latest.pt"
    stopped = _interrupt(
        _command(videos, tmp_path, "twice", workers=1), tmp_path / "twice" / "train.log", [signal.SIGINT, signal.SIGINT]
    )
    assert stopped.returncode == 130, stopped.stdout + stopped.stderr
    _quiet(stopped.stderr)
    assert re.search(
        r"^interrupted again \(SIGINT\) at stage 'synthetic' iteration [45]: stopped at once; the last "
        + re.escape(f"checkpoint, {latest} (stage 'synthetic' iteration {SAVE_EVERY}), is intact; continue with: "),
        stopped.stdout,
        re.M,
    ), stopped.stdout
    assert load_training_checkpoint(latest)["iteration"] == SAVE_EVERY
    assert sorted(p.name for p in latest.parent.iterdir()) == ["latest.pt"]  # no temporary file left


# ----------------------------------------------------------------------------- in one process


def _config(tmp_path: Path, *overrides: str):
    base = [
        "runtime.device=cpu",
        "train.num_workers=0",
        "train.precision=fp32",
        f"train.run_dir={tmp_path}",
        "train.log_every=1",
        "train.image_every=1000",
        "train.save_every=1000",
        "train.weights_every=1000",
        "train.main.batch_size=1",
        "train.main.freeze_encoders=true",
        "train.static.batch_size=1",
        "train.static.freeze_encoders=true",
    ]
    return load_config(CONFIG, [*base, *overrides])


def _signal_on_step(trainer: Trainer, monkeypatch, at: int, sig: int) -> None:
    """Send ``sig`` to this process while step ``at`` (1-based) runs."""
    step = trainer.train_step

    def signalled(*args, **kwargs):
        if trainer.iteration + 1 == at:
            os.kill(os.getpid(), sig)
        return step(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_step", signalled)


@pytest.mark.slow
def test_a_second_signal_during_the_save_leaves_the_previous_checkpoint_and_the_handlers(tmp_path, monkeypatch):
    cfg = _config(tmp_path, "train.main.iterations=10", "train.save_every=2")
    trainer = Trainer(cfg, FakeSource(count=2), tmp_path / "run", progress=False, argv=["train.py", "--x"])
    _signal_on_step(trainer, monkeypatch, at=3, sig=signal.SIGINT)
    save = torch.save

    def interrupted_save(obj, handle, *args, **kwargs):
        if trainer.iteration == 3:  # the save the first signal asked for: half written, then Ctrl-C again
            handle.write(b"partial")
            os.kill(os.getpid(), signal.SIGINT)
        save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", interrupted_save)
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.run()
    assert stop.value.immediate and stop.value.exit_code == 130 and stop.value.signal_name == "SIGINT"
    latest = tmp_path / "run" / "checkpoints" / "latest.pt"
    assert str(stop.value) == (
        f"interrupted again (SIGINT) at stage 'main' iteration 3: stopped at once; the last "
        f"checkpoint, {latest} (stage 'main' iteration 2), is intact; continue with: "
        f"{resume_command(['train.py', '--x'])}"
    )
    assert load_training_checkpoint(latest)["iteration"] == 2
    assert sorted(p.name for p in latest.parent.iterdir()) == ["latest.pt"]
    assert {sig: signal.getsignal(sig) for sig in before} == before


@pytest.mark.slow
def test_signals_during_setup_and_between_stages_lose_nothing(tmp_path, monkeypatch):
    cfg = _config(tmp_path, "train.stages=[static,main]", "train.static.iterations=1", "train.main.iterations=1")
    start_stage = Trainer.start_stage
    before = signal.getsignal(signal.SIGTERM)

    def signalled_setup(self, index, state=None):
        start_stage(self, index, state)
        if index == signalled_setup.stage:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(Trainer, "start_stage", signalled_setup)
    argv = ["train.py", "--config", "c.yaml", "--load-weights", "w.pth"]
    signalled_setup.stage = 0  # nothing ran, nothing saved: the same command starts again
    with pytest.raises(TrainingInterrupted) as first:
        Trainer(cfg, FakeSource(count=1), tmp_path / "run", progress=False, argv=argv).run()
    assert first.value.exit_code == 143 and first.value.checkpoint is None
    assert str(first.value) == (
        "interrupted (SIGTERM) during the setup of stage 'static': nothing was lost (no "
        f"iteration had run); start again with: {resume_command(argv, resume=False)}"
    )
    assert not (tmp_path / "run" / "checkpoints" / "latest.pt").exists()

    signalled_setup.stage = 1  # the first stage completes; the second one's setup is interrupted
    with pytest.raises(TrainingInterrupted) as second:
        Trainer(cfg, FakeSource(count=1), tmp_path / "run", progress=False, argv=argv).run()
    latest = tmp_path / "run" / "checkpoints" / "latest.pt"
    assert str(second.value) == (
        f"interrupted (SIGTERM) during the setup of stage 'main': nothing was lost: {latest} "
        f"(stage 'static' complete) is up to date; continue with: {resume_command(argv)}"
    )
    assert "--load-weights" not in resume_command(argv) and resume_command(argv).endswith("--resume")
    assert load_training_checkpoint(latest)["completed"]

    signalled_setup.stage = None
    summary = Trainer(cfg, FakeSource(count=1), tmp_path / "run", resume=True, progress=False).run()
    assert summary.finished and summary.final_weights.name == "main_final.pth"
    assert signal.getsignal(signal.SIGTERM) == before  # given back after a normal return too


class _SignalsItself(MovingSquares):
    """Each item sends SIGINT and SIGTERM to the process that loads it."""

    def __getitem__(self, index: int) -> dict:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        return super().__getitem__(index)


class _SignallingSource(FakeSource):
    def dataset(self, stage: str, max_skip: int, clip_frames: int):
        return _SignalsItself(self.count, clip_frames, self.size)


def test_loader_workers_ignore_sigint_and_sigterm(capfd):
    ctx = DistributedContext()
    stream = BatchStream(_SignallingSource(count=3), "main", 3, 1, 4, 1, ctx, seed=0, num_workers=1)
    batches = [stream.next() for _ in range(4)]  # a worker that died of them would make the loader raise
    assert [b["rgb"].shape for b in batches] == [(1, 3, 3, 32, 32)] * 4 and stream.position.epoch == 1
    assert "Traceback" not in capfd.readouterr().err


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["--config", "c.yaml", "--run-name", "x y", "key=value", "--no-progress", "--stop-after", "5", "a'b"]
        ),
        max_size=8,
    ),
    st.sampled_from(
        [[], ["--load-weights", "w.pth"], ["--load-weights=w.pth"], ["--load", "w.pth"], ["--resume"], ["--res"]]
    ),
)
def test_the_resume_command_replaces_load_weights_by_resume(words, start):
    argv = ["train.py", *words[:3], *start, *words[3:]]
    command = shlex.split(resume_command(argv, environ={}))
    assert command[0] in ("python", sys.executable) or Path(command[0]).name.startswith("python")
    rest = command[1:]
    assert not any(w.startswith("--load") for w in rest) and "w.pth" not in rest
    assert sum(w in ("--resume", "--res") for w in rest) == 1
    assert [w for w in rest if w not in ("--resume", "--res")] == ["train.py", *words]
    assert shlex.split(resume_command(argv, resume=False, environ={}))[1:] == argv


def test_the_resume_command_under_torchrun():
    env = {"TORCHELASTIC_RUN_ID": "1", "LOCAL_WORLD_SIZE": "4", "GROUP_WORLD_SIZE": "1"}
    assert (
        resume_command(["train.py", "--config", "c.yaml"], environ=env)
        == "torchrun --nproc_per_node=4 train.py --config c.yaml --resume"
    )
    two_nodes = resume_command(["train.py"], environ={**env, "GROUP_WORLD_SIZE": "2"})
    assert two_nodes.startswith("torchrun --nnodes=2 --nproc_per_node=4 ") and two_nodes.endswith(" train.py --resume")


def test_stop_signals_count_and_give_back():
    previous = signal.getsignal(signal.SIGINT)
    with StopSignals() as stop:
        assert stop.active and stop.requested == 0
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == signal.SIGTERM
        with pytest.raises(BaseException) as again:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler raises at the next bytecode
        assert type(again.value).__name__ == "_StopAtOnce"
    assert signal.getsignal(signal.SIGINT) is previous and not stop.active


# ----------------------------------------------------------------------------- several processes


def _stop_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=2, timeout=datetime.timedelta(seconds=30)
    )
    ctx = init_distributed("cpu", rank=rank, world_size=2, local_rank=rank)
    try:
        cfg = _config(Path(out_dir), "train.main.iterations=6", "train.main.batch_size=2")
        trainer = Trainer(cfg, FakeSource(size=32, count=2), Path(out_dir) / "ddp", ctx, progress=False)
        requested = []
        step = trainer.train_step

        def step_and_signal(*args, **kwargs):  # only rank 1 is signalled, during step 2
            if rank == 1 and trainer.iteration == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            requested.append(trainer._signals.requested)
            return step(*args, **kwargs)

        trainer.train_step = step_and_signal
        try:
            trainer.run()
            outcome = None
        except TrainingInterrupted as exc:
            outcome = (exc.exit_code, trainer.iteration)
        torch.save(
            {"outcome": outcome, "requested": requested, "agreed": max_over_processes(rank * 7, ctx)},
            Path(out_dir) / f"rank{rank}.pt",
        )
    finally:
        shutdown_distributed(ctx)


@pytest.mark.slow
def test_two_processes_stop_at_the_same_step_when_one_is_signalled(tmp_path):
    mp.spawn(_stop_worker, args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert ranks[0]["requested"] == [0, 0] and ranks[1]["requested"] == [0, signal.SIGTERM]
    assert ranks[0]["outcome"] == ranks[1]["outcome"] == (143, 2)  # rank 0 stopped too, after the same step
    assert ranks[0]["agreed"] == ranks[1]["agreed"] == 7
    checkpoint = load_training_checkpoint(tmp_path / "ddp" / "checkpoints" / "latest.pt")
    assert checkpoint["iteration"] == 2 and len(checkpoint["rng"]) == 2 and checkpoint["world_size"] == 2


def _catches(pid: int, sig: int) -> bool:
    """The process has a handler for ``sig`` (Linux: the SigCgt mask of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    return False


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_a_signal_before_training_starts_exits_without_a_traceback(tmp_path):
    child = subprocess.Popen(
        _command(tmp_path / "none", tmp_path, "early", workers=0),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_environment(),
    )
    try:
        deadline = time.monotonic() + 30
        while not _catches(child.pid, signal.SIGTERM):  # train.py has taken the signal over: still importing
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()
            time.sleep(0.01)
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 143, out + err
    assert err.strip() == "interrupted (SIGTERM): outside the training loop, no training was lost"
    assert not (tmp_path / "early" / "checkpoints" / "latest.pt").exists()


def test_a_run_folder_with_foreign_files_or_inside_the_data_is_refused(tmp_path):
    from remn.config import load_config
    from remn.outputs import OutputError
    from remn.training.errors import TrainingError
    from remn.training.trainer import Trainer

    cfg = load_config("demo", [f"data.synthetic_root={tmp_path / 'data'}", f"train.run_dir={tmp_path / 'runs'}"])
    folder = tmp_path / "runs" / "demo"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(TrainingError, match=r"does not write \(notes.txt\)"):
        Trainer(cfg, data=None, run_folder=folder)
    assert (folder / "notes.txt").read_text() == "mine" and sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    with pytest.raises(OutputError, match="inside the data.synthetic_root"):
        Trainer(cfg, data=None, run_folder=tmp_path / "data" / "run")
