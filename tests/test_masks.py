"""Soft and lossy masks, their repair, the one rule for 8- and 16-bit grey masks, and the checker."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from remn.cli.check import main as check_command
from remn.data import check
from remn.data.masks import (
    DAVIS_PALETTE,
    IDS_ABOVE_255,
    LOSSY_MASK,
    SOFT_MASK,
    DataError,
    MaskRepair,
    MaskWarning,
    mask_softness,
    read_mask,
    save_mask,
)
from remn.data.synthetic import layout_spec, write_dataset
from remn.data.vos import DAVIS2017

from conftest import DAVIS_MINI, needs_davis_mini

PALETTE = np.frombuffer(DAVIS_PALETTE, dtype=np.uint8).reshape(256, 3)
H, W = 96, 128
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------------ making masks
def objects(seed: int, count: int, scale: int = 1) -> np.ndarray:
    """``count`` filled ellipses and polygons (ids 1..count, later ones in front), drawn at ``scale``x,
    each at least 14 px across (smaller ones, blurred, keep no pixel of their own value)."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((H * scale, W * scale), np.int32)
    for i in range(1, count + 1):
        cx, cy = rng.uniform(0.2, 0.8) * W * scale, rng.uniform(0.2, 0.8) * H * scale
        radius = rng.uniform(0.15, 0.3) * H * scale
        if rng.random() < 0.5:
            cv2.ellipse(
                ids,
                (int(cx), int(cy)),
                (int(radius), int(radius * rng.uniform(0.6, 1))),
                float(rng.uniform(0, 180)),
                0,
                360,
                i,
                -1,
            )
        else:
            turns = np.linspace(0, 2 * np.pi, 6, endpoint=False) + rng.uniform(-0.4, 0.4, 6)
            reach = radius * rng.uniform(0.6, 1, 6)
            points = np.stack([cx + reach * np.cos(turns), cy + reach * np.sin(turns)], 1).astype(np.int32)
            cv2.fillPoly(ids, [points], i)
    return ids.astype(np.int64)


def render(ids: np.ndarray, form: str) -> np.ndarray:
    """Grey levels spread over 0..255 (one object: 255), or the DAVIS palette's colours."""
    if form.startswith("grey"):
        present = [v for v in np.unique(ids) if v]
        levels = np.zeros(int(ids.max()) + 1, np.float32)
        levels[present] = 255.0 * np.arange(1, len(present) + 1) / max(1, len(present))
        return levels[ids]
    return PALETTE[ids % 256].astype(np.float32)


def store(picture: np.ndarray, form: str, path: Path, fmt: str = "PNG", **options) -> Path:
    """Save a picture the way an image editor would: 8- or 16-bit grey, colour, or a palette."""
    if form == "grey16":
        image = Image.fromarray(np.clip(np.rint(picture * 257), 0, 65535).astype(np.uint16))
    else:
        image = Image.fromarray(np.clip(np.rint(picture), 0, 255).astype(np.uint8))
        if form == "palette":  # an adaptive palette, as an editor's indexed save
            image = image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        elif form == "davis":  # the nearest colours of the DAVIS palette, whose indices are the ids
            davis = Image.new("P", (1, 1))
            davis.putpalette(DAVIS_PALETTE)
            image = image.quantize(palette=davis, dither=Image.Dither.NONE)
    image.save(path, format=fmt, **options)
    return path


def soften(ids: np.ndarray, form: str, how: str, amount: float) -> np.ndarray:
    """A soft picture of an id map: rendered at 4x and area-downsampled, blurred, or resized bilinearly."""
    if how == "4x":
        big = cv2.resize(ids.astype(np.uint8), (4 * W, 4 * H), interpolation=cv2.INTER_NEAREST)
        big = cv2.medianBlur(big, 7)  # rounder contours at 4x: edges that are not pixel-aligned
        return cv2.resize(render(big.astype(np.int64), form), (W, H), interpolation=cv2.INTER_AREA)
    if how == "blur":
        return cv2.GaussianBlur(render(ids, form), (0, 0), amount)
    return cv2.resize(render(ids, form), None, fx=amount, fy=amount, interpolation=cv2.INTER_LINEAR)


def warned(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [w for w in caught if issubclass(w.category, MaskWarning)]


def many_small(seed: int, specks: int) -> np.ndarray:
    """A clean mask: 1-4 large objects, thin poles, touching rectangles and ``specks`` specks of 1-3 px."""
    rng = np.random.default_rng(seed)
    pick = lambda low, high=None: int(rng.integers(low, high))  # noqa: E731
    ids, next_id = np.zeros((H, W), np.int32), 1
    for _ in range(pick(1, 5)):
        cv2.ellipse(
            ids, (pick(W), pick(H)), (pick(8, 40), pick(8, 30)), float(rng.uniform(0, 180)), 0, 360, next_id, -1
        )
        next_id += 1
    for _ in range(pick(1, 6)):  # poles
        x, y = pick(W), pick(H)
        cv2.line(ids, (x, y), (x + pick(-4, 5), y + pick(20, 60)), next_id, pick(1, 3))
        next_id += 1
    for _ in range(pick(1, 4)):  # touching rectangles
        x, y, a, b = pick(W - 24), pick(H - 12), pick(3, 12), pick(3, 12)
        ids[y : y + b, x : x + a], ids[y : y + b, x + a : x + 2 * a] = next_id, next_id + 1
        next_id += 2
    for _ in range(min(specks, 255 - next_id)):
        y, x = pick(H - 3), pick(W - 3)
        shape = rng.random((3, 3)) < rng.uniform(0.1, 0.5)
        shape[pick(3), pick(3)] = True
        ids[y : y + 3, x : x + 3][shape] = next_id
        next_id += 1
    return ids.astype(np.int64)


# ------------------------------------------------------------------ clean masks pass
@FAST
@given(seed=st.integers(0, 2**16), specks=st.integers(50, 200), palette=st.sampled_from(["davis", "random"]))
def test_clean_palette_masks_with_many_small_objects_pass(tmp_path, seed, specks, palette):
    ids = many_small(seed, specks)
    if palette == "davis":
        colours = DAVIS_PALETTE
    else:  # distinct random colours, black background
        rng = np.random.default_rng(seed)
        table = np.concatenate([[0], rng.choice(2**24 - 1, 255, replace=False) + 1])
        colours = np.stack([table >> 16, (table >> 8) & 255, table & 255], 1).astype(np.uint8).tobytes()
    save_mask(tmp_path / "m.png", ids, palette=colours)
    labels, info = read_mask(tmp_path / "m.png")
    assert np.array_equal(labels, ids) and info.kind == "palette" and info.repair is None
    assert not mask_softness(tmp_path / "m.png").soft


@FAST
@given(seed=st.integers(0, 2**16), count=st.integers(2, 10))
def test_clean_masks_with_touching_objects_pass_in_every_form(tmp_path, seed, count):
    ids = objects(seed, count)  # overlapping shapes: objects touch and occlude each other
    Image.fromarray(ids.astype(np.uint16)).save(tmp_path / "ids16.png")
    for form in ("grey", "rgb", "palette", "ids16"):
        if form != "ids16":
            store(render(ids, form), form, tmp_path / f"{form}.png")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MaskWarning)
            labels, info = read_mask(tmp_path / f"{form}.png")
        assert info.repair is None
        assert len(info.ids) == len(set(np.unique(ids).tolist()) - {0})
        # the same partition of the pixels as the drawn ids
        pairs = np.unique(np.stack([ids.ravel(), labels.ravel()]), axis=1)
        assert pairs.shape[1] == len(np.unique(ids))


def test_void_band_does_not_make_a_mask_soft(tmp_path):
    ids = objects(3, 4)
    edges = cv2.dilate(ids.astype(np.uint8), np.ones((3, 3))) != cv2.erode(ids.astype(np.uint8), np.ones((3, 3)))
    save_mask(tmp_path / "gt.png", np.where(edges, 255, ids))  # DAVIS 2017 ground truth: void along the edges
    labels, info = read_mask(tmp_path / "gt.png", void=255)
    assert np.array_equal(labels, np.where(edges, 0, ids)) and 255 not in info.ids
    _, info = read_mask(tmp_path / "gt.png")  # void not named: an object of its own, still not soft
    assert 255 in info.ids


@needs_davis_mini
def test_real_davis2016_masks_are_clean_and_their_soft_versions_are_not(tmp_path):
    for path in sorted(DAVIS_MINI.glob("Annotations/480p/*/*.png"))[::25]:
        assert not mask_softness(path).soft
        ids = (np.asarray(Image.open(path)) > 0).astype(np.int64)
        picture = cv2.GaussianBlur(ids.astype(np.float32) * 255, (0, 0), 1.0)
        assert mask_softness(Image.fromarray(np.rint(picture).astype(np.uint8))).soft


# ------------------------------------------------------------------ soft masks are refused
@FAST
@given(
    seed=st.integers(0, 2**16),
    count=st.integers(1, 5),
    form=st.sampled_from(["grey", "grey16", "rgb", "palette"]),
    how=st.sampled_from(
        [("4x", 0), ("blur", 0.5), ("blur", 1.0), ("blur", 2.0), ("blur", 3.0), ("bilinear", 0.6), ("bilinear", 1.5)]
    ),
)
def test_anti_aliased_and_blurred_masks_are_refused(tmp_path, seed, count, form, how):
    path = store(soften(objects(seed, count), form, *how), form, tmp_path / "soft.png")
    with pytest.raises(DataError) as refused:
        read_mask(path, frame=7)
    assert refused.value.code == SOFT_MASK
    assert refused.value.frame == 7 and str(path) in str(refused.value)


@FAST
@given(
    seed=st.integers(0, 2**16),
    count=st.integers(1, 5),
    form=st.sampled_from(["grey", "rgb"]),
    quality=st.integers(50, 98),
)
def test_jpeg_masks_are_refused_whatever_their_name(tmp_path, seed, count, form, quality):
    picture = render(objects(seed, count), form)
    as_png = store(picture, form, tmp_path / "mask.png", fmt="JPEG", quality=quality)  # a JPEG named .png
    with pytest.raises(DataError) as refused:
        read_mask(as_png)
    assert refused.value.code == LOSSY_MASK and "JPEG file named .png" in str(refused.value)
    decoded = tmp_path / "decoded.png"  # the JPEG's pixels re-saved as a real PNG: soft by content
    Image.open(as_png).save(decoded, format="PNG")
    with pytest.raises(DataError) as refused:
        read_mask(decoded)
    assert refused.value.code == SOFT_MASK


def test_the_soft_mask_message_names_file_finding_and_fix(tmp_path):
    path = store(soften(objects(1, 2), "grey", "blur", 1.0), "grey", tmp_path / "first.png")
    with pytest.raises(DataError) as refused:
        read_mask(path, frame="00000")
    text = str(refused.value)
    assert text.startswith(f"{path}: frame 00000: soft grey mask: ")
    found = mask_softness(path)
    assert f"{found.values} grey levels, {found.edge_values} of them only along the edges" in text
    assert f"around {len(found.mains)} main regions" in text and len(found.mains) == 3
    assert "--mask-threshold T" in text and "--mask-snap" in text and "palette PNG" in text


def test_lossy_formats_are_told_apart_from_lossless_ones(tmp_path):
    picture = render(objects(2, 1), "grey")
    cases = {
        "lossy.webp": ("WEBP", {"quality": 90}, LOSSY_MASK),
        "lossless.webp": ("WEBP", {"lossless": True}, None),
        "jpeg.tif": ("TIFF", {"compression": "jpeg"}, LOSSY_MASK),
        "lzw.tif": ("TIFF", {"compression": "tiff_lzw"}, None),
        "mask.jpg": ("JPEG", {"quality": 100}, LOSSY_MASK),
    }
    for name, (fmt, options, code) in cases.items():
        path = store(picture, "grey", tmp_path / name, fmt=fmt, **options)
        if code is None:  # (WebP holds colour: white is read as a colour, with a MaskWarning)
            (labels, info), _ = warned(lambda: read_mask(path))
            assert info.ids == (1,) and np.array_equal(labels, (picture > 0).astype(np.int64))
        else:
            with pytest.raises(DataError) as refused:
                read_mask(path)
            assert refused.value.code == code


# ------------------------------------------------------------------ repair
def test_repair_takes_exactly_one_way():
    for wrong in ({}, {"threshold": 0.5, "snap": True}, {"threshold": 0.0}, {"threshold": 1.5}):
        with pytest.raises(ValueError):
            MaskRepair(**wrong)


@FAST
@given(
    seed=st.integers(0, 2**16),
    form=st.sampled_from(["grey", "grey16", "rgb", "palette"]),
    threshold=st.sampled_from([0.3, 0.5, 0.7]),
)
def test_binarising_an_anti_aliased_object_gives_it_back(tmp_path, seed, form, threshold):
    big = objects(seed, 1, scale=4)
    coverage = cv2.resize(big.astype(np.float32), (W, H), interpolation=cv2.INTER_AREA)  # share of each pixel
    path = store(cv2.resize(render(big, form), (W, H), interpolation=cv2.INTER_AREA), form, tmp_path / "aa.png")
    (labels, info), caught = warned(lambda: read_mask(path, repair=MaskRepair(threshold=threshold)))
    assert info.kind == "binary" and info.ids == (1,) and set(np.unique(labels)) <= {0, 1}
    assert len(caught) == 1 and f"binarised at {threshold:g}" in str(caught[0].message)
    assert "-> 1 object" in str(caught[0].message) and info.repair in str(caught[0].message)
    # inside and outside are kept; a pixel differs from "covered at least T" only by rounding
    assert np.all(labels[coverage == 1] == 1) and np.all(labels[coverage == 0] == 0)
    wrong = labels != (coverage >= threshold)
    assert np.all(np.abs(coverage[wrong] - threshold) < 0.03)


@FAST
@given(
    seed=st.integers(0, 2**16),
    count=st.integers(1, 5),
    form=st.sampled_from(["grey", "grey16", "rgb", "davis"]),
    how=st.sampled_from([("4x", 0), ("blur", 1.0), ("blur", 2.0)]),
)
def test_snapped_masks_hold_only_the_main_values(tmp_path, seed, count, form, how):
    count = 1 if form == "grey16" else count  # (16-bit levels of several objects are ids above 255)
    ids = objects(seed, count)
    path = store(soften(ids, form, *how), form, tmp_path / "soft.png")
    mains = mask_softness(path).mains
    (labels, info), caught = warned(lambda: read_mask(path, repair=MaskRepair(snap=True)))
    assert len(caught) == 1 and "snapped to its" in str(caught[0].message)
    if form == "davis" or info.kind == "ids":  # the values are the ids: only main ones are left
        assert set(np.unique(labels)) <= set(mains)
    elif info.kind == "binary":  # the main values were 0 and 255 (16-bit: 0 and one value)
        assert set(mains) == {0, 255} or (len(mains) == 2 and form == "grey16")
    assert len(info.ids) <= len(mains) - 1
    # the objects are back, edges moved by a pixel or so: each id covers one drawn object
    pairs, overlap = np.unique(np.stack([labels.ravel(), ids.ravel()]), axis=1, return_counts=True)
    best = {label: overlap[pairs[0] == label].max() for label in np.unique(labels)}
    assert sum(best.values()) > 0.9 * ids.size


def test_clean_masks_ignore_a_repair_and_16_bit_soft_masks_are_repaired(tmp_path):
    ids = objects(5, 3)
    save_mask(tmp_path / "clean.png", ids)
    (labels, info), caught = warned(lambda: read_mask(tmp_path / "clean.png", repair=MaskRepair(threshold=0.5)))
    assert np.array_equal(labels, ids) and info.repair is None and not caught
    one = objects(6, 1)
    path = store(soften(one, "grey16", "blur", 1.0), "grey16", tmp_path / "soft16.png")
    assert Image.open(path).mode.startswith("I")
    (labels, info), caught = warned(lambda: read_mask(path, repair=MaskRepair(snap=True)))
    assert info.kind == "binary" and info.ids == (1,) and np.mean(labels == one) > 0.98 and len(caught) == 1


# ------------------------------------------------------------------ 8 and 16 bits
@settings(max_examples=40, deadline=None)
@given(
    values=st.sampled_from([[0, 255], [255], [0, 1], [0, 1, 2, 3, 7], [0, 3, 200], list(range(0, 256, 17))]),
    seed=st.integers(0, 2**16),
)
def test_8_and_16_bit_files_of_the_same_values_read_alike(tmp_path_factory, values, seed):
    rng = np.random.default_rng(seed)
    grid = np.array(values)[rng.integers(0, len(values), (6, 8))].repeat(8, 0).repeat(8, 1)  # 8x8 blocks
    folder = tmp_path_factory.mktemp("bits")
    Image.fromarray(grid.astype(np.uint8)).save(folder / "8.png")
    Image.fromarray(grid.astype(np.uint16)).save(folder / "16.png")
    eight, info8 = read_mask(folder / "8.png")
    sixteen, info16 = read_mask(folder / "16.png")
    assert Image.open(folder / "16.png").mode.startswith("I;16")
    assert np.array_equal(eight, sixteen) and info8 == info16
    if set(values) <= {0, 255}:
        assert info8.kind == "binary" and np.array_equal(eight, (grid == 255).astype(np.int64))
    else:
        assert info8.kind == "ids" and np.array_equal(eight, grid)


def test_8_and_16_bit_files_of_the_same_soft_values_are_refused_alike(tmp_path):
    picture = np.rint(soften(objects(9, 3), "grey", "blur", 1.0))
    Image.fromarray(picture.astype(np.uint8)).save(tmp_path / "8.png")
    Image.fromarray(picture.astype(np.uint16)).save(tmp_path / "16.png")
    found = []
    for name in ("8.png", "16.png"):
        with pytest.raises(DataError) as refused:
            read_mask(tmp_path / name)
        found.append(str(refused.value).replace(str(tmp_path / name), "FILE"))
    assert found[0] == found[1] and "[soft-mask]" in found[0]


def test_16_bit_masks_one_rule(tmp_path):
    grid = np.zeros((16, 16), np.uint16)
    grid[4:12, 4:12] = 65535
    Image.fromarray(grid).save(tmp_path / "full.png")
    labels, info = read_mask(tmp_path / "full.png")
    assert info.kind == "binary" and labels.max() == 1 and labels.sum() == 64
    grid[4:8, 4:8] = 1000  # values above 255 that are not a 0/65535 mask
    Image.fromarray(grid).save(tmp_path / "odd.png")
    with pytest.raises(DataError) as refused:
        read_mask(tmp_path / "odd.png", frame=2)
    assert refused.value.code == IDS_ABOVE_255 and "1000, 65535" in str(refused.value)
    assert "0..255" in str(refused.value) and refused.value.frame == 2


# ------------------------------------------------------------------ the checker
def test_checker_reports_soft_lossy_and_16_bit_masks_by_file_and_frame(tmp_path, capsys):
    root = tmp_path / "set"
    write_dataset(
        root,
        layout="davis",
        videos=2,
        spec=layout_spec("davis", frames=8, height=H, width=W),
        seed=3,
        val_fraction=0.5,
        workers=1,
        progress=False,
    )
    assert not check.check_dataset(root, "davis", progress=False).all_problems
    name = DAVIS2017(root, split="val").videos[0]
    masks = root / "Annotations" / "480p" / name
    ids = read_mask(masks / "00002.png")[0]
    store(soften(ids, "grey", "blur", 1.5), "grey", masks / "00002.png")  # soft
    store(render(ids, "rgb"), "rgb", masks / "00003.png", fmt="JPEG", quality=90)  # a JPEG named .png
    (masks / "00004.png").unlink()
    store(render(ids, "grey"), "grey", masks / "00004.jpg", fmt="JPEG")  # mask files that are never read
    store(render(ids, "grey"), "grey", masks / "00006.webp", fmt="WEBP", lossless=True)
    Image.fromarray((ids * 300).astype(np.uint16)).save(masks / "00005.png")  # 16-bit values above 255
    report = check.check_dataset(root, "davis", progress=False)
    found = {(p.code, str(p.frame)) for p in report.all_problems}
    assert found == {
        (SOFT_MASK, "00002"),
        (LOSSY_MASK, "00003"),
        (LOSSY_MASK, "00004"),
        (IDS_ABOVE_255, "00005"),
        (check.IGNORED_MASK_FILE, "00006"),
    }
    assert all(name in str(p) for p in report.all_problems)
    assert check_command([str(root), "--layout", "davis"]) == 1
    out = capsys.readouterr().out
    assert "5 problem(s)" in out and "00004.jpg" in out and "JPEG file named .png" in out
