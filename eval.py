"""``python eval.py ...`` is ``remn eval ...`` (remn/cli/eval.py)."""

import sys

from remn.cli.eval import main

if __name__ == "__main__":
    sys.exit(main(prog="eval.py"))
