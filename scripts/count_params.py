"""Count parameters per component in STCN mode and REMN mode.

    python scripts/count_params.py                # print the table
    python scripts/count_params.py --write-docs   # also refresh the table in docs/model.md

STCN mode must total 54,434,180 parameters, the count of STCN's released network.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from remn.config import load_config  # noqa: E402
from remn.model import build_model  # noqa: E402
from remn.model.summary import count_parameters, parameter_table  # noqa: E402

BEGIN = "<!-- parameter-table:begin (scripts/count_params.py --write-docs) -->"
END = "<!-- parameter-table:end -->"
STCN_TOTAL = 54_434_180


def build_table() -> tuple[str, dict[str, dict[str, int]]]:
    modes = {
        "STCN mode (`configs/stcn.yaml`)": build_model(load_config(REPO / "configs" / "stcn.yaml")),
        "REMN mode (`configs/remn.yaml`)": build_model(load_config(REPO / "configs" / "remn.yaml")),
    }
    return parameter_table(modes), {m: count_parameters(model) for m, model in modes.items()}


def write_docs(table: str, path: Path) -> None:
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path} has no parameter-table markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write-docs", action="store_true", help="refresh the table in docs/model.md")
    args = parser.parse_args()
    table, counts = build_table()
    print(table)
    stcn_total = next(iter(counts.values()))["total"]
    status = "matches" if stcn_total == STCN_TOTAL else "DOES NOT MATCH"
    print(f"\nSTCN mode total {stcn_total:,} {status} STCN's {STCN_TOTAL:,}")
    if args.write_docs:
        write_docs(table, REPO / "docs" / "model.md")
        print("updated docs/model.md")
    if stcn_total != STCN_TOTAL:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
