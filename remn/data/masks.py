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
  palette or colour mask's ``void`` id takes no part. The constants in remn/data/mask_softness.py hold the numbers;
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

from .mask_softness import EdgeAnalysis, MaskRepair, MaskValues, Softness, lossy_format

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

    def __init__(self, code: str, message: str, path: str | os.PathLike | None = None, frame: str | int | None = None):
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
    names = [
        p.name
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions
    ]
    return [folder / n for n in natural_sorted(names)]


def _open(path: Path, frame) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise DataError(UNREADABLE, "file not found; check the path (and --data-root)", path, frame) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(
            UNREADABLE,
            f"unreadable or truncated image ({error}); re-extract or re-export this file (masks as PNG)",
            path,
            frame,
        ) from None
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
        raise DataError(
            UNREADABLE, f"unreadable image ({error}); re-extract or re-export this file", path, frame
        ) from None


_UNITS = {"palette": "palette indices", "rgb": "colours", "grey": "grey levels"}
_NAMES = {"palette": "palette mask", "rgb": "colour mask", "grey": "grey mask"}
_FIX = (
    "re-save it without anti-aliasing as a palette PNG or a 0..K grey PNG, or pass --mask-threshold T "
    "to binarise a one-object mask, or --mask-snap to snap every pixel to the main values"
)


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
            raise DataError(
                TOO_MANY_OBJECTS,
                f"colour mask has {len(colours) - 1} colours, more than 255 objects: "
                "a photo or an anti-aliased drawing rather than a mask? Draw one hard-edged colour per "
                "object (or pass --mask-snap)",
                path,
                frame,
            )
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
        raise DataError(
            IDS_ABOVE_255,
            f"grey mask with values above 255 ({_shown(above, 'grey')}) that is not a "
            "0/255 or 0/65535 mask; single-channel values are object ids 0..255: save the ids as an "
            "8-bit 0..K or palette PNG (one object may be 0/255 or 0/65535)",
            path,
            frame,
        )
    return present.astype(np.int64), "ids"


@dataclass
class _Decoded:
    source: str  # palette | grey | rgb
    values: MaskValues
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
            table[: len(entries)] = entries

        def colours_of(present: np.ndarray) -> np.ndarray:
            chosen = table[present]
            if len(np.unique(chosen, axis=0)) < len(present):  # shared colours: compare the indices instead
                return _grey(present)
            return chosen

        values = MaskValues(np.asarray(image), colours_of, 255.0, void)
        return _Decoded("palette", values, bytes(flat) if flat is not None else None)
    if mode in ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "F"):
        raw = np.asarray(image.getchannel(0) if mode == "LA" else image)
        if mode == "F":
            if not np.all(raw == np.round(raw)):
                raise DataError(
                    UNREADABLE,
                    "floating-point mask with fractional values; save masks as integer ids "
                    "(a palette or 0..K grey PNG)",
                    path,
                    frame,
                )
            raw = raw.astype(np.int64)
        elif mode == "1":
            raw = raw.astype(np.uint8)
        if raw.size and int(raw.min()) < 0:
            raise DataError(
                UNREADABLE,
                "mask has negative values; save masks as ids 0..255 (a palette or 0..K grey PNG)",
                path,
                frame,
            )
        scale = 255.0 if not raw.size or int(raw.max()) <= 255 else 65535.0
        return _Decoded("grey", MaskValues(raw, _grey, scale, None))  # void is an id here, not a level
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
        return _Decoded("rgb", MaskValues(raw, unpack, 255.0, void_colour))
    raise DataError(
        UNREADABLE, f"unsupported image mode {mode!r} for a mask; save masks as palette, grey or RGB PNGs", path, frame
    )


def _ids(
    decoded: _Decoded, void: int | None, path: Path, frame, index: np.ndarray | None = None
) -> tuple[np.ndarray, tuple[int, ...], str, dict]:
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


def _binarise(values: MaskValues, threshold: float) -> np.ndarray:
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
        found = (
            f"{softness.values} {unit}, {softness.edge_values} of them only along the edges between or "
            f"around {len(softness.mains)} main regions"
        )
    if lossy:
        named = f" named {path.suffix}" if path.suffix.lower() in MASK_EXTENSIONS else ""
        return DataError(
            LOSSY_MASK,
            f"{lossy} file{named}: lossy compression changes the values along every "
            f"edge{f' ({found})' if found else ''}; save masks as PNG (palette or 0..K grey), or pass "
            "--mask-threshold T to binarise a one-object mask, or --mask-snap to snap every pixel to "
            "the main values",
            path,
            frame,
        )
    return DataError(
        SOFT_MASK,
        f"soft {_NAMES[decoded.source]}: {found} (anti-aliasing, blur or lossy compression, not object ids); {_FIX}",
        path,
        frame,
    )


def read_mask(
    path: str | os.PathLike,
    *,
    frame: str | int | None = None,
    expected_size: tuple[int, int] | None = None,
    max_objects: int | None = None,
    void: int | None = None,
    warn: bool = True,
    repair: MaskRepair | None = None,
) -> tuple[np.ndarray, MaskInfo]:
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
        raise DataError(
            SIZE_MISMATCH,
            f"mask is {size[0]}x{size[1]} but its frame is "
            f"{expected_size[0]}x{expected_size[1]}; give each frame a mask of its own size",
            path,
            frame,
        )
    decoded = _decode(image, path, frame, void)
    values = decoded.values
    analysis = EdgeAnalysis(values, full=repair is not None) if values.real > 3 else None
    softness = analysis.softness() if analysis is not None else None
    lossy = lossy_format(image, path)
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
            done += f" binarised at {repair.threshold:g}: {values.real} {unit} -> {len(ids)} object" + (
                f" (its {len(merged)} main {unit} {_shown(merged, decoded.source)} became one; "
                "--mask-snap keeps them apart)"
                if len(merged) > 1
                else ""
            )
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
        raise DataError(
            TOO_MANY_OBJECTS,
            f"{len(ids)} objects (ids {list(ids)[:12]}) but the limit is "
            f"{max_objects}; merge or drop objects, or raise the limit (--max-objects)",
            path,
            frame,
        )
    info = MaskInfo(kind=kind, ids=ids, size=size, palette=decoded.palette, colours=colours, repair=done)
    return labels, info


def mask_softness(mask: str | os.PathLike | Image.Image, *, void: int | None = None) -> Softness:
    """The soft-mask analysis :func:`read_mask` makes of a mask file or image (module docstring)."""
    image = mask if isinstance(mask, Image.Image) else _open(Path(mask), None)
    values = _decode(image, Path(getattr(image, "filename", "") or "mask"), None, void).values
    if values.real <= 3:
        return Softness(values.real, tuple(int(x) for i, x in enumerate(values.values) if i != values.void), 0, 0)
    return EdgeAnalysis(values).softness()


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
