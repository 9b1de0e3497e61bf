"""Measure the soft-mask rule of remn.data.masks on clean and soft masks: the tables of docs/data.md,
which says what the masks are. ``python scripts/measure_masks.py`` (about 2 minutes on 2 shared CPU
cores; ``--quick``: fewer masks). Each mask is stored as 8-bit grey levels, 16-bit grey, a colour
image, a palette image with an adaptive palette and one snapped to the DAVIS palette, and analysed
by mask_softness, as read_mask does."""

from __future__ import annotations

import itertools
import os
import statistics
import sys
import timeit
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from remn.benchmark.mask_samples import FORMS, SOFT, drawn, many_small, pil_down, render, soften, store  # noqa: E402
from remn.data.masks import mask_softness  # noqa: E402
from remn.data.synthetic import generate_video, layout_spec  # noqa: E402

REAL_DATA = Path(os.environ.get("REMN_REAL_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
DAVIS_MINI = REAL_DATA / "davis2016-mini"  # three real DAVIS 2016 sequences, when present


def sources(quick: bool):  # (group, id map) of the clean masks that are also softened
    for path in sorted(DAVIS_MINI.glob("Annotations/480p/*/*.png"))[:: (50 if quick else 10)]:  # if present
        yield "DAVIS 2016 (real)", (np.asarray(Image.open(path)) > 0).astype(np.int64)
    for layout, objects, seed in itertools.product(
        ("davis", "youtube", "generic"), ((1, 3), (5, 10)), range(1 if quick else 2)
    ):
        video = generate_video(1000 + seed, spec=layout_spec(layout, frames=8, height=256, width=256, objects=objects))
        yield from (("generated", video.masks[t].astype(np.int64)) for t in (0, 7))


def ranges(rows: list[tuple]) -> str:  # min-max of each column of (main regions, edge values, margin, share)
    columns = list(zip(*rows))
    return " | ".join(f"{min(c)}-{max(c)}" for c in columns[:3]) + f" | {min(columns[3]):.2f}-{max(columns[3]):.2f}"


def main(quick: bool) -> None:
    rng = np.random.default_rng(0)
    cells, stats = defaultdict(list), defaultdict(list)

    def record(case, form, image, void=None):
        s = mask_softness(image, void=void)
        cells[case, form].append(s.soft)
        stats[case, form].append(
            (
                len(s.mains),
                s.edge_values,
                s.edge_values - len(s.mains) + 1,
                s.edge_values / max(1, s.edge_values + s.other_values),
            )
        )

    clean, box = list(sources(quick)), np.ones((3, 3), np.uint8)
    for group, ids in clean:
        for form in FORMS + ("grey ids",):
            record(f"clean: {group}", form, store(render(ids, form), form))
        if group == "generated":  # DAVIS 2017 style: a void band (255) along every edge
            band = cv2.dilate(ids.astype(np.uint8), box) != cv2.erode(ids.astype(np.uint8), box)
            voided = store(render(np.where(band, 255, ids), "palette-davis"), "palette-davis")
            record("clean: generated, void band", "palette-davis", voided, void=255)
            record("clean: generated, void band, void not given", "palette-davis", voided)
    for _ in range(3 if quick else 12):
        ids = many_small(rng)
        for form in ("palette-davis", "rgb", "grey16", "grey ids"):
            record("clean: many small objects", form, store(render(ids, form), form))
    for name, how, amount in SOFT:
        for group, ids in clean:
            for form in FORMS:
                record(f"soft: {name}", form, store(soften(ids, form, how, amount), form))
    for _ in range(3 if quick else 12):
        big = drawn(rng)
        for name, resample in (("lanczos", Image.Resampling.LANCZOS), ("box", Image.Resampling.BOX)):
            for form in FORMS:
                record(f"soft: PIL drawing, {name}", form, store(pil_down(big, form, resample), form))

    columns = FORMS + ("grey ids",)
    print("refused / masks:\n\n| masks | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
    for case in dict.fromkeys(c for c, _ in cells):
        row = [f"{sum(cells[case, f])}/{len(cells[case, f])}" if cells[case, f] else "" for f in columns]
        print(f"| {case} | " + " | ".join(row) + " |")
    header = " | main regions | edge values | edge values - (main regions - 1) | edge share |\n|---|---|---|---|---|"
    print("\n| masks" + header)
    for case in dict.fromkeys(c for c, _ in cells):
        print(f"| {case} | {ranges([r for (c, _), rows in stats.items() if c == case for r in rows])} |")
    print("\n| masks, by form" + header)
    for kind, form in itertools.product(("clean", "soft"), columns):
        found = [r for (c, f), rows in stats.items() if c.startswith(kind) and f == form for r in rows]
        if found:
            print(f"| {kind}, {form} | {ranges(found)} |")
    print("\nmilliseconds per mask_softness call at 854x480 (median of 5; shared machine):")
    spec = layout_spec("davis", frames=1, height=480, width=854, objects=(5, 5))
    objects = generate_video(3, spec=spec).masks[0].astype(np.int64)
    davis = cv2.resize((clean[0][1] > 0).astype(np.uint8), (854, 480), interpolation=cv2.INTER_NEAREST)
    many = many_small(rng, 480, 854)
    timed = {
        "clean 0/255": store(render(davis, "grey"), "grey"),  # (2 values: nothing to analyse)
        "clean palette, 5 objects": store(render(objects, "palette-davis"), "palette-davis"),
        "clean palette, many small objects": store(render(many, "palette-davis"), "palette-davis"),
        "soft grey, 4x area": store(soften(objects, "grey", "4x", 0), "grey"),
        "soft 16-bit, blur 3": store(soften(objects, "grey", "blur", 3), "grey16"),
    }
    for name, image in timed.items():
        seconds = timeit.repeat(lambda: mask_softness(image), number=1, repeat=5)
        print(f"  {name}: {1000 * statistics.median(seconds):.1f}")


if __name__ == "__main__":
    main(quick="--quick" in sys.argv[1:])
