"""Training REMN: the clip pass, STCN's losses, the staged training loop, distributed helpers.

    from remn.config import load_config
    from remn.training import Trainer, VideoDataSource

    cfg = load_config("configs/train/main.yaml")
    Trainer(cfg, VideoDataSource(cfg), "runs/remn_main").run()

``train.py`` is the command-line entry point (one process, or ``torchrun`` for many).
"""

from __future__ import annotations

from .distributed import (BatchSplitError, DistributedContext, ResumableSampler, init_distributed,
                          shutdown_distributed, split_batch)
from .logging import RunFolder, TrainLogger, clip_image
from .loss import bootstrap_fraction, bootstrapped_cross_entropy, clip_segmentation_loss, mask_iou
from .step import ClipOutput, ClipPass, first_frame_prob
from .trainer import (BatchStream, DataPosition, DataSource, NonFiniteLossError, Trainer, TrainingError,
                      TrainingInterrupted, TrainSummary, VideoDataSource, load_initial_weights, load_training_checkpoint,
                      resolve_precision)

__all__ = [
    "Trainer",
    "TrainSummary",
    "TrainingError",
    "NonFiniteLossError",
    "TrainingInterrupted",
    "DataSource",
    "VideoDataSource",
    "BatchStream",
    "DataPosition",
    "ClipPass",
    "ClipOutput",
    "first_frame_prob",
    "bootstrap_fraction",
    "bootstrapped_cross_entropy",
    "clip_segmentation_loss",
    "mask_iou",
    "DistributedContext",
    "init_distributed",
    "shutdown_distributed",
    "split_batch",
    "BatchSplitError",
    "ResumableSampler",
    "RunFolder",
    "TrainLogger",
    "clip_image",
    "load_training_checkpoint",
    "load_initial_weights",
    "resolve_precision",
]
