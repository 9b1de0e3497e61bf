"""The benchmark's video: :class:`~remn.data.synthetic.SyntheticStream` frames, put on the device
one at a time."""

from __future__ import annotations

import numpy as np
import torch

from remn.data.synthetic import SyntheticStream

__all__ = ["BenchmarkClip"]


class BenchmarkClip:
    """A generated video of ``objects`` textured objects (no distractors, no pixel noise) that
    drift, spin and occlude each other over a textured background, made frame by frame.

    Frame ``t`` depends only on ``t`` and the seed (not on ``frames``), so a video of length n
    is the beginning of every longer one: the 1x video is the first third of the 3x video.
    Nothing but the textures and a few path points is held. Pixel noise is left out: drawing
    it costs 12 ms a frame at 854x480, and the timed step does not depend on it.
    """

    def __init__(
        self, height: int, width: int, objects: int, frames: int, seed: int = 0, device: torch.device | str = "cpu"
    ) -> None:
        self.height, self.width, self.objects = height, width, objects
        self.device = torch.device(device)
        self.stream = SyntheticStream(
            seed, frames=frames, height=height, width=width, objects=(objects, objects), distractors=(0, 0), noise=0.0
        )

    def __len__(self) -> int:
        return len(self.stream)

    def frame(self, t: int) -> torch.Tensor:
        """``(3, H, W)`` uint8 RGB on the device."""
        return torch.from_numpy(self.stream.frame(t)).permute(2, 0, 1).contiguous().to(self.device)

    def labels(self, t: int) -> np.ndarray:
        """``(H, W)`` uint8 object ids 1..K (0 = background), on the host."""
        return self.stream.labels(t)
