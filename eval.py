"""Evaluate REMN on a benchmark: ``python eval.py --config ... --benchmark NAME --data-root DIR --output DIR``.

Not implemented yet: the inference core and the benchmark registry land with the
evaluation issue. The configuration is already read and checked.
"""

from __future__ import annotations

import argparse
import sys

from remn.cli import add_config_arguments, not_yet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate REMN (not yet implemented).")
    parser.add_argument("--benchmark", help="davis2016-val, davis2017-val, youtube2018-valid, ...")
    parser.add_argument("--data-root", help="dataset folder")
    parser.add_argument("--output", help="output folder")
    parser.add_argument("--checkpoint", help="REMN or STCN weights")
    add_config_arguments(parser)
    return not_yet("evaluation", parser, argv)


if __name__ == "__main__":
    sys.exit(main())
