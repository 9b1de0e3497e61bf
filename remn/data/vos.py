"""Test-time datasets, read as they are distributed. Each yields one :class:`Video` at a time.

=================  ===========================================================================
class              layout (paths under the dataset root)
=================  ===========================================================================
DAVIS2016          ``JPEGImages/480p/<video>/00000.jpg``, ``Annotations/480p/<video>/00000.png``
                   (0/255); the video list from ``ImageSets/2016/val.txt`` or
                   ``ImageSets/480p/val.txt`` when present, else every video folder
DAVIS2017          same tree with palette masks; ``ImageSets/2017/<split>.txt``
                   (``val`` under ``trainval/``, ``test-dev`` under ``test-dev/``)
YouTubeVOS         ``<split>/meta.json``, ``<split>/Annotations/<video>/<frame>.png`` (each
                   object's first mask), frames from ``all_frames/<split>_all_frames/JPEGImages``
                   when present, else ``<split>/JPEGImages``
LongTimeVideos     ``JPEGImages/<video>/*``, ``Annotations/<video>/*`` sparsely annotated; the
                   first annotation is the input; ``repeat=3`` plays forward, backward, forward
GenericDataset     ``JPEGImages/<video>/*``, ``Annotations/<video>/*`` holding the first mask
                   of each object, any names (sorted naturally)
MOSE               ``<split>/JPEGImages/<video>/00000.jpg``, ``<split>/Annotations/<video>/00000.png``
                   (``valid``: the first frame's mask only, which is the input)
LVOS               ``<split>/JPEGImages/<video>/00000001.jpg``, ``<split>/Annotations/<video>/``,
                   ``<split>/<split>_meta.json`` (each object's frame range); each object's input
                   is its mask at the first frame of its range (``valid`` ships every frame's
                   ground truth; the other objects of that file are not given)
=================  ===========================================================================

Why one module of more than 600 lines: every test-time layout side by side, so that how they
differ (which masks are inputs, which frames get outputs, their names) is read in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
from PIL import Image

from remn.config import ConfigError
from remn.data.masks import (
    BAD_LAYOUT,
    DAVIS_PALETTE,
    IMAGE_EXTENSIONS,
    MASK_EXTENSIONS,
    MISSING_FIRST_MASK,
    NAME_MISMATCH,
    NO_FRAMES,
    DataError,
    list_files,
    natural_key,
    natural_sorted,
)
from remn.data.video import ImageFolderFrames, Video

__all__ = [
    "VOSDataset",
    "DAVIS2016",
    "DAVIS2017",
    "YouTubeVOS",
    "LongTimeVideos",
    "GenericDataset",
    "MOSE",
    "LVOS",
    "FrameRange",
    "read_lvos_meta",
    "LVOS_STEP",
    "open_dataset",
    "LAYOUTS",
]


def _folders(path: Path) -> list[str]:
    return natural_sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_list(path: Path) -> list[str]:
    """A video list: one name per line, or DAVIS 2016's 'image-path mask-path' lines."""
    names: list[str] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        if "/" in line:  # /JPEGImages/480p/<video>/00000.jpg /Annotations/...
            name = Path(line.split()[0]).parent.name
        else:
            name = line
        if name not in names:
            names.append(name)
    return names


def _subfolders(path: Path, limit: int = 64) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))[:limit]
    except OSError:
        return []


def _did_you_mean(root: Path, folder: str) -> str:
    """'; did you mean ROOT/SUB?' when exactly one folder one or two levels below ``root`` holds
    ``folder`` (``DAVIS/`` for ``DAVIS/2017/trainval/``); else ''."""
    children = _subfolders(root)
    found = [p for p in children if (p / folder).is_dir()]
    if not found:
        found = [q for p in children for q in _subfolders(p) if (q / folder).is_dir()]
    return f"; did you mean {found[0]}?" if len(found) == 1 else ""


def _palette_of(path: Path) -> bytes | None:
    try:
        with Image.open(path) as image:
            raw = image.getpalette() if image.mode == "P" else None
    except OSError:
        return None
    return bytes(raw) if raw else None


class VOSDataset(Sequence[Video]):
    """A list of video names and a way to open each one."""

    root: Path
    videos: list[str]

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, item: int) -> Video:  # type: ignore[override]
        return self.video(self.videos[item])

    def __iter__(self) -> Iterator[Video]:
        for name in self.videos:
            yield self.video(name)

    def video(self, name: str) -> Video:
        raise NotImplementedError

    def restrict(self, names: Sequence[str]) -> "VOSDataset":
        """Keep only ``names`` (e.g. from ``--subset``); unknown names are an error."""
        unknown = [n for n in names if n not in self.videos]
        if unknown:
            where = getattr(self, "image_root", self.root)
            raise DataError(
                BAD_LAYOUT,
                f"videos not in the dataset: {unknown[:10]}"
                f"{' ...' if len(unknown) > 10 else ''}; --subset must name videos of this dataset "
                f"(its video list, or the folders of {where})",
                self.root,
            )
        self.videos = [n for n in self.videos if n in set(names)]
        return self

    # helpers shared by the folder layouts
    @staticmethod
    def _frames(folder: Path, name: str) -> ImageFolderFrames:
        if not folder.is_dir():
            raise DataError(
                NO_FRAMES,
                f"frame folder not found: video {name!r} is listed but has no folder of "
                "frames here; restore it, or remove the video from the dataset's video list",
                folder,
            )
        paths = list_files(folder, IMAGE_EXTENSIONS)
        if not paths:
            inner = _subfolders(folder, limit=3)
            if inner:  # e.g. the generic layout given a DAVIS tree: JPEGImages/480p/<video>/
                raise DataError(
                    NO_FRAMES,
                    f"video has no frames: this folder holds folders ({inner[0].name}/ ...), "
                    "not frames; is --data-root of another layout (DAVIS: JPEGImages/480p/<video>/)? "
                    "Choose the benchmark of that layout",
                    folder,
                )
            raise DataError(
                NO_FRAMES,
                f"video has no frames: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this "
                "folder; put the video's frames here, or remove the video from the dataset",
                folder,
            )
        stems = [p.stem for p in paths]
        if len(set(stems)) != len(stems):
            twice = sorted({p.name for p in paths if stems.count(p.stem) > 1}, key=natural_key)
            raise DataError(
                NAME_MISMATCH,
                f"two frames share a name with different extensions ({', '.join(twice[:4])}"
                f"{' ...' if len(twice) > 4 else ''}); keep one file per frame",
                folder,
            )
        return ImageFolderFrames(paths)

    @staticmethod
    def _masks(folder: Path, frames: ImageFolderFrames, only_first: bool = False) -> dict[int, Path]:
        """Mask files of ``folder`` matched to frames by name."""
        frame_folder = frames.paths[0].parent if frames.paths else None
        if not folder.is_dir():
            raise DataError(
                MISSING_FIRST_MASK,
                f"annotation folder not found: expected the masks of {frame_folder} "
                f"here, named like its frames ({frames.names[0]}.png first); check --data-root",
                folder,
            )
        files = list_files(folder, MASK_EXTENSIONS)
        index_of = {name: i for i, name in enumerate(frames.names)}
        unmatched = [f.name for f in files if f.stem not in index_of]
        if unmatched:
            raise DataError(
                NAME_MISMATCH,
                f"masks with no frame of the same name: {unmatched[:5]}"
                f"{' ...' if len(unmatched) > 5 else ''} (frames are named like "
                f"{frames.names[0]!r}); name each mask like its frame in {frame_folder}",
                folder,
            )
        masks = {index_of[f.stem]: f for f in files}
        if not masks:
            raise DataError(
                MISSING_FIRST_MASK,
                f"no mask files ({', '.join(MASK_EXTENSIONS)}) in the annotation "
                f"folder; put the first mask here, named like its frame (e.g. {frames.names[0]}.png)",
                folder,
            )
        if only_first:
            first = min(masks)
            masks = {first: masks[first]}
        return masks


class _DAVISLayout(VOSDataset):
    binary_output = False
    example_root = "DAVIS/2017/trainval"

    def __init__(
        self,
        root: str | Path,
        resolution: str = "480p",
        videos: Sequence[str] | None = None,
        max_objects: int | None = None,
    ):
        self.root = Path(root)
        self.resolution = resolution
        self.max_objects = max_objects
        self.image_root = self.root / "JPEGImages" / resolution
        self.mask_root = self.root / "Annotations" / resolution
        self.list_file: Path | None = None
        if not self.image_root.is_dir():
            raise DataError(
                BAD_LAYOUT,
                f"expected frames under JPEGImages/{resolution}/<video>/ and masks under "
                f"Annotations/{resolution}/<video>/; --data-root must be the folder holding JPEGImages/ "
                f"(e.g. {self.example_root}){_did_you_mean(self.root, 'JPEGImages')}",
                self.root,
            )
        self.videos = list(videos) if videos is not None else self._default_videos()
        missing = [v for v in self.videos if not (self.image_root / v).is_dir()]
        if missing:
            listed = f"in {self.list_file}" if self.list_file is not None else "asked for"
            raise DataError(
                BAD_LAYOUT,
                f"videos {listed} but not under JPEGImages/{resolution}: {missing[:10]}"
                f"{' ...' if len(missing) > 10 else ''}; restore their frame folders or remove them from "
                "the list",
                self.root,
            )

    def _default_videos(self) -> list[str]:
        return _folders(self.image_root)

    def video(self, name: str) -> Video:
        frames = self._frames(self.image_root / name, name)
        masks = self._masks(self.mask_root / name, frames, only_first=True)
        if 0 not in masks:
            raise DataError(
                MISSING_FIRST_MASK,
                f"no mask for the first frame {frames.names[0]!r}; DAVIS needs "
                f"Annotations/{self.resolution}/{name}/{frames.names[0]}.png (the first frame's mask)",
                self.mask_root / name,
            )
        palette = None if self.binary_output else (_palette_of(masks[0]) or DAVIS_PALETTE)
        return Video(
            name=name,
            frames=frames,
            masks=masks,
            palette=palette,
            void=255 if not self.binary_output else None,
            max_objects=self.max_objects,
            binary_output=self.binary_output,
            binary_input=self.binary_output,
        )


class DAVIS2016(_DAVISLayout):
    """DAVIS 2016 (one object, 0/255 masks); outputs are 0/255 grey PNGs as in STCN."""

    binary_output = True
    example_root = "DAVIS/2016"

    def _default_videos(self) -> list[str]:
        for candidate in (
            self.root / "ImageSets" / "2016" / "val.txt",
            self.root / "ImageSets" / "480p" / "val.txt",
            self.root.parent / "2017" / "trainval" / "ImageSets" / "2016" / "val.txt",
        ):
            if candidate.is_file():
                self.list_file = candidate
                return _read_list(candidate)
        return _folders(self.image_root)


class DAVIS2017(_DAVISLayout):
    """DAVIS 2017 val (root ``DAVIS/2017/trainval``) or test-dev (root ``DAVIS/2017/test-dev``)."""

    def __init__(self, root: str | Path, split: str = "val", **kwargs):
        self.split = split
        super().__init__(root, **kwargs)

    def _default_videos(self) -> list[str]:
        listing = self.root / "ImageSets" / "2017" / f"{self.split}.txt"
        if not listing.is_file():
            raise DataError(
                BAD_LAYOUT,
                f"video list ImageSets/2017/{self.split}.txt not found; --data-root must be "
                "DAVIS/2017/trainval for val (DAVIS/2017/test-dev for test-dev), as distributed",
                self.root,
            )
        self.list_file = listing
        return _read_list(listing)


class YouTubeVOS(VOSDataset):
    """YouTube-VOS 2018/2019 ``valid`` (or ``test``): objects may first appear on later frames,
    ids need not be contiguous, and only the frames listed in ``meta.json`` are written."""

    def __init__(self, root: str | Path, split: str = "valid", all_frames: bool = True, max_objects: int | None = None):
        self.root = Path(root)
        self.split = split
        self.max_objects = max_objects
        split_root = self.root / split
        meta_path = split_root / "meta.json"
        if not meta_path.is_file():
            hint = (
                f"; did you mean {self.root.parent}?"
                if self.root.name == split and (self.root / "meta.json").is_file()
                else ""
            )
            raise DataError(
                BAD_LAYOUT,
                f"expected {split}/meta.json; --data-root must be the YouTube-VOS folder "
                f"holding {split}/ (with meta.json, JPEGImages/ and Annotations/){hint}",
                self.root,
            )
        self.meta = _read_meta(meta_path)
        dense = self.root / "all_frames" / f"{split}_all_frames" / "JPEGImages"
        self.image_root = dense if (all_frames and dense.is_dir()) else split_root / "JPEGImages"
        self.mask_root = split_root / "Annotations"
        self.videos = natural_sorted(self.meta)

    def write_frames(self, name: str) -> set[str]:
        """Names of the frames that need an output (the union over objects in meta.json)."""
        names: set[str] = set()
        for obj in self.meta[name]["objects"].values():
            names.update(obj["frames"])
        return names

    def video(self, name: str) -> Video:
        frames = self._frames(self.image_root / name, name)
        masks = self._masks(self.mask_root / name, frames)
        wanted = self.write_frames(name)
        index_of = {n: i for i, n in enumerate(frames.names)}
        missing = sorted(wanted - set(index_of))
        if missing:
            raise DataError(
                NAME_MISMATCH,
                f"meta.json lists frames that are not in the frame folder: "
                f"{missing[:5]}{' ...' if len(missing) > 5 else ''}; restore those frames, or "
                "YouTube-VOS's own meta.json",
                self.image_root / name,
            )
        first = min(masks)
        palette = _palette_of(masks[first]) or DAVIS_PALETTE
        return Video(
            name=name,
            frames=frames,
            masks=masks,
            write={index_of[n] for n in wanted},
            palette=palette,
            max_objects=self.max_objects,
        )


def _videos_mapping(path: Path, what: str, owner: str, fix: str) -> dict:
    """The ``"videos"`` mapping of a dataset's JSON meta file (YouTube-VOS, LVOS), or one DataError."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DataError(
            BAD_LAYOUT, f"{what} cannot be read as JSON ({error}); restore {owner} own file", path
        ) from None
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict):
        raise DataError(BAD_LAYOUT, f'{what} has no "videos" mapping; {fix}', path)
    return videos


def _read_meta(path: Path) -> dict[str, dict]:
    """``meta.json``'s videos, checked against YouTube-VOS's format:
    ``{"videos": {video: {"objects": {id: {"frames": [frame name, ...], ...}}}}}``."""
    fix = (
        'it should look like {"videos": {"<video>": {"objects": {"1": {"frames": ["00000", ...]}}}}} '
        "as in YouTube-VOS's own file; restore that file"
    )
    videos = _videos_mapping(path, "meta.json", "YouTube-VOS's", fix)
    for name, entry in videos.items():
        objects = entry.get("objects") if isinstance(entry, dict) else None
        if not isinstance(objects, dict):
            raise DataError(BAD_LAYOUT, f'meta.json: video {name!r} has no "objects" mapping; {fix}', path)
        for obj, info in objects.items():
            frames = info.get("frames") if isinstance(info, dict) else None
            if not str(obj).isdigit() or not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
                raise DataError(
                    BAD_LAYOUT,
                    f"meta.json: video {name!r}, object {obj!r} needs a numeric id and a "
                    f'"frames" list of frame names; {fix}',
                    path,
                )
    return videos


class GenericDataset(VOSDataset):
    """Any ``JPEGImages/<video>/`` + ``Annotations/<video>/`` tree; a mask file at a frame adds the
    objects it holds from that frame on."""

    def __init__(
        self,
        root: str | Path,
        max_objects: int | None = None,
        frames_dir: str = "JPEGImages",
        masks_dir: str = "Annotations",
    ):
        self.root = Path(root)
        self.max_objects = max_objects
        self.image_root = self.root / frames_dir
        self.mask_root = self.root / masks_dir
        if not self.image_root.is_dir():
            raise DataError(
                BAD_LAYOUT,
                f"expected frames under {frames_dir}/<video>/ and masks under {masks_dir}/"
                f"<video>/; --data-root must be the folder holding {frames_dir}/"
                f"{_did_you_mean(self.root, frames_dir)}",
                self.root,
            )
        self.videos = _folders(self.image_root)

    def video(self, name: str) -> Video:
        frames = self._frames(self.image_root / name, name)
        masks = self._masks(self.mask_root / name, frames)
        palette = _palette_of(masks[min(masks)]) or DAVIS_PALETTE
        return Video(name=name, frames=frames, masks=masks, palette=palette, max_objects=self.max_objects)


class LongTimeVideos(GenericDataset):
    """The long-time video set: sparse annotations, the first of which is the input; the others
    are ground truth for scoring. ``repeat=3`` is the x3 protocol: the video is played forward,
    backward and forward again and each frame's output is the one of its last visit."""

    def __init__(self, root: str | Path, repeat: int = 1, **kwargs):
        super().__init__(root, **kwargs)
        self.repeat = repeat

    def video(self, name: str) -> Video:
        frames = self._frames(self.image_root / name, name)
        masks = self._masks(self.mask_root / name, frames, only_first=True)
        palette = _palette_of(masks[min(masks)]) or DAVIS_PALETTE
        return Video(
            name=name, frames=frames, masks=masks, repeat=self.repeat, palette=palette, max_objects=self.max_objects
        )


def _split_root(root: Path, split: str, dataset: str, archive: str) -> Path:
    """``root/split`` holding ``JPEGImages/``, or a :class:`DataError` saying which folder to pass."""
    split_root = root / split
    if not (split_root / "JPEGImages").is_dir():
        hint = f"; did you mean {root.parent}?" if root.name == split and (root / "JPEGImages").is_dir() else ""
        raise DataError(
            BAD_LAYOUT,
            f"expected {split}/JPEGImages/<video>/ and {split}/Annotations/<video>/; "
            f"--data-root must be the {dataset} folder holding {split}/ (as {archive} unpacks){hint}",
            root,
        )
    return split_root


class MOSE(VOSDataset):
    """MOSE ``valid`` (or ``train``): every video's first-frame mask is the input (``valid`` ships only
    that one; every object is in it), every frame is written, named like its frame."""

    def __init__(self, root: str | Path, split: str = "valid", max_objects: int | None = None):
        self.root = Path(root)
        self.split = split
        self.max_objects = max_objects
        split_root = _split_root(self.root, split, "MOSE", f"{split}.tar.gz")
        self.image_root = split_root / "JPEGImages"
        self.mask_root = split_root / "Annotations"
        self.videos = _folders(self.image_root)

    def video(self, name: str) -> Video:
        frames = self._frames(self.image_root / name, name)
        masks = self._masks(self.mask_root / name, frames, only_first=True)
        if 0 not in masks:
            raise DataError(
                MISSING_FIRST_MASK,
                f"no mask for the first frame {frames.names[0]!r}; MOSE gives "
                f"{self.split}/Annotations/{name}/{frames.names[0]}.png (the first frame's mask)",
                self.mask_root / name,
            )
        return Video(
            name=name,
            frames=frames,
            masks=masks,
            palette=_palette_of(masks[0]) or DAVIS_PALETTE,
            max_objects=self.max_objects,
        )


LVOS_STEP = 5
"""LVOS frames are every 5th frame of the source video, named by that frame's 8-digit index."""


@dataclass(frozen=True)
class FrameRange:
    """An LVOS object's ``frame_range``: the frames ``start, start + 5, ...`` before ``end``, as
    lvos-evaluation reads them (``range(start, end, 5)``, names ``%08d``)."""

    start: int
    end: int

    def names(self) -> list[str]:
        return [f"{index:08d}" for index in range(self.start, self.end, LVOS_STEP)]


def read_lvos_meta(path: str | Path) -> dict[str, dict[int, FrameRange]]:
    """``<split>_meta.json`` of LVOS: ``{video: {object id: FrameRange}}``, checked against the format
    ``{"videos": {video: {"objects": {id: {"frame_range": {"start": s, "end": e, ...}}}}}}``."""
    path = Path(path)
    fix = (
        'it should look like {"videos": {"<video>": {"objects": {"1": {"frame_range": '
        '{"start": 1, "end": 496, ...}}}}}} as in LVOS\'s own file; restore that file'
    )
    videos = _videos_mapping(path, "LVOS meta file", "LVOS's", fix)
    if not videos:
        raise DataError(BAD_LAYOUT, f'LVOS meta file has no "videos" mapping; {fix}', path)
    out: dict[str, dict[int, FrameRange]] = {}
    for name, entry in videos.items():
        objects = entry.get("objects") if isinstance(entry, dict) else None
        if not isinstance(objects, dict) or not objects:
            raise DataError(BAD_LAYOUT, f'video {name!r} has no "objects" mapping; {fix}', path)
        ranges: dict[int, FrameRange] = {}
        for obj, info in objects.items():
            frame_range = info.get("frame_range") if isinstance(info, dict) else None
            try:
                start, end = int(frame_range["start"]), int(frame_range["end"])
                object_id = int(obj)
            except (TypeError, KeyError, ValueError):
                raise DataError(
                    BAD_LAYOUT,
                    f"video {name!r}, object {obj!r} needs a numeric id and a "
                    f'"frame_range" with numeric "start" and "end"; {fix}',
                    path,
                ) from None
            if not 1 <= object_id <= 255 or end <= start:
                raise DataError(
                    BAD_LAYOUT,
                    f"video {name!r}, object {obj!r}: the id must be 1..255 and the range "
                    f"non-empty (start {start} < end {end}); {fix}",
                    path,
                )
            ranges[object_id] = FrameRange(start, end)
        out[str(name)] = dict(sorted(ranges.items()))
    return out


@dataclass
class _FirstAppearances(Video):
    """A video whose given masks hold more objects than start there (LVOS valid ships every frame's
    ground truth): from each given mask only the ids in ``new_ids[frame index]`` are read."""

    new_ids: Mapping[int, frozenset[int]] = field(default_factory=dict)

    def read_input_mask(self, index: int, expected_size: tuple[int, int] | None = None):
        labels, info = super().read_input_mask(index, expected_size)
        keep = self.new_ids.get(index)
        if keep is None:
            return labels, info
        missing = sorted(keep - set(info.ids))
        if missing:
            raise DataError(
                MISSING_FIRST_MASK,
                f"the meta file has objects {missing} start at this frame, but "
                f"its mask does not hold them (ids found: {list(info.ids) or 'none'}); restore LVOS's "
                "own annotations and meta file",
                self.masks[index],
                self.names[index],
            )
        labels = np.where(np.isin(labels, sorted(keep)), labels, 0)
        return labels, replace(info, ids=tuple(i for i in info.ids if i in keep))


class LVOS(VOSDataset):
    """LVOS (v1) ``valid`` or ``test``: objects may enter after the first frame; each object's input
    is its mask at the first frame of its range in ``<split>_meta.json``, every frame from the first
    of them on is written. :attr:`object_ranges` is what the LVOS protocol scores."""

    def __init__(self, root: str | Path, split: str = "valid", max_objects: int | None = None):
        self.root = Path(root)
        self.split = split
        self.max_objects = max_objects
        split_root = _split_root(self.root, split, "LVOS", f"LVOS's {split} archive")
        names = [f"{split}_meta.json"] + (["val_meta.json"] if split == "valid" else [])
        found = [split_root / n for n in names if (split_root / n).is_file()]
        if not found:
            raise DataError(
                BAD_LAYOUT,
                f"LVOS meta file {split}/{names[0]} not found (it says where each object's "
                "frames are); restore it from LVOS's archive",
                self.root,
            )
        self.meta_path = found[0]
        self.object_ranges = read_lvos_meta(self.meta_path)
        self.image_root = split_root / "JPEGImages"
        self.mask_root = split_root / "Annotations"
        self.videos = natural_sorted(self.object_ranges)
        missing = [v for v in self.videos if not (self.image_root / v).is_dir()]
        if missing:
            raise DataError(
                BAD_LAYOUT,
                f"videos in {self.meta_path.name} but not under {split}/JPEGImages: "
                f"{missing[:10]}{' ...' if len(missing) > 10 else ''}; restore their frame folders",
                self.root,
            )

    def video(self, name: str) -> Video:
        frames = self._frames(self.image_root / name, name)
        given = self._masks(self.mask_root / name, frames)
        index_of = {int(n): i for i, n in enumerate(frames.names) if n.isdigit()}
        new_ids: dict[int, set[int]] = {}
        for object_id, frame_range in self.object_ranges[name].items():
            index = index_of.get(frame_range.start)
            if index is None or index not in given:
                what = "frame" if index is None else "mask"
                raise DataError(
                    MISSING_FIRST_MASK,
                    f"{self.meta_path.name} has object {object_id} start at frame "
                    f"{frame_range.start:08d}, which has no {what} here; restore LVOS's own files",
                    (self.image_root if index is None else self.mask_root) / name,
                )
            new_ids.setdefault(index, set()).add(object_id)
        masks = {index: given[index] for index in sorted(new_ids)}
        palette = _palette_of(masks[min(masks)]) or DAVIS_PALETTE
        return _FirstAppearances(
            name=name,
            frames=frames,
            masks=masks,
            palette=palette,
            max_objects=self.max_objects,
            new_ids={index: frozenset(ids) for index, ids in new_ids.items()},
        )


LAYOUTS = {
    "davis2016": DAVIS2016,
    "davis2017": DAVIS2017,
    "youtube": YouTubeVOS,
    "long-time": LongTimeVideos,
    "generic": GenericDataset,
    "mose": MOSE,
    "lvos": LVOS,
}


def open_dataset(layout: str, root: str | Path, **kwargs) -> VOSDataset:
    """Open a dataset by layout name (see :data:`LAYOUTS`)."""
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout {layout!r}; use one of {sorted(LAYOUTS)}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(
            BAD_LAYOUT,
            "dataset root not found; check the path (eval.py --data-root, or the "
            "benchmark's data_root in configs/benchmarks.yaml)",
            root,
        )
    return LAYOUTS[layout](root, **kwargs)
