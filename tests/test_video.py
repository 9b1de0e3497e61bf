"""Video files read with PyAV (counts checked against the container, FFmpeg kept quiet, seeking),
frame folders' header check, and the H.264 overlay writer. Every video is made in the test."""

from __future__ import annotations

import logging
import sys
from fractions import Fraction
from pathlib import Path

import av
import av.logging
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from remn.data.masks import NO_FRAMES, SIZE_MISMATCH, UNREADABLE, DataError, DataWarning, save_image
from remn.data.synthetic import generate_video
from remn.data.video import ImageFolderFrames, play_order
from remn.data.video_file import ESTIMATE_SLACK, TRUNCATED_VIDEO, H264Writer, VideoFileFrames, _ffmpeg_log, _ffmpeg_says

WIDTH, HEIGHT, FRAMES = 64, 48, 20


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    """20 generated frames, 64x48: textured objects moving over a textured background, with
    per-frame noise, so that every frame costs about the same number of bytes."""
    return generate_video(3, frames=FRAMES, height=HEIGHT, width=WIDTH).frames


def write_video(
    path: Path,
    frames,
    *,
    codec: str = "libx264rgb",
    options: dict | None = None,
    container_options: dict | None = None,
    rate=10,
    format: str | None = None,
    rotation: int | None = None,
) -> Path:
    """Frames encoded with PyAV. The default, libx264rgb at qp 0 without B-frames, is lossless:
    frames decode to exactly what was written, in file order."""
    lossless = codec == "libx264rgb"
    options = {**({"qp": "0", "bf": "0"} if lossless else {}), **(options or {})}
    with av.open(str(path), "w", format=format, options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "rgb24" if lossless else "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def faststart_mp4(path: Path, frames, **options) -> Path:
    """An mp4 with its index (moov) before its data, as streaming sites and phones write them."""
    return write_video(path, frames, container_options={"movflags": "+faststart"}, **options)


def samples(path: Path) -> list[tuple[int, int]]:
    """(byte offset, size) of each video sample, from the mp4 index."""
    with av.open(str(path)) as container:
        return [(entry.pos, entry.size) for entry in container.streams.video[0].index_entries]


def cut(path: Path, fraction: float = 0.5) -> tuple[Path, int]:
    """The file cut at ``fraction`` of its bytes, and how many samples lie wholly before the cut
    (without B-frames, exactly the frames that can decode)."""
    data = path.read_bytes()
    end = int(len(data) * fraction)
    whole = sum(1 for offset, size in samples(path) if offset + size <= end)
    out = path.with_name(f"{path.stem}_cut{path.suffix}")
    out.write_bytes(data[:end])
    return out, whole


@pytest.fixture()
def loud_root_logger():
    """An application that configured logging to the terminal: what PyAV forwards would print."""
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)


def _assert_silent(capfd) -> None:
    out, err = capfd.readouterr()
    assert out == "" and err == "", f"something reached the terminal: {out!r} {err!r}"


# ---------------------------------------------------------------------- good files
def test_good_file_gives_every_frame_as_written(tmp_path, clip):
    path = faststart_mp4(tmp_path / "clip.mp4", clip)
    frames = VideoFileFrames(path)
    assert len(frames) == FRAMES and frames.declared == FRAMES and frames.declared_exact
    assert frames.fps == pytest.approx(10) and (frames.width, frames.height) == (WIDTH, HEIGHT)
    assert frames.names[:2] == ["00000", "00001"] and not frames.truncated
    decoded = [image for _, image in frames.iterate(range(FRAMES))]
    assert all(image.dtype == np.uint8 and image.shape == (HEIGHT, WIDTH, 3) for image in decoded)
    assert all(np.array_equal(image, original) for image, original in zip(decoded, clip))
    assert np.array_equal(frames.read(13), clip[13])


def test_iterating_in_the_x3_order_gives_what_read_gives(tmp_path):
    """B-frames (pts out of decode order) and a keyframe every 4 frames; a window of 3 frames
    makes the backward leg seek."""
    frames_in = generate_video(5, frames=FRAMES, height=HEIGHT, width=WIDTH).frames
    path = write_video(tmp_path / "clip.mp4", frames_in, codec="libx264", options={"g": "4", "bf": "2"})
    frames = VideoFileFrames(path, window_frames=3)
    assert frames._keys == [0, 4, 8, 12, 16] and frames._seekable
    order = play_order(FRAMES, 3)
    visited = list(frames.iterate(order))
    assert [index for index, _ in visited] == order
    with av.open(str(path)) as container:  # an independent, plain sequential decode
        reference = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(reference) == FRAMES
    for index, image in visited:
        assert np.array_equal(image, reference[index]), index
    assert all(np.array_equal(frames.read(i), reference[i]) for i in (0, 7, 19))


@pytest.fixture(scope="module")
def gop_file(tmp_path_factory, clip) -> Path:
    path = tmp_path_factory.mktemp("gop") / "clip.mp4"
    return write_video(path, clip, options={"g": "5"})


@settings(max_examples=25, deadline=None)
@given(order=st.lists(st.integers(0, FRAMES - 1), min_size=1, max_size=30), window=st.integers(1, 6))
def test_any_order_gives_the_frames_written(gop_file, clip, order, window):
    frames = VideoFileFrames(gop_file, window_frames=window)
    got = list(frames.iterate(order))
    assert [index for index, _ in got] == order
    assert all(np.array_equal(image, clip[index]) for index, image in got)


def test_edit_list_that_hides_frames_is_not_a_truncation(tmp_path, clip):
    """``ffmpeg -ss 0.3 -c copy``-style files: the container holds 20 samples, an edit list hides
    the first 3 (the stretch before the cut point, kept so that the keyframe is there)."""
    source = write_video(tmp_path / "source.mp4", clip, options={"g": "5"})
    trimmed = tmp_path / "trimmed.mp4"
    with av.open(str(source)) as src, av.open(str(trimmed), "w") as dst:
        stream_in = src.streams.video[0]
        stream_out = dst.add_stream_from_template(stream_in)
        shift = 3 * int(1 / (stream_in.time_base * stream_in.average_rate))
        for packet in src.demux(stream_in):
            if packet.dts is None:
                continue
            packet.pts -= shift
            packet.dts -= shift
            packet.stream = stream_out
            dst.mux(packet)
    with av.open(str(trimmed)) as container:
        assert container.streams.video[0].frames == FRAMES  # what a naive check would compare with
    frames = VideoFileFrames(trimmed)
    assert len(frames) == frames.declared == FRAMES - 3 and not frames.truncated
    assert all(np.array_equal(image, clip[i + 3]) for i, image in frames.iterate(range(len(frames))))


@pytest.mark.parametrize(
    "format, codec, suffix",
    [
        ("matroska", "libx264", "mkv"),
        ("matroska", "mpeg4", "mkv"),
        ("webm", "libvpx-vp9", "webm"),
        ("avi", "mpeg4", "avi"),
        ("mov", "libx264", "mov"),
        ("mp4", "libx264", "mp4"),
    ],
)
@pytest.mark.parametrize("rate", [Fraction(30000, 1001), Fraction(25), Fraction(12)])
@pytest.mark.parametrize("count", [1, 7, 20])
def test_good_files_are_never_refused(tmp_path, clip, format, codec, suffix, rate, count):
    """Containers without a frame count (Matroska, WebM) give duration x rate; over these files
    it is exact, so a slack of ESTIMATE_SLACK (1) frame only absorbs rounding."""
    path = write_video(tmp_path / f"clip.{suffix}", clip[:count], codec=codec, rate=rate, format=format)
    frames = VideoFileFrames(path)
    assert len(frames) == count and not frames.truncated
    assert frames.declared is None or abs(frames.declared - count) <= (0 if frames.declared_exact else ESTIMATE_SLACK)
    assert frames.fps == pytest.approx(float(rate), rel=1e-3)


def test_rotation_metadata_is_applied(tmp_path, clip):
    path = write_video(tmp_path / "portrait.mp4", clip[:3], rotation=90)
    frames = VideoFileFrames(path)
    assert frames.rotation == 90 and (frames.width, frames.height) == (HEIGHT, WIDTH)
    image = frames.read(1)
    assert image.shape == (WIDTH, HEIGHT, 3) and image.flags.c_contiguous
    assert np.array_equal(image, np.rot90(clip[1]))  # a quarter turn counter-clockwise, as players show it


# ---------------------------------------------------------------------- bad files
def test_truncated_faststart_mp4_is_refused_naming_where_decoding_stops(tmp_path, clip, capfd, loud_root_logger):
    path, whole = cut(faststart_mp4(tmp_path / "clip.mp4", clip))
    assert 0 < whole < FRAMES
    with pytest.raises(DataError) as caught:
        VideoFileFrames(path)
    error = caught.value
    message = str(error)
    assert error.code == TRUNCATED_VIDEO and error.frame == whole
    assert message.startswith(f"{path}: frame {whole}: decoding stops here (FFmpeg: ")
    assert "the container declares 20 frames" in message and "re-download or re-export" in message
    assert f"--allow-truncated to segment the {whole} frames that decode" in message
    assert "\n" not in message
    _assert_silent(capfd)
    assert av.logging.get_level() is None  # PyAV's logging is off again


def test_truncated_video_with_allow_truncated_keeps_the_frames_that_decode(tmp_path, clip, capfd):
    path, whole = cut(faststart_mp4(tmp_path / "clip.mp4", clip))
    with pytest.warns(DataWarning, match=rf"only {whole} frames decode, the container declares 20 frames \("):
        frames = VideoFileFrames(path, allow_truncated=True)
    assert len(frames) == whole and frames.truncated
    decoded = list(frames.iterate(play_order(whole, 3)))
    assert all(np.array_equal(image, clip[index]) for index, image in decoded)
    _assert_silent(capfd)


def test_corrupt_packet_in_the_middle_stops_decoding_there(tmp_path, clip, capfd, loud_root_logger):
    path = faststart_mp4(tmp_path / "clip.mp4", clip)
    offset, size = samples(path)[10]
    data = bytearray(path.read_bytes())
    garbage = np.random.default_rng(0).integers(0, 256, 32, np.uint8).tobytes()
    data[offset + size // 4 : offset + size // 4 + 32] = garbage  # inside frame 10's data
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as caught:
        VideoFileFrames(path)
    assert caught.value.code == TRUNCATED_VIDEO and caught.value.frame == 10
    assert "a damaged frame; FFmpeg: " in str(caught.value) and "declares 20 frames" in str(caught.value)
    _assert_silent(capfd)
    with pytest.warns(DataWarning, match="only 10 frames decode"):
        frames = VideoFileFrames(path, allow_truncated=True)
    assert all(np.array_equal(image, clip[i]) for i, image in frames.iterate(range(len(frames))))
    _assert_silent(capfd)


def test_video_whose_first_frame_is_lost_is_refused_even_when_allowed(tmp_path, clip):
    path, _ = cut(faststart_mp4(tmp_path / "clip.mp4", clip), fraction=0.02)
    for allow in (False, True):
        with pytest.raises(DataError) as caught:
            VideoFileFrames(path, allow_truncated=allow)
        assert caught.value.code == TRUNCATED_VIDEO and caught.value.frame == 0
        assert "--allow-truncated" not in str(caught.value)


def test_matroska_cut_short_is_refused_against_its_duration(tmp_path, clip):
    path, _ = cut(write_video(tmp_path / "clip.mkv", clip, format="matroska"), fraction=0.6)
    with pytest.raises(DataError) as caught:
        VideoFileFrames(path)
    assert caught.value.code == TRUNCATED_VIDEO
    assert "the container's duration and frame rate give about 20 frames" in str(caught.value)


def test_mp4_cut_before_its_index_names_the_ffmpeg_reason(tmp_path, clip, capfd, loud_root_logger):
    path, _ = cut(write_video(tmp_path / "clip.mp4", clip))  # index at the end: gone
    with pytest.raises(DataError) as caught:
        VideoFileFrames(path)
    assert caught.value.code == UNREADABLE
    assert "FFmpeg cannot decode this video (moov atom not found)" in str(caught.value)
    _assert_silent(capfd)


@pytest.mark.parametrize(
    "name, content", [("notes.mp4", b"not a video"), ("noise.mkv", bytes(range(256)) * 40), ("empty.avi", b"")]
)
def test_non_video_file_is_unreadable(tmp_path, capfd, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as caught:
        VideoFileFrames(path)
    assert caught.value.code == UNREADABLE and str(caught.value).startswith(str(path))
    _assert_silent(capfd)


def test_missing_video_file(tmp_path):
    with pytest.raises(DataError) as caught:
        VideoFileFrames(tmp_path / "nowhere.mp4")
    assert caught.value.code == UNREADABLE and "not found" in str(caught.value)


# ---------------------------------------------------------------------- frame folders
def _folder(tmp_path, clip, suffix=".jpg", count=6) -> list[Path]:
    paths = [tmp_path / f"{i:05d}{suffix}" for i in range(count)]
    for path, image in zip(paths, clip):
        save_image(path, image)
    return paths


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_check_headers_accepts_good_frames(tmp_path, clip, suffix):
    paths = _folder(tmp_path, clip, suffix)
    with open(paths[2], "ab") as handle:  # data after the end marker, as some cameras write
        handle.write(b"\0" * 4000)
    assert ImageFolderFrames(paths).check_headers() == (WIDTH, HEIGHT)


@pytest.mark.parametrize("suffix, kind", [(".jpg", "JPEG"), (".png", "PNG")])
def test_check_headers_finds_a_truncated_frame(tmp_path, clip, suffix, kind):
    paths = _folder(tmp_path, clip, suffix)
    data = paths[3].read_bytes()
    paths[3].write_bytes(data[: len(data) * 2 // 3])
    Image.open(paths[3]).close()  # the header alone still opens
    with pytest.raises(DataError) as caught:
        ImageFolderFrames(paths).check_headers()
    assert caught.value.code == UNREADABLE and caught.value.frame == "00003"
    assert f"truncated {kind}: the file ends before" in str(caught.value) and str(paths[3]) in str(caught.value)


def test_check_headers_finds_garbage_and_other_sizes(tmp_path, clip):
    paths = _folder(tmp_path, clip)
    paths[4].write_bytes(b"this is no image")
    with pytest.raises(DataError) as caught:
        ImageFolderFrames(paths).check_headers()
    assert caught.value.code == UNREADABLE and caught.value.frame == "00004"
    save_image(paths[4], clip[4][:, :50])
    with pytest.raises(DataError) as caught:
        ImageFolderFrames(paths).check_headers()
    assert caught.value.code == SIZE_MISMATCH and caught.value.frame == "00004"
    assert f"frame 4 is 50x{HEIGHT} but frame 0 (00000.jpg) is {WIDTH}x{HEIGHT}" in str(caught.value)
    assert str(paths[4]) in str(caught.value)
    with pytest.raises(DataError) as caught:
        ImageFolderFrames([]).check_headers()
    assert caught.value.code == NO_FRAMES


# ---------------------------------------------------------------------- the writer
def test_h264_writer_makes_a_browser_playable_mp4(tmp_path, clip):
    odd = [frame[:47, :63] for frame in clip]  # odd sizes: padded to 64x48
    path = tmp_path / ".partial-overlay.mp4"  # a staging name, as callers pass
    with H264Writer(path, 10, (63, 47)) as video:
        assert video.coded_size == (64, 48)
        for frame in odd:
            video.write(frame)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (64, 48) and stream.frames == FRAMES
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    assert len(decoded) == FRAMES
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # index first: plays while it downloads
    error = np.mean([np.abs(d[:47, :63].astype(int) - f).mean() for d, f in zip(decoded, odd)])
    assert error < 6  # noisy textures through 4:2:0 at crf 20
    # the padding repeats the last row and column (a black pad would differ by the texture's brightness)
    first = decoded[0].astype(int)
    assert np.abs(first[47, :63] - odd[0][46]).mean() < 6 and np.abs(first[:47, 63] - odd[0][:, 62]).mean() < 6
    frames = VideoFileFrames(path)
    assert len(frames) == FRAMES and frames.fps == pytest.approx(10)


def test_h264_writer_colours_survive(tmp_path):
    """The file is tagged BT.709 and converted with BT.709: saturated colours come back."""
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (40, 40, 40), (250, 250, 250)]
    path = tmp_path / "colours.mp4"
    with H264Writer(path, Fraction(30000, 1001), (32, 32)) as video:
        for colour in colours:
            video.write(np.full((32, 32, 3), colour, np.uint8))
    frames = VideoFileFrames(path)
    assert frames.rate == Fraction(30000, 1001) and len(frames) == len(colours)
    for (_, image), colour in zip(frames.iterate(range(len(colours))), colours):
        assert np.abs(image.reshape(-1, 3).mean(0) - colour).max() < 4, colour


def test_h264_writer_refuses_frames_of_another_size(tmp_path):
    with H264Writer(tmp_path / "v.mp4", 25, (32, 24)) as video:
        with pytest.raises(ValueError, match=r"\(24, 32, 3\) uint8"):
            video.write(np.zeros((24, 30, 3), np.uint8))
        video.write(np.zeros((24, 32, 3), np.uint8))
    assert len(VideoFileFrames(tmp_path / "v.mp4")) == 1


def test_each_message_quotes_its_own_ffmpeg_line(capfd, loud_root_logger):
    """PyAV holds back a line that repeats the previous one and releases it with the next,
    different line, which would put one file's FFmpeg text into the next file's message."""
    said = []
    for _ in range(2):
        with _ffmpeg_log() as mark:
            av.logging.log(av.logging.ERROR, "demo", "the same complaint")
            said.append(_ffmpeg_says(mark))
    with _ffmpeg_log() as mark:
        av.logging.log(av.logging.ERROR, "demo", "another complaint")
        said.append(_ffmpeg_says(mark))
    assert said == ["the same complaint", "the same complaint", "another complaint"]
    _assert_silent(capfd)
    assert av.logging.get_level() is None
