"""``remn reproduce``: the paper's Tables I-IV reproduced by one command, at three scales.

    remn reproduce --scale smoke|tiny|full --out DIR [--dry-run] [--gpus N] [--jobs N] [dataset roots]
        [--stcn-weights FILE] [--server-scores FILE] [key=value ...]

:mod:`.scale` reads the per-scale numbers (``configs/reproduce/<scale>.yaml``) and the paper's figures;
:mod:`.plan` builds the steps (the same for every scale); :mod:`.runner` runs them as subprocesses of the
same Python, skipping the complete ones; :mod:`.prepare` and :mod:`.score_youtube` put generated data in
the benchmarks' layouts and score it; :mod:`.tables` and :mod:`.figures` write ``DIR/tables.md``,
``DIR/results.json`` and the figures. docs/reproduce.md describes the whole.
"""

from .plan import MODELS, ROWS, STCN_RELEASED, Plan, PlanOptions, Step, build_plan
from .runner import RunSummary, describe, run_plan
from .scale import SCALES, ScaleConfig, load_paper, load_scale

__all__ = [
    "MODELS",
    "ROWS",
    "STCN_RELEASED",
    "Plan",
    "PlanOptions",
    "Step",
    "build_plan",
    "RunSummary",
    "describe",
    "run_plan",
    "SCALES",
    "ScaleConfig",
    "load_paper",
    "load_scale",
]
