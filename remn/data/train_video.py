"""Training clips from annotated videos (DAVIS, YouTube-VOS, BL30K, any DAVIS-style folder),
the mix of datasets each training stage uses, and the max-skip curriculum.

Every training dataset of the project (this one and :mod:`remn.data.static`) yields the sample
of :mod:`remn.data.sample` (``rgb``, ``gt``, ``cls_gt``, ``selector``, ``info``), built by
:func:`remn.data.sample.pack_sample`.

Clip sampling (:func:`sample_clip_indices`) follows STCN for three frames and generalises it
to longer clips; see that function. Objects are the ids present in the first frame of the
(possibly time-reversed) clip *after* augmentation, so a picked object is visible in the frame
the memory starts from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import ConcatDataset, Dataset
from tqdm import tqdm

from remn.data.augment import VideoAugment, VideoAugmentSettings
from remn.data.masks import (
    BAD_LAYOUT,
    IMAGE_EXTENSIONS,
    MASK_EXTENSIONS,
    NO_FRAMES,
    SIZE_MISMATCH,
    TOO_MANY_OBJECTS,
    DataError,
    list_files,
    natural_sorted,
    read_image,
    read_mask,
)
from remn.data.sample import pack_sample
from remn.data.static import StaticImageDataset

__all__ = [
    "LAYOUTS",
    "STAGES",
    "TrainVideo",
    "VOSTrainDataset",
    "TrainingSet",
    "sample_clip_indices",
    "build_training_dataset",
    "max_skip_at",
]

log = logging.getLogger(__name__)

LAYOUTS = ("davis", "youtube", "bl30k", "folder")
STAGES = ("static", "synthetic", "main", "rrm")

STCN_CLIP_FRAMES = 3
"""Frames per clip in STCN's stages."""

CLIP_ATTEMPTS = 5
"""Clips drawn from a video before giving up on finding an object in the first frame (STCN: 5)."""

# BL30K's object filter (STCN): an object is used only if it is clearly visible in the first
# frame (over 10x10 pixels) and either big (over 30x30) or stays small later (under 20x20),
# which removes objects that are barely visible at first and then fill the view.
BL30K_MIN_FIRST_AREA = 10 * 10
BL30K_LARGE_AREA = 30 * 30
BL30K_MAX_LATER_AREA = 20 * 20


def sample_clip_indices(
    num_frames: int, clip_frames: int, max_skip: int, generator: torch.Generator | None = None
) -> list[int]:
    """Frame positions of one training clip, in increasing order (reversal is the caller's).

    With ``L = num_frames`` and ``J = min(L, max_skip)`` every step between consecutive clip
    frames is at most ``J + 1``.

    * Three frames: STCN's rule exactly. ``start`` is uniform in ``[0, L - J]``;
      ``f1 = min(start + U{1..J+1}, L - J, L - 1)``; ``f2 = min(f1 + U{1..J+1}, L - J // 2, L - 1)``.
      The clipping can repeat a frame (``f1 == start`` when ``start == L - J``), as in STCN.
    * Any other length: the steps are drawn first, each uniform in ``{1..J+1}``; while the clip
      would not fit in the video, a random step above 1 is shortened by one; then the start is
      uniform over the positions where the clip fits. Frames are distinct and increasing, the
      clip lies inside the video and the steps stay in ``1..J+1``. STCN's clipping does not carry
      over: with many frames, clipping every step against a ceiling piles the tail of the clip
      onto repeated frames.
    """
    if clip_frames < 2:
        raise ValueError(f"a training clip needs at least 2 frames, got clip_frames={clip_frames}")
    if max_skip < 1:
        raise ValueError(f"max_skip must be at least 1, got {max_skip}")
    if num_frames < clip_frames:
        raise ValueError(f"a video of {num_frames} frames cannot give a clip of {clip_frames} frames")

    def uniform(low: int, high: int) -> int:  # inclusive bounds
        return int(torch.randint(low, high + 1, (1,), generator=generator))

    length = num_frames
    jump = min(length, max_skip)
    if clip_frames == 3:
        start = uniform(0, length - jump)
        first = min(start + uniform(1, jump + 1), length - jump, length - 1)
        second = min(first + uniform(1, jump + 1), length - jump // 2, length - 1)
        return [start, first, second]
    steps = [uniform(1, jump + 1) for _ in range(clip_frames - 1)]
    while sum(steps) > length - 1:
        shrinkable = [i for i, step in enumerate(steps) if step > 1]
        steps[shrinkable[uniform(0, len(shrinkable) - 1)]] -= 1
    start = uniform(0, length - 1 - sum(steps))
    positions = [start]
    for step in steps:
        positions.append(positions[-1] + step)
    return positions


@dataclass(frozen=True)
class TrainVideo:
    """One annotated training video: frame and mask files paired by name, in order."""

    name: str
    frames: tuple[Path, ...]
    masks: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.frames)


_ROOT_SETTING = {
    "davis": "data.davis_root",
    "youtube": "data.youtube_root",
    "bl30k": "data.bl30k_root",
    "folder": "data.synthetic_root",
}
"""The setting that names each layout's root."""


def _layout_folders(root: Path, layout: str) -> tuple[Path, Path]:
    """Where a layout keeps frames and masks; raises if ``root`` does not look like it."""
    if layout == "davis":
        images, masks = root / "JPEGImages" / "480p", root / "Annotations" / "480p"
    elif layout == "folder" and (root / "JPEGImages" / "480p").is_dir():
        images, masks = root / "JPEGImages" / "480p", root / "Annotations" / "480p"
    else:
        images, masks = root / "JPEGImages", root / "Annotations"
    if not images.is_dir() or not masks.is_dir():
        expected = f"{images.relative_to(root)}/<video>/ and {masks.relative_to(root)}/<video>/"
        hint = ""
        if layout == "youtube" and (root / "train_480p").is_dir():
            hint = f"; did you mean {root / 'train_480p'}?"
        elif layout == "davis" and (root / "trainval").is_dir():
            hint = f"; did you mean {root / 'trainval'}?"
        raise DataError(
            BAD_LAYOUT,
            f"not a {layout} training set: expected {expected}{hint}; check "
            f"{_ROOT_SETTING.get(layout, 'the data.*_root setting')}",
            root,
        )
    return images, masks


def _read_subset(path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(
            BAD_LAYOUT,
            "video list not found; check data.davis_subset or data.youtube_subset (a text "
            "file with one video name per line; empty: the default list)",
            path,
        )
    names = [line.strip() for line in path.read_text().splitlines()]
    return [n for n in names if n and not n.startswith("#")]


@dataclass
class _Scan:
    videos: list[TrainVideo] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)  # video -> reason
    not_found: list[str] = field(default_factory=list)  # listed in the subset but absent
    frames_without_mask: int = 0


def _scan(root: Path, layout: str, subset: str | Path | None, min_frames: int) -> _Scan:
    image_root, mask_root = _layout_folders(root, layout)
    present = natural_sorted(p.name for p in image_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    default_list = root / "ImageSets" / "2017" / "train.txt"
    if subset is None and layout == "folder" and default_list.is_file():
        subset = default_list  # a DAVIS-style set with a train/val split (e.g. a generated one)
    if subset is None and layout == "davis":
        if not default_list.is_file():
            raise DataError(
                BAD_LAYOUT,
                "ImageSets/2017/train.txt not found, so the training videos are "
                "unknown; give a video list (data.davis_subset) rather than train on "
                "validation videos",
                root,
            )
        subset = default_list
    scan = _Scan()
    if subset is not None:
        wanted = _read_subset(Path(subset))
        available = set(present)
        scan.not_found = [n for n in wanted if n not in available]
        names = [n for n in wanted if n in available]
    else:
        names = present
    for name in tqdm(names, desc=f"scanning {layout} videos", leave=False, disable=len(names) < 100):
        mask_folder = mask_root / name
        if not mask_folder.is_dir():
            scan.dropped[name] = "no annotation folder"
            continue
        masks = {p.stem: p for p in list_files(mask_folder, MASK_EXTENSIONS)}
        frames = list_files(image_root / name, IMAGE_EXTENSIONS)
        paired = [(f, masks[f.stem]) for f in frames if f.stem in masks]
        scan.frames_without_mask += len(frames) - len(paired)
        if len(paired) < min_frames:
            scan.dropped[name] = f"fewer than {min_frames} annotated frames"
            continue
        scan.videos.append(TrainVideo(name, tuple(f for f, _ in paired), tuple(m for _, m in paired)))
    return scan


class VOSTrainDataset(Dataset):
    """Clips of ``clip_frames`` frames from annotated videos, one item per video.

    Args:
        root: the dataset folder (DAVIS: ``.../2017/trainval``; YouTube-VOS: ``.../train_480p``).
        layout: ``davis`` (``JPEGImages/480p/<video>``, videos from ``ImageSets/2017/train.txt``
            unless ``subset`` is given), ``youtube`` (``JPEGImages/<video>``, frames every 5th, so
            the curriculum's skip is divided by ``skip_divisor``), ``bl30k`` (``JPEGImages/<video>``,
            STCN's BL30K object filter and a wider crop scale) or ``folder`` (any set in one of
            these layouts, e.g. a generated one; the videos of ``ImageSets/2017/train.txt`` if
            that file exists, else every video).
        clip_frames: frames per clip (3 as STCN; longer for the RRM stage).
        max_skip: the curriculum's max skip (see :meth:`set_max_skip`).
        max_objects: object slots per clip; up to this many objects are picked.
        crop_size: side of the square training crop.
        subset: a text file listing the videos to use (one name per line); None = all
            (DAVIS: its train list).
        skip_divisor: divides the curriculum's skip (None: 5 for ``youtube``, else 1).
        augment: the augmentation settings (None: STCN's, with BL30K's crop scale for ``bl30k``).
    """

    def __init__(
        self,
        root: str | Path,
        layout: str = "davis",
        clip_frames: int = 3,
        max_skip: int = 5,
        max_objects: int = 2,
        crop_size: int = 384,
        subset: str | Path | None = None,
        skip_divisor: int | None = None,
        augment: VideoAugmentSettings | None = None,
    ):
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if max_objects < 1:
            raise ValueError(f"max_objects must be at least 1, got {max_objects}")
        if clip_frames < 2:
            raise ValueError(f"clip_frames must be at least 2, got {clip_frames}")
        self.root = Path(root)
        self.layout = layout
        self.clip_frames = clip_frames
        self.max_objects = max_objects
        self.crop_size = crop_size
        self.skip_divisor = skip_divisor if skip_divisor is not None else (5 if layout == "youtube" else 1)
        if self.skip_divisor < 1:
            raise ValueError(f"skip_divisor must be at least 1, got {self.skip_divisor}")
        if augment is None:
            augment = VideoAugmentSettings(crop_scale=(0.25, 1.0)) if layout == "bl30k" else VideoAugmentSettings()
        self.augment = VideoAugment(crop_size, augment)
        scan = _scan(self.root, layout, subset, clip_frames)
        self.videos: list[TrainVideo] = scan.videos
        self.dropped: dict[str, str] = scan.dropped
        self.not_found: list[str] = scan.not_found
        self.frames_without_mask = scan.frames_without_mask
        if not self.videos:
            raise DataError(
                NO_FRAMES,
                f"no usable {layout} training video: {len(self.dropped)} dropped "
                f"({self._dropped_summary()}), {len(self.not_found)} listed but absent; each video needs "
                f"{clip_frames} frames with masks of the same name; check "
                f"{_ROOT_SETTING.get(layout, 'the data.*_root setting')} and its video list",
                self.root,
            )
        self.set_max_skip(max_skip)
        log.info(self.describe())

    def set_max_skip(self, max_skip: int) -> None:
        """Set the curriculum's max skip. Takes effect in DataLoader workers started afterwards
        (a new epoch's iterator; not with ``persistent_workers``)."""
        if max_skip < 1:
            raise ValueError(f"max_skip must be at least 1, got {max_skip}")
        self.max_skip = max_skip
        self.effective_max_skip = max(1, max_skip // self.skip_divisor)

    def _dropped_summary(self) -> str:
        reasons: dict[str, int] = {}
        for reason in self.dropped.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        return ", ".join(f"{count} {reason}" for reason, count in reasons.items()) or "none"

    def describe(self) -> str:
        """One line on what was found: videos used and dropped, and why."""
        text = f"{self.layout} at {self.root}: {len(self.videos)} videos (dropped: {self._dropped_summary()})"
        if self.not_found:
            text += f"; {len(self.not_found)} listed videos absent (e.g. {self.not_found[0]})"
        if self.frames_without_mask:
            text += f"; {self.frames_without_mask} frames without a mask skipped"
        return text

    def __len__(self) -> int:
        return len(self.videos)

    def _load(self, video: TrainVideo, positions: Sequence[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        frames, labels = [], []
        for position in positions:
            frame_name = video.frames[position].stem
            image = read_image(video.frames[position], frame=frame_name)
            height, width = image.shape[:2]
            if frames and image.shape != frames[0].shape:
                raise DataError(
                    SIZE_MISMATCH,
                    f"frame is {width}x{height} but frame "
                    f"{video.frames[positions[0]].stem} of the same video is "
                    f"{frames[0].shape[1]}x{frames[0].shape[0]}; all frames of a video must have one "
                    "size: resize or re-extract this one",
                    video.frames[position],
                    frame_name,
                )
            mask, _ = read_mask(video.masks[position], frame=frame_name, expected_size=(width, height))
            frames.append(image)
            labels.append(mask)
        stacked = np.stack(labels)
        if stacked.max(initial=0) > 255:  # renumber so ids fit in the uint8 masks of the augmentation
            ids, compact = np.unique(np.concatenate([[0], stacked.ravel()]), return_inverse=True)
            if len(ids) > 256:
                raise DataError(
                    TOO_MANY_OBJECTS,
                    f"{len(ids) - 1} object ids in one clip; at most 255 are supported: renumber this video's masks",
                    video.masks[positions[0]].parent,
                )
            labels = list(compact[1:].reshape(stacked.shape))
        return frames, labels

    def _candidates(self, labels: Tensor) -> list[int]:
        """Object ids that may be picked: present in the first frame (and, for BL30K, STCN's size filter)."""
        ids = [int(i) for i in torch.unique(labels[0]) if int(i) != 0]
        if self.layout != "bl30k":
            return ids
        kept = []
        for object_id in ids:
            areas = (labels == object_id).flatten(1).sum(1)
            first, later = int(areas[0]), int(areas[1:].max()) if len(areas) > 1 else 0
            if first > BL30K_MIN_FIRST_AREA and (first > BL30K_LARGE_AREA or later < BL30K_MAX_LATER_AREA):
                kept.append(object_id)
        return kept

    def __getitem__(self, index: int) -> dict:
        video = self.videos[index]
        for _ in range(CLIP_ATTEMPTS):
            positions = sample_clip_indices(len(video), self.clip_frames, self.effective_max_skip)
            if float(torch.rand(())) < 0.5:
                positions.reverse()
            frames, labels = self._load(video, positions)
            rgb, clip_labels = self.augment(frames, labels)
            candidates = self._candidates(clip_labels)
            if candidates:
                break
        order = torch.randperm(len(candidates))[: self.max_objects].tolist()
        picked = [candidates[i] for i in order]
        cls_gt = torch.zeros_like(clip_labels)
        object_masks = torch.zeros(len(picked), *clip_labels.shape, dtype=torch.float32)
        for slot, object_id in enumerate(picked):
            where = clip_labels == object_id
            cls_gt[where] = slot + 1
            object_masks[slot] = where.to(torch.float32)
        return pack_sample(video.name, positions, rgb, object_masks.transpose(0, 1), cls_gt, self.max_objects)


class TrainingSet(ConcatDataset):
    """The datasets of one training stage, concatenated (some repeated), with what was missing."""

    def __init__(self, stage: str, parts: Sequence[tuple[str, Dataset, int]], missing: Sequence[str] = ()):
        datasets: list[Dataset] = []
        for _, dataset, repeat in parts:
            datasets.extend([dataset] * repeat)
        super().__init__(datasets)
        self.stage = stage
        self.parts = {name: dataset for name, dataset, _ in parts}
        self.repeats = {name: repeat for name, _, repeat in parts}
        self.missing = list(missing)

    def set_max_skip(self, max_skip: int) -> None:
        """Pass the curriculum's max skip to every part that samples frames."""
        for dataset in self.parts.values():
            if hasattr(dataset, "set_max_skip"):
                dataset.set_max_skip(max_skip)

    def describe(self) -> str:
        """Several lines: each part, its repeat, and the missing sources."""
        lines = [f"training stage {self.stage!r}: {len(self)} items per epoch"]
        for name, dataset in self.parts.items():
            detail = dataset.describe() if hasattr(dataset, "describe") else f"{len(dataset)} items"
            lines.append(f"  {name} x{self.repeats[name]}: {detail}")
        if self.missing:
            lines.append(f"  missing: {', '.join(self.missing)}")
        return "\n".join(lines)


def max_skip_at(progress: float, cfg) -> int:
    """The curriculum's max skip at ``progress`` (fraction of the stage done, 0..1).

    Starts at ``cfg.max_skip_start`` and becomes ``cfg.skip_values[i]`` once
    ``progress >= cfg.skip_fractions[i]`` (STCN switches at epoch starts, so pass the
    progress at the start of each epoch to reproduce it).
    """
    skip = cfg.max_skip_start
    for value, fraction in zip(cfg.skip_values, cfg.skip_fractions):
        if progress >= fraction:
            skip = value
    return skip


def _present(path: str) -> bool:
    return bool(path) and Path(path).is_dir()


def build_training_dataset(stage: str, cfg, max_skip: int, clip_frames: int | None = None) -> TrainingSet:
    """The dataset of one training stage, from a :class:`remn.config.DataConfig`.

    * ``static``: images made into clips (:class:`remn.data.static.StaticImageDataset`).
    * ``synthetic``: the DAVIS-style set at ``cfg.synthetic_root`` and BL30K at ``cfg.bl30k_root``,
      whichever are present.
    * ``main``: DAVIS repeated ``cfg.davis_repeat`` times plus YouTube-VOS; one may be missing.
    * ``rrm``: as ``main`` with the longer ``clip_frames`` the RRM stage needs (required).

    Relative roots are relative to the working directory. A root that does not exist counts as
    missing (listed in ``.missing`` and logged); one that exists with the wrong layout is an error.
    ``clip_frames`` is the stage's clip length (``train.<stage>.clip_frames``); None means
    STCN's 3 and is refused for ``rrm``.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    if stage == "rrm" and clip_frames is None:
        raise ValueError("the rrm stage needs clip_frames (memory capacity plus the frames to segment)")
    frames = STCN_CLIP_FRAMES if clip_frames is None else clip_frames
    common = dict(clip_frames=frames, max_skip=max_skip, max_objects=cfg.max_objects, crop_size=cfg.crop_size)
    video_augment = VideoAugmentSettings(crop_scale=(cfg.crop_scale_min, 1.0))
    parts: list[tuple[str, Dataset, int]] = []
    missing: list[str] = []
    if stage == "static":
        dataset = StaticImageDataset(
            cfg.static_root,
            crop_size=cfg.crop_size,
            clip_frames=frames,
            tps_probability=cfg.static_tps_probability,
            max_objects=cfg.max_objects,
            hr_repeat=cfg.static_hr_repeat,
            tps_points=cfg.static_tps_points,
            tps_std=cfg.static_tps_std,
        )
        parts.append(("static", dataset, 1))
        missing = [f"static/{name}" for name in dataset.missing]
    elif stage == "synthetic":
        if _present(cfg.synthetic_root):
            parts.append(
                ("synthetic", VOSTrainDataset(cfg.synthetic_root, "folder", augment=video_augment, **common), 1)
            )
        else:
            missing.append(f"synthetic ({cfg.synthetic_root or 'data.synthetic_root not set'})")
        if _present(cfg.bl30k_root):
            bl30k_augment = VideoAugmentSettings(crop_scale=(cfg.bl30k_crop_scale_min, 1.0))
            parts.append(("bl30k", VOSTrainDataset(cfg.bl30k_root, "bl30k", augment=bl30k_augment, **common), 1))
        else:
            missing.append(f"bl30k ({cfg.bl30k_root})")
        if not parts:
            raise DataError(
                BAD_LAYOUT,
                "the synthetic stage found no data: neither data.synthetic_root "
                f"({cfg.synthetic_root or 'not set'}) nor data.bl30k_root ({cfg.bl30k_root}) exists; set "
                "one of them (remn generate writes a set; relative paths start here)",
                Path.cwd(),
            )
    else:
        if _present(cfg.davis_root):
            davis = VOSTrainDataset(
                cfg.davis_root, "davis", subset=cfg.davis_subset or None, augment=video_augment, **common
            )
            parts.append(("davis", davis, cfg.davis_repeat))
        else:
            missing.append(f"davis ({cfg.davis_root})")
        if _present(cfg.youtube_root):
            youtube = VOSTrainDataset(
                cfg.youtube_root,
                "youtube",
                subset=cfg.youtube_subset or None,
                skip_divisor=cfg.youtube_skip_divisor,
                augment=video_augment,
                **common,
            )
            parts.append(("youtube", youtube, 1))
        else:
            missing.append(f"youtube ({cfg.youtube_root})")
        if not parts:
            raise DataError(
                BAD_LAYOUT,
                f"the {stage} stage found no data: neither data.davis_root "
                f"({cfg.davis_root}) nor data.youtube_root ({cfg.youtube_root}) exists; set one of them "
                "(relative paths start here)",
                Path.cwd(),
            )
    for name in missing:
        log.warning("training stage %s: %s is missing, training without it", stage, name)
    return TrainingSet(stage, parts, missing)
