"""`remn segment`: a generated mp4 and a frame folder in, masks and an overlay video out; bad input refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from remn.cli.segment import main as segment
from remn.data.masks import read_mask, save_image, save_mask
from remn.predictor import Predictor

HEIGHT, WIDTH, FRAMES = 48, 64, 8


def _frames(frames: int = FRAMES) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return [np.roll(base, t, axis=1) for t in range(frames)]


def _square(top: int, left: int, size: int, value: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    out = np.zeros((height, width), dtype=np.int64)
    out[top : top + size, left : left + size] = value
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
    for name, labels in {
        "first": _square(5, 5, 16, 1),
        "late": _square(28, 40, 14, 4),
        "empty": np.zeros((HEIGHT, WIDTH), dtype=np.int64),
        "small": _square(2, 2, 5, 1, 24, 32),
    }.items():
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
    code = segment(
        [
            str(mp4),
            "--mask",
            str(masks["first"]),
            "--mask-at",
            f"5:{masks['late']}",
            "--output",
            str(out),
            "--overlay",
            "--size",
            "-1",
            "--quiet",
            "--device",
            "cpu",
        ]
    )
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
    import av

    with av.open(str(out / "overlay.mp4")) as container:  # H.264 in mp4: browsers play it
        assert container.streams.video[0].codec_context.name == "h264"
    assert not any(p.name.startswith(".") and p.name != ".remn-output.json" for p in out.iterdir())
    page = (out / "overlay.html").read_text(encoding="utf-8")  # beside the video, showing it and the run
    assert '<video src="overlay.mp4" controls' in page and not re.search(r"https?:", page)
    assert f"<td>{FRAMES}</td>" in page and f"{WIDTH} x {HEIGHT}" in page and "<td>1, 4</td>" in page


def test_frame_folder_outputs_keep_the_input_names(masks, tmp_path):
    folder = tmp_path / "frames"
    names = [f"img{i}" for i in range(1, 7)]  # img1 .. img6, natural order
    for name, frame in zip(names, _frames(6)):
        save_image(folder / f"{name}.jpg", frame)
    out = tmp_path / "out"
    assert (
        segment(
            [
                str(folder),
                "--mask",
                str(masks["first"]),
                "--output",
                str(out),
                "--size",
                "32",
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert sorted(p.stem for p in (out / "masks").iterdir()) == sorted(names)
    assert not (out / "overlay.html").exists()  # no overlay, no page
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


# ------------------------------------------------------------------ data safety (issue 12)
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from conftest import REPO  # noqa: E402


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture()
def earlier(mp4, masks, tmp_path) -> tuple[Path, list[str], dict[str, bytes]]:
    """An output folder holding an earlier run's results, the command line that made it, and its files."""
    out = tmp_path / "earlier"
    base = [str(mp4), "--mask", str(masks["first"]), "--output", str(out), "--quiet", "--device", "cpu", "--size", "32"]
    assert segment(base) == 0
    return out, base, _snapshot(out)


def test_hand_drawn_masks_in_the_output_folder_are_never_replaced(mp4, masks, tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "masks").mkdir(parents=True)
    save_mask(out / "masks" / "00000.png", _square(1, 1, 9, 3))
    drawn = _snapshot(out)
    for extra in ([], ["--overwrite"]):
        err = _error(
            capsys,
            [str(mp4), "--mask", str(masks["first"]), "--output", str(out), "--quiet", "--device", "cpu", *extra],
        )
        assert "did not write (masks/)" in err and "Traceback" not in err
    assert _snapshot(out) == drawn


def test_failures_with_overwrite_keep_the_earlier_results(earlier, tmp_path, capsys, monkeypatch):
    out, base, before = earlier
    assert segment([*base, "--overwrite", "memory.no_such_key=1"]) == 2  # bad override
    assert "memory.no_such_key" in capsys.readouterr().err
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    assert segment([*base, "--overwrite", "--checkpoint", str(bad)]) == 1
    assert "cannot read checkpoint" in capsys.readouterr().err
    assert segment([*base, "--overwrite", "--config", "no_such_config"]) == 2
    err = capsys.readouterr().err
    assert "config file not found: no_such_config" in err and "stcn" in err  # lists the project's configs
    import remn.inference.own_video as module

    def full(path, labels, palette=None):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(module, "save_mask", full)  # the disk fills up half-way
    err = _error(capsys, [*base, "--overwrite"])
    assert "No space left on device; free some space or choose another --output" in err
    assert "Traceback" not in err
    assert _snapshot(out) == before and not (out / ".remn-staging").exists()


def test_no_gpu_and_overlapping_outputs_are_one_line_each(mp4, masks, tmp_path, capsys):
    if not __import__("torch").cuda.is_available():
        assert (
            segment(
                [
                    str(mp4),
                    "--mask",
                    str(masks["first"]),
                    "--output",
                    str(tmp_path / "o"),
                    "--quiet",
                    "--device",
                    "cuda",
                ]
            )
            == 2
        )
        err = capsys.readouterr().err
        assert err.count("\n") <= 2 and "no CUDA GPU is usable here" in err and "--device cpu" in err
    folder = tmp_path / "frames"
    for index, frame in enumerate(_frames(3)):
        save_image(folder / f"{index}.jpg", frame)
    for output, what in (
        (folder, "is the input"),
        (folder / "out", "inside the input"),
        (tmp_path, "contains the input"),
    ):
        err = _error(
            capsys, [str(folder), "--mask", str(masks["first"]), "--output", str(output), "--quiet", "--device", "cpu"]
        )
        assert what in err
    assert sorted(p.name for p in folder.iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]


def test_overrides_and_config_names_anywhere_on_the_line(mp4, masks, tmp_path):
    out = tmp_path / "out"
    assert (
        segment(
            [
                "inference.size=32",
                str(mp4),
                "memory.capacity=4",
                "--mask",
                str(masks["first"]),
                "--config",
                "stcn",
                "--output",
                str(out),
                "runtime.seed=3",
                "--quiet",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert json.loads((out / "segment.json").read_text())["frames"] == FRAMES


@pytest.mark.slow
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_in_the_middle_keeps_the_earlier_results(earlier, tmp_path, signum, status):
    out, base, before = earlier
    folder = tmp_path / "frames"
    for index, frame in enumerate(_frames(200)):
        save_image(folder / f"{index:04d}.png", frame)
    command = [sys.executable, "-m", "remn", "segment", str(folder), *base[1:], "--size", "-1", "--overwrite"]
    child = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    staged = out / ".remn-staging" / "masks"
    deadline = time.monotonic() + 120
    while not (staged.is_dir() and len(list(staged.iterdir())) >= 10):  # well into the video
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.05)
    child.send_signal(signum)
    _, err = child.communicate(timeout=60)
    assert child.returncode == status
    assert "Traceback" not in err and "no results were replaced" in err
    assert _snapshot(out) == before and not (out / ".remn-staging").exists()


def test_a_video_cut_short_is_refused_unless_allowed(masks, tmp_path, capsys):
    from test_video import cut, faststart_mp4

    from remn.data.synthetic import generate_video

    whole = faststart_mp4(tmp_path / "whole.mp4", generate_video(3, frames=20, height=HEIGHT, width=WIDTH).frames)
    broken, decodable = cut(whole, 0.5)
    assert 0 < decodable < 20
    out = tmp_path / "out"
    base = [
        str(broken),
        "--mask",
        str(masks["first"]),
        "--output",
        str(out),
        "--quiet",
        "--device",
        "cpu",
        "--size",
        "32",
    ]
    err = _error(capsys, base)
    assert "whole_cut.mp4" in err and f"frame {decodable}: decoding stops here" in err
    assert "the container declares 20 frames" in err and "--allow-truncated" in err
    assert "[mov," not in err and "Traceback" not in err  # no raw FFmpeg or Python lines
    assert not out.exists()
    assert segment([*base, "--allow-truncated"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {broken}: only {decodable} frames decode" in err
    assert len(list((out / "masks").iterdir())) == decodable


def test_a_broken_frame_in_a_folder_is_found_before_anything_is_written(masks, tmp_path, capsys):
    folder = tmp_path / "frames"
    for index, frame in enumerate(_frames(6)):
        save_image(folder / f"{index}.jpg", frame)
    data = (folder / "4.jpg").read_bytes()
    (folder / "4.jpg").write_bytes(data[: len(data) // 2])  # cut short: the header still reads
    err = _error(
        capsys,
        [str(folder), "--mask", str(masks["first"]), "--output", str(tmp_path / "out"), "--quiet", "--device", "cpu"],
    )
    assert "4.jpg" in err and "truncated JPEG" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_an_anti_aliased_first_mask_is_refused_and_repaired_on_request(mp4, tmp_path, capsys):
    from PIL import Image, ImageDraw

    big = Image.new("L", (WIDTH * 4, HEIGHT * 4), 0)  # two objects drawn at 4x, shrunk with area averaging
    draw = ImageDraw.Draw(big)
    draw.ellipse((20, 20, 100, 100), fill=255)
    draw.ellipse((140, 60, 240, 170), fill=128)
    soft = tmp_path / "soft.png"
    big.resize((WIDTH, HEIGHT), Image.BOX).save(soft)
    out = tmp_path / "out"
    base = [str(mp4), "--mask", str(soft), "--output", str(out), "--quiet", "--device", "cpu", "--size", "32"]
    err = _error(capsys, base)
    assert "soft.png" in err and "[soft-mask]" in err and "--mask-threshold" in err and "--mask-snap" in err
    assert not out.exists()
    assert segment([*base, "--mask-snap"]) == 0
    err = capsys.readouterr().err
    assert "snapped to its 3 main grey levels (0, 128, 255)" in err and "-> 2 objects" in err
    assert json.loads((out / "segment.json").read_text())["objects"] == [128, 255]
    assert segment([*base, "--mask-threshold", "0.9", "--overwrite"]) == 0
    assert json.loads((out / "segment.json").read_text())["objects"] == [1]
    assert segment([*base, "--mask-threshold", "1.5", "--overwrite"]) == 2  # out of (0, 1]
    with pytest.raises(SystemExit) as both:  # argparse: the two repairs exclude each other
        segment([*base, "--mask-threshold", "0.5", "--mask-snap", "--overwrite"])
    assert both.value.code == 2


def test_save_scores_beside_the_masks(mp4, masks, tmp_path):
    from remn.inference.scores import load_scores

    out = tmp_path / "out"
    argv = [str(mp4), "--mask", str(masks["first"]), "--mask-at", f"5:{masks['late']}", "--output", str(out)]
    assert segment([*argv, "--size", "-1", "--quiet", "--device", "cpu", "--save-scores"]) == 0
    names = sorted(p.stem for p in (out / "masks").iterdir())
    assert sorted(p.stem for p in (out / "scores").iterdir()) == names
    for name in names:
        labels, _ = read_mask(out / "masks" / f"{name}.png")
        with np.load(out / "scores" / f"{name}.npz") as data:  # the documented way to read them
            assert data["scores"].dtype == np.uint8 and data["ids"].dtype == np.int64
        prob, ids = load_scores(out / "scores" / f"{name}.npz")
        assert ids.tolist() == ([1, 4] if int(name) >= 5 else [1]) and prob.shape[1:] == (HEIGHT, WIDTH)
        full = np.concatenate([1.0 - prob.sum(0, keepdims=True), prob])
        channel = np.select([labels == i for i in ids], list(range(1, len(ids) + 1)), 0)
        picked = np.take_along_axis(full, channel[None], 0)[0]
        assert (picked >= full.max(0) - (len(ids) + 1) / 255).all()  # each mask pixel's object wins, up to rounding
    assert json.loads((out / "segment.json").read_text())["scores"] is True
