"""`occparse estimate` and `occparse predict` flows: statuses, exit codes, order, resume.

These use a tiny randomly initialised parser built here (the numbers are meaningless; the flow is
what is tested). The shipped models' accuracy is tested in test_shipped_models.py.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from occparse.cli import main

torch = pytest.importorskip("torch", reason="needs the [train] extra (torch) to build a test parser")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def tiny_parser(tmp_path_factory):
    from occparse.train.bisenet import BiSeNet
    from occparse.train.export import export_onnx

    torch.manual_seed(0)
    return export_onnx(BiSeNet(4, width=0.25), tmp_path_factory.mktemp("m") / "tiny.onnx", 64)


@pytest.fixture(scope="module")
def spec64(tmp_path_factory):
    p = tmp_path_factory.mktemp("s") / "spec.json"
    p.write_text(json.dumps({"input_size": 64, "mean": [0.5] * 3, "std": [0.5] * 3, "class_map": [0, 1, 2, 3]}))
    return p


def _inputs(tmp_path):
    face = tmp_path / "face.png"
    shutil.copy(EXAMPLE, face)
    (tmp_path / "text.jpg").write_text("hello")
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    return face


def test_estimate_json_schema_and_picture(tmp_path, tiny_parser, spec64, capsys):
    face = _inputs(tmp_path)
    pic = tmp_path / "vis.png"
    rc = main(["estimate", str(face), "--json", "--visualize", str(pic), "--parser", str(tiny_parser),
               "--parser-spec", str(spec64)])
    assert rc == 0
    d = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert d["status"] == "ok" and d["n_faces"] == 1
    f = d["faces"][0]
    assert 0.0 <= f["occlusion"] <= 1.0 and 0.0 <= f["geometric"] <= 1.0
    assert set(f["regions"]) == {"forehead", "left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek", "chin"}
    assert set(f["occluded_by"]) == {"hair", "facial_hair", "occluder", "background"}
    assert sum(f["occluded_by"].values()) == pytest.approx(1.0, abs=1e-3) or sum(f["occluded_by"].values()) == 0
    x0, y0, x1, y1 = f["box"]
    assert 0 <= x0 < x1 <= d["width"] and 0 <= y0 < y1 <= d["height"]
    img = Image.open(pic)
    assert img.size[0] > d["width"]  # picture plus the side panel


@pytest.mark.parametrize("name,status", [("text.jpg", "not_an_image"), ("grey.png", "no_face"), ("missing.png", "missing")])
def test_estimate_bad_single_input_is_one_line_and_nonzero(tmp_path, tiny_parser, spec64, capsys, name, status):
    _inputs(tmp_path)
    rc = main(["estimate", str(tmp_path / name), "--parser", str(tiny_parser), "--parser-spec", str(spec64)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1
    assert len(err) == 1 and status in err[0]
    assert "Traceback" not in err[0]


def test_predict_rows_in_order_with_status_and_resume(tmp_path, tiny_parser, spec64, capsys):
    face = _inputs(tmp_path)
    names = [face.name, "text.jpg", "gone.jpg", "grey.png", face.name]
    csv_in = tmp_path / "in.csv"
    csv_in.write_text("filename,FaceOcclusion,gender\n" + "".join(f"{n},0.1,F\n" for n in names))
    out = tmp_path / "preds.csv"
    args = ["predict", "--csv", str(csv_in), "--images-root", str(tmp_path), "--out", str(out),
            "--parser", str(tiny_parser), "--parser-spec", str(spec64)]
    assert main(args) == 1  # some rows failed; the output is still complete
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["filename"] for r in rows] == names
    assert [r["status"] for r in rows] == ["ok", "not_an_image", "missing", "no_face", "ok"]
    assert rows[0]["FaceOcclusion"] != "" and rows[1]["FaceOcclusion"] == "" and rows[3]["FaceOcclusion"] == ""
    first = out.read_text()

    # a run that died after two rows: the partial file holds them, the rerun finishes the rest
    out.unlink()
    partial = out.with_name(out.name + ".partial")
    partial.write_text("".join(first.splitlines(keepends=True)[:3]) + "grey.p")  # header + 2 rows + a torn line
    assert main(args) == 1
    assert "resuming: 2 of 5" in capsys.readouterr().err
    assert out.read_text() == first
    assert not partial.exists()


def test_assume_aligned_gives_an_estimate_where_the_mesh_finds_nothing(tmp_path, tiny_parser, spec64, capsys):
    _inputs(tmp_path)
    rc = main(["estimate", str(tmp_path / "grey.png"), "--json", "--assume-aligned", "--parser", str(tiny_parser),
               "--parser-spec", str(spec64)])
    d = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert rc == 0 and d["status"] == "ok"
    assert "canonical" in d["message"]
    # the canonical face sits in the middle of the crop, as aligned faces do
    x0, y0, x1, y1 = d["faces"][0]["box"]
    assert 20 < (x0 + x1) / 2 < 180 and 20 < (y0 + y1) / 2 < 180


def test_folder_mode_with_workers_scores_every_file_once(tmp_path, tiny_parser, spec64):
    face = _inputs(tmp_path)
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        shutil.copy(face, folder / f"f{i}.png")
    shutil.copy(tmp_path / "text.jpg", folder / "broken.jpg")
    shutil.copy(tmp_path / "grey.png", folder / "grey.png")
    out = tmp_path / "res.csv"
    rc = main(["estimate", str(folder), "--out", str(out), "--workers", "2", "--batch", "2",
               "--parser", str(tiny_parser), "--parser-spec", str(spec64)])
    assert rc == 1  # broken.jpg and grey.png failed; every row is still written
    with open(out, newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(Path(r["filename"]).name for r in rows) == sorted(p.name for p in folder.iterdir())
    status = {Path(r["filename"]).name: r["status"] for r in rows}
    assert status["broken.jpg"] == "not_an_image" and status["grey.png"] == "no_face"
    assert all(status[f"f{i}.png"] == "ok" for i in range(3))


def test_flip_tta_reaches_the_parser_and_estimate_runs(tmp_path, tiny_parser, spec64, capsys):
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    est = Estimator(EstimatorOptions(parser=str(tiny_parser), parser_spec=str(spec64), parser_flip=True, use_learned=False))
    assert est.parser.flip and not Estimator(EstimatorOptions(parser=str(tiny_parser), parser_spec=str(spec64),
                                                              use_learned=False)).parser.flip
    face = _inputs(tmp_path)
    rc = main(["estimate", str(face), "--json", "--flip-tta", "--parser", str(tiny_parser), "--parser-spec", str(spec64)])
    assert rc == 0
    d = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert d["status"] == "ok" and 0.0 <= d["faces"][0]["geometric"] <= 1.0


def test_visualize_into_a_folder_names_one_picture_per_image(tmp_path, capsys):
    """``--visualize DIR`` with several images writes NAME_occlusion.png there, and never replaces a file occparse
    did not write; a picture file name with several images is refused before any work."""
    a, b = tmp_path / "a.png", tmp_path / "sub" / "a.jpg"
    b.parent.mkdir()
    Image.open(EXAMPLE).save(a)
    Image.open(EXAMPLE).convert("RGB").save(b)
    pics = tmp_path / "pics"
    assert main(["estimate", str(a), str(b), "--visualize", str(pics)]) == 0
    assert sorted(p.name for p in pics.iterdir()) == ["a.jpg_occlusion.png", "a.png_occlusion.png"]
    assert f"folder {pics} does not exist; creating it" in capsys.readouterr().err
    assert main(["estimate", str(a), str(b), "--visualize", str(pics / "one.png")]) == 2
    assert "names one picture, and there are 2 images" in capsys.readouterr().err
    assert main(["estimate", str(a), "--visualize", ""]) == 2
    assert "--visualize: empty path" in capsys.readouterr().err
    assert main(["estimate", str(a), "--visualize", str(tmp_path / "out")]) == 2  # one image: a file name
    assert f"or {tmp_path / 'out'}/ for a folder" in capsys.readouterr().err
    assert main(["estimate", str(a), "--visualize", str(pics) + "/"]) == 0  # one image into a folder
    assert (pics / "a_occlusion.png").is_file()
    (pics / "a_occlusion.png").write_bytes(b"the user's own file")
    assert main(["estimate", str(a), "--visualize", str(pics)]) == 2
    assert "not a picture occparse wrote" in capsys.readouterr().err
    assert (pics / "a_occlusion.png").read_bytes() == b"the user's own file"


def test_text_output_names_its_scores_and_does_not_split_a_trace(capsys):
    from types import SimpleNamespace

    from occparse.cli.estimate import _hidden_by

    assert main(["estimate", str(EXAMPLE)]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert "detector score 0." in line and "parser confidence 0." in line and " confidence 0." not in line.replace(
        "parser confidence", "")
    shares = SimpleNamespace(hair=1.0, facial_hair=0.0, occluder=0.0, background=0.0)
    trace = SimpleNamespace(occluded_by=shares, out_of_frame=0.0, geometric=0.002)
    assert "not split by cause" in _hidden_by(trace) and "hair 100%" not in _hidden_by(trace)
    assert "hidden by hair 100%" in _hidden_by(SimpleNamespace(occluded_by=shares, out_of_frame=0.0, geometric=0.1))
    # a face the border cuts: its geometric share holds the part outside the frame, which is not split
    cut = SimpleNamespace(occluded_by=shares, out_of_frame=0.2, geometric=0.202)
    assert "not split by cause" in _hidden_by(cut) and _hidden_by(cut).startswith("inside the frame")


def test_a_pose_without_yaw_and_pitch_says_why():
    from types import SimpleNamespace

    from occparse.cli.estimate import _face_facts

    pose = SimpleNamespace(yaw=None, pitch=None, roll=13.0)
    face = SimpleNamespace(pose=pose, subject=True, out_of_frame=0.0, warnings=[])
    line = _face_facts(face)[0]
    assert "pose roll 13 (yaw and pitch not measured" in line
    full = SimpleNamespace(pose=SimpleNamespace(yaw=1.0, pitch=2.0, roll=3.0), subject=True, out_of_frame=0.0,
                           warnings=[])
    assert "not measured" not in _face_facts(full)[0]


@pytest.mark.parametrize("name", ["mine.png", "mine.jpg", "mine.webp", "mine.tiff", "mine.bmp", "mine.gif"])
def test_a_named_picture_replaces_only_a_picture_occparse_wrote(tmp_path, capsys, name):
    """``--visualize PATH`` refuses to replace a file occparse did not write (as --out does), and a rerun
    replaces its own picture in every format it writes (marked, or by the picture's width)."""
    pic = tmp_path / name
    Image.new("RGB", (50, 50), "blue").save(pic)  # the user's own picture, in the same format
    before = pic.read_bytes()
    assert main(["estimate", str(EXAMPLE), "--visualize", str(pic)]) == 2
    assert "is not a picture occparse wrote; it is left as it is" in capsys.readouterr().err
    assert pic.read_bytes() == before
    pic.unlink()
    assert main(["estimate", str(EXAMPLE), "--visualize", str(pic)]) == 0
    with Image.open(pic) as im:
        assert im.width > 50
    capsys.readouterr()
    assert main(["estimate", str(EXAMPLE), "--visualize", str(pic)]) == 0  # its own picture: replaced
    assert main(["estimate", str(EXAMPLE), "--visualize", str(tmp_path / "pic.xyz")]) == 2
    assert "use .png, .jpg, .webp, .tiff, .bmp or .gif" in capsys.readouterr().err
    assert main(["estimate", str(EXAMPLE), "--visualize", str(tmp_path / "pic.pdf")]) == 2  # Pillow writes it; not a picture


def test_an_unmarked_picture_of_occparse_s_width_is_its_own():
    """A JPEG written before the pictures carried the mark is recognised by the picture's width alone."""
    import tempfile

    from occparse.cli.common import own_picture
    from occparse.runtime.visualize import PANEL_W, TILE

    with tempfile.TemporaryDirectory() as d:
        old, other = Path(d) / "old.jpg", Path(d) / "other.jpg"
        Image.new("RGB", (TILE + PANEL_W, 300), "white").save(old)
        Image.new("RGB", (TILE + PANEL_W - 1, 300), "white").save(other)
        assert own_picture(old, TILE + PANEL_W) and not own_picture(other, TILE + PANEL_W)
        (Path(d) / "notes.jpg").write_text("not a picture")
        assert not own_picture(Path(d) / "notes.jpg", TILE + PANEL_W)


def test_workers_are_capped_by_the_inputs_and_the_cores(monkeypatch, capsys):
    import argparse

    from occparse.cli import common

    monkeypatch.setattr(common.os, "cpu_count", lambda: 2)
    assert common.default_workers(999, 23) == 2 * common.MAX_WORKERS_PER_CORE
    assert f"using {2 * common.MAX_WORKERS_PER_CORE}" in capsys.readouterr().err
    assert common.default_workers(20, 3) == 3  # never more processes than inputs
    assert common.default_workers(5, 0) == 1
    assert common.default_workers(0, 500) == 2 and common.default_workers(0, 10) == 1
    assert capsys.readouterr().err == ""
    assert common.batch_args_error(argparse.Namespace(workers=3, batch=8)) is None
    assert "compete for the same cores" in capsys.readouterr().err


def test_ray_only_options_are_named_with_the_local_engine(capsys):
    import argparse

    from occparse.cli.common import warn_ray_only_options

    warn_ray_only_options(argparse.Namespace(engine="local", address=None, shard_rows=0, actors=0))
    assert "--shard-rows is for --engine ray; ignored with the local engine" in capsys.readouterr().err
    warn_ray_only_options(argparse.Namespace(engine="local", address=None, shard_rows=256, actors=0))
    warn_ray_only_options(argparse.Namespace(engine="ray", address="x", shard_rows=0, actors=4))
    assert capsys.readouterr().err == ""
