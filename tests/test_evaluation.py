"""The DAVIS 2017 semi-supervised protocol of remn.evaluation, checked on hand-made masks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from remn.data.masks import UNKNOWN_OBJECT, DataError, read_mask, save_mask
from remn.evaluation import (
    EvaluationResult,
    boundary_tolerance,
    davis_table,
    frame_scores,
    long_time_table,
    object_statistics,
    score_folders,
    score_sequence,
    write_csvs,
    write_results_md,
)
from remn.evaluation.metrics import decay_edges
from remn.evaluation.score import EXTRA_FRAMES, MISSING_FRAME, MISSING_SEQUENCE, TOO_FEW_FRAMES, main

from conftest import REPO

DAVIS2016_MINI = REPO.parent / "shared" / "data" / "davis2016-mini"


def square(size: int = 40, top: int = 10, left: int = 10, side: int = 10, value: int = 1) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[top:top + side, left:left + side] = value
    return mask


def band(size: int, left: int, width: int) -> np.ndarray:
    """A full-height vertical band: its boundary is two straight vertical lines."""
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[:, left:left + width] = 1
    return mask


def two_objects(size: int = 40) -> np.ndarray:
    labels = square(size, 5, 5, 8)
    labels[20:30, 22:35] = 2
    return labels


# ---------------------------------------------------------------- per-frame measures


def test_tolerance_is_ceil_of_0_008_times_the_diagonal():
    assert boundary_tolerance((40, 40)) == 1  # 0.008 * 56.6 = 0.45
    assert boundary_tolerance((130, 130)) == 2  # 1.47
    assert boundary_tolerance((200, 200)) == 3  # 2.26
    assert boundary_tolerance((480, 854)) == 8  # 7.84, DAVIS 480p


def test_one_pixel_shift_of_a_square():
    gt = square()
    pred = np.roll(gt, 1, axis=1)
    score = frame_scores(gt, pred)
    assert score.j == pytest.approx(90 / 110)  # 9 x 10 shared, 11 x 10 in the union
    assert score.f == 1.0  # every boundary pixel moved by 1 <= tolerance 1


def test_shift_beyond_the_tolerance_misses_parallel_edges():
    gt = band(40, 10, 10)
    score = frame_scores(gt, np.roll(gt, 3, axis=1))
    assert score.j == pytest.approx(7 / 13)
    assert score.f == 0.0  # edges 3 px apart, tolerance 1


def test_half_of_the_boundary_matched_gives_f_one_half():
    gt = band(40, 10, 10)  # boundary columns 9 and 19
    pred = band(40, 10, 15)  # boundary columns 9 and 24
    score = frame_scores(gt, pred)
    assert score.j == pytest.approx(10 / 15)
    assert score.f == pytest.approx(0.5)  # precision 1/2, recall 1/2


@pytest.mark.parametrize("shift, expected_f", [(2, 1.0), (3, 0.0)])
def test_tolerance_decides_whether_a_shift_is_matched(shift, expected_f):
    gt = band(130, 30, 20)  # tolerance 2 px
    assert frame_scores(gt, np.roll(gt, shift, axis=1)).f == expected_f


def test_empty_masks():
    empty = np.zeros((20, 20), dtype=np.uint8)
    full = square(20, 5, 5, 6)
    both = frame_scores(empty, empty)
    assert (both.j, both.f) == (1.0, 1.0)
    for gt, pred in ((full, empty), (empty, full)):
        score = frame_scores(gt, pred)
        assert (score.j, score.f) == (0.0, 0.0)


def test_iou_matches_numpy_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(20):
        gt = rng.random((24, 31)) < rng.uniform(0.05, 0.6)
        pred = rng.random((24, 31)) < rng.uniform(0.05, 0.6)
        expected = np.logical_and(gt, pred).sum() / np.logical_or(gt, pred).sum()
        assert frame_scores(gt, pred).j == pytest.approx(expected)


masks = hnp.arrays(np.bool_, st.tuples(st.integers(1, 16), st.integers(1, 16)))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_measures_are_bounded_symmetric_and_one_on_identity(data):
    gt = data.draw(masks)
    pred = data.draw(hnp.arrays(np.bool_, gt.shape))
    forward, backward = frame_scores(gt, pred), frame_scores(pred, gt)
    assert 0.0 <= forward.j <= 1.0 and 0.0 <= forward.f <= 1.0
    assert forward.j == backward.j
    assert forward.f == pytest.approx(backward.f)
    same = frame_scores(gt, gt.copy())
    assert same.j == 1.0 and same.f == 1.0


# ---------------------------------------------------------------- statistics


def test_decay_bins_are_davis_rounding_of_evenly_spread_positions():
    for count in range(1, 257):
        positions = np.linspace(1, count, 5) + 1e-10
        assert decay_edges(count) == (np.round(positions) - 1).astype(int).tolist()
    assert decay_edges(7) == [0, 2, 3, 5, 6]  # 2.5 rounds up to 3 (not to even), 5.5 to 6


def test_recall_and_decay_by_hand():
    stats = object_statistics([1, 1, 0, 1, 1, 0, 1])
    assert stats.mean == pytest.approx(5 / 7)
    assert stats.recall == pytest.approx(5 / 7)
    assert stats.decay == pytest.approx((2 / 3) - (1 / 2))  # bins v0..v2 and v5..v6
    stats = object_statistics([0.5, 0.6, 0.4, 0.9])
    assert stats.recall == 0.5  # 0.5 itself is not above 0.5
    assert stats.decay == pytest.approx(0.55 - 0.65)  # bins v0..v1 and v2..v3
    assert object_statistics([0.3]).decay == 0.0


# ---------------------------------------------------------------- sequences


def test_perfect_prediction_scores_one_everywhere():
    frames = [two_objects() for _ in range(6)]
    for t, labels in enumerate(frames):
        frames[t] = np.roll(labels, t, axis=1)
    result = EvaluationResult([score_sequence(frames, [f.copy() for f in frames], name="still")])
    table = result.global_table()
    assert table == {"J&F-Mean": 1.0, "J-Mean": 1.0, "J-Recall": 1.0, "J-Decay": 0.0,
                     "F-Mean": 1.0, "F-Recall": 1.0, "F-Decay": 0.0}
    assert result.sequences[0].frames == (1, 2, 3, 4)


def test_first_and_last_frames_are_not_scored():
    gt = [square() for _ in range(5)]
    pred = [square() for _ in range(5)]
    pred[0] = np.zeros_like(pred[0])
    pred[-1] = square(top=25)  # both wrong
    score = score_sequence(gt, pred)
    assert score.frames == (1, 2, 3) and score.j.shape == (1, 3)
    assert score.j_stats[0].mean == 1.0 and score.f_stats[0].mean == 1.0
    pred[2] = np.zeros_like(pred[2])  # a scored frame does count
    assert score_sequence(gt, pred).j_stats[0].mean == pytest.approx(2 / 3)


def test_void_is_background():
    gt = []
    for _ in range(3):
        labels = square()
        labels[30:35, 30:35] = 255
        gt.append(labels)
    score = score_sequence(gt, [square()] * 3)
    assert score.object_ids == (1,)  # 255 is not an object
    assert score.j_stats[0].mean == 1.0 and score.f_stats[0].mean == 1.0
    covering_void = square()
    covering_void[30:35, 30:35] = 1
    score = score_sequence(gt, [square(), covering_void, square()])
    assert score.j_stats[0].mean == pytest.approx(100 / 125)  # void is not ignored: it is background


def test_objects_are_one_to_the_largest_id_of_the_first_frame():
    first = square(value=1)
    first[25:35, 25:35] = 3
    later = first.copy()
    later[0:4, 0:4] = 4  # appears later: not an object
    gt = [first, later, later, first]
    empty_two = score_sequence(gt, [first, first, first, first], name="gap")
    assert empty_two.object_ids == (1, 2, 3)
    assert empty_two.object_names() == ["gap_1", "gap_2", "gap_3"]
    assert empty_two.j[1].tolist() == [1.0, 1.0]  # id 2: empty gt, empty prediction
    with_two = first.copy()
    with_two[0:3, 30:33] = 2
    score = score_sequence(gt, [first, with_two, first, first])
    assert score.j[1].tolist() == [0.0, 1.0] and score.f[1].tolist() == [0.0, 1.0]
    with pytest.raises(DataError) as caught:
        score_sequence(gt, [first, later, later, first], name="gap")
    assert caught.value.code == UNKNOWN_OBJECT and "4" in str(caught.value) and "1..3" in str(caught.value)


def test_decay_and_recall_through_a_sequence():
    gt = [square() for _ in range(9)]
    empty = np.zeros_like(gt[0])
    pattern = [1, 1, 0, 1, 1, 0, 1]  # scored frames 1..7: right or empty
    pred = [gt[0]] + [gt[0] if hit else empty for hit in pattern] + [empty]
    score = score_sequence(gt, pred)
    for stats in (score.j_stats[0], score.f_stats[0]):
        assert stats.mean == pytest.approx(5 / 7)
        assert stats.recall == pytest.approx(5 / 7)
        assert stats.decay == pytest.approx(1 / 6)


def test_global_figures_average_objects_not_sequences():
    one = [square()] * 3
    labels = two_objects()
    labels[0:3, 0:3] = 3
    three = [labels] * 3
    empty = np.zeros_like(one[0])
    perfect = score_sequence(one, one, name="a")
    missed = score_sequence(three, [three[0], empty, three[0]], name="b")
    assert missed.num_objects == 3
    table = EvaluationResult([perfect, missed]).global_table()
    assert table["J-Mean"] == pytest.approx(1 / 4)  # per-sequence first would give 1/2
    assert table["F-Mean"] == pytest.approx(1 / 4)
    assert table["J&F-Mean"] == pytest.approx(1 / 4)


def test_sparse_annotations_score_only_annotated_frames():
    gt = [square() if t % 3 == 0 else None for t in range(10)]  # annotated 0, 3, 6, 9
    pred = [np.zeros_like(square()) for _ in range(10)]
    pred[3] = square()
    pred[6] = np.roll(square(), 1, axis=1)
    score = score_sequence(gt, pred, annotated=[g is not None for g in gt])
    assert score.frames == (3, 6)
    assert score.j[0].tolist() == pytest.approx([1.0, 9 / 11])
    with pytest.raises(DataError) as caught:
        score_sequence(gt[:4], pred[:4], annotated=[True, False, False, True])
    assert caught.value.code == TOO_FEW_FRAMES


# ---------------------------------------------------------------- folders and the command line


def write_sequence(root: Path, name: str, frames: list[np.ndarray | None], grey: bool = False) -> None:
    for t, labels in enumerate(frames):
        if labels is None:
            continue
        path = root / name / f"{t:05d}.png"
        if grey:
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(labels.astype(np.uint8)).save(path)
        else:
            save_mask(path, labels)


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    frames = [np.roll(two_objects(), t, axis=0) for t in range(5)]
    for root in (gt, pred):
        write_sequence(root, "cat", frames)
        write_sequence(root, "dog", [square()] * 4)
    return gt, pred


def test_davis2016_grey_masks_are_object_one(tmp_path: Path):
    frames = [square(value=255) for _ in range(4)]
    write_sequence(tmp_path / "gt", "swan", frames, grey=True)
    write_sequence(tmp_path / "pred", "swan", [square()] * 4)  # palette ids
    write_sequence(tmp_path / "grey", "swan", frames, grey=True)  # 0/255 predictions, as STCN writes them
    for pred in ("pred", "grey"):
        result = score_folders(tmp_path / "gt", tmp_path / pred, progress=False)
        assert result.sequences[0].object_ids == (1,)
        assert result.global_table()["J&F-Mean"] == 1.0


def test_folders_cli_and_csv_layout(folders, tmp_path: Path, capsys):
    gt, pred = folders
    pred_frames = [np.roll(two_objects(), t, axis=0) for t in range(5)]
    pred_frames[2] = np.where(pred_frames[2] == 2, 0, pred_frames[2])  # object 2 lost in one frame
    write_sequence(pred, "cat", pred_frames)
    out = tmp_path / "out"
    assert main(["--gt", str(gt), "--pred", str(pred), "--out", str(out), "--split", "val", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "J&F-Mean" in printed and "3 objects in 2 sequences" in printed
    global_lines = (out / "global_results-val.csv").read_text().splitlines()
    assert global_lines[0] == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay"
    j_mean = (1 + 2 / 3 + 1) / 3
    values = global_lines[1].split(",")
    assert len(values) == 7 and values[1] == f"{j_mean:.3f}" and all(len(v.split(".")[1]) == 3 for v in values)
    sequence_lines = (out / "per-sequence_results-val.csv").read_text().splitlines()
    assert sequence_lines == ["Sequence,J-Mean,F-Mean", "cat_1,1.000,1.000", "cat_2,0.667,0.667",
                              "dog_1,1.000,1.000"]


def test_cli_writes_next_to_the_predictions_by_default_and_runs_as_a_module(folders):
    gt, pred = folders
    result = subprocess.run([sys.executable, "-m", "remn.evaluation.score", "--gt", str(gt), "--pred", str(pred),
                             "--split", "mini"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "RuntimeWarning" not in result.stderr
    assert (pred / "global_results-mini.csv").is_file() and (pred / "per-sequence_results-mini.csv").is_file()


def test_refuses_a_missing_sequence(folders, tmp_path: Path, capsys):
    gt, pred = folders
    listing = tmp_path / "list.txt"
    listing.write_text("cat\n# comment\ndog\n")
    for frame in (pred / "dog").iterdir():
        frame.unlink()
    (pred / "dog").rmdir()
    with pytest.raises(DataError) as caught:
        score_folders(gt, pred, progress=False)
    assert caught.value.code == MISSING_SEQUENCE and "missing from the predictions: dog" in str(caught.value)
    assert main(["--gt", str(gt), "--pred", str(pred), "--sequences", str(listing), "--quiet"]) == 2
    assert "missing from the predictions: dog" in capsys.readouterr().err
    listing.write_text("cat\nelk\n")
    with pytest.raises(DataError, match="missing from the ground truth: elk"):
        score_folders(gt, pred, sequences=["cat", "elk"], progress=False)


def test_refuses_missing_frames_listing_them(folders, capsys):
    gt, pred = folders
    (pred / "cat" / "00002.png").unlink()
    (pred / "dog" / "00001.png").unlink()
    (pred / "cat" / "00004.png").unlink()  # the last frame is not scored: not needed
    with pytest.raises(DataError) as caught:
        score_folders(gt, pred, progress=False)
    message = str(caught.value)
    assert caught.value.code == MISSING_FRAME
    assert "cat: 00002" in message and "dog: 00001" in message and "00004" not in message
    assert main(["--gt", str(gt), "--pred", str(pred), "--quiet"]) == 2
    assert "cat: 00002" in capsys.readouterr().err


def test_refuses_unknown_predicted_ids(folders, capsys):
    gt, pred = folders
    wrong = square()
    wrong[0:2, 0:2] = 2  # dog has only object 1
    save_mask(pred / "dog" / "00002.png", wrong)
    with pytest.raises(DataError) as caught:
        score_folders(gt, pred, progress=False)
    assert caught.value.code == UNKNOWN_OBJECT
    message = str(caught.value)
    assert "dog" in message and "00002.png" in message and "predicted ids 2" in message
    assert main(["--gt", str(gt), "--pred", str(pred), "--quiet"]) == 2
    assert "predicted ids 2 are not objects" in capsys.readouterr().err


def test_sparse_folders(tmp_path: Path):
    gt_root, pred_root = tmp_path / "gt", tmp_path / "pred"
    frames = [np.roll(square(), t, axis=1) for t in range(10)]
    write_sequence(gt_root, "long", [f if t % 3 == 0 else None for t, f in enumerate(frames)])
    pred_frames = [f.copy() for f in frames]
    pred_frames[3] = np.zeros_like(frames[3])
    write_sequence(pred_root, "long", pred_frames)
    with pytest.raises(DataError) as caught:
        score_folders(gt_root, pred_root, progress=False)
    assert caught.value.code == EXTRA_FRAMES and "--sparse" in str(caught.value)
    score = score_folders(gt_root, pred_root, sparse=True, progress=False).sequences[0]
    assert score.frame_names == ("00003", "00006")
    assert score.j[0].tolist() == [0.0, 1.0]


def test_size_mismatch_is_refused():
    gt = [square(40)] * 3
    with pytest.raises(DataError, match="prediction is 30x30 but the ground truth is 40x40"):
        score_sequence(gt, [square(40), square(30), square(40)])


# ---------------------------------------------------------------- markdown tables


def test_markdown_tables(tmp_path: Path):
    rows = [{"method": "STCN", "J&F": 0.853, "J": 0.820, "F": 0.886, "FPS": 20.2},
            {"method": "REMN", "J&F-Mean": 0.863, "J-Mean": 0.834, "F-Mean": 0.892, "FPS": 27.5},
            {"method": "GC", "J&F": 0.714, "J": 0.693, "F": 0.735}]
    table = davis_table(rows).splitlines()
    assert table[0] == "| Method | J&F | J | F | FPS |"
    assert table[2] == "| STCN | <u>85.3</u> | <u>82.0</u> | <u>88.6</u> | <u>20.2</u> |"
    assert table[3] == "| REMN | **86.3** | **83.4** | **89.2** | **27.5** |"
    assert table[4] == "| GC | 71.4 | 69.3 | 73.5 | - |"
    long_rows = [{"method": "STCN", "J&F x1": 0.873, "FPS x1": 7.2, "J&F x3": 0.846, "FPS x3": 3.0},
                 {"method": "REMN", "J&F x1": 0.879, "FPS x1": 25.3, "J&F x3": 0.874, "FPS x3": 23.9}]
    long_table = long_time_table(long_rows, highlight=False).splitlines()
    assert long_table[0] == "| Method | J&F (x1) | FPS (x1) | J&F (x3) | FPS (x3) | J&F (x1->x3) | FPS (x1->x3) |"
    assert long_table[2] == "| STCN | 87.3 | 7.2 | 84.6 | 3.0 | -2.7 | -4.2 |"
    assert long_table[3] == "| REMN | 87.9 | 25.3 | 87.4 | 23.9 | -0.5 | -1.4 |"
    text = write_results_md(tmp_path / "results.md", rows, long_rows).read_text()
    assert "| REMN | **86.3**" in text and "Table III" in text


def test_write_csvs_returns_the_paths(tmp_path: Path):
    result = EvaluationResult([score_sequence([square()] * 3, [square()] * 3, name="x")])
    paths = write_csvs(result, tmp_path / "new", "test-dev")
    assert [p.name for p in paths] == ["global_results-test-dev.csv", "per-sequence_results-test-dev.csv"]
    assert paths[1].read_text() == "Sequence,J-Mean,F-Mean\nx_1,1.000,1.000\n"


# ---------------------------------------------------------------- real DAVIS 2016 frames


@pytest.mark.skipif(not DAVIS2016_MINI.is_dir(), reason="davis2016-mini not available")
def test_davis2016_mini():
    annotations = DAVIS2016_MINI / "Annotations" / "480p"
    itself = score_folders(annotations, annotations, progress=False)
    assert len(itself.sequences) == 3
    assert all(value == (0.0 if "Decay" in key else 1.0) for key, value in itself.global_table().items())
    copied = []
    for sequence in itself.sequences:
        paths = sorted((annotations / sequence.name).glob("*.png"))
        gt = [read_mask(p, void=255)[0] for p in paths]
        copied.append(score_sequence(gt, [gt[0]] * len(gt), name=sequence.name))
    table = EvaluationResult(copied).global_table()
    print(f"davis2016-mini, first mask copied to every frame: J&F {table['J&F-Mean']:.3f} "
          f"(J {table['J-Mean']:.3f}, F {table['F-Mean']:.3f})")
    assert 0.0 < table["J&F-Mean"] < 1.0
