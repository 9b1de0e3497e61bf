"""remn/outputs.py: an output folder is replaced only by what this project wrote, after success."""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remn.outputs import (
    JOURNAL,
    MANIFEST,
    OLD,
    STAGING,
    OutputError,
    OutputFolder,
    atomic_write_text,
    check_not_overlapping,
    signals_held,
)


def _write_run(root: Path, text: str, overwrite: bool = False) -> OutputFolder:
    folder = OutputFolder.claim(root, "remn test", overwrite=overwrite)
    staging = folder.stage()
    (staging / "masks").mkdir()
    (staging / "masks" / "0.png").write_text(text)
    (staging / "record.json").write_text(text)
    folder.commit()
    return folder


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


def test_a_new_folder_is_created_only_on_commit(tmp_path):
    root = tmp_path / "out"
    folder = OutputFolder.claim(root, "remn test")
    assert not root.exists() and not folder.has_results
    _write_run(root, "one")
    manifest = json.loads((root / MANIFEST).read_text())
    assert manifest["entries"] == ["masks", "record.json"] and manifest["command"] == "remn test"
    assert sorted(p.name for p in root.iterdir()) == [MANIFEST, "masks", "record.json"]


def test_earlier_results_need_overwrite_and_survive_until_the_commit(tmp_path):
    root = tmp_path / "out"
    _write_run(root, "one")
    with pytest.raises(OutputError, match="already holds results of another run.*--overwrite"):
        OutputFolder.claim(root, "remn test")
    folder = OutputFolder.claim(root, "remn test", overwrite=True)
    staging = folder.stage()
    (staging / "masks").mkdir()
    (staging / "masks" / "0.png").write_text("two")
    assert (root / "masks" / "0.png").read_text() == "one"  # not replaced before the commit
    folder.discard()
    assert _tree(root) == {MANIFEST: (root / MANIFEST).read_text(), "masks/0.png": "one", "record.json": "one"}
    _write_run(root, "two", overwrite=True)
    assert (root / "masks" / "0.png").read_text() == "two" and (root / "record.json").read_text() == "two"
    assert not (root / STAGING).exists() and not (root / OLD).exists()


def test_entries_of_the_earlier_run_that_the_new_one_lacks_are_removed(tmp_path):
    root = tmp_path / "out"
    _write_run(root, "one")
    folder = OutputFolder.claim(root, "remn test", overwrite=True)
    (folder.stage() / "record.json").write_text("two")
    folder.commit()
    assert sorted(p.name for p in root.iterdir()) == [MANIFEST, "record.json"]


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_with_anything_else_is_refused_and_left_alone(tmp_path, overwrite):
    root = tmp_path / "out"
    (root / "masks").mkdir(parents=True)
    (root / "masks" / "hand-drawn.png").write_text("mine")
    (root / "notes.txt").write_text("mine too")
    with pytest.raises(OutputError, match=r"did not write \(masks/, notes.txt\)"):
        OutputFolder.claim(root, "remn test", overwrite=overwrite)
    # a file of the user's beside earlier results is refused as well
    other = tmp_path / "other"
    _write_run(other, "one")
    (other / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"\(notes.txt\)"):
        OutputFolder.claim(other, "remn test", overwrite=overwrite)
    assert (root / "masks" / "hand-drawn.png").read_text() == "mine" and (other / "notes.txt").read_text() == "mine"


def test_another_commands_results_and_bad_manifests_are_refused(tmp_path):
    root = tmp_path / "out"
    _write_run(root, "one")
    with pytest.raises(OutputError, match="results of `remn test`, not of `remn other`"):
        OutputFolder.claim(root, "remn other", overwrite=True)
    (root / MANIFEST).write_text("{not json")
    with pytest.raises(OutputError, match="unreadable"):
        OutputFolder.claim(root, "remn test", overwrite=True)
    (root / MANIFEST).write_text(
        json.dumps({"format": "remn-output-v1", "command": "remn test", "entries": ["../outside"]})
    )
    with pytest.raises(OutputError, match="not plain names"):
        OutputFolder.claim(root, "remn test", overwrite=True)
    assert (root / "masks" / "0.png").read_text() == "one"


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    path = tmp_path / "out"
    path.write_text("a file")
    with pytest.raises(OutputError, match="not a folder"):
        OutputFolder.claim(path, "remn test", overwrite=True)


def test_outputs_overlapping_inputs_are_refused(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "video").mkdir(parents=True)
    clip = data / "clip.mp4"
    clip.write_text("x")
    for output, what in ((data, "is the"), (data / "out", "inside the"), (tmp_path, "contains the")):
        with pytest.raises(OutputError, match=what):
            check_not_overlapping(output, [("--data-root", data)])
    with pytest.raises(OutputError, match="contains the input"):
        check_not_overlapping(data, [("input", clip)])
    check_not_overlapping(tmp_path / "elsewhere", [("--data-root", data), ("--checkpoint", None)])
    # a relative spelling of the same folder is the same folder
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="is the"):
        check_not_overlapping("data/video/..", [("--data-root", data)])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("ab"), min_size=0, max_size=3), st.lists(st.sampled_from("ab"), min_size=0, max_size=3))
def test_overlap_is_refused_exactly_when_one_path_is_within_the_other(tmp_path_factory, out_parts, in_parts):
    base = tmp_path_factory.getbasetemp() / "overlap"
    output, given_input = base.joinpath(*out_parts), base.joinpath(*in_parts)
    related = output == given_input or given_input in output.parents or output in given_input.parents
    try:
        check_not_overlapping(output, [("input", given_input)])
        refused = False
    except OutputError:
        refused = True
    assert refused == related


def test_a_swap_cut_short_is_undone_by_the_next_claim(tmp_path):
    root = tmp_path / "out"
    _write_run(root, "one")
    # the state a crash in the middle of commit() leaves: the journal written, "masks" moved aside
    # and the new "masks" moved in, "record.json" not moved yet, the manifest not rewritten
    (root / STAGING).mkdir()
    (root / STAGING / "record.json").write_text("two")
    (root / OLD).mkdir()
    os.replace(root / "masks", root / OLD / "masks")
    (root / "masks").mkdir()
    (root / "masks" / "0.png").write_text("two")
    (root / JOURNAL).write_text(
        json.dumps({"swap": "crashed", "old": ["masks", "record.json"], "new": ["masks", "record.json"]})
    )
    folder = OutputFolder.claim(root, "remn test", overwrite=True)
    assert (root / "masks" / "0.png").read_text() == "one" and (root / "record.json").read_text() == "one"
    assert (root / STAGING / "masks" / "0.png").read_text() == "two"  # the new run's, back in staging
    assert not (root / JOURNAL).exists() and not (root / OLD).exists() and folder.has_results


def test_a_swap_whose_manifest_was_written_is_kept(tmp_path):
    root = tmp_path / "out"
    folder = _write_run(root, "one")
    swap = folder.manifest["swap"]
    (root / OLD).mkdir()
    (root / OLD / "masks").mkdir()
    (root / JOURNAL).write_text(json.dumps({"swap": swap, "old": ["masks"], "new": ["masks", "record.json"]}))
    OutputFolder.claim(root, "remn test", overwrite=True)
    assert (root / "masks" / "0.png").read_text() == "one" and not (root / OLD).exists()


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        _write_run(tmp_path / "out", "one")
    finally:
        os.umask(previous)
    for path in (tmp_path / "a.json", tmp_path / "out" / MANIFEST):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_signals_are_held_during_the_swap_and_delivered_after(tmp_path):
    got: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda *a: None)
    old_int = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        with signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            assert got == []  # not delivered inside
        assert got == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGUSR1, previous)
    done = []

    def in_thread() -> None:
        with signals_held():
            done.append(True)

    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join()
    assert done == [True]  # outside the main thread it is a no-op, not an error
