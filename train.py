"""Train REMN: ``python train.py --config configs/remn.yaml [key=value ...]``.

Not implemented yet: the training stages (static, synthetic, main, rrm) land with the
training issue. The configuration is already read and checked, so a typo in a key
fails here the same way it will then.
"""

from __future__ import annotations

import argparse
import sys

from remn.config import ConfigError, load_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train REMN (not yet implemented).")
    parser.add_argument("--config", default="configs/remn.yaml", help="YAML file in configs/")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. memory.rrm=false")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"not yet: training is not implemented in this version (config {cfg.name!r} read and checked). "
          "The network, memory bank and configuration are in place; see README.md.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
