"""The plan of ``remn reproduce``: one list of :class:`Step` objects for every scale.

The same steps at every scale, in this order; only data roots, sizes, iterations and seeds differ
(``configs/reproduce/<scale>.yaml``):

1. ``data-*`` and ``prep-*`` (smoke and tiny only): generated analogues of the training sets and
   benchmarks (``remn generate``), then put in the layouts the benchmarks read
   (:mod:`remn.reproduce.prepare`);
2. ``train-<model>-s<seed>-main``: STCN's recipe (static, BL30K when given, main) for each model
   that must be trained separately (REMN, w/o FRM) and each seed; ``train-<model>-s<seed>-rrm``: the
   rrm stage on its weights;
3. ``eval-<row>-s<seed>-<benchmark>``: every row of the tables on its benchmarks (``remn eval``);
4. ``score-<row>-s<seed>-<benchmark>`` (generated data only): the server benchmarks scored against
   the generator's ground truth (``remn score``, :mod:`remn.reproduce.score_youtube`);
5. ``tables``: ``DIR/tables.md``, ``DIR/results.json`` and the figures (:mod:`remn.reproduce.tables`).

Rows (docs/reproduce.md, "Rows"): FRM changes the learned key, so REMN and w/o FRM are trained
separately; ASM and RRM off are inference switches on the REMN model; STCN is the w/o-FRM model's
STCN-recipe weights (before the rrm stage) with ASM and RRM off, plus STCN's released weights when
given.

Why one module of more than 600 lines: the plan of every scale in one place, so that the scales
visibly differ only in their numbers (configs/reproduce/).
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from omegaconf import OmegaConf

from remn.config import find_config, load_config

from .scale import STAGE_FIELDS, GeneratedSet, ScaleConfig, StageNumbers, recipe_stage

__all__ = [
    "Step",
    "Model",
    "Row",
    "MODELS",
    "ROWS",
    "STCN_RELEASED",
    "ALL_BENCHMARKS",
    "ABLATION_BENCHMARKS",
    "SERVER_BENCHMARKS",
    "ROOT_OPTIONS",
    "PlanOptions",
    "Plan",
    "build_plan",
    "REPO",
]

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Step:
    """One command of the plan, writing under ``<out>/<name>/``."""

    name: str
    kind: str
    """``data``, ``prepare``, ``train``, ``eval``, ``score`` or ``tables``."""
    describe: str
    command: list[str]
    """The argv as run (``sys.executable -m remn ...``, or ``torchrun``)."""
    identity: list[str]
    """What the step is, without its launcher: a finished step counts as done only for the same identity."""
    outputs: list[Path]
    """Files that exist when the step is complete (checked before its marker is written)."""
    after: tuple[str, ...] = ()
    resume_command: Optional[list[str]] = None
    """The argv used instead when ``resume_if`` exists (a training run that was stopped)."""
    resume_if: Optional[Path] = None
    redo_when_changed: bool = False
    """Rerun (rather than refuse) when the identity or the inputs changed (the tables: cheap, derived)."""
    fingerprint_files: tuple[Path, ...] = ()
    """Files whose contents count in the identity (the server scores)."""
    needs: tuple[tuple[str, Path], ...] = ()
    """(option, path) of inputs that must exist before the step runs."""


@dataclass(frozen=True)
class Model:
    """A network the plan trains."""

    id: str
    label: str
    config: str


@dataclass(frozen=True)
class Row:
    """A row of the tables: which weights, evaluated with which config, on which benchmarks."""

    id: str
    label: str
    config: str
    model: Optional[str]
    """The trained model (None: ``--stcn-weights``)."""
    weights: str
    """``main`` (STCN's recipe) or ``rrm`` (after the rrm stage): which launch's final weights."""
    benchmarks: tuple[str, ...]
    modules: tuple[bool, bool, bool]
    """FRM, ASM, RRM on."""


ALL_BENCHMARKS = ("davis2017-val", "davis2017-test-dev", "youtube2018-valid", "long-time", "long-time-x3")
ABLATION_BENCHMARKS = ("davis2017-val", "youtube2018-valid")
SERVER_BENCHMARKS = ("davis2017-test-dev", "youtube2018-valid")

MODELS = (Model("remn", "REMN", "remn"), Model("no-frm", "w/o FRM", "ablation/no_frm"))
ROWS = (
    Row("stcn", "STCN", "stcn", "no-frm", "main", ALL_BENCHMARKS, (False, False, False)),
    Row("remn", "REMN", "remn", "remn", "rrm", ALL_BENCHMARKS, (True, True, True)),
    Row("no-frm", "w/o FRM", "ablation/no_frm", "no-frm", "rrm", ABLATION_BENCHMARKS, (False, True, True)),
    Row("no-asm", "w/o ASM (interval 5)", "ablation/no_asm", "remn", "rrm", ABLATION_BENCHMARKS, (True, False, True)),
    Row("no-rrm", "w/o RRM (unbounded)", "ablation/no_rrm", "remn", "rrm", ABLATION_BENCHMARKS, (True, True, False)),
    Row(
        "frm-only",
        "FRM only (neither ASM nor RRM)",
        "ablation/frm_only",
        "remn",
        "rrm",
        ABLATION_BENCHMARKS,
        (True, False, False),
    ),
)
STCN_RELEASED = Row(
    "stcn-released", "STCN (released weights)", "stcn", None, "file", ALL_BENCHMARKS, (False, False, False)
)

ROOT_OPTIONS = {
    # key of PlanOptions.roots (the option --davis, --davis-test-dev, ...): what it names
    "davis": "DAVIS 2017 trainval (training and davis2017-val)",
    "youtube": "YouTube-VOS train_480p (training)",
    "static": "the static image sets (static stage)",
    "bl30k": "BL30K (STCN's stage 1; the stage runs only when the folder exists)",
    "long_time": "the long-time video set (long-time, long-time-x3)",
    "davis_test_dev": "DAVIS 2017 test-dev (davis2017-test-dev)",
    "youtube_valid": "YouTube-VOS 2018 (youtube2018-valid)",
}


@dataclass
class PlanOptions:
    """What the command line gives the plan."""

    scale: ScaleConfig
    out: Path
    gpus: int = 1
    roots: dict[str, Optional[str]] = field(default_factory=dict)
    """ROOT_OPTIONS key -> the path given, or None (the project's default)."""
    stcn_weights: Optional[Path] = None
    server_scores: Optional[Path] = None
    overrides: list[str] = field(default_factory=list)
    """key=value given to every training and evaluation command."""
    python: str = sys.executable


@dataclass
class Plan:
    options: PlanOptions
    steps: list[Step]
    rows: list[Row]
    evaluations: list[dict]
    """{row, seed, benchmark, eval, score}: which step evaluated (and scored) what."""
    davis_manifest: Optional[Path]

    def to_json(self) -> dict:
        """What ``remn.reproduce.tables`` reads (``DIR/plan.json``)."""
        scale = self.options.scale
        return {
            "format": "remn-reproduce-plan-v1",
            "scale": scale.name,
            "seeds": list(scale.seeds),
            "generated": scale.generated is not None,
            "out": str(self.options.out),
            "rows": [
                {
                    "id": r.id,
                    "label": r.label,
                    "config": r.config,
                    "modules": list(r.modules),
                    "benchmarks": list(r.benchmarks),
                    "seeded": r.model is not None,
                }
                for r in self.rows
            ],
            "evaluations": self.evaluations,
            "davis_manifest": str(self.davis_manifest) if self.davis_manifest else None,
            "steps": [{"name": s.name, "kind": s.kind} for s in self.steps],
        }


# ------------------------------------------------------------------ helpers


def _pair(flag: str, value: Optional[list[int]]) -> list[str]:
    return [] if value is None else [flag, str(value[0]), str(value[1])]


def _list(values) -> str:
    return "[" + ",".join(str(v) for v in values) + "]"


def _default_roots() -> dict[str, str]:
    """The project's defaults: the training roots of the config, the benchmarks' data roots."""
    data = load_config(None).data
    registry = OmegaConf.load(find_config("benchmarks"))
    return {
        "davis": data.davis_root,
        "youtube": data.youtube_root,
        "static": data.static_root,
        "bl30k": data.bl30k_root,
        "long_time": str(registry["long-time"]["data_root"]),
        "davis_test_dev": str(registry["davis2017-test-dev"]["data_root"]),
        "youtube_valid": str(registry["youtube2018-valid"]["data_root"]),
    }


def _processes(gpus: int, batches: list[int]) -> int:
    """The most processes (at most ``gpus``) that divide every stage's global batch."""
    common = 0
    for batch in batches:
        common = math.gcd(common, batch)
    return max(n for n in range(1, gpus + 1) if common % n == 0)


class _Builder:
    def __init__(self, options: PlanOptions) -> None:
        self.o = options
        self.scale = options.scale
        self.out = options.out
        self.steps: list[Step] = []
        self._validated: set[tuple] = set()

    # paths and identities
    def folder(self, name: str) -> Path:
        return self.out / name

    def identity(self, words: list[str]) -> list[str]:
        out = re.compile(re.escape(str(self.out)) + r"(?=/|$)")
        return [out.sub("{out}", w) for w in words]

    def remn(self, *words: str) -> list[str]:
        return [self.o.python, "-m", "remn", *words]

    def add(self, step: Step) -> Step:
        self.steps.append(step)
        return step

    def validate(self, config: str, overrides: list[str]) -> None:
        key = (config, tuple(overrides))
        if key not in self._validated:
            load_config(config, overrides)  # a bad override stops the plan before anything runs
            self._validated.add(key)

    # generated data (smoke, tiny)
    def generate(self, name: str, layout: str, entry: GeneratedSet, describe: str) -> Path:
        size = self.scale.generated.size
        out = self.folder(name) / "out"
        args = [
            "generate",
            str(out),
            "--layout",
            layout,
            "--videos",
            str(entry.videos),
            "--frames",
            str(entry.frames),
            "--size",
            str(size[0]),
            str(size[1]),
            "--seed",
            str(entry.seed),
            "--val-fraction",
            str(entry.val_fraction),
            *_pair("--objects", entry.objects),
            *_pair("--distractors", entry.distractors),
            "--quiet",
            "--overwrite",
        ]
        self.add(
            Step(
                name,
                "data",
                describe,
                self.remn(*args),
                self.identity(args),
                [out / "synthetic.json", out / ".remn-output.json"],
            )
        )
        return out

    def prepare(self, name: str, what: str, args: list[str], after: tuple[str, ...], describe: str) -> Path:
        out = self.folder(name) / "out"
        words = [what, *args, "--out", str(out)]
        command = [self.o.python, "-m", "remn.reproduce.prepare", *words]
        self.add(
            Step(
                name,
                "prepare",
                describe,
                command,
                self.identity(["prepare", *words]),
                [out / ".remn-output.json"],
                after=after,
            )
        )
        return out


def _generated_data(b: _Builder) -> tuple[dict, dict]:
    """The data steps; returns the training data overrides and the benchmarks' (root, gt, after)."""
    data = b.scale.generated
    unseen = ["--unseen-shape", data.unseen_shape]
    davis = b.generate("data-davis", "davis", data.davis, "DAVIS 2017-like train and val videos with look-alikes")
    test_dev = b.generate("data-test-dev", "davis", data.test_dev, "DAVIS 2017 test-dev-like videos")
    youtube = b.generate(
        "data-youtube", "youtube", data.youtube, "YouTube-VOS-like train and valid videos, objects entering late"
    )
    long_src = b.generate("data-long-time", "davis", data.long_time, "long videos for the long-time analogue")
    static_src = b.generate("data-static", "davis", data.static, "single frames for the static-image analogue")
    static = b.prepare(
        "prep-static",
        "static",
        ["--src", str(static_src), *unseen],
        ("data-static",),
        "static images (DUTS-TR layout) from single generated frames, held-out shape left out",
    )
    test_dev_root = b.prepare(
        "prep-test-dev",
        "test-dev",
        ["--src", str(test_dev)],
        ("data-test-dev",),
        "the test-dev layout: first masks only",
    )
    long_time = b.prepare(
        "prep-long-time",
        "long-time",
        ["--src", str(long_src), "--every", str(data.long_time_annotate_every)],
        ("data-long-time",),
        "the long-time layout: sparse masks",
    )
    objects = b.prepare(
        "prep-youtube",
        "youtube",
        ["--src", str(youtube), *unseen],
        ("data-youtube",),
        "YouTube-like valid objects, one ground-truth folder each, seen or unseen",
    )
    subsets = b.prepare(
        "prep-subsets",
        "subsets",
        ["--davis", str(davis), "--youtube", str(youtube), *unseen],
        ("data-davis", "data-youtube"),
        "training lists without the held-out shape",
    )
    train = {
        "data.static_root": static,
        "data.davis_root": davis,
        "data.davis_subset": subsets / "davis-train.txt",
        "data.youtube_root": youtube / "train",
        "data.youtube_subset": subsets / "youtube-train.txt",
    }
    train_after = ("prep-static", "prep-subsets", "data-davis", "data-youtube")
    benchmarks = {
        "davis2017-val": (davis, ("data-davis",)),
        "davis2017-test-dev": (test_dev_root, ("prep-test-dev",)),
        "youtube2018-valid": (youtube, ("data-youtube",)),
        "long-time": (long_time, ("prep-long-time",)),
        "long-time-x3": (long_time, ("prep-long-time",)),
    }
    local = {
        "davis2017-test-dev": ("score", test_dev / "Annotations" / "480p", ("data-test-dev",)),
        "youtube2018-valid": ("score_youtube", objects, ("prep-youtube",)),
    }
    return {"train": train, "train_after": train_after, "bl30k": None}, {"roots": benchmarks, "local": local}


def _real_data(b: _Builder) -> tuple[dict, dict]:
    defaults = _default_roots()
    roots = {key: Path(os.path.abspath(Path(b.o.roots.get(key) or defaults[key]).expanduser())) for key in ROOT_OPTIONS}
    bl30k_given = b.o.roots.get("bl30k") is not None
    bl30k = roots["bl30k"] if bl30k_given or roots["bl30k"].is_dir() else None
    train = {
        "data.static_root": roots["static"],
        "data.davis_root": roots["davis"],
        "data.youtube_root": roots["youtube"],
    }
    needs = [("--static", roots["static"]), ("--davis", roots["davis"]), ("--youtube", roots["youtube"])]
    if bl30k is not None:
        train["data.bl30k_root"] = bl30k
        needs.append(("--bl30k", bl30k))
    benchmarks = {
        "davis2017-val": (roots["davis"], ()),
        "davis2017-test-dev": (roots["davis_test_dev"], ()),
        "youtube2018-valid": (roots["youtube_valid"], ()),
        "long-time": (roots["long_time"], ()),
        "long-time-x3": (roots["long_time"], ()),
    }
    option = {
        "davis2017-val": "--davis",
        "davis2017-test-dev": "--davis-test-dev",
        "youtube2018-valid": "--youtube-valid",
        "long-time": "--long-time",
        "long-time-x3": "--long-time",
    }
    return (
        {"train": train, "train_after": (), "bl30k": bl30k, "needs": tuple(needs)},
        {"roots": benchmarks, "local": {}, "option": option},
    )


def _stages(b: _Builder, bl30k: Optional[Path]) -> dict[str, StageNumbers]:
    scale = b.scale
    if scale.stages is not None:
        return {name: getattr(scale.stages, name) for name in ("static", "main", "rrm")}
    stages = {name: recipe_stage(name) for name in ("static", "synthetic", "main", "rrm")}
    if bl30k is not None:  # STCN's stage 2 follows BL30K; its stage 3 (main.yaml) follows static alone
        stages["main"].iterations = scale.main_after_bl30k_iterations
        stages["main"].milestones = list(scale.main_after_bl30k_milestones)
    return stages


def _train(b: _Builder, model: Model, seed: int, data: dict) -> dict[str, Path]:
    """The two training launches of one model and seed; returns the final weights of each."""
    numbers = _stages(b, data["bl30k"])
    launches = [("main", ["static", *(["synthetic"] if data["bl30k"] is not None else []), "main"]), ("rrm", ["rrm"])]
    weights: dict[str, Path] = {}
    previous: Optional[str] = None
    for index, (launch, stages) in enumerate(launches):
        unused = () if launch == "main" else ("data.static_root", "data.bl30k_root", "--static", "--bl30k")
        roots = [f"{key}={value}" for key, value in data["train"].items() if key not in unused]
        needs = tuple(need for need in data.get("needs", ()) if need[0] not in unused)
        name = f"train-{model.id}-s{seed}-{launch}"
        folder = b.folder(name)
        stage_words = [
            f"train.{stage}.{key}={_list(value) if key == 'milestones' else value}"
            for stage in stages
            for key, value in vars(numbers[stage]).items()
            if key in STAGE_FIELDS
        ]
        overrides = [
            f"train.run_dir={folder}",
            f"train.stages={_list(stages)}",
            f"runtime.seed={seed}",
            *roots,
            *stage_words,
            *(b.scale.first_stage_overrides if index == 0 else []),
            *b.scale.common_overrides,
            *b.scale.train_overrides,
            *b.o.overrides,
        ]
        b.validate(model.config, overrides)
        start = [] if previous is None else ["--load-weights", str(weights[previous])]
        args = ["--config", model.config, "--run-name", "out", "--no-progress", *overrides]
        processes = _processes(b.o.gpus, [numbers[stage].batch_size for stage in stages])
        if processes > 1:
            torchrun = Path(b.o.python).with_name("torchrun")
            launcher = [
                str(torchrun) if torchrun.is_file() else "torchrun",
                "--nproc_per_node",
                str(processes),
                str(REPO / "train.py"),
            ]
        else:
            launcher = [b.o.python, "-m", "remn", "train"]
        run = folder / "out"
        weights[launch] = run / "checkpoints" / f"{stages[-1]}_final.pth"
        after = (*data["train_after"], *((f"train-{model.id}-s{seed}-{previous}",) if previous else ()))
        b.add(
            Step(
                name,
                "train",
                f"train {model.label}, seed {seed}: stages {', '.join(stages)}"
                + (f" on {processes} GPUs" if processes > 1 else ""),
                launcher + start + args,
                b.identity(["train", *start, *args]),
                [weights[launch]],
                after=after,
                resume_command=launcher + args + ["--resume"],
                resume_if=run / "checkpoints" / "latest.pt",
                needs=needs,
            )
        )
        previous = launch
    return weights


def _evaluate(
    b: _Builder,
    row: Row,
    seed: Optional[int],
    checkpoint: Path,
    after: tuple[str, ...],
    bench: dict,
    evaluations: list[dict],
) -> None:
    overrides = [*b.scale.common_overrides, *b.scale.eval_overrides, *b.o.overrides]
    b.validate(row.config, overrides)
    tag = f"{row.id}-s{seed}" if seed is not None else row.id
    for benchmark in row.benchmarks:
        root, data_after = bench["roots"][benchmark]
        name = f"eval-{tag}-{benchmark}"
        out = b.folder(name) / "out"
        args = [
            "eval",
            "--benchmark",
            benchmark,
            "--data-root",
            str(root),
            "--output",
            str(out),
            "--config",
            row.config,
            "--checkpoint",
            str(checkpoint),
            "--quiet",
            "--overwrite",
            *overrides,
        ]
        needs = () if data_after or "option" not in bench else ((bench["option"][benchmark], root),)
        if row.model is None:
            needs = (*needs, ("--stcn-weights", checkpoint))
        b.add(
            Step(
                name,
                "eval",
                f"{row.label}{f', seed {seed}' if seed is not None else ''} on {benchmark}",
                b.remn(*args),
                b.identity(args),
                [out / ".remn-output.json", out / "timing.json"],
                after=(*after, *data_after),
                needs=needs,
            )
        )
        entry = {"row": row.id, "seed": seed, "benchmark": benchmark, "eval": name, "score": None}
        if benchmark in bench["local"]:
            tool, gt, gt_after = bench["local"][benchmark]
            score = f"score-{tag}-{benchmark}"
            score_out = b.folder(score) / "out"
            if tool == "score":
                words = [
                    "score",
                    "--gt",
                    str(gt),
                    "--pred",
                    str(out),
                    "--out",
                    str(score_out),
                    "--split",
                    "test-dev",
                    "--quiet",
                ]
                command, done = b.remn(*words), score_out / "global_results-test-dev.csv"
            else:
                words = ["--objects", str(gt), "--pred", str(out), "--out", str(score_out)]
                command = [b.o.python, "-m", "remn.reproduce.score_youtube", *words]
                words, done = ["score_youtube", *words], score_out / "youtube.json"
            b.add(
                Step(
                    score,
                    "score",
                    f"{benchmark} of {name} scored against the generator's ground truth",
                    command,
                    b.identity(words),
                    [done],
                    after=(name, *gt_after),
                )
            )
            entry["score"] = score
        evaluations.append(entry)


def build_plan(options: PlanOptions) -> Plan:
    """Every step of the reproduction at ``options.scale``; reads no data (``--dry-run`` prints it)."""
    b = _Builder(options)
    scale = options.scale
    data, bench = _generated_data(b) if scale.generated is not None else _real_data(b)
    rows = list(ROWS) + ([STCN_RELEASED] if options.stcn_weights is not None else [])
    weights: dict[tuple[str, int], dict[str, Path]] = {}
    for seed in scale.seeds:
        for model in MODELS:
            weights[(model.id, seed)] = _train(b, model, seed, data)
    evaluations: list[dict] = []
    for row in rows:
        if row.model is None:
            _evaluate(b, row, None, Path(options.stcn_weights).expanduser().absolute(), (), bench, evaluations)
            continue
        for seed in scale.seeds:
            step = f"train-{row.model}-s{seed}-{row.weights}"
            _evaluate(b, row, seed, weights[(row.model, seed)][row.weights], (step,), bench, evaluations)
    plan_file = options.out / "plan.json"
    words = ["--plan", str(plan_file), "--out", str(b.folder("tables") / "out")]
    if options.server_scores is not None:
        words += ["--server-scores", str(Path(options.server_scores).expanduser().absolute())]
    inputs = [s.name for s in b.steps if s.kind in ("eval", "score")]
    b.add(
        Step(
            "tables",
            "tables",
            "tables.md, results.json and the figures, our figures beside the paper's",
            [options.python, "-m", "remn.reproduce.tables", *words],
            b.identity(["tables", *words]),
            [options.out / "tables.md", options.out / "results.json", b.folder("tables") / "out" / "results.json"],
            after=tuple(inputs),
            redo_when_changed=True,
            fingerprint_files=(plan_file, *([Path(options.server_scores)] if options.server_scores else [])),
        )
    )
    davis_manifest = b.folder("data-davis") / "out" / "synthetic.json" if scale.generated is not None else None
    return Plan(options, b.steps, rows, evaluations, davis_manifest)
