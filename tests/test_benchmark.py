"""The benchmark (remn/benchmark/, ``remn benchmark``, scripts/benchmark.py) end to end on a
tiny setting: every run measured in its own worker, ratios printed, JSON and figures written;
the generated video is the beginning of its longer versions."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from remn.benchmark import BenchmarkClip

from conftest import REPO


def test_longer_video_starts_with_the_shorter_one():
    short, long = BenchmarkClip(40, 56, 3, frames=20, seed=4), BenchmarkClip(40, 56, 3, frames=60, seed=4)
    for t in (0, 7, 19):
        frame = short.frame(t)
        assert frame.shape == (3, 40, 56) and frame.dtype == torch.uint8
        assert np.array_equal(frame.numpy(), long.frame(t).numpy())
        assert np.array_equal(short.labels(t), long.labels(t))
    labels = short.labels(0)
    assert set(np.unique(labels)) == {0, 1, 2, 3}  # every object is in the first frame


@pytest.mark.slow
def test_quick_suite_measures_both_modes_at_both_lengths(tmp_path):
    command = [
        sys.executable,
        "-m",
        "remn",
        "benchmark",
        "--quick",
        "--frames",
        "6",
        "--height",
        "48",
        "--width",
        "64",
        "--warmup",
        "1",
        "--out",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((tmp_path / "benchmark.json").read_text())
    assert sorted((r["config"], r["frames"]) for r in data["runs"]) == [
        ("remn", 6),
        ("remn", 18),
        ("stcn", 6),
        ("stcn", 18),
    ]
    summary = data["summary"]
    # STCN mode with memory.mem_every=1 keeps every frame but the last; REMN's memory is bounded by RRM
    assert summary["stcn/1/18"]["bank_frames"] == 17 and summary["stcn/1/6"]["bank_frames"] == 5
    assert summary["remn/1/18"]["bank_frames"] <= 16 + 1
    assert all(r["fps"] > 0 and r["peak_memory_bytes"] > 0 for r in data["runs"])
    assert "REMN/this FPS" in result.stdout and "STCN mode" in result.stdout
    for name in ("fps_vs_length.png", "memory_vs_length.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the saved runs draw the same table again without measuring (the script is the same command)
    again = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "benchmark.py"),
            "--report",
            str(tmp_path / "benchmark.json"),
            "--figures",
            str(tmp_path / "again"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert data["table"] in again.stdout
    assert (tmp_path / "again" / "fps_vs_length.png").exists()
