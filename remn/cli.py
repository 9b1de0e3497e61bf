"""Command-line helpers shared by train.py, eval.py and the scripts."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .config import ConfigError, REMNConfig, load_config

__all__ = ["add_config_arguments", "config_from_args", "not_yet"]


def add_config_arguments(parser: argparse.ArgumentParser, default: str = "configs/remn.yaml") -> None:
    """``--config FILE`` and trailing ``key=value`` overrides."""
    parser.add_argument("--config", default=default, help=f"YAML file in configs/ (default {default})")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. memory.rrm=false")


def config_from_args(args: argparse.Namespace) -> REMNConfig:
    """Load the config named by the parsed arguments; exit with status 2 and the reason if it is bad."""
    try:
        return load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def not_yet(what: str, parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> int:
    """Entry point of a feature that has not landed: check the config, say so, return 2."""
    cfg = config_from_args(parser.parse_args(argv))
    print(f"not yet: {what} is not implemented in this version (config {cfg.name!r} read and checked). "
          "The network, memory bank and configuration are in place; see README.md.", file=sys.stderr)
    return 2
