"""Speed and memory of REMN against STCN mode and the single-module ablations: ``remn benchmark``
(remn/cli/benchmark.py; the work is in remn/benchmark/, the settings in docs/benchmarks.md).

    python scripts/benchmark.py [--quick | --fast-paths | --bank | --read | --profile | --report JSON ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from remn.cli.benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="scripts/benchmark.py"))
