"""Pseudo clips made from single images with a salient-object mask (STCN's stage 0).

Sources under one root, as STCN uses them::

    fss/<class>/<N>.jpg + <N>.png            (FSS-1000)
    DUTS-TR/<name>.jpg + <name>.png          (also DUTS-TE, ecssd, BIG_small, HRSOD_small)

The two high-resolution sets (BIG_small, HRSOD_small) are repeated ``hr_repeat`` times.
Any source may be absent: the present ones are used and the absent ones are listed in
``.missing`` (and logged). Masks are kept soft (grey levels / 255), as STCN does; ``cls_gt``
is the mask above 0.5. Samples follow the contract of :mod:`remn.data.sample`, with the
mask in object slot 1 and the other slots empty.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from remn.data.augment import StaticAugment, StaticAugmentSettings
from remn.data.masks import BAD_LAYOUT, SIZE_MISMATCH, DataError, list_files, read_image
from remn.data.sample import pack_sample

__all__ = ["STATIC_SOURCES", "HIGH_RESOLUTION_SOURCES", "StaticItem", "StaticImageDataset", "read_soft_mask"]

log = logging.getLogger(__name__)

STATIC_SOURCES = ("fss", "DUTS-TR", "DUTS-TE", "ecssd", "BIG_small", "HRSOD_small")
HIGH_RESOLUTION_SOURCES = ("BIG_small", "HRSOD_small")
_CLASS_FOLDERS = ("fss",)  # sources with one sub-folder per class

_IMAGE_SUFFIXES = (".jpg", ".jpeg")
_MASK_SUFFIXES = (".png",)


@dataclass(frozen=True)
class StaticItem:
    """One image and its mask."""

    image: Path
    mask: Path
    source: str
    name: str


def read_soft_mask(path: str | Path, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """A mask as (H, W) uint8 grey levels, the way PIL's ``convert('L')`` sees it (luma of RGB).

    ``expected_size`` is (width, height) of its image.
    """
    rgb = read_image(path).astype(np.uint32)
    height, width = rgb.shape[:2]
    if expected_size is not None and (width, height) != tuple(expected_size):
        raise DataError(
            SIZE_MISMATCH,
            f"mask is {width}x{height} but its image is "
            f"{expected_size[0]}x{expected_size[1]}; give each image a mask of its size",
            path,
        )
    # ITU-R 601 luma in integers, rounded (grey inputs come back unchanged).
    luma = (rgb[..., 0] * 299 + rgb[..., 1] * 587 + rgb[..., 2] * 114 + 500) // 1000
    return luma.astype(np.uint8)


def _pairs(folder: Path, source: str, prefix: str = "") -> tuple[list[StaticItem], int]:
    """Images of a flat folder with a same-named mask; and how many had none."""
    masks = {p.stem: p for p in list_files(folder, _MASK_SUFFIXES)}
    items, unpaired = [], 0
    for image in list_files(folder, _IMAGE_SUFFIXES):
        if image.stem in masks:
            items.append(StaticItem(image, masks[image.stem], source, f"{source}/{prefix}{image.stem}"))
        else:
            unpaired += 1
    return items, unpaired


class StaticImageDataset(Dataset):
    """Clips of ``clip_frames`` pseudo frames, each an augmented copy of one image and its mask.

    Args:
        root: folder holding the sources (``STATIC_SOURCES``).
        crop_size: side of the square crop.
        clip_frames: pseudo frames per sample.
        tps_probability: probability of a thin-plate-spline bend per frame.
        max_objects: object slots of the sample (only the first is used).
        hr_repeat: repeats of the high-resolution sources.
        tps_points, tps_std: control points of the bend and their offset spread (normalised).
        sources: which sources to look for.
    """

    def __init__(
        self,
        root: str | Path,
        crop_size: int = 384,
        clip_frames: int = 3,
        tps_probability: float = 0.33,
        max_objects: int = 2,
        hr_repeat: int = 5,
        tps_points: int = 12,
        tps_std: float = 0.02,
        sources: tuple[str, ...] = STATIC_SOURCES,
    ):
        if clip_frames < 1:
            raise ValueError(f"clip_frames must be at least 1, got {clip_frames}")
        if max_objects < 1:
            raise ValueError(f"max_objects must be at least 1, got {max_objects}")
        self.root = Path(root)
        self.clip_frames = clip_frames
        self.max_objects = max_objects
        self.augment = StaticAugment(
            crop_size, StaticAugmentSettings(tps_probability=tps_probability, tps_points=tps_points, tps_std=tps_std)
        )
        self.items: list[StaticItem] = []
        self.counts: dict[str, int] = {}
        self.missing: list[str] = []
        self.unpaired = 0
        for source in sources:
            found = self._find(source)
            if not found:
                self.missing.append(source)
                continue
            self.counts[source] = len(found)
            repeat = hr_repeat if source in HIGH_RESOLUTION_SOURCES else 1
            self.items.extend(found * repeat)
        if not self.items:
            raise DataError(
                BAD_LAYOUT,
                "no static training images: expected some of the folders "
                f"{', '.join(sources)} holding image.jpg + image.png pairs "
                "(fss: <class>/N.jpg + N.png); check data.static_root",
                self.root,
            )
        if self.missing:
            log.warning(
                "static data at %s: missing %s; training with %s",
                self.root,
                ", ".join(self.missing),
                ", ".join(self.counts),
            )
        log.info(self.describe())

    def _find(self, source: str) -> list[StaticItem]:
        folder = self.root / source
        if not folder.is_dir():
            return []
        if source in _CLASS_FOLDERS:
            items = []
            for class_folder in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
                found, unpaired = _pairs(class_folder, source, prefix=f"{class_folder.name}/")
                items.extend(found)
                self.unpaired += unpaired
            return items
        items, unpaired = _pairs(folder, source)
        self.unpaired += unpaired
        return items

    def describe(self) -> str:
        """One line: images per source, repeats included in the total, and what is missing."""
        counts = ", ".join(f"{name} {count}" for name, count in self.counts.items())
        text = f"static at {self.root}: {len(self.items)} items ({counts})"
        if self.missing:
            text += f"; missing: {', '.join(self.missing)}"
        if self.unpaired:
            text += f"; {self.unpaired} images without a mask skipped"
        return text

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        image = read_image(item.image)
        mask = read_soft_mask(item.mask, expected_size=(image.shape[1], image.shape[0]))
        rgb, soft = self.augment(image, mask, self.clip_frames)
        cls_gt = (soft > 0.5).to(torch.int64)
        return pack_sample(item.name, [0] * self.clip_frames, rgb, soft[:, None], cls_gt, self.max_objects)
