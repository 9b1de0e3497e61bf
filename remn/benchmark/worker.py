"""A benchmark worker: one measurement in a fresh process, so that its peak memory is its own.

    python -m remn.benchmark.worker --worker SPEC        # remn.benchmark.suite.run_one
    python -m remn.benchmark.worker --read-worker SPEC   # remn.benchmark.micro.read_one

SPEC is one JSON object (remn.benchmark.suite.spawn writes it); the result is printed as one
JSON line, the last line of output.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remn.benchmark.worker", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--worker", metavar="SPEC", help="a suite measurement (run_one)")
    which.add_argument("--read-worker", metavar="SPEC", help="a memory read (read_one)")
    args = parser.parse_args(argv)
    if args.worker:
        from remn.benchmark.suite import run_one

        result = run_one(json.loads(args.worker))
    else:
        from remn.benchmark.micro import read_one

        result = read_one(json.loads(args.read_worker))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
