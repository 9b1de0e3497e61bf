"""Reading and writing masks and frames; every data path in the project goes through here.

A mask is a 2-D array of object ids (0 = background). Files come in several forms and the
reader says which one it found (:class:`MaskInfo`):

* ``palette``: a palette ('P') PNG, pixel values are ids (DAVIS 2017, YouTube-VOS);
* ``binary``: single-channel 8-bit with values 0 and 255 only (DAVIS 2016): 255 becomes id 1;
* ``ids``: single-channel with values 0..K, taken as ids;
* ``rgb``: colour masks; each colour becomes an id (colours of the DAVIS palette keep their
  palette index, others are numbered in sorted colour order) and a :class:`MaskWarning` lists the
  mapping, because colours are a guess about intent.

Problems raise :class:`DataError` naming the file, the frame and what is wrong; ``code`` is a
short machine-readable tag that tests and the checker use.
"""

from __future__ import annotations

import os
import re
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

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


class DataError(ValueError):
    """Bad input data. ``code`` names the kind of problem; the message names file and frame."""

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
    """A mask was read by interpreting it (colours mapped to ids)."""


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
        raise DataError(UNREADABLE, "file not found", path, frame) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(UNREADABLE, f"unreadable or truncated image ({error})", path, frame) from None
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
        raise DataError(UNREADABLE, "file not found", path, frame) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(UNREADABLE, f"unreadable image ({error})", path, frame) from None


def _rgb_to_ids(rgb: np.ndarray, path: Path, frame) -> tuple[np.ndarray, dict[int, tuple[int, int, int]]]:
    flat = rgb.reshape(-1, 3)
    colours, inverse = np.unique(flat, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
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
            raise DataError(TOO_MANY_OBJECTS, f"colour mask has {len(colours) - 1} colours; "
                            "is it a photo or an anti-aliased drawing rather than a mask?", path, frame)
        lut[index] = next_id
        taken.add(next_id)
        mapping[next_id] = colour_t
    labels = lut[inverse].reshape(rgb.shape[:2])
    return labels, mapping


def read_mask(path: str | os.PathLike, *, frame: str | int | None = None,
              expected_size: tuple[int, int] | None = None, max_objects: int | None = None,
              void: int | None = None, warn: bool = True) -> tuple[np.ndarray, MaskInfo]:
    """Read a mask file as an (H, W) int64 array of ids and say what kind of file it was.

    ``expected_size`` is (width, height) of the frame it belongs to; ``void`` is an id to be
    read as background (255 in DAVIS 2017 ground truth); ``max_objects`` limits the number of ids.
    """
    path = Path(path)
    image = _open(path, frame)
    size = image.size
    if expected_size is not None and tuple(expected_size) != size:
        raise DataError(SIZE_MISMATCH, f"mask is {size[0]}x{size[1]} but its frame is "
                        f"{expected_size[0]}x{expected_size[1]}", path, frame)
    palette = None
    colours: dict[int, tuple[int, int, int]] = {}
    mode = image.mode
    if mode == "P":
        labels = np.asarray(image).astype(np.int64)
        raw = image.getpalette()
        palette = bytes(raw) if raw is not None else None
        kind = "palette"
    elif mode in ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L"):
        grey = image.getchannel(0) if mode == "LA" else image
        labels = np.asarray(grey).astype(np.int64)
        top = 65535 if mode.startswith("I;16") else (1 if mode == "1" else 255)
        present = np.unique(labels)
        if mode != "1" and top > 1 and set(present.tolist()) <= {0, top} and top in present:
            labels = (labels == top).astype(np.int64)
            kind = "binary"
        else:
            kind = "ids"
        if labels.min(initial=0) < 0:
            raise DataError(UNREADABLE, "mask has negative values", path, frame)
    elif mode in ("RGB", "RGBA", "RGBX"):
        array = np.asarray(image)
        rgb = array[..., :3].copy()
        if mode == "RGBA":
            rgb[array[..., 3] == 0] = 0
        labels, colours = _rgb_to_ids(rgb, path, frame)
        kind = "rgb"
        if warn and colours:
            listing = ", ".join(f"{c} -> {i}" for i, c in sorted(colours.items()))
            warnings.warn(f"{path}: colour mask read as object ids by colour: {listing}",
                          MaskWarning, stacklevel=2)
    elif mode == "F":
        array = np.asarray(image)
        if not np.all(array == np.round(array)):
            raise DataError(UNREADABLE, "floating-point mask with fractional values; "
                            "save masks as integer ids", path, frame)
        labels = array.astype(np.int64)
        kind = "ids"
    else:
        raise DataError(UNREADABLE, f"unsupported image mode {mode!r} for a mask", path, frame)
    if void is not None:
        labels = np.where(labels == void, 0, labels)
    ids = tuple(int(i) for i in np.unique(labels) if i != 0)
    if max_objects is not None and len(ids) > max_objects:
        raise DataError(TOO_MANY_OBJECTS, f"{len(ids)} objects (ids {list(ids)[:12]}) but the limit is "
                        f"{max_objects}; is this a soft or anti-aliased mask?", path, frame)
    info = MaskInfo(kind=kind, ids=ids, size=size, palette=palette, colours=colours)
    return labels, info


def check_first_mask(labels: np.ndarray, path, frame=None) -> None:
    """A first-frame mask must name at least one object."""
    if not np.any(labels):
        raise DataError(EMPTY_FIRST_MASK, "first-frame mask has no object pixels", path, frame)


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


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
    _atomic_write(Path(path), lambda target: image.save(target, format="PNG"))


def save_image(path: str | os.PathLike, rgb: np.ndarray, quality: int = 95) -> None:
    """Write an RGB frame (JPEG or PNG by extension), atomically."""
    path = Path(path)
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    options = {"quality": quality} if fmt == "JPEG" else {}
    _atomic_write(path, lambda target: image.save(target, format=fmt, **options))
