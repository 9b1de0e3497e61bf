"""The procedural video generator: determinism, the hard cases it promises, and the three layouts on disk."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remn.cli.generate import main
from remn.data.masks import DAVIS_PALETTE, natural_sorted, read_image, read_mask
from remn.data.synthetic import (
    SHAPES,
    GenerationError,
    SyntheticSpec,
    SyntheticStream,
    frame_name,
    generate_video,
    layout_spec,
    video_rng,
    write_dataset,
)
from remn.outputs import OutputError

from conftest import REPO

SMALL = dict(frames=12, height=64, width=64)


def _same(a, b) -> bool:
    return (
        all(np.array_equal(x, y) for x, y in zip(a.frames, b.frames))
        and all(np.array_equal(x, y) for x, y in zip(a.masks, b.masks))
        and (a.ids, a.first_frame, a.gone, a.distractors, a.depth, a.categories)
        == (b.ids, b.first_frame, b.gone, b.distractors, b.depth, b.categories)
    )


def _pixels(video, object_id) -> np.ndarray:
    return np.array([int((mask == object_id).sum()) for mask in video.masks])


# --------------------------------------------------------------------------------------------
# In memory


def test_same_seed_same_video_bit_for_bit_and_other_seeds_differ():
    knobs = dict(SMALL, objects=(2, 3), distractors=(1, 2), enter_late=0.5, leave=0.5)
    first = generate_video(7, **knobs)
    assert _same(first, generate_video(7, **knobs))
    assert _same(first, generate_video(np.random.default_rng(7), **knobs))
    other = generate_video(8, **knobs)
    assert not np.array_equal(np.stack(first.frames), np.stack(other.frames))
    # a dataset's video does not depend on how many videos come before it or on the worker
    assert _same(generate_video(video_rng(3, 5), **knobs), generate_video(video_rng(3, 5), **knobs))
    assert not np.array_equal(
        generate_video(video_rng(3, 5), **knobs).frames[0], generate_video(video_rng(3, 6), **knobs).frames[0]
    )


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    frames=st.integers(1, 14),
    height=st.integers(40, 80),
    width=st.integers(40, 80),
    low=st.integers(1, 3),
    extra=st.integers(0, 1),
    distractors=st.integers(0, 2),
    enter_late=st.sampled_from([0.0, 0.5, 1.0]),
    leave=st.sampled_from([0.0, 1.0]),
    stride=st.sampled_from([1, 5]),
    id_style=st.sampled_from(["contiguous", "sparse"]),
)
def test_every_video_keeps_its_promises(
    seed, frames, height, width, low, extra, distractors, enter_late, leave, stride, id_style
):
    video = generate_video(
        seed,
        frames,
        height,
        width,
        objects=(low, low + extra),
        distractors=(distractors, distractors),
        enter_late=enter_late,
        leave=leave,
        entry_stride=stride,
        id_style=id_style,
    )
    assert len(video.frames) == len(video.masks) == frames
    for frame, mask in zip(video.frames, video.masks):
        assert frame.shape == (height, width, 3) and frame.dtype == np.uint8
        assert mask.shape == (height, width) and mask.dtype == np.uint8
        assert set(np.unique(mask).tolist()) <= {0, *video.ids}
    assert low <= len(video.ids) <= low + extra and len(set(video.ids)) == len(video.ids)
    assert all(1 <= i <= 255 for i in video.ids)
    if id_style == "contiguous":
        assert video.ids == tuple(range(1, len(video.ids) + 1))
    assert set(video.first_frame) == set(video.categories) == set(video.ids)
    assert set(video.categories.values()) <= set(SHAPES)
    assert min(video.first_frame.values()) == 0
    for object_id, first in video.first_frame.items():
        pixels = _pixels(video, object_id)
        assert first % stride == 0
        assert pixels[:first].sum() == 0 and pixels[first] > 0, (object_id, first, pixels)
    for object_id, (out, back) in video.gone.items():
        pixels = _pixels(video, object_id)
        assert video.first_frame[object_id] < out <= back < frames - 1
        assert pixels[out : back + 1].sum() == 0 and pixels[back + 1 :].max() > 0
    assert len(video.distractors) == distractors and set(video.distractors.values()) <= set(video.ids)
    assert sorted(video.depth) == sorted([*video.ids, *video.distractors])


def test_masks_hold_only_the_visible_part_of_each_object():
    """Occlusion follows the depth order: an object's mask is its silhouette minus everything in front."""
    overlaps = 0
    for seed in range(4):
        video = generate_video(seed, **SMALL, objects=(3, 3), distractors=(2, 2), layers=True)
        for t, mask in enumerate(video.masks):
            in_front = np.zeros_like(mask, dtype=bool)
            for key in reversed(video.depth):  # front to back
                silhouette = video.layers[key][t]
                if key > 0:
                    assert np.array_equal(mask == key, silhouette & ~in_front), (seed, t, key)
                    overlaps += int((silhouette & in_front).any())
                else:
                    assert not (mask[silhouette & ~in_front]).any()  # distractors are background
                in_front |= silhouette
            assert np.array_equal(mask > 0, in_front & (mask > 0))
    assert overlaps > 0, "no object was ever occluded; the occlusion check tested nothing"


def test_late_objects_are_absent_before_their_first_frame_and_present_at_it():
    late = 0
    for seed in range(6):
        video = generate_video(
            seed, frames=16, height=64, width=64, objects=(3, 3), enter_late=1.0, entry_stride=5, layers=True
        )
        for object_id, first in video.first_frame.items():
            assert not any(video.layers[object_id][t].any() for t in range(first)), "drawn before its entry"
            assert (video.masks[first] == object_id).sum() >= 6
            if first > 0:
                late += 1
                assert first in (5, 10, 15)
                assert not (video.masks[first - 1] == object_id).any()
    assert late >= 10  # every object but the first enters late


def test_leaving_objects_go_wholly_out_of_the_frame_and_come_back():
    leavers = 0
    for seed in range(4):
        video = generate_video(seed, frames=30, height=64, width=64, objects=(2, 2), leave=1.0, layers=True)
        for object_id, (out, back) in video.gone.items():
            leavers += 1
            pixels = _pixels(video, object_id)
            assert pixels[out - 1] > 0 and pixels[out : back + 1].sum() == 0 and pixels[back + 1] > 0
            # out of the frame, not merely hidden behind something
            assert not any(video.layers[object_id][t].any() for t in range(out, back + 1))
        assert all(_pixels(video, i)[0] > 0 for i in video.ids)
    assert leavers >= 6


def test_motion_is_moderate_and_objects_change_pose():
    """Normal objects move a few pixels per frame at 256x256, and their silhouette changes shape."""
    video = generate_video(11, frames=20, height=256, width=256, objects=(3, 3), leave=0.0, distractors=(0, 0))
    for object_id in video.ids:
        centres = np.array([np.argwhere(m == object_id).mean(axis=0) for m in video.masks])
        steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
        assert np.median(steps) < 6.0 and steps.max() < 12.0
        assert steps.sum() > 5.0  # it does move
        areas = _pixels(video, object_id)
        assert areas.max() != areas.min()


def test_distractors_look_like_their_target_but_are_background():
    checked = 0
    for seed in range(5):
        video = generate_video(seed, frames=8, height=96, width=96, objects=(1, 2), distractors=(1, 1), layers=True)
        covered = np.zeros_like(video.masks[0], dtype=bool)
        for key in video.layers:
            covered |= video.layers[key][0]
        background = video.frames[0][~covered].astype(float)
        for key, target in video.distractors.items():
            front = video.depth[video.depth.index(key) + 1 :]
            seen = []
            for t, (frame, mask) in enumerate(zip(video.frames, video.masks)):
                visible = video.layers[key][t].copy()
                for other in front:
                    visible &= ~video.layers[other][t]
                assert not mask[visible].any(), "a distractor's pixels are labelled"
                seen.append(frame[visible])
            seen = np.concatenate(seen).astype(float)
            assert len(seen) > 50, "the distractor is not visible in the image"
            labelled = np.concatenate([f[m == target] for f, m in zip(video.frames, video.masks)]).astype(float)
            to_target = np.linalg.norm(seen.mean(0) - labelled.mean(0))
            to_background = np.linalg.norm(background.mean(0) - labelled.mean(0))
            assert to_target < 40 and to_target < 0.5 * to_background, (seed, to_target, to_background)
            spread = np.linalg.norm(seen.std(0)) / max(np.linalg.norm(labelled.std(0)), 1e-6)
            assert 0.5 < spread < 2.0, (seed, spread)
            checked += 1
    assert checked == 5


def test_spec_refuses_bad_values_and_layouts_impose_their_rules():
    for bad in (
        dict(objects=(0, 2)),
        dict(objects=(3, 2)),
        dict(frames=0),
        dict(height=8),
        dict(leave=1.5),
        dict(id_style="random"),
        dict(entry_stride=0),
        dict(speed=-1.0),
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            SyntheticSpec(**bad)
    with pytest.raises(TypeError, match="colour"):
        generate_video(0, colour=3)
    assert SyntheticSpec(objects=[2, 4]).objects == (2, 4)
    davis = layout_spec("davis", SyntheticSpec(enter_late=0.9, id_style="sparse"))
    assert davis.enter_late == 0.0 and davis.id_style == "contiguous"
    youtube = layout_spec("youtube", frames=12)
    assert youtube.entry_stride == 5 and youtube.id_style == "sparse" and youtube.frames == 12
    assert layout_spec("youtube", SyntheticSpec(entry_stride=2)).entry_stride == 10
    with pytest.raises(ValueError, match="layout"):
        layout_spec("kitti")


# --------------------------------------------------------------------------------------------
# One frame at a time


STREAM = dict(height=48, width=64, objects=(2, 3), distractors=(1, 2))


def test_stream_is_deterministic_the_start_of_longer_ones_and_the_same_in_any_order():
    long, short = SyntheticStream(5, frames=40, **STREAM), SyntheticStream(5, frames=12, **STREAM)
    assert (len(long), len(short)) == (40, 12) and long.ids == short.ids and long.depth == short.depth
    frames = list(long)
    assert len(frames) == 40
    for t in range(12):
        assert all(np.array_equal(a, b) for a, b in zip(frames[t], short.render(t)))
    again = SyntheticStream(5, frames=40, **STREAM)
    for t in (39, 3, 20, 0, 39, 17):  # an earlier frame replays the paths from their start
        frame, labels = again.render(t)
        assert np.array_equal(frame, frames[t][0]) and np.array_equal(labels, frames[t][1])
        assert np.array_equal(again.frame(t), frame) and np.array_equal(again.labels(t), labels)
    for frame, labels in frames:
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
        assert labels.shape == (48, 64) and labels.dtype == np.uint8
        assert set(np.unique(labels).tolist()) <= {0, *long.ids}
    assert not np.array_equal(SyntheticStream(6, frames=40, **STREAM).frame(0), frames[0][0])
    own = np.random.SeedSequence(5, spawn_key=(3,))  # e.g. one per video of a set
    assert np.array_equal(
        SyntheticStream(own, frames=2, **STREAM).frame(1),
        SyntheticStream(np.random.SeedSequence(5, spawn_key=(3,)), frames=2, **STREAM).frame(1),
    )
    assert not np.array_equal(SyntheticStream(own, frames=2, **STREAM).frame(1), frames[1][0])
    with pytest.raises(IndexError, match="frame 40"):
        long.render(40)


@pytest.mark.slow
def test_stream_runs_thousands_of_frames_in_the_memory_of_one():
    stream = SyntheticStream(2, frames=2000, height=64, width=64, objects=(3, 3), distractors=(1, 1))
    assert set(np.unique(stream.labels(0)).tolist()) == {0, 1, 2, 3}  # every object is in frame 0
    centres = np.full((3, 200, 2), np.nan)  # every 10th frame; allocated before memory is traced
    tracemalloc.start()
    try:
        for t, (_, labels) in enumerate(stream):
            if t == 100:
                held = tracemalloc.get_traced_memory()[0]
            if t % 10 == 0:
                for i in range(3):
                    if (labels == i + 1).any():
                        centres[i, t // 10] = np.argwhere(labels == i + 1).mean(axis=0)
        grown = tracemalloc.get_traced_memory()[0] - held
    finally:
        tracemalloc.stop()
    assert grown < 20_000, f"the stream's state grew by {grown} bytes over 1,900 frames"
    for i in range(3):
        assert np.isfinite(centres[i, :, 0]).mean() >= 0.9  # it stays in view
        steps = np.linalg.norm(np.diff(centres[i], axis=0), axis=1) / 10
        assert 0.05 < np.nanmedian(steps) < 6.0 * 64 / 256  # it moves, a few pixels per frame at 256


def test_stream_refuses_what_it_cannot_draw():
    with pytest.raises(ValueError, match="leave=0"):
        SyntheticStream(0, frames=5, leave=0.5)
    with pytest.raises(ValueError, match="enter_late"):
        SyntheticStream(0, spec=SyntheticSpec(enter_late=0.5, leave=0.0))
    with pytest.raises(TypeError, match="colour"):
        SyntheticStream(0, colour=3)
    with pytest.raises(GenerationError, match="frame 0"):
        SyntheticStream(0, frames=5, height=16, width=16, objects=(40, 40))


# --------------------------------------------------------------------------------------------
# On disk


def _mask(path: Path) -> np.ndarray:
    labels, info = read_mask(path)
    assert info.kind == "palette" and info.palette[:48] == DAVIS_PALETTE[:48], path
    return labels


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_davis_layout(tmp_path):
    spec = layout_spec("davis", frames=6, height=48, width=64, leave=0.0)
    manifest = write_dataset(
        tmp_path, "davis", videos=5, spec=spec, seed=4, val_fraction=0.4, workers=1, progress=False
    )
    assert json.loads((tmp_path / "synthetic.json").read_text()) == manifest
    names = [f"syn{i:04d}" for i in range(5)]
    assert (tmp_path / "ImageSets/2017/train.txt").read_text().split() == names[:3]
    assert (tmp_path / "ImageSets/2017/val.txt").read_text().split() == names[3:]
    assert manifest["frames"] == 30 and sorted(manifest["videos"]) == names
    for index, name in enumerate(names):
        frames = [f"{t:05d}" for t in range(6)]
        assert _names(tmp_path / "JPEGImages/480p" / name) == [f"{f}.jpg" for f in frames]
        assert _names(tmp_path / "Annotations/480p" / name) == [f"{f}.png" for f in frames]
        video = generate_video(video_rng(4, index), spec=spec)
        entry = manifest["videos"][name]
        assert entry["ids"] == list(range(1, len(video.ids) + 1)) == list(video.ids)
        assert set(entry["first_frame"].values()) == {0}
        first = _mask(tmp_path / "Annotations/480p" / name / "00000.png")
        assert set(np.unique(first).tolist()) == {0, *video.ids}  # every object is in frame 0
        for t in range(6):
            assert np.array_equal(_mask(tmp_path / "Annotations/480p" / name / f"{t:05d}.png"), video.masks[t])
            image = read_image(tmp_path / "JPEGImages/480p" / name / f"{t:05d}.jpg").astype(float)
            assert image.shape == (48, 64, 3)
            errors = [np.abs(image - frame).mean() for frame in video.frames]
            assert errors[t] < 6.0 and int(np.argmin(errors)) == t  # JPEG of the right frame


def test_youtube_layout(tmp_path):
    spec = layout_spec("youtube", frames=16, height=48, width=48)
    manifest = write_dataset(
        tmp_path, "youtube", videos=8, spec=spec, seed=2, val_fraction=0.5, workers=1, progress=False
    )
    every5 = ["00000", "00005", "00010", "00015"]
    train_meta = json.loads((tmp_path / "train/meta.json").read_text())
    valid_meta = json.loads((tmp_path / "valid/meta.json").read_text())
    assert sorted(train_meta["videos"]) == [f"syn{i:04d}" for i in range(4)]
    assert sorted(valid_meta["videos"]) == [f"syn{i:04d}" for i in range(4, 8)]
    sparse = late_videos = 0
    for index in range(8):
        name = f"syn{index:04d}"
        video = generate_video(video_rng(2, index), spec=spec)
        valid = index >= 4
        part = tmp_path / ("valid" if valid else "train")
        meta = (valid_meta if valid else train_meta)["videos"][name]["objects"]
        assert sorted(meta, key=int) == [str(i) for i in video.ids]
        for object_id in video.ids:
            first = video.first_frame[object_id]
            assert first % 5 == 0
            assert meta[str(object_id)] == {
                "category": video.categories[object_id],
                "frames": [f for f in every5 if int(f) >= first],
            }
        assert _names(part / "JPEGImages" / name) == [f"{f}.jpg" for f in every5]
        sparse += video.ids != tuple(range(1, len(video.ids) + 1))
        if not valid:
            assert _names(part / "Annotations" / name) == [f"{f}.png" for f in every5]
            for f in every5:
                assert np.array_equal(_mask(part / "Annotations" / name / f"{f}.png"), video.masks[int(f)])
            continue
        late_videos += max(video.first_frame.values()) > 0
        appear = sorted(set(video.first_frame.values()))
        assert _names(part / "Annotations" / name) == [f"{t:05d}.png" for t in appear]
        for t in appear:
            new = {i for i, first in video.first_frame.items() if first == t}
            annotation = _mask(part / "Annotations" / name / f"{t:05d}.png")
            assert set(np.unique(annotation).tolist()) == {0, *new}  # only the newly appearing objects
            assert np.array_equal(annotation, np.where(np.isin(video.masks[t], list(new)), video.masks[t], 0))
        every = [f"{t:05d}" for t in range(16)]
        assert _names(tmp_path / "all_frames/valid_all_frames/JPEGImages" / name) == [f"{f}.jpg" for f in every]
        assert _names(tmp_path / "valid_gt/Annotations" / name) == [f"{f}.png" for f in every]
        for t in range(16):
            assert np.array_equal(_mask(tmp_path / "valid_gt/Annotations" / name / f"{t:05d}.png"), video.masks[t])
    assert not (tmp_path / "all_frames/valid_all_frames/JPEGImages/syn0000").exists()
    assert sparse >= 6 and late_videos >= 3
    assert manifest["videos"]["syn0005"]["split"] == "val"


def test_generic_layout(tmp_path):
    spec = layout_spec("generic", frames=12, height=40, width=56, enter_late=1.0, objects=(2, 3))
    write_dataset(tmp_path, "generic", videos=2, spec=spec, seed=9, workers=1, progress=False)
    names = [frame_name("generic", t) for t in range(12)]
    assert names[:2] == ["frame_1", "frame_2"] and names[-1] == "frame_12"
    assert sorted(names) != names and natural_sorted(names) == names  # lexical order would be wrong
    for index in range(2):
        name = f"syn{index:04d}"
        video = generate_video(video_rng(9, index), spec=spec)
        assert natural_sorted(_names(tmp_path / "JPEGImages" / name)) == [f"{n}.jpg" for n in names]
        assert natural_sorted(_names(tmp_path / "GroundTruth" / name)) == [f"{n}.png" for n in names]
        appear = sorted(set(video.first_frame.values()))
        assert len(appear) > 1
        assert natural_sorted(_names(tmp_path / "Annotations" / name)) == [f"{names[t]}.png" for t in appear]
        for t in appear:
            new = {i for i, first in video.first_frame.items() if first == t}
            assert set(np.unique(_mask(tmp_path / "Annotations" / name / f"{names[t]}.png")).tolist()) == {0, *new}
        for t in range(12):
            assert np.array_equal(_mask(tmp_path / "GroundTruth" / name / f"{names[t]}.png"), video.masks[t])


def test_workers_write_the_same_dataset(tmp_path):
    spec = layout_spec("davis", frames=6, height=40, width=40)
    one = write_dataset(tmp_path / "one", "davis", videos=4, spec=spec, seed=1, workers=1, progress=False)
    two = write_dataset(tmp_path / "two", "davis", videos=4, spec=spec, seed=1, workers=2, progress=False)
    assert one["videos"] == two["videos"]
    for path in sorted((tmp_path / "one/Annotations").rglob("*.png")):
        twin = tmp_path / "two" / path.relative_to(tmp_path / "one")
        assert path.read_bytes() == twin.read_bytes()
    for path in sorted((tmp_path / "one/JPEGImages").rglob("*.jpg")):
        assert path.read_bytes() == (tmp_path / "two" / path.relative_to(tmp_path / "one")).read_bytes()


def test_cli_writes_a_tiny_dataset_and_refuses_a_non_empty_folder(tmp_path):
    out = tmp_path / "data"
    args = [
        sys.executable,
        "-m",
        "remn",
        "generate",
        str(out),
        "--videos",
        "3",
        "--frames",
        "6",
        "--size",
        "64",
        "64",
        "--layout",
        "youtube",
        "--seed",
        "5",
        "--workers",
        "2",
        "--val-fraction",
        "0.34",
        "--quiet",
    ]
    result = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "wrote 3 videos, 18 frames of 64x64" in result.stdout and "took" in result.stdout
    manifest = json.loads((out / "synthetic.json").read_text())
    assert manifest["spec"]["frames"] == 6 and [v["split"] for v in manifest["videos"].values()] == [
        "train",
        "train",
        "val",
    ]
    assert _names(out / "valid/JPEGImages/syn0002") == ["00000.jpg", "00005.jpg"]

    again = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "already holds results of another run" in again.stderr  # docs/errors.md
    stale = out / "train/JPEGImages/stale.txt"
    stale.write_text("left over")
    assert (
        main(
            [
                str(out),
                "--videos",
                "1",
                "--frames",
                "6",
                "--size",
                "32",
                "32",
                "--layout",
                "generic",
                "--workers",
                "1",
                "--quiet",
                "--overwrite",
            ]
        )
        == 0
    )
    assert not stale.exists() and not (out / "train").exists()
    assert sorted(json.loads((out / "synthetic.json").read_text())["videos"]) == ["syn0000"]

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main([str(foreign), "--videos", "1", "--frames", "6", "--size", "32", "32", "--quiet", "--overwrite"]) == 1
    assert (foreign / "notes.txt").read_text() == "keep me" and len(list(foreign.iterdir())) == 1
    with pytest.raises(OutputError, match="did not write"):
        write_dataset(foreign, videos=1, spec=layout_spec("davis", frames=2, height=32, width=32), progress=False)
