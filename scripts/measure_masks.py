"""Measure the soft-mask rule of remn.data.masks on clean and soft masks: the tables of docs/data.md,
which says what the masks are. ``python scripts/measure_masks.py`` (about 2 minutes on 2 shared CPU
cores; ``--quick``: fewer masks). Each mask is stored as 8-bit grey levels, 16-bit grey, a colour
image, a palette image with an adaptive palette and one snapped to the DAVIS palette, and analysed
by mask_softness, as read_mask does."""

from __future__ import annotations

import io
import itertools
import statistics
import sys
import timeit
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from remn.data.masks import DAVIS_PALETTE, mask_softness  # noqa: E402
from remn.data.synthetic import generate_video, layout_spec  # noqa: E402

DAVIS_MINI = Path(__file__).resolve().parents[2] / "shared" / "data" / "davis2016-mini"
PALETTE = np.frombuffer(DAVIS_PALETTE, dtype=np.uint8).reshape(256, 3)
FORMS = ("grey", "grey16", "rgb", "palette", "palette-davis")
DAVIS_P = Image.frombytes("P", (1, 1), b"\0")
DAVIS_P.putpalette(DAVIS_PALETTE)


def render(ids: np.ndarray, form: str) -> np.ndarray:
    """Float picture of an id map: ids as grey levels, evenly spaced levels, or the DAVIS palette's colours."""
    if form == "grey ids":
        return ids.astype(np.float32)
    if form.startswith("grey"):
        present = [v for v in np.unique(ids) if v]
        levels = np.zeros(int(ids.max()) + 1, np.float32)
        levels[present] = 255.0 * np.arange(1, len(present) + 1) / max(1, len(present))
        return levels[ids]
    return PALETTE[ids % 256].astype(np.float32)


def store(picture: np.ndarray, form: str) -> Image.Image:
    """The picture as the file an editor would save."""
    if form == "grey16":
        return Image.fromarray(np.clip(np.rint(picture * 257), 0, 65535).astype(np.uint16))
    image = Image.fromarray(np.clip(np.rint(picture), 0, 255).astype(np.uint8))
    if form == "palette":
        return image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    if form == "palette-davis":
        return image.quantize(palette=DAVIS_P, dither=Image.Dither.NONE)
    return image


SOFT = (
    [("4x area", "4x", 0)]
    + [(f"blur {s}", "blur", s) for s in (0.5, 1, 2, 3)]
    + [(f"bilinear x{k}", "bilinear", k) for k in (0.5, 1.5)]
    + [(f"jpeg {q}", "jpeg", q) for q in (50, 75, 90, 98)]
)


def soften(ids: np.ndarray, form: str, how: str, amount: float) -> np.ndarray:
    """A soft picture: blurred, resized bilinearly, JPEG-compressed, or drawn at 4x and area-downsampled."""
    if how == "blur":
        return cv2.GaussianBlur(render(ids, form), (0, 0), amount)
    if how == "bilinear":
        return cv2.resize(render(ids, form), None, fx=amount, fy=amount, interpolation=cv2.INTER_LINEAR)
    if how == "jpeg":
        buffer, picture = io.BytesIO(), np.clip(np.rint(render(ids, form)), 0, 255).astype(np.uint8)
        Image.fromarray(picture).save(buffer, "JPEG", quality=amount)
        return np.asarray(Image.open(buffer)).astype(np.float32)
    (h, w), big = ids.shape, cv2.resize(ids.astype(np.uint8), None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    best, label = np.full(big.shape, -1.0, np.float32), np.zeros(big.shape, np.int64)
    for v in np.unique(big):
        score = cv2.GaussianBlur((big == v).astype(np.float32), (0, 0), 2.8)
        label[score > best], best = v, np.maximum(best, score)
    return cv2.resize(render(label, form), (w, h), interpolation=cv2.INTER_AREA)


def many_small(rng, h=240, w=320) -> np.ndarray:
    m, nid = np.zeros((h, w), np.int32), 1
    draw = lambda n: int(rng.integers(n))  # noqa: E731
    for _ in range(rng.integers(1, 5)):  # large objects, touching each other where they overlap
        axes = (int(rng.integers(10, w // 3)), int(rng.integers(10, h // 3)))
        cv2.ellipse(m, (draw(w), draw(h)), axes, float(rng.uniform(0, 180)), 0, 360, nid, -1)
        nid += 1
    for _ in range(rng.integers(2, 8)):  # poles, 1-2 px wide
        x, y = draw(w), draw(h)
        cv2.line(m, (x, y), (x + int(rng.integers(-5, 6)), y + int(rng.integers(30, 120))), nid, 1 + draw(2))
        nid += 1
    for _ in range(rng.integers(2, 6)):  # pairs of touching rectangles
        x, y, a, b = draw(w - 30), draw(h - 20), 3 + draw(12), 3 + draw(12)
        m[y : y + b, x : x + a], m[y : y + b, x + a : x + 2 * a], nid = nid, nid + 1, nid + 2
    for _ in range(min(256 - nid, int(rng.integers(50, 201)))):  # specks of 1-3 px
        y, x = draw(h - 3), draw(w - 3)
        speck = rng.random((3, 3)) < rng.uniform(0.1, 0.4)
        speck[draw(3), draw(3)] = True
        m[y : y + 3, x : x + 3][speck], nid = nid, nid + 1
    return m.astype(np.int64)


def drawn(rng, h=240, w=320) -> Image.Image:
    """1-5 ellipses or polygons drawn with PIL at 4x (ids 1..5)."""
    big = Image.new("L", (4 * w, 4 * h))
    pen = ImageDraw.Draw(big)
    for i in range(1, int(rng.integers(1, 6)) + 1):
        cx, cy, r = rng.uniform(0.1, 0.9) * 4 * w, rng.uniform(0.1, 0.9) * 4 * h, rng.uniform(0.05, 0.25) * 4 * h
        if rng.random() < 0.5:
            pen.ellipse([cx - r, cy - r * rng.uniform(0.4, 1), cx + r, cy + r], fill=i)
        else:
            turns, reach = np.sort(rng.uniform(0, 2 * np.pi, 7)), r * rng.uniform(0.5, 1, 7)
            pen.polygon([(float(cx + q * np.cos(t)), float(cy + q * np.sin(t))) for q, t in zip(reach, turns)], fill=i)
    return big


def pil_down(big: Image.Image, form: str, resample) -> np.ndarray:
    picture, size = render(np.asarray(big).astype(np.int64), form), (big.width // 4, big.height // 4)
    planes = [
        np.asarray(Image.fromarray(np.ascontiguousarray(plane), "F").resize(size, resample))
        for plane in (picture[..., None] if picture.ndim == 2 else picture).transpose(2, 0, 1)
    ]
    return planes[0] if picture.ndim == 2 else np.stack(planes, -1)


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
