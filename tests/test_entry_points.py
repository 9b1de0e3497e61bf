"""The entry points: train.py/eval.py argument checks, and the demo pipeline (generate, train,
evaluate, baseline, overlay) at a tiny size. (Both modes over a small clip:
tests/test_inference.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import REPO


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_train_and_eval_check_their_config():
    for script in ("train.py", "eval.py"):
        extra = ["--benchmark", "generic", "--output", "/tmp/unused"] if script == "eval.py" else []
        bad = _run(script, "--config", "configs/stcn.yaml", *extra, "memory.topk=10")
        assert bad.returncode == 2 and "topk" in bad.stderr
        assert _run(script, "--help").returncode == 0


@pytest.mark.slow
def test_demo_pipeline_at_a_tiny_size(tmp_path):
    work = tmp_path / "demo"
    result = _run(
        "scripts/demo.py",
        "--work",
        str(work),
        "--videos",
        "3",
        "--heldout",
        "2",
        "--frames",
        "6",
        "--size",
        "48",
        "--margin",
        "-100",
        "train.synthetic.iterations=2",
        "train.synthetic.milestones=[1]",
        "train.num_workers=0",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "| copy the first mask |" in result.stdout and "lead over the baseline" in result.stdout
    summary = json.loads((work / "learning_check.json").read_text())
    assert 0 <= summary["model"]["J&F-Mean"] <= 1 and 0 <= summary["baseline"]["J&F-Mean"] <= 1
    assert (work / "overlay" / "overlay.mp4").is_file()
    assert len(list((work / "overlay" / "masks").iterdir())) == 6
    assert (work / "report.html").is_file() and f"report: {work / 'report.html'}" in result.stdout
    assert f"overlay video (H.264): {work / 'overlay' / 'overlay.mp4'}" in result.stdout
    assert "synthetic 1/2 | " in result.stderr and "synthetic 2/2 | " in result.stderr  # piped: progress lines
    assert "davis2017-val 1/2: " in result.stderr and " frames, " in result.stderr  # one line per held-out video
