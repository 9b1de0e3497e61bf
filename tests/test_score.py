"""The DAVIS semi-supervised protocol of remn.evaluation, checked on hand-made masks."""

from __future__ import annotations

import subprocess
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from remn.cli.score import main
from remn.config import ConfigError
from remn.data.masks import UNKNOWN_OBJECT, DataError, DataWarning, read_mask, save_mask
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
from remn.evaluation.benchmarks import GT_FORMATS as BENCHMARK_GT_FORMATS
from remn.evaluation.benchmarks import load_benchmarks
from remn.evaluation.metrics import decay_edges
from remn.evaluation.score import EXTRA_FRAMES, GT_FORMATS, MISSING_FRAME, MISSING_SEQUENCE, TOO_FEW_FRAMES

from conftest import DAVIS_MINI, REPO, needs_davis_mini


def square(size: int = 40, top: int = 10, left: int = 10, side: int = 10, value: int = 1) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[top : top + side, left : left + side] = value
    return mask


def band(size: int, left: int, width: int) -> np.ndarray:
    """A full-height vertical band: its boundary is two straight vertical lines."""
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[:, left : left + width] = 1
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
    assert table == {
        "J&F-Mean": 1.0,
        "J-Mean": 1.0,
        "J-Recall": 1.0,
        "J-Decay": 0.0,
        "F-Mean": 1.0,
        "F-Recall": 1.0,
        "F-Decay": 0.0,
    }
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


@pytest.mark.filterwarnings("ignore::remn.data.masks.DataWarning")  # the warnings are tested below
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


@pytest.mark.filterwarnings("ignore::remn.data.masks.DataWarning")  # the warnings are tested below
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
    assert sequence_lines == ["Sequence,J-Mean,F-Mean", "cat_1,1.000,1.000", "cat_2,0.667,0.667", "dog_1,1.000,1.000"]


def test_cli_writes_next_to_the_predictions_by_default_and_runs_as_a_module(folders):
    gt, pred = folders
    result = subprocess.run(
        [sys.executable, "-m", "remn", "score", "--gt", str(gt), "--pred", str(pred), "--split", "mini"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
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
    assert (
        main(["--gt", str(gt), "--pred", str(pred), "--sequences", str(listing), "--quiet"]) == 1
    )  # bad data: exit status 1 (docs/errors.md)
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
    assert main(["--gt", str(gt), "--pred", str(pred), "--quiet"]) == 1
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
    assert main(["--gt", str(gt), "--pred", str(pred), "--quiet"]) == 1
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
    rows = [
        {"method": "STCN", "J&F": 0.853, "J": 0.820, "F": 0.886, "FPS": 20.2},
        {"method": "REMN", "J&F-Mean": 0.863, "J-Mean": 0.834, "F-Mean": 0.892, "FPS": 27.5},
        {"method": "GC", "J&F": 0.714, "J": 0.693, "F": 0.735},
    ]
    table = davis_table(rows).splitlines()
    assert table[0] == "| Method | J&F | J | F | FPS |"
    assert table[2] == "| STCN | <u>85.3</u> | <u>82.0</u> | <u>88.6</u> | <u>20.2</u> |"
    assert table[3] == "| REMN | **86.3** | **83.4** | **89.2** | **27.5** |"
    assert table[4] == "| GC | 71.4 | 69.3 | 73.5 | - |"
    long_rows = [
        {"method": "STCN", "J&F x1": 0.873, "FPS x1": 7.2, "J&F x3": 0.846, "FPS x3": 3.0},
        {"method": "REMN", "J&F x1": 0.879, "FPS x1": 25.3, "J&F x3": 0.874, "FPS x3": 23.9},
    ]
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


@pytest.mark.slow
@needs_davis_mini
@pytest.mark.filterwarnings("ignore::remn.data.masks.DataWarning")  # the warnings are tested below
def test_davis2016_mini():
    annotations = DAVIS_MINI / "Annotations" / "480p"
    itself = score_folders(annotations, annotations, progress=False)
    assert len(itself.sequences) == 3
    assert all(value == (0.0 if "Decay" in key else 1.0) for key, value in itself.global_table().items())
    copied = []
    for sequence in itself.sequences:
        paths = sorted((annotations / sequence.name).glob("*.png"))
        gt = [read_mask(p, void=255)[0] for p in paths]
        copied.append(score_sequence(gt, [gt[0]] * len(gt), name=sequence.name))
    table = EvaluationResult(copied).global_table()
    print(
        f"davis2016-mini, first mask copied to every frame: J&F {table['J&F-Mean']:.3f} "
        f"(J {table['J-Mean']:.3f}, F {table['F-Mean']:.3f})"
    )
    assert 0.0 < table["J&F-Mean"] < 1.0


# ---------------------------------------------------------------- ground-truth formats and their warnings


@contextmanager
def recorded():
    """Every warning raised inside, as a list."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def messages_of(caught, category=DataWarning) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, category)]


def stray_davis2016(root: Path) -> tuple[Path, Path]:
    """A DAVIS 2016 sequence (0/255 grey, a 10 x 10 object) with stray values: 128 in the background
    of frame 1, 128 inside the object in frame 2, 1 in the background of frame 3; the prediction is
    the clean object (palette id 1) in every frame."""
    frames = [square(value=255) for _ in range(5)]
    frames[1][0, 0] = 128
    frames[2][12, 12] = 128
    frames[3][39, 39] = 1
    write_sequence(root / "gt", "swan", frames, grey=True)
    write_sequence(root / "pred", "swan", [square()] * 5)
    return root / "gt", root / "pred"


def test_davis2016_stray_values_are_object_pixels_and_warn_once(tmp_path: Path):
    gt, pred = stray_davis2016(tmp_path)
    with recorded() as caught:
        result = score_folders(gt, pred, progress=False, gt_format="davis2016")
    score = result.sequences[0]
    assert score.object_ids == (1,)
    # DAVIS 2016 toolkit: every non-zero pixel is the object. Frames 1 and 3: the stray pixel is
    # ground-truth object the prediction misses, J = 100 / 101; frame 2: 128 inside the object is
    # object too, J = 1. (Reading 128 as an id made 255 void there: J = 0 in frames 1 and 3.)
    assert score.j[0].tolist() == pytest.approx([100 / 101, 1.0, 100 / 101])
    assert result.global_table()["J-Mean"] == pytest.approx((2 * 100 / 101 + 1) / 3)
    assert score.f[0, 1] == 1.0 and score.f[0, 0] < 1.0
    lines = messages_of(caught)
    assert len(caught) == len(lines) == 1
    line = lines[0]
    assert line.startswith(f"{gt / 'swan' / '00001.png'}: DAVIS 2016 ground truth holds values other than 0 and 255")
    assert "1 (1 px), 128 (2 px)" in line and "; found in 3 of 4 frames read (this is the first)" in line
    assert "every non-zero pixel is the object" in line


def test_davis2016_ground_truth_scored_as_davis2017_is_read_by_the_2016_rule_with_a_warning(tmp_path: Path):
    gt, pred = stray_davis2016(tmp_path)
    with recorded() as caught:
        default = score_folders(gt, pred, progress=False)  # davis2017, as before this option existed
    assert default.sequences[0].j[0].tolist() == pytest.approx([100 / 101, 1.0, 100 / 101])
    lines = messages_of(caught)
    assert len(lines) == 2
    assert lines[0].startswith(f"{gt}: grey 0/255 ground truth (DAVIS 2016) in sequence swan")
    assert "--format davis2016" in lines[0]
    assert lines[1].startswith(f"{gt / 'swan' / '00001.png'}: DAVIS 2016 ground truth holds values")


def test_a_long_sequence_gives_one_warning_not_one_per_frame():
    frames = []
    for _ in range(3000):
        labels = square(8, 2, 2, 4, value=255)
        labels[7, 7] = 128
        frames.append(labels)
    with recorded() as caught:
        score = score_sequence(frames, [f == 255 for f in frames], name="long", gt_format="davis2016")
    lines = messages_of(caught)
    assert len(caught) == len(lines) == 1
    assert lines[0].startswith("frame 0 of long: ") and "128 (2,999 px)" in lines[0]
    assert "found in 2999 of 2999 frames read" in lines[0]  # the first frame and the 2,998 scored ones
    assert score.j[0] == pytest.approx(16 / 17)


def test_davis2017_id_missing_from_the_first_frame_is_still_an_object(tmp_path: Path):
    first = square(value=1)
    first[25:35, 25:35] = 3  # ids 1 and 3: objects are 1..3
    later = first.copy()
    later[0:3, 30:33] = 2  # id 2 appears in frame 1 (9 px)
    frames = [first, later, first, first, first]
    write_sequence(tmp_path / "gt", "gap", frames)
    write_sequence(tmp_path / "pred", "gap", [first] * 5)  # a method given frame 0 cannot know id 2
    with recorded() as caught:
        result = score_folders(tmp_path / "gt", tmp_path / "pred", progress=False)
    score = result.sequences[0]
    # davis2017-evaluation: num_objects = max id of the first frame = 3; object 2 is scored in every
    # frame: missed in frame 1 (J = F = 0), both empty in frames 2 and 3 (J = F = 1)
    assert score.object_ids == (1, 2, 3)
    assert score.j.tolist() == [[1.0] * 3, [0.0, 1.0, 1.0], [1.0] * 3]
    assert score.f.tolist() == [[1.0] * 3, [0.0, 1.0, 1.0], [1.0] * 3]
    assert result.global_table()["J-Mean"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    lines = messages_of(caught)
    assert len(caught) == len(lines) == 1
    assert lines[0].startswith(
        f"{tmp_path / 'gt' / 'gap' / '00000.png'}: id 2 is missing from this first annotated "
        "frame, whose largest id is 3"
    )
    assert "id 2: 9 px in 1 of 4 frames read, first 00001.png" in lines[0]


def test_davis2017_ids_above_the_first_frame_maximum_are_background(tmp_path: Path):
    first = two_objects()  # id 1: 8 x 8 at (5, 5); id 2
    frames = [first.copy() for _ in range(5)]
    frames[2][5:8, 5:13] = 7  # 24 px of object 1 relabelled 7
    frames[3][36:38, 0:2] = 9  # 4 px of background
    write_sequence(tmp_path / "gt", "cat", frames)
    write_sequence(tmp_path / "pred", "cat", [first] * 5)
    with recorded() as caught:
        score = score_folders(tmp_path / "gt", tmp_path / "pred", progress=False).sequences[0]
    # davis2017-evaluation: ids above 2 are no object; their pixels are background for object 1,
    # which keeps 64 - 24 = 40 px in frame 2, all of them predicted among 64: J = 40 / 64
    assert score.object_ids == (1, 2)
    assert score.j.tolist() == [[1.0, 40 / 64, 1.0], [1.0, 1.0, 1.0]]
    lines = messages_of(caught)
    assert len(caught) == len(lines) == 1
    assert lines[0].startswith(
        f"{tmp_path / 'gt' / 'cat' / '00002.png'}: ids 7 (24 px), 9 (4 px) are not objects "
        "(the first annotated frame, 00000.png, has ids 1..2); found in 2 of 4 frames read"
    )
    assert "scored as background" in lines[0]


def test_other_ground_truth_surprises_warn(tmp_path: Path):
    grey_ids = square(value=1)
    grey_ids[30:35, 30:35] = 255  # grey ids with 255: void in davis2017, or a DAVIS 2016 mask with a stray 1?
    write_sequence(tmp_path / "gt", "grey", [grey_ids] * 4, grey=True)
    write_sequence(tmp_path / "pred", "grey", [square()] * 4)
    palette = [square() for _ in range(4)]
    write_sequence(tmp_path / "gt", "mixed", palette)
    write_sequence(tmp_path / "pred", "mixed", palette)
    Image.fromarray(square()).save(tmp_path / "gt" / "mixed" / "00002.png")  # grey 0/1 file among palette ones
    for t in range(4):  # colour ground truth: the DAVIS palette's colour of id 1
        path = tmp_path / "gt" / "paint" / f"{t:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.stack([square(value=128), square(value=0), square(value=0)], axis=-1)).save(path)
    write_sequence(tmp_path / "pred", "paint", [square()] * 4)
    with recorded() as caught:
        result = score_folders(tmp_path / "gt", tmp_path / "pred", progress=False)
    assert result.global_table()["J-Mean"] == 1.0  # 255 is void (background), 0/1 grey is id 1, colour id 1
    lines = messages_of(caught)
    assert len(caught) == len(lines) == 3
    assert lines[0].startswith(
        f"{tmp_path / 'gt' / 'grey' / '00000.png'}: grey ground truth with 255 in its first "
        "annotated frame (values 1 (100 px), 255 (25 px))"
    )
    assert "--format davis2016" in lines[0]
    assert lines[1].startswith(f"{tmp_path / 'gt' / 'mixed' / '00000.png'}: ground-truth files of mixed kinds")
    assert "palette in 2 (first 00000.png), grey in 1 (first 00002.png) of 3 frames read" in lines[1]
    assert lines[2].startswith(
        f"{tmp_path / 'gt' / 'paint' / '00000.png'}: colour (RGB) ground truth in 3 of 3 "
        "frames read (this is the first), which davis2017-evaluation cannot read"
    )


def test_clean_ground_truth_gives_no_warning(folders, tmp_path: Path):
    gt, pred = folders  # palette ids, DAVIS 2017 style
    with recorded() as caught:
        score_folders(gt, pred, progress=False)
        frames = [square(value=255) for _ in range(4)]
        write_sequence(tmp_path / "d16" / "gt", "swan", frames, grey=True)
        write_sequence(tmp_path / "d16" / "pred", "swan", frames, grey=True)
        score_folders(tmp_path / "d16" / "gt", tmp_path / "d16" / "pred", progress=False, gt_format="davis2016")
        score_sequence([square()] * 3, [square()] * 3, gt_format="davis2016")  # 0/1, as read_mask gives 0/255
        score_sequence([two_objects()] * 3, [two_objects()] * 3)
    assert caught == []


def test_prediction_errors_stay_errors_with_davis2016_ground_truth(tmp_path: Path):
    gt, pred = stray_davis2016(tmp_path)
    grey = square(value=255)
    grey[0, 0] = 128
    Image.fromarray(grey).save(pred / "swan" / "00002.png")  # 0/128/255 grey: ids 128 and 255
    with pytest.raises(DataError) as caught, recorded():
        score_folders(gt, pred, progress=False, gt_format="davis2016")
    assert caught.value.code == UNKNOWN_OBJECT and "predicted ids 128, 255 are not objects" in str(caught.value)
    with pytest.raises(ValueError, match="gt_format must be one of davis2016, davis2017"):
        score_folders(gt, pred, progress=False, gt_format="davis2018")


def test_cli_format_option_prints_one_warning_line(tmp_path: Path, capsys):
    gt, pred = stray_davis2016(tmp_path)
    assert main(["--gt", str(gt), "--pred", str(pred), "--format", "davis2016", "--quiet"]) == 0
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"warning: {gt / 'swan' / '00001.png'}: DAVIS 2016 ground truth")
    assert "J-Mean" in captured.out
    assert main(["--gt", str(gt), "--pred", str(pred), "--quiet"]) == 0
    assert [line.split(":")[0] for line in capsys.readouterr().err.splitlines()] == ["warning", "warning"]
    with pytest.raises(SystemExit) as stopped:
        main(["--gt", str(gt), "--pred", str(pred), "--format", "davis2018"])
    assert stopped.value.code == 2 and "invalid choice: 'davis2018'" in capsys.readouterr().err


def test_benchmarks_name_their_ground_truth_format(tmp_path: Path):
    benchmarks = load_benchmarks()
    assert benchmarks["davis2016-val"].gt_format == "davis2016"
    assert all(b.gt_format == "davis2017" for name, b in benchmarks.items() if name != "davis2016-val")
    assert BENCHMARK_GT_FORMATS == GT_FORMATS
    registry = tmp_path / "benchmarks.yaml"
    registry.write_text("odd:\n  layout: davis2016\n  gt_format: davis2018\n")
    with pytest.raises(ConfigError, match="gt_format 'davis2018' must be one of davis2016, davis2017"):
        load_benchmarks(registry)


stray = st.sampled_from([1, 2, 77, 128, 254])


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_davis2016_rule_on_random_values(data):
    """J of the prediction 'pixels equal to 255' is #255 / #non-zero; one warning at most, exactly
    when a frame read (the first and the scored ones) holds a value other than 0 and 255."""
    count = data.draw(st.integers(3, 6))
    shape = (data.draw(st.integers(2, 6)), data.draw(st.integers(2, 6)))
    frames = []
    for _ in range(count):
        choice = data.draw(hnp.arrays(np.uint8, shape, elements=st.sampled_from([0, 255, 255, 0, 1])))
        odd = data.draw(stray)
        frames.append(np.where(choice == 1, odd, choice).astype(np.uint8))
    frames[0][0, 0] = 255  # the first frame holds the object
    with recorded() as caught:
        score = score_sequence(frames, [f == 255 for f in frames], gt_format="davis2016")
    for column, gt in enumerate(frames[1:-1]):
        nonzero = int(np.count_nonzero(gt))
        expected = np.count_nonzero(gt == 255) / nonzero if nonzero else 1.0
        assert score.j[0, column] == pytest.approx(expected)
    read = frames[:-1]
    odd_values = any(
        not (set(np.unique(f).tolist()) - {0} <= {255} or set(np.unique(f).tolist()) - {0} <= {1}) for f in read
    )
    assert len(messages_of(caught)) == int(odd_values) and len(caught) == int(odd_values)


@pytest.mark.slow
@needs_davis_mini
def test_davis2016_mini_in_its_own_format_scores_the_same_without_warning():
    annotations = DAVIS_MINI / "Annotations" / "480p"
    sequences = ["blackswan"]  # one sequence keeps it fast; the rule is the same for all
    with recorded() as caught:
        own = score_folders(annotations, annotations, sequences=sequences, progress=False, gt_format="davis2016")
    assert caught == []
    with recorded() as caught:
        default = score_folders(annotations, annotations, sequences=sequences, progress=False)
    assert len(messages_of(caught)) == 1 and "--format davis2016" in messages_of(caught)[0]
    assert own.global_table() == default.global_table()
    assert all(value == (0.0 if "Decay" in key else 1.0) for key, value in own.global_table().items())
    paths = sorted((annotations / "blackswan").glob("*.png"))
    gt = [np.asarray(Image.open(p)) for p in paths]  # the files' own 0/255 values
    copied = score_sequence(gt, [gt[0] > 0] * len(gt), name="blackswan", gt_format="davis2016")
    read = [read_mask(p, void=255)[0] for p in paths]
    assert copied.j.tolist() == score_sequence(read, [read[0]] * len(read), name="blackswan").j.tolist()
