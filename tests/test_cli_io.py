"""Output and input of the command line: every bad input of issue 14 ("Output and input") as a test.

Strict JSON, picture paths, Parquet, output names, benchmark and evaluate inputs, exit codes,
wide and 1-bit images, quiet logs, and the same numbers from estimate, predict and folder mode.
Inputs are made in tmp_path from examples/astronaut.png; the handed cases in ../shared/cases are
read where present (never copied).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from occparse.cli import main
from occparse.runtime.io import read_image, to_gray3
from occparse.runtime.strictjson import dumps

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.png"
CASES = Path(os.environ.get("OCCPARSE_CASES", REPO.parent / "shared" / "cases"))
if not CASES.is_dir():
    CASES = Path("/work/shared/cases")


def _case(name: str) -> Path:
    p = CASES / name
    if not p.exists():
        pytest.skip(f"handed case {name} not found in {CASES}")
    return p


def _astronaut() -> np.ndarray:
    return np.asarray(Image.open(EXAMPLE).convert("RGB"))


def _strict_json(line: str):
    """json.loads that refuses NaN/Infinity, as strict readers (jq, JavaScript) do."""
    def refuse(c):
        raise ValueError(f"not JSON: {c}")
    return json.loads(line, parse_constant=refuse)


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1, lines
    return lines[0]


# ---------------------------------------------------------------- strict JSON


def test_strict_dumps_turns_every_non_finite_number_into_null():
    text = dumps({"a": math.nan, "b": [np.float32(0.5), np.array([np.inf, 2.0])], "c": (-math.inf, 1), "d": np.int64(3)})
    assert _strict_json(text) == {"a": None, "b": [0.5, [None, 2.0]], "c": [None, 1], "d": 3}


def test_region_outside_the_frame_is_valid_json_and_counts_as_hidden(tmp_path, capsys):
    """A region the border cuts off is hidden by the frame: it reads 1.0 (never NaN), the face reports its
    out_of_frame share, and both outputs stay valid (strict JSON, no "nan" in the text)."""
    half = tmp_path / "half.png"
    Image.fromarray(np.ascontiguousarray(_astronaut()[:, 225:])).save(half)  # the border cuts the face's left side
    assert main(["estimate", str(half), "--json"]) == 0
    d = _strict_json(capsys.readouterr().out.strip().splitlines()[0])
    face = d["faces"][0]
    assert face["out_of_frame"] > 0.05
    assert max(face["regions"].values()) == pytest.approx(1.0)  # a region wholly outside the picture
    assert main(["estimate", str(half)]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower() and "out of frame" in out.lower()


# ---------------------------------------------------------------- --visualize path


@pytest.mark.parametrize("name", ["out.txt", "noext", "afile.png/x.png"])  # an existing folder takes the picture
def test_bad_picture_path_fails_before_any_work(tmp_path, capsys, name):
    (tmp_path / "afile.png").write_bytes(b"x")
    (tmp_path / "folder").mkdir()
    rc = main(["estimate", str(EXAMPLE), "--visualize", str(tmp_path / name)])
    cap = capsys.readouterr()
    assert rc == 2
    assert _one_error_line(cap.err).startswith("occparse: error: --visualize")
    assert cap.out == ""  # refused before the image was measured
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile.png", "folder"]


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root may write anywhere")
def test_picture_in_an_unwritable_folder_fails_first(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert main(["estimate", str(EXAMPLE), "--visualize", str(locked / "x.png")]) == 2
        assert "not writable" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)


def test_auto_pictures_of_same_stem_do_not_overwrite_each_other(tmp_path, capsys):
    rgb = _astronaut()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    assert main(["estimate", str(tmp_path / "a.png"), str(tmp_path / "a.jpg"), "--visualize"]) == 0
    assert (tmp_path / "a.png_occlusion.png").exists() and (tmp_path / "a.jpg_occlusion.png").exists()


# ---------------------------------------------------------------- folder mode output


@pytest.fixture
def small_folder(tmp_path):
    """The issue's mixed folder: the photo, a mirrored copy, a gray copy and a file that is not an image."""
    d = tmp_path / "in"
    d.mkdir()
    rgb = _astronaut()
    Image.fromarray(rgb).save(d / "orig.png")
    Image.fromarray(np.ascontiguousarray(rgb[:, ::-1])).save(d / "flipped.png")
    Image.fromarray(to_gray3(rgb)).save(d / "gray.png")
    (d / "not_a_photo.jpg").write_text("not an image")
    return d


def test_parquet_out_of_the_box_and_no_side_csv(tmp_path, small_folder, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    keep = tmp_path / "r.csv"
    keep.write_text("an earlier result the user wants to keep\n")
    out = tmp_path / "r.parquet"
    rc = main(["estimate", str(small_folder), "--out", str(out)])
    assert rc == 1  # not_a_photo.jpg failed
    assert keep.read_text() == "an earlier result the user wants to keep\n"
    # beside the output only its settings record (a rerun tells from it whether the output is current)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "r.csv", "r.parquet", "r.parquet.occparse.json"]
    rows = {Path(r["filename"]).name: r for r in pq.read_table(out).to_pylist()}
    assert set(rows) == {"orig.png", "flipped.png", "gray.png", "not_a_photo.jpg"}
    assert rows["not_a_photo.jpg"]["status"] == "not_an_image" and rows["not_a_photo.jpg"]["occlusion"] is None
    assert all(0.0 <= rows[n]["occlusion"] <= 1.0 for n in ("orig.png", "flipped.png", "gray.png"))
    assert rows["gray.png"]["is_gray"] == 1


def test_unknown_out_type_or_missing_writer_refused_before_work(tmp_path, small_folder, capsys, monkeypatch):
    assert main(["estimate", str(small_folder), "--out", str(tmp_path / "r.xlsx")]) == 2
    assert "unknown file type" in _one_error_line(capsys.readouterr().err)
    assert main(["estimate", str(small_folder), "--out", str(tmp_path) + "/"]) == 2
    assert "is a folder; give a file name" in _one_error_line(capsys.readouterr().err)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    assert main(["estimate", str(small_folder), "--out", str(tmp_path / "r.parquet")]) == 2
    assert "pyarrow" in _one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing computed, nothing written


def test_parse_same_stems_get_distinct_outputs(tmp_path, capsys):
    rgb = _astronaut()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    out = tmp_path / "D"
    assert main(["parse", str(tmp_path / "a.jpg"), str(tmp_path / "a.png"), "--out-dir", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg_labels.png", "a.jpg_overlay.png",
                                                     "a.png_labels.png", "a.png_overlay.png"]
    # a rerun replaces its own earlier outputs, and says so
    capsys.readouterr()
    assert main(["parse", str(tmp_path / "a.jpg"), str(tmp_path / "a.png"), "--out-dir", str(out)]) == 0
    assert capsys.readouterr().err.count("replacing") == 4


# ---------------------------------------------------------------- benchmark inputs


@pytest.mark.parametrize("kind", ["empty", "no_face", "zero_byte", "missing"])
def test_benchmark_bad_image_folder_is_one_line(tmp_path, capsys, kind):
    d = tmp_path / "imgs"
    if kind != "missing":
        d.mkdir()
    if kind == "no_face":
        Image.fromarray(np.full((120, 120, 3), 128, np.uint8)).save(d / "grey.png")
    if kind == "zero_byte":
        (d / "empty.jpg").write_bytes(b"")
    rc = main(["benchmark", "--images", str(d), "-n", "2", "--workers", "0"])
    cap = capsys.readouterr()
    assert rc != 0
    assert "error" in _one_error_line(cap.err)


def test_evaluate_refuses_conflicting_truth_rows_and_scores_of_nothing(tmp_path, capsys):
    truth = _csv(tmp_path / "t.csv", "filename,FaceOcclusion,gender\na.png,0.1,M\nb.png,0.2,F\n")
    dup = _csv(tmp_path / "d.csv", "filename,FaceOcclusion,gender\na.png,0.1,M\nb.png,0.2,F\na.png,0.9,M\n")
    paths = _csv(tmp_path / "p.csv", "filename,FaceOcclusion,status\nx/a.png,0.1,ok\nx/b.png,0.2,ok\n")
    bare = _csv(tmp_path / "q.csv", "filename,FaceOcclusion,status\na.png,0.1,ok\nb.png,0.2,ok\n")
    assert main(["evaluate", "--pred", str(bare), "--truth", str(dup)]) == 2
    assert "line 4 (a.png): given again with other values than on line 2" in _one_error_line(capsys.readouterr().err)
    assert main(["evaluate", "--pred", str(paths), "--truth", str(truth)]) == 2
    assert "predictions hold paths" in _one_error_line(capsys.readouterr().err)
    assert main(["evaluate", "--pred", str(bare), "--truth", str(truth), "--column", "status"]) == 2
    assert "no valid prediction" in _one_error_line(capsys.readouterr().err)
    assert main(["evaluate", "--pred", str(bare), "--truth", str(truth)]) == 0  # and the plain case still scores
    assert "Score   0.000000" in capsys.readouterr().out


def test_benchmark_json_that_cannot_be_written_is_refused_before_the_run(tmp_path, capsys, monkeypatch):
    import occparse.evaluation.benchmark as bench

    monkeypatch.setattr(bench, "run_benchmark", lambda *a, **k: pytest.fail("the run started"))
    for target, want in ((tmp_path / "no" / "b.json", "no such folder"), (tmp_path, "is a folder")):
        assert main(["benchmark", "--images", str(EXAMPLE.parent), "-n", "1", "--json", str(target)]) == 2
        assert want in _one_error_line(capsys.readouterr().err)


def test_benchmark_repeat_reports_the_median_of_its_passes(tmp_path, capsys):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(_astronaut()).save(d / "a.png")
    assert main(["benchmark", "--images", str(d), "-n", "1", "--repeat", "0"]) == 2
    assert "--repeat must be at least 1" in _one_error_line(capsys.readouterr().err)
    assert main(["benchmark", "--images", str(d), "-n", "1", "--repeat", "2", "--workers", "1"]) == 2
    assert "which --workers 1 skips" in _one_error_line(capsys.readouterr().err)
    out = tmp_path / "b.json"
    assert main(["benchmark", "--images", str(d), "-n", "1", "--workers", "2", "--repeat", "3", "--startup-runs", "0",
                 "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert len(rep["pool_e2e_runs"]) == 3 and all(v > 0 for v in rep["pool_e2e_runs"])
    assert rep["pool_e2e_img_s"] == sorted(rep["pool_e2e_runs"])[1]
    assert "median of 3 passes" in capsys.readouterr().out


def test_parser_that_is_not_onnx_and_a_spec_without_a_parser_are_one_line(capsys):
    assert main(["estimate", str(EXAMPLE), "--parser", str(EXAMPLE)]) == 2
    assert "not a usable ONNX model" in _one_error_line(capsys.readouterr().err)
    assert main(["estimate", str(EXAMPLE), "--parser-spec", "celebamask19"]) == 2
    assert "--parser" in _one_error_line(capsys.readouterr().err)


def test_benchmark_skips_unreadable_files_with_a_count(tmp_path, capsys):
    d = tmp_path / "imgs"
    d.mkdir()
    Image.fromarray(_astronaut()).save(d / "a.png")
    (d / "b.jpg").write_bytes(b"")
    assert main(["benchmark", "--images", str(d), "-n", "2", "--workers", "0", "--batch", "1"]) == 0
    cap = capsys.readouterr()
    assert "skipped 1 unreadable file(s) of 2" in cap.err
    assert "1 images" in cap.out


# ---------------------------------------------------------------- evaluate inputs


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("gt", ["nan", "1.7", "-0.1", "inf"])
def test_evaluate_refuses_invalid_truth_values_naming_the_row(tmp_path, capsys, gt):
    t = _csv(tmp_path / "t.csv", f"filename,FaceOcclusion,gender\na.jpg,0.1,F\nb.jpg,{gt},M\nc.jpg,0.2,M\n")
    p = _csv(tmp_path / "p.csv", "filename,FaceOcclusion\na.jpg,0.1\nb.jpg,0.2\nc.jpg,0.3\n")
    for extra in ([], ["--strict"], ["--json"]):
        assert main(["evaluate", "--pred", str(p), "--truth", str(t), *extra]) == 2
        cap = capsys.readouterr()
        assert cap.out == ""
        line = _one_error_line(cap.err)
        assert "b.jpg" in line and "line 3" in line and "a.jpg" not in line


def test_evaluate_duplicate_predictions(tmp_path, capsys):
    t = _csv(tmp_path / "t.csv", "filename,FaceOcclusion,gender\na.jpg,0.1,F\nb.jpg,0.3,M\n")
    conflict = _csv(tmp_path / "p1.csv", "filename,FaceOcclusion\na.jpg,0.1\nb.jpg,0.2\na.jpg,0.5\n")
    assert main(["evaluate", "--pred", str(conflict), "--truth", str(t)]) == 2
    assert "a.jpg" in _one_error_line(capsys.readouterr().err)
    same = _csv(tmp_path / "p2.csv", "filename,FaceOcclusion\na.jpg,0.1\nb.jpg,0.2\na.jpg,0.1\n")
    assert main(["evaluate", "--pred", str(same), "--truth", str(t), "--json"]) == 0
    cap = capsys.readouterr()
    assert "warning" in cap.err and "repeated" in cap.err
    d = _strict_json(cap.out)
    assert d["n_scored"] == 2 and d["n_missing"] == 0


def test_evaluate_reports_predictions_not_in_the_truth(tmp_path, capsys):
    t = _csv(tmp_path / "t.csv", "filename,FaceOcclusion,gender\na.jpg,0.1,F\nb.jpg,0.3,M\n")
    p = _csv(tmp_path / "p.csv", "filename,FaceOcclusion\na.jpg,0.1\nb.jpg,0.2\nx.jpg,0.4\ny.jpg,0.4\n")
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--json"]) == 0
    cap = capsys.readouterr()
    d = _strict_json(cap.out)
    assert d["n_unknown"] == 2 and d["unknown_examples"] == ["x.jpg", "y.jpg"]
    assert "2 prediction(s) for files not in the truth" in cap.err
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--strict"]) == 1
    assert "x.jpg" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["", "filename,FaceOcclusion\n"])
def test_evaluate_refuses_a_prediction_file_without_rows(tmp_path, capsys, text):
    t = _csv(tmp_path / "t.csv", "filename,FaceOcclusion,gender\na.jpg,0.1,F\nb.jpg,0.3,M\n")
    p = _csv(tmp_path / "p.csv", text)
    assert main(["evaluate", "--pred", str(p), "--truth", str(t)]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "holds no prediction rows" in _one_error_line(cap.err)


def test_evaluate_strict_says_why_it_fails(tmp_path, capsys):
    t = _csv(tmp_path / "t.csv", "filename,FaceOcclusion,gender\na.jpg,0.1,F\nb.jpg,0.3,M\nc.jpg,0.2,M\n")
    p = _csv(tmp_path / "p.csv", "filename,FaceOcclusion\na.jpg,0.1\nb.jpg,abc\n")
    assert main(["evaluate", "--pred", str(p), "--truth", str(t)]) == 0
    assert "--strict" not in capsys.readouterr().err
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--strict"]) == 1
    line = [x for x in capsys.readouterr().err.splitlines() if "--strict" in x]
    assert line == ["occparse: error: --strict: 1 truth row(s) without a prediction, 1 invalid prediction(s), "
                    "0 prediction(s) for files not in the truth"]


def test_evaluate_json_is_strict_when_a_group_is_empty(tmp_path, capsys):
    t = _csv(tmp_path / "t.csv", "filename,FaceOcclusion,gender\na.jpg,0.1,F\n")  # no men: Err_M has no value
    p = _csv(tmp_path / "p.csv", "filename,FaceOcclusion\na.jpg,0.1\n")
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--json"]) == 0
    d = _strict_json(capsys.readouterr().out)
    assert d["err_m"] is None and d["gap"] is None
    assert main(["evaluate", "--pred", str(p), "--truth", str(t)]) == 0
    assert "nan" not in capsys.readouterr().out


# ---------------------------------------------------------------- predict inputs and exit codes


def test_predict_refuses_missing_images_root_and_empty_csv(tmp_path, capsys):
    good = _csv(tmp_path / "in.csv", "filename,FaceOcclusion,gender\na.png,0.1,F\n")
    out = tmp_path / "p.csv"
    assert main(["predict", "--csv", str(good), "--images-root", str(tmp_path / "nonexistent"), "--out", str(out)]) == 2
    assert "--images-root" in _one_error_line(capsys.readouterr().err)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert main(["predict", "--csv", str(empty), "--images-root", str(tmp_path), "--out", str(out)]) == 2
    assert "filename" in _one_error_line(capsys.readouterr().err)
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()


# ---------------------------------------------------------------- the same numbers from every entry point


def test_estimate_predict_and_folder_mode_agree(tmp_path, small_folder, capsys):
    names = ["orig.png", "flipped.png", "gray.png", "not_a_photo.jpg"]
    single = {}
    for n in names:
        rc = main(["estimate", str(small_folder / n), "--json"])
        d = _strict_json(capsys.readouterr().out.strip().splitlines()[0])
        assert rc == (1 if n == "not_a_photo.jpg" else 0)
        single[n] = (d["status"], d["faces"][0]["occlusion"] if d["faces"] else None,
                     d["faces"][0]["geometric"] if d["faces"] else None)
    csv_in = _csv(tmp_path / "in.csv", "filename,FaceOcclusion,gender\n" + "".join(f"{n},0.1,F\n" for n in names))
    preds = tmp_path / "preds.csv"
    assert main(["predict", "--csv", str(csv_in), "--images-root", str(small_folder), "--out", str(preds)]) == 1
    folder_out = tmp_path / "folder.csv"
    assert main(["estimate", str(small_folder), "--out", str(folder_out)]) == 1
    with open(preds, newline="") as f:
        pred_rows = {r["filename"]: r for r in csv.DictReader(f)}
    with open(folder_out, newline="") as f:
        folder_rows = {Path(r["filename"]).name: r for r in csv.DictReader(f)}
    for n in names:
        status, occ, geo = single[n]
        assert pred_rows[n]["status"] == folder_rows[n]["status"] == status
        if status != "ok":
            assert occ is None and pred_rows[n]["FaceOcclusion"] == "" and folder_rows[n]["occlusion"] == ""
            continue
        # JSON rounds to 4 decimals, the CSVs keep 6
        for value in (float(pred_rows[n]["FaceOcclusion"]), float(folder_rows[n]["occlusion"])):
            assert value == pytest.approx(occ, abs=6e-5), n
        for value in (float(pred_rows[n]["geometric"]), float(folder_rows[n]["geometric"])):
            assert value == pytest.approx(geo, abs=6e-5), n
    assert single["not_a_photo.jpg"][0] == "not_an_image"


# ---------------------------------------------------------------- wide and 1-bit images


def _png_with_sbit(path: Path, gray16: np.ndarray, bits: int) -> None:
    """A 16-bit gray PNG with an sBIT chunk saying ``bits`` significant bits (Pillow cannot write sBIT)."""
    Image.fromarray(gray16).save(path)
    data = path.read_bytes()
    chunk = b"sBIT" + bytes([bits])
    sbit = struct.pack(">I", 1) + chunk + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    end_ihdr = 8 + 8 + 13 + 4  # signature, IHDR length+type, IHDR data, CRC
    path.write_bytes(data[:end_ihdr] + sbit + data[end_ihdr:])


def test_12bit_data_in_16bit_png_reads_like_the_8bit_photo(tmp_path):
    gray8 = to_gray3(_astronaut())[..., 0]
    want = gray8.astype(np.float64)
    p = tmp_path / "g12.png"
    Image.fromarray(gray8.astype(np.uint16) * 16).save(p)  # 0..4080, as a 12-bit camera writes
    im = read_image(p)
    assert im.is_gray and np.abs(im.rgb[..., 0] - want).mean() < 1.0
    # the sBIT chunk decides over the largest value: 10-bit-looking data declared as 12 bits stays dark
    p2 = tmp_path / "sbit.png"
    _png_with_sbit(p2, gray8.astype(np.uint16) * 4, 12)
    assert np.abs(read_image(p2).rgb[..., 0] - want / 4).mean() < 1.0
    # 16-bit colour: Pillow keeps only the high byte; the reader must not
    p3 = tmp_path / "c12.png"
    rgb = _astronaut()
    cv2.imwrite(str(p3), (rgb[..., ::-1].astype(np.uint16) * 16))
    im3 = read_image(p3)
    assert not im3.is_gray and np.abs(im3.rgb.astype(np.float64) - rgb).mean() < 1.0


def test_10bit_colour_tiff_estimates_like_the_8bit_photo(tmp_path, capsys):
    """16-bit colour TIFFs holding 10-bit data decoded nearly black (no_face); now they read like the photo."""
    tif = tmp_path / "c10.tif"
    cv2.imwrite(str(tif), cv2.imread(str(EXAMPLE)).astype(np.uint16) << 2)
    occ = []
    for path in (EXAMPLE, tif):
        assert main(["estimate", str(path), "--json"]) == 0
        occ.append(_strict_json(capsys.readouterr().out.strip().splitlines()[0])["faces"][0]["occlusion"])
    assert occ[1] == pytest.approx(occ[0], abs=0.01)


def test_handed_12bit_case_reads_like_the_example(capsys):
    path = _case("astronaut_12bit.png")
    a = read_image(path).rgb[..., 0].astype(np.float64)
    assert np.abs(a - to_gray3(_astronaut())[..., 0]).mean() < 2.0
    assert main(["estimate", str(path), "--json"]) == 0
    f = _strict_json(capsys.readouterr().out.strip().splitlines()[0])["faces"][0]
    assert f["is_gray"] is True and abs(f["occlusion"] - 0.105) <= 0.06  # the case's reading and tolerance
    assert main(["estimate", str(EXAMPLE), "--json"]) == 0
    colour = _strict_json(capsys.readouterr().out.strip().splitlines()[0])["faces"][0]
    assert abs(f["occlusion"] - colour["occlusion"]) <= 0.03  # the gray copy reads as the colour photo does


def test_dithered_one_bit_picture_is_smoothed_and_its_face_found(tmp_path, mesher):
    p = tmp_path / "onebit.png"
    Image.fromarray(_astronaut()).convert("L").convert("1").save(p)  # Floyd-Steinberg dither
    assert Image.open(p).mode == "1"
    im = read_image(p)
    assert im.is_gray and len(np.unique(im.rgb)) > 16  # shades of gray, not two levels
    assert mesher.detect(im.rgb)
    # the same pattern saved as 8-bit black and white
    p8 = tmp_path / "onebit8.png"
    Image.open(p).convert("L").save(p8)
    assert mesher.detect(read_image(p8).rgb)
    case = CASES / "astronaut_onebit.png"
    if case.exists():
        assert mesher.detect(read_image(case).rgb)


# ---------------------------------------------------------------- quiet logs


def _run_cli(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    for k in ("OCCPARSE_VERBOSE", "GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL"):  # as a user's shell has it
        if k not in (env_extra or {}):
            env.pop(k, None)
    return subprocess.run([sys.executable, "-m", "occparse.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


def _chatter(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(("INFO:", "W0000", "I0000", "WARNING: All log"))]


def test_estimate_stderr_has_no_native_log_lines():
    r = _run_cli("estimate", "examples/astronaut.png")
    assert r.returncode == 0, r.stderr
    assert _chatter(r.stderr) == [] and r.stderr.strip() == ""
    assert "face 1" in r.stdout


def test_library_use_is_quiet_too():
    # a picture with a face too: the mesh's landmark stage warns once ("NORM_RECT") on its first face
    code = ("import numpy as np; from occparse.runtime.faces import FaceMesher; m = FaceMesher(); "
            "m.detector_boxes(np.zeros((64, 64, 3), np.uint8)); "
            "from occparse import Estimator; Estimator().analyze('examples/astronaut.png'); "
            "import time; time.sleep(0.5)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for k in ("OCCPARSE_VERBOSE", "GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL"):
        env.pop(k, None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr
    assert _chatter(r.stderr) == []


def test_folder_mode_output_inside_the_input_folder_is_not_an_input(small_folder, capsys):
    out = small_folder / "r.csv"
    assert main(["estimate", str(small_folder), "--out", str(out)]) == 1
    first = out.read_text()
    with open(out, newline="") as f:
        assert sorted(Path(r["filename"]).name for r in csv.DictReader(f)) == ["flipped.png", "gray.png", "not_a_photo.jpg",
                                                                             "orig.png"]
    # a rerun does not read r.csv either: the output is complete for these images (its failed row keeps exit 1)
    assert main(["estimate", str(small_folder), "--out", str(out)]) == 1
    assert "already complete: 4 rows from these images with these settings, 1 of them failed" in capsys.readouterr().err
    assert main(["estimate", str(small_folder), "--out", str(out), "--overwrite"]) == 1
    assert out.read_text() == first


def test_reader_closing_the_pipe_exits_quietly():
    """`occparse estimate x.png | head -1`: the reader goes away; no BrokenPipeError traceback, exit 141."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen([sys.executable, "-m", "occparse.cli", "estimate", str(EXAMPLE)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=REPO)
    p.stdout.close()  # the reader is gone before the first line
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


# ---------------------------------------------------------------- outputs that are inputs


def _refused(capsys, argv: list[str], *keep: Path) -> str:
    """The command exits 2 with one line, before any work, and every file in ``keep`` is byte-identical."""
    before = {p: p.read_bytes() for p in keep}
    assert main(argv) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    line = _one_error_line(cap.err)
    assert all(p.read_bytes() == b for p, b in before.items())
    return line


def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path, capsys):
    x = tmp_path / "x.png"
    shutil.copy(EXAMPLE, x)
    second = tmp_path / "x_occlusion.png"
    shutil.copy(EXAMPLE, second)
    (tmp_path / "link.png").symlink_to(x)
    # the picture named as the input photo, directly or through a symlink
    assert "is the input image" in _refused(capsys, ["estimate", str(x), "--visualize", str(x)], x)
    assert "is the input image" in _refused(capsys, ["estimate", str(x), "--visualize", str(tmp_path / "link.png")], x)
    # an auto-named picture that would land on another input
    assert "--visualize PATH" in _refused(capsys, ["estimate", str(x), str(second), "--visualize"], x, second)
    # predict writing over its truth CSV (or the CSV's .partial name)
    truth = _csv(tmp_path / "t.csv", "filename,FaceOcclusion,gender\nx.png,0.1,F\n")
    for out in (truth, tmp_path / "t"):
        if out.name == "t":
            truth = _csv(tmp_path / "t.partial", truth.read_text())
        line = _refused(capsys, ["predict", "--csv", str(truth), "--images-root", str(tmp_path), "--out", str(out)],
                        truth)
        assert "input CSV" in line
    # predict writing over one of the images it scores
    csv_in = _csv(tmp_path / "in.csv", "filename,FaceOcclusion,gender\nx.png,0.1,F\nrows.csv,0.1,F\n")
    (tmp_path / "rows.csv").write_text("a user's file\n")
    assert "input image" in _refused(capsys, ["predict", "--csv", str(csv_in), "--images-root", str(tmp_path),
                                              "--out", str(tmp_path / "rows.csv")], tmp_path / "rows.csv")
    # parse: x_labels.png's stem is x_labels, x.png's label map would be x_labels.png
    labels = tmp_path / "x_labels.png"
    shutil.copy(EXAMPLE, labels)
    assert "--out-dir" in _refused(capsys, ["parse", str(labels), str(x), "--out-dir", str(tmp_path)], labels, x)
    # evaluate's sheet over its truth
    pred = _csv(tmp_path / "p.csv", "filename,FaceOcclusion\nx.png,0.1\n")
    assert "--sheet" in _refused(capsys, ["evaluate", "--pred", str(pred), "--truth", str(pred), "--sheet", str(pred),
                                          "--images-root", str(tmp_path)], pred)


def test_folder_mode_out_that_is_an_input_is_refused(tmp_path, small_folder, capsys):
    mine = small_folder / "mine.csv"
    mine.write_text("filename,note\norig.png,keep me\n")
    # named as an input file
    assert "is the input" in _refused(capsys, ["estimate", str(small_folder / "orig.png"), str(mine),
                                               "--out", str(mine)], mine)
    # found in the scanned folder, and not an earlier occparse output
    assert "not an earlier occparse" in _refused(capsys, ["estimate", str(small_folder), "--out", str(mine)], mine)
    assert sorted(p.name for p in small_folder.iterdir()) == ["flipped.png", "gray.png", "mine.csv", "not_a_photo.jpg",
                                                              "orig.png"]


def test_file_name_that_is_not_utf8_gets_a_row_and_resumes(tmp_path, capsys):
    """A name with byte 0xFF crashed folder mode (UnicodeEncodeError, a .partial left behind); it is written with
    a backslash escape, in CSV and Parquet alike, and a resumed run matches it."""
    d = tmp_path / "in"
    d.mkdir()
    odd = d / os.fsdecode(b"b\xffd.png")
    shutil.copy(EXAMPLE, odd)
    (d / "not_a_photo.jpg").write_text("not an image")
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 1  # not_a_photo.jpg fails, the odd name does not
    rows = out.read_text(encoding="utf-8").splitlines()
    assert rows[1].startswith(str(d / "b\\xffd.png") + ",ok,")
    assert not out.with_name("r.csv.partial").exists()
    # resume from a partial holding the odd row only
    out.with_name("r.csv.partial").write_text("\n".join(rows[:2]) + "\n", encoding="utf-8")
    out.unlink()
    capsys.readouterr()
    assert main(["estimate", str(d), "--out", str(out)]) == 1
    assert "resuming: 1 of 2" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8").splitlines() == rows
    if importlib.util.find_spec("pyarrow") is not None:
        import pyarrow.parquet as pq

        pout = tmp_path / "r.parquet"
        assert main(["estimate", str(d), "--out", str(pout)]) == 1
        assert pq.read_table(pout).column("filename").to_pylist()[0] == str(d / "b\\xffd.png")


def test_text_output_of_a_file_name_that_is_not_utf8(tmp_path):
    """The text table under a strict UTF-8 stdout (PYTHONIOENCODING=utf-8) raised UnicodeEncodeError on
    such a name; it writes the name's own bytes back."""
    odd = tmp_path / os.fsdecode(b"b\xffd.png")
    shutil.copy(EXAMPLE, odd)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"}
    run = subprocess.run([sys.executable, "-m", "occparse.cli", "estimate", os.fsdecode(odd)], capture_output=True,
                         env=env, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr.decode("utf-8", "replace")[-500:]
    assert run.stdout.startswith(os.fsencode(odd) + b": 1 face(s)")


# ---------------------------------------------------------------- resuming: settings, Ctrl-C, summary


def _interrupt_after(monkeypatch, name: str, rows: int) -> None:
    """Ctrl-C while the row after ``rows`` finished rows is being made (folder_row or predict_row)."""
    import occparse.runtime.rows as rows_mod

    real, calls = getattr(rows_mod, name), []

    def row(*args):
        calls.append(1)
        if len(calls) > rows:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(rows_mod, name, row)


def test_resume_with_other_settings_is_refused_naming_each(tmp_path, monkeypatch, capsys):
    d = tmp_path / "in"
    d.mkdir()
    for n in ("a.png", "b.png"):
        shutil.copy(EXAMPLE, d / n)
    out = tmp_path / "r.csv"
    partial, sidecar = tmp_path / "r.csv.partial", tmp_path / "r.csv.partial.json"
    # Ctrl-C before the first row: no partial, and the message says so
    with monkeypatch.context() as m:
        _interrupt_after(m, "folder_row", 0)
        assert main(["estimate", str(d), "--out", str(out)]) == 130
    assert "nothing was saved" in capsys.readouterr().err and not partial.exists() and not sidecar.exists()
    with monkeypatch.context() as m:
        _interrupt_after(m, "folder_row", 1)
        assert main(["estimate", str(d), "--out", str(out)]) == 130
    assert "keeps the 1 finished row" in capsys.readouterr().err
    assert json.loads(sidecar.read_text())["settings"]["facial_hair"] == "occluding"
    kept = partial.read_bytes()
    err = _refused(capsys, ["estimate", str(d), "--out", str(out), "--facial-hair", "visible", "--flip-tta"], partial)
    assert "facial_hair occluding (now visible)" in err and "flip_tta false (now true)" in err
    assert "delete" in err and str(partial) in err
    assert partial.read_bytes() == kept and not out.exists()
    # the same settings resume; the summary counts the whole file and says what this run added
    assert main(["estimate", str(d), "--out", str(out)]) == 0
    assert "wrote 2 rows" in capsys.readouterr().out.replace(str(out), "")
    assert not partial.exists() and not sidecar.exists()


def test_predict_resume_checks_settings_and_old_partials_warn(tmp_path, monkeypatch, capsys):
    shutil.copy(EXAMPLE, tmp_path / "a.png")
    csv_in = _csv(tmp_path / "in.csv", "filename,FaceOcclusion,gender\na.png,0.1,F\na.png,0.1,F\n")
    out = tmp_path / "p.csv"
    partial = tmp_path / "p.csv.partial"
    args = ["predict", "--csv", str(csv_in), "--images-root", str(tmp_path), "--out", str(out)]
    with monkeypatch.context() as m:
        _interrupt_after(m, "predict_row", 1)
        assert main(args) == 130
    capsys.readouterr()
    assert "facial_hair occluding (now visible)" in _refused(capsys, [*args, "--facial-hair", "visible"], partial)
    # the same file names under another folder are other images
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(EXAMPLE, other / "a.png")
    moved = [*args[:4], str(other), *args[5:]]
    assert f"images_root {tmp_path.resolve()} (now {other.resolve()})" in _refused(capsys, moved, partial)
    # a partial from before settings were stored: resumed, with a warning
    (tmp_path / "p.csv.partial.json").unlink()
    assert main(args) == 0
    cap = capsys.readouterr()
    assert "no record of its settings" in cap.err and "resuming: 1 of 2" in cap.err
    assert "wrote 2 rows" in cap.out and "1 added this run, 1 resumed" in cap.out


def test_predict_keeps_a_row_with_an_empty_file_name(tmp_path, capsys):
    """One output row per input row: an empty name was dropped, shifting every later row."""
    shutil.copy(EXAMPLE, tmp_path / "a.png")
    csv_in = _csv(tmp_path / "in.csv", "filename,FaceOcclusion,gender\na.png,0.1,F\n,0.1,M\na.png,0.1,F\n")
    out = tmp_path / "p.csv"
    assert main(["predict", "--csv", str(csv_in), "--images-root", str(tmp_path), "--out", str(out)]) == 1
    rows = list(csv.DictReader(out.open()))
    assert [(r["filename"], r["status"]) for r in rows] == [("a.png", "ok"), ("", "missing"), ("a.png", "ok")]
    assert "missing 1" in capsys.readouterr().out


# ---------------------------------------------------------------- small argument and input slips


@pytest.mark.parametrize("argv", [
    ["estimate", str(EXAMPLE), "--all-faces", "--max-faces", "0"],
    ["estimate", str(EXAMPLE), "--all-faces", "--max-faces", "-1"],
    ["parse", str(EXAMPLE), "--out-dir", "{tmp}/p", "--max-faces", "0"],
    ["estimate", "{tmp}", "--out", "{tmp}/r.csv", "--json"],
])
def test_unusable_options_are_refused(tmp_path, capsys, argv):
    line = _refused(capsys, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert ("at least 1" in line) if "--max-faces" in argv else ("--json" in line)
    assert sorted(tmp_path.iterdir()) == []


def test_folder_mode_rows_for_broken_links_and_multi_frame_files(tmp_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    (d / "gone.png").symlink_to(tmp_path / "nowhere.png")
    Image.fromarray(_astronaut()).save(d / "anim.gif", save_all=True,
                                       append_images=[Image.fromarray(np.zeros((512, 512, 3), np.uint8))])
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 1
    with open(out, newline="") as f:
        rows = {Path(r["filename"]).name: r for r in csv.DictReader(f)}
    assert rows["gone.png"]["status"] == "missing" and "broken symbolic link" in rows["gone.png"]["message"]
    assert rows["anim.gif"]["status"] == "ok" and "first of 2 frames" in rows["anim.gif"]["message"]


@pytest.mark.parametrize("text,hint", [
    ("Filename,FaceOcclusion\na.png,0.1\n", "'Filename'"),
    ("filename ,FaceOcclusion\na.png,0.1\n", "'filename '"),
    ("filename;FaceOcclusion;gender\na.png;0.1;F\n", "semicolons"),
    ("filename\tFaceOcclusion\na.png\t0.1\n", "tabs"),
])
def test_predict_csv_without_filename_lists_the_columns_found(tmp_path, capsys, text, hint):
    src = _csv(tmp_path / "in.csv", text)
    line = _refused(capsys, ["predict", "--csv", str(src), "--images-root", str(tmp_path), "--out",
                             str(tmp_path / "p.csv")])
    assert "found the column(s)" in line and hint in line


def test_auto_picture_never_replaces_a_file_occparse_did_not_write(tmp_path, capsys):
    photo = tmp_path / "p.png"
    Image.fromarray(_astronaut()).save(photo)
    mine = tmp_path / "p_occlusion.png"
    mine.write_text("the user's own notes")
    assert main(["estimate", str(photo), "--visualize"]) == 2
    assert "not a picture occparse wrote" in _one_error_line(capsys.readouterr().err)
    assert mine.read_text() == "the user's own notes"
    mine.unlink()
    assert main(["estimate", str(photo), "--visualize"]) == 0
    assert Image.open(mine).info.get("Software") == "occparse"
    assert main(["estimate", str(photo), "--visualize"]) == 0  # its own picture is replaced on a rerun


def test_text_output_says_how_many_faces_it_shows(tmp_path, capsys):
    astro = _astronaut()
    canvas = np.full((512, 1100, 3), 128, np.uint8)
    canvas[:, :512] = astro
    canvas[:, 560:1072] = astro[:, ::-1]
    photo = tmp_path / "two.png"
    Image.fromarray(canvas).save(photo)
    assert main(["estimate", str(photo)]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "2 face(s), 1 shown (--all-faces for every face)" in head
    assert main(["estimate", str(photo), "--all-faces"]) == 0
    assert "shown" not in capsys.readouterr().out.splitlines()[0]
