"""STCN's training augmentation, written with torchvision's transforms v2.

Two recipes (numbers from STCN: docs/design.md DATA-5 and DATA-6):

* :class:`VideoAugment` for clips of real videos: one flip, crop and colour change for the
  whole clip, then a small affine warp and colour change of every frame on its own.
* :class:`StaticAugment` for single images made into pseudo clips: one zoom, flip and colour
  change, then for every frame a bigger affine warp, resize, crop, colour change and, now and
  then, a thin-plate-spline bend.

How geometry stays in step. A v2 transform draws its random parameters once per call and
applies them to every image and mask in that call. So "same for the whole clip" is one call
on the list of all frames and the stacked masks, and "same for image and mask of one frame"
is one call on that pair. Masks are :class:`tv_tensors.Mask`, which v2 always resamples with
nearest neighbour and fills with the mask fill; colour transforms leave them alone.

Images travel as PIL images, which v2 treats as images. The reason is STCN's bicubic affine
warp: torchvision's tensor kernels warp only with nearest or bilinear interpolation, its PIL
kernels also bicubically. Only the static per-frame warp, which STCN applies bicubically to
the soft mask too, draws its parameters explicitly (:meth:`StaticAugment.bend_frame`),
because the image and the mask there need different fills but are both PIL images.

Randomness comes from torch's global generator (what v2 uses), so ``torch.manual_seed``
makes a draw reproducible and DataLoader workers differ from each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from remn.data.tps import random_tps_warp
from remn.model.preprocess import normalize_image

__all__ = [
    "MEAN_COLOUR",
    "VideoAugmentSettings",
    "StaticAugmentSettings",
    "VideoAugment",
    "StaticAugment",
    "to_normalised_tensor",
]

MEAN_COLOUR: tuple[int, int, int] = (124, 116, 104)
"""Fill colour for pixels a warp brings in from outside the image (ImageNet mean, 0..255)."""


@dataclass(frozen=True)
class VideoAugmentSettings:
    """Strengths of the video recipe; the defaults are STCN's."""

    crop_scale: tuple[float, float] = (0.36, 1.0)
    """Area fraction range of RandomResizedCrop (STCN: 0.25..1 for BL30K)."""
    clip_brightness: float = 0.1
    clip_contrast: float = 0.03
    clip_saturation: float = 0.03
    clip_hue: float = 0.0
    grayscale_probability: float = 0.05
    """Whole clip turned grey with this probability."""
    frame_degrees: float = 15.0
    frame_shear: float = 10.0
    frame_brightness: float = 0.01
    frame_contrast: float = 0.01
    frame_saturation: float = 0.01
    fill: tuple[int, int, int] = MEAN_COLOUR


@dataclass(frozen=True)
class StaticAugmentSettings:
    """Strengths of the static-image recipe; the defaults are STCN's."""

    sequence_scale: tuple[float, float] = (0.8, 1.5)
    sequence_brightness: float = 0.1
    sequence_contrast: float = 0.05
    sequence_saturation: float = 0.05
    sequence_hue: float = 0.05
    grayscale_probability: float = 0.05
    frame_degrees: float = 20.0
    frame_scale: tuple[float, float] = (0.9, 1.1)
    frame_shear: float = 10.0
    frame_brightness: float = 0.1
    frame_contrast: float = 0.05
    frame_saturation: float = 0.05
    tps_probability: float = 0.33
    """Probability that a frame is bent by a thin-plate spline."""
    tps_points: int = 12
    tps_std: float = 0.02
    """Standard deviation of the control-point offsets, in fractions of the image size."""
    fill: tuple[int, int, int] = MEAN_COLOUR


def to_normalised_tensor(images: Sequence[Image.Image]) -> Tensor:
    """PIL RGB images of one size -> (T, 3, H, W) float32, ImageNet-normalised."""
    stacked = torch.stack([TF.pil_to_tensor(image) for image in images])
    return normalize_image(stacked.to(torch.float32) / 255.0)


def _as_mask(labels: Tensor) -> tv_tensors.Mask:
    # Indexing a Mask gives a plain tensor, which v2 would pass through untouched next to
    # an image: re-wrap every time so a mask is never silently left unwarped.
    return tv_tensors.Mask(labels)


class VideoAugment:
    """Augment a clip: ``(frames, labels) -> (rgb (T,3,S,S) normalised, labels (T,S,S) int64)``.

    ``frames`` are (H, W, 3) uint8 arrays of one size, ``labels`` (H, W) integer id maps
    with ids below 256.
    """

    def __init__(self, crop_size: int, settings: VideoAugmentSettings = VideoAugmentSettings()):
        self.crop_size = crop_size
        self.settings = settings
        fills = {Image.Image: settings.fill, tv_tensors.Mask: 0}
        self.clip_geometry = v2.Compose(
            [
                v2.RandomHorizontalFlip(),
                v2.RandomResizedCrop(
                    crop_size, scale=settings.crop_scale, interpolation=InterpolationMode.BICUBIC, antialias=True
                ),
            ]
        )
        self.clip_colour = v2.Compose(
            [
                v2.ColorJitter(
                    settings.clip_brightness, settings.clip_contrast, settings.clip_saturation, settings.clip_hue
                ),
                v2.RandomGrayscale(settings.grayscale_probability),
            ]
        )
        self.frame_geometry = v2.RandomAffine(
            degrees=settings.frame_degrees,
            shear=settings.frame_shear,
            interpolation=InterpolationMode.BICUBIC,
            fill=fills,
        )
        self.frame_colour = v2.ColorJitter(
            settings.frame_brightness, settings.frame_contrast, settings.frame_saturation, 0.0
        )

    def warp_frame(self, image: Image.Image, mask: tv_tensors.Mask) -> tuple[Image.Image, tv_tensors.Mask]:
        """One frame's own affine warp, one parameter draw for image and mask."""
        return self.frame_geometry(image, mask)

    def __call__(self, frames: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
        images = [Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)) for frame in frames]
        masks = _as_mask(torch.from_numpy(np.stack([np.asarray(label, dtype=np.uint8) for label in labels])))
        # One call for all frames: one flip, one crop and one colour change for the whole clip.
        images, masks = self.clip_geometry(images, masks)
        images = self.clip_colour(images)
        out_images, out_masks = [], []
        for image, mask in zip(images, masks):
            image, mask = self.warp_frame(image, _as_mask(mask))
            out_images.append(self.frame_colour(image))
            out_masks.append(mask.as_subclass(Tensor))
        return to_normalised_tensor(out_images), torch.stack(out_masks).to(torch.int64)


class StaticAugment:
    """Make a pseudo clip from one image and its soft mask.

    ``(image (H,W,3) uint8, mask (H,W) uint8 0..255, frames) -> (rgb (T,3,S,S) normalised,
    mask (T,S,S) float32 in [0, 1])``.
    """

    def __init__(self, crop_size: int, settings: StaticAugmentSettings = StaticAugmentSettings()):
        self.crop_size = crop_size
        self.settings = settings
        fills = {Image.Image: settings.fill, tv_tensors.Mask: 0}
        self.sequence_geometry = v2.Compose(
            [
                v2.RandomAffine(
                    degrees=0, scale=settings.sequence_scale, interpolation=InterpolationMode.NEAREST, fill=fills
                ),
                v2.RandomHorizontalFlip(),
            ]
        )
        self.sequence_colour = v2.Compose(
            [
                v2.ColorJitter(
                    settings.sequence_brightness,
                    settings.sequence_contrast,
                    settings.sequence_saturation,
                    settings.sequence_hue,
                ),
                v2.RandomGrayscale(settings.grayscale_probability),
            ]
        )
        affine = dict(
            degrees=settings.frame_degrees,
            scale=settings.frame_scale,
            shear=settings.frame_shear,
            interpolation=InterpolationMode.BICUBIC,
        )
        self.frame_affine_image = v2.RandomAffine(**affine, fill=settings.fill)
        self.frame_affine_mask = v2.RandomAffine(**affine, fill=0)
        self.frame_resize_crop = v2.Compose(
            [
                v2.Resize(crop_size, interpolation=InterpolationMode.BICUBIC, antialias=True),
                v2.RandomCrop(crop_size, pad_if_needed=True, fill=fills),
            ]
        )
        self.frame_colour = v2.ColorJitter(
            settings.frame_brightness, settings.frame_contrast, settings.frame_saturation, 0.0
        )

    def bend_frame(self, image: Image.Image, mask: Image.Image) -> tuple[Image.Image, Image.Image]:
        """The per-frame affine warp: bicubic for the image and the soft mask alike, with
        parameters drawn once and used for both (their fills differ, so two transforms)."""
        params = self.frame_affine_image.make_params([image, mask])
        return self.frame_affine_image.transform(image, params), self.frame_affine_mask.transform(mask, params)

    def __call__(self, image: np.ndarray, mask: np.ndarray, frames: int) -> tuple[Tensor, Tensor]:
        settings = self.settings
        source = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
        soft = _as_mask(torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8)))
        source, soft = self.sequence_geometry(source, soft)
        source = self.sequence_colour(source)
        soft_image = Image.fromarray(soft.numpy())
        out_images, out_masks = [], []
        for _ in range(frames):
            frame, frame_mask = self.bend_frame(source, soft_image)
            frame, cropped = self.frame_resize_crop(frame, _as_mask(TF.pil_to_tensor(frame_mask)[0]))
            frame = self.frame_colour(frame)
            frame_array = np.asarray(frame)
            mask_array = cropped.numpy()
            if float(torch.rand(())) < settings.tps_probability:
                frame_array, mask_array = random_tps_warp(
                    frame_array, mask_array, settings.tps_points, settings.tps_std, image_fill=settings.fill
                )
            out_images.append(Image.fromarray(np.ascontiguousarray(frame_array)))
            out_masks.append(torch.from_numpy(np.ascontiguousarray(mask_array)))
        return to_normalised_tensor(out_images), torch.stack(out_masks).to(torch.float32) / 255.0
