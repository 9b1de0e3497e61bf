"""The entry points: the mode comparison on a tiny clip, train.py/eval.py argument checks,
and the demo pipeline (generate, train, evaluate, baseline, overlay) at a tiny size."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=900)


def test_compare_modes_runs_both_modes_on_a_small_clip():
    result = _run("scripts/compare_modes.py", "--frames", "20", "--height", "72", "--width", "100",
                  "memory.capacity=4", "memory.asm_max_interval=2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[remn] FRM=True ASM=True RRM=True" in out and "[stcn] FRM=False ASM=False RRM=False" in out
    assert "padded (3, 80, 112)" in out and "output (72, 100)" in out
    # STCN mode writes frames 0, 5, 10, 15; REMN reduced its memory and stayed within N = 4
    assert "frames written to memory: [0, 5, 10, 15]" in out
    assert "RRM reductions (policy per call): []" not in out
    assert "<= N = 4" in out


def test_train_and_eval_check_their_config():
    for script in ("train.py", "eval.py"):
        extra = ["--benchmark", "generic", "--output", "/tmp/unused"] if script == "eval.py" else []
        bad = _run(script, "--config", "configs/stcn.yaml", *extra, "memory.topk=10")
        assert bad.returncode == 2 and "topk" in bad.stderr
        assert _run(script, "--help").returncode == 0


def test_demo_pipeline_at_a_tiny_size(tmp_path):
    work = tmp_path / "demo"
    result = _run("scripts/demo.py", "--work", str(work), "--videos", "3", "--heldout", "2", "--frames", "6",
                  "--size", "48", "--margin", "-100", "train.synthetic.iterations=2", "train.synthetic.milestones=[1]",
                  "train.num_workers=0")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "| copy the first mask |" in result.stdout and "lead over the baseline" in result.stdout
    summary = json.loads((work / "learning_check.json").read_text())
    assert 0 <= summary["model"]["J&F-Mean"] <= 1 and 0 <= summary["baseline"]["J&F-Mean"] <= 1
    assert (work / "overlay" / "overlay.mp4").is_file()
    assert len(list((work / "overlay" / "masks").iterdir())) == 6
