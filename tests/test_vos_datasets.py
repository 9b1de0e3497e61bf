"""Test-time datasets on generated data, the mask reader, bad inputs and the checker."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from remn.cli.check import main as check_command
from remn.data import check
from remn.data.masks import (
    DAVIS_PALETTE,
    EMPTY_FIRST_MASK,
    MISSING_FIRST_MASK,
    NAME_MISMATCH,
    NO_FRAMES,
    SIZE_MISMATCH,
    TOO_MANY_OBJECTS,
    UNREADABLE,
    DataError,
    MaskWarning,
    natural_sorted,
    read_mask,
    save_image,
    save_mask,
)
from remn.data.synthetic import layout_spec, write_dataset
from remn.data.video import play_order
from remn.data.video_file import VideoFileFrames
from remn.data.vos import DAVIS2016, DAVIS2017, GenericDataset, LongTimeVideos, YouTubeVOS, open_dataset

from conftest import DAVIS_MINI, needs_davis_mini


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("generated")
    out = {}
    for layout in ("davis", "youtube", "generic"):
        out[layout] = root / layout
        write_dataset(
            out[layout],
            layout=layout,
            videos=4,
            spec=layout_spec(layout, frames=16, height=48, width=72),
            seed=5,
            val_fraction=0.5,
            workers=1,
            progress=False,
        )
    return out


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


# ------------------------------------------------------------------- layouts
def test_davis2017_reads_the_split_and_streams_frames(generated):
    root = generated["davis"]
    dataset = DAVIS2017(root, split="val")
    assert dataset.videos == (root / "ImageSets" / "2017" / "val.txt").read_text().split()
    manifest = json.loads((root / "synthetic.json").read_text())
    video = dataset[0]
    assert len(video) == 16 and video.first_annotated == 0
    assert video.output_names() == [f"{i:05d}" for i in range(16)]
    ids = sorted(video.object_first_frames())
    assert ids == list(range(1, len(ids) + 1))  # DAVIS ids are 1..K
    assert ids == sorted(int(i) for i in manifest["videos"][video.name]["ids"])
    frames = list(video)
    assert [f.index for f in frames] == list(range(16))
    assert frames[0].mask is not None and all(f.mask is None for f in frames[1:])
    assert frames[0].image.shape == (48, 72, 3) and frames[0].image.dtype == np.uint8
    assert video.palette == DAVIS_PALETTE[: len(video.palette)]


def test_youtube_maps_mid_video_objects_and_frames_to_write(generated):
    root = generated["youtube"]
    dataset = YouTubeVOS(root, split="valid")
    meta = json.loads((root / "valid" / "meta.json").read_text())["videos"]
    assert dataset.videos == sorted(meta)
    late_seen = False
    for video in dataset:
        # every frame is read (all_frames), but only the listed ones are written
        assert len(video) == 16
        listed = sorted({f for obj in meta[video.name]["objects"].values() for f in obj["frames"]})
        assert video.output_names() == listed
        first = video.object_first_frames()
        assert sorted(first) == sorted(int(i) for i in meta[video.name]["objects"])
        for obj, index in first.items():
            assert meta[video.name]["objects"][str(obj)]["frames"][0] == f"{index:05d}"
        late_seen |= any(index > 0 for index in first.values())
        for frame in video:
            if frame.mask is not None:  # the given mask holds only the objects that start here
                assert set(frame.mask_info.ids) == {o for o, i in first.items() if i == frame.index}
    assert late_seen, "the generated set should have an object entering mid-video"


def test_non_contiguous_ids_survive_the_round_trip(generated, tmp_path):
    video = YouTubeVOS(generated["youtube"]).video(YouTubeVOS(generated["youtube"]).videos[0])
    ids = sorted(video.object_first_frames())
    assert ids != list(range(1, len(ids) + 1))  # sparse ids in the generated YouTube layout
    frame = next(iter(video))
    labels = np.zeros(frame.image.shape[:2], dtype=np.int64)
    for n, obj in enumerate(ids):
        labels[n :: len(ids) + 1] = obj
    path = video.save_output(tmp_path, frame, labels)
    back, info = read_mask(path)
    assert np.array_equal(back, labels) and info.kind == "palette"


def test_generic_layout_sorts_names_naturally(generated):
    dataset = GenericDataset(generated["generic"])
    video = dataset[0]
    assert video.names == natural_sorted(video.names) and video.names[:3] == ["frame_1", "frame_2", "frame_3"]
    assert video.names[9] == "frame_10"
    assert all(video.names[i].startswith("frame_") for i in video.masks)


def test_long_time_x3_plays_forward_backward_forward(generated, tmp_path):
    root = _copy(generated["generic"], tmp_path)
    video_name = GenericDataset(root).videos[0]
    gt = sorted((root / "GroundTruth" / video_name).iterdir(), key=lambda p: int(p.stem.split("_")[1]))
    for path in gt[::5]:  # sparse annotations, as the long-time set has
        shutil.copy(path, root / "Annotations" / video_name / path.name)
    x1 = LongTimeVideos(root).video(video_name)
    x3 = LongTimeVideos(root, repeat=3).video(video_name)
    assert list(x1.masks) == [0]  # only the first annotation is an input
    n = len(x1)
    assert x1.num_steps == n and x3.num_steps == 3 * n - 2
    assert x3.order == play_order(n, 3) == [*range(n), *range(n - 2, -1, -1), *range(1, n)]
    written = [(f.position, f.index) for f in x3 if f.write]
    assert sorted(i for _, i in written) == list(range(n))  # each frame written once
    assert all(position >= n - 1 for position, _ in written)  # from the last visit
    assert x3.output_names() == x1.output_names()


def test_video_file_frames_are_counted_and_decoded(tmp_path):
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 12, (64, 48))
    for t in range(9):
        writer.write(np.full((48, 64, 3), 20 * t, dtype=np.uint8))
    writer.release()
    frames = VideoFileFrames(path)
    assert len(frames) == 9 and frames.names[0] == "00000" and frames.fps == pytest.approx(12)
    decoded = [image for _, image in frames.iterate(range(9))]
    assert all(image.shape == (48, 64, 3) for image in decoded)
    assert [int(round(image.mean() / 20)) for image in decoded] == list(range(9))
    assert abs(int(frames.read(4).mean()) - 80) <= 3


# ------------------------------------------------------------------ bad input
def _davis_copy(generated, tmp_path) -> tuple[Path, str]:
    root = _copy(generated["davis"], tmp_path)
    return root, DAVIS2017(root, split="val").videos[0]


def _first_error(root: Path, layout: str = "davis") -> DataError:
    report = check.check_dataset(root, layout, progress=False)
    assert report.all_problems, "the checker should find the problem"
    return report.all_problems[0]


@pytest.mark.parametrize(
    "problem, code",
    [
        ("missing-first-mask", MISSING_FIRST_MASK),
        ("size-mismatch", SIZE_MISMATCH),
        ("truncated-frame", UNREADABLE),
        ("no-frames", NO_FRAMES),
        ("name-mismatch", NAME_MISMATCH),
        ("empty-first-mask", EMPTY_FIRST_MASK),
    ],
)
def test_each_bad_input_gets_its_specific_error(generated, tmp_path, problem, code):
    root, name = _davis_copy(generated, tmp_path)
    frames = root / "JPEGImages" / "480p" / name
    masks = root / "Annotations" / "480p" / name
    if problem == "missing-first-mask":
        (masks / "00000.png").unlink()
    elif problem == "size-mismatch":
        save_mask(masks / "00000.png", np.ones((10, 10), dtype=np.int64))
    elif problem == "truncated-frame":
        data = (frames / "00002.jpg").read_bytes()
        (frames / "00002.jpg").write_bytes(data[: len(data) // 3])
    elif problem == "no-frames":
        for path in frames.iterdir():
            path.unlink()
    elif problem == "name-mismatch":
        (masks / "00004.png").rename(masks / "frame4.png")
    elif problem == "empty-first-mask":
        save_mask(masks / "00000.png", np.zeros((48, 72), dtype=np.int64))
    error = _first_error(root)
    assert error.code == code
    assert name in str(error)
    if problem in ("size-mismatch", "truncated-frame"):
        assert error.frame is not None and str(error.frame) in str(error)
    # the dataset refuses the video (or the frame, when streamed) the same way
    with pytest.raises(DataError) as raised:
        video = DAVIS2017(root, split="val").video(name)
        for _ in video:
            pass
    assert raised.value.code == code


def test_too_many_objects_is_refused(generated, tmp_path):
    root, name = _davis_copy(generated, tmp_path)
    labels = np.zeros((48, 72), dtype=np.int64)
    for obj in range(1, 6):
        labels[obj * 5 : obj * 5 + 3, :] = obj
    save_mask(root / "Annotations" / "480p" / name / "00000.png", labels)
    report = check.check_dataset(root, "davis", max_objects=3, progress=False)
    assert {p.code for p in report.all_problems} == {TOO_MANY_OBJECTS}
    assert "5 objects" in str(report.all_problems[0]) and "limit is 3" in str(report.all_problems[0])


def test_check_command_reports_and_writes_nothing(generated, tmp_path, capsys):
    root, name = _davis_copy(generated, tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert check_command([str(root), "--layout", "davis", "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "0 problem(s)" in out and "resolutions (frames): 72x48" in out and name in out
    (root / "Annotations" / "480p" / name / "00000.png").unlink()
    assert check_command([str(root), "--layout", "davis"]) == 1
    assert "missing-first-mask" in capsys.readouterr().out
    after = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert set(after) == set(before) - {Path("Annotations/480p") / name / "00000.png"}


# ---------------------------------------------------------------- mask reader
palettes = st.lists(st.tuples(*[st.integers(0, 255)] * 3), min_size=256, max_size=256)
sizes = st.tuples(st.integers(1, 40), st.integers(1, 40))


@settings(max_examples=40, deadline=None)
@given(size=sizes, ids=st.sets(st.integers(1, 255), max_size=8), palette=palettes, seed=st.integers(0, 2**16))
def test_palette_masks_keep_ids_and_palette(tmp_path_factory, size, ids, palette, seed):
    rng = np.random.default_rng(seed)
    labels = rng.choice(np.array([0, *sorted(ids)]), size=size)
    flat = bytes(c for colour in palette for c in colour)
    path = tmp_path_factory.mktemp("pal") / "m.png"
    save_mask(path, labels, palette=flat)
    back, info = read_mask(path, expected_size=(size[1], size[0]))
    assert np.array_equal(back, labels)
    assert info.kind == "palette" and info.ids == tuple(sorted(set(labels.flat) - {0}))
    assert info.palette[:768] == flat


@settings(max_examples=40, deadline=None)
@given(size=sizes, top=st.integers(1, 254), seed=st.integers(0, 2**16))
def test_grey_masks_are_ids_or_binary(tmp_path_factory, size, top, seed):
    rng = np.random.default_rng(seed)
    folder = tmp_path_factory.mktemp("grey")
    ids = rng.integers(0, top + 1, size=size).astype(np.uint8)
    Image.fromarray(ids).save(folder / "ids.png")
    back, info = read_mask(folder / "ids.png")
    assert np.array_equal(back, ids) and info.kind == "ids"
    binary = (rng.random(size) > 0.5).astype(np.uint8) * 255
    binary.flat[0] = 255
    Image.fromarray(binary).save(folder / "binary.png")
    back, info = read_mask(folder / "binary.png")
    assert info.kind == "binary" and np.array_equal(back, binary // 255) and info.ids == (1,)


@settings(max_examples=40, deadline=None)
@given(
    size=sizes,
    colours=st.sets(st.tuples(*[st.integers(0, 255)] * 3), min_size=1, max_size=6),
    seed=st.integers(0, 2**16),
)
def test_colour_masks_map_each_colour_to_one_id(tmp_path_factory, size, colours, seed):
    rng = np.random.default_rng(seed)
    colours = sorted(colours)
    choice = rng.integers(0, len(colours), size=size)
    rgb = np.array(colours, dtype=np.uint8)[choice]
    path = tmp_path_factory.mktemp("rgb") / "m.png"
    Image.fromarray(rgb).save(path)
    with pytest.warns(MaskWarning, match="colour mask") if any(c != (0, 0, 0) for c in colours) else _nothing():
        labels, info = read_mask(path)
    assert info.kind == "rgb"
    for n, colour in enumerate(colours):  # the same colour gives the same id, black is background
        values = set(labels[choice == n].flat)
        if not values:
            continue
        assert len(values) == 1
        value = values.pop()
        assert (value == 0) == (colour == (0, 0, 0))
        if value:
            assert info.colours[value] == colour
    assert len(set(info.colours.values())) == len(info.colours)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# ------------------------------------------------------------- real DAVIS 2016
@needs_davis_mini
def test_real_davis2016_sequences_read_and_check_cleanly():
    dataset = open_dataset("davis2016", DAVIS_MINI)
    assert dataset.videos == ["blackswan", "car-shadow", "dog"]
    lengths = {"blackswan": 50, "car-shadow": 40, "dog": 60}
    for video in dataset:
        assert len(video) == lengths[video.name] and video.binary_output
        frame = next(iter(video))
        assert frame.image.shape == (480, 854, 3) and frame.mask_info.kind == "binary"
        assert frame.mask_info.ids == (1,)
    report = check.check_dataset(DAVIS_MINI, "davis", progress=False, quick=True)
    assert not report.all_problems
    assert [v.annotated for v in report.videos] == [50, 40, 60]
    assert isinstance(DAVIS2016(DAVIS_MINI), DAVIS2016)


def test_davis2016_input_mask_with_a_stray_value_is_one_object_with_a_warning(tmp_path):
    import warnings

    from remn.data.masks import DataWarning
    from remn.data.vos import DAVIS2016

    frames = tmp_path / "JPEGImages" / "480p" / "swan"
    masks = tmp_path / "Annotations" / "480p" / "swan"
    for index in range(3):
        save_image(frames / f"{index:05d}.jpg", np.full((24, 32, 3), 90, np.uint8))
    first = np.zeros((24, 32), np.uint8)
    first[4:12, 4:12] = 255
    first[5, 5] = 128  # a stray value, as image editors leave
    Image.fromarray(first, mode="L").save(masks.mkdir(parents=True) or masks / "00000.png")
    video = DAVIS2016(tmp_path).video("swan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels, info = video.read_input_mask(0)
    assert info.ids == (1,) and labels[4:12, 4:12].all() and labels.sum() == 64  # every non-zero pixel
    assert len(caught) == 1 and issubclass(caught[0].category, DataWarning)
    assert "00000.png" in str(caught[0].message) and "128" in str(caught[0].message)
