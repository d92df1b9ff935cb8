"""Folder mode as a user meets it: only image files become rows, a complete output is not recomputed,
rows reach the output while a run goes on, and a closed stdout never costs the picture."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from occparse.cli import main

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "examples" / "astronaut.png"


def _folder(tmp_path: Path, photo: str = "a.png", others: dict[str, bytes] | None = None) -> Path:
    """``tmp_path/in`` holding the example photo as ``photo`` and ``others`` (name -> bytes) beside it."""
    d = tmp_path / "in"
    d.mkdir()
    Image.open(ASTRONAUT).save(d / photo)
    for name, data in (others or {}).items():
        (d / name).write_bytes(data)
    return d


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_folder_reads_image_files_only_and_says_how_many_it_skipped(tmp_path, capsys):
    d = _folder(tmp_path, "photo.png", {".DS_Store": b"\x00\x00\x00\x01Bud1", "notes.txt": b"camera settings"})
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 0
    assert "skipped 2 files without an image extension" in capsys.readouterr().err
    rows = _rows(out)
    assert [Path(r["filename"]).name for r in rows] == ["photo.png"] and rows[0]["status"] == "ok"


def test_a_broken_file_with_an_image_extension_is_still_a_row(tmp_path):
    d = _folder(tmp_path, others={"b.jpg": b"this is not a JPEG"})
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 1
    status = {Path(r["filename"]).name: r["status"] for r in _rows(out)}
    assert status == {"a.png": "ok", "b.jpg": "not_an_image"}


def test_rerun_of_a_complete_output_says_so_and_keeps_it(tmp_path, capsys):
    d = _folder(tmp_path)
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 0
    before = out.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["estimate", str(d), "--out", str(out)]) == 0
    assert "already complete" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == before  # not rewritten
    # other settings: the output is computed again, saying why
    assert main(["estimate", str(d), "--out", str(out), "--facial-hair", "visible"]) == 0
    err = capsys.readouterr().err
    assert "already complete" not in err and out.stat().st_mtime_ns != before
    assert "other settings (facial_hair occluding (now visible)): computing it again" in err
    # another input set: computed again too
    Image.open(ASTRONAUT).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(d / "b.png")
    assert main(["estimate", str(d), "--out", str(out), "--facial-hair", "visible"]) == 0
    assert len(_rows(out)) == 2
    # --overwrite recomputes a complete output
    before = out.stat().st_mtime_ns
    assert main(["estimate", str(d), "--out", str(out), "--facial-hair", "visible", "--overwrite"]) == 0
    assert out.stat().st_mtime_ns != before


def test_part_filled_batches_run_without_waiting_for_a_full_one(monkeypatch):
    """Rows must reach the writer while the run goes on (Ctrl-C keeps them), whatever --batch is."""
    from occparse.runtime import batch
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    est = Estimator(EstimatorOptions())
    sizes: list[int] = []
    real = est.batch_finish
    monkeypatch.setattr(est, "batch_finish", lambda buf: (sizes.append(len(buf)), real(buf))[1])
    paths = [ASTRONAUT] * 3
    results = list(batch.analyses(est, paths, batch_size=64, max_wait_s=0.0))
    assert len(results) == 3 and sizes == [1, 1, 1]


def test_closed_stdout_is_quiet_and_still_writes_the_picture(tmp_path):
    pic = tmp_path / "out.png"
    script = (f"{sys.executable} -m occparse estimate {ASTRONAUT} --visualize {pic} | head -c 1 >/dev/null; "
              "exit ${PIPESTATUS[0]}")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 141), done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert pic.is_file() and np.asarray(Image.open(pic)).size > 0


def test_a_rerun_of_a_complete_output_keeps_its_exit_status(tmp_path, capsys):
    d = _folder(tmp_path, others={"b.png": b"not a PNG"})
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 1
    capsys.readouterr()
    assert main(["estimate", str(d), "--out", str(out)]) == 1  # the output still holds a failed row
    assert "1 of them failed" in capsys.readouterr().err


def test_a_symbolic_link_loop_in_a_folder_is_a_row_not_a_crash(tmp_path, capsys):
    d = _folder(tmp_path)
    (d / "loop.jpg").symlink_to(d / "loop.jpg")
    (d / "x.jpg").symlink_to(d / "y.jpg")
    (d / "y.jpg").symlink_to(d / "x.jpg")
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 1
    assert "Traceback" not in capsys.readouterr().err
    status = {Path(r["filename"]).name: r["status"] for r in _rows(out)}
    assert status["a.png"] == "ok" and {status["loop.jpg"], status["x.jpg"], status["y.jpg"]} <= {"missing", "unreadable"}


def test_named_pipes_in_a_folder_are_rows_or_skipped_never_a_hang(tmp_path, capsys):
    import os

    d = _folder(tmp_path)
    os.mkfifo(d / "pipe.jpg")  # opening it would wait for a writer forever
    os.mkfifo(d / "pipe")
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 1
    status = {Path(r["filename"]).name: r["status"] for r in _rows(out)}
    assert status["a.png"] == "ok" and status["pipe.jpg"] == "unreadable" and "pipe" not in status
    assert "skipped 1 file without an image extension" in capsys.readouterr().err


def test_ctrl_c_with_worker_processes_stops_promptly_and_keeps_rows(tmp_path):
    """SIGINT goes to the whole process group, as a terminal sends it: the worker processes ignore it and
    the parent stops the pool (a worker killed while holding the pool's queue lock hung the parent)."""
    d = tmp_path / "in"
    d.mkdir()
    img = Image.open(ASTRONAUT)
    for i in range(120):
        img.save(d / f"{i:03d}.png")
    out = tmp_path / "r.csv"
    partial = tmp_path / "r.csv.partial"
    p = subprocess.Popen([sys.executable, "-m", "occparse", "estimate", str(d), "--out", str(out), "--workers", "2",
                          "--batch", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and p.poll() is None:
            if partial.is_file() and partial.read_text().count("\n") >= 3:
                break
            time.sleep(0.2)
        assert p.poll() is None, p.communicate()
        os.killpg(p.pid, signal.SIGINT)
        time.sleep(0.5)  # an impatient user presses it again while occparse shuts down
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, err
    assert "interrupted (Ctrl-C)" in err and "error:" not in err and "Traceback" not in err
    assert "Exception ignored" not in err
    assert len(_rows(partial)) >= 2 and not out.exists()


def test_an_output_occparse_did_not_write_is_never_replaced_without_overwrite(tmp_path, capsys):
    d = _folder(tmp_path)
    mine = tmp_path / "results.csv"
    mine.write_text("my,important,data\n1,2,3\n")
    assert main(["estimate", str(d), "--out", str(mine)]) == 2
    assert "is not an occparse output" in capsys.readouterr().err
    assert mine.read_text() == "my,important,data\n1,2,3\n"
    truth = tmp_path / "truth.csv"
    truth.write_text(f"filename,FaceOcclusion,gender\n{ASTRONAUT.name},0.1,F\n")
    csv_in = tmp_path / "in.csv"
    csv_in.write_text(f"filename\n{ASTRONAUT.name}\n")
    assert main(["predict", "--csv", str(csv_in), "--images-root", str(ASTRONAUT.parent), "--out", str(truth)]) == 2
    assert truth.read_text().startswith("filename,FaceOcclusion,gender\n")  # a truth file kept
    assert main(["estimate", str(d), "--out", str(mine), "--overwrite"]) == 0  # replaced when asked
    assert _rows(mine)[0]["status"] == "ok"
    capsys.readouterr()
    assert main(["estimate", str(d), "--out", str(mine)]) == 0  # occparse's own output: a rerun, not a refusal
    assert "already complete" in capsys.readouterr().err


def test_a_rerun_after_a_photo_changed_computes_again(tmp_path, capsys):
    d = _folder(tmp_path)
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 0
    before = _rows(out)[0]["occlusion"]
    rgb = np.asarray(Image.open(ASTRONAUT).convert("RGB")).copy()
    rgb[rgb.shape[0] // 3 :] = 0  # the same name, another photo: the lower face blacked out
    Image.fromarray(rgb).save(d / "a.png")
    os.utime(d / "a.png", ns=(time.time_ns(), time.time_ns() + 10**9))  # a time the file system surely tells apart
    capsys.readouterr()
    main(["estimate", str(d), "--out", str(out)])
    assert "input files changed" in capsys.readouterr().err
    assert _rows(out)[0]["occlusion"] != before


def test_parse_never_replaces_a_label_picture_it_did_not_write(tmp_path, capsys):
    out = tmp_path / "p"
    out.mkdir()
    mine = out / f"{ASTRONAUT.stem}_labels.png"
    mine.write_bytes(b"mine")
    assert main(["parse", str(ASTRONAUT), "--out-dir", str(out)]) == 2
    assert "occparse did not write" in capsys.readouterr().err and mine.read_bytes() == b"mine"
    mine.unlink()
    assert main(["parse", str(ASTRONAUT), "--out-dir", str(out)]) == 0
    assert main(["parse", str(ASTRONAUT), "--out-dir", str(out)]) == 0  # its own files: replaced, with a note
    assert "replacing" in capsys.readouterr().err


def test_a_missing_input_folder_is_a_command_error_and_a_missing_image_a_row(tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["estimate", str(tmp_path / "nosuchdir") + "/", "--out", str(out)]) == 2
    assert main(["estimate", str(tmp_path / "nosuchdir"), "--out", str(out)]) == 2
    assert "no such folder or file" in capsys.readouterr().err and not out.exists()
    assert main(["estimate", str(ASTRONAUT), str(tmp_path / "gone.jpg"), "--out", str(out)]) == 1
    assert [r["status"] for r in _rows(out)] == ["ok", "missing"]


def test_bad_batch_options_and_a_predict_output_that_is_not_csv_are_refused(tmp_path, capsys):
    d = _folder(tmp_path)
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out), "--workers", "-1"]) == 2
    assert main(["estimate", str(d), "--out", str(out), "--batch", "0"]) == 2
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("filename\na.png\n")
    for name in ("p.parquet", "p.txt"):
        assert main(["predict", "--csv", str(csv_in), "--images-root", str(d), "--out", str(tmp_path / name)]) == 2
        assert not (tmp_path / name).exists()
    assert "predict writes CSV" in capsys.readouterr().err


def test_a_linked_folder_is_named_not_silently_dropped(tmp_path, capsys):
    d = _folder(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    Image.open(ASTRONAUT).save(elsewhere / "b.png")
    (d / "linked").symlink_to(elsewhere, target_is_directory=True)
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 0
    assert "1 symbolic link to a folder" in capsys.readouterr().err
    assert [Path(r["filename"]).name for r in _rows(out)] == ["a.png"]


def test_parse_replaces_its_own_unmarked_label_maps_from_before(tmp_path, capsys):
    out = tmp_path / "p"
    out.mkdir()
    Image.fromarray(np.array([[0, 1], [2, 4]], np.uint8)).save(out / f"{ASTRONAUT.stem}_labels.png")  # no mark
    Image.new("RGB", (4, 4)).save(out / f"{ASTRONAUT.stem}_overlay.png")
    assert main(["parse", str(ASTRONAUT), "--out-dir", str(out)]) == 0
    assert "replacing" in capsys.readouterr().err


def test_the_ray_engine_refuses_a_user_file_at_out_before_any_work(tmp_path, capsys):
    d = _folder(tmp_path)
    mine = tmp_path / "mine.csv"
    mine.write_text("my,data\n")
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("filename\na.png\n")
    assert main(["predict", "--engine", "ray", "--csv", str(csv_in), "--images-root", str(d), "--out", str(mine)]) == 2
    assert main(["estimate", str(d), "--engine", "ray", "--out", str(mine)]) == 2
    assert main(["estimate", str(tmp_path / "nosuchdir"), "--engine", "ray", "--out", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("is not an occparse output") == 2 and "no such folder" in err and mine.read_text() == "my,data\n"


def test_stopping_skips_the_queued_work_of_the_worker_processes():
    """On Ctrl-C the parent lets the queued tasks end before it shuts the pool down; the stop event makes
    them return at once instead of meshing every queued image (and writing its crops to the result pipe)."""
    from collections import deque

    from occparse import EstimatorOptions
    from occparse.runtime.batch import _prepare_in_worker, _wind_down, worker_pool

    with worker_pool(EstimatorOptions(), 1) as pool:
        first = pool.apply_async(_prepare_in_worker, (str(ASTRONAUT),))
        assert first.get(timeout=120) is not None  # a real image is prepared while running
        pending = deque(pool.apply_async(_prepare_in_worker, (str(ASTRONAUT),)) for _ in range(40))
        t0 = time.monotonic()
        _wind_down(pool, pending)
        assert all(r.ready() for r in pending)
        assert sum(r.get() is None for r in pending) >= 35  # skipped, apart from those already started
        assert time.monotonic() - t0 < 10


def test_rows_end_in_lf_and_a_cut_short_jpeg_is_corrupt_not_a_non_image(tmp_path):
    """A download cut short is its own status (fetch it again), and the CSV has Unix line ends."""
    import io

    buf = io.BytesIO()
    Image.open(ASTRONAUT).convert("RGB").save(buf, "JPEG", quality=90)
    d = _folder(tmp_path, others={"cut.jpg": buf.getvalue()[: len(buf.getvalue()) // 2], "t.jpg": b"text"})
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 1
    status = {Path(r["filename"]).name: r["status"] for r in _rows(out)}
    assert status == {"a.png": "ok", "cut.jpg": "corrupt", "t.jpg": "not_an_image"}
    assert b"\r" not in out.read_bytes() and out.read_bytes().count(b"\n") == 4


def test_overwrite_discards_a_partial_run_with_other_settings(tmp_path, capsys):
    from occparse.runtime.resumable import ResumableWriter
    from occparse.runtime.rows import FOLDER_COLUMNS

    d = _folder(tmp_path)
    out = tmp_path / "r.csv"
    w = ResumableWriter(out, FOLDER_COLUMNS, settings={"weights": "another parser"})
    w.write({"filename": str(d / "a.png"), "status": "ok"})
    w.close()
    assert main(["estimate", str(d), "--out", str(out)]) == 2  # refused: the rows would mix two settings
    assert "other settings" in capsys.readouterr().err and not out.exists()
    assert main(["estimate", str(d), "--out", str(out), "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "--overwrite: discarding the partial run" in err and "Rerun" not in err
    rows = _rows(out)
    assert len(rows) == 1 and rows[0]["status"] == "ok" and rows[0]["occlusion"]
    assert not Path(str(out) + ".partial").exists()


def test_a_new_output_folder_is_announced_and_folder_options_on_one_image_warn(tmp_path, capsys):
    d = _folder(tmp_path)
    out = tmp_path / "new" / "deeper" / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 0
    assert f"folder {out.parent} does not exist; creating it" in capsys.readouterr().err and out.is_file()
    pic = tmp_path / "pics" / "a.png"
    assert main(["estimate", str(d / "a.png"), "--workers", "2", "--overwrite", "--visualize", str(pic)]) == 0
    err = capsys.readouterr().err
    assert "warning: --workers, --overwrite are for folder mode (--out); ignored for single images" in err
    assert f"folder {pic.parent} does not exist; creating it" in err and pic.is_file()


def test_one_folder_named_two_ways_is_the_same_input(tmp_path, capsys, monkeypatch):
    """``../in`` and ``/abs/in`` are the same files: a complete output is not recomputed, a partial one resumes."""
    from occparse.runtime.resumable import ResumableWriter, StalePartialError, inputs_digest
    from occparse.runtime.rows import FOLDER_COLUMNS

    d = _folder(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    out = tmp_path / "r.csv"
    assert main(["estimate", "../in", "--out", str(out)]) == 0
    before = out.stat().st_mtime_ns
    capsys.readouterr()
    assert main(["estimate", str(d), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "already complete" in err and out.stat().st_mtime_ns == before
    assert "named in its filename column as first given (e.g. ../in/a.png)" in err
    # a partial run resumes across the two names; another folder with the same file names does not
    Image.open(ASTRONAUT).save(d / "b.png")
    rel, absolute = ["../in/a.png", "../in/b.png"], [str(d / "a.png"), str(d / "b.png")]
    part = tmp_path / "p.csv"

    def writer(names, renamable=True):
        return ResumableWriter(part, FOLDER_COLUMNS, settings={"s": 1}, inputs_digest=inputs_digest(names),
                               renamable=renamable)

    w = writer(rel)
    assert w.resume_check(rel) == 0
    w.write({"filename": rel[0], "status": "ok"})
    w.close()
    with pytest.raises(StalePartialError, match="other inputs"):  # predict's names are CSV keys: never renamed
        writer(absolute, renamable=False).resume_check(absolute)
    w = writer(absolute)
    assert w.resume_check(absolute) == 1 and "named another way" in w.note
    assert [r["filename"] for r in _rows(Path(str(part) + ".partial"))] == [absolute[0]]  # one way of naming
    other = tmp_path / "other"
    other.mkdir()
    for name in ("a.png", "b.png"):
        (other / name).write_bytes((d / name).read_bytes())
    copies = [str(other / "a.png"), str(other / "b.png")]
    with pytest.raises(StalePartialError, match="other inputs"):
        writer(copies).resume_check(copies)


def test_folder_rows_carry_the_detector_score_and_the_parser_confidence(tmp_path):
    """The two scores the text and JSON outputs give are columns too, each 0..1, and a failed row leaves them empty."""
    d = _folder(tmp_path, others={"b.jpg": b"not a picture"})
    out = tmp_path / "r.csv"
    assert main(["estimate", str(d), "--out", str(out)]) == 1
    rows = {Path(r["filename"]).name: r for r in _rows(out)}
    ok = rows["a.png"]
    assert 0.0 < float(ok["detector_score"]) <= 1.0 and 0.0 < float(ok["parser_confidence"]) <= 1.0
    assert rows["b.jpg"]["detector_score"] == rows["b.jpg"]["parser_confidence"] == ""
