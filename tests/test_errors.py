"""docs/errors.md against the code, and every command's answer to bad input: one `error:` line
naming the file or setting, the documented exit status, no traceback."""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import remn
from remn.errors import EXIT_FAILED, EXIT_NON_FINITE, EXIT_OK, EXIT_SIGINT, EXIT_SIGTERM, EXIT_USAGE, REMNError

from conftest import REPO

DOC = (REPO / "docs" / "errors.md").read_text()
SOURCES = sorted((REPO / "remn").rglob("*.py"))


# ------------------------------------------------------------------ the documentation


def _string_constants() -> dict[str, str]:
    """Module-level ``NAME = "text"`` assignments of every module of remn/."""
    found: dict[str, str] = {}
    for path in SOURCES:
        for node in ast.parse(path.read_text()).body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = node.value.value
    return found


def _data_error_codes() -> dict[str, list[str]]:
    """Every code passed to ``DataError(...)`` in remn/ (a literal or a constant's name), with where."""
    constants = _string_constants()
    codes: dict[str, list[str]] = {}
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name != "DataError":
                continue
            argument = node.args[0] if node.args else next((k.value for k in node.keywords if k.arg == "code"), None)
            where = f"{path.relative_to(REPO)}:{node.lineno}"
            if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                code = argument.value
            elif isinstance(argument, (ast.Name, ast.Attribute)):
                key = argument.id if isinstance(argument, ast.Name) else argument.attr
                assert key in constants, f"{where}: DataError code {key} is not a string constant of remn/"
                code = constants[key]
            else:
                pytest.fail(f"{where}: DataError's code is neither a literal nor a constant: {ast.unparse(node)}")
            codes.setdefault(code, []).append(where)
    return codes


@pytest.mark.slow
def test_every_data_error_code_is_in_the_docs():
    codes = _data_error_codes()
    # the collector sees codes of every module, given as constants and as literals
    assert {
        "bad-layout",
        "truncated-video",
        "missing-sequence",
        "mask-beyond-video",
        "too-few-frames",
        "size-mismatch",
        "unreadable-image",
        "no-frames",
    } <= set(codes)
    missing = {code: where for code, where in codes.items() if f"`{code}`" not in DOC}
    assert not missing, f"codes used but not in docs/errors.md: {missing}"


def _all_subclasses(cls: type) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _all_subclasses(sub)
    return out


def test_every_error_class_is_in_the_docs():
    for module in pkgutil.walk_packages(remn.__path__, "remn."):
        importlib.import_module(module.name)
    classes = {cls for cls in _all_subclasses(REMNError) if cls.__module__.startswith("remn")}
    names = {cls.__name__ for cls in classes}
    assert {
        "UsageError",
        "ConfigError",
        "DeviceError",
        "CheckpointError",
        "OutputError",
        "TrainingError",
        "NonFiniteLossError",
        "LaunchError",
        "BatchSplitError",
    } <= names
    missing = sorted(name for name in names | {"DataError"} if f"`{name}`" not in DOC)
    assert not missing, f"error classes not named in docs/errors.md: {missing}"
    for cls in classes:  # each has one of the documented statuses
        assert cls.exit_status in (EXIT_FAILED, EXIT_USAGE, EXIT_NON_FINITE), cls


def test_the_exit_status_table_lists_every_status():
    table = re.search(r"## Exit statuses\n(.*?)\n## ", DOC, re.S).group(1)
    rows = {int(m) for m in re.findall(r"^\|\s*(\d+)\s*\|", table, re.M)}
    assert rows == {EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NON_FINITE, EXIT_SIGINT, EXIT_SIGTERM}
    assert (EXIT_SIGINT, EXIT_SIGTERM) == (128 + signal.SIGINT, 128 + signal.SIGTERM)


# ------------------------------------------------------------------ one line, whatever the library says


def test_configuration_errors_are_one_line_naming_the_setting():
    from remn.config import ConfigError, load_config

    for override, named in (
        ("memory.topk=10", "memory.topk"),
        ("memory.rrm=maybe", "memory.rrm"),
        ("train.stages=[static", "train.stages=[static"),
        ("inference.size=0", "inference.size"),
    ):
        with pytest.raises(ConfigError) as caught:
            load_config("stcn", [override])
        text = str(caught.value)
        assert "\n" not in text and named in text, text
    with pytest.raises(ConfigError, match="docs/config.md"):  # the fix: where the settings are listed
        load_config(None, ["memory.topk=10"])


def test_a_multi_line_message_prints_as_one_line(capsys):
    from remn.cli import run_command

    def body() -> int:
        raise REMNError("first part\n   second part")

    assert run_command(body) == EXIT_FAILED
    assert capsys.readouterr().err == "error: first part second part\n"


def test_a_data_error_in_a_loader_worker_keeps_its_one_line():
    from torch.utils.data import DataLoader, Dataset

    from remn.data.masks import SIZE_MISMATCH, DataError
    from remn.training.batches import DataLoadError, WorkerErrors

    class Broken(Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, index):
            raise DataError(SIZE_MISMATCH, "mask is 3x3 but its frame is 4x4", "/data/m.png", "00001")

    with pytest.raises(DataLoadError) as caught:
        next(iter(DataLoader(WorkerErrors(Broken()), num_workers=1)))
    assert str(caught.value) == "/data/m.png: frame 00001: mask is 3x3 but its frame is 4x4 [size-mismatch]"


def test_signals_are_held_even_with_another_thread_running():
    from remn.outputs import signals_held

    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)  # e.g. tqdm's monitor thread
    other.start()
    got: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        with signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # time for the handler to run, were it not held
                pass
            assert got == []
        assert got == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)
        stop.set()
        other.join()


# ------------------------------------------------------------------ the commands


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    """Tiny generated datasets (generic and DAVIS layouts), a folder holding a user's file, a missing path."""
    from remn.data.synthetic import layout_spec, write_dataset

    root = tmp_path_factory.mktemp("errors")
    for layout in ("generic", "davis"):
        spec = layout_spec(layout, frames=3, height=32, width=32, objects=(1, 1), distractors=(0, 0))
        write_dataset(root / layout, layout=layout, videos=2, spec=spec, workers=1, progress=False)
    mine = root / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's own file\n")
    runs = root / "runs"
    (runs / "mine").mkdir(parents=True)
    (runs / "mine" / "notes.txt").write_text("the user's own file\n")
    return {
        "root": root,
        "generic": root / "generic",
        "davis": root / "davis",
        "mine": mine,
        "runs": runs,
        "missing": root / "does-not-exist",
        "video": root / "generic" / "JPEGImages" / "syn0000",
        "mask": root / "generic" / "Annotations" / "syn0000" / "frame_1.png",
    }


TRAIN = [
    "train.num_workers=0",
    "train.main.iterations=1",
    "train.main.batch_size=1",
    "train.main.milestones=[1]",
    "data.crop_size=32",
    "runtime.device=cpu",
    "--no-progress",
]

CASES = {
    # name: (command line with {placeholders} of the data fixture, exit status, text the error line names)
    "segment: missing input": (
        ["-m", "remn", "segment", "{missing}", "--mask", "{mask}", "--output", "{root}/o1"],
        1,
        "{missing}",
    ),
    "segment: output folder holding a user's file": (
        ["-m", "remn", "segment", "{video}", "--mask", "{mask}", "--output", "{mine}"],
        1,
        "{mine}: holds files",
    ),
    "segment: bad override": (
        ["-m", "remn", "segment", "{video}", "--mask", "{mask}", "--output", "{root}/o2", "memory.topk=3"],
        2,
        "memory.topk",
    ),
    "segment: missing checkpoint": (
        [
            "-m",
            "remn",
            "segment",
            "{video}",
            "--mask",
            "{mask}",
            "--output",
            "{root}/o3",
            "--checkpoint",
            "{missing}.pth",
        ],
        1,
        "{missing}.pth",
    ),
    "eval: missing data root": (
        ["eval.py", "--benchmark", "generic", "--data-root", "{missing}", "--output", "{root}/o4"],
        1,
        "{missing}: dataset root not found",
    ),
    "eval: unknown benchmark": (
        ["eval.py", "--benchmark", "davis2099", "--data-root", "{generic}", "--output", "{root}/o5"],
        2,
        "davis2099",
    ),
    "eval: bad override": (
        ["eval.py", "--benchmark", "generic", "--data-root", "{generic}", "--output", "{root}/o6", "memory.topk=3"],
        2,
        "memory.topk",
    ),
    "eval: missing checkpoint": (
        [
            "eval.py",
            "--benchmark",
            "generic",
            "--data-root",
            "{generic}",
            "--output",
            "{root}/o7",
            "--checkpoint",
            "{missing}.pth",
        ],
        1,
        "{missing}.pth",
    ),
    "eval: output folder holding a user's file": (
        ["eval.py", "--benchmark", "generic", "--data-root", "{generic}", "--output", "{mine}", "--quiet"],
        1,
        "{mine}: holds files",
    ),
    "train: bad override": (["train.py", *TRAIN, "train.run_dir={runs}", "memory.topk=3"], 2, "memory.topk"),
    "train: missing data roots": (
        ["train.py", *TRAIN, "train.run_dir={runs}", "data.davis_root={missing}", "data.youtube_root={missing}"],
        1,
        "data.davis_root ({missing})",
    ),
    "train: missing initial weights": (
        [
            "train.py",
            *TRAIN,
            "train.run_dir={runs}",
            "data.davis_root={davis}",
            "data.youtube_root={missing}",
            "--run-name",
            "w",
            "--load-weights",
            "{missing}.pth",
        ],
        1,
        "{missing}.pth",
    ),
    "train: run folder holding a user's file": (
        [
            "train.py",
            *TRAIN,
            "train.run_dir={runs}",
            "data.davis_root={davis}",
            "data.youtube_root={missing}",
            "--run-name",
            "mine",
        ],
        1,
        "{runs}/mine: holds files",
    ),
    "score: missing ground truth": (
        ["-m", "remn", "score", "--gt", "{missing}", "--pred", "{generic}/GroundTruth", "--quiet"],
        1,
        "{missing}: ground-truth folder",
    ),
    "score: missing sequence list": (
        [
            "-m",
            "remn",
            "score",
            "--gt",
            "{generic}/GroundTruth",
            "--pred",
            "{generic}/GroundTruth",
            "--sequences",
            "{missing}.txt",
            "--quiet",
        ],
        2,
        "{missing}.txt",
    ),
    "generate: output folder holding a user's file": (
        ["-m", "remn", "generate", "{mine}", "--videos", "1", "--frames", "2", "--size", "32", "32", "--quiet"],
        1,
        "{mine}: holds files",
    ),
    "generate: bad option value": (
        ["-m", "remn", "generate", "{root}/o8", "--videos", "1", "--frames", "0", "--quiet"],
        2,
        "--frames",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_one_error_line_and_the_documented_status(case, data):
    words, status, named = CASES[case]
    fill = {key: str(value) for key, value in data.items()}
    command = [sys.executable, *(word.format(**fill) for word in words)]
    if command[1].endswith(".py"):
        command[1] = str(REPO / command[1])
    before = sorted(p.name for p in data["root"].iterdir())
    result = subprocess.run(
        command,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert named.format(**fill) in errors[0], errors[0]
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert f"| {status} |" in DOC  # a documented status
    # nothing was written: no output folder, the user's files as they were, no run folder for weights refused
    assert sorted(p.name for p in data["root"].iterdir()) == before
    assert sorted(p.name for p in data["mine"].iterdir()) == ["notes.txt"]
    assert not (data["runs"] / "w").exists()
