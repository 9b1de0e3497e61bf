"""Thin-plate spline (TPS) warps, used to bend static images into pseudo video frames.

A thin-plate spline is the smoothest 2-D map that sends a few control points exactly to
chosen places: an affine part plus a sum of radial terms ``U(r) = r^2 log r^2`` centred
on the control points. Here it is fitted *backwards* (from where content should end up
to where it comes from), because :func:`cv2.remap` needs, for every output pixel, the
input position to sample. So content found at a ``source`` control point in the input
appears at the matching ``target`` point in the output.

Coordinates are normalised: ``(x / width, y / height)`` for pixel ``(x, y)``, so the
same control points describe a warp of any image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

__all__ = ["ThinPlateSpline", "tps_remap_grids", "warp_with_tps", "random_control_points", "random_tps_warp"]


def _radial(squared_distance: np.ndarray) -> np.ndarray:
    """TPS kernel U as a function of r^2: r^2 log r^2, with U(0) = 0."""
    # r^2 log r^2 tends to 0 as r -> 0; the floor only keeps log() finite at r = 0.
    return squared_distance * np.log(np.maximum(squared_distance, 1e-300))


def _squared_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    dx = points[:, 0:1] - centres[None, :, 0]
    dy = points[:, 1:2] - centres[None, :, 1]
    return dx * dx + dy * dy


@dataclass(frozen=True)
class ThinPlateSpline:
    """A fitted 2-D thin-plate spline ``f``; call it on ``(M, 2)`` points."""

    centres: np.ndarray
    """(N, 2) control points where ``f`` is pinned."""
    radial_weights: np.ndarray
    """(N, 2) weight of each centre's radial term, per output coordinate."""
    affine: np.ndarray
    """(3, 2) affine part: rows for 1, x, y."""

    @classmethod
    def fit(cls, points: np.ndarray, values: np.ndarray, regularisation: float = 0.0) -> "ThinPlateSpline":
        """The spline with ``f(points[i]) = values[i]`` (exactly when ``regularisation`` is 0).

        Needs at least 3 points that are not all on one line.
        """
        points = np.asarray(points, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape != values.shape:
            raise ValueError(f"points and values must both be (N, 2), got {points.shape} and {values.shape}")
        count = len(points)
        if count < 3:
            raise ValueError(f"a thin-plate spline needs at least 3 control points, got {count}")
        kernel = _radial(_squared_distances(points, points)) + regularisation * np.eye(count)
        basis = np.concatenate([np.ones((count, 1)), points], axis=1)
        system = np.zeros((count + 3, count + 3))
        system[:count, :count] = kernel
        system[:count, count:] = basis
        system[count:, :count] = basis.T
        rhs = np.zeros((count + 3, 2))
        rhs[:count] = values
        try:
            solution = np.linalg.solve(system, rhs)
        except np.linalg.LinAlgError:
            # Repeated or collinear points: the least-squares solution is still a smooth map.
            solution = np.linalg.lstsq(system, rhs, rcond=None)[0]
        return cls(centres=points, radial_weights=solution[:count], affine=solution[count:])

    def __call__(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64)
        radial = _radial(_squared_distances(points, self.centres))
        return self.affine[0] + points @ self.affine[1:] + radial @ self.radial_weights


def tps_remap_grids(source: np.ndarray, target: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """``(map_x, map_y)`` for :func:`cv2.remap` that move normalised ``source`` points to ``target``.

    Output pixel ``(x, y)`` samples the input at ``(map_x[y, x], map_y[y, x])``.
    """
    backward = ThinPlateSpline.fit(target, source)
    ys, xs = np.mgrid[0:height, 0:width]
    grid = np.stack([xs.ravel() / width, ys.ravel() / height], axis=1)
    mapped = backward(grid)
    map_x = (mapped[:, 0] * width).reshape(height, width).astype(np.float32)
    map_y = (mapped[:, 1] * height).reshape(height, width).astype(np.float32)
    return map_x, map_y


def warp_with_tps(
    image: np.ndarray,
    mask: np.ndarray,
    source: np.ndarray,
    target: np.ndarray,
    image_fill: tuple[int, int, int] = (0, 0, 0),
    mask_fill: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp an (H, W, 3) image (bilinear) and its (H, W) mask (nearest) by the same TPS.

    Pixels that come from outside the input get ``image_fill`` / ``mask_fill``.
    """
    height, width = mask.shape[:2]
    if image.shape[:2] != (height, width):
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape[:2]} differ in size")
    map_x, map_y = tps_remap_grids(source, target, height, width)
    warped_image = cv2.remap(
        image,
        map_x,
        map_y,
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=tuple(float(c) for c in image_fill),
    )
    warped_mask = cv2.remap(
        mask,
        map_x,
        map_y,
        interpolation=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=float(mask_fill),
    )
    return warped_image, warped_mask


def random_control_points(
    height: int, width: int, count: int = 12, std: float = 0.02, generator: torch.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` source points on distinct pixel rows and columns, and targets jittered by N(0, std).

    Both are in normalised coordinates. Distinct rows and columns keep the points apart so the
    spline is well posed.
    """
    if count > min(height, width):
        raise ValueError(
            f"{count} control points need an image of at least {count}x{count} pixels, got {width}x{height}"
        )
    rows = torch.randperm(height, generator=generator)[:count].numpy()
    cols = torch.randperm(width, generator=generator)[:count].numpy()
    source = np.stack([cols / width, rows / height], axis=1).astype(np.float64)
    offsets = torch.randn(count, 2, generator=generator, dtype=torch.float64).numpy() * std
    return source, source + offsets


def random_tps_warp(
    image: np.ndarray,
    mask: np.ndarray,
    count: int = 12,
    std: float = 0.02,
    image_fill: tuple[int, int, int] = (0, 0, 0),
    mask_fill: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A random smooth bend of an image and its mask: ``count`` control points each moved by N(0, std)."""
    source, target = random_control_points(mask.shape[0], mask.shape[1], count, std, generator)
    return warp_with_tps(image, mask, source, target, image_fill, mask_fill)
