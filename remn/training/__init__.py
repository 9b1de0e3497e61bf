"""Training REMN: the staged loop and what it is made of, one module per job.

    from remn.config import load_config
    from remn.training import Trainer, VideoDataSource

    cfg = load_config("configs/train/main.yaml")
    Trainer(cfg, VideoDataSource(cfg), "runs/remn_main").run()

``trainer``       the loop (:class:`Trainer`): stages, steps, saving, stopping, resuming;
``clip_pass``     the forward pass over a training clip (:class:`ClipPass`);
``loss``          STCN's bootstrapped cross-entropy over a clip;
``optim``         trained parameters, optimiser, learning-rate schedule, gradient clipping;
``batches``       where a stage's clips come from and in which order (:class:`BatchStream`);
``checkpoint``    ``latest.pt``: what it holds, reading it, random states;
``signals``       SIGINT/SIGTERM as requests to stop, and the command that continues a run;
``run_folder``    the run folder's paths and what each launch records (:class:`RunFolder`);
``monitor``       ``train.log``, tensorboard and the clip pictures (:class:`TrainLogger`);
``distributed``   processes, batch split, resumable sampler, collective helpers;
``errors``        :class:`TrainingError` and :class:`NonFiniteLossError`.

Import a name from its module; this package names only what a caller of the loop needs.
``train.py`` (``remn train``) is the command-line entry point (one process, or ``torchrun``).
"""

from __future__ import annotations

from .batches import DataSource, VideoDataSource
from .errors import NonFiniteLossError, TrainingError
from .signals import TrainingInterrupted
from .trainer import Trainer, TrainSummary

__all__ = [
    "Trainer",
    "TrainSummary",
    "DataSource",
    "VideoDataSource",
    "TrainingError",
    "NonFiniteLossError",
    "TrainingInterrupted",
]
