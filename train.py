"""``python train.py ...`` is ``remn train ...`` (remn/cli/train.py); torchrun launches this file."""

import sys

from remn.cli.train import main

if __name__ == "__main__":
    sys.exit(main(prog="train.py"))
