"""`make demo`: the main job on a built-in default, on a CPU in about ten minutes.

1. generates 60 training and 10 held-out videos (remn/data/synthetic/, 96x96, 30 frames);
2. trains REMN (every module on) from scratch with configs/demo.yaml (train.py);
3. evaluates it on the held-out videos (eval.py, the DAVIS 2017 protocol) and prints J&F
   next to the copy-the-first-mask baseline;
4. segments one held-out video with `remn segment --overlay` and writes its overlay video.
Training and evaluation print progress lines; the last lines name runs/demo/report.html (the
evaluation report) and runs/demo/overlay/overlay.mp4 (H.264).

Everything goes to runs/demo/. Options are those of scripts/learning_check.py (remn/demo.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from remn.demo import main  # noqa: E402

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--work" or a.startswith("--work=") for a in args):
        args = ["--work", str(REPO / "runs" / "demo"), *args]
    sys.exit(main(["--overlay", *args]))
