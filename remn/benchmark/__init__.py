"""Speed and memory of REMN against STCN mode and the single-module ablations (Table III,
Fig. 1(b)); ``remn benchmark`` (remn/cli/benchmark.py) and ``scripts/benchmark.py`` are its
command line, docs/benchmarks.md its settings and results.

============ ====================================================================================
clip.py      :class:`BenchmarkClip`: the generated video (:class:`~remn.data.synthetic.SyntheticStream`) on the device
probes.py    the device's name, waiting for the device, peak memory (:class:`~remn.runtime.PeakMemory`)
suite.py     settings, :func:`run_one` (one measurement), the worker protocol (:func:`spawn`), :func:`run_suite`,
             :func:`summarise`
report.py    the table and the figures of a suite's runs
micro.py     fast paths, the bank's storage, one memory read, a profile of frame steps
worker.py    the workers' entry point: ``python -m remn.benchmark.worker --worker SPEC``
============ ====================================================================================
"""

from .clip import BenchmarkClip
from .micro import FAST_PATHS, READ_VARIANTS, read_one, run_bank, run_fast_paths, run_profile, run_read
from .probes import device_name, sync
from .report import draw_figures, format_table, report
from .suite import (
    CONFIGS,
    CPU_SETTING,
    GPU_SETTING,
    LABELS,
    PLAIN_PATH,
    QUICK_SETTING,
    Options,
    Setting,
    benchmark_core,
    make_decisive,
    resolve_setting,
    run_one,
    run_suite,
    spawn,
    summarise,
)

__all__ = [
    "BenchmarkClip",
    "FAST_PATHS",
    "READ_VARIANTS",
    "read_one",
    "run_bank",
    "run_fast_paths",
    "run_profile",
    "run_read",
    "device_name",
    "sync",
    "draw_figures",
    "format_table",
    "report",
    "CONFIGS",
    "CPU_SETTING",
    "GPU_SETTING",
    "LABELS",
    "PLAIN_PATH",
    "QUICK_SETTING",
    "Options",
    "Setting",
    "benchmark_core",
    "make_decisive",
    "resolve_setting",
    "run_one",
    "run_suite",
    "spawn",
    "summarise",
]
