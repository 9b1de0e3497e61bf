"""Screenshot of a report.html on a generated evaluation (docs/img/report.png by default).

    python scripts/make_report_figure.py [--work runs/report_figure] [--out docs/img/report.png]

Generates a small DAVIS-layout set, predicts every frame as the first frame's mask (the baseline
of scripts/learning_check.py, so J falls as objects move), scores it with ``remn score --images``
and photographs the report with headless Chromium (Debian's ``chromium``) at 1200x1600.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    from remn.cli.score import main as score
    from remn.data.synthetic import layout_spec, write_dataset
    from scripts.learning_check import copy_first_mask

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "runs" / "report_figure")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "report.png")
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install chromium")
    args.out = args.out.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    os.chdir(args.work)  # the report names the folders as given: short, relative paths
    data, pred = Path("data"), Path("first-mask")
    write_dataset(
        data,
        layout="davis",
        videos=args.videos,
        seed=7,
        val_fraction=1.0,
        progress=False,
        overwrite=True,
        spec=layout_spec("davis", frames=args.frames, height=args.size, width=args.size, objects=(1, 3)),
    )
    if pred.exists():
        shutil.rmtree(pred)
    copy_first_mask(data, pred)
    if (
        score(
            [
                "--gt",
                str(data / "Annotations" / "480p"),
                "--pred",
                str(pred),
                "--images",
                str(data / "JPEGImages" / "480p"),
                "--quiet",
            ]
        )
        != 0
    ):
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={args.out}",
                "--window-size=1200,1600",
                (pred / "report.html").resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
