"""Evaluate REMN on a benchmark: ``python eval.py --config ... --benchmark NAME --data-root DIR --output DIR``.

Not implemented yet: the inference core and the benchmark registry land with the
evaluation issue. The configuration is already read and checked.
"""

from __future__ import annotations

import argparse
import sys

from remn.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate REMN (not yet implemented).")
    parser.add_argument("--config", default="configs/remn.yaml", help="YAML file in configs/")
    parser.add_argument("--benchmark", help="davis2016-val, davis2017-val, youtube2018-valid, ...")
    parser.add_argument("--data-root", help="dataset folder")
    parser.add_argument("--output", help="output folder")
    parser.add_argument("--checkpoint", help="REMN or STCN weights")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. memory.rrm=false")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"not yet: evaluation is not implemented in this version (config {cfg.name!r} read and checked). "
          "The network, memory bank and configuration are in place; see README.md.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
