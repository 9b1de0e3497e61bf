"""The entry points run: the demo end to end on a tiny clip, train/eval say 'not yet'."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_demo_runs_both_modes_on_a_small_clip():
    result = _run("scripts/demo.py", "--frames", "20", "--height", "72", "--width", "100",
                  "memory.capacity=4", "memory.asm_max_interval=2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[remn] FRM=True ASM=True RRM=True" in out and "[stcn] FRM=False ASM=False RRM=False" in out
    assert "padded (3, 80, 112)" in out and "output (72, 100)" in out
    # STCN mode writes frames 0, 5, 10, 15; REMN reduced its memory and stayed within N = 4
    assert "frames written to memory: [0, 5, 10, 15]" in out
    assert "RRM reductions (policy per call): []" not in out
    assert "<= N = 4" in out


def test_train_and_eval_check_the_config_and_say_not_yet():
    for script in ("train.py", "eval.py"):
        result = _run(script, "--config", "configs/stcn.yaml", "memory.top_k=10")
        assert result.returncode == 2 and "not yet" in result.stderr
        bad = _run(script, "--config", "configs/stcn.yaml", "memory.topk=10")
        assert bad.returncode == 2 and "topk" in bad.stderr
