"""report.html: one self-contained page with the global table, a row per sequence, J/F charts and
the worst frames drawn over their images; rendered in headless Chromium where it is installed."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from remn.data.masks import read_mask, save_mask
from remn.data.synthetic import layout_spec, write_dataset
from remn.evaluation.report import GENERATOR_META, REPORT_FILE, worst_frames, write_report
from remn.evaluation.score import score_folders

BLANKED = [("syn0001", "00004"), ("syn0002", "00006")]  # predicted empty: J = 0 for every object


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A generated DAVIS set and predictions that copy the first mask (J falls over time), two frames blank."""
    base = tmp_path_factory.mktemp("report")
    root = base / "davis"
    write_dataset(
        root,
        layout="davis",
        videos=3,
        seed=21,
        val_fraction=1.0,
        workers=1,
        progress=False,
        spec=layout_spec("davis", frames=10, height=60, width=80, objects=(1, 3)),
    )
    gt = root / "Annotations" / "480p"
    pred = base / "pred"
    for video in sorted(gt.iterdir()):
        files = sorted(video.iterdir())
        first, _ = read_mask(files[0])
        for path in files:
            blank = (video.name, path.stem) in BLANKED
            save_mask(pred / video.name / path.name, np.zeros_like(first) if blank else first)
    return {"gt": gt, "pred": pred, "images": root / "JPEGImages" / "480p", "out": base / "scores"}


def _run_score(scored) -> Path:
    from remn.cli.score import main

    out = scored["out"]
    if not (out / REPORT_FILE).is_file():
        assert (
            main(
                [
                    "--gt",
                    str(scored["gt"]),
                    "--pred",
                    str(scored["pred"]),
                    "--out",
                    str(out),
                    "--images",
                    str(scored["images"]),
                    "--quiet",
                ]
            )
            == 0
        )
    return out / REPORT_FILE


def _worst(text: str) -> list[tuple[str, str, float]]:
    return [
        (m.group(1), m.group(2), float(m.group(3)))
        for m in re.finditer(
            r'class="worst-frame" data-rank="\d+" data-sequence="([^"]+)" data-frame="([^"]+)" '
            r'data-j="([0-9.]+)"',
            text,
        )
    ]


def test_remn_score_writes_one_self_contained_report(scored):
    report = _run_score(scored)
    out = report.parent
    assert sorted(p.name for p in out.iterdir()) == [
        "global_results-val.csv",
        "per-sequence_results-val.csv",
        REPORT_FILE,
    ]  # one file, no folder of assets
    text = report.read_text(encoding="utf-8")
    outside_images = re.sub(r"data:image/jpeg;base64,[A-Za-z0-9+/=]+", "", text)
    assert not re.search(r"https?:|ftp:|//[a-z]|url\(", outside_images, re.IGNORECASE)  # no external URL
    assert "<script" not in text and "<link" not in text
    assert all(src.startswith("data:image/") for src in re.findall(r'src="([^"]*)"', text))
    rows = re.findall(r'<tr class="sequence" data-sequence="([^"]+)"', text)
    assert rows == ["syn0000", "syn0001", "syn0002"]  # a row per sequence, in order
    assert len(re.findall(r'<svg class="chart"', text)) == 3
    for column in ("J&amp;F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"):
        assert f'data-column="{column}"' in text


def test_the_thumbnails_are_the_worst_frames(scored):
    text = _run_score(scored).read_text(encoding="utf-8")
    shown = _worst(text)
    assert len(shown) == 8
    # the ranking, recomputed here from the per-frame J of the scores: mean over objects, lowest first
    result = score_folders(scored["gt"], scored["pred"], progress=False)
    frames = [(float(s.j[:, t].mean()), s.name, name) for s in result.sequences for t, name in enumerate(s.frame_names)]
    expected = sorted(frames, key=lambda item: item[0])[:8]
    assert [(seq, frame) for seq, frame, _ in shown] == [(seq, frame) for _, seq, frame in expected]
    assert [j for _, _, j in shown] == pytest.approx([j for j, _, _ in expected], abs=1e-6)
    assert {(seq, frame) for seq, frame, _ in shown[:2]} == set(BLANKED) and shown[0][2] == 0.0
    assert worst_frames(result, 8)[0].j == 0.0
    # each worst frame: two thumbnails (prediction, ground truth) at 240 pixels wide, drawn over the frame
    figures = re.findall(r'<figure class="worst-frame".*?</figure>', text, re.DOTALL)
    for figure in figures:
        uris = re.findall(r'src="data:image/jpeg;base64,([^"]+)"', figure)
        assert len(uris) == 2
        thumbs = [np.asarray(Image.open(io.BytesIO(base64.b64decode(u))).convert("RGB")) for u in uris]
        assert thumbs[0].shape == (180, 240, 3)  # 80x60 frames shown 240 wide
        assert "object 1" in figure
    blank_figure = next(f for f in figures if 'data-sequence="syn0001" data-frame="00004"' in f)
    prediction, truth = (
        np.asarray(Image.open(io.BytesIO(base64.b64decode(u))).convert("RGB")).astype(int)
        for u in re.findall(r'src="data:image/jpeg;base64,([^"]+)"', blank_figure)
    )
    frame = np.asarray(Image.open(scored["images"] / "syn0001" / "00004.jpg").convert("RGB").resize((240, 180)))
    labels, _ = read_mask(scored["gt"] / "syn0001" / "00004.png")
    inside = np.asarray(Image.fromarray(labels.astype(np.uint8)).resize((240, 180), Image.NEAREST)) > 0
    assert np.abs(prediction - frame).mean() < 6  # an empty prediction: the frame as it is
    assert np.abs(truth - frame)[inside].mean() > 20 > 6 > np.abs(truth - frame)[~inside].mean()  # objects drawn


def test_write_report_without_frames_or_masks_still_renders(scored, tmp_path):
    result = score_folders(scored["gt"], scored["pred"], progress=False)
    path = write_report(tmp_path, result, title="<no frames>")
    text = path.read_text(encoding="utf-8")
    assert "&lt;no frames&gt;" in text and "<no frames>" not in text  # names are escaped
    assert len(_worst(text)) == 8 and "<img" not in text  # no masks to draw: captions only
    path = write_report(tmp_path, result, gt_root=scored["gt"], pred_root=scored["pred"])
    assert len(re.findall(r"<img ", path.read_text(encoding="utf-8"))) == 16  # masks drawn on grey


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_headless_chromium(scored, tmp_path):
    report = _run_score(scored)
    shot = tmp_path / "report.png"
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"--screenshot={shot}",
        "--window-size=1200,1600",
        report.resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (1600, 1200)
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, bars, charts and thumbnails, not a blank page
    assert (pixels.min(axis=2) < 100).mean() > 0.01  # something dark was drawn


def test_long_and_ranged_sequences_are_charted_within_bounds():
    from remn.evaluation.metrics import object_statistics
    from remn.evaluation.report import CHART_POINTS, render_report
    from remn.evaluation.results import EvaluationResult, SequenceScore

    frames = 3000
    rng = np.random.default_rng(0)
    j = rng.uniform(0.2, 1.0, (2, frames))
    j[1, :1000] = np.nan  # object 2 is scored from frame 1000 on (LVOS ranges)
    f = j.copy()
    j[0, 500] = 0.01  # the worst frame: object 1 alone is scored there, J 0.01
    names = tuple(f"{5 * t + 1:08d}" for t in range(frames))
    stats = tuple(object_statistics(row[~np.isnan(row)]) for row in j)
    sequence = SequenceScore("long", (1, 2), tuple(range(frames)), names, j, f, stats, stats)
    text = render_report(EvaluationResult([sequence]))
    lines = re.findall(r'<polyline points="([^"]+)"', text)
    assert lines and all(len(points.split()) <= CHART_POINTS for points in lines)
    assert not re.search(r"nan|inf", " ".join(lines))
    worst = _worst(text)
    assert worst[0][:2] == ("long", names[500]) and worst[0][2] == pytest.approx(0.01)
    assert worst_frames(EvaluationResult([sequence]), 1)[0].object_j == {1: pytest.approx(0.01)}


def test_a_users_report_html_is_never_replaced_and_nothing_else_is_written(scored, tmp_path, capsys):
    from remn.cli.score import main

    out = tmp_path / "scores"
    out.mkdir()
    (out / REPORT_FILE).write_text("my own notes")
    args = ["--gt", str(scored["gt"]), "--pred", str(scored["pred"]), "--out", str(out), "--quiet"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"{out / REPORT_FILE}: a report.html that remn did not write is in the way" in err
    assert (out / REPORT_FILE).read_text() == "my own notes" and sorted(p.name for p in out.iterdir()) == [REPORT_FILE]
    (out / REPORT_FILE).unlink()
    assert main(args) == 0 and main(args) == 0  # remn's own report is replaced by the next run
    assert GENERATOR_META in (out / REPORT_FILE).read_text()
