"""Training data: clip sampling, the sample contract, augmentation alignment, static clips,
thin-plate splines, the curriculum and the stage mixes. All data is made here, tiny."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader

from remn.config import ConfigError, DataConfig, load_config
from remn.data.augment import MEAN_COLOUR, StaticAugment, VideoAugment
from remn.data.masks import BAD_LAYOUT, DataError, save_image, save_mask
from remn.data.sample import batch_problems, pack_sample, sample_problems
from remn.data.static import StaticImageDataset
from remn.data.tps import ThinPlateSpline, tps_remap_grids, warp_with_tps
from remn.data.train_video import (
    TrainingSet,
    VOSTrainDataset,
    build_training_dataset,
    max_skip_at,
    sample_clip_indices,
)
from remn.model.preprocess import IMAGENET_MEAN, IMAGENET_STD

from conftest import DAVIS_MINI, needs_davis_mini

HEIGHT, WIDTH, FRAMES, CROP = 64, 96, 12, 64

# Frames are a function of the mask: every id has its own grey level, so that the id can be
# read back from the augmented image (grey survives RandomGrayscale; colour jitter is small).
# Background is the warp fill colour, so pixels a warp brings in decode as background.
ID_COLOURS = {0: MEAN_COLOUR, 1: (20, 20, 20), 2: (235, 235, 235)}
ID_LEVELS = torch.tensor([float(np.mean(ID_COLOURS[i])) for i in range(3)])


def stripes(shift: int, ids: tuple[int, ...] = (1, 2)) -> np.ndarray:
    """Vertical stripes 8 px wide (id 1, id 2, background) in rows 8..55, moved right by ``shift``."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    labels = np.zeros((HEIGHT, WIDTH), np.uint8)
    band = (ys >= 8) & (ys < 56)
    for object_id in ids:
        labels[band & (((xs - shift) // 8) % 3 == object_id)] = object_id
    return labels


def image_of(labels: np.ndarray) -> np.ndarray:
    image = np.zeros((*labels.shape, 3), np.uint8)
    for object_id, colour in ID_COLOURS.items():
        image[labels == object_id] = colour
    return image


def write_video(image_dir: Path, mask_dir: Path, labels: list[np.ndarray], step: int = 1, ext: str = ".png"):
    for index, label in enumerate(labels):
        stem = f"{index * step:05d}"
        save_image(image_dir / f"{stem}{ext}", image_of(label))
        save_mask(mask_dir / f"{stem}.png", label)


def late_object_video() -> list[np.ndarray]:
    """Object 1 throughout, object 2 only from frame 6 on."""
    return [stripes(i, ids=(1,) if i < 6 else (1, 2)) for i in range(FRAMES)]


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("davis") / "trainval"
    videos = {
        "stripes": [stripes(i) for i in range(FRAMES)],
        "still": [stripes(0)] * FRAMES,
        "late": late_object_video(),
        "short": [stripes(0), stripes(1)],
        "val_video": [stripes(0)] * FRAMES,
    }
    for name, labels in videos.items():
        write_video(root / "JPEGImages" / "480p" / name, root / "Annotations" / "480p" / name, labels)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "train.txt").write_text("stripes\nstill\nlate\nshort\n")
    return root


@pytest.fixture(scope="module")
def youtube_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("youtube") / "train_480p"
    for name in ("yt_a", "yt_b", "yt_c"):
        write_video(
            root / "JPEGImages" / name,
            root / "Annotations" / name,
            [stripes(i) for i in range(FRAMES)],
            step=5,
            ext=".jpg",
        )
    return root


@pytest.fixture(scope="module")
def davis(davis_root) -> VOSTrainDataset:
    return VOSTrainDataset(davis_root, "davis", crop_size=CROP, max_skip=3)


def decode_ids(rgb: torch.Tensor) -> torch.Tensor:
    """Ids read back from normalised frames (T, 3, H, W) by their grey level."""
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    grey = ((rgb * std + mean) * 255).mean(-3)
    return (grey[..., None] - ID_LEVELS).abs().argmin(-1)


def away_from_edges(labels: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Pixels whose (2r+1)^2 neighbourhood holds a single label."""
    as_float = labels.float()[:, None]
    size = 2 * radius + 1
    high = F.max_pool2d(as_float, size, 1, radius)
    low = -F.max_pool2d(-as_float, size, 1, radius)
    return (high == low)[:, 0]


def alignment(sample: dict) -> float:
    """Fraction of interior pixels where the image's id agrees with cls_gt (slots mapped to ids)."""
    decoded = decode_ids(sample["rgb"])
    cls_gt = sample["cls_gt"]
    slot_to_id = torch.zeros(sample["gt"].shape[1] + 1, dtype=torch.int64)
    for slot in range(1, len(slot_to_id)):
        where = cls_gt == slot
        if where.any():
            slot_to_id[slot] = decoded[where].mode().values
    interior = away_from_edges(cls_gt)
    return float((slot_to_id[cls_gt] == decoded)[interior].float().mean())


def check_contract(sample: dict, frames: int, objects: int, crop: int = CROP, soft: bool = False) -> None:
    assert sample_problems(sample) == []  # the contract's own check agrees with the one below
    assert set(sample) == {"rgb", "gt", "cls_gt", "selector", "info"}
    rgb, gt, cls_gt, selector, info = (sample[k] for k in ("rgb", "gt", "cls_gt", "selector", "info"))
    assert rgb.shape == (frames, 3, crop, crop) and rgb.dtype == torch.float32
    assert gt.shape == (frames, objects, 1, crop, crop) and gt.dtype == torch.float32
    assert cls_gt.shape == (frames, crop, crop) and cls_gt.dtype == torch.int64
    assert selector.shape == (objects,) and selector.dtype == torch.float32
    assert set(info) == {"name", "frames", "num_objects"}
    assert isinstance(info["name"], str) and isinstance(info["num_objects"], int)
    assert info["frames"].dtype == torch.int64 and info["frames"].shape == (frames,)
    used = info["num_objects"]
    assert selector.tolist() == [1.0] * used + [0.0] * (objects - used)
    assert 0 <= int(cls_gt.min()) and int(cls_gt.max()) <= used
    assert float(gt.min()) >= 0 and float(gt.max()) <= 1
    assert not gt[:, used:].any(), "empty slots must have empty masks"
    for slot in range(used):
        if soft:
            assert torch.equal(cls_gt == slot + 1, gt[:, slot, 0] > 0.5)
        else:
            assert set(gt[:, slot].unique().tolist()) <= {0.0, 1.0}
            assert torch.equal(cls_gt == slot + 1, gt[:, slot, 0] == 1)
    # ImageNet-normalised values of colours in [0, 1]
    assert float(rgb.min()) >= -0.485 / 0.229 - 1e-4 and float(rgb.max()) <= 0.594 / 0.225 + 1e-4


# ---------------------------------------------------------------- clip sampling


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 20), st.integers(0, 40), st.integers(1, 30), st.integers(0, 2**31 - 1))
def test_clip_frames_are_ordered_inside_the_video_with_bounded_steps(clip_frames, extra, max_skip, seed):
    length = clip_frames + extra
    positions = sample_clip_indices(length, clip_frames, max_skip, torch.Generator().manual_seed(seed))
    jump = min(length, max_skip)
    steps = np.diff(positions)
    assert len(positions) == clip_frames
    assert 0 <= positions[0] and positions[-1] <= length - 1
    assert (steps <= jump + 1).all()
    if clip_frames == 3:  # STCN's clipping: ordered, repeats allowed, and its ceilings
        assert (steps >= 0).all()
        assert positions[0] <= length - jump and positions[1] <= length - jump
        assert positions[2] <= min(length - jump // 2, length - 1)
    else:
        assert (steps >= 1).all(), "longer clips never repeat a frame"


def test_stcn_rule_repeats_the_start_when_the_video_is_short():
    # L = J: start is 0 and f1 is clipped to L - J = 0, as in STCN.
    draws = {tuple(sample_clip_indices(4, 3, 10, torch.Generator().manual_seed(s))) for s in range(50)}
    assert {d[:2] for d in draws} == {(0, 0)}
    assert {d[2] for d in draws} == {1, 2}  # f1 + U{1..5} clipped to L - J // 2 = 2


@pytest.mark.parametrize("clip_frames", [3, 8])
def test_larger_max_skip_gives_larger_gaps(clip_frames):
    generator = torch.Generator().manual_seed(0)

    def mean_gap(max_skip: int) -> float:
        return float(
            np.mean([np.diff(sample_clip_indices(80, clip_frames, max_skip, generator)).mean() for _ in range(400)])
        )

    gaps = [mean_gap(skip) for skip in (1, 5, 10, 25)]
    assert gaps == sorted(gaps) and gaps[-1] > 2 * gaps[1], gaps


def test_sampler_refuses_impossible_clips():
    with pytest.raises(ValueError, match="cannot give a clip"):
        sample_clip_indices(4, 5, 3)
    with pytest.raises(ValueError, match="max_skip"):
        sample_clip_indices(10, 3, 0)


# ---------------------------------------------------------------- video datasets


def test_davis_layout_uses_the_train_list_and_drops_short_videos(davis):
    names = [v.name for v in davis.videos]
    assert names == ["stripes", "still", "late"]  # train.txt order; val_video not listed
    assert davis.dropped == {"short": "fewer than 3 annotated frames"}
    assert "1 fewer than 3 annotated frames" in davis.describe()


def test_davis_sample_contract(davis):
    torch.manual_seed(0)
    for index in range(len(davis)):
        sample = davis[index]
        check_contract(sample, frames=3, objects=2)
        frames = sample["info"]["frames"]
        assert sample["info"]["name"] == davis.videos[index].name
        assert int(frames.min()) >= 0 and int(frames.max()) < FRAMES
        # normalised: the dark object (grey 20) is far below 0, the mean-colour background near 0
        dark = sample["cls_gt"] == 0
        assert float(sample["rgb"].min()) < -1.5 and float(sample["rgb"].permute(1, 0, 2, 3)[:, dark].mean()) < 0.6


def test_frames_follow_the_skip_and_the_curriculum_widens_them(davis_root):
    dataset = VOSTrainDataset(davis_root, "davis", crop_size=CROP, max_skip=1)
    torch.manual_seed(1)

    def gaps(max_skip: int) -> list[np.ndarray]:
        dataset.set_max_skip(max_skip)
        return [np.diff(dataset[i % 3]["info"]["frames"].numpy()) for i in range(24)]

    narrow, wide = gaps(1), gaps(8)
    directions = set()
    for steps, limit in [(s, 2) for s in narrow] + [(s, 9) for s in wide]:
        assert (np.abs(steps) <= limit).all()
        assert (steps >= 0).all() or (steps <= 0).all(), "a clip is ordered forward or backward"
        directions.add(bool(steps.sum() > 0))
    assert directions == {True, False}, "clips are reversed about half the time"
    assert np.mean([np.abs(s).mean() for s in wide]) > np.mean([np.abs(s).mean() for s in narrow]) + 0.5


def test_youtube_layout_divides_the_skip(youtube_root):
    dataset = VOSTrainDataset(youtube_root, "youtube", crop_size=CROP, max_skip=5)
    assert len(dataset) == 3 and dataset.effective_max_skip == 1
    for skip, expected in [(10, 2), (15, 3), (25, 5), (4, 1)]:
        dataset.set_max_skip(skip)
        assert dataset.max_skip == skip and dataset.effective_max_skip == expected
    dataset.set_max_skip(5)
    torch.manual_seed(2)
    for index in range(6):
        sample = dataset[index % 3]
        check_contract(sample, frames=3, objects=2)
        assert (np.abs(np.diff(sample["info"]["frames"].numpy())) <= 2).all()  # J = 1


def test_layout_errors_name_the_problem(tmp_path, youtube_root, davis_root):
    with pytest.raises(DataError, match="did you mean .*train_480p") as error:
        VOSTrainDataset(youtube_root.parent, "youtube")
    assert error.value.code == BAD_LAYOUT
    bare = tmp_path / "bare"
    write_video(bare / "JPEGImages" / "480p" / "v", bare / "Annotations" / "480p" / "v", [stripes(0)] * 4)
    with pytest.raises(DataError, match="ImageSets/2017/train.txt"):
        VOSTrainDataset(bare, "davis")
    listed = tmp_path / "list.txt"
    listed.write_text("v\nnot_there\n")
    subset = VOSTrainDataset(bare, "davis", subset=listed, crop_size=CROP)
    assert [v.name for v in subset.videos] == ["v"] and subset.not_found == ["not_there"]
    with pytest.raises(ValueError, match="layout"):
        VOSTrainDataset(davis_root, "kinetics")


def test_objects_come_from_the_first_clip_frame(davis):
    index = [v.name for v in davis.videos].index("late")
    davis.set_max_skip(3)
    torch.manual_seed(3)
    seen_two = False
    for _ in range(30):
        sample = davis[index]
        first = int(sample["info"]["frames"][0])
        used = sample["info"]["num_objects"]
        for slot in range(used):
            assert sample["gt"][0, slot].any(), "a picked object is visible in the first frame"
        if first < 6:
            assert used == 1, f"object 2 is absent from frame {first} but was picked"
        seen_two |= used == 2
    assert seen_two, "object 2 is picked when the clip starts where it is visible"


def test_objects_are_picked_at_random_up_to_max_objects(davis_root):
    dataset = VOSTrainDataset(davis_root, "davis", crop_size=CROP, max_objects=1)
    torch.manual_seed(4)
    picked = set()
    for _ in range(16):
        sample = dataset[0]
        check_contract(sample, frames=3, objects=1)
        assert sample["info"]["num_objects"] == 1
        picked.add(int(decode_ids(sample["rgb"])[sample["cls_gt"] == 1].mode().values))
    assert picked == {1, 2}


def test_video_without_objects_retries_then_gives_empty_masks(tmp_path, monkeypatch):
    root = tmp_path / "empty"
    write_video(
        root / "JPEGImages" / "blank", root / "Annotations" / "blank", [np.zeros((HEIGHT, WIDTH), np.uint8)] * 5
    )
    dataset = VOSTrainDataset(root, "folder", crop_size=CROP)
    calls = []
    original = sample_clip_indices

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr("remn.data.train_video.sample_clip_indices", counting)
    sample = dataset[0]
    check_contract(sample, frames=3, objects=2)
    assert len(calls) == 5
    assert sample["info"]["num_objects"] == 0 and not sample["gt"].any() and not sample["cls_gt"].any()


def test_bl30k_filter_skips_objects_too_small_in_the_first_frame(tmp_path):
    root = tmp_path / "bl30k"
    labels = []
    for _ in range(6):
        label = np.zeros((HEIGHT, WIDTH), np.uint8)
        label[10:55, 10:50] = 1  # large: kept
        label[20:24, 70:74] = 2  # 4x4 in every frame: never over 10x10, dropped
        labels.append(label)
    write_video(root / "JPEGImages" / "v", root / "Annotations" / "v", labels)
    dataset = VOSTrainDataset(root, "bl30k", crop_size=CROP)
    torch.manual_seed(5)
    for _ in range(6):
        assert dataset[0]["info"]["num_objects"] == 1


def test_long_clips_for_the_rrm_stage(davis_root):
    dataset = VOSTrainDataset(davis_root, "davis", crop_size=CROP, clip_frames=8, max_skip=2)
    assert [v.name for v in dataset.videos] == ["stripes", "still", "late"]
    torch.manual_seed(6)
    sample = dataset[0]
    check_contract(sample, frames=8, objects=2)
    steps = np.diff(sample["info"]["frames"].numpy())
    assert ((steps >= 1) & (steps <= 3)).all() or ((steps <= -1) & (steps >= -3)).all()


# ---------------------------------------------------------------- augmentation alignment


def test_image_and_mask_stay_aligned(davis):
    torch.manual_seed(7)
    scores = [alignment(davis[i % 2]) for i in range(16)]
    assert min(scores) >= 0.98, scores


def test_alignment_check_catches_a_frame_warp_with_different_params(davis, monkeypatch):
    def misaligned(self, image, mask):  # two calls: two parameter draws
        return self.frame_geometry(image), self.frame_geometry(mask)

    monkeypatch.setattr(VideoAugment, "warp_frame", misaligned)
    torch.manual_seed(7)
    scores = [alignment(davis[i % 2]) for i in range(16)]
    assert np.mean(scores) < 0.95 and min(scores) < 0.9, scores


def test_clip_transforms_share_their_parameters_across_frames(davis, monkeypatch):
    still = [v.name for v in davis.videos].index("still")  # twelve identical frames
    monkeypatch.setattr(VideoAugment, "warp_frame", lambda self, image, mask: (image, mask))
    monkeypatch.setattr(davis.augment, "frame_colour", lambda image: image)
    torch.manual_seed(8)
    for _ in range(6):
        sample = davis[still]
        for t in range(1, 3):
            assert torch.equal(sample["rgb"][t], sample["rgb"][0])
            assert torch.equal(sample["cls_gt"][t], sample["cls_gt"][0])
    monkeypatch.undo()
    sample = davis[still]
    assert not torch.equal(sample["rgb"][1], sample["rgb"][0]), "each frame gets its own warp"


@needs_davis_mini
def test_real_davis_2016_frames_give_full_size_clips():
    dataset = VOSTrainDataset(DAVIS_MINI, "folder", crop_size=384)
    assert len(dataset) >= 1 and all(len(video) >= 3 for video in dataset.videos)
    torch.manual_seed(11)
    for index in range(min(2, len(dataset))):
        sample = dataset[index]
        check_contract(sample, frames=3, objects=2, crop=384)
        assert sample["info"]["num_objects"] == 1  # one object, 0/255 masks
        assert sample["gt"][0, 0].sum() > 0


# ---------------------------------------------------------------- static images


def blob(offset: int = 0, size: tuple[int, int] = (80, 100)) -> tuple[np.ndarray, np.ndarray]:
    height, width = size
    ys, xs = np.mgrid[0:height, 0:width]
    inside = ((xs - width / 2 - offset) ** 2 / 30**2 + (ys - height / 2) ** 2 / 20**2) < 1
    mask = inside.astype(np.uint8) * 255
    image = np.empty((height, width, 3), np.uint8)
    image[:] = MEAN_COLOUR
    image[inside] = ID_COLOURS[1]
    return image, mask


@pytest.fixture(scope="module")
def static_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("static")
    for i in range(3):
        image, mask = blob(3 * i)
        save_image(root / "DUTS-TR" / f"img{i}.jpg", image, quality=100)
        save_mask(root / "DUTS-TR" / f"img{i}.png", mask, palette=None)
    for i in range(2):
        image, mask = blob(-5 * i)
        save_image(root / "fss" / "cat" / f"{i + 1}.jpg", image, quality=100)
        save_mask(root / "fss" / "cat" / f"{i + 1}.png", mask, palette=None)
    image, mask = blob(0, size=(90, 90))
    save_image(root / "BIG_small" / "big.jpg", image, quality=100)
    save_mask(root / "BIG_small" / "big.png", mask, palette=None)
    save_image(root / "BIG_small" / "no_mask.jpg", image)  # skipped: no mask
    return root


def test_static_sources_repeats_and_missing(static_root):
    dataset = StaticImageDataset(static_root, crop_size=CROP)
    assert dataset.missing == ["DUTS-TE", "ecssd", "HRSOD_small"]
    assert dataset.counts == {"fss": 2, "DUTS-TR": 3, "BIG_small": 1}
    assert len(dataset) == 2 + 3 + 5 * 1 and dataset.unpaired == 1
    assert {item.name for item in dataset.items} >= {"fss/cat/1", "DUTS-TR/img0", "BIG_small/big"}
    assert "missing: DUTS-TE, ecssd, HRSOD_small" in dataset.describe()


def test_static_without_any_source_names_root_and_folders(tmp_path):
    with pytest.raises(DataError, match="DUTS-TR") as error:
        StaticImageDataset(tmp_path / "nothing_here")
    assert "nothing_here" in str(error.value) and error.value.code == BAD_LAYOUT


def test_static_sample_contract_soft_masks_and_alignment(static_root):
    dataset = StaticImageDataset(static_root, crop_size=CROP, clip_frames=3, tps_probability=0.5)
    torch.manual_seed(9)
    soft_seen = False
    for index in range(len(dataset)):
        sample = dataset[index]
        check_contract(sample, frames=3, objects=2, soft=True)
        assert sample["info"]["num_objects"] == 1 and sample["info"]["frames"].tolist() == [0, 0, 0]
        values = sample["gt"][:, 0]
        soft_seen |= bool(((values > 0) & (values < 1)).any())
        assert static_alignment(sample) >= 0.995
    assert soft_seen, "static masks stay soft"


def static_alignment(sample: dict) -> float:
    decoded = decode_ids(sample["rgb"]).clamp(max=1)  # 0 background, 1 the blob
    interior = away_from_edges(sample["cls_gt"])
    return float((decoded == sample["cls_gt"])[interior].float().mean())


def test_static_alignment_check_catches_a_bend_with_different_params(static_root, monkeypatch):
    def misaligned(self, image, mask):
        image_params = self.frame_affine_image.make_params([image])
        mask_params = self.frame_affine_image.make_params([mask])
        return (
            self.frame_affine_image.transform(image, image_params),
            self.frame_affine_mask.transform(mask, mask_params),
        )

    monkeypatch.setattr(StaticAugment, "bend_frame", misaligned)
    dataset = StaticImageDataset(static_root, crop_size=CROP, tps_probability=0.5)
    torch.manual_seed(9)
    assert min(static_alignment(dataset[index]) for index in range(len(dataset))) < 0.99


# ---------------------------------------------------------------- thin-plate splines


@settings(max_examples=50, deadline=None)
@given(st.integers(3, 16), st.integers(0, 2**31 - 1))
def test_tps_passes_through_its_control_points(count, seed):
    rng = np.random.default_rng(seed)
    points = rng.permutation(np.stack(np.meshgrid(np.arange(8), np.arange(8)), -1).reshape(-1, 2))[:count] / 8
    values = points + rng.normal(0, 0.05, points.shape)
    spline = ThinPlateSpline.fit(points, values)
    np.testing.assert_allclose(spline(points), values, atol=1e-8)


def test_tps_with_zero_offsets_is_the_identity():
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 1, (12, 2))
    map_x, map_y = tps_remap_grids(points, points, HEIGHT, WIDTH)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    np.testing.assert_allclose(map_x, xs, atol=1e-4)
    np.testing.assert_allclose(map_y, ys, atol=1e-4)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    mask = rng.integers(0, 3, (HEIGHT, WIDTH), dtype=np.uint8)
    warped_image, warped_mask = warp_with_tps(image, mask, points, points)
    assert np.array_equal(warped_mask, mask) and np.abs(warped_image.astype(int) - image).max() <= 1


def test_tps_moves_content_from_source_to_target():
    source = np.array([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75], [0.5, 0.5]])
    target = source.copy()
    target[4] = [0.6, 0.45]  # the centre moves right and up
    mask = np.zeros((100, 100), np.uint8)
    mask[48:53, 48:53] = 1  # a dot on the centre control point (pixel 50, 50)
    image = np.repeat(mask[..., None] * 200, 3, axis=2).astype(np.uint8)
    warped_image, warped_mask = warp_with_tps(image, mask, source, target)
    ys, xs = np.nonzero(warped_mask)
    assert abs(xs.mean() - 60) <= 1.0 and abs(ys.mean() - 45) <= 1.0
    assert warped_mask[45, 60] == 1 and warped_mask[50, 50] == 0
    assert warped_image[45, 60, 0] > 150 and warped_image[50, 50, 0] < 50  # image moved alike


# ---------------------------------------------------------------- curriculum, stages, loader


def test_max_skip_curriculum():
    cfg = DataConfig()
    expected = {0.0: 5, 0.05: 5, 0.1: 10, 0.19: 10, 0.2: 15, 0.35: 20, 0.4: 25, 0.89: 25, 0.9: 5, 1.0: 5}
    assert {p: max_skip_at(p, cfg) for p in expected} == expected
    custom = dataclasses.replace(cfg, max_skip_start=2, skip_values=[7], skip_fractions=[0.5])
    assert [max_skip_at(p, custom) for p in (0.0, 0.49, 0.5, 1.0)] == [2, 2, 7, 7]


def test_data_config_is_validated():
    with pytest.raises(ConfigError, match="skip_fractions"):
        load_config(overrides=["data.skip_fractions=[0.5,0.1,0.2,0.3,0.4]"])
    with pytest.raises(ConfigError, match="same length"):
        load_config(overrides=["data.skip_values=[10]"])
    with pytest.raises(ConfigError, match="crop_size"):
        load_config(overrides=["data.crop_size=100"])
    assert load_config(overrides=["data.crop_size=64"]).data.crop_size == 64


def test_main_stage_mixes_davis_and_youtube(davis_root, youtube_root, tmp_path):
    cfg = dataclasses.replace(DataConfig(), davis_root=str(davis_root), youtube_root=str(youtube_root), crop_size=CROP)
    mix = build_training_dataset("main", cfg, max_skip=10)
    assert isinstance(mix, TrainingSet) and mix.missing == []
    assert len(mix) == 5 * 3 + 3
    assert mix.parts["youtube"].effective_max_skip == 2 and mix.parts["davis"].effective_max_skip == 10
    mix.set_max_skip(25)
    assert mix.parts["youtube"].effective_max_skip == 5 and mix.parts["davis"].effective_max_skip == 25
    only_davis = build_training_dataset("main", dataclasses.replace(cfg, youtube_root=str(tmp_path / "none")), 5)
    assert len(only_davis) == 15 and only_davis.missing == [f"youtube ({tmp_path / 'none'})"]
    assert "missing: youtube" in only_davis.describe()
    with pytest.raises(DataError, match="neither"):
        build_training_dataset(
            "main", dataclasses.replace(cfg, davis_root=str(tmp_path / "a"), youtube_root=str(tmp_path / "b")), 5
        )
    with pytest.raises(ValueError, match="clip_frames"):
        build_training_dataset("rrm", cfg, 5)
    rrm = build_training_dataset("rrm", cfg, 5, clip_frames=6)
    check_contract(rrm[0], frames=6, objects=2)


def test_static_and_synthetic_stages(static_root, davis_root, tmp_path):
    cfg = dataclasses.replace(
        DataConfig(),
        static_root=str(static_root),
        crop_size=CROP,
        synthetic_root=str(davis_root),
        bl30k_root=str(tmp_path / "no_bl30k"),
    )
    static = build_training_dataset("static", cfg, max_skip=5)
    assert len(static) == 10 and static.missing == ["static/DUTS-TE", "static/ecssd", "static/HRSOD_small"]
    synthetic = build_training_dataset("synthetic", cfg, max_skip=5)
    # a DAVIS-style set with ImageSets/2017/train.txt: its train videos only (val_video left out)
    assert len(synthetic) == 3 and synthetic.missing == [f"bl30k ({tmp_path / 'no_bl30k'})"]
    with pytest.raises(DataError, match="synthetic_root"):
        build_training_dataset("synthetic", dataclasses.replace(cfg, synthetic_root=""), 5)


def test_dataloader_with_workers_collates_a_batch(davis, static_root):
    torch.manual_seed(10)
    batch = next(iter(DataLoader(davis, batch_size=3, num_workers=2, shuffle=True)))
    assert batch["rgb"].shape == (3, 3, 3, CROP, CROP) and batch["gt"].shape == (3, 3, 2, 1, CROP, CROP)
    assert batch["cls_gt"].shape == (3, 3, CROP, CROP) and batch["selector"].shape == (3, 2)
    assert batch["info"]["frames"].shape == (3, 3) and batch["info"]["frames"].dtype == torch.int64
    assert sorted(batch["info"]["name"]) == ["late", "still", "stripes"]
    assert batch["info"]["num_objects"].shape == (3,)
    static = StaticImageDataset(static_root, crop_size=CROP)
    batch = next(iter(DataLoader(static, batch_size=2, num_workers=0)))
    assert batch["gt"].shape == (2, 3, 2, 1, CROP, CROP) and batch["selector"].tolist() == [[1.0, 0.0]] * 2
    assert batch_problems(batch, clip_frames=3) == []


def test_the_sample_check_names_what_breaks_the_contract():
    masks = torch.zeros(3, 1, 16, 16)
    masks[:, 0, 4:8, 4:8] = 1
    good = pack_sample(
        "clip", [0, 2, 4], torch.zeros(3, 3, 16, 16, dtype=torch.float64), masks, masks[:, 0].long(), max_objects=2
    )
    assert good["rgb"].dtype == torch.float32 and good["selector"].tolist() == [1.0, 0.0]
    assert sample_problems(good) == []
    bad = {**good, "cls_gt": good["cls_gt"].int()}
    assert "cls_gt is torch.int32" in sample_problems(bad)[0]
    bad = {**good, "selector": torch.tensor([0.0, 1.0])}
    assert "must be 1 for the 1 used slot" in sample_problems(bad)[0]
    bad = {**good, "gt": good["gt"].clone()}
    bad["gt"][:, 1] = 1
    assert "empty slots must have empty masks" in sample_problems(bad)
    assert "keys" in sample_problems({"rgb": good["rgb"]})[0]
    with pytest.raises(ValueError, match="do not fit"):
        pack_sample("clip", [0, 1, 2], good["rgb"], torch.zeros(3, 3, 16, 16), good["cls_gt"], max_objects=2)
    batch = torch.utils.data.default_collate([good, good])
    assert batch_problems(batch, clip_frames=3) == []
    assert batch_problems(batch, clip_frames=4, setting="train.main.clip_frames") == [
        "clips have 3 frames but train.main.clip_frames is 4"
    ]
    odd = {**batch, "rgb": batch["rgb"][..., :15, :]}
    assert "multiples of 16" in batch_problems(odd, clip_frames=3)[0]
