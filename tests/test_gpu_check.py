"""scripts/gpu_check.py: the CPU rehearsal (``--tiny``) runs every check or says why not, and
writes a complete JSON and markdown rows; a check that fails, crashes or hangs is recorded and
the others still run; the total budget skips what no longer fits."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

from remn.benchmark.gpu_check import CHECKS, make_settings, rows_markdown, run_checks, summary_table
from remn.benchmark.gpu_check import workers as gpu_workers

from conftest import REPO


def _script():
    spec = importlib.util.spec_from_file_location("gpu_check_script", REPO / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_rehearsal_runs_every_check_and_writes_the_report(tmp_path):
    out = tmp_path / "check"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--out", str(out), "--device", "cpu", "--tiny"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    checks = report["checks"]
    assert list(checks) == list(CHECKS)
    assert sorted(report["passed"] + report["skipped"]) == sorted(CHECKS) and report["failed"] == []
    for name, result in checks.items():
        assert result["status"] in ("passed", "skipped"), (name, result)
        assert result["status"] == "passed" or result["reason"], name
        assert 0 < result["seconds"] <= result["budget_s"] + 5
        assert not any(r.get("error") or r.get("skipped") for r in result["rows"]), name
    assert checks["cuda_graphs"]["status"] == "skipped" and "needs CUDA" in checks["cuda_graphs"]["reason"]
    assert "warned and was ignored" in checks["cuda_graphs"]["reason"]
    assert checks["device"]["info"]["type"] == "cpu"

    agreement = checks["agreement"]["rows"]
    assert len(agreement) == 2 and all(0 <= r["label_agreement"] <= 1 and r["max_prob_diff"] >= 0 for r in agreement)
    settings = report["settings"]
    lengths = {"short": settings["length"], "long": 3 * settings["length"]}
    expected = {
        (c, v, k, n)
        for c, v in (("remn", "bf16"), ("stcn", "bf16"), ("remn", "channels_last"))
        for k in (1, 3)
        for n in lengths
    }
    speed = checks["speed"]["rows"]
    assert {(r["config"], r["variant"], r["objects"], r["length"]) for r in speed} == expected
    for row in speed + checks["compile"]["rows"]:
        assert row["frames"] == lengths[row["length"]] and row["fps"] > 0 and row["peak_mib"] > 0
        assert row["bank_frames"] >= 1 and row["gain"] > 0
    compiled = checks["compile"]["rows"]
    assert {(r["objects"], r["length"]) for r in compiled} == {(k, n) for k in (1, 3) for n in lengths}
    # dynamo's eager backend runs the stages' own operations: the compiled core computes the plain one's
    assert all(r["label_agreement"] == 1.0 and r["max_prob_diff"] <= 1e-6 for r in compiled if "label_agreement" in r)
    assert checks["compile"]["dynamo"]["unique_graphs"] >= 4
    assert [r["config"] for r in checks["profile"]["rows"]] == ["remn", "stcn"]
    for row in checks["profile"]["rows"]:
        assert row["top"] and 0 < sum(k["share"] for k in row["top"]) <= 1 + 1e-9
        assert (out / row["table"]).is_file()
    (train,) = checks["train"]["rows"]
    assert train["it_per_s"] > 0 and train["peak_mib"] > 0 and train["batch"] == settings["train_batch"]
    (rank,) = checks["torchrun"]["rows"]
    assert rank["backend"] == "gloo" and rank["exit_status"] == 0 and rank["train_exit_status"] == 0

    rows = (out / "benchmarks_rows.md").read_text()
    name = checks["device"]["info"]["name"]
    table = [line for line in rows.splitlines() if line.startswith(f"| {name} |")]
    assert len(table) == len(expected) // 2 + len(compiled) // 2 + len(CHECKS)  # one row per length pair
    assert all(f"| {name} | {check} |" in rows for check in CHECKS)
    assert rows == rows_markdown(report)
    assert summary_table(report) in done.stdout


def _fake(kind: str):
    def check(settings, result):
        if kind == "fails":
            raise RuntimeError("boom\nsecond line")
        if kind == "hangs":
            result.row({"what": "measured before the hang", "fps": 1.0})
            time.sleep(60)
        if kind == "crashes":
            print("last words of a crash")
            os._exit(3)
        result.row({"what": "fine"})

    return check


@pytest.mark.slow
def test_a_failing_a_crashing_and_a_hanging_check_are_recorded_and_the_others_run(tmp_path, monkeypatch):
    kinds = {"device": "fails", "agreement": "hangs", "speed": "crashes", "profile": "ok", "train": "ok"}
    for name, kind in kinds.items():
        monkeypatch.setitem(gpu_workers.WORKERS, name, _fake(kind))  # the forked checks inherit the fakes
    settings = make_settings(tmp_path, device="cpu", tiny=True, total_budget=6.0)
    settings.min_budget = 1.0
    settings.budgets.update(device=2.0, agreement=2.0, speed=2.0, profile=2.0, train=5.0)
    lines: list[str] = []
    report = run_checks(settings, only=list(kinds), say=lines.append)
    checks = report["checks"]
    assert checks["device"]["status"] == "failed" and checks["device"]["error"] == "RuntimeError: boom second line"
    assert checks["agreement"]["status"] == "timeout" and checks["agreement"]["seconds"] < 15
    assert checks["agreement"]["rows"] == [{"what": "measured before the hang", "fps": 1.0}]
    assert "budget of 2 s" in checks["agreement"]["error"]
    assert checks["speed"]["status"] == "failed" and checks["speed"]["error"] == "last words of a crash"
    assert checks["profile"]["status"] == "passed" and checks["profile"]["rows"] == [{"what": "fine"}]
    # 6 s in all: the last check gets what is left (below its own 5 s), or is skipped
    assert checks["train"]["budget_s"] < 5.0 and checks["train"]["status"] in ("passed", "skipped")
    assert report["failed"] == ["device", "agreement", "speed"]
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert saved["checks"].keys() == checks.keys()
    assert any("agreement: timeout" in line for line in lines)


def test_too_little_time_left_skips_a_check_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.setitem(gpu_workers.WORKERS, "device", _fake("ok"))
    settings = make_settings(tmp_path, device="cpu", tiny=True, total_budget=0.5)
    report = run_checks(settings, only=["device"], say=lambda line: None)
    assert report["skipped"] == ["device"] and "total budget" in report["checks"]["device"]["reason"]
    assert "| device | skipped |" in (tmp_path / "benchmarks_rows.md").read_text()


def test_the_script_refuses_an_unknown_check_in_one_line(tmp_path, capsys):
    assert _script().main(["--out", str(tmp_path), "--only", "speed,fast"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --only names fast") and len(err.strip().splitlines()) == 1
