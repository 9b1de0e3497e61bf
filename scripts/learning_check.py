"""Does REMN learn? Train the demo configuration on generated videos and compare J&F on held-out
generated videos with the copy-the-first-mask baseline (the work is in remn/demo.py).

    python scripts/learning_check.py [--work runs/learning_check] [--config demo] [key=value ...]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from remn.demo import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
