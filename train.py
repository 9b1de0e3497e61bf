"""Train REMN: ``python train.py --config configs/remn.yaml [key=value ...]``.

Not implemented yet: the training stages (static, synthetic, main, rrm) land with the
training issue. The configuration is already read and checked, so a typo in a key
fails here the same way it will then.
"""

from __future__ import annotations

import argparse
import sys

from remn.cli import add_config_arguments, not_yet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train REMN (not yet implemented).")
    add_config_arguments(parser)
    return not_yet("training", parser, argv)


if __name__ == "__main__":
    sys.exit(main())
