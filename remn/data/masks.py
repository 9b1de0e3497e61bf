"""Reading and writing masks and frames; every data path in the project goes through here.

A mask is a 2-D array of object ids (0 = background). Files come in several forms and the
reader says which one it found (:class:`MaskInfo`):

* ``palette``: a palette ('P') PNG, pixel values are ids (DAVIS 2017, YouTube-VOS);
* ``binary``: single-channel with values exactly {0, 255} or exactly {0, 65535}, in 8 or 16
  bits alike (DAVIS 2016 is 8-bit 0/255): the non-zero value becomes id 1;
* ``ids``: any other single-channel file: values are ids, and must lie in 0..255 (a 16-bit
  file with values above 255 that is not a 0/65535 mask is refused, ``ids-above-255``);
  8- and 16-bit files of the same values read alike;
* ``rgb``: colour masks; each colour becomes an id (colours of the DAVIS palette keep their
  palette index, others are numbered in sorted colour order) and a :class:`MaskWarning` lists the
  mapping, because colours are a guess about intent.

Masks that are not object ids are refused rather than guessed at:

* ``soft-mask``: values that look like anti-aliasing, blur or lossy compression. A mask with
  more than three distinct values is analysed (:func:`mask_softness`): *main* values are those
  with an interior (pixels whose 3x3 neighbourhood is all theirs) of 0.05% of the image, or the
  commonest value in the core of a large near-uniform area of other colours (an object lossy
  compression left with no uniform patch); a value is an *edge value* when at least half of its
  pixels are a faint copy of the nearest main value (within 3% of the main values' range) or lie
  on a short chord between two different main regions with a colour between theirs (a blend).
  The mask is soft when its edge values number at least 2, at least one per main region but one
  (each region's outline makes blends of its own), and at least a tenth of the values that are
  not main. Grey (8/16-bit), palette (by palette colour) and colour masks are analysed alike; a
  palette or colour mask's ``void`` id takes no part. The constants below hold the numbers;
  docs/data.md has the measurements behind them (``scripts/measure_masks.py``).
* ``lossy-mask``: the file is JPEG, JPEG 2000, lossy WebP or JPEG-compressed TIFF, by its
  actual format (a JPEG named ``.png`` is caught).

Either can be read with an explicit :class:`MaskRepair` (``--mask-threshold T`` or
``--mask-snap`` on the command line), which gives one :class:`MaskWarning` saying what it did.

Problems raise :class:`DataError` naming the file, the frame and what is wrong; ``code`` is a
short machine-readable tag that tests and the checker use.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from remn.errors import REMNError
from remn.outputs import atomic_write

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")

# Error codes carried by DataError.code
MISSING_FIRST_MASK = "missing-first-mask"
SIZE_MISMATCH = "size-mismatch"
UNREADABLE = "unreadable-image"
NO_FRAMES = "no-frames"
NAME_MISMATCH = "name-mismatch"
EMPTY_FIRST_MASK = "empty-first-mask"
TOO_MANY_OBJECTS = "too-many-objects"
UNKNOWN_OBJECT = "unknown-object"
BAD_LAYOUT = "bad-layout"
SOFT_MASK = "soft-mask"
LOSSY_MASK = "lossy-mask"
IDS_ABOVE_255 = "ids-above-255"


class DataError(REMNError, ValueError):
    """Bad input data (exit status 1). ``code`` names the kind of problem; the message names file
    and frame, the problem and the fix."""

    def __init__(self, code: str, message: str, path: str | os.PathLike | None = None,
                 frame: str | int | None = None):
        where = []
        if path is not None:
            where.append(str(path))
        if frame is not None:
            where.append(f"frame {frame}")
        prefix = (": ".join(where) + ": ") if where else ""
        super().__init__(f"{prefix}{message} [{code}]")
        self.code = code
        self.path = None if path is None else str(path)
        self.frame = frame


class DataWarning(UserWarning):
    """Input data was used, but by a rule the user should know about; the message names the
    file, what was found and the rule applied. Commands print it as one ``warning:`` line."""


class MaskWarning(DataWarning):
    """A mask was read by interpreting it (colours mapped to ids) or repaired (:class:`MaskRepair`)."""


def _make_davis_palette() -> bytes:
    """The 256-colour palette of DAVIS and YouTube-VOS masks (the PASCAL VOC colour map):
    the bits of an id are spread over the high bits of R, G and B."""
    out = bytearray()
    for index in range(256):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        out += bytes((r, g, b))
    return bytes(out)


DAVIS_PALETTE: bytes = _make_davis_palette()
_PALETTE_RGB = np.frombuffer(DAVIS_PALETTE, dtype=np.uint8).reshape(256, 3)


@dataclass(frozen=True)
class MaskInfo:
    """What the reader found in a mask file."""

    kind: str  # palette | binary | ids | rgb
    ids: tuple[int, ...]  # object ids present, background excluded, sorted
    size: tuple[int, int]  # (width, height)
    palette: bytes | None = None  # the file's palette, for writing outputs alike
    colours: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # rgb: id -> colour
    repair: str | None = None  # what a MaskRepair did to the file's values, None when nothing

    def describe(self) -> str:
        ids = ", ".join(str(i) for i in self.ids) or "none"
        return f"{self.kind} mask {self.size[0]}x{self.size[1]}, object ids: {ids}"


def natural_key(name: str) -> list:
    """Sort key that orders 'frame2' before 'frame10'."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def natural_sorted(names: Iterable[str]) -> list[str]:
    return sorted(names, key=natural_key)


def list_files(folder: str | os.PathLike, extensions: Sequence[str]) -> list[Path]:
    """Files of a folder with one of the extensions, hidden files skipped, naturally sorted."""
    folder = Path(folder)
    names = [p.name for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions]
    return [folder / n for n in natural_sorted(names)]


def _open(path: Path, frame) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise DataError(UNREADABLE, "file not found; check the path (and --data-root)", path, frame) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(UNREADABLE, f"unreadable or truncated image ({error}); re-extract or re-export this file "
                        "(masks as PNG)", path, frame) from None
    return image


def read_image(path: str | os.PathLike, frame: str | int | None = None) -> np.ndarray:
    """An RGB frame as a (H, W, 3) uint8 array."""
    image = _open(Path(path), frame)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def image_size(path: str | os.PathLike, frame: str | int | None = None) -> tuple[int, int]:
    """(width, height) of an image file, reading only its header."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise DataError(UNREADABLE, "file not found; check the path (and --data-root)", path, frame) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(UNREADABLE, f"unreadable image ({error}); re-extract or re-export this file", path,
                        frame) from None


# --------------------------------------------------------------------------- soft masks
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
        return (self.edge_values >= max(SOFT_MIN_VALUES, len(self.mains) - 1)
                and self.edge_values >= SOFT_MIN_SHARE * (self.edge_values + self.other_values))


class _Values:
    """A mask's distinct values: ``values`` sorted (as in the file), their ``counts``, ``colours``
    (n, C) float64 used to compare them (grey level or RGB), and ``index`` (H, W) into them.
    8- and 16-bit files go through OpenCV's histogram and look-up table (about 1 ms at 854x480)."""

    def __init__(self, raw: np.ndarray, colours_of, scale: float, void_value: int | None):
        import cv2

        self.raw, self.scale = raw, scale  # scale: full scale of a channel, 255 or 65535
        self._index = self._position = None
        small = raw.dtype in (np.uint8, np.uint16) or (
            raw.dtype.kind in "ui" and raw.size and 0 <= raw.min() and raw.max() < 65536)
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

            self._index = (cv2.LUT(self.raw, self._position) if self.raw.dtype == np.uint8
                           else self._position[self.raw])
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


class _EdgeAnalysis:
    """The soft-mask analysis of :func:`mask_softness` (module docstring), kept for a snap repair."""

    def __init__(self, v: _Values, full: bool = False):
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
            region = (areas[y:y + h, x:x + w] == area).astype(np.uint8)
            depth = cv2.distanceTransform(np.pad(region, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
            if depth.max() < 2:  # a thin band (a slope, a strip): no core
                continue
            core = v.index[y:y + h, x:x + w][depth >= 0.5 * depth.max()]
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
        board[pad:pad + height, pad:pad + width] = slot[v.index]  # -1: not main
        ys, xs = np.nonzero((board[pad:pad + height, pad:pad + width] < 0) & ~self.is_void[v.index])
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
        blend = (side_a >= 0) & _between(own, main_colours[np.maximum(side_a, 0)],
                                         main_colours[np.maximum(side_b, 0)], self.faint)
        value = v.index[ys, xs].astype(np.int64)
        placed_count = np.bincount(value[placed], minlength=n)
        edge_count = np.bincount(value[faint | blend], minlength=n)
        candidates = ~self.main & ~self.is_void
        edge = candidates & (placed_count > 0) & (edge_count >= 0.5 * placed_count)
        self.edge, self.other = int(edge.sum()), int((candidates & ~edge).sum())

    def softness(self) -> Softness:
        v = self.v
        return Softness(values=v.real, mains=tuple(int(x) for x in v.values[self.main]),
                        edge_values=self.edge, other_values=self.other)

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
def _lossy_format(image: Image.Image, path: Path) -> str | None:
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
        tag, size = data[offset:offset + 4], int.from_bytes(data[offset + 4:offset + 8], "little")
        if tag == b"VP8 ":
            return True
        if tag == b"VP8L":
            return False
        if tag == b"ANMF":  # an animation frame: its own chunks follow a 16-byte header
            offset += 8 + 16
            continue
        offset += 8 + size + (size & 1)
    return True


_UNITS = {"palette": "palette indices", "rgb": "colours", "grey": "grey levels"}
_NAMES = {"palette": "palette mask", "rgb": "colour mask", "grey": "grey mask"}
_FIX = ("re-save it without anti-aliasing as a palette PNG or a 0..K grey PNG, or pass --mask-threshold T "
        "to binarise a one-object mask, or --mask-snap to snap every pixel to the main values")


def _unpack(packed: int) -> tuple[int, int, int]:
    return (packed >> 16) & 255, (packed >> 8) & 255, packed & 255


def _shown(values: Sequence[int], source: str, limit: int = 6) -> str:
    listed = ", ".join(str(_unpack(x)) if source == "rgb" else str(x) for x in values[:limit])
    return listed + (", ..." if len(values) > limit else "")


def _rgb_to_ids(colours: np.ndarray, path: Path, frame) -> tuple[np.ndarray, dict[int, tuple[int, int, int]]]:
    """Ids for the distinct colours (n, 3) of a colour mask: an (n,) table and the mapping id -> colour."""
    mapping: dict[int, tuple[int, int, int]] = {}
    lut = np.zeros(len(colours), dtype=np.int64)
    taken: set[int] = set()
    others = []
    for index, colour in enumerate(colours):
        colour_t = tuple(int(c) for c in colour)
        if colour_t == (0, 0, 0):
            lut[index] = 0
            continue
        match = np.nonzero((_PALETTE_RGB == colour).all(axis=1))[0]
        if len(match) and int(match[0]) not in taken:
            lut[index] = int(match[0])
            taken.add(int(match[0]))
            mapping[int(match[0])] = colour_t
        else:
            others.append((index, colour_t))
    next_id = 1
    for index, colour_t in others:
        while next_id in taken:
            next_id += 1
        if next_id > 255:
            raise DataError(TOO_MANY_OBJECTS, f"colour mask has {len(colours) - 1} colours, more than 255 objects: "
                            "a photo or an anti-aliased drawing rather than a mask? Draw one hard-edged colour per "
                            "object (or pass --mask-snap)", path, frame)
        lut[index] = next_id
        taken.add(next_id)
        mapping[next_id] = colour_t
    return lut, mapping


def _grey_ids(present: np.ndarray, path: Path, frame) -> tuple[np.ndarray, str]:
    """The one rule for single-channel masks, 8- or 16-bit alike: exactly {0, 255} or exactly {0, 65535}
    is one object (id 1); any other values are ids 0..255. Returns an id per distinct value, and the kind."""
    listed = {int(x) for x in present}
    for top in (255, 65535):
        if top in listed and listed <= {0, top}:
            return (present == top).astype(np.int64), "binary"
    above = [int(x) for x in present if x > 255]
    if above:
        raise DataError(IDS_ABOVE_255, f"grey mask with values above 255 ({_shown(above, 'grey')}) that is not a "
                        "0/255 or 0/65535 mask; single-channel values are object ids 0..255: save the ids as an "
                        "8-bit 0..K or palette PNG (one object may be 0/255 or 0/65535)", path, frame)
    return present.astype(np.int64), "ids"


@dataclass
class _Decoded:
    source: str  # palette | grey | rgb
    values: _Values
    palette: bytes | None = None


def _grey(present: np.ndarray) -> np.ndarray:
    return present.astype(np.float64)[:, None]


def _decode(image: Image.Image, path: Path, frame, void: int | None) -> _Decoded:
    """The file's distinct raw values (grey levels, palette indices or 0xRRGGBB) and their colours."""
    mode = image.mode
    if mode == "P":
        flat = image.getpalette()
        table = np.zeros((256, 3), dtype=np.float64)
        if flat:
            entries = np.asarray(flat[:768], dtype=np.float64).reshape(-1, 3)
            table[:len(entries)] = entries

        def colours_of(present: np.ndarray) -> np.ndarray:
            chosen = table[present]
            if len(np.unique(chosen, axis=0)) < len(present):  # shared colours: compare the indices instead
                return _grey(present)
            return chosen
        values = _Values(np.asarray(image), colours_of, 255.0, void)
        return _Decoded("palette", values, bytes(flat) if flat is not None else None)
    if mode in ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "F"):
        raw = np.asarray(image.getchannel(0) if mode == "LA" else image)
        if mode == "F":
            if not np.all(raw == np.round(raw)):
                raise DataError(UNREADABLE, "floating-point mask with fractional values; save masks as integer ids "
                                "(a palette or 0..K grey PNG)", path, frame)
            raw = raw.astype(np.int64)
        elif mode == "1":
            raw = raw.astype(np.uint8)
        if raw.size and int(raw.min()) < 0:
            raise DataError(UNREADABLE, "mask has negative values; save masks as ids 0..255 (a palette or 0..K grey "
                            "PNG)", path, frame)
        scale = 255.0 if not raw.size or int(raw.max()) <= 255 else 65535.0
        return _Decoded("grey", _Values(raw, _grey, scale, None))  # void is an id here, not a level
    if mode in ("RGB", "RGBA", "RGBX"):
        array = np.asarray(image)
        rgb = array[..., :3].astype(np.uint32)
        if mode == "RGBA":
            rgb[array[..., 3] == 0] = 0
        void_colour = None
        if void is not None and 0 <= void <= 255:
            r, g, b = (int(c) for c in _PALETTE_RGB[void])
            void_colour = (r << 16) | (g << 8) | b

        def unpack(present: np.ndarray) -> np.ndarray:
            return np.stack([(present >> 16) & 255, (present >> 8) & 255, present & 255], 1)
        raw = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
        return _Decoded("rgb", _Values(raw, unpack, 255.0, void_colour))
    raise DataError(UNREADABLE, f"unsupported image mode {mode!r} for a mask; save masks as palette, grey or RGB "
                    "PNGs", path, frame)


def _ids(decoded: _Decoded, void: int | None, path: Path, frame,
         index: np.ndarray | None = None) -> tuple[np.ndarray, tuple[int, ...], str, dict]:
    """Ids per pixel by the file's rule, void read as background, from the file's values or from
    ``index`` into them (a snapped mask): (ids, object ids present, kind, rgb colour mapping)."""
    values = decoded.values
    if index is None:
        present = np.arange(len(values))
    else:
        present = np.flatnonzero(np.bincount(index.ravel(), minlength=len(values)))
    lut = np.zeros(len(values), dtype=np.int64)
    colours: dict[int, tuple[int, int, int]] = {}
    if decoded.source == "palette":
        lut[present], kind = values.values[present], "palette"
    elif decoded.source == "grey":
        lut[present], kind = _grey_ids(values.values[present], path, frame)
    else:
        lut[present], colours = _rgb_to_ids(values.colours[present].astype(np.int64), path, frame)
        kind = "rgb"
    if void is not None:
        lut[lut == void] = 0
    ids = tuple(sorted({int(i) for i in lut[present]} - {0}))
    return (values.per_pixel(lut) if index is None else lut[index]), ids, kind, colours


def _binarise(values: _Values, threshold: float) -> np.ndarray:
    """Per distinct value, whether it is at least ``threshold`` of the brightest (grey level or luma)."""
    bright = values.colours @ np.array([0.299, 0.587, 0.114]) if values.colours.shape[1] == 3 else values.colours[:, 0]
    usable = np.ones(len(values), dtype=bool)
    if values.void is not None:
        usable[values.void] = False
    top = bright[usable].max(initial=0.0)
    return usable & (bright >= threshold * top) & (top > 0)


def _refusal(decoded: _Decoded, softness: Softness | None, lossy: str | None, path: Path, frame) -> DataError:
    unit = _UNITS[decoded.source]
    found = ""
    if softness is not None and softness.soft:
        found = (f"{softness.values} {unit}, {softness.edge_values} of them only along the edges between or "
                 f"around {len(softness.mains)} main regions")
    if lossy:
        named = f" named {path.suffix}" if path.suffix.lower() in MASK_EXTENSIONS else ""
        return DataError(LOSSY_MASK, f"{lossy} file{named}: lossy compression changes the values along every "
                         f"edge{f' ({found})' if found else ''}; save masks as PNG (palette or 0..K grey), or pass "
                         "--mask-threshold T to binarise a one-object mask, or --mask-snap to snap every pixel to "
                         "the main values", path, frame)
    return DataError(SOFT_MASK, f"soft {_NAMES[decoded.source]}: {found} (anti-aliasing, blur or lossy "
                     f"compression, not object ids); {_FIX}", path, frame)


def read_mask(path: str | os.PathLike, *, frame: str | int | None = None,
              expected_size: tuple[int, int] | None = None, max_objects: int | None = None,
              void: int | None = None, warn: bool = True,
              repair: MaskRepair | None = None) -> tuple[np.ndarray, MaskInfo]:
    """Read a mask file as an (H, W) int64 array of ids and say what kind of file it was.

    ``expected_size`` is (width, height) of the frame it belongs to; ``void`` is an id to be
    read as background (255 in DAVIS 2017 ground truth); ``max_objects`` limits the number of ids.
    Soft masks (``soft-mask``) and lossy files (``lossy-mask``) are refused unless ``repair`` says
    how to read them (:class:`MaskRepair`); a repair gives one :class:`MaskWarning` (``warn``).
    """
    path = Path(path)
    image = _open(path, frame)
    size = image.size
    if expected_size is not None and tuple(expected_size) != size:
        raise DataError(SIZE_MISMATCH, f"mask is {size[0]}x{size[1]} but its frame is "
                        f"{expected_size[0]}x{expected_size[1]}; give each frame a mask of its own size", path, frame)
    decoded = _decode(image, path, frame, void)
    values = decoded.values
    analysis = _EdgeAnalysis(values, full=repair is not None) if values.real > 3 else None
    softness = analysis.softness() if analysis is not None else None
    lossy = _lossy_format(image, path)
    done = None
    if lossy or (softness is not None and softness.soft):
        if repair is None:
            raise _refusal(decoded, softness, lossy, path, frame)
        unit = _UNITS[decoded.source]
        done = f"{lossy} file" if lossy else f"soft {_NAMES[decoded.source]}"
        if repair.threshold is not None:
            on = _binarise(values, float(repair.threshold))
            labels, kind, colours = values.per_pixel(on.astype(np.int64)), "binary", {}
            ids = (1,) if labels.any() else ()
            merged = [int(x) for x in values.values[analysis.main & on]] if analysis is not None else []
            done += (f" binarised at {repair.threshold:g}: {values.real} {unit} -> {len(ids)} object"
                     + (f" (its {len(merged)} main {unit} {_shown(merged, decoded.source)} became one; "
                        "--mask-snap keeps them apart)" if len(merged) > 1 else ""))
        else:
            index = analysis.snapped() if analysis is not None else values.index
            kept = np.flatnonzero(np.bincount(index.ravel(), minlength=len(values)))
            kept = [int(values.values[i]) for i in kept if i != values.void]
            done += f" snapped to its {len(kept)} main {unit} ({_shown(kept, decoded.source)})"
            if decoded.source == "grey" and len(kept) == 2 and kept[0] == 0 and kept[1] > 255:
                # a 16-bit object whose blur left no pixel at 65535: one object, as a 0/65535 mask is
                labels, ids, kind, colours = (values.values[index] > 0).astype(np.int64), (1,), "binary", {}
            else:
                labels, ids, kind, colours = _ids(decoded, void, path, frame, index)
            done += f": {values.real} {unit} -> {len(ids)} object{'s' * (len(ids) != 1)}"
    else:
        labels, ids, kind, colours = _ids(decoded, void, path, frame)
    if warn and (done or colours):
        mapping = ", ".join(f"{c} -> {i}" for i, c in sorted(colours.items()))
        if done:
            where = f"{path}" + (f": frame {frame}" if frame is not None else "")
            text = f"{where}: {done}" + (f"; colours read as ids: {mapping}" if mapping else "")
        else:
            text = f"{path}: colour mask read as object ids by colour: {mapping}"
        warnings.warn(text, MaskWarning, stacklevel=2)
    if max_objects is not None and len(ids) > max_objects:
        raise DataError(TOO_MANY_OBJECTS, f"{len(ids)} objects (ids {list(ids)[:12]}) but the limit is "
                        f"{max_objects}; merge or drop objects, or raise the limit (--max-objects)", path, frame)
    info = MaskInfo(kind=kind, ids=ids, size=size, palette=decoded.palette, colours=colours, repair=done)
    return labels, info


def mask_softness(mask: str | os.PathLike | Image.Image, *, void: int | None = None) -> Softness:
    """The soft-mask analysis :func:`read_mask` makes of a mask file or image (module docstring)."""
    image = mask if isinstance(mask, Image.Image) else _open(Path(mask), None)
    values = _decode(image, Path(getattr(image, "filename", "") or "mask"), None, void).values
    if values.real <= 3:
        return Softness(values.real, tuple(int(x) for i, x in enumerate(values.values) if i != values.void), 0, 0)
    return _EdgeAnalysis(values).softness()


def save_mask(path: str | os.PathLike, labels: np.ndarray, palette: bytes | None = DAVIS_PALETTE) -> None:
    """Write ids as a palette PNG (``palette=None``: a plain 8-bit grey PNG), atomically."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError("ids must be in 0..255 to be saved as an 8-bit PNG")
    image = Image.fromarray(labels.astype(np.uint8))
    if palette is not None:
        image.putpalette(palette)  # an 'L' image becomes 'P' with the same indices
    atomic_write(path, lambda target: image.save(target, format="PNG"))


def save_image(path: str | os.PathLike, rgb: np.ndarray, quality: int = 95) -> None:
    """Write an RGB frame (JPEG or PNG by extension), atomically."""
    path = Path(path)
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    options = {"quality": quality} if fmt == "JPEG" else {}
    atomic_write(path, lambda target: image.save(target, format=fmt, **options))
