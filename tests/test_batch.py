"""Batch output: atomic, resumable, one row per input row in order."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from occparse.runtime.batch import BatchInputError, read_input_csv
from occparse.runtime.resumable import ResumableWriter, foreign_table


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_output_appears_only_when_finished(tmp_path):
    out = tmp_path / "preds.csv"
    w = ResumableWriter(out, flush_every=1)
    w.write({"filename": "a.jpg", "FaceOcclusion": "0.1", "status": "ok"})
    assert not out.exists() and w.partial.exists()
    w.finish()
    assert out.exists() and not w.partial.exists()
    assert _rows(out) == [{"filename": "a.jpg", "FaceOcclusion": "0.1", "status": "ok"}]


def test_resume_drops_a_torn_line_and_continues(tmp_path):
    out = tmp_path / "preds.csv"
    w = ResumableWriter(out, flush_every=1)
    for name in ("a.jpg", "b.jpg"):
        w.write({"filename": name, "FaceOcclusion": "0.2", "status": "ok"})
    w.close()
    with open(w.partial, "a") as f:  # a crash in the middle of a row
        f.write("c.jpg,0.3")
    w2 = ResumableWriter(out)
    assert w2.resume_check(["a.jpg", "b.jpg", "c.jpg", "d.jpg"]) == 2
    for name in ("c.jpg", "d.jpg"):
        w2.write({"filename": name, "FaceOcclusion": "", "status": "no_face"})
    w2.finish()
    rows = _rows(out)
    assert [r["filename"] for r in rows] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    assert rows[2]["FaceOcclusion"] == "" and rows[2]["status"] == "no_face"


def test_resume_refuses_another_input(tmp_path):
    out = tmp_path / "preds.csv"
    w = ResumableWriter(out, flush_every=1)
    w.write({"filename": "x.jpg", "FaceOcclusion": "0.2", "status": "ok"})
    w.close()
    with pytest.raises(BatchInputError, match="written for other inputs"):
        ResumableWriter(out).resume_check(["a.jpg"])


def test_input_csv_needs_filename(tmp_path):
    p = tmp_path / "in.csv"
    p.write_text("name,x\na,1\n")
    with pytest.raises(BatchInputError, match="filename"):
        read_input_csv(p, tmp_path)
    with pytest.raises(BatchInputError, match="no such file"):
        read_input_csv(tmp_path / "nope.csv", tmp_path)
    p.write_text("filename,FaceOcclusion,gender\nimg/a.jpg,0.1,F\n")
    rows = read_input_csv(p, tmp_path / "root")
    assert rows[0].path == tmp_path / "root" / "img" / "a.jpg"


def test_worker_pool_keeps_order_with_a_small_window(tmp_path):
    """prepared() refills a bounded window: every input comes back once, in input order."""
    from types import SimpleNamespace

    from occparse.runtime.batch import prepared
    from occparse.runtime.pipeline import EstimatorOptions

    face = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
    junk = tmp_path / "junk.jpg"
    junk.write_text("not an image")
    paths = [face, junk, face, junk, junk, face, junk]
    est = SimpleNamespace(options=EstimatorOptions(max_faces=1, detector_scores=False))
    out = list(prepared(est, paths, workers=2, max_inflight=2))
    assert [Path(p.path).name for p in out] == [p.name for p in paths]
    assert [bool(p.faces) for p in out] == [p == face for p in paths]


def test_input_csv_refuses_shifted_and_swallowed_rows(tmp_path):
    shifted = tmp_path / "shifted.csv"
    shifted.write_text("filename,gender\na.jpg,F\nb,c.jpg,M\n")  # an unquoted comma in a file name
    with pytest.raises(BatchInputError, match="line 3 has 3 fields but the header names 2"):
        read_input_csv(shifted, tmp_path)
    swallowed = tmp_path / "swallowed.csv"
    swallowed.write_text('filename,gender\na.jpg,F\n"b.jpg,M\nc.jpg,F\n')  # a quote never closed
    with pytest.raises(BatchInputError, match="row 2's file name holds a line break"):
        read_input_csv(swallowed, tmp_path)
    fine = tmp_path / "fine.csv"
    fine.write_text('filename,gender\na.jpg,F,\n"b,c.jpg",M\nd.jpg\n')  # a trailing comma, a quoted comma, a short row
    assert [r.filename for r in read_input_csv(fine, tmp_path)] == ["a.jpg", "b,c.jpg", "d.jpg"]


def test_a_resume_over_changed_inputs_starts_over(tmp_path):
    out = tmp_path / "preds.csv"
    w = ResumableWriter(out, flush_every=1, settings={"weights": "w"}, inputs_digest="before")
    w.write({"filename": "a.jpg", "FaceOcclusion": "0.2", "status": "ok"})
    w.close()  # interrupted; then a.jpg is replaced
    w2 = ResumableWriter(out, settings={"weights": "w"}, inputs_digest="after")
    assert w2.resume_check(["a.jpg", "b.jpg"]) == 0  # started over: a.jpg's row may be of the old photo
    assert "input files changed since the interrupted run" in w2.note and "computed again" in w2.note
    for name in ("a.jpg", "b.jpg"):
        w2.write({"filename": name, "FaceOcclusion": "0.1", "status": "ok"})
    w2.finish()
    assert [r["filename"] for r in _rows(out)] == ["a.jpg", "b.jpg"]
    w3 = ResumableWriter(out, settings={"weights": "w"}, inputs_digest="after")
    assert w3.complete_rows(["a.jpg", "b.jpg"]) == (2, 0)  # complete and current


def test_a_user_file_at_out_is_foreign_even_beside_an_old_record(tmp_path):
    out = tmp_path / "r.csv"
    w = ResumableWriter(out, settings={"weights": "w"})
    w.write({"filename": "a.jpg", "FaceOcclusion": "0.2", "status": "ok"})
    w.finish()
    assert not foreign_table(out) and w.record.exists()
    out.write_text("my,data\n1,2\n")  # the user's own file now, the record still beside it
    assert foreign_table(out)
