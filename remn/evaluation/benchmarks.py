"""The benchmark registry: ``configs/benchmarks.yaml`` read into typed entries.

Each entry fixes a protocol: which layout is read (``remn/data/vos.py``), how outputs are
laid out (``davis``: ``<out>/<video>/<frame>.png``; ``youtube``: ``<out>/Annotations/<video>/
<frame>.png`` for the listed frames only), whether a zip is made for an evaluation server,
where the ground truth is (if it is distributed), how it is read when scoring (``gt_format``,
see :mod:`remn.evaluation.score`) and the config overrides of the protocol (processing size,
memory interval).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from remn.config import ConfigError

REGISTRY_FILE = Path(__file__).resolve().parents[2] / "configs" / "benchmarks.yaml"

__all__ = ["BenchmarkSpec", "load_benchmarks", "get_benchmark", "REGISTRY_FILE"]


@dataclass
class BenchmarkSpec:
    """One evaluation protocol."""

    layout: str
    """Dataset layout: davis2016, davis2017, youtube, long-time, generic, mose or lvos (whose ground truth
    is scored by the LVOS protocol: each object on the frames of its range, :mod:`remn.evaluation.lvos`)."""
    data_root: str = ""
    """Default dataset root (``--data-root`` replaces it)."""
    split: str = ""
    """Video list (DAVIS: ImageSets/2017/<split>.txt; YouTube-VOS, MOSE, LVOS: the split folder)."""
    gt: str = ""
    """Ground truth folder under the data root, ``<gt>/<video>/<frame>.png``; empty: none."""
    sparse: bool = False
    """Ground truth annotates some frames only; score those."""
    gt_format: str = "davis2017"
    """How the ground truth is read when scoring: ``davis2017`` (ids, 255 void, objects 1..the largest
    id of the first annotated frame; davis2017-evaluation) or ``davis2016`` (0/255 masks, every
    non-zero pixel is the one object; the DAVIS 2016 toolkit)."""
    output: str = "davis"
    """Output layout: ``davis`` or ``youtube``."""
    binary_output: bool = False
    """Write 0/255 grey PNGs instead of palette PNGs."""
    zip: str = ""
    """``results``: zip the result folder; ``annotations``: zip with Annotations/ on top."""
    repeat: int = 1
    """Play order repeats (3: forward, backward, forward)."""
    protocol: list[str] = field(default_factory=list)
    """Config overrides of the protocol (``key=value``)."""
    name: str = ""


_LAYOUTS = ("davis2016", "davis2017", "youtube", "long-time", "generic", "mose", "lvos")
GT_FORMATS = ("davis2016", "davis2017")  # remn.evaluation.score.GT_FORMATS, not imported here (it loads OpenCV)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def load_benchmarks(path: str | Path = REGISTRY_FILE) -> dict[str, BenchmarkSpec]:
    """Every entry of the registry, checked."""
    try:
        raw = OmegaConf.load(path)
    except (OSError, OmegaConfBaseException) as error:
        raise ConfigError(
            f"{path}: cannot read the benchmark registry ({_one_line(error)}); restore the "
            "project's configs/benchmarks.yaml"
        ) from error
    out: dict[str, BenchmarkSpec] = {}
    for name, entry in raw.items():
        try:
            spec = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(BenchmarkSpec), entry))
        except OmegaConfBaseException as error:
            raise ConfigError(
                f"{path}: benchmark {name!r}: {_one_line(str(error).splitlines()[0])}; fix this entry "
                "(its fields are those of BenchmarkSpec, docs/evaluation.md)"
            ) from error
        spec.name = str(name)
        if spec.layout not in _LAYOUTS:
            raise ConfigError(
                f"{path}: benchmark {name!r}: layout {spec.layout!r} is not one of {_LAYOUTS}; fix this entry"
            )
        if spec.output not in ("davis", "youtube"):
            raise ConfigError(
                f"{path}: benchmark {name!r}: output {spec.output!r} must be davis or youtube; fix this entry"
            )
        if spec.gt_format not in GT_FORMATS:
            raise ConfigError(
                f"{path}: benchmark {name!r}: gt_format {spec.gt_format!r} must be one of "
                f"{', '.join(GT_FORMATS)}; fix this entry"
            )
        if spec.zip not in ("", "results", "annotations"):
            raise ConfigError(
                f"{path}: benchmark {name!r}: zip {spec.zip!r} must be results or annotations; fix this entry"
            )
        out[str(name)] = spec
    return out


def get_benchmark(name: str, path: str | Path = REGISTRY_FILE) -> BenchmarkSpec:
    benchmarks = load_benchmarks(path)
    if name not in benchmarks:
        raise ConfigError(f"unknown benchmark {name!r}; pass --benchmark one of: {', '.join(benchmarks)}")
    return benchmarks[name]
