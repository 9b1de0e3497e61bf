"""The clips a stage trains on: where they come from, in which order, and where a run is in them.

* :class:`DataSource` is what the trainer asks for a stage's dataset and the max-skip curriculum;
  :class:`VideoDataSource` is the project's (:mod:`remn.data.train_video`). Its items are the
  samples of :mod:`remn.data.sample`.
* :class:`BatchStream` gives one micro-batch after another, epoch after epoch. The order is a
  function of (seed, stage, epoch) alone (:class:`~remn.training.distributed.ResumableSampler`
  and a loader generator seeded by :func:`derived_seed`), so a resumed run, which skips the
  batches its :class:`DataPosition` says were taken, gets exactly the batches the uninterrupted
  one would have. The curriculum's max skip changes at epoch boundaries only.
* In loader workers, expected data errors become :class:`DataLoadError` (:class:`WorkerErrors`),
  so the main process prints the worker's one line rather than PyTorch's wrapped traceback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..config import REMNConfig
from ..errors import REMNError
from .distributed import DistributedContext, ResumableSampler
from .errors import TrainingError
from .signals import ignore_stop_signals

__all__ = [
    "DataSource",
    "VideoDataSource",
    "DataPosition",
    "BatchStream",
    "DataLoadError",
    "WorkerErrors",
    "derived_seed",
]


_STAGE_DATA = {
    "static": "data.static_root",
    "synthetic": "data.synthetic_root and data.bl30k_root",
    "main": "data.davis_root and data.youtube_root",
    "rrm": "data.davis_root and data.youtube_root",
}
"""The settings that say where a stage's training data is."""


class DataSource(Protocol):
    """Where a stage's clips come from (the real one is :class:`VideoDataSource`).

    ``dataset`` returns a map-style dataset whose items are the samples of :mod:`remn.data.sample`
    (``rgb``, ``gt``, ``cls_gt``, ``selector``, ``info``). A dataset with a ``set_max_skip(int)``
    method is updated in place when the curriculum moves on; others are built again. One with
    ``describe()`` is described in the log.
    """

    def dataset(self, stage: str, max_skip: int, clip_frames: int) -> Dataset: ...

    def max_skip_at(self, progress: float) -> int: ...


class VideoDataSource:
    """The project's training datasets (remn/data/train_video.py), as each stage asks for them."""

    def __init__(self, cfg: REMNConfig) -> None:
        self._data_cfg = cfg.data

    def dataset(self, stage: str, max_skip: int, clip_frames: int) -> Dataset:
        from ..data.train_video import build_training_dataset

        return build_training_dataset(stage, self._data_cfg, max_skip, clip_frames=clip_frames)

    def max_skip_at(self, progress: float) -> int:
        from ..data.train_video import max_skip_at

        return int(max_skip_at(progress, self._data_cfg))


class DataLoadError(REMNError, RuntimeError):
    """Bad training data met in a DataLoader worker process (exit status 1).

    The worker raises it with the one-line message of the data error. PyTorch raises it again in
    the main process with the worker's whole traceback as its text; the message keeps only the
    worker's line, so ``train.py`` prints one ``error:`` line as for the same error without workers.
    """

    def __init__(self, message: str) -> None:
        super().__init__(_worker_line(str(message)))


def _worker_line(text: str) -> str:
    """The original one-line message inside PyTorch's 'Caught ... in DataLoader worker' text."""
    if not text.startswith("Caught ") or "Traceback" not in text:
        return text
    tag = f"{DataLoadError.__qualname__}: "
    for line in reversed(text.splitlines()):
        head, found, rest = line.partition(tag)
        if found and (head == "" or head.endswith(".")):
            return rest.strip()
    return " ".join(text.split())


class WorkerErrors(Dataset):
    """A dataset whose expected failures in a loader worker reach the main process as one line."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        from ..data.masks import DataError

        try:
            return self.dataset[index]
        except (REMNError, DataError) as error:
            raise DataLoadError(str(error)) from None


def derived_seed(*parts: int) -> int:
    """A 31-bit seed (valid for torch, NumPy and Python) that depends on every part."""
    return int(np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(1)[0] >> 1)


@dataclass
class DataPosition:
    """Where a stage is in its data (saved in checkpoints)."""

    epoch: int = 0
    batch_in_epoch: int = 0
    """Micro-batches this process has taken from the current epoch."""
    max_skip: int = 0
    total_epochs: int = 1
    """Epochs the stage will take; the curriculum's progress is ``epoch / total_epochs``."""


class BatchStream:
    """Micro-batches of one stage, epoch after epoch, with the max-skip curriculum.

    The dataset's ``max_skip`` follows ``data.max_skip_at(epoch / total_epochs)`` and
    changes only at epoch boundaries (the dataset is rebuilt then). The order within an
    epoch depends only on (seed, epoch); resuming skips the batches already taken.
    """

    def __init__(
        self,
        data: DataSource,
        stage: str,
        clip_frames: int,
        micro_batch: int,
        iterations: int,
        accumulation: int,
        ctx: DistributedContext,
        seed: int,
        num_workers: int,
        position: DataPosition | None = None,
    ) -> None:
        self.data, self.stage, self.clip_frames = data, stage, clip_frames
        self.micro_batch, self.ctx, self.seed, self.num_workers = micro_batch, ctx, seed, num_workers
        fresh = position is None
        self.position = DataPosition() if position is None else position
        if fresh:
            self.position.max_skip = int(data.max_skip_at(0.0))
        self._build(self.position.max_skip)
        per_epoch = self.sampler.num_samples // micro_batch
        self.note = None
        if len(self.dataset) < micro_batch * ctx.world_size:
            self.note = (
                f"note: stage {stage!r} has {len(self.dataset)} clip(s), fewer than one batch of "
                f"{micro_batch} x {ctx.world_size} process(es); clips repeat within an epoch"
            )
        if fresh:
            self.position.total_epochs = max(1, math.ceil(iterations * accumulation / per_epoch))
        self._iterator = None
        self.skip_changes: list[tuple[int, int]] = []
        """``(epoch, new max_skip)`` for every change in this launch."""

    def _build(self, max_skip: int) -> None:
        self.dataset = self.data.dataset(self.stage, max_skip, self.clip_frames)
        if len(self.dataset) == 0:
            raise TrainingError(
                f"stage {self.stage!r}: the training dataset is empty; check "
                f"{_STAGE_DATA.get(self.stage, 'the data.*_root settings')}"
            )
        self.sampler = ResumableSampler(
            self.dataset, self.ctx.world_size, self.ctx.rank, seed=self.seed, min_samples=self.micro_batch
        )

    def _start_epoch(self) -> None:
        p = self.position
        self.sampler.set_epoch(p.epoch, skip=p.batch_in_epoch * self.micro_batch)
        generator = torch.Generator().manual_seed(derived_seed(self.seed, p.epoch, self.ctx.rank))
        dataset = WorkerErrors(self.dataset) if self.num_workers > 0 else self.dataset
        loader = DataLoader(
            dataset,
            batch_size=self.micro_batch,
            sampler=self.sampler,
            num_workers=self.num_workers,
            pin_memory=self.ctx.device.type == "cuda",
            drop_last=True,
            generator=generator,
            worker_init_fn=ignore_stop_signals,
        )
        self._iterator = iter(loader)

    def _next_epoch(self) -> None:
        p = self.position
        p.epoch += 1
        p.batch_in_epoch = 0
        max_skip = int(self.data.max_skip_at(min(1.0, p.epoch / p.total_epochs)))
        if max_skip != p.max_skip:
            p.max_skip = max_skip
            if hasattr(self.dataset, "set_max_skip"):
                self.dataset.set_max_skip(max_skip)
            else:
                self._build(max_skip)
            self.skip_changes.append((p.epoch, max_skip))

    def next(self) -> dict[str, Any]:
        """The next micro-batch (collated dict of the dataset's items)."""
        empty_epochs = 0
        while True:
            if self._iterator is None:
                self._start_epoch()
            try:
                batch = next(self._iterator)
            except StopIteration:
                self._iterator = None
                empty_epochs += 1
                if empty_epochs > 2:
                    raise TrainingError(
                        f"stage {self.stage!r}: the dataset gives no full batch any more "
                        f"(max_skip {self.position.max_skip}); lower the batch size "
                        f"(train.{self.stage}.batch_size) or add videos "
                        f"({_STAGE_DATA.get(self.stage, 'data.*_root')})"
                    ) from None
                self._next_epoch()
                continue
            except BaseException:
                # the error's traceback keeps the loader alive, and its workers ignore SIGTERM: tell
                # them to stop now, or the interpreter would wait for them forever at exit
                self.close()
                raise
            self.position.batch_in_epoch += 1
            return batch

    def close(self) -> None:
        """Stop the loader's worker processes (if any); the next batch starts a new loader."""
        iterator, self._iterator = self._iterator, None
        shutdown = getattr(iterator, "_shutdown_workers", None)  # PyTorch has no public way to do this
        if shutdown is not None:
            shutdown()
