"""Draw generated frames with their masks overlaid: docs/img/synthetic_examples.png.

    python scripts/make_data_figure.py [--out docs/img/synthetic_examples.png] [--seed 0]

Each row is one video; the columns are frame 0 and the frames where something happens
(an object enters, an object is out of view), then the last frame. Labelled objects are
outlined in their palette colour and marked with their id; distractors (unlabelled look-alikes) are
outlined with a dashed white line. The PNG is palette-quantised to stay small.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from remn.data.masks import DAVIS_PALETTE  # noqa: E402
from remn.data.synthetic import SyntheticVideo, generate_video, video_rng  # noqa: E402

PALETTE = np.frombuffer(DAVIS_PALETTE, dtype=np.uint8).reshape(256, 3)


def pick_frames(video: SyntheticVideo, count: int = 4) -> list[int]:
    """Frame 0, the first late entry, a frame with an object out of view, the last frame; topped up evenly."""
    last = video.num_frames - 1
    wanted = [0]
    late = sorted(t for t in video.first_frame.values() if t > 0)
    if late:
        wanted.append(late[0])
    if video.gone:
        first, final = next(iter(video.gone.values()))
        wanted.append((first + final) // 2)
    wanted.append(last)
    for t in np.linspace(0, last, count + 2).round().astype(int)[1:-1]:
        if len(set(wanted)) >= count:
            break
        wanted.append(int(t))
    return sorted(set(wanted))[:count]


def draw(videos: list[SyntheticVideo], out: Path) -> int:
    columns = 4
    fig, axes = plt.subplots(len(videos), columns, figsize=(2.1 * columns, 2.25 * len(videos)), dpi=100)
    axes = np.atleast_2d(axes)
    for row, video in enumerate(videos):
        frames = pick_frames(video, columns)
        for column in range(columns):
            ax = axes[row, column]
            ax.axis("off")
            if column >= len(frames):
                continue
            t = frames[column]
            mask = video.masks[t]
            ax.imshow(video.frames[t], interpolation="nearest")
            for object_id in video.ids:
                where = mask == object_id
                if where.any():
                    colour = PALETTE[object_id] / 255.0
                    ax.contour(where, levels=[0.5], colors=[colour], linewidths=1.6)
                    ys, xs = np.nonzero(where)
                    ax.text(
                        xs.mean(),
                        ys.mean(),
                        str(object_id),
                        color="white",
                        fontsize=7,
                        ha="center",
                        va="center",
                        bbox=dict(facecolor=colour, edgecolor="none", pad=1.0, alpha=0.8),
                    )
            for key in video.distractors:
                seen = video.layers[key][t] & (mask == 0)
                if seen.any():
                    ax.contour(seen, levels=[0.5], colors="white", linewidths=0.8, linestyles="--")
            notes = []
            entering = [i for i, first in video.first_frame.items() if first == t and t > 0]
            out_of_view = [i for i, (a, b) in video.gone.items() if a <= t <= b]
            if entering:
                notes.append("enters: " + ",".join(map(str, entering)))
            if out_of_view:
                notes.append("out: " + ",".join(map(str, out_of_view)))
            ax.set_title(f"video {row + 1}, frame {t}" + ("\n" + "; ".join(notes) if notes else "\n"), fontsize=7)
    fig.suptitle("remn.data.synthetic: object masks outlined with their id, distractors dashed white", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB").quantize(colors=256, dither=Image.Dither.NONE)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, optimize=True)
    return out.stat().st_size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "synthetic_examples.png")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args(argv)
    knobs = dict(frames=args.frames, height=args.size, width=args.size, layers=True)
    videos = [
        generate_video(video_rng(args.seed, 0), objects=(2, 3), distractors=(1, 1), enter_late=1.0, **knobs),
        generate_video(video_rng(args.seed, 1), objects=(2, 2), distractors=(1, 2), leave=1.0, **knobs),
        generate_video(
            video_rng(args.seed, 2),
            objects=(3, 3),
            distractors=(2, 2),
            enter_late=0.5,
            leave=0.5,
            id_style="sparse",
            **knobs,
        ),
    ]
    size = draw(videos, args.out)
    print(f"wrote {args.out} ({size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
