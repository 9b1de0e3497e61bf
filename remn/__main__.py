"""``python -m remn`` is the ``remn`` command (remn/cli/)."""

import sys

from remn.cli import main

if __name__ == "__main__":
    sys.exit(main())
