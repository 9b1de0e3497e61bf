"""RRM, the Redundancy Reduction Module (paper Sec. II-C; decisions RRM-1..7 in docs/design.md).

When the working memory holds ``T`` frames, RRM shortens it in time:

* a soft modulation gate reads the memory keys ``(C^k, T, h, w)``: spatial average
  pooling gives a ``C^k x T`` sequence; ``Conv1d -> BN -> ReLU -> Conv1d`` gives
  ``S^t`` scores per frame, averaged over ``T``; ``omega(x) = max(0, tanh(x))`` plus
  a learnable bias ``gamma`` give one score per temporal policy, normalised by a
  softmax into ``Prob`` (a distribution over policies, strictly positive, which the
  straight-through factor below needs). The last conv starts with small weights and
  a bias of 0.5, so every score starts where ``tanh`` is positive and the gate's
  convolutions get gradients (below 0, ``omega`` passes none);
* the chosen policy ``s = argmax Prob`` reduces keys and values with a ``Conv3d`` of
  kernel and stride ``(2^(s+1), 1, 1)``: ``T -> floor(T / 2^(s+1)) + (T mod 2^(s+1))``
  (the tail that does not fill a whole stride is kept as it is). Each reduction conv
  starts as a temporal average. Policies whose stride exceeds ``T`` are not eligible;
* the reduced features are multiplied by ``Prob_s / Prob_s.detach()`` (value 1) so
  that every loss downstream also trains the gate.

In a batch of memories the policy is the argmax of the batch-mean probability, so the
reduced tensors stay rectangular; at inference the batch is one video.

The RRM loss is ``KL(k || RRM(k)) + KL(v || RRM(v))``. We measure it frame by frame:
for each original frame, the softmax over channels at each position is compared with
that of the reduced frame that replaced it, and the KL is averaged over frames,
positions, objects and the batch. It is zero exactly when every reduced frame keeps
the channel distribution of each frame it replaced, so 0 for a temporally constant
memory under the initial averaging, and > 0 whenever merged frames differed.
(an earlier design compared temporal means; that version is zero for any
memory under the initial averaging and so cannot tell a faithful reduction from a
lossy one; docs/design.md RRM-6 records the change.)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ModulationGate",
    "TemporalReducer",
    "RedundancyReduction",
    "Reduction",
    "reduced_length",
    "reduction_groups",
    "rrm_loss",
]


def reduced_length(length: int, stride: int) -> int:
    """Frames left after reducing ``length`` frames with ``stride``: whole groups + tail."""
    return length // stride + length % stride


def reduction_groups(length: int, stride: int) -> list[range]:
    """Which original frames each reduced frame covers, in order."""
    whole = (length // stride) * stride
    groups = [range(start, start + stride) for start in range(0, whole, stride)]
    groups += [range(t, t + 1) for t in range(whole, length)]
    return groups


class ModulationGate(nn.Module):
    """Scores the temporal policies from the memory keys."""

    def __init__(self, key_dim: int, num_policies: int, hidden: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(key_dim, hidden, kernel_size=1)
        self.bn = nn.BatchNorm1d(hidden)
        self.conv2 = nn.Conv1d(hidden, num_policies, kernel_size=1)
        self.gamma = nn.Parameter(torch.zeros(num_policies))
        # omega = max(0, tanh(x)) passes no gradient where x < 0: start every policy's
        # score at about +0.5 so that the gate's convolutions learn from the first step.
        nn.init.normal_(self.conv2.weight, std=0.01)
        nn.init.constant_(self.conv2.bias, 0.5)

    def forward(self, keys: Tensor) -> Tensor:
        """``keys (B, C^k, T, h, w)`` -> ``Prob (B, S^t)``, rows sum to 1."""
        pooled = keys.mean(dim=(3, 4))  # (B, C^k, T)
        scores = self.conv2(F.relu(self.bn(self.conv1(pooled))))  # (B, S, T)
        scores = torch.tanh(scores.mean(dim=2)).clamp(min=0) + self.gamma  # omega + gamma
        return torch.softmax(scores.float(), dim=1)


class TemporalReducer(nn.Module):
    """``Conv3d`` with kernel = stride = ``(stride, 1, 1)``; starts as a temporal average."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv3d(channels, channels, kernel_size=(stride, 1, 1), stride=(stride, 1, 1))
        with torch.no_grad():
            self.conv.weight.zero_()
            eye = torch.eye(channels) / stride
            for t in range(stride):
                self.conv.weight[:, :, t, 0, 0] = eye
            self.conv.bias.zero_()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, C, T, h, w)`` -> (reduced whole groups ``(N, C, T // stride, h, w)``,
        untouched tail ``(N, C, T mod stride, h, w)``)."""
        whole = (x.shape[2] // self.stride) * self.stride
        return self.conv(x[:, :, :whole]), x[:, :, whole:]


@dataclass
class Reduction:
    """What one RRM call did."""

    keys: Tensor
    """``(B, C^k, T', h, w)``."""
    values: Tensor
    """``(B, K, C^v, T', h, w)``."""
    policy: int
    """Index ``s`` of the chosen policy."""
    stride: int
    """``2^(s+1)``."""
    prob: Tensor
    """Gate probabilities ``(B, S^t)``."""


def _spread(reduced: Tensor, stride: int, length: int) -> Tensor:
    """Repeat each reduced frame over the original frames it covers: ``(N, C, T', ...) -> (N, C, T, ...)``."""
    whole = length // stride
    return torch.cat([reduced[:, :, :whole].repeat_interleave(stride, dim=2), reduced[:, :, whole:]], dim=2)


def _framewise_kl(original: Tensor, reduced: Tensor, stride: int) -> Tensor:
    """Mean over frames and positions of ``KL(softmax_c(original) || softmax_c(reduced))``."""
    spread = _spread(reduced, stride, original.shape[2])
    log_p = F.log_softmax(original.float(), dim=1)
    log_q = F.log_softmax(spread.float(), dim=1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()


def rrm_loss(keys: Tensor, values: Tensor, reduction: Reduction) -> Tensor:
    """``KL(k || RRM(k)) + KL(v || RRM(v))`` (frame by frame, see the module docstring).

    Args:
        keys: original ``(B, C^k, T, h, w)``; values: original ``(B, K, C^v, T, h, w)``.
        reduction: what :class:`RedundancyReduction` returned for them.
    """
    b, k, cv, t, h, w = values.shape
    key_kl = _framewise_kl(keys, reduction.keys, reduction.stride)
    value_kl = _framewise_kl(
        values.reshape(b * k, cv, t, h, w), reduction.values.reshape(b * k, cv, -1, h, w), reduction.stride
    )
    return key_kl + value_kl


class RedundancyReduction(nn.Module):
    """The gate and one key reducer and one value reducer per policy."""

    def __init__(self, key_dim: int = 64, value_dim: int = 512, num_policies: int = 3, hidden: int = 64) -> None:
        super().__init__()
        self.gate = ModulationGate(key_dim, num_policies, hidden)
        self.key_reducers = nn.ModuleList(TemporalReducer(key_dim, 2 ** (s + 1)) for s in range(num_policies))
        self.value_reducers = nn.ModuleList(TemporalReducer(value_dim, 2 ** (s + 1)) for s in range(num_policies))

    @property
    def strides(self) -> list[int]:
        return [r.stride for r in self.key_reducers]

    def choose_policy(self, prob: Tensor, length: int) -> int:
        """Argmax of the batch-mean probability among policies whose stride fits ``length``."""
        eligible = torch.tensor([s <= length for s in self.strides], device=prob.device)
        if not bool(eligible.any()):
            raise ValueError(f"RRM cannot reduce {length} frame(s): the smallest stride is {min(self.strides)}")
        mean_prob = prob.mean(dim=0).masked_fill(~eligible, -1.0)
        return int(mean_prob.argmax())

    def forward(self, keys: Tensor, values: Tensor, policy: int | None = None) -> Reduction:
        """Reduce a memory in time.

        Args:
            keys: ``(B, C^k, T, h, w)``.
            values: ``(B, K, C^v, T, h, w)``; objects share the value reducer.
            policy: force a policy (tests, analysis); default: the gate's choice.

        Returns:
            a :class:`Reduction` with ``T' = floor(T / stride) + T mod stride`` frames.
        """
        b, k, cv, t, h, w = values.shape
        prob = self.gate(keys)
        if policy is None:
            policy = self.choose_policy(prob, t)
        elif not 0 <= policy < len(self.strides) or self.strides[policy] > t:
            raise ValueError(f"RRM policy {policy} cannot reduce {t} frame(s); strides are {self.strides}")
        chosen = prob[:, policy]
        straight_through = (chosen / chosen.detach()).to(keys.dtype)  # 1, with a gradient to the gate

        reduced_k, tail_k = self.key_reducers[policy](keys)
        reduced_k = reduced_k * straight_through.view(b, 1, 1, 1, 1)
        reduced_v, tail_v = self.value_reducers[policy](values.reshape(b * k, cv, t, h, w))
        reduced_v = reduced_v.view(b, k, cv, -1, h, w) * straight_through.view(b, 1, 1, 1, 1, 1).to(values.dtype)
        tail_v = tail_v.view(b, k, cv, -1, h, w)
        return Reduction(
            keys=torch.cat([reduced_k, tail_k], dim=2),
            values=torch.cat([reduced_v, tail_v], dim=3),
            policy=policy,
            stride=self.strides[policy],
            prob=prob,
        )
