"""eval.py end to end on CPU: real DAVIS 2016 frames and generated YouTube-VOS / generic sets."""

from __future__ import annotations

import csv
import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from remn.cli import eval as eval_script  # what eval.py runs
from remn.data.masks import read_mask
from remn.data.synthetic import layout_spec, write_dataset
from remn.evaluation.benchmarks import load_benchmarks

from conftest import DAVIS_MINI, REPO, needs_davis_mini

FAST = ["inference.size=64"]


def _eval(*args: str) -> int:
    return eval_script.main([*args, "--quiet"])


def test_registry_has_every_benchmark_of_the_issue():
    benchmarks = load_benchmarks()
    assert set(benchmarks) >= {
        "davis2016-val",
        "davis2017-val",
        "davis2017-test-dev",
        "youtube2018-valid",
        "youtube2019-valid",
        "long-time",
        "long-time-x3",
        "generic",
    }
    assert "memory.mem_every=3" in benchmarks["davis2017-test-dev"].protocol
    assert "memory.interval_mode=relative" in benchmarks["youtube2019-valid"].protocol
    assert benchmarks["long-time-x3"].repeat == 3 and benchmarks["long-time"].sparse


@pytest.mark.slow
@needs_davis_mini
def test_davis2016_mini_end_to_end(tmp_path):
    subset = tmp_path / "subset.txt"
    subset.write_text("car-shadow\n")
    out = tmp_path / "out"
    assert (
        _eval(
            "--benchmark",
            "davis2016-val",
            "--data-root",
            str(DAVIS_MINI),
            "--output",
            str(out),
            "--subset",
            str(subset),
            *FAST,
        )
        == 0
    )
    masks = sorted((out / "car-shadow").iterdir())
    assert len(masks) == 40
    labels, info = read_mask(masks[5])
    assert info.size == (854, 480) and info.kind in ("binary", "ids")  # 0/255 grey, as STCN writes DAVIS 2016
    rows = list(csv.DictReader((out / "global_results-davis2016-val.csv").open()))
    assert list(rows[0]) == ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    assert 0.0 <= float(rows[0]["J&F-Mean"]) <= 1.0
    per_sequence = list(csv.DictReader((out / "per-sequence_results-davis2016-val.csv").open()))
    assert [r["Sequence"] for r in per_sequence] == ["car-shadow_1"]
    timing = json.loads((out / "timing.json").read_text())
    assert timing["frames"] == 40 and timing["fps"] > 0 and timing["device"] == "cpu"
    assert timing["peak_memory_kind"] == "process_max_rss" and timing["peak_memory_bytes"] > 0
    assert "| REMN (davis2016-val) |" in (out / "results.md").read_text()


@pytest.fixture(scope="module")
def youtube_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("yt") / "youtube"
    write_dataset(
        root,
        layout="youtube",
        videos=3,
        seed=11,
        val_fraction=0.67,
        workers=1,
        progress=False,
        spec=layout_spec("youtube", frames=16, height=48, width=64, enter_late=1.0),
    )
    return root


@pytest.mark.slow
def test_youtube_layout_with_mid_video_objects(youtube_set, tmp_path):
    out = tmp_path / "out"
    assert _eval("--benchmark", "youtube2019-valid", "--data-root", str(youtube_set), "--output", str(out), *FAST) == 0
    meta = json.loads((youtube_set / "valid" / "meta.json").read_text())["videos"]
    assert len(meta) == 2
    for name, entry in meta.items():
        listed = sorted({f for obj in entry["objects"].values() for f in obj["frames"]})
        written = sorted(p.stem for p in (out / "Annotations" / name).iterdir())
        assert written == listed  # only the frames the server asks for
        late = {int(i): obj["frames"][0] for i, obj in entry["objects"].items()}
        for frame in written:
            _, info = read_mask(out / "Annotations" / name / f"{frame}.png")
            # an object is absent before its first frame; ids come back as in the dataset
            assert set(info.ids) <= {obj for obj, first in late.items() if first <= frame}
        first_ids = read_mask(out / "Annotations" / name / f"{min(late.values())}.png")[1].ids
        assert set(first_ids) == {obj for obj, first in late.items() if first == min(late.values())}
    with zipfile.ZipFile(out / "submission.zip") as archive:
        names = archive.namelist()
        assert archive.testzip() is None
    assert names and all(n.startswith("Annotations/") for n in names)
    assert len(names) == sum(len(list((out / "Annotations" / v).iterdir())) for v in meta)
    timing = json.loads((out / "timing.json").read_text())
    assert set(timing["videos"]) == set(meta) and timing["frames"] == 32
    assert all(v["bank_size"] for v in timing["videos"].values())


@pytest.mark.slow
def test_one_progress_line_per_video_when_stderr_is_not_a_terminal(youtube_set, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--benchmark", "youtube2019-valid", "--data-root", str(youtube_set), "--output", str(out), *FAST]
    assert eval_script.main(args) == 0  # progress on; capsys's stderr is not a terminal
    err = capsys.readouterr().err
    lines = re.findall(r"^youtube2019-valid (\d)/2: (\S+) (\d+) frames, [\d.]+ FPS$", err, flags=re.M)
    timing = json.loads((out / "timing.json").read_text())["videos"]
    assert [(i, name, int(n)) for i, name, n in lines] == [
        (str(i), name, v["frames"]) for i, (name, v) in enumerate(timing.items(), 1)
    ], err
    assert "\r" not in err and "frame/s" not in err  # no tqdm bars in a log


def _interrupt_at_video(monkeypatch, number: int) -> None:
    """Ctrl-C when the ``number``-th video (from 1) of this launch starts writing its masks."""
    from remn.data.video import Video

    started: list[str] = []
    save = Video.save_output

    def save_output(self, folder, frame, labels):
        if self.name not in started:
            started.append(self.name)
        if len(started) >= number:
            raise KeyboardInterrupt
        return save(self, folder, frame, labels)

    monkeypatch.setattr(Video, "save_output", save_output)


def _stamps(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_existing_output_is_kept_and_an_interrupted_run_resumes(youtube_set, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    args = ["--benchmark", "youtube2019-valid", "--data-root", str(youtube_set), "--output", str(out), *FAST]
    with monkeypatch.context() as patch:  # Ctrl-C in the second video of a first run
        _interrupt_at_video(patch, 2)
        assert _eval(*args) == 130
    assert "give the same command again to continue" in capsys.readouterr().err
    assert not (out / "Annotations").exists()  # nothing that looks finished
    staged = sorted((out / ".remn-staging" / "Annotations").iterdir())
    assert len(staged) == 1
    kept = staged[0].name
    stamp = _stamps(staged[0])
    assert _eval(*args) == 0  # resumes
    assert _stamps(out / "Annotations" / kept) == stamp  # the finished video was not redone
    assert len(list((out / "Annotations").iterdir())) == 2 and not (out / ".remn-staging").exists()
    assert _eval(*args) == 1
    assert "complete run" in capsys.readouterr().err
    assert _eval(*args[:-1], "inference.size=32") == 1  # another config: refused
    assert "another run" in capsys.readouterr().err
    # --overwrite interrupted half-way: the earlier results are intact
    before = _stamps(out)
    with monkeypatch.context() as patch:
        _interrupt_at_video(patch, 2)
        assert _eval(*args, "--overwrite") == 130
    capsys.readouterr()
    assert {k: v for k, v in _stamps(out).items() if not k.startswith(".remn-staging")} == before
    assert _eval(*args, "--overwrite") == 0
    assert not (out / ".remn-staging").exists() and len(list((out / "Annotations").iterdir())) == 2


def test_generic_set_scored_against_its_ground_truth(tmp_path):
    root = tmp_path / "generic"
    write_dataset(
        root,
        layout="generic",
        videos=1,
        seed=3,
        workers=1,
        progress=False,
        spec=layout_spec("generic", frames=10, height=48, width=64),
    )
    out = tmp_path / "out"
    assert (
        _eval(
            "--benchmark",
            "generic",
            "--data-root",
            str(root),
            "--output",
            str(out),
            "--gt",
            str(root / "GroundTruth"),
            *FAST,
        )
        == 0
    )
    video = next((root / "JPEGImages").iterdir()).name
    assert sorted(p.stem for p in (out / video).iterdir()) == sorted(
        p.stem for p in (root / "JPEGImages" / video).iterdir()
    )
    assert (out / "global_results-generic.csv").is_file()
    report = (out / "report.html").read_text(encoding="utf-8")  # swapped in with the rest of the run
    assert f'data-sequence="{video}"' in report and "report.html" in (out / ".remn-output.json").read_text()
    assert report.count('src="data:image/jpeg;base64,') == 16  # the worst frames over their images


def test_unknown_benchmark_and_bad_checkpoint_fail_clearly(tmp_path, capsys):
    assert _eval("--benchmark", "davis2099", "--data-root", str(tmp_path), "--output", str(tmp_path / "o")) == 2
    assert "unknown benchmark 'davis2099'" in capsys.readouterr().err
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    assert (
        _eval(
            "--benchmark",
            "generic",
            "--data-root",
            str(tmp_path),
            "--output",
            str(tmp_path / "o"),
            "--checkpoint",
            str(bad),
        )
        == 1
    )
    assert "cannot read checkpoint" in capsys.readouterr().err


def test_davis_test_dev_gets_a_zip_of_its_result_folder(tmp_path):
    root = tmp_path / "test-dev"
    write_dataset(
        root,
        layout="davis",
        videos=2,
        seed=4,
        val_fraction=1.0,
        workers=1,
        progress=False,
        spec=layout_spec("davis", frames=6, height=48, width=64),
    )
    sets = root / "ImageSets" / "2017"
    (sets / "test-dev.txt").write_text((sets / "val.txt").read_text())
    out = tmp_path / "out"
    assert _eval("--benchmark", "davis2017-test-dev", "--data-root", str(root), "--output", str(out), *FAST) == 0
    videos = (sets / "val.txt").read_text().split()
    with zipfile.ZipFile(out / "results.zip") as archive:
        names = sorted(archive.namelist())
    assert names == sorted(f"{v}/{i:05d}.png" for v in videos for i in range(6))  # no parent folder
    assert not list(out.glob("global_results-*.csv"))  # test-dev has no ground truth to score
    state = json.loads((out / "run.json").read_text())
    assert "mem_every: 3" in state["config"]  # STCN's test-dev protocol


@pytest.mark.slow
def test_sigterm_in_a_child_keeps_the_finished_videos_and_the_rerun_completes(tmp_path):
    import os
    import signal
    import subprocess
    import time

    root = tmp_path / "davis"
    write_dataset(
        root,
        layout="davis",
        videos=4,
        seed=8,
        val_fraction=1.0,
        workers=1,
        progress=False,
        spec=layout_spec("davis", frames=30, height=48, width=64),
    )
    out = tmp_path / "out"
    command = [
        sys.executable,
        "eval.py",
        "--benchmark",
        "davis2017-val",
        "--data-root",
        str(root),
        "--output",
        str(out),
        "--quiet",
        "inference.size=64",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    staged = out / ".remn-staging"
    deadline = time.monotonic() + 120
    while not (staged.is_dir() and any(p.name.startswith("syn") for p in staged.iterdir())):  # a video is done
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.02)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143, err
    assert "Traceback" not in err and "give the same command again to continue" in err
    finished = {p.name: p.stat().st_mtime_ns for p in staged.iterdir() if p.name.startswith("syn")}
    assert finished and not any(p.name.startswith("syn") for p in out.iterdir())  # nothing looks finished
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    videos = sorted(p.name for p in out.iterdir() if p.name.startswith("syn"))
    assert videos == ["syn0000", "syn0001", "syn0002", "syn0003"] and not staged.exists()
    assert all((out / name).stat().st_mtime_ns == stamp for name, stamp in finished.items())  # not redone
    assert (out / "global_results-val.csv").is_file()


def test_a_soft_input_mask_is_refused_and_read_with_mask_snap(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    root = tmp_path / "generic"
    write_dataset(
        root,
        layout="generic",
        videos=1,
        seed=3,
        workers=1,
        progress=False,
        spec=layout_spec("generic", frames=6, height=96, width=128, objects=(2, 2)),
    )
    video = next((root / "Annotations").iterdir())
    first = sorted(video.iterdir())[0]
    labels, _ = read_mask(first)
    grey = Image.fromarray((labels * 100).astype(np.uint8), mode="L")  # ids 1, 2 as grey 100, 200
    grey.resize((512, 384), Image.NEAREST).resize((128, 96), Image.BILINEAR).save(first)  # blurred edges
    out = tmp_path / "out"
    args = ["--benchmark", "generic", "--data-root", str(root), "--output", str(out), "--no-score", *FAST]
    assert _eval(*args) == 1
    err = capsys.readouterr().err
    assert first.name in err and "[soft-mask]" in err and "--mask-snap" in err
    assert not out.exists()
    assert _eval(*args, "--mask-snap") == 0
    expected = sorted(100 * i for i in np.unique(labels) if i)
    shown = ", ".join(str(v) for v in [0, *expected])
    assert f"snapped to its {len(expected) + 1} main grey levels ({shown})" in capsys.readouterr().err
    assert sorted(read_mask(sorted((out / video.name).iterdir())[0])[1].ids) == expected


def test_save_scores_writes_quantised_probabilities_that_agree_with_the_masks(youtube_set, tmp_path):
    from remn.inference.scores import load_scores

    out = tmp_path / "out"
    args = ["--benchmark", "youtube2019-valid", "--data-root", str(youtube_set), "--output", str(out), *FAST]
    assert _eval(*args, "--save-scores") == 0
    meta = json.loads((youtube_set / "valid" / "meta.json").read_text())["videos"]
    for name in meta:
        masks = sorted(p.stem for p in (out / "Annotations" / name).iterdir())
        assert sorted(p.stem for p in (out / "scores" / name).iterdir()) == masks  # one file per written mask
        for frame in masks:
            labels, info = read_mask(out / "Annotations" / name / f"{frame}.png")
            prob, ids = load_scores(out / "scores" / name / f"{frame}.npz")
            assert prob.shape == (len(ids), *labels.shape) and set(info.ids) <= set(ids.tolist())
            full = np.concatenate([1.0 - prob.sum(0, keepdims=True), prob])  # background back in front
            lookup = np.zeros(256, dtype=np.int64)
            lookup[ids] = np.arange(1, len(ids) + 1)  # ids in channel order (order of arrival)
            channel = lookup[labels]
            picked = np.take_along_axis(full, channel[None], 0)[0]
            # the mask's object is the most probable up to the rounding (random weights leave near ties)
            assert (picked >= full.max(0) - (len(ids) + 1) / 255).all()
    with zipfile.ZipFile(out / "submission.zip") as archive:
        assert all(n.startswith("Annotations/") for n in archive.namelist())  # the scores stay out of it
    assert _eval(*args, "--save-scores") == 1  # the same run, complete: refused
    assert _eval(*args, "--overwrite") == 0 and not (out / "scores").exists()  # without the option: none
