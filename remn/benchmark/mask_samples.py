"""Clean id maps and the soft versions editors and codecs make of them: the samples behind the
soft-mask rule's numbers (remn/data/mask_softness.py), measured by ``scripts/measure_masks.py``.

* :func:`render` / :func:`store`: an id map as the file an editor would save (grey, 16-bit grey,
  colour, adaptive palette, the DAVIS palette);
* :func:`soften`: blurred, resized bilinearly, JPEG-compressed or drawn at 4x and area-downsampled;
* :func:`many_small`, :func:`drawn`, :func:`pil_down`: hard clean cases (specks, poles, touching
  objects; shapes drawn with anti-aliasing; PIL's downsampling).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, ImageDraw

from remn.data.masks import DAVIS_PALETTE

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
