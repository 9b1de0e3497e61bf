"""MOSE and LVOS benchmark entries on generated folders in their distributed layouts: read, evaluated
(random weights, small size, CPU) and, where ground truth ships (LVOS valid), scored."""

from __future__ import annotations

import csv
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from remn.data.masks import read_mask, save_image, save_mask
from remn.data.synthetic import generate_video
from remn.data.vos import LVOS, MOSE, FrameRange, open_dataset
from remn.errors import REMNError
from remn.evaluation.benchmarks import load_benchmarks

from conftest import REPO

sys.path.insert(0, str(REPO))
import eval as eval_script  # noqa: E402

FAST = ["inference.size=64"]
FRAMES, HEIGHT, WIDTH = 8, 48, 64


def _eval(*args: str) -> int:
    return eval_script.main([*args, "--quiet"])


def _lvos_name(t: int) -> str:
    return f"{5 * t + 1:08d}"  # every 5th frame of the source video, 8 digits, from 00000001


@pytest.fixture(scope="module")
def mose_root(tmp_path_factory) -> Path:
    """MOSE as valid.tar.gz unpacks: valid/JPEGImages/<video>/00000.jpg, valid/Annotations/<video>/00000.png."""
    root = tmp_path_factory.mktemp("mose") / "MOSE"
    for index in range(2):
        video = generate_video(100 + index, frames=FRAMES, height=HEIGHT, width=WIDTH, objects=(1, 3))
        name = f"{index:04x}beef"
        for t, frame in enumerate(video.frames):
            save_image(root / "valid" / "JPEGImages" / name / f"{t:05d}.jpg", frame)
        save_mask(root / "valid" / "Annotations" / name / "00000.png", video.masks[0])
    return root


def _lvos_split(root: Path, split: str, seeds: list[int]) -> dict:
    """One LVOS split; valid ships every frame's ground truth, test each object's first mask only."""
    videos = {}
    for seed in seeds:
        video = generate_video(
            seed, frames=FRAMES, height=HEIGHT, width=WIDTH, objects=(2, 2), enter_late=1.0, leave=0.0
        )
        name = f"lvos{seed:03d}"
        for t, frame in enumerate(video.frames):
            save_image(root / split / "JPEGImages" / name / f"{_lvos_name(t)}.jpg", frame)
            if split == "valid":
                save_mask(root / split / "Annotations" / name / f"{_lvos_name(t)}.png", video.masks[t])
        starts = {}
        for object_id in video.ids:
            starts.setdefault(video.first_frame[object_id], []).append(object_id)
        if split == "test":
            for t, ids in starts.items():
                only = np.where(np.isin(video.masks[t], ids), video.masks[t], 0).astype(np.uint8)
                save_mask(root / split / "Annotations" / name / f"{_lvos_name(t)}.png", only)
        objects = {
            str(k): {
                "frame_range": {
                    "start": 5 * video.first_frame[k] + 1,
                    "end": 5 * (FRAMES - 1) + 1,
                    "frame_nums": FRAMES - 1 - video.first_frame[k],
                }
            }
            for k in video.ids
        }
        videos[name] = {"video": video, "objects": objects}
    meta = {"videos": {name: {"objects": entry["objects"]} for name, entry in videos.items()}}
    (root / split / f"{split}_meta.json").write_text(json.dumps(meta))
    return videos


@pytest.fixture(scope="module")
def lvos_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("lvos") / "LVOS"
    valid = _lvos_split(root, "valid", [7, 8])
    test = _lvos_split(root, "test", [9])
    assert any(
        min(entry["video"].first_frame.values()) == 0 < max(entry["video"].first_frame.values())
        for entry in valid.values()
    )  # an object enters after the first frame
    return {"root": root, "valid": valid, "test": test}


def test_registry_has_mose_and_lvos():
    benchmarks = load_benchmarks()
    mose, valid, test = benchmarks["mose-valid"], benchmarks["lvos-valid"], benchmarks["lvos-test"]
    assert (mose.layout, mose.split, mose.zip, mose.gt) == ("mose", "valid", "results", "")
    assert (valid.layout, valid.split, valid.gt, valid.zip) == ("lvos", "valid", "valid/Annotations", "")
    assert (test.layout, test.split, test.zip, test.gt) == ("lvos", "test", "results", "")
    for spec in (mose, valid, test):
        assert "inference.size=480" in spec.protocol and "memory.mem_every=5" in spec.protocol


@pytest.mark.slow
def test_mose_valid_gives_every_frame_from_the_first_mask_and_a_server_zip(mose_root, tmp_path):
    dataset = open_dataset("mose", mose_root, split="valid")
    assert isinstance(dataset, MOSE) and dataset.videos == ["0000beef", "0001beef"]
    video = dataset.video("0000beef")
    assert list(video.masks) == [0] and video.write is None
    out = tmp_path / "out"
    assert _eval("--benchmark", "mose-valid", "--data-root", str(mose_root), "--output", str(out), *FAST) == 0
    for name in dataset.videos:
        assert sorted(p.name for p in (out / name).iterdir()) == [f"{t:05d}.png" for t in range(FRAMES)]
    with zipfile.ZipFile(out / "results.zip") as archive:
        names = sorted(archive.namelist())
    assert names == sorted(f"{v}/{t:05d}.png" for v in dataset.videos for t in range(FRAMES))  # videos on top
    assert not list(out.glob("global_results-*.csv")) and not (out / "report.html").exists()  # scored on a server


def test_mose_data_root_one_level_too_deep_is_named(mose_root, capsys):
    with pytest.raises(REMNError, match=r"did you mean .*MOSE\?"):
        open_dataset("mose", mose_root / "valid", split="valid")


def test_lvos_objects_are_given_at_the_first_frame_of_their_range(lvos_root):
    dataset = open_dataset("lvos", lvos_root["root"], split="valid")
    assert isinstance(dataset, LVOS) and dataset.videos == sorted(lvos_root["valid"])
    for name, entry in lvos_root["valid"].items():
        video, first = dataset.video(name), entry["video"].first_frame
        assert sorted(video.masks) == sorted(set(first.values()))
        assert dataset.object_ranges[name] == {k: FrameRange(5 * first[k] + 1, 5 * (FRAMES - 1) + 1) for k in first}
        for index in video.masks:
            in_file = set(read_mask(video.masks[index])[1].ids)
            labels, info = video.read_input_mask(index)
            starting = {k for k, t in first.items() if t == index}
            assert set(info.ids) == starting == set(np.unique(labels)) - {0}  # only the objects that start here
            assert in_file >= starting  # the valid file holds every object present
        assert video.object_first_frames() == first


@pytest.mark.slow
def test_lvos_valid_is_evaluated_and_scored_by_object_ranges(lvos_root, tmp_path):
    root = lvos_root["root"]
    out = tmp_path / "out"
    assert _eval("--benchmark", "lvos-valid", "--data-root", str(root), "--output", str(out), *FAST) == 0
    names = sorted(lvos_root["valid"])
    for name in names:
        first = min(lvos_root["valid"][name]["video"].first_frame.values())
        assert sorted(p.stem for p in (out / name).iterdir()) == [_lvos_name(t) for t in range(first, FRAMES)]
    rows = list(csv.DictReader((out / "per-sequence_results-valid.csv").open()))
    assert [r["Sequence"] for r in rows] == [f"{n}_{k}" for n in names for k in (1, 2)]
    assert 0.0 <= float(next(csv.DictReader((out / "global_results-valid.csv").open()))["J&F-Mean"]) <= 1.0
    report = (out / "report.html").read_text(encoding="utf-8")
    assert all(f'<tr class="sequence" data-sequence="{n}"' in report for n in names)
    assert "| REMN (lvos-valid) |" in (out / "results.md").read_text()


def test_lvos_ground_truth_as_prediction_scores_one_on_each_objects_frames(lvos_root, tmp_path, capsys):
    from remn.cli.score import main as score
    from remn.data.vos import read_lvos_meta
    from remn.evaluation.lvos import score_object_ranges

    valid = lvos_root["root"] / "valid"
    gt = valid / "Annotations"
    ranges = read_lvos_meta(valid / "valid_meta.json")
    result = score_object_ranges(gt, gt, ranges, progress=False)
    assert result.global_table()["J&F-Mean"] == 1.0
    for sequence in result.sequences:
        first = lvos_root["valid"][sequence.name]["video"].first_frame
        assert sequence.frame_names == tuple(_lvos_name(t) for t in range(min(first.values()), FRAMES - 1))
        for row, object_id in enumerate(sequence.object_ids):  # scored from its first frame, not before
            scored = [name for name, value in zip(sequence.frame_names, sequence.j[row]) if not np.isnan(value)]
            assert scored == [_lvos_name(t) for t in range(first[object_id], FRAMES - 1)]
    # remn score --lvos-meta: the same protocol from the command line, and missing frames refused
    pred = tmp_path / "pred"
    for name in ranges:
        for path in sorted((gt / name).iterdir())[:-2]:  # the last scored frame is missing
            labels, _ = read_mask(path)
            save_mask(pred / name / path.name, labels)
    assert score(["--gt", str(gt), "--pred", str(pred), "--lvos-meta", str(valid / "valid_meta.json"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "[missing-frame]" in err and _lvos_name(FRAMES - 2) in err
    for name in ranges:
        path = gt / name / f"{_lvos_name(FRAMES - 2)}.png"
        save_mask(pred / name / path.name, read_mask(path)[0])
    assert score(["--gt", str(gt), "--pred", str(pred), "--lvos-meta", str(valid / "valid_meta.json"), "--quiet"]) == 0
    assert "1.000" in capsys.readouterr().out and (pred / "report.html").is_file()


def test_lvos_test_gives_first_appearances_and_a_server_zip(lvos_root, tmp_path):
    root = lvos_root["root"]
    out = tmp_path / "out"
    assert _eval("--benchmark", "lvos-test", "--data-root", str(root), "--output", str(out), *FAST) == 0
    ((name, entry),) = lvos_root["test"].items()
    first = entry["video"].first_frame
    late = max(first, key=first.get)
    written = {p.stem: read_mask(p)[1].ids for p in sorted((out / name).iterdir())}
    assert sorted(written) == [_lvos_name(t) for t in range(min(first.values()), FRAMES)]
    assert late in written[_lvos_name(first[late])]  # the late object joins at its first frame
    assert all(late not in ids for frame, ids in written.items() if frame < _lvos_name(first[late]))
    with zipfile.ZipFile(out / "results.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"{name}/{frame}.png" for frame in written)
    assert not list(out.glob("global_results-*.csv"))


def test_lvos_without_its_meta_file_is_refused_clearly(tmp_path, capsys):
    split = tmp_path / "LVOS" / "valid"
    (split / "JPEGImages").mkdir(parents=True)
    assert (
        _eval(
            "--benchmark", "lvos-valid", "--data-root", str(tmp_path / "LVOS"), "--output", str(tmp_path / "out"), *FAST
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "valid/valid_meta.json not found" in err and "Traceback" not in err
    (split / "valid_meta.json").write_text('{"videos": {"v": {"objects": {"1": {"frames": []}}}}}')
    assert (
        _eval(
            "--benchmark", "lvos-valid", "--data-root", str(tmp_path / "LVOS"), "--output", str(tmp_path / "out"), *FAST
        )
        == 1
    )
    assert "frame_range" in capsys.readouterr().err
