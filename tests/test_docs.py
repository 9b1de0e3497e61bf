"""The docs say what the code does: parameter counts and module names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from remn.model.summary import count_parameters, parameter_table

from conftest import REPO

STCN_TOTAL = 54_434_180


def test_stcn_mode_has_stcns_parameter_count(stcn_model, remn_model):
    counts = count_parameters(stcn_model)
    assert counts["total"] == STCN_TOTAL
    assert counts["frm"] == 0 and counts["rrm.gate"] == 0
    assert (
        counts["key_encoder"],
        counts["value_encoder"],
        counts["key_proj"],
        counts["key_comp"],
        counts["decoder"],
    ) == (8_543_296, 21_701_635, 589_888, 4_719_104, 18_880_257)
    remn = count_parameters(remn_model)
    assert (
        remn["total"]
        == STCN_TOTAL + remn["frm"] + remn["rrm.gate"] + remn["rrm.key_reducers"] + remn["rrm.value_reducers"]
    )
    assert remn["frm"] > 0 and remn["rrm.value_reducers"] > 0


def test_docs_table_is_what_the_script_prints(stcn_model, remn_model):
    table = parameter_table(
        {"STCN mode (`configs/stcn.yaml`)": stcn_model, "REMN mode (`configs/remn.yaml`)": remn_model}
    )
    assert table in (REPO / "docs" / "model.md").read_text(), "run `make params` to refresh docs/model.md"


@pytest.mark.slow
def test_count_params_script_runs_and_checks_the_total():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "count_params.py")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert "54,434,180 matches" in result.stdout
