"""`remn reproduce`: the plan, the runner's skip/refuse/continue rules, the tables, and the whole smoke scale."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from remn.config import load_config
from remn.errors import REMNError
from remn.outputs import OutputError
from remn.reproduce.plan import ALL_BENCHMARKS, PlanOptions, Step, build_plan
from remn.reproduce.runner import MARKER, run_plan
from remn.reproduce.scale import load_paper, load_scale
from remn.reproduce.tables import Cell, format_cell

from conftest import REPO

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SCRIPT = [sys.executable, str(REPO / "scripts" / "reproduce.py")]


def _plan(scale: str, out: Path, **options):
    return build_plan(PlanOptions(scale=load_scale(scale), out=out, **options))


def _table_cells(markdown: str) -> list[tuple[str, str]]:
    """(row label, cell) for every cell of every table row of a tables.md."""
    cells = []
    for line in markdown.splitlines():
        if not line.startswith("| ") or line.startswith("|---") or re.match(r"^\| (Method|FRM|steps) \|", line):
            continue
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        cells += [(parts[0], cell) for cell in parts[1:]]
    return cells


# ------------------------------------------------------------------ the plan


def test_every_scale_has_the_same_steps_only_the_numbers_differ(tmp_path):
    smoke = _plan("smoke", tmp_path / "s")
    tiny = _plan("tiny", tmp_path / "t")
    full = _plan("full", tmp_path / "f", roots={"bl30k": None})
    names = [s.name for s in smoke.steps]
    assert [s.name for s in tiny.steps if "-s1-" not in s.name] == names  # tiny adds the second seed
    assert [s.name.replace("-s1-", "-s0-") for s in tiny.steps if "-s1-" in s.name] == [n for n in names if "-s0-" in n]
    assert [s.name for s in full.steps] == [n for n in names if not n.startswith(("data-", "prep-", "score-"))]
    kinds = {s.kind for s in smoke.steps}
    assert kinds == {"data", "prepare", "train", "eval", "score", "tables"}
    # every row on its benchmarks: STCN and REMN on all five, the four other ablation rows on DAVIS and YouTube
    evals = [s.name for s in full.steps if s.kind == "eval"]
    assert len(evals) == 2 * len(ALL_BENCHMARKS) + 4 * 2
    assert all(s.command[0] == sys.executable for s in smoke.steps)
    assert tiny.options.scale.seeds == [0, 1] and smoke.options.scale.seeds == [0]


def test_the_full_scale_runs_stcns_recipe_from_configs_train(tmp_path):
    plan = _plan("full", tmp_path / "f")
    steps = {s.name: s for s in plan.steps}
    main, rrm = steps["train-remn-s0-main"].identity, steps["train-remn-s0-rrm"].identity
    assert "train.stages=[static,main]" in main and "model.pretrained_backbones=true" in main
    for stage, words in (("static", main), ("main", main), ("rrm", rrm)):
        recipe = getattr(load_config(f"train/{stage}").train, stage)
        assert f"train.{stage}.iterations={recipe.iterations}" in words
        assert f"train.{stage}.batch_size={recipe.batch_size}" in words
        assert f"train.{stage}.clip_frames={recipe.clip_frames}" in words
        # what the launch does not pass is the same in the recipe file and in the model's config
        for config in ("remn", "ablation/no_frm"):
            base = load_config(config)
            assert {
                k: getattr(getattr(base.train, stage), k)
                for k in ("freeze_encoders", "reduce_memory", "rrm_loss_weight")
            } == {k: getattr(recipe, k) for k in ("freeze_encoders", "reduce_memory", "rrm_loss_weight")}
            for key in ("weight_decay", "lr_gamma", "bootstrap_start", "bootstrap_end", "bootstrap_final"):
                assert getattr(base.train, key) == getattr(load_config(f"train/{stage}").train, key)
            assert base.memory.capacity == load_config(f"train/{stage}").memory.capacity
    assert "--load-weights" in rrm and "model.pretrained_backbones=true" not in rrm
    # STCN is the w/o-FRM model after STCN's recipe, in STCN mode; the ablations are the REMN model
    stcn = steps["eval-stcn-s0-davis2017-val"].identity
    assert stcn[stcn.index("--config") + 1] == "stcn"
    assert stcn[stcn.index("--checkpoint") + 1].endswith("train-no-frm-s0-main/out/checkpoints/main_final.pth")
    no_rrm = steps["eval-no-rrm-s0-davis2017-val"].identity
    assert no_rrm[no_rrm.index("--checkpoint") + 1].endswith("train-remn-s0-rrm/out/checkpoints/rrm_final.pth")


def test_bl30k_adds_stcns_stage_1_and_the_longer_main_stage(tmp_path):
    plan = _plan("full", tmp_path / "f", roots={"bl30k": str(tmp_path / "BL30K")})
    words = next(s for s in plan.steps if s.name == "train-remn-s0-main").identity
    assert "train.stages=[static,synthetic,main]" in words
    assert "train.synthetic.iterations=500000" in words and "train.main.iterations=300000" in words
    assert "train.main.milestones=[250000]" in words and f"data.bl30k_root={tmp_path / 'BL30K'}" in words


def test_dry_run_at_full_scale_on_8_gpus_prints_torchrun_lines_and_needs_no_data(tmp_path):
    out = tmp_path / "run"
    missing = tmp_path / "no-such-dataset"
    result = subprocess.run(
        [
            *SCRIPT,
            "--scale",
            "full",
            "--out",
            str(out),
            "--dry-run",
            "--gpus",
            "8",
            "--davis",
            str(missing),
            "--youtube",
            str(missing),
            "--static",
            str(missing),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# remn reproduce: scale full")
    assert sum("torchrun --nproc_per_node 8 " in line for line in lines) == 2  # static+main of both models
    assert sum("torchrun --nproc_per_node 4 " in line for line in lines) == 2  # rrm: its batch of 4 on 4 GPUs
    assert sum(" -m remn eval " in line for line in lines) == 18
    assert not out.exists()


def test_the_paper_figures_are_the_papers():
    paper = load_paper()
    assert paper["table1"]["rows"]["REMN"] == {
        "val_jf": 86.3,
        "val_j": 83.4,
        "val_f": 89.2,
        "testdev_jf": 79.2,
        "testdev_j": 76.5,
        "testdev_f": 81.9,
        "fps": 27.5,
        "gen_error": 7.1,
    }
    assert paper["table1"]["rows"]["STCN"]["val_jf"] == 85.3 and paper["table1"]["rows"]["STCN"]["fps"] == 20.2
    assert paper["table2"]["rows"]["REMN"]["g"] == 85.5 == paper["table4"]["rows"]["FRM+ASM+RRM"]["g"]
    assert paper["table3"]["rows"]["STCN"] == {
        "j_x1": 87.3,
        "fps_x1": 7.2,
        "j_x3": 84.6,
        "fps_x3": 3.0,
        "j_diff": -2.7,
        "fps_diff": -4.2,
    }
    assert [v["fps"] for v in paper["table4"]["rows"].values()] == [25.6, 25.8, 23.9, 14.1, 12.9]


# ------------------------------------------------------------------ the runner


def _step(out: Path, name: str, code: str, after: tuple[str, ...] = ()) -> Step:
    target = out / name / "out" / "x.txt"
    command = [sys.executable, "-c", code, str(target)]
    return Step(name, "data", name, command, [name, code], [target], after=after)


WRITE = (
    "import pathlib, sys; p = pathlib.Path(sys.argv[1]); p.parent.mkdir(parents=True, exist_ok=True); "
    "p.write_text('done')"
)


def test_a_stopped_plan_continues_a_finished_one_is_skipped_a_changed_one_refused(tmp_path):
    out = tmp_path / "run"
    flag = tmp_path / "fail"
    flag.write_text("")
    fails = f"import pathlib, sys; sys.exit(3) if pathlib.Path({str(flag)!r}).exists() else None; {WRITE}"
    plan = _plan("smoke", out)
    plan.steps = [_step(out, "data-a", WRITE), _step(out, "data-b", fails, after=("data-a",))]
    with pytest.raises(REMNError, match=r"step data-b failed \(exit status 3\).*data-b/log.txt"):
        run_plan(plan, echo=lambda line: None)
    assert (out / "data-a" / MARKER).is_file() and not (out / "data-b" / MARKER).exists()
    flag.unlink()
    summary = run_plan(plan, echo=lambda line: None)
    assert (summary.ran, summary.skipped) == (["data-b"], ["data-a"])
    summary = run_plan(plan, echo=lambda line: None)
    assert (summary.ran, summary.skipped) == ([], ["data-a", "data-b"])
    plan.steps[0].identity = ["data-a", "another command"]
    with pytest.raises(OutputError, match="data-a: made by another command"):
        run_plan(plan, echo=lambda line: None)


def test_reproduce_refuses_bad_command_lines_and_a_folder_of_someone_elses(tmp_path, capsys):
    from remn.cli import COMMANDS
    from remn.cli.reproduce import main

    assert "reproduce" in COMMANDS
    assert main(["--scale", "smoke", "--out", str(tmp_path / "a"), "--davis", str(tmp_path)]) == 2
    assert "for --scale full" in capsys.readouterr().err
    assert main(["--scale", "medium", "--out", str(tmp_path / "b")]) == 2
    assert main(["--scale", "smoke", "--out", str(tmp_path / "c"), "memory.topk=3"]) == 2
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    assert main(["--scale", "smoke", "--out", str(mine)]) == 1
    assert "holds files `remn reproduce` did not write" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


# ------------------------------------------------------------------ the tables


def test_cells_show_the_mean_and_half_the_range_over_seeds():
    assert format_cell(Cell([40.0, 43.0])) == "41.5 ± 1.5"
    assert format_cell(Cell([40.04])) == "40.0"
    assert format_cell(Cell([40.0, "server"])) == "server"
    assert format_cell(Cell([None, 1.0])) == "n/a"
    assert Cell([1.0, 3.0]).to_json() == {"mean": 2.0, "spread": 1.0, "values": [1.0, 3.0]}


def _fake_outputs(plan) -> None:
    """What the evaluations of a full-scale plan write, with made-up figures."""
    for number, entry in enumerate(plan.evaluations):
        run = plan.options.out / entry["eval"] / "out"
        run.mkdir(parents=True)
        frames = 100 if entry["benchmark"] != "long-time-x3" else 298
        videos = {"v1": {"frames": frames, "fps": 20.0 + number, "bank_size": [[0, 1], [frames - 1, 8]]}}
        (run / "timing.json").write_text(
            json.dumps({"fps": 20.0 + number, "device": "GPU", "precision": "fp32", "videos": videos})
        )
        splits = {"davis2017-val": "val", "long-time": "long-time", "long-time-x3": "long-time-x3"}
        split = splits.get(entry["benchmark"])
        if split:
            (run / f"global_results-{split}.csv").write_text(
                "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n0.800,0.780,0.9,0.1,0.820,0.9,0.1\n"
            )
    for step in plan.steps:
        if step.kind != "tables":
            (plan.options.out / step.name).mkdir(exist_ok=True)
            (plan.options.out / step.name / MARKER).write_text(json.dumps({"seconds": 60.0}))


def test_server_cells_say_server_until_the_scores_are_given(tmp_path):
    from remn.reproduce.tables import main as tables

    out = tmp_path / "run"
    plan = _plan("full", out)
    _fake_outputs(plan)
    (out / "plan.json").write_text(json.dumps(plan.to_json()))
    assert tables(["--plan", str(out / "plan.json"), "--out", str(out / "tables" / "out")]) == 0
    results = json.loads((out / "results.json").read_text())
    remn = next(r for r in results["tables"]["table1"]["rows"] if r.get("row") == "remn")
    assert remn["cells"]["val_jf"]["mean"] == pytest.approx(80.0) and remn["cells"]["testdev_jf"] == "server"
    assert remn["cells"]["gen_error"] == "server" and remn["cells"]["fps"]["mean"] > 0
    scores = tmp_path / "server.yaml"
    scores.write_text(
        "davis2017-test-dev:\n  remn: {J: 76.0, F: 80.0}\n  stcn: {J&F: 75.0, J: 74.0, F: 76.0}\n"
        "youtube2018-valid:\n  remn: {J_seen: 80, F_seen: 84, J_unseen: 76, F_unseen: 80}\n"
    )
    assert (
        tables(["--plan", str(out / "plan.json"), "--out", str(out / "tables" / "out"), "--server-scores", str(scores)])
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    remn = next(r for r in results["tables"]["table1"]["rows"] if r.get("row") == "remn")
    assert remn["cells"]["testdev_jf"]["mean"] == pytest.approx(78.0)
    assert remn["cells"]["gen_error"]["mean"] == pytest.approx(2.0)
    youtube = next(r for r in results["tables"]["table2"]["rows"] if r.get("row") == "remn")["cells"]
    assert youtube["g"]["mean"] == pytest.approx(80.0) and youtube["gen_error"]["mean"] == pytest.approx(4.0)
    no_frm = next(r for r in results["tables"]["table4"]["rows"] if r["row"] == "no-frm")
    assert no_frm["ours"]["g"] == "server" and no_frm["ours"]["jf"]["mean"] == pytest.approx(80.0)
    text = (out / "tables.md").read_text()
    assert "(tables/out/figures/fps_vs_length.png)" in text and "not measured at this scale" in text
    assert all(cell not in ("", "n/a") for _, cell in _table_cells(text))


# ------------------------------------------------------------------ the whole smoke scale


@pytest.mark.slow
def test_the_smoke_scale_fills_every_cell_and_a_second_run_skips_every_step(tmp_path):
    out = tmp_path / "smoke"
    command = [*SCRIPT, "--scale", "smoke", "--out", str(out), "--jobs", "2"]
    try:
        first = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=1200)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        steps = len(_plan("smoke", out).steps)
        assert f"{steps} steps run, 0 skipped" in first.stdout
        text = (out / "tables.md").read_text()
        cells = _table_cells(text)
        assert len(cells) > 100
        empty = [(row, cell) for row, cell in cells if cell in ("", "n/a", "-", "–", "server")]
        assert not empty, empty  # generated data: the server benchmarks are scored locally
        for name in ("Table I", "Table II", "Table III", "Table IV"):
            assert f"## {name}:" in text
        results = json.loads((out / "results.json").read_text())
        ours = [
            c
            for t in results["tables"].values()
            for r in t["rows"]
            for c in (r.get("cells") if r.get("source") == "ours" else r.get("ours") or {}).values()
        ]
        assert ours and all(isinstance(c, dict) and c["mean"] == c["mean"] for c in ours)
        for figure in results["figures"].values():
            assert figure and (out / figure).stat().st_size > 1000
        markers = {p: p.stat().st_mtime_ns for p in out.glob(f"*/{MARKER}")}
        assert len(markers) == steps
        second = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=300)
        assert second.returncode == 0, second.stderr
        assert f"0 steps run, {steps} skipped" in second.stdout
        assert {p: p.stat().st_mtime_ns for p in out.glob(f"*/{MARKER}")} == markers
    finally:
        shutil.rmtree(out, ignore_errors=True)  # about 2 GB of checkpoints
