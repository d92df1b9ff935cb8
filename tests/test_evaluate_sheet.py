"""`occparse evaluate --sheet`: the worst rows by the metric's per-row cost, drawn as a contact sheet."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from occparse.cli import main
from occparse.evaluation import worst_sheet as ws
from occparse.evaluation.metrics import weighted_error

TRUTH = [  # filename, GT, gender
    ("a.png", 0.00, "F"),
    ("b.png", 0.50, "M"),
    ("c.png", 0.30, "F"),
    ("d.png", 0.20, "M"),
    ("e.png", 0.10, "F"),
    ("f.png", 0.05, "M"),
    ("g.png", 0.40, "F"),
    ("missing.png", 0.90, "M"),  # no prediction: reported by evaluate, never drawn
    ("invalid.png", 0.80, "F"),  # prediction not a number
]
PRED = {"a.png": "0.10", "b.png": "0.45", "c.png": "0.20", "d.png": "0.20", "e.png": "0.30", "f.png": "0.00",
        "g.png": "0.05", "invalid.png": "abc"}
#: cost w (p - GT)^2 with w = 1/30 + GT, worked by hand
COST = {"a.png": (1 / 30) * 0.01, "b.png": (1 / 30 + 0.5) * 0.0025, "c.png": (1 / 30 + 0.3) * 0.01,
        "d.png": 0.0, "e.png": (1 / 30 + 0.1) * 0.04, "f.png": (1 / 30 + 0.05) * 0.0025,
        "g.png": (1 / 30 + 0.4) * 0.1225}
WORST_FIRST = sorted(COST, key=lambda n: -COST[n])  # g, e, c, b, f, a, d
#: a distinct solid colour per photo (RGB), to find which photo a tile shows
COLOURS = {n: (30 * i + 20, 200 - 25 * i, (70 * i) % 256) for i, (n, _, _) in enumerate(TRUTH)}


def _truth_rows():
    return [{"filename": n, "FaceOcclusion": f"{gt}", "gender": g} for n, gt, g in TRUTH]


def _write_case(tmp_path: Path, components: bool = True) -> tuple[Path, Path, Path]:
    root = tmp_path / "images"
    root.mkdir()
    for i, (name, _, _) in enumerate(TRUTH):
        rgb = np.full((48 + 8 * i, 64, 3), COLOURS[name], np.uint8)  # sizes differ: letterboxing both ways
        assert cv2.imwrite(str(root / name), rgb[..., ::-1])
    t = tmp_path / "truth.csv"
    t.write_text("filename,FaceOcclusion,gender\n" + "".join(f"{n},{gt},{g}\n" for n, gt, g in TRUTH))
    p = tmp_path / "pred.csv"
    head = "filename,FaceOcclusion,status" + (",geometric,regressor" if components else "")
    lines = [f"{n},{v},ok" + (",0.111,0.222" if components else "") for n, v in PRED.items()]
    p.write_text(head + "\n" + "\n".join(lines) + "\n")
    return t, p, root


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [ln for ln in err.strip().splitlines() if ln.startswith("occparse: error")]
    assert len(lines) == 1, err
    return lines[0]


def _tile_colour(sheet: np.ndarray, k: int) -> np.ndarray:
    """Colour at the centre of the k-th tile's picture (0-based, row-major)."""
    r, c = divmod(k, ws.COLUMNS)
    y, x = ws.TITLE_H + r * ws.TILE_H + ws.TILE // 2, c * ws.TILE + ws.TILE // 2
    return sheet[y, x].astype(int)


# ---------------------------------------------------------------- ranking


def test_rank_worst_orders_rows_by_the_weighted_cost_and_skips_missing_ones():
    rows = ws.rank_worst(PRED, _truth_rows())
    assert [r.filename for r in rows] == WORST_FIRST
    for r in rows:
        assert r.cost == pytest.approx(COST[r.filename], abs=1e-12)
        assert r.error == pytest.approx(float(PRED[r.filename]) - r.truth)
    # the cost is the metric's numerator: over all valid rows, sum cost / sum w is Err
    gts = np.array([r.truth for r in rows])
    assert sum(r.cost for r in rows) / np.sum(1 / 30 + gts) == pytest.approx(
        weighted_error(np.array([r.pred for r in rows]), gts))
    # a light face read 0.1 too high (a) costs less than a heavy one read 0.1 too low (c): not |error| order
    assert WORST_FIRST.index("c.png") < WORST_FIRST.index("a.png")
    assert [r.filename for r in ws.rank_worst(PRED, _truth_rows(), count=3)] == WORST_FIRST[:3]


def test_rank_worst_breaks_ties_by_name_and_reads_components():
    truth = [{"filename": n, "FaceOcclusion": "0.5", "gender": "F"} for n in ("z.jpg", "m.jpg", "b.jpg")]
    pred = {"z.jpg": "0.75", "m.jpg": "0.25", "b.jpg": "0.75"}  # equal costs, exactly
    comps = {"geometric": {"z.jpg": "0.25", "m.jpg": "", "b.jpg": "nan"}}
    rows = ws.rank_worst(pred, truth, components=comps)
    assert [r.filename for r in rows] == ["b.jpg", "m.jpg", "z.jpg"]
    assert [r.components["geometric"] for r in rows] == [None, None, 0.25]


# ---------------------------------------------------------------- drawing


def test_draw_worst_sheet_draws_the_ranked_photos_in_order(tmp_path):
    _, _, root = _write_case(tmp_path)
    rows = ws.rank_worst(PRED, _truth_rows())
    sheet = ws.draw_worst_sheet(rows, root, "FaceOcclusion", n_scored=len(rows))
    assert sheet.dtype == np.uint8 and sheet.shape == (*ws.sheet_size(len(rows)), 3)
    assert sheet.shape == (ws.TITLE_H + 2 * ws.TILE_H, 6 * ws.TILE, 3)  # 7 tiles: two rows of six
    for k, r in enumerate(rows):
        assert np.abs(_tile_colour(sheet, k) - COLOURS[r.filename]).max() <= 2, (k, r.filename)
        # the bar under the picture: blue for an under-read, red for an over-read
        rr, c = divmod(k, ws.COLUMNS)
        bar = sheet[ws.TITLE_H + rr * ws.TILE_H + ws.TILE + 1, c * ws.TILE + ws.TILE // 2]
        assert tuple(bar) == (ws.UNDER if r.error < 0 else ws.OVER)
    empty = ws.draw_worst_sheet([], root)  # nothing scored: the title and a note, no crash
    assert empty.shape == (*ws.sheet_size(0), 3) and (empty != ws.PAPER).any()


def test_an_unreadable_photo_becomes_a_grey_placeholder(tmp_path):
    _, _, root = _write_case(tmp_path)
    (root / "g.png").write_bytes(b"this is not a picture")  # the worst row
    (root / "e.png").unlink()  # the second worst
    rows = ws.rank_worst(PRED, _truth_rows(), count=3)
    bad: list[str] = []
    sheet = ws.draw_worst_sheet(rows, root, unreadable=bad)
    assert bad == ["g.png", "e.png"]
    for k in (0, 1):  # a corner of the picture area: placeholder grey, not the letterbox's dark bars
        assert tuple(sheet[ws.TITLE_H + ws.TILE - 4, k * ws.TILE + 4]) == ws.PLACEHOLDER
    assert np.abs(_tile_colour(sheet, 2) - COLOURS["c.png"]).max() <= 2


def test_shorten_keeps_the_end_of_a_long_name():
    s = ws.shorten("Michelangelo_Antonioni_Something_Very_Long_0001.jpg", 150)
    assert s.endswith("0001.jpg") and "..." in s
    assert cv2.getTextSize(s, ws.FONT, 0.42, 1)[0][0] <= 150


# ---------------------------------------------------------------- command


def test_evaluate_sheet_writes_a_png_of_the_grid(tmp_path, capsys):
    t, p, root = _write_case(tmp_path)
    out = tmp_path / "worst.png"
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--sheet", str(out), "--images-root", str(root),
                 "--sheet-count", "4"]) == 0
    cap = capsys.readouterr()
    assert "Score" in cap.out and "wrote the 4 worst row(s)" in cap.err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sheet = cv2.imread(str(out))[..., ::-1]
    assert sheet.shape == (*ws.sheet_size(4), 3)
    for k, name in enumerate(WORST_FIRST[:4]):
        assert np.abs(_tile_colour(sheet, k) - COLOURS[name]).max() <= 2
    assert sorted(x.name for x in tmp_path.iterdir()) == ["images", "pred.csv", "truth.csv", "worst.png"]


def test_evaluate_sheet_keeps_json_clean_and_replaces_an_old_sheet(tmp_path, capsys):
    t, p, root = _write_case(tmp_path, components=False)
    out = tmp_path / "worst.jpg"
    out.write_bytes(b"old")
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--json", "--sheet", str(out),
                 "--images-root", str(root)]) == 0
    d = json.loads(capsys.readouterr().out)  # stdout is the JSON alone
    assert d["n_missing"] == 1 and d["n_invalid"] == 1
    sheet = cv2.imread(str(out))
    assert sheet is not None and sheet.shape[:2] == ws.sheet_size(len(COST))  # 7 valid rows, not 9


def test_sheet_without_images_root_is_refused_before_any_work(tmp_path, capsys):
    out = tmp_path / "worst.png"
    # the CSVs do not exist: the refusal comes before they are read
    assert main(["evaluate", "--pred", str(tmp_path / "no.csv"), "--truth", str(tmp_path / "no.csv"),
                 "--sheet", str(out)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "--images-root" in _one_error_line(cap.err)
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert main(["evaluate", "--pred", "x.csv", "--truth", "y.csv", "--images-root", str(tmp_path)]) == 2
    assert "--sheet" in _one_error_line(capsys.readouterr().err)
    for n in ("0", "601"):
        assert main(["evaluate", "--pred", "x.csv", "--truth", "y.csv", "--sheet", str(out), "--images-root",
                     str(tmp_path), "--sheet-count", n]) == 2
        assert "--sheet-count" in _one_error_line(capsys.readouterr().err)
    assert not out.exists()


@pytest.mark.parametrize("where", ["no_folder/worst.png", "a_file.txt/worst.png", "worst.xyz", "worst", "."])
def test_unwritable_sheet_path_is_one_line_before_any_work(tmp_path, capsys, where):
    t, p, root = _write_case(tmp_path)
    (tmp_path / "a_file.txt").write_text("x")
    before = sorted(os.listdir(tmp_path))
    out = tmp_path / where
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--sheet", str(out), "--images-root", str(root)]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""  # refused with the other arguments: no report followed by an error
    line = _one_error_line(cap.err)
    assert "--sheet" in line and (out.name in line or str(out.parent) in line or str(out) in line)
    assert sorted(os.listdir(tmp_path)) == before


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    out = tmp_path / "worst.png"
    out.write_bytes(b"old")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(ws.os, "replace", refuse)
    with pytest.raises(ws.SheetError, match="cannot write"):
        ws.write_sheet(np.zeros((10, 10, 3), np.uint8), out)
    assert out.read_bytes() == b"old" and os.listdir(tmp_path) == ["worst.png"]


def test_evaluate_help_shows_the_sheet_example(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = capsys.readouterr().out
    assert "--sheet worst.png" in out and "--images-root" in out


def test_components_name_the_other_columns_of_the_prediction_csv(tmp_path):
    _, p, _ = _write_case(tmp_path)
    assert sorted(ws.read_components(p)) == ["geometric", "regressor"]  # FaceOcclusion is the scored one
    comps = ws.read_components(p, exclude="geometric")
    assert sorted(comps) == ["FaceOcclusion", "regressor"]
    assert comps["FaceOcclusion"]["g.png"] == "0.05" and comps["regressor"]["g.png"] == "0.222"
    plain = tmp_path / "plain.csv"
    plain.write_text("filename,FaceOcclusion\na.png,0.1\n")
    assert ws.read_components(plain) == {}
