"""Soft and lossy masks: the analysis that tells object ids from anti-aliasing, blur or compression.

:func:`remn.data.masks.read_mask` refuses a mask that is not object ids rather than guess at it;
this module holds the rule it applies (described in remn/data/masks.py's docstring, with the
measurements behind the numbers in docs/data.md, made with ``scripts/measure_masks.py``):

* :class:`Softness`: what the analysis of one mask's values found (main values, edge values,
  whether the mask is soft);
* :class:`MaskRepair`: how to read a soft or lossy mask instead of refusing it
  (``--mask-threshold T`` or ``--mask-snap``);
* the lossy-format check (JPEG, JPEG 2000, lossy WebP, JPEG-compressed TIFF, by actual format).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

# The numbers of the soft-mask rule (module docstring; measured in docs/data.md).
MAIN_INTERIOR = 0.0005  # a main value has a uniform 3x3 interior of at least this share of the image
NEAR_UNIFORM = 0.12  # ... or is the commonest value of a large area whose 3x3 range is within this share of full scale
FAINT = 0.03  # an edge value within this share of the main values' range of the nearest main value is a faint copy
BLEND = 0.15  # a blend may stray from the line between two main colours by FAINT plus this share of their distance
CHORD = 24  # pixels searched in each of 8 directions for the main regions around a pixel
SOFT_MIN_VALUES = 2  # a soft mask has at least this many edge values, at least one per main region but one,
SOFT_MIN_SHARE = 0.1  # ... and they are at least this share of the values that are not main

_AXES = ((0, 1), (1, 0), (1, 1), (1, -1))


@dataclass(frozen=True)
class MaskRepair:
    """How :func:`read_mask` reads a soft or lossy mask instead of refusing it (exactly one of):

    * ``threshold=T`` (``--mask-threshold T``): binarise: object 1 where the grey value (for palette
      and colour masks the brightness, ITU-R 601 luma, of the pixel's colour) is at least ``T`` times
      the brightest value in the mask; for a mask of one object on a dark background.
    * ``snap=True`` (``--mask-snap``): every pixel that is not of a main value (see
      :func:`mask_softness`) takes the main value nearest to its own, among the two main regions
      it lies between when it lies between two, else among all main values; the result is then read
      by the file's usual rule (grey values as ids, colours mapped to ids), except that a 16-bit
      mask left with 0 and one value above 255 is one object, as a 0/65535 mask is.

    Masks that are neither soft nor lossy are read as they are, whatever the repair.
    """

    threshold: float | None = None
    snap: bool = False

    def __post_init__(self) -> None:
        if (self.threshold is None) == (not self.snap):
            raise ValueError("MaskRepair takes exactly one of threshold=T or snap=True")
        if self.threshold is not None and not 0.0 < float(self.threshold) <= 1.0:
            raise ValueError(f"MaskRepair.threshold is a share of the brightest value, in (0, 1]; got {self.threshold}")


@dataclass(frozen=True)
class Softness:
    """What :func:`mask_softness` found in a mask's values (void left out)."""

    values: int  # distinct values
    mains: tuple[int, ...]  # the main values, as in the file (grey level, palette index, or 0xRRGGBB)
    edge_values: int  # values found only along edges: blends between main regions, faint copies around them
    other_values: int  # the rest of the values that are not main (small objects, thin lines, specks)

    @property
    def soft(self) -> bool:
        return self.edge_values >= max(SOFT_MIN_VALUES, len(self.mains) - 1) and self.edge_values >= SOFT_MIN_SHARE * (
            self.edge_values + self.other_values
        )


class MaskValues:
    """A mask's distinct values: ``values`` sorted (as in the file), their ``counts``, ``colours``
    (n, C) float64 used to compare them (grey level or RGB), and ``index`` (H, W) into them.
    8- and 16-bit files go through OpenCV's histogram and look-up table (about 1 ms at 854x480)."""

    def __init__(self, raw: np.ndarray, colours_of, scale: float, void_value: int | None):
        import cv2

        self.raw, self.scale = raw, scale  # scale: full scale of a channel, 255 or 65535
        self._index = self._position = None
        small = raw.dtype in (np.uint8, np.uint16) or (
            raw.dtype.kind in "ui" and raw.size and 0 <= raw.min() and raw.max() < 65536
        )
        if small:
            if raw.dtype not in (np.uint8, np.uint16):
                raw = self.raw = raw.astype(np.uint16)
            bins = 256 if raw.dtype == np.uint8 else 65536
            counts = cv2.calcHist([raw], [0], None, [bins], [0, bins]).ravel().astype(np.int64)
            self.values = np.flatnonzero(counts)
            self.counts = counts[self.values]
            self._position = np.zeros(bins, dtype=np.uint8 if bins == 256 else np.uint16)
            self._position[self.values] = np.arange(len(self.values))
        else:
            self.values, index, self.counts = np.unique(raw, return_inverse=True, return_counts=True)
            self._index = index.reshape(raw.shape)
        self.colours = np.asarray(colours_of(self.values), dtype=np.float64).reshape(len(self.values), -1)
        self.void = None  # position of the void value in ``values``
        if void_value is not None:
            at = int(np.searchsorted(self.values, void_value))
            self.void = at if at < len(self.values) and self.values[at] == void_value else None

    @property
    def index(self) -> np.ndarray:
        if self._index is None:
            import cv2

            self._index = cv2.LUT(self.raw, self._position) if self.raw.dtype == np.uint8 else self._position[self.raw]
        return self._index

    def per_pixel(self, table: np.ndarray) -> np.ndarray:
        """``table[index]`` as int64: one number per distinct value spread to the pixels, in one pass."""
        table = np.asarray(table, dtype=np.int64)
        if self._position is not None and self._index is None:
            full = np.zeros(len(self._position), dtype=np.int64)
            full[self.values] = table
            if self.raw.dtype == np.uint8 and (not len(table) or 0 <= table.min() <= table.max() <= 255):
                import cv2

                return cv2.LUT(self.raw, full.astype(np.uint8)).astype(np.int64)
            return full[self.raw]
        return table[self.index]

    def __len__(self) -> int:
        return len(self.values)

    @property
    def real(self) -> int:
        """Distinct values other than void."""
        return len(self.values) - (self.void is not None)


def _between(own: np.ndarray, a: np.ndarray, b: np.ndarray, faint: float) -> np.ndarray:
    """Whether colours ``own`` (N, C) are blends of ``a`` and ``b`` (N, C): strictly between them along
    the line from one to the other, and off that line by at most ``faint`` plus BLEND of their distance."""
    ab = b - a
    length2 = (ab * ab).sum(1)
    along = ((own - a) * ab).sum(1) / np.maximum(length2, 1e-12)
    off = np.sqrt(((own - a - along[:, None] * ab) ** 2).sum(1))
    return (length2 > 0) & (along > 0) & (along < 1) & (off <= faint + BLEND * np.sqrt(length2))


def _spread(mains: np.ndarray) -> float:
    """FAINT of the largest per-channel range of the main colours."""
    return FAINT * float((mains.max(0) - mains.min(0)).max()) if len(mains) else 0.0


class EdgeAnalysis:
    """The soft-mask analysis of :func:`mask_softness` (module docstring), kept for a snap repair."""

    def __init__(self, v: MaskValues, full: bool = False):
        import cv2

        self.v, self.cv2 = v, cv2
        self.is_void = np.zeros(len(v), dtype=bool)
        if v.void is not None:
            self.is_void[v.void] = True
        height, width = v.index.shape
        self.least = max(2.0, MAIN_INTERIOR * height * width)
        self.main = self._exact_mains()
        self.edge, self.other, self.where = 0, 0, None
        needed = max(SOFT_MIN_VALUES, np.count_nonzero(self.main) - 1)
        if not full and np.count_nonzero(~self.main & ~self.is_void) < needed:
            return  # too few to be soft, whatever main regions step 2 adds: most clean masks stop here
        self._add_noisy_mains()
        self._drop_faint_mains()
        if np.count_nonzero(self.main) >= 2:
            self._classify()

    def _exact_mains(self) -> np.ndarray:
        """Step 1: values whose interior (pixels with a 3x3 neighbourhood all of that value) is large."""
        cv2, n = self.cv2, len(self.v)
        box, index = np.ones((3, 3), np.uint8), self.v.index
        if index.dtype == np.uint8 and n < 256:  # OpenCV all the way: mark other pixels 255, count
            differs = cv2.compare(cv2.erode(index, box), cv2.dilate(index, box), cv2.CMP_NE)
            interior = cv2.calcHist([cv2.max(index, differs)], [0], None, [256], [0, 256]).ravel()[:n]
        else:  # morphology wants 8/16-bit or float32 (exact for up to 2**24 distinct values)
            cast = index.astype(np.uint16 if n <= 65536 else np.float32)
            interior = np.bincount(index[cv2.erode(cast, box) == cv2.dilate(cast, box)], minlength=n)
        return (interior >= self.least) & ~self.is_void

    def _add_noisy_mains(self) -> None:
        """Step 2: the commonest value in the core (the half farthest from its border) of each large
        near-uniform area whose colours are not those of an exact main value, unless that value is a
        blend of two exact ones (a plateau on a blurred slope): an object that lossy compression or a
        blur left with no uniform 3x3 patch."""
        cv2, v, n = self.cv2, self.v, len(self.v)
        exact = v.colours[self.main]
        near = self.is_void.copy()
        for colour in exact:
            near |= np.abs(v.colours - colour).max(1) <= FAINT * v.scale
        flat = (self._spread() <= NEAR_UNIFORM * v.scale) & ~self._per_pixel(near)
        _, areas, stats, _ = cv2.connectedComponentsWithStats(flat.astype(np.uint8), connectivity=8)
        for area in np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= self.least) + 1:  # (label 0: not flat)
            x, y, w, h = stats[area, :4]
            region = (areas[y : y + h, x : x + w] == area).astype(np.uint8)
            depth = cv2.distanceTransform(np.pad(region, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
            if depth.max() < 2:  # a thin band (a slope, a strip): no core
                continue
            core = v.index[y : y + h, x : x + w][depth >= 0.5 * depth.max()]
            value = int(np.argmax(np.bincount(core, minlength=n)))
            pairs = np.repeat(exact, len(exact), axis=0), np.tile(exact, (len(exact), 1))
            if not _between(v.colours[[value] * len(pairs[0])], *pairs, _spread(exact)).any():
                self.main[value] = True

    def _per_pixel(self, table: np.ndarray) -> np.ndarray:
        """``table[index]`` for a table of booleans or small numbers, by OpenCV's look-up table when it can."""
        index = self.v.index
        if index.dtype == np.uint8 and table.dtype == bool:
            return self.cv2.LUT(index, np.pad(table.astype(np.uint8), (0, 256 - len(table)))).view(bool)
        return table[index]

    def _spread(self) -> np.ndarray:
        """Per pixel, the largest range of a colour channel over its 3x3 neighbourhood."""
        cv2, v = self.cv2, self.v
        box = np.ones((3, 3), np.uint8)
        colours = v.colours
        if colours.min() >= 0 and colours.max() <= 255 and np.all(colours == np.round(colours)):
            colours = colours.astype(np.uint8)
        else:
            colours = colours.astype(np.float32)
        if v.index.dtype == np.uint8 and colours.dtype == np.uint8:
            table = np.pad(colours, ((0, 256 - len(colours)), (0, 0)))
            planes = [cv2.LUT(v.index, np.ascontiguousarray(table[:, c])) for c in range(colours.shape[1])]
        else:
            planes = [colours[:, c][v.index] for c in range(colours.shape[1])]
        spread = None
        for plane in planes:
            rise = cv2.subtract(cv2.dilate(plane, box), cv2.erode(plane, box))
            spread = rise if spread is None else cv2.max(spread, rise)
        return spread

    def _drop_faint_mains(self) -> None:
        """A main value within FAINT of the main colours' range of a more common one is a faint copy of it."""
        v, mains = self.v, np.flatnonzero(self.main)
        self.faint = _spread(v.colours[mains])
        order = mains[np.argsort(-v.counts[mains], kind="stable")]
        close = np.abs(v.colours[order][:, None, :] - v.colours[order][None, :, :]).max(2) <= self.faint
        kept = np.zeros(len(order), dtype=bool)
        for at in range(len(order)):
            kept[at] = not (close[at, :at] & kept[:at]).any()
        self.main[:] = False
        self.main[order[kept]] = True

    def _classify(self) -> None:
        """Step 3: from every pixel that is neither main nor void, the first main pixel in 8 directions
        (up to CHORD px); a pixel is an edge pixel when it is a faint copy of the nearest one or a blend
        of the two ends of the shortest chord through it between different main regions; a value is an
        edge value when at least half of the pixels that found a main pixel are edge pixels."""
        v, n = self.v, len(self.v)
        height, width = v.index.shape
        mains = np.flatnonzero(self.main)
        main_colours = v.colours[mains]
        slot = np.full(n, -1, dtype=np.int64)
        slot[mains] = np.arange(len(mains))
        pad = CHORD
        board = np.full((height + 2 * pad, width + 2 * pad), -2, dtype=np.int32)  # -2: outside the image
        board[pad : pad + height, pad : pad + width] = slot[v.index]  # -1: not main
        ys, xs = np.nonzero((board[pad : pad + height, pad : pad + width] < 0) & ~self.is_void[v.index])
        count = len(ys)
        nearest, nearest_at = np.full(count, -1), np.full(count, np.inf)
        chord, side_a, side_b = np.full(count, np.inf), np.full(count, -1), np.full(count, -1)
        for dy, dx in _AXES:
            step = 1.4142 if dy and dx else 1.0
            sides = []
            for sign in (1, -1):
                found, at = np.full(count, -1), np.full(count, np.inf)
                active = np.arange(count)
                for t in range(1, CHORD + 1):
                    if not len(active):
                        break
                    seen = board[ys[active] + pad + sign * t * dy, xs[active] + pad + sign * t * dx]
                    hit = seen >= 0
                    found[active[hit]], at[active[hit]] = seen[hit], t * step
                    active = active[seen == -1]
                sides.append((found, at))
                closer = at < nearest_at
                nearest[closer], nearest_at[closer] = found[closer], at[closer]
            (found_a, at_a), (found_b, at_b) = sides
            length = np.where((found_a >= 0) & (found_b >= 0) & (found_a != found_b), at_a + at_b, np.inf)
            shorter = length < chord
            chord[shorter], side_a[shorter], side_b[shorter] = length[shorter], found_a[shorter], found_b[shorter]
        self.where, self.side_a, self.side_b = (ys, xs), side_a, side_b
        own = v.colours[v.index[ys, xs]]
        placed = nearest >= 0
        faint = placed & (np.abs(own - main_colours[np.maximum(nearest, 0)]).max(1) <= self.faint)
        blend = (side_a >= 0) & _between(
            own, main_colours[np.maximum(side_a, 0)], main_colours[np.maximum(side_b, 0)], self.faint
        )
        value = v.index[ys, xs].astype(np.int64)
        placed_count = np.bincount(value[placed], minlength=n)
        edge_count = np.bincount(value[faint | blend], minlength=n)
        candidates = ~self.main & ~self.is_void
        edge = candidates & (placed_count > 0) & (edge_count >= 0.5 * placed_count)
        self.edge, self.other = int(edge.sum()), int((candidates & ~edge).sum())

    def softness(self) -> Softness:
        v = self.v
        return Softness(
            values=v.real,
            mains=tuple(int(x) for x in v.values[self.main]),
            edge_values=self.edge,
            other_values=self.other,
        )

    def snapped(self) -> np.ndarray:
        """Per pixel, the position (in the values) of the main value it snaps to; void stays void.

        A pixel between two main regions takes the one of the two nearer to it in colour, any
        other pixel the main value nearest in colour."""
        v = self.v
        out = v.index.astype(np.int64)
        mains = np.flatnonzero(self.main)
        if len(mains) == 0:
            return out
        main_colours = v.colours[mains]
        gaps = ((v.colours[:, None, :] - main_colours[None, :, :]) ** 2).sum(2)
        nearest = mains[np.argmin(gaps, axis=1)]
        out = np.where((self.main | self.is_void)[out], out, nearest[out])
        if self.where is not None:
            ys, xs = self.where
            pair = self.side_a >= 0
            own = v.colours[v.index[ys[pair], xs[pair]]]
            a, b = self.side_a[pair], self.side_b[pair]
            nearer_a = ((own - main_colours[a]) ** 2).sum(1) <= ((own - main_colours[b]) ** 2).sum(1)
            out[ys[pair], xs[pair]] = mains[np.where(nearer_a, a, b)]
        return out


# --------------------------------------------------------------------------- file formats
def lossy_format(image: Image.Image, path: Path) -> str | None:
    """The name of the file's lossy compression, None when it is lossless."""
    fmt = image.format or ""
    if fmt in ("JPEG", "MPO"):
        return "JPEG"
    if fmt == "JPEG2000":
        return "JPEG 2000"
    if fmt == "TIFF" and "jpeg" in str(image.info.get("compression", "")).lower():
        return "JPEG-compressed TIFF"
    if fmt == "WEBP" and _webp_is_lossy(path):
        return "lossy WebP"
    return None


def _webp_is_lossy(path: Path) -> bool:
    """Whether a WebP file holds VP8 (lossy) rather than VP8L (lossless) data, from its RIFF chunks."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(1 << 16)
    except OSError:
        return True
    offset = 12
    while offset + 8 <= len(data):
        tag, size = data[offset : offset + 4], int.from_bytes(data[offset + 4 : offset + 8], "little")
        if tag == b"VP8 ":
            return True
        if tag == b"VP8L":
            return False
        if tag == b"ANMF":  # an animation frame: its own chunks follow a 16-byte header
            offset += 8 + 16
            continue
        offset += 8 + size + (size & 1)
    return True
