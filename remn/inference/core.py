"""The streaming inference core: one frame in, probabilities out, bounded state.

:class:`InferenceCore` owns everything a video needs between frames: the object manager
(user ids <-> internal slots), the memory bank (``remn/memory``: ASM or a fixed interval,
RRM or unbounded) and the previous frame's probabilities (FRM's prior). Each call to
:meth:`InferenceCore.step` processes one frame:

1. the frame is resized so its shorter side is ``inference.size`` (``-1``: unchanged),
   normalised and padded to a multiple of 16;
2. its key is encoded, reinforced by FRM around the previous frame's objects, and every
   tracked object is read from memory and decoded in one batch;
3. masks given for this frame (a new object's first mask, or a correction) replace the
   prediction where they are, as STCN's YouTube-VOS core does; such a frame is written to
   the permanent memory;
4. otherwise the write policy decides whether the frame enters the working memory (the
   last frame of a video never does: pass ``last=True``);
5. the probabilities are cropped and resized back to the input size.

With ``inference.flip`` (test-time augmentation, design INF-8) the mirrored frame goes through
steps 2-4 too, with a memory of its own that holds the mirrored frames: the output is the mean
of the two predictions (the mirror's flipped back), and both memories are written with it (the
mirror's mirrored), on the frames the first memory's policy picks.

With RRM on, nothing kept between frames grows with the video's length: the bank holds at
most ``capacity`` working frames plus the annotated ones, and only the last frame's
probabilities are kept.

Fast paths (``inference.*``, each switchable, measured in ``docs/benchmarks.md``): the
gathered and optionally chunked top-k read (``topk_gather``, ``chunk_size``), all objects
decoded as one batch (``batch_objects``), channels-last convolutions (``channels_last``),
``torch.compile`` and CUDA graphs of the per-frame stages (``compile``, ``cuda_graphs``; both
off by default, opt-in until measured on a GPU: ``scripts/gpu_check.py``), and bf16/fp16
autocast (``runtime.precision``), under which the memory keeps its keys and values in the
compute dtype. Inside :meth:`InferenceCore.step` the host waits for the device
only where a decision must reach Python: ASM's write-or-not and RRM's policy; the caller
waits once more when it takes the mask off the device (:meth:`InferenceCore.labels`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from remn.config import InferenceConfig, REMNConfig
from remn.memory import MemoryBank, build_memory_bank
from remn.model.aggregate import soft_aggregate
from remn.model.network import REMN, KeyFeatures
from remn.model.preprocess import normalize_image, pad_divide_by, unpad
from remn.runtime import autocast, compute_dtype, resolve_precision

from .objects import ObjectManager

__all__ = ["InferenceCore", "processing_size", "average_flipped"]


def processing_size(height: int, width: int, shorter_side: int) -> tuple[int, int]:
    """The size a frame is processed at: shorter side ``shorter_side`` (-1: as is)."""
    if shorter_side is None or shorter_side < 0:
        return height, width
    scale = shorter_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass
class _Prepared:
    image: Tensor  # (1, 3, Hp, Wp) normalised, padded
    size: tuple[int, int]  # input (H, W)
    work: tuple[int, int]  # processing (h, w) before padding
    padding: tuple[int, int, int, int]


class _CudaGraphed:
    """Replays a CUDA graph of ``fn`` (tensors in, a tuple of tensors out), captured the first
    time each set of input shapes and dtypes is seen.

    Inputs are copied into the graph's own buffers before each replay. Outputs are the
    graph's buffers, overwritten by the next replay, unless ``clone_outputs``.
    """

    def __init__(
        self, fn: Callable[..., tuple[Tensor, ...]], device: torch.device, dtype: torch.dtype, clone_outputs: bool
    ) -> None:
        self.fn = fn
        self.device = device
        self.dtype = dtype
        self.clone_outputs = clone_outputs
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, list[Tensor], tuple[Tensor, ...]]] = {}

    def _autocast(self):
        # weights cast inside a capture must not live in autocast's cache, which is freed on exit
        return torch.autocast(
            device_type="cuda", dtype=self.dtype, enabled=self.dtype != torch.float32, cache_enabled=False
        )

    def _capture(self, inputs: Sequence[Tensor]) -> tuple[torch.cuda.CUDAGraph, list[Tensor], tuple[Tensor, ...]]:
        static_inputs = [t.clone() for t in inputs]
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side), self._autocast():
            for _ in range(2):  # lazy initialisation and cuDNN's choices happen outside the graph
                self.fn(*static_inputs)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph), self._autocast():
            static_outputs = self.fn(*static_inputs)
        return graph, static_inputs, static_outputs

    def __call__(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        signature = tuple((tuple(t.shape), t.stride(), t.dtype) for t in inputs)
        entry = self.graphs.get(signature)
        if entry is None:
            entry = self.graphs[signature] = self._capture(inputs)
        graph, static_inputs, static_outputs = entry
        for buffer, value in zip(static_inputs, inputs):
            buffer.copy_(value)
        graph.replay()
        return tuple(t.clone() for t in static_outputs) if self.clone_outputs else static_outputs


class _FrameStages:
    """The network's per-frame stages as the core runs them, with the fast paths of
    ``inference.*``: objects batched or one at a time, ``torch.compile``, CUDA graphs.

    Every stage takes and returns plain tensors, so that it can be compiled or captured. What
    outlives a step is copied: the memory bank copies what it stores, and the decoder's
    probabilities (returned, kept as FRM's prior) are cloned out of a graph.
    """

    def __init__(self, model: REMN, device: torch.device, precision: str, options: InferenceConfig) -> None:
        self.model = model
        self.batch_objects = options.batch_objects
        stages: dict[str, Callable[..., tuple[Tensor, ...]]] = {
            "encode": self._encode,
            "enhance": self._enhance,
            "decode": self._decode,
            "value": self._value,
        }
        if options.compile:
            # one compilation per input size and object count (a new shape compiles again)
            stages = {
                name: torch.compile(fn, dynamic=False, backend=options.compile_backend) for name, fn in stages.items()
            }
        if options.cuda_graphs:
            if device.type != "cuda":
                warnings.warn(
                    f"inference.cuda_graphs needs a CUDA device; running without graphs on {device}", stacklevel=3
                )
            else:
                dtype = compute_dtype(precision)
                stages = {
                    name: _CudaGraphed(fn, device, dtype, clone_outputs=name == "decode") for name, fn in stages.items()
                }
        self.stages = stages

    # ------------------------------------------------------------- the stages
    def _encode(self, image: Tensor) -> tuple[Tensor, ...]:
        feats = self.model.encode_key(image)
        return feats.key, feats.f16_thin, feats.f16, feats.f8, feats.f4

    def _enhance(self, key: Tensor, prior: Tensor) -> tuple[Tensor]:
        return (self.model.enhance_key(key, prior),)

    def _decode(self, readout: Tensor, *features: Tensor) -> tuple[Tensor]:
        # REMN.segment's computation with the objects in one batch or one at a time, and the
        # sigmoid and the aggregation in float32: in bf16 the sigmoid reaches 1.0 from a logit
        # of about 6, and objects that are all confident would tie
        feats = KeyFeatures(*features)
        if self.batch_objects:
            logits = self.model.decode(readout, feats)
        else:
            decoder = self.model.decoder
            logits = torch.cat(
                [decoder(readout[:, i], feats.f16_thin, feats.f8, feats.f4) for i in range(readout.shape[1])], dim=1
            )
        return (soft_aggregate(torch.sigmoid(logits.float()), dim=1)[1],)

    def _value(self, image: Tensor, f16: Tensor, masks: Tensor) -> tuple[Tensor]:
        if self.batch_objects:
            return (self.model.encode_value(image, f16, masks),)
        others = masks.sum(dim=1, keepdim=True) - masks
        encoder = self.model.value_encoder
        return (
            torch.stack(
                [encoder(image, f16, masks[:, i : i + 1], others[:, i : i + 1]) for i in range(masks.shape[1])], dim=1
            ),
        )

    # ------------------------------------------------------------ entry points
    def encode(self, image: Tensor) -> KeyFeatures:
        """``(1, 3, Hp, Wp)`` -> the frame's key and features."""
        return KeyFeatures(*self.stages["encode"](image))

    def enhance(self, key: Tensor, prior: Tensor | None) -> Tensor:
        """FRM (the key itself when FRM is off or there is no prior)."""
        if self.model.frm is None or prior is None:
            return key
        return self.stages["enhance"](key, prior)[0]

    def decode(self, readout: Tensor, feats: KeyFeatures) -> Tensor:
        """``readout (1, K, C^v, h, w)`` -> probabilities ``(1, K+1, Hp, Wp)``, float32."""
        return self.stages["decode"](readout, feats.key, feats.f16_thin, feats.f16, feats.f8, feats.f4)[0]

    def encode_value(self, image: Tensor, f16: Tensor, masks: Tensor) -> Tensor:
        """``masks (1, K, Hp, Wp)`` -> values ``(1, K, C^v, h, w)``."""
        return self.stages["value"](image, f16, masks)[0]


def average_flipped(prob: Tensor, mirrored: Tensor) -> Tensor:
    """Flip test-time augmentation: the mean of ``prob`` and the mirrored frame's ``mirrored``
    flipped back (both ``(K+1, H, W)`` distributions over the channels, so the mean is one too)."""
    return (prob + mirrored.flip(-1)) / 2


@dataclass
class _Mirror:
    """The mirrored frames' own state (``inference.flip``): their memory and last probabilities."""

    bank: MemoryBank
    prev_prob: Tensor | None = None


@dataclass
class _View:
    """One frame as one memory sees it during a step: the frame or its mirror."""

    bank: MemoryBank
    prev_prob: Tensor | None
    image: Tensor
    feats: KeyFeatures | None = None
    key: Tensor | None = None
    prob: Tensor | None = None


class InferenceCore:
    """Segments a video one frame at a time.

    Args:
        model: the network (eval mode is set here).
        cfg: the configuration (``memory`` and ``inference`` sections, ``runtime.precision``).
        device: where to run; defaults to the model's device.
    """

    def __init__(self, model: REMN, cfg: REMNConfig, device: torch.device | None = None) -> None:
        self.model = model.eval()
        self.cfg = cfg
        self.device = device or next(model.parameters()).device
        self.precision = resolve_precision(cfg.runtime.precision, self.device)  # ``auto`` resolved here
        self.compute_dtype = compute_dtype(self.precision)  # the memory keeps keys and values in it
        self.size = cfg.inference.size
        self.channels_last = cfg.inference.channels_last
        if self.channels_last:
            # the 2-D convolutions only: RRM's temporal convolutions are 3-D
            for module in self.model.modules():
                if isinstance(module, torch.nn.Conv2d):
                    module.to(memory_format=torch.channels_last)
        self.batch_objects = cfg.inference.batch_objects
        self.stages = _FrameStages(self.model, self.device, self.precision, cfg.inference)
        self.reset()

    def reset(self) -> None:
        """Forget the current video."""
        self.objects = ObjectManager()
        self.bank: MemoryBank = self._new_bank()
        self.prev_prob: Tensor | None = None  # (1, K+1, Hp, Wp) at processing size, padded
        self.mirror: _Mirror | None = _Mirror(self._new_bank()) if self.cfg.inference.flip else None
        self.frame_count = 0
        self._shape: tuple[int, int] | None = None

    def _new_bank(self) -> MemoryBank:
        inference = self.cfg.inference
        return build_memory_bank(
            self.cfg.memory, self.model, gather=inference.topk_gather, chunk_size=inference.chunk_size
        )

    # ------------------------------------------------------------ input prep
    def _prepare_image(self, image: np.ndarray | Tensor) -> _Prepared:
        if isinstance(image, np.ndarray):
            if image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(f"an image array must be (H, W, 3) RGB, got shape {image.shape}")
            array = np.ascontiguousarray(image)
            if not array.flags.writeable:
                array = array.copy()
            tensor = torch.from_numpy(array).to(self.device).permute(2, 0, 1)
        else:
            tensor = image.to(self.device)
            if tensor.dim() != 3 or tensor.shape[0] != 3:
                raise ValueError(f"an image tensor must be (3, H, W), got shape {tuple(tensor.shape)}")
        tensor = tensor.float() / 255.0 if tensor.dtype == torch.uint8 else tensor.float()
        height, width = tensor.shape[-2:]
        if self._shape is not None and self._shape != (height, width):
            raise ValueError(
                f"frame {self.frame_count} is {width}x{height}, earlier frames were "
                f"{self._shape[1]}x{self._shape[0]}; a video's frames must share one size"
            )
        self._shape = (height, width)
        work = processing_size(height, width, self.size)
        if work != (height, width):
            tensor = F.interpolate(tensor[None], size=work, mode="bilinear", align_corners=False, antialias=True)[0]
        padded, padding = pad_divide_by(normalize_image(tensor))
        padded = padded[None]
        if self.channels_last:
            padded = padded.contiguous(memory_format=torch.channels_last)
        return _Prepared(padded, (height, width), work, padding)

    def _prepare_mask(
        self, mask: np.ndarray | Tensor, objects: Sequence[int] | None, frame: _Prepared
    ) -> tuple[list[int], Tensor]:
        """Given masks at processing size, padded: ``(ids, (N, Hp, Wp) float)``."""
        on_host = isinstance(mask, np.ndarray) or (isinstance(mask, Tensor) and mask.device.type == "cpu")
        host = torch.as_tensor(np.asarray(mask) if isinstance(mask, np.ndarray) else mask)
        mask_t = host.to(self.device)
        if mask_t.dim() == 2:  # an id map
            if mask_t.shape != frame.size:
                raise ValueError(
                    f"mask is {mask_t.shape[1]}x{mask_t.shape[0]} but the frame is {frame.size[1]}x{frame.size[0]}"
                )
            # the ids are read where the mask came from: a host mask costs no device round trip
            present = [int(i) for i in torch.unique(host if on_host else mask_t).tolist() if i != 0]
            ids = present if objects is None else [int(i) for i in objects]
            masks = (
                torch.stack([(mask_t == obj) for obj in ids]).float()
                if ids
                else mask_t.new_zeros((0, *frame.size), dtype=torch.float32)
            )
            mode = "nearest"
        elif mask_t.dim() == 3:  # one (soft) mask per object, ids in ``objects``
            if objects is None or len(objects) != mask_t.shape[0]:
                raise ValueError("per-object masks (N, H, W) need ``objects`` with N ids")
            if tuple(mask_t.shape[-2:]) != frame.size:
                raise ValueError(
                    f"masks are {mask_t.shape[2]}x{mask_t.shape[1]} but the frame is {frame.size[1]}x{frame.size[0]}"
                )
            ids = [int(i) for i in objects]
            masks = mask_t.float()
            mode = "bilinear"
        else:
            raise ValueError(f"mask must be (H, W) ids or (N, H, W) per object, got {tuple(mask_t.shape)}")
        if frame.work != frame.size and masks.shape[0]:
            kwargs = {"align_corners": False} if mode == "bilinear" else {}
            masks = F.interpolate(masks[None], size=frame.work, mode=mode, **kwargs)[0]
        masks, _ = pad_divide_by(masks)
        return ids, masks

    # ------------------------------------------------------------------ step
    @torch.inference_mode()
    def step(
        self,
        image: np.ndarray | Tensor,
        mask: np.ndarray | Tensor | None = None,
        objects: Sequence[int] | None = None,
        last: bool = False,
    ) -> Tensor:
        """Process the next frame.

        Args:
            image: ``(H, W, 3)`` uint8 RGB array, or a ``(3, H, W)`` tensor (uint8, or float in [0, 1]).
            mask: masks given for this frame: an ``(H, W)`` map of user ids, or ``(N, H, W)``
                per-object masks in [0, 1] with their ids in ``objects``. New ids start being
                tracked here; known ids are corrected.
            objects: with an id map, restrict the given mask to these ids (e.g. only the objects
                that first appear on this frame); by default every id in the map.
            last: the video's last frame (never written to memory).

        Returns:
            ``(K+1, H, W)`` float32 probabilities at the input size, background first, channel
            ``i`` for ``self.objects.ids[i-1]``.
        """
        frame = self._prepare_image(image)
        t = self.frame_count
        self.frame_count += 1
        given: tuple[list[int], Tensor] | None = None
        if mask is not None:
            given = self._prepare_mask(mask, objects, frame)
            if not given[0]:
                given = None
        if given is not None:
            self.objects.add(given[0])
        if len(self.objects) == 0:
            # nothing to track yet: all background
            self.prev_prob = None
            if self.mirror is not None:
                self.mirror.prev_prob = None
            return torch.ones(1, *frame.size, device=self.device)

        stages = self.stages
        views = [_View(self.bank, self.prev_prob, frame.image)]
        if self.mirror is not None:  # inference.flip: the mirrored frame through its own memory
            mirrored = frame.image.flip(-1)
            if self.channels_last:
                mirrored = mirrored.contiguous(memory_format=torch.channels_last)
            views.append(_View(self.mirror.bank, self.mirror.prev_prob, mirrored))
        with autocast(self.device, self.precision):
            predicted = [self._predict(view) for view in views]
            prob = predicted[0]
            if len(predicted) == 2 and prob is not None:
                prob = average_flipped(prob, predicted[1])
            if given is not None:
                prob = self._merge(prob, *given)
            assert prob is not None
            permanent = given is not None
            # one decision for both views, so that their memories hold the same frames
            write = permanent or (not last and self.bank.should_write(t, prob))
            for i, view in enumerate(views):
                view.prob = prob if i == 0 else prob.flip(-1)
                if given is not None:
                    view.key = stages.enhance(view.feats.key, view.prob[None])
                if write:
                    values = stages.encode_value(view.image, view.feats.f16, view.prob[None, 1:].to(view.image.dtype))
                    # the memory keeps keys and values in the compute dtype (bf16/fp16 under autocast)
                    view.bank.write(
                        t,
                        view.key[0].to(self.compute_dtype),
                        values[0].to(self.compute_dtype),
                        view.prob,
                        permanent=permanent,
                    )
        self.prev_prob = prob[None]
        if self.mirror is not None:
            self.mirror.prev_prob = views[1].prob[None]
        return self._restore(prob, frame)

    def _predict(self, view: "_View") -> Tensor | None:
        """Encode ``view``'s frame (kept on the view) and, when its memory holds objects, read
        and decode them: ``(K+1, Hp, Wp)`` probabilities, else None."""
        stages = self.stages
        view.feats = stages.encode(view.image)
        view.key = view.feats.key
        if len(view.bank) == 0 or view.bank.num_objects == 0:
            return None
        view.key = stages.enhance(view.feats.key, view.prev_prob)
        readout = view.bank.read(view.key[0])
        return stages.decode(readout[None], view.feats)[0]

    def _merge(self, prob: Tensor | None, ids: list[int], masks: Tensor) -> Tensor:
        """Put given masks into the prediction: they win where they are, and the probabilities
        are aggregated again (STCN's treatment of objects given mid-video)."""
        count = len(self.objects)
        height, width = masks.shape[-2:]
        objects = prob[1:] if prob is not None else masks.new_zeros(0, height, width)
        if objects.shape[0] < count:
            objects = torch.cat([objects, objects.new_zeros(count - objects.shape[0], height, width)])
        objects = objects * (1 - masks.sum(0, keepdim=True).clamp(max=1))
        for obj, m in zip(ids, masks):
            objects[self.objects.slot(obj)] = m
        return soft_aggregate(objects[None], dim=1)[1][0]

    def _restore(self, prob: Tensor, frame: _Prepared) -> Tensor:
        prob = unpad(prob, frame.padding)
        if tuple(prob.shape[-2:]) != frame.size:
            prob = F.interpolate(prob[None], size=frame.size, mode="bilinear", align_corners=False)[0]
        return prob.float()

    # ------------------------------------------------------------- utilities
    def remove(self, ids: Sequence[int]) -> None:
        """Stop tracking objects (their memory is dropped too)."""
        slots = self.objects.remove(ids)
        states = [self] if self.mirror is None else [self, self.mirror]
        for state in states:
            if state.bank.num_objects:
                state.bank.remove_objects(slots)
            if state.prev_prob is not None:
                keep = [0] + [s + 1 for s in range(state.prev_prob.shape[1] - 1) if s not in set(slots)]
                state.prev_prob = state.prev_prob[:, keep]

    def labels(self, prob: Tensor) -> np.ndarray:
        """Argmax of ``prob (K+1, H, W)`` as an ``(H, W)`` map of user ids (int64)."""
        channel = prob.argmax(dim=0).cpu().numpy()
        return self.objects.channel_to_id()[channel]
