"""`remn segment`: a generated mp4 and a frame folder in, masks and an overlay video out; bad input refused."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from remn.data.masks import read_mask, save_image, save_mask
from remn.predictor import Predictor
from remn.segment import main as segment

HEIGHT, WIDTH, FRAMES = 48, 64, 8


def _frames(frames: int = FRAMES) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return [np.roll(base, t, axis=1) for t in range(frames)]


def _square(top: int, left: int, size: int, value: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    out = np.zeros((height, width), dtype=np.int64)
    out[top:top + size, left:left + size] = value
    return out


@pytest.fixture()
def mp4(tmp_path) -> Path:
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (WIDTH, HEIGHT))
    for frame in _frames():
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture()
def masks(tmp_path) -> dict[str, Path]:
    out = {}
    for name, labels in {"first": _square(5, 5, 16, 1), "late": _square(28, 40, 14, 4),
                         "empty": np.zeros((HEIGHT, WIDTH), dtype=np.int64),
                         "small": _square(2, 2, 5, 1, 24, 32)}.items():
        out[name] = tmp_path / f"{name}.png"
        save_mask(out[name], labels)
    return out


def _video_frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened()
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def test_video_file_gives_one_mask_per_frame_and_an_overlay(mp4, masks, tmp_path):
    out = tmp_path / "out"
    code = segment([str(mp4), "--mask", str(masks["first"]), "--mask-at", f"5:{masks['late']}",
                    "--output", str(out), "--overlay", "--size", "-1", "--quiet", "--device", "cpu"])
    assert code == 0
    files = sorted((out / "masks").iterdir())
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(FRAMES)]
    for index, path in enumerate(files):
        labels, info = read_mask(path)
        assert info.kind == "palette" and info.size == (WIDTH, HEIGHT)
        if index < 5:
            assert 4 not in info.ids  # the object given at frame 5 is absent before it
        if index == 5:
            assert (labels[28:42, 40:54] == 4).mean() > 0.99
    record = json.loads((out / "segment.json").read_text())
    assert record["frames"] == FRAMES and record["objects"] == [1, 4]
    assert _video_frame_count(out / "overlay.mp4") == FRAMES
    assert not any(p.name.startswith(".partial") for p in out.iterdir())


def test_frame_folder_outputs_keep_the_input_names(masks, tmp_path):
    folder = tmp_path / "frames"
    names = [f"img{i}" for i in range(1, 7)]  # img1 .. img6, natural order
    for name, frame in zip(names, _frames(6)):
        save_image(folder / f"{name}.jpg", frame)
    out = tmp_path / "out"
    assert segment([str(folder), "--mask", str(masks["first"]), "--output", str(out), "--size", "32",
                    "--quiet", "--device", "cpu"]) == 0
    assert sorted(p.stem for p in (out / "masks").iterdir()) == sorted(names)
    labels, info = read_mask(out / "masks" / "img1.png")
    assert labels.shape == (HEIGHT, WIDTH)  # processed at 32, written at the input size


def _error(capsys, argv) -> str:
    assert segment(argv) == 1
    return capsys.readouterr().err


def test_bad_inputs_are_refused_with_specific_errors_and_nothing_written(mp4, masks, tmp_path, capsys):
    out = tmp_path / "out"
    base = ["--output", str(out), "--quiet", "--device", "cpu"]
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    err = _error(capsys, [str(not_video), "--mask", str(masks["first"]), *base])
    assert "cannot decode this video" in err and "notes.mp4" in err
    err = _error(capsys, [str(mp4), "--mask", str(masks["small"]), *base])
    assert "mask is 32x24 but the frames are 64x48" in err and "--resize-masks" in err
    err = _error(capsys, [str(mp4), "--mask", str(masks["first"]), "--mask-at", f"{FRAMES}:{masks['late']}", *base])
    assert f"mask given for frame {FRAMES}, but the video has {FRAMES} frames" in err
    err = _error(capsys, [str(mp4), "--mask", str(masks["empty"]), *base])
    assert "no object pixels" in err and "empty.png" in err
    assert not out.exists()  # nothing written by any refused run


def test_resize_masks_and_output_reuse(mp4, masks, tmp_path, capsys):
    out = tmp_path / "out"
    base = [str(mp4), "--output", str(out), "--quiet", "--device", "cpu", "--size", "32"]
    assert segment([*base, "--mask", str(masks["small"]), "--resize-masks"]) == 0
    first = sorted((out / "masks").iterdir())
    err = _error(capsys, [*base, "--mask", str(masks["first"])])
    assert "already holds results of another run" in err and "--overwrite" in err
    assert sorted((out / "masks").iterdir()) == first  # the earlier results are intact
    assert segment([*base, "--mask", str(masks["first"]), "--overwrite"]) == 0


def test_predictor_api_feeds_frames_and_masks():
    predictor = Predictor.load(None, overrides=["inference.size=-1"], device="cpu")
    frames = _frames(4)
    labels = predictor.step(frames[0], _square(5, 5, 16, 7))
    assert labels.shape == (HEIGHT, WIDTH) and (labels[5:21, 5:21] == 7).all()
    for frame in frames[1:]:
        labels = predictor.step(frame)
        assert set(np.unique(labels)) <= {0, 7}
    assert predictor.object_ids == [7]
