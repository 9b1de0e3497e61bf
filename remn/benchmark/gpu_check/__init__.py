"""GPU readiness in one command (``scripts/gpu_check.py``): every question a short GPU loan must answer.

The checks run one after the other, each in a process of its own forked from the parent
(:mod:`.run`), under its own time budget; a crash, a hang or an error of one is recorded with
its one-line error and the others run:

``device``       the device, torch, CUDA, cuDNN, NCCL and Triton as a check's process sees them;
``agreement``    bf16 against fp32 (same network, in lockstep): one forward pass and a whole
                 generated video: share of equal label pixels, largest probability difference;
``speed``        FPS and peak memory of REMN and STCN mode in bf16, 1 and 3 objects, at a short
                 length and at 3x that length (REMN's memory bounded by RRM), and channels-last;
``profile``      where a frame step spends its time (torch.profiler: the top kernels, shares);
``train``        the ``main`` stage on a generated DAVIS-layout dataset: iterations per second,
                 peak memory;
``torchrun``     ``torchrun --nproc_per_node 1``: an NCCL (gloo on a CPU) group, an all-reduce
                 and DDP steps, then ``remn train`` a few iterations;
``cuda_graphs``  ``inference.cuda_graphs``: agreement with the plain bf16 core, FPS, memory;
``compile``      ``inference.compile``: the same, and how long compiling took.

Modules: :mod:`.settings` (sizes, lengths, budgets; the GPU setting and ``--tiny``), :mod:`.run`
(the parent), :mod:`.workers` (one check in its process), :mod:`.inference_checks`,
:mod:`.training_checks`, :mod:`.measure` (result files, peak memory), :mod:`.report` (the
summary table and the markdown rows for docs/benchmarks.md).

Results are written after every check (``DIR/gpu_check.json``, ``DIR/benchmarks_rows.md``), so a
run stopped from outside keeps what it measured; a check writes its rows as it measures them
(``DIR/work/<check>.json``), so one stopped past its budget keeps its rows too.
"""

from .report import rows_markdown, summary_table
from .run import run_checks
from .settings import CHECKS, Settings, make_settings

__all__ = ["CHECKS", "Settings", "make_settings", "run_checks", "summary_table", "rows_markdown"]
