"""Training: the clip pass, STCN's loss, stages, distributed gradients, exact resume, failures.

Everything runs on the CPU with the full-size network on tiny clips (32x32 or 64x64) of
moving squares that follow the training-data contract (``rgb``, ``gt``, ``cls_gt``,
``selector``, ``info``), a few iterations at a time.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import Dataset

from remn.config import ConfigError, TrainConfig, load_config
from remn.model import build_model
from remn.model.checkpoint import CheckpointError, atomic_save, load_network_weights, read_state_dict, save_weights
from remn.training.batches import BatchStream
from remn.training.checkpoint import CHECKPOINT_FORMAT, load_training_checkpoint
from remn.training.clip_pass import ClipPass
from remn.training.distributed import (
    BatchSplitError,
    DistributedContext,
    ResumableSampler,
    init_distributed,
    shutdown_distributed,
    split_batch,
)
from remn.training.errors import NonFiniteLossError, TrainingError
from remn.training.loss import bootstrap_fraction, bootstrapped_cross_entropy, clip_segmentation_loss
from remn.training.optim import (
    clip_gradients,
    configure_trainable,
    gradient_norm,
    lr_factor,
    make_optimizer,
    make_scheduler,
    parameter_groups,
    stage_lr,
)
from remn.training.trainer import Trainer

from conftest import DAVIS_MINI, REPO, needs_davis_mini

CONFIG = REPO / "configs" / "remn.yaml"
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These steps are bound by the weights of a 55M-parameter network on tiny inputs: a second
    thread gains little and, on a shared CPU, spin-waiting threads cost several times the work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- fake data


class MovingSquares(Dataset):
    """Clips of one or two coloured squares moving over a grey background (the data contract).

    ``augment``: a random brightness per clip drawn from torch's global generator (so the
    random state matters, as with real augmentations). ``source.poisoned`` (a counter)
    turns frames into NaN once it reaches zero.
    """

    def __init__(
        self,
        count: int,
        frames: int,
        size: int,
        objects: int = 2,
        augment: bool = False,
        source: "FakeSource | None" = None,
        max_skip: int = 0,
    ) -> None:
        self.count, self.frames, self.size, self.objects = count, frames, size, objects
        self.augment, self.source, self.max_skip = augment, source, max_skip

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        t_len, s, k = self.frames, self.size, self.objects
        gen = torch.Generator().manual_seed(index)
        used = 1 + index % k
        image = torch.full((t_len, 3, s, s), 0.5)
        gt = torch.zeros(t_len, k, 1, s, s)
        side = s // 4
        for o in range(used):
            y, x = torch.randint(0, s - side - t_len, (2,), generator=gen).tolist()
            colour = torch.rand(3, 1, 1, generator=gen)
            for t in range(t_len):
                gt[t, :, 0, y + t : y + t + side, x + t : x + t + side] = 0  # in front of earlier objects
                gt[t, o, 0, y + t : y + t + side, x + t : x + t + side] = 1
                image[t, :, y + t : y + t + side, x + t : x + t + side] = colour
        if self.augment:
            image = (image * (0.8 + 0.4 * torch.rand(()))).clamp(0, 1)
        rgb = (image - IMAGENET_MEAN) / IMAGENET_STD
        if self.source is not None and self.source.poisoned is not None:
            self.source.poisoned -= 1
            if self.source.poisoned < 0:
                rgb = torch.full_like(rgb, float("nan"))
        cls_gt = torch.zeros(t_len, s, s, dtype=torch.long)
        for o in range(used):
            cls_gt[gt[:, o, 0] > 0.5] = o + 1
        selector = (torch.arange(k) < used).float()
        return {
            "rgb": rgb,
            "gt": gt,
            "cls_gt": cls_gt,
            "selector": selector,
            "info": {"name": f"squares{index}", "frames": torch.arange(t_len), "num_objects": used},
        }


class FakeSource:
    """A :class:`remn.training.batches.DataSource` over :class:`MovingSquares`."""

    def __init__(
        self, size: int = 32, count: int = 4, augment: bool = False, skips=(5, 10, 15), poisoned: int | None = None
    ) -> None:
        self.size, self.count, self.augment, self.skips, self.poisoned = size, count, augment, skips, poisoned
        self.built: list[tuple[str, int, int]] = []

    def dataset(self, stage: str, max_skip: int, clip_frames: int) -> Dataset:
        self.built.append((stage, max_skip, clip_frames))
        return MovingSquares(self.count, clip_frames, self.size, augment=self.augment, source=self, max_skip=max_skip)

    def max_skip_at(self, progress: float) -> int:
        return self.skips[min(len(self.skips) - 1, int(progress * len(self.skips)))]


_FROZEN = (
    "train.static.freeze_encoders=true",
    "train.synthetic.freeze_encoders=true",
    "train.main.freeze_encoders=true",
)
"""Fixed encoders make a CPU step several times cheaper (Adam and the weight gradients of the
55M-parameter network dominate); the distributed test trains everything."""


def _config(tmp_path: Path, *overrides: str):
    base = [
        "runtime.device=cpu",
        "train.num_workers=0",
        "train.precision=fp32",
        f"train.run_dir={tmp_path}",
        "train.log_every=1",
        "train.image_every=1000",
        "train.save_every=1000",
        "train.weights_every=1000",
    ]
    return load_config(CONFIG, [*base, *overrides])


def _state(path: Path) -> dict[str, torch.Tensor]:
    return read_state_dict(path)


# ----------------------------------------------------------------------------- loss


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 200_000))
def test_bootstrap_fraction_follows_stcns_schedule(iteration):
    cfg = TrainConfig()
    p = bootstrap_fraction(iteration, cfg)
    if iteration < 20_000:
        assert p == 1.0
    elif iteration <= 70_000:
        assert p == pytest.approx(0.15 + 0.85 * (70_000 - iteration) / 50_000)
    else:
        assert p == 0.15
    assert bootstrap_fraction(iteration + 1, cfg) <= p


def test_bootstrap_fraction_at_a_few_iterations_and_from_the_config():
    cfg = TrainConfig()
    assert [bootstrap_fraction(i, cfg) for i in (0, 19_999, 20_000, 45_000, 70_000, 10**6)] == pytest.approx(
        [1.0, 1.0, 1.0, 0.575, 0.15, 0.15]
    )
    custom = dataclasses.replace(cfg, bootstrap_start=10, bootstrap_end=20, bootstrap_final=0.5)
    assert bootstrap_fraction(15, custom) == pytest.approx(0.75)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**16), st.sampled_from([1.0, 0.5, 0.15]))
def test_bootstrapped_ce_keeps_the_hardest_pixels_per_sample(seed, fraction):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 3, 8, 8, generator=gen) * 3
    num_objects = torch.tensor([1, 2])
    target = torch.stack([torch.randint(0, 2, (8, 8), generator=gen), torch.randint(0, 3, (8, 8), generator=gen)])
    got = bootstrapped_cross_entropy(logits, target, num_objects, fraction)
    expected = []
    for b, channels in ((0, 2), (1, 3)):  # one object: background and object only
        losses = torch.nn.functional.cross_entropy(logits[b : b + 1, :channels], target[b : b + 1], reduction="none")
        losses = losses.flatten().sort(descending=True).values[: max(1, int(64 * fraction))]
        expected.append(losses.mean())
    assert torch.allclose(got, torch.stack(expected).mean())


def test_clip_loss_sums_the_frames_after_the_first():
    gen = torch.Generator().manual_seed(0)
    frames = [torch.randn(2, 3, 4, 4, generator=gen) for _ in range(3)]
    cls_gt = torch.randint(0, 2, (2, 4, 4, 4), generator=gen)
    selector = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    loss = clip_segmentation_loss(frames, cls_gt, selector, 1.0)
    by_hand = sum(
        bootstrapped_cross_entropy(f, cls_gt[:, t + 1], torch.tensor([1, 2]), 1.0) for t, f in enumerate(frames)
    )
    assert torch.allclose(loss.total, by_hand) and len(loss.per_frame) == 3


# ----------------------------------------------------------------------------- batch, schedule, data order


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 64), st.integers(1, 8), st.integers(1, 4))
def test_global_batch_split(global_batch, world, accumulation):
    parts = world * accumulation
    if global_batch % parts == 0:
        micro = split_batch(global_batch, world, accumulation)
        assert micro * world * accumulation == global_batch
    else:
        with pytest.raises(BatchSplitError, match=f"multiple of {parts}"):
            split_batch(global_batch, world, accumulation, where="train.main.batch_size")


def test_batch_split_error_names_the_field():
    with pytest.raises(BatchSplitError, match=r"train.main.batch_size=10 .* 4 process\(es\) x 1 .*nearest: 8 or 12"):
        split_batch(10, 4, 1, where="train.main.batch_size")


def test_lr_drops_by_gamma_at_each_milestone():
    cfg = TrainConfig()
    stage = dataclasses.replace(cfg.main, lr=1e-3, milestones=[3, 5])
    optimizer = make_optimizer([torch.nn.Parameter(torch.zeros(2))], stage, cfg)
    scheduler = make_scheduler(optimizer, stage, cfg)
    lrs = []
    for _ in range(7):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5])
    assert optimizer.param_groups[0]["weight_decay"] == 1e-7
    assert isinstance(scheduler, torch.optim.lr_scheduler.MultiStepLR)  # the default is STCN's schedule as it was


def _lr_curve(stage, cfg, steps: int) -> list[float]:
    optimizer = make_optimizer([torch.nn.Parameter(torch.zeros(2))], stage, cfg)
    scheduler = make_scheduler(optimizer, stage, cfg)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


def test_cosine_schedule_with_a_linear_warmup():
    cfg = TrainConfig()
    stage = dataclasses.replace(cfg.main, lr=1e-3, iterations=10, schedule="cosine", warmup=2)
    lrs = _lr_curve(stage, cfg, 10)
    # warm-up: lr/2, lr; then cosine over the remaining 8 iterations: lr at 2, lr/2 at 6, near 0 at 9
    assert lrs[:3] == pytest.approx([5e-4, 1e-3, 1e-3])
    assert lrs[4] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 2 / 8)))
    assert lrs[6] == pytest.approx(5e-4)
    assert lrs[9] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))  # falls monotonically after the warm-up
    assert lr_factor(10, stage, cfg) == pytest.approx(0.0)  # 0 at the end of the stage
    assert lrs == pytest.approx([1e-3 * lr_factor(i, stage, cfg) for i in range(10)])
    without = _lr_curve(dataclasses.replace(stage, warmup=0), cfg, 3)
    assert without[0] == pytest.approx(1e-3) and without[1] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / 10)))
    # a step schedule with a warm-up: the milestones keep their iterations
    step = dataclasses.replace(cfg.main, lr=1e-3, milestones=[3], warmup=2)
    assert _lr_curve(step, cfg, 5) == pytest.approx([5e-4, 1e-3, 1e-3, 1e-4, 1e-4])


def test_new_schedule_settings_are_validated():
    with pytest.raises(ConfigError, match="schedule"):
        load_config(CONFIG, ["train.main.schedule=linear"])
    with pytest.raises(ConfigError, match="warmup"):
        load_config(CONFIG, ["train.main.warmup=150000"])
    with pytest.raises(ConfigError, match="clip_grad_norm"):
        load_config(CONFIG, ["train.clip_grad_norm=-1"])
    with pytest.raises(ConfigError, match="lr_multipliers"):
        load_config(CONFIG, ["train.main.lr_multipliers={frm: 0}"])
    assert load_config(CONFIG, ["train.main.lr_multipliers.frm=10"]).train.main.lr_multipliers == {"frm": 10.0}


def test_clipping_bounds_the_gradient_norm_and_keeps_its_direction():
    params = [torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(2, 2))]
    optimizer = torch.optim.Adam(params)
    params[0].grad = torch.tensor([3.0, 0.0, 4.0])
    params[1].grad = torch.full((2, 2), 6.0)
    before = [p.grad.clone() for p in params]
    assert gradient_norm(optimizer) == pytest.approx(13.0)
    clip_gradients(optimizer, 1.3)
    assert gradient_norm(optimizer) == pytest.approx(1.3, rel=1e-5)
    assert all(torch.allclose(p.grad, b / 10, rtol=1e-5) for p, b in zip(params, before))
    clip_gradients(optimizer, 5.0)  # already below the bound: unchanged
    assert all(torch.allclose(p.grad, b / 10, rtol=1e-5) for p, b in zip(params, before))


def test_the_trainer_steps_with_clipped_gradients(tmp_path):
    cfg = _config(tmp_path, "train.main.iterations=1", "train.main.batch_size=1", "train.clip_grad_norm=1e-3", *_FROZEN)
    trainer = Trainer(cfg, FakeSource(count=1), tmp_path / "run", progress=False)
    trainer.start_stage(0)
    seen = []
    trainer.optimizer.register_step_pre_hook(lambda optimizer, args, kwargs: seen.append(gradient_norm(optimizer)))
    result = trainer.train_step([trainer.stream.next()])
    assert result.values["grad_norm"] > 1e-3  # measured before clipping
    assert len(seen) == 1 and seen[0] <= 1e-3 * (1 + 1e-4)


@pytest.mark.slow
def test_progress_lines_when_stderr_is_not_a_terminal_and_none_with_no_progress(tmp_path, capsys):
    cfg = _config(tmp_path, "train.main.iterations=3", "train.main.batch_size=1", "train.progress_every=2", *_FROZEN)
    Trainer(cfg, FakeSource(count=1), tmp_path / "on", progress=True).run()
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("main ")]
    assert [line.split(" |")[0] for line in lines] == ["main 2/3", "main 3/3"], err  # every 2 and the last
    assert all(" it/s | ETA " in line and " | loss " in line and " | IoU 0." in line for line in lines), lines
    assert "\r" not in err  # no tqdm bar in a log
    Trainer(cfg, FakeSource(count=1), tmp_path / "off", progress=False).run()
    assert "main " not in capsys.readouterr().err


def test_progress_defaults_to_about_twenty_lines_and_uses_a_bar_on_a_terminal(tmp_path):
    import io

    from remn.training.monitor import StageProgress

    assert StageProgress("main", 600, 0, True, 0, io.StringIO()).every == 30
    assert StageProgress("main", 7, 0, True, 0, io.StringIO()).every == 1

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    progress = StageProgress("main", 4, 0, True, 1, stream)
    for iteration in range(1, 5):
        progress.update(iteration, {"loss/total": 1.0, "iou": 0.5})
    progress.postfix({"loss/total": 1.0, "iou": 0.5, "lr": 1e-5})
    progress.close()
    assert "main 1/4 |" not in stream.getvalue() and "4/4" in stream.getvalue() and "iou=0.500" in stream.getvalue()
    with pytest.raises(ConfigError, match="train.progress_every=-1 must be >= 0"):
        _config(tmp_path, "train.progress_every=-1")


def test_an_unknown_lr_multiplier_prefix_is_refused_before_the_run_folder_is_written(tmp_path):
    cfg = _config(tmp_path, "train.main.lr_multipliers.fmr=2")
    with pytest.raises(TrainingError, match=r"train.main.lr_multipliers names \['fmr'\], which is no module"):
        Trainer(cfg, FakeSource(), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_lr_multipliers_make_parameter_groups_by_module(small_model):
    cfg = TrainConfig()
    stage = dataclasses.replace(
        cfg.rrm, lr=1e-4, milestones=[2], lr_multipliers={"frm": 10.0, "rrm": 2.0, "rrm.gate": 5.0}
    )
    try:
        trainable = configure_trainable(small_model, stage)  # encoders frozen, RRM trained
        groups = parameter_groups(small_model, stage)
        assert [g["name"] for g in groups] == ["", "frm", "rrm", "rrm.gate"]
        assert sum(len(g["params"]) for g in groups) == len(trainable)
        named = dict(small_model.named_parameters())
        members = {g["name"]: {n for n, p in named.items() if any(p is q for q in g["params"])} for g in groups}
        assert members["frm"] == {n for n in named if n.startswith("frm.")}
        assert members["rrm.gate"] == {n for n in named if n.startswith("rrm.gate.")}  # the longest prefix wins
        assert members["rrm"] == {n for n in named if n.startswith("rrm.") and not n.startswith("rrm.gate.")}
        assert all(n.startswith("decoder.") for n in members[""])
        optimizer = make_optimizer(groups, stage, cfg)
        scheduler = make_scheduler(optimizer, stage, cfg)
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-4, 1e-3, 2e-4, 5e-4])
        for _ in range(2):
            optimizer.step()
            scheduler.step()
        # the milestone scales every group alike
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-5, 1e-4, 2e-5, 5e-5])
        assert stage_lr(optimizer) == pytest.approx(1e-5)
        assert all(g["weight_decay"] == cfg.weight_decay for g in optimizer.param_groups)
        # no multipliers: the parameters as one group, as before
        plain = parameter_groups(small_model, dataclasses.replace(stage, lr_multipliers={}))
        assert all(isinstance(p, torch.nn.Parameter) for p in plain) and len(plain) == len(trainable)
        with pytest.raises(TrainingError, match="fr.*no module of this network"):
            parameter_groups(small_model, dataclasses.replace(stage, lr_multipliers={"fr": 2.0}))
    finally:
        for parameter in small_model.parameters():
            parameter.requires_grad_(True)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 3), st.integers(0, 5), st.integers(0, 45), st.integers(1, 8))
def test_sampler_order_depends_on_seed_and_epoch_and_skips_exactly(size, world, epoch, skip, batch):
    data = list(range(size))
    shards = []
    for rank in range(world):
        full = ResumableSampler(data, world, rank, seed=7, min_samples=batch)
        full.set_epoch(epoch)
        order = list(full)
        assert len(order) >= batch  # a dataset smaller than a batch repeats
        again = ResumableSampler(data, world, rank, seed=7, min_samples=batch)
        again.set_epoch(epoch, skip=skip)
        assert list(again) == order[skip:] and len(again) == len(order[skip:])
        shards += order
    assert set(shards) == set(data)  # every clip is seen by some process each epoch


class SettableSquares(MovingSquares):
    """A dataset that takes the curriculum's max skip in place (as the real training set does)."""

    def set_max_skip(self, max_skip: int) -> None:
        self.max_skip = max_skip


@pytest.mark.parametrize("in_place", [False, True])
def test_max_skip_changes_at_epoch_boundaries_only(in_place):
    source = FakeSource(count=4)
    if in_place:
        source.dataset = lambda stage, max_skip, frames: (
            source.built.append((stage, max_skip, frames)),
            SettableSquares(4, frames, 32, max_skip=max_skip),
        )[1]
    ctx = DistributedContext()
    stream = BatchStream(
        source, "main", 3, micro_batch=2, iterations=12, accumulation=1, ctx=ctx, seed=0, num_workers=0
    )
    assert stream.position.total_epochs == 6  # 2 batches per epoch
    seen = []
    for _ in range(12):
        batch = stream.next()
        seen.append((stream.position.epoch, stream.position.max_skip, stream.dataset.max_skip))
        assert batch["rgb"].shape == (2, 3, 3, 32, 32)
    for epoch in range(6):
        skips = {(s, d) for e, s, d in seen if e == epoch}
        expected = source.max_skip_at(epoch / 6)
        assert skips == {(expected, expected)}, (epoch, seen)
    # updated in place, or rebuilt only when the value changes
    assert [s for _, s, _ in source.built] == ([5] if in_place else [5, 10, 15])
    assert stream.skip_changes == [(2, 10), (4, 15)]


# ----------------------------------------------------------------------------- the clip pass


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return build_model(load_config(CONFIG))


def test_clip_pass_follows_inference_frm_and_soft_memory(small_model, monkeypatch):
    clip = torch.utils.data.default_collate([MovingSquares(2, 3, 32)[i] for i in range(2)])
    seen_prev, seen_masks = [], []
    enhance, encode_value = small_model.enhance_key, small_model.encode_value
    monkeypatch.setattr(small_model, "enhance_key", lambda key, prev: (seen_prev.append(prev), enhance(key, prev))[1])
    monkeypatch.setattr(
        small_model,
        "encode_value",
        lambda frames, f16, masks: (seen_masks.append(masks), encode_value(frames, f16, masks))[1],
    )
    out = ClipPass(small_model).train()(clip["rgb"], clip["gt"], clip["selector"])
    assert len(out.logits) == 2 and out.logits[0].shape == (2, 3, 32, 32)
    assert not out.rrm_losses
    # frame 0 and frame 1 use frame 0's ground truth; frame t >= 2 uses frame t-1's soft prediction
    first = seen_prev[0]
    assert seen_prev[1] is first and torch.allclose(
        first[:, 1:], clip["gt"][:, 0, :, 0] * clip["selector"][:, :, None, None], atol=1e-4
    )
    assert len(seen_prev) == 3 and seen_prev[2] is out.probs[0]
    # frame 0's values from the ground truth, frame 1's from its soft prediction, with gradient;
    # the last frame is not encoded
    assert len(seen_masks) == 2 and not seen_masks[0].requires_grad
    assert seen_masks[1].requires_grad and torch.equal(seen_masks[1], out.probs[0][:, 1:])
    assert small_model.key_encoder.bn1.training is False  # batch norm stays frozen


def test_clip_pass_reduces_a_full_memory(small_model):
    clip = torch.utils.data.default_collate([MovingSquares(1, 6, 32)[0]])
    with torch.no_grad():
        out = ClipPass(small_model, reduce_memory=True, capacity=2).train()(clip["rgb"], clip["gt"], clip["selector"])
    # frames 1..4 enter memory (the last one never does); frame 2's write fills N = 2, and each
    # later write fills it again (a reduction by 2 leaves one frame)
    assert len(out.logits) == 5 and len(out.rrm_losses) == 3
    assert out.rrm_policies == [0, 0, 0] and all(float(v) >= 0 for v in out.rrm_losses)


def test_initial_weights_from_stcn_or_remn_files(small_model, stcn_random_state, tmp_path):
    torch.save(stcn_random_state, tmp_path / "stcn.pth")
    report = load_network_weights(small_model, tmp_path / "stcn.pth").description
    assert "405 STCN entries" in report and "REMN entries are new" in report and "frm" in report
    assert torch.equal(small_model.state_dict()["decoder.pred.weight"], stcn_random_state["decoder.pred.weight"])
    save_weights(small_model, tmp_path / "remn.pth")
    assert load_network_weights(small_model, tmp_path / "remn.pth").description.startswith(
        f"loaded {len(small_model.state_dict())} entries"
    )
    torch.save({"decoder.pred.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="other.pth"):
        load_network_weights(small_model, tmp_path / "other.pth")


# ----------------------------------------------------------------------------- whole runs


@pytest.mark.slow
def test_every_stage_runs_in_one_launch(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = _config(
        tmp_path,
        "train.stages=[static,synthetic,main,rrm]",
        "memory.capacity=2",
        "train.static.iterations=1",
        "train.static.batch_size=2",
        "train.synthetic.iterations=1",
        "train.synthetic.batch_size=1",
        "train.main.iterations=2",
        "train.main.batch_size=2",
        "train.main.milestones=[1]",
        "train.rrm.iterations=2",
        "train.rrm.batch_size=1",
        "train.rrm.clip_frames=4",
        "train.rrm.lr=1e-4",
        "train.image_every=1",
        *_FROZEN,
    )
    source = FakeSource(size=32, count=2)
    summary = Trainer(cfg, source, tmp_path / "run", progress=False).run()
    assert summary.finished and summary.final_weights == tmp_path / "run" / "checkpoints" / "rrm_final.pth"
    assert {(s, t) for s, _, t in source.built} == {("static", 3), ("synthetic", 3), ("main", 3), ("rrm", 4)}
    folder = tmp_path / "run"
    assert (folder / "config.yaml").is_file() and "commit" in (folder / "run.json").read_text()
    for stage in ("static", "synthetic", "main", "rrm"):
        assert (folder / "checkpoints" / f"{stage}_final.pth").is_file()
    latest = load_training_checkpoint(folder / "checkpoints" / "latest.pt")
    assert latest["completed"] and latest["stage"] == "rrm" and latest["iteration"] == 2

    rows = {(r["stage"], r["iteration"]): r for r in summary.history}
    assert rows[("main", 1)]["lr"] == pytest.approx(1e-6)  # milestone [1]: x0.1 after the first step
    assert rows[("static", 1)]["lr"] == pytest.approx(1e-5)
    assert all(rows[("rrm", i)]["loss/rrm"] > 0 for i in (1, 2))
    assert rows[("rrm", 2)]["loss/total"] > rows[("rrm", 2)]["loss/segmentation"]

    # RRM: frozen (unchanged) in the first stages, trained in its own; the encoders frozen there
    main, rrm = _state(folder / "checkpoints" / "main_final.pth"), _state(folder / "checkpoints" / "rrm_final.pth")
    torch.manual_seed(cfg.runtime.seed)
    initial = build_model(cfg).state_dict()
    assert all(torch.equal(main[k], initial[k]) for k in initial if k.startswith("rrm."))
    for name in (
        "rrm.gate.conv1.weight",
        "rrm.gate.conv2.weight",
        "rrm.key_reducers.0.conv.weight",
        "rrm.value_reducers.0.conv.weight",
    ):
        assert not torch.equal(rrm[name], main[name]), name
    assert torch.equal(rrm["rrm.key_reducers.1.conv.weight"], main["rrm.key_reducers.1.conv.weight"])  # unused policy
    assert all(torch.equal(rrm[k], main[k]) for k in main if k.startswith(("key_encoder.", "value_encoder.")))
    assert not torch.equal(rrm["decoder.pred.weight"], main["decoder.pred.weight"])

    events = EventAccumulator(str(folder / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    for stage in ("static", "synthetic", "main", "rrm"):
        assert f"{stage}/loss/total" in tags["scalars"] and f"{stage}/lr" in tags["scalars"]
    assert "rrm/loss/rrm" in tags["scalars"] and "rrm/rrm/gate_prob0" in tags["scalars"]
    assert "rrm/rrm/policy" in tags["histograms"]
    assert {f"{stage}/clip" for stage in ("static", "synthetic", "main", "rrm")} <= set(tags["images"])
    steps = [e.step for e in events.Scalars("rrm/loss/rrm")]
    assert steps == [5, 6]  # the global step continues across stages (1 + 1 + 2 before)


@pytest.mark.slow
def test_loss_falls_on_a_fixed_batch(tmp_path):
    cfg = _config(
        tmp_path,
        "train.main.iterations=50",
        "train.main.batch_size=1",
        "train.main.lr=1e-4",
        "train.main.freeze_encoders=true",
        "train.log_every=5",
    )
    summary = Trainer(cfg, FakeSource(size=32, count=1), tmp_path / "run", progress=False).run()
    losses = [r["loss/total"] for r in summary.history]
    assert len(losses) == 10 and all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], losses


def _run_to(tmp_path: Path, name: str, stop_after: int | None, resume: bool = False, extra: tuple[str, ...] = ()):
    cfg = _config(
        tmp_path,
        "train.main.iterations=4",
        "train.main.batch_size=1",
        "train.main.lr=1e-4",
        "train.deterministic=true",
        "train.main.milestones=[3]",
        *_FROZEN,
        *extra,
    )
    trainer = Trainer(cfg, FakeSource(size=32, count=3, augment=True), tmp_path / name, resume=resume, progress=False)
    return trainer, trainer.run(stop_after=stop_after)


OPT_IN = (
    "train.main.schedule=cosine",
    "train.main.warmup=1",
    "train.clip_grad_norm=0.05",
    "train.main.lr_multipliers={frm: 10.0, decoder.pred: 0.5}",
)
"""Every opt-in optimiser feature at once: cosine schedule with warm-up, clipping, two extra groups."""


@pytest.mark.slow
@pytest.mark.parametrize("extra", [(), OPT_IN], ids=["stcn-recipe", "opt-in-features"])
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, extra):
    _, whole = _run_to(tmp_path, "whole", None, extra=extra)
    _, first = _run_to(tmp_path, "split", 2, extra=extra)
    assert not first.finished
    stopped = load_training_checkpoint(tmp_path / "split" / "checkpoints" / "latest.pt")
    assert stopped["iteration"] == 2 and not stopped["completed"] and stopped["data"]["batch_in_epoch"] == 2
    _, second = _run_to(tmp_path, "split", None, resume=True, extra=extra)
    assert second.finished
    a = _state(tmp_path / "whole" / "checkpoints" / "main_final.pth")
    b = _state(tmp_path / "split" / "checkpoints" / "main_final.pth")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the resumed launch crossed the epoch boundary (3 clips, batch 1) and the lr milestone exactly as well
    whole_rows = {r["iteration"]: r for r in whole.history}
    for row in second.history:
        assert row["loss/total"] == whole_rows[row["iteration"]]["loss/total"]
        assert row["lr"] == whole_rows[row["iteration"]]["lr"]
    if extra:  # the groups' rates were logged and resumed too, and clipping was at work
        assert all(row["lr/frm"] == whole_rows[row["iteration"]]["lr/frm"] for row in second.history)
        assert whole_rows[1]["lr/frm"] == pytest.approx(1e-3) and whole_rows[1]["lr/decoder.pred"] == pytest.approx(
            5e-5
        )
        assert all(row["grad_norm"] > 0.05 for row in whole.history)


@pytest.mark.slow
def test_mixed_precision_runs_and_the_gradient_scaler_is_resumed(tmp_path):
    overrides = ("train.main.iterations=2", "train.main.batch_size=1", "train.main.freeze_encoders=true")
    bf16 = Trainer(
        _config(tmp_path, *overrides, "train.precision=bf16"), FakeSource(count=1), tmp_path / "bf16", progress=False
    )
    assert bf16.precision == "bf16" and not bf16.run(stop_after=1).history[-1].get("amp/scale")
    fp16_cfg = _config(tmp_path, *overrides, "train.precision=fp16")
    fp16 = Trainer(fp16_cfg, FakeSource(count=1), tmp_path / "fp16", progress=False)
    row = fp16.run(stop_after=1).history[-1]
    assert math.isfinite(row["loss/total"]) and row["amp/scale"] == fp16.scaler.get_scale()
    resumed = Trainer(fp16_cfg, FakeSource(count=1), tmp_path / "fp16", resume=True, progress=False)
    resumed.start_stage(0, resumed.checkpoint)
    assert resumed.scaler.is_enabled() and resumed.scaler.get_scale() == fp16.scaler.get_scale()
    assert resumed.iteration == 1 and resumed.scheduler.last_epoch == 1


@pytest.mark.slow
def test_resuming_with_other_parameter_groups_is_refused(tmp_path):
    overrides = ("train.main.iterations=2", "train.main.batch_size=1", "train.main.freeze_encoders=true")
    Trainer(_config(tmp_path, *overrides), FakeSource(count=1), tmp_path / "run", progress=False).run(stop_after=1)
    other = _config(tmp_path, *overrides, "train.main.lr_multipliers.frm=10")
    with pytest.raises(CheckpointError, match="parameter groups .*train.main.lr_multipliers"):
        Trainer(other, FakeSource(count=1), tmp_path / "run", resume=True, progress=False).run()


def test_a_truncated_checkpoint_is_refused(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    atomic_save({"format": CHECKPOINT_FORMAT, "model": {"w": torch.randn(256, 256)}}, folder / "latest.pt")
    data = (folder / "latest.pt").read_bytes()
    (folder / "latest.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_training_checkpoint(folder / "latest.pt")
    with pytest.raises(CheckpointError, match=r"latest\.pt"):
        Trainer(_config(tmp_path), FakeSource(), tmp_path / "run", resume=True, progress=False)
    with pytest.raises(TrainingError, match="already holds a run"):  # never overwritten by a new launch
        Trainer(_config(tmp_path), FakeSource(), tmp_path / "run", progress=False)
    atomic_save({"w": torch.zeros(1)}, folder / "latest.pt")
    with pytest.raises(CheckpointError, match="not a REMN training checkpoint"):
        load_training_checkpoint(folder / "latest.pt")


def _load_train_script():
    spec = importlib.util.spec_from_file_location("train_entry", REPO / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    import remn.training

    source = FakeSource(size=32, count=2, poisoned=2)  # clips 3 onwards are NaN: iteration 3 fails
    monkeypatch.setattr(remn.training, "VideoDataSource", lambda cfg: source)
    train = _load_train_script()
    code = train.main(
        [
            "--config",
            str(CONFIG),
            "--run-name",
            "bad",
            "--no-progress",
            "runtime.device=cpu",
            "train.num_workers=0",
            f"train.run_dir={tmp_path}",
            "train.main.iterations=5",
            "train.main.batch_size=1",
            "train.save_every=1",
            "train.main.freeze_encoders=true",
        ]
    )
    err = capsys.readouterr().err
    assert code == 3 and "non-finite loss" in err and "iteration 3" in err and "latest.pt" in err
    kept = load_training_checkpoint(tmp_path / "bad" / "checkpoints" / "latest.pt")
    assert kept["iteration"] == 2 and all(
        torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point()
    )
    with pytest.raises(NonFiniteLossError):  # the Python API raises
        source.poisoned = 0
        Trainer(
            load_config(tmp_path / "bad" / "config.yaml"), source, tmp_path / "bad", resume=True, progress=False
        ).run()


def test_cli_arguments_and_configuration_errors(tmp_path, capsys):
    train = _load_train_script()
    with pytest.raises(SystemExit) as help_exit:
        train.main(["--help"])
    assert help_exit.value.code == 0 and "--resume" in capsys.readouterr().out
    with pytest.raises(SystemExit) as both:
        train.main(["--resume", "--load-weights", "x.pth"])
    assert both.value.code == 2
    # configuration errors: one line and exit status 2, returned (argparse's own errors raise SystemExit)
    assert train.main(["--config", str(REPO / "configs" / "train" / "main.yaml"), "train.stages=[main,warmup]"]) == 2
    assert "warmup" in capsys.readouterr().err
    for name in ("static", "synthetic", "main", "rrm"):
        cfg = load_config(REPO / "configs" / "train" / f"{name}.yaml")
        assert cfg.train.stages == [name] and cfg.name == f"remn_{name}"
    with pytest.raises(ConfigError, match="too short to train RRM"):
        load_config(REPO / "configs" / "train" / "rrm.yaml", ["train.rrm.clip_frames=10"])
    with pytest.raises(ConfigError, match="needs RRM"):
        load_config(REPO / "configs" / "train" / "rrm.yaml", ["memory.rrm=false"])


# ----------------------------------------------------------------------------- distributed


def _gradients(trainer: Trainer, batches: list[dict]) -> dict[str, torch.Tensor]:
    trainer.start_stage(0)
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.forward_backward(batches)
    return {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}


def _ddp_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    ctx = init_distributed("cpu", init_method=f"file://{init_file}", rank=rank, world_size=2, local_rank=rank)
    try:
        cfg = _config(Path(out_dir), "train.main.batch_size=2")
        trainer = Trainer(cfg, FakeSource(size=32, count=2), Path(out_dir) / "ddp", ctx, progress=False)
        grads = _gradients(trainer, [_collate([rank])])
        if rank == 0:
            torch.save(grads, Path(out_dir) / "ddp_grads.pt")
    finally:
        shutdown_distributed(ctx)


def _collate(indices: list[int]) -> dict:
    data = MovingSquares(2, 3, 32)
    return torch.utils.data.default_collate([data[i] for i in indices])


@pytest.mark.slow
def test_two_processes_average_gradients_like_one_process_on_the_whole_batch(tmp_path):
    mp.spawn(_ddp_worker, args=(str(tmp_path / "rendezvous"), str(tmp_path)), nprocs=2, join=True)
    ddp = torch.load(tmp_path / "ddp_grads.pt", weights_only=True)
    one = Trainer(
        _config(tmp_path, "train.main.batch_size=2"), FakeSource(size=32, count=2), tmp_path / "one", progress=False
    )
    whole = _gradients(one, [_collate([0, 1])])
    accumulated = _gradients(one, [_collate([0]), _collate([1])])  # two micro-batches of one clip
    assert ddp.keys() == whole.keys() == accumulated.keys() and not any(k.startswith("rrm.") for k in whole)
    # Summation order differs (a batch of 2 or of 1, other thread counts), so compare each
    # tensor by its norm: wrong averaging (a sum, or no all-reduce) would be off by tens of per cent.
    # Gradients that are zero in exact arithmetic (key_proj's bias: the affinity does not change
    # when every key shifts alike) are compared against a floor.
    floor = 1e-6 * max(float(g.norm()) for g in whole.values())
    for name, grad in whole.items():
        for label, other in (("ddp", ddp[name]), ("accumulation", accumulated[name])):
            error = float((other - grad).norm()) / (float(grad.norm()) + floor)
            assert error < 1e-2, (label, name, error)


@pytest.mark.slow
@needs_davis_mini
def test_train_py_on_real_frames_with_the_project_datasets(tmp_path, capsys):
    pytest.importorskip("remn.data.train_video")
    subset = tmp_path / "videos.txt"
    subset.write_text("\n".join(p.name for p in sorted((DAVIS_MINI / "JPEGImages" / "480p").iterdir())) + "\n")
    train = _load_train_script()
    code = train.main(
        [
            "--config",
            str(REPO / "configs" / "train" / "main.yaml"),
            "--no-progress",
            f"data.davis_root={DAVIS_MINI}",
            f"data.davis_subset={subset}",
            f"data.youtube_root={tmp_path / 'none'}",
            "data.crop_size=32",
            "runtime.device=cpu",
            "train.num_workers=0",
            f"train.run_dir={tmp_path}",
            "train.main.iterations=1",
            "train.main.batch_size=1",
            "train.main.freeze_encoders=true",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "training finished" in out and "davis x5" in out
    assert (tmp_path / "remn_main" / "checkpoints" / "main_final.pth").is_file()
