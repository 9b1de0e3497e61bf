"""``remn`` command (also ``python -m remn``): ``remn segment ...`` and ``remn check ...``."""

from __future__ import annotations

import sys
from typing import Sequence

COMMANDS = {
    "segment": ("remn.segment", "segment your own video or frame folder from a first mask"),
    "check": ("remn.data.check", "check a dataset folder before a long run"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
        print("usage: remn COMMAND [options]\n\ncommands:\n" + "\n".join(lines))
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    import importlib

    from remn.cli import run_command

    module = importlib.import_module(COMMANDS[argv[0]][0])
    # the commands' own main() turn their failures into one line; this also covers a command
    # whose main() does not go through run_command itself (``check``)
    return run_command(lambda: module.main(argv[1:]), interrupted="nothing was written")


if __name__ == "__main__":
    sys.exit(main())
