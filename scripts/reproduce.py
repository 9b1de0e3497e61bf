"""``python scripts/reproduce.py ...`` is ``remn reproduce ...`` (remn/cli/reproduce.py): the REMN
paper's Tables I-IV at scale smoke, tiny or full (docs/reproduce.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's remn/, wherever it is run from

from remn.cli.reproduce import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="scripts/reproduce.py"))
