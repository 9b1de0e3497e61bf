"""The REMN network: STCN's layers, named as STCN names them, plus FRM and RRM.

One frame goes through these stages (each a method; there is no ``forward(mode)``):

1. :meth:`REMN.encode_key`    frame -> key, the decoder's query feature and skips
2. :meth:`REMN.enhance_key`   FRM: key + previous foreground -> enhanced key
3. :meth:`REMN.read_memory`   memory keys/values + query key -> readout per object
4. :meth:`REMN.segment`       readout + query features -> logits and probabilities
5. :meth:`REMN.encode_value`  frame + masks -> one value per object (to memorise)
6. :meth:`REMN.reduce_memory` RRM: shorten a memory in time (and :meth:`REMN.rrm_loss`)

With ``frm`` and ``rrm`` off the module tree, parameter names and shapes are exactly
STCN's (``stcn-state-dict-keys.txt``), so STCN's released checkpoints load strictly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .aggregate import soft_aggregate
from .decoder import Decoder
from .encoders import KeyEncoder, KeyProjection, ValueEncoder, load_imagenet_weights
from .frm import ForegroundReinforcingModule, foreground_prior
from .memory_read import read_memory
from .rrm import Reduction, RedundancyReduction, rrm_loss

__all__ = ["REMN", "KeyFeatures", "Segmentation"]


@dataclass
class KeyFeatures:
    """What the key encoder gives for a batch of frames (leading dims ``*``)."""

    key: Tensor
    """``(*, C^k, h, w)`` query / memory key."""
    f16_thin: Tensor
    """``(*, 512, h, w)`` the query's own feature for the decoder (``key_comp``)."""
    f16: Tensor
    """``(*, 1024, h, w)`` layer3 feature, fused into the frame's values."""
    f8: Tensor
    """``(*, 512, 2h, 2w)`` decoder skip."""
    f4: Tensor
    """``(*, 256, 4h, 4w)`` decoder skip."""

    def select(self, index: int | slice, dim: int = 1) -> "KeyFeatures":
        """Pick frames along ``dim`` of every field (e.g. one frame of a clip)."""
        pick = (slice(None),) * dim + (index,)
        return KeyFeatures(*(getattr(self, f)[pick] for f in ("key", "f16_thin", "f16", "f8", "f4")))


@dataclass
class Segmentation:
    """The decoder's output for one frame."""

    logits: Tensor
    """``(B, K+1, H, W)`` aggregated logits, background first (for the loss)."""
    prob: Tensor
    """``(B, K+1, H, W)`` probabilities, background first; sums to 1 over dim 1."""


class REMN(nn.Module):
    """Space-time memory network with FRM and RRM.

    Args:
        key_dim: C^k (64 for STCN weights).
        value_dim: C^v (512 for STCN weights).
        frm: build FRM (``model.frm``).
        frm_window: FRM's window side.
        rrm: build RRM (``memory.rrm``).
        rrm_policies: S^t.
        rrm_hidden: RRM gate width.
    """

    def __init__(
        self,
        key_dim: int = 64,
        value_dim: int = 512,
        frm: bool = True,
        frm_window: int = 7,
        rrm: bool = True,
        rrm_policies: int = 3,
        rrm_hidden: int = 64,
    ) -> None:
        super().__init__()
        self.key_dim = key_dim
        self.value_dim = value_dim
        # STCN's modules, in STCN's state_dict order
        self.key_encoder = KeyEncoder()
        self.value_encoder = ValueEncoder(value_dim=value_dim)
        self.key_proj = KeyProjection(1024, key_dim)
        self.key_comp = nn.Conv2d(1024, 512, kernel_size=3, padding=1)
        self.decoder = Decoder(value_dim=value_dim)
        # REMN's own modules; absent when switched off
        self.frm = ForegroundReinforcingModule(key_dim, frm_window) if frm else None
        self.rrm = RedundancyReduction(key_dim, value_dim, rrm_policies, rrm_hidden) if rrm else None

    # ------------------------------------------------------------------ stages
    def encode_key(self, frames: Tensor) -> KeyFeatures:
        """Encode frames into keys and features.

        Args:
            frames: ``(*, 3, H, W)`` normalised RGB, ``H`` and ``W`` multiples of 16;
                any leading dims (``(B,)`` for one frame each, ``(B, T)`` for clips).

        Returns:
            :class:`KeyFeatures` with the same leading dims.
        """
        lead = frames.shape[:-3]
        f16, f8, f4 = self.key_encoder(frames.reshape(-1, *frames.shape[-3:]))
        key = self.key_proj(f16)
        f16_thin = self.key_comp(f16)

        def restore(x: Tensor) -> Tensor:
            return x.view(*lead, *x.shape[1:])

        return KeyFeatures(restore(key), restore(f16_thin), restore(f16), restore(f8), restore(f4))

    def enhance_key(self, key: Tensor, prev_prob: Tensor | None) -> Tensor:
        """FRM: reinforce the key around the previous frame's objects.

        Args:
            key: ``(B, C^k, h, w)``.
            prev_prob: ``(B, K+1, H, W)`` previous (or, on the first frame, the given)
                probabilities with background first; ``None`` skips FRM.

        Returns:
            ``(B, C^k, h, w)``; ``key`` itself when FRM is off or ``prev_prob`` is None.
        """
        if self.frm is None or prev_prob is None:
            return key
        return self.frm(key, foreground_prior(prev_prob, key.shape[-2:]))

    def encode_value(self, frames: Tensor, f16: Tensor, masks: Tensor) -> Tensor:
        """Encode one memory value per object.

        Args:
            frames: ``(B, 3, H, W)`` normalised RGB.
            f16: ``(B, 1024, h, w)`` the same frames' key-encoder feature.
            masks: ``(B, K, H, W)`` soft object masks (no background channel); object
                ``i``'s "other" channel is the sum of the other objects' masks.

        Returns:
            values ``(B, K, C^v, h, w)``.
        """
        b, k, h_img, w_img = masks.shape
        others = masks.sum(dim=1, keepdim=True) - masks
        value = self.value_encoder(
            frames.unsqueeze(1).expand(b, k, *frames.shape[1:]).reshape(b * k, *frames.shape[1:]),
            f16.unsqueeze(1).expand(b, k, *f16.shape[1:]).reshape(b * k, *f16.shape[1:]),
            masks.reshape(b * k, 1, h_img, w_img),
            others.reshape(b * k, 1, h_img, w_img),
        )
        return value.view(b, k, *value.shape[1:])

    @staticmethod
    def read_memory(memory_key: Tensor, memory_value: Tensor, query_key: Tensor, top_k: int | None = None) -> Tensor:
        """Memory read (:func:`remn.model.memory_read.read_memory`).

        ``memory_key (B, C^k, T, h, w)``, ``memory_value (B, K, C^v, T, h, w)``,
        ``query_key (B, C^k, h, w)`` -> readout ``(B, K, C^v, h, w)``. ``top_k=None``
        is the full softmax (training); inference uses top-k.
        """
        return read_memory(memory_key, memory_value, query_key, top_k)

    def decode(self, readout: Tensor, query: KeyFeatures) -> Tensor:
        """Decoder logits of all objects of a batch of frames in one pass:
        ``readout (B, K, C^v, h, w)`` -> ``(B, K, H, W)``."""
        b, k = readout.shape[:2]

        def per_object(x: Tensor) -> Tensor:
            return x.unsqueeze(1).expand(b, k, *x.shape[1:]).reshape(b * k, *x.shape[1:])

        logits = self.decoder(
            readout.reshape(b * k, *readout.shape[2:]),
            per_object(query.f16_thin),
            per_object(query.f8),
            per_object(query.f4),
        )
        return logits.view(b, k, *logits.shape[-2:])

    def segment(self, readout: Tensor, query: KeyFeatures, object_valid: Tensor | None = None) -> Segmentation:
        """Decode all objects of a batch of frames in one decoder pass.

        Args:
            readout: ``(B, K, C^v, h, w)``.
            query: the frames' :class:`KeyFeatures` (leading dim ``B``).
            object_valid: optional ``(B, K)`` 0/1; absent objects get probability 0
                before aggregation (training with fewer objects than slots).

        Returns:
            :class:`Segmentation` with ``K + 1`` channels at the padded input size.
        """
        prob = torch.sigmoid(self.decode(readout, query))
        if object_valid is not None:
            prob = prob * object_valid.to(prob.dtype)[:, :, None, None]
        agg_logits, agg_prob = soft_aggregate(prob, dim=1)
        return Segmentation(agg_logits, agg_prob)

    def reduce_memory(self, keys: Tensor, values: Tensor, policy: int | None = None) -> Reduction:
        """RRM: ``keys (B, C^k, T, h, w)``, ``values (B, K, C^v, T, h, w)`` -> shorter memory."""
        if self.rrm is None:
            raise RuntimeError("RRM is off in this model (memory.rrm=false); nothing reduces the memory")
        return self.rrm(keys, values, policy)

    @staticmethod
    def rrm_loss(keys: Tensor, values: Tensor, reduction: Reduction) -> Tensor:
        """``KL(k || RRM(k)) + KL(v || RRM(v))`` for a reduction of ``keys``/``values``."""
        return rrm_loss(keys, values, reduction)

    # --------------------------------------------------------------- utilities
    def load_imagenet_backbones(self) -> None:
        """Initialise both encoders from torchvision's ImageNet weights (downloads them)."""
        load_imagenet_weights(self.key_encoder, self.value_encoder)

    def stcn_state_dict_keys(self) -> list[str]:
        """Names of the entries that belong to STCN (everything but FRM and RRM)."""
        return [k for k in self.state_dict() if not k.startswith(REMN_OWN_PREFIXES)]

    def freeze_batchnorm(self) -> None:
        """Put every batch norm in eval mode (STCN trains with frozen statistics)."""
        for module in self.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()


REMN_OWN_PREFIXES = ("frm.", "rrm.")
"""state_dict prefixes of the modules STCN does not have."""
