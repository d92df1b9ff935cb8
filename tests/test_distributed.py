"""The Ray engine (values equal to the local engine's, resuming), --device selection, lazy imports."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest

from occparse.cli import main
from occparse.runtime.session import CPU, CUDA, DeviceError, check_session, select_providers

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason='ray not installed (pip install "occparse[ray]")')


def test_region_columns_match_geometry():
    from occparse.runtime.regions import REGION_NAMES
    from occparse.runtime.rows import REGIONS

    assert REGIONS == REGION_NAMES


# ---------------------------------------------------------------- --device


def test_select_providers():
    assert select_providers("cpu", [CUDA, CPU]) == [CPU]
    assert select_providers("cuda", [CUDA, CPU]) == [CUDA, CPU]
    assert select_providers("auto", [CUDA, CPU]) == [CUDA, CPU]
    assert select_providers("auto", [CPU]) == [CPU]
    with pytest.raises(DeviceError, match="no CUDA provider.*--device cpu"):
        select_providers("cuda", [CPU])
    with pytest.raises(DeviceError):
        select_providers("tpu", [CPU])


def test_session_without_cuda_is_an_error_not_a_fallback():
    class Sess:  # what ONNX Runtime returns when the CUDA provider failed to load: CPU only, a log line
        def get_providers(self):
            return [CPU]

    with pytest.raises(DeviceError, match="could not start its CUDA provider"):
        check_session(Sess(), [CUDA, CPU])
    check_session(Sess(), [CPU])
    check_session(Sess(), None)


@pytest.mark.skipif("CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers(),
                    reason="this machine has CUDA")
@pytest.mark.parametrize("argv", [
    ["estimate", "examples/astronaut.png", "--device", "cuda"],
    ["benchmark", "--device", "cuda", "-n", "1"],
])
def test_cuda_asked_for_and_absent_is_one_line_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA" in err[0] and "--device cpu" in err[0]


def test_runtime_never_imports_ray():
    code = ("import sys, occparse, occparse.cli, occparse.runtime.pipeline, occparse.runtime.batch, occparse.runtime.distributed; "
            "occparse.cli.build_parser('predict'); assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_engine_ray_without_ray_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    (tmp_path / "in.csv").write_text("filename\na.jpg\n")
    rc = main(["predict", "--csv", str(tmp_path / "in.csv"), "--images-root", str(tmp_path), "--out",
               str(tmp_path / "p.parquet"), "--engine", "ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "occparse[ray]" in err[0]
    assert not (tmp_path / "p.parquet").exists()


def test_ray_engine_refuses_non_parquet_and_other_inputs_parts(tmp_path):
    from occparse.runtime.shard_files import EngineError, arrow_table, part_name, plan

    with pytest.raises(EngineError, match="Parquet"):
        plan(["a"], str(tmp_path / "p.csv"))
    out = str(tmp_path / "p.parquet")
    pl = plan(["a", "b", "c"], out, shard_size=2)
    assert pl.todo == [0, 1]
    from occparse.runtime.results import ImageResult, Status
    from occparse.runtime.rows import PREDICT_COLUMNS, predict_row

    t = arrow_table([predict_row("x", ImageResult("x", Status.MISSING))], PREDICT_COLUMNS)
    import pyarrow.parquet as pq

    pq.write_table(t, f"{pl.parts}/{part_name(0)}")
    with pytest.raises(EngineError, match="other files"):
        plan(["a", "b", "c"], out, shard_size=2)
    with pytest.raises(EngineError, match="shard size"):
        plan(["a", "b", "c"], out, shard_size=3)


def test_ray_resume_with_other_settings_is_refused(tmp_path, capsys):
    """OUT.parts/_job.json records the run's settings; kept parts from other settings are not mixed in."""
    import json

    import pyarrow.parquet as pq

    from occparse.runtime.results import ImageResult, Status
    from occparse.runtime.rows import PREDICT_COLUMNS, predict_row
    from occparse.runtime.shard_files import EngineError, arrow_table, part_name, plan

    cols = PREDICT_COLUMNS
    out = str(tmp_path / "p.parquet")
    fp32 = {"weights": "abc", "precision": "fp32", "facial_hair": "occluding"}
    pl = plan(["a", "b", "c"], out, shard_size=2, settings=fp32)
    # nothing kept yet: another run's settings simply replace the record
    pl = plan(["a", "b", "c"], out, shard_size=2, settings={**fp32, "precision": "int8"})
    pl = plan(["a", "b", "c"], out, shard_size=2, settings=fp32)
    rows = [predict_row(n, ImageResult(n, Status.MISSING)) for n in "ab"]
    pq.write_table(arrow_table(rows, cols), f"{pl.parts}/{part_name(0)}")
    assert plan(["a", "b", "c"], out, shard_size=2, settings=fp32).todo == [1]  # same settings: resumed
    with pytest.raises(EngineError, match=r"precision fp32 \(now int8\); facial_hair occluding \(now visible\)"):
        plan(["a", "b", "c"], out, shard_size=2, settings={**fp32, "precision": "int8", "facial_hair": "visible"})
    # parts from before settings were recorded: resumed, with a line saying the settings were not checked
    rec = tmp_path / "p.parquet.parts" / "_job.json"
    rec.write_text(json.dumps({"kind": "predict", "shard_size": 2}))
    assert plan(["a", "b", "c"], out, shard_size=2, settings=fp32).todo == [1]
    assert "no record of its settings" in capsys.readouterr().err
    assert json.loads(rec.read_text())["settings"] == fp32  # from then on, checked
    rec.unlink()  # no record at all: the same
    assert plan(["a", "b", "c"], out, shard_size=2, settings=fp32).todo == [1]
    assert "no record of its settings" in capsys.readouterr().err and rec.exists()
    # a part written with other columns (an older occparse's) is not mixed in
    pq.write_table(arrow_table([{c: r[c] for c in cols[:4]} for r in rows], cols[:4]), f"{pl.parts}/{part_name(0)}")
    with pytest.raises(EngineError, match="other columns"):
        plan(["a", "b", "c"], out, shard_size=2, settings=fp32)


def test_ray_resume_scores_shards_with_changed_photos_again(tmp_path, capsys):
    """Each part records its files' sizes and times as read: a photo replaced under the same name (or gone)
    since then sends its shard back to be scored; the other shards are kept. Local paths and URIs alike."""
    import os

    import pyarrow.parquet as pq

    from occparse.runtime.results import ImageResult, Status
    from occparse.runtime.rows import predict_row
    from occparse.runtime.shard_files import INPUTS_KEY, plan, sources_digest, write_part

    photos = tmp_path / "photos"
    photos.mkdir()
    names = ["a.jpg", "b.jpg", "c.jpg"]
    for n in names:
        (photos / n).write_bytes(b"first " + n.encode())
    for uri in (False, True):
        sources = [("file://" if uri else "") + str(photos / n) for n in names]
        out = str(tmp_path / f"p{int(uri)}.parquet")
        pl = plan(names, out, shard_size=2, sources=sources)
        assert pl.todo == [0, 1]
        for k in pl.todo:  # what an actor writes: the digest taken before it read the shard's files
            rows = [predict_row(n, ImageResult(n, Status.MISSING)) for n in pl.shard(names, k)]
            write_part(pl.parts, k, rows, "predict", sources_digest(pl.shard(sources, k)))
        assert plan(names, out, shard_size=2, sources=sources).todo == []
        assert "changed" not in capsys.readouterr().err
        b = photos / "b.jpg"
        old = b.stat()
        b.write_bytes(b"another photo")  # replaced under the same name
        assert plan(names, out, shard_size=2, sources=sources).todo == [0]
        assert "1 kept shard(s) hold photos that changed" in capsys.readouterr().err
        assert not os.path.exists(f"{pl.parts}/part-000000.parquet")  # its stale rows are gone
        assert pq.read_schema(f"{pl.parts}/part-000001.parquet").metadata[INPUTS_KEY]  # the other is kept
        b.write_bytes(b"first b.jpg")
        os.utime(b, ns=(old.st_atime_ns, old.st_mtime_ns))
    # a photo gone is a change too
    sources = [str(photos / n) for n in names]
    out = str(tmp_path / "p0.parquet")
    write_part(f"{out}.parts", 0, [predict_row(n, ImageResult(n, Status.MISSING)) for n in names[:2]], "predict",
               sources_digest(sources[:2]))
    assert plan(names, out, shard_size=2, sources=sources).todo == []
    (photos / "c.jpg").unlink()
    assert plan(names, out, shard_size=2, sources=sources).todo == [1]
    # a part without the record (an older occparse's): kept, and the run says it was not checked
    write_part(f"{out}.parts", 1, [predict_row("c.jpg", ImageResult("c.jpg", Status.MISSING))], "predict", None)
    assert plan(names, out, shard_size=2, sources=sources).todo == []
    assert "1 kept shard(s) do not record" in capsys.readouterr().err
    with pytest.raises(ValueError, match="differ in length"):
        plan(names, out, shard_size=2, sources=sources[:2])


def test_photo_digest_is_size_and_time_not_the_spelling_and_a_silent_store_deletes_nothing(tmp_path, monkeypatch,
                                                                                           capsys):
    """The same photos named from another working folder digest the same; a folder is no photo; a store that
    cannot answer stops the rerun with the part kept (never taken for a change), and an actor writes no record."""
    import os

    from occparse.runtime import shard_files
    from occparse.runtime.results import ImageResult, Status
    from occparse.runtime.rows import predict_row
    from occparse.runtime.shard_files import EngineError, plan, read_digest, sources_digest, write_part

    (tmp_path / "a.jpg").write_bytes(b"a photo")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path)
    here = sources_digest(["a.jpg"])
    monkeypatch.chdir(tmp_path / "sub")
    assert sources_digest(["../a.jpg"]) == here == sources_digest([str(tmp_path / "a.jpg")])
    assert sources_digest([str(tmp_path / "sub")]) == sources_digest([str(tmp_path / "none.jpg")])  # not a file
    uri = "file://" + str(tmp_path / "a.jpg")
    assert sources_digest([uri]) == here

    class Silent:
        def get_file_info(self, path):
            raise OSError("connection reset")

    out = str(tmp_path / "p.parquet")
    pl = plan(["a.jpg"], out, shard_size=1)
    write_part(pl.parts, 0, [predict_row("a.jpg", ImageResult("a.jpg", Status.MISSING))], "predict", here)
    monkeypatch.setattr(shard_files, "_on_filesystem", lambda u, opened: (Silent(), u))
    assert read_digest([uri]) is None  # an actor writes the part without the record
    with pytest.raises(EngineError, match="cannot check whether the photos of .* changed"):
        plan(["a.jpg"], out, shard_size=1, sources=[uri])
    assert os.path.exists(out + ".parts/part-000000.parquet")


# ---------------------------------------------------------------- the Ray engine, end to end

N = 24  # aligned crops: enough for several shards on two actors, small enough for a 2-core machine


@pytest.fixture(scope="module")
def crops(data_root, tmp_path_factory):
    """N synthetic aligned crops and the local engine's predictions on them (the reference)."""
    d = tmp_path_factory.mktemp("ray_crops")
    assert main(["synth", "--preset", "holdout", "--count", str(N), "--seed", "3", "--out", str(d / "set"),
                 "--workers", "1", "--data", str(data_root)]) == 0
    main(["predict", "--csv", str(d / "set" / "truth.csv"), "--images-root", str(d / "set" / "images"),
          "--out", str(d / "local.csv"), "--workers", "1"])
    return d


@pytest.fixture(scope="module")
def local_ray():
    if not HAVE_RAY:
        pytest.skip('ray not installed (pip install "occparse[ray]")')
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def _same_as_local(local_csv, ray_parquet, columns=("FaceOcclusion", "geometric", "regressor")):
    import csv

    import pyarrow.parquet as pq

    with open(local_csv, newline="") as f:
        want = list(csv.DictReader(f))
    got = pq.read_table(ray_parquet).to_pylist()
    assert [r["filename"] for r in got] == [r["filename"] for r in want]  # same rows, same order, no duplicates
    assert [r["status"] for r in got] == [r["status"] for r in want]
    assert any(r["status"] == "ok" for r in got)
    for g, w in zip(got, want, strict=True):
        for c in columns:
            assert g[c] == (float(w[c]) if w[c] else None), (g["filename"], c)


@needs_ray
def test_ray_predict_equals_local(crops, local_ray, capsys):
    out = crops / "ray.parquet"
    rc = main(["predict", "--engine", "ray", "--csv", str(crops / "set" / "truth.csv"), "--images-root",
               str(crops / "set" / "images"), "--out", str(out), "--shard-rows", "6", "--actors", "2"])
    assert rc in (0, 1)  # 1: some crop had no face (a status row, as in the local engine)
    _same_as_local(crops / "local.csv", out)
    assert not (crops / "ray.parquet.parts").exists()
    assert "2 actor(s)" in capsys.readouterr().err


@needs_ray
def test_ray_resumes_a_killed_run(crops, local_ray, capsys):
    """Shards 0 and 1 written before a 'kill' (and one torn part): the rerun does only the rest."""
    import csv

    from occparse.runtime.distributed import ShardScorer, plan, run
    from occparse.runtime.pipeline import EstimatorOptions

    with open(crops / "set" / "truth.csv", newline="") as f:
        names = [r["filename"] for r in csv.DictReader(f)]
    sources = [str(crops / "set" / "images" / n) for n in names]
    out = str(crops / "resumed.parquet")
    opts = EstimatorOptions(max_faces=1, detector_scores=False)
    pl = plan(names, out, "predict", shard_size=6)
    scorer = ShardScorer(opts, "predict", pl.parts)  # what an actor runs, here in this process
    scorer({"shard": [0, 1], "names": ["\n".join(pl.shard(names, k)) for k in (0, 1)],
            "sources": ["\n".join(pl.shard(sources, k)) for k in (0, 1)]})
    (crops / "resumed.parquet.parts" / "part-000002.parquet.tmp-999").write_bytes(b"PAR1 torn")
    r = run(names, sources, out, opts, "predict", shard_size=6, actors=2)
    assert r.skipped_shards == 2 and r.shards == (N + 5) // 6 and r.rows == N
    assert "resuming: 2 of" in capsys.readouterr().err
    _same_as_local(crops / "local.csv", out)


@needs_ray
def test_ray_folder_mode_equals_local(crops, local_ray):
    import pyarrow.parquet as pq

    folder = crops / "folder"
    folder.mkdir()
    for p in sorted((crops / "set" / "images").iterdir())[:8]:
        shutil.copy(p, folder / p.name)
    (folder / "broken.jpg").write_bytes(b"not an image")
    main(["estimate", str(folder), "--out", str(crops / "local_f.parquet"), "--workers", "1"])
    main(["estimate", str(folder), "--out", str(crops / "ray_f.parquet"), "--engine", "ray", "--shard-rows", "4"])
    want, got = pq.read_table(crops / "local_f.parquet"), pq.read_table(crops / "ray_f.parquet")
    assert got.column_names == want.column_names
    assert got.to_pylist() == want.to_pylist()  # every column, every row
    assert "not_an_image" in got.column("status").to_pylist()


# ---------------------------------------------------------------- start-up


def test_gray_regressor_loads_only_when_a_gray_face_comes():
    import numpy as np

    from occparse.models.zoo import manifest, shipped_variant
    from occparse.runtime.regression import Regressors, preprocess
    from occparse.runtime.session import make_session

    have = manifest()
    if "regressor_gray" not in have:
        pytest.skip("no gray regressor shipped")
    color, gray = (shipped_variant(k, "int8" if f"{k}_int8" in have else "fp32").path
                   for k in ("regressor_color", "regressor_gray"))
    reg = Regressors(color, gray)
    rng = np.random.default_rng(0)
    colour_crop = rng.integers(0, 255, (224, 224, 3), np.uint8)
    gray_crop = np.repeat(rng.integers(0, 255, (224, 224, 1), np.uint8), 3, axis=2)
    reg.predict([colour_crop])
    assert set(reg.sessions) == {"color"}
    pred, kinds = reg.predict([colour_crop, gray_crop])
    assert kinds == ["color", "gray"] and set(reg.sessions) == {"color", "gray"}
    eager = make_session(gray)  # the lazily made session gives what an eager one gives
    want = eager.run(None, {eager.get_inputs()[0].name: preprocess([gray_crop], reg.spec)})[0].reshape(-1)
    assert pred[1] == pytest.approx(float(np.clip(want[0], 0, 1)), abs=1e-7)


def test_benchmark_prints_time_to_first_result(tmp_path, capsys):
    from occparse.evaluation.benchmark import main as bench

    shutil.copy("examples/astronaut.png", tmp_path / "a.png")
    assert bench(["--images", str(tmp_path), "-n", "1", "--workers", "0", "--startup-runs", "1"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("time to first result"))
    assert float(line.split(":")[1].split()[0]) > 0


@needs_ray
def test_ray_actor_failure_is_one_engine_error(crops, local_ray):
    from occparse.runtime.distributed import EngineError, run
    from occparse.runtime.pipeline import EstimatorOptions

    src = sorted((crops / "set" / "images").iterdir())[:2]
    with pytest.raises(EngineError, match="Ray job failed.*rerun"):
        run([p.name for p in src], [str(p) for p in src], str(crops / "fail.parquet"),
            EstimatorOptions(parser=str(crops / "no_such_parser.onnx")), "predict", progress=False)


@needs_ray
def test_ray_reads_and_writes_through_pyarrow_uris(crops, local_ray):
    """file:// URIs take the code path of s3:// or gs:// ones (pyarrow file systems, a temporary local copy)."""
    import csv

    import pyarrow.parquet as pq

    rows = list(csv.DictReader((crops / "set" / "truth.csv").read_text().splitlines()))[:6]
    with open(crops / "six.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["filename"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        w.writerow({"filename": "not_there.jpg"})
    out = crops / "uri.parquet"
    rc = main(["predict", "--engine", "ray", "--csv", (crops / "six.csv").as_uri(), "--images-root",
               (crops / "set" / "images").as_uri(), "--out", out.as_uri()])
    assert rc == 1  # the missing file's row
    got = pq.read_table(out).to_pylist()
    want = list(csv.DictReader((crops / "local.csv").read_text().splitlines()))[:6]
    assert [g["filename"] for g in got] == [r["filename"] for r in rows] + ["not_there.jpg"]
    assert got[-1]["status"] == "missing" and got[-1]["FaceOcclusion"] is None
    for g, w in zip(got, want, strict=False):
        assert g["status"] == w["status"]
        assert g["FaceOcclusion"] == (float(w["FaceOcclusion"]) if w["FaceOcclusion"] else None)


@needs_ray
def test_ray_two_stage_pipeline_equals_local(crops, local_ray):
    """The --device cuda layout (mesh actors feeding network actors), here with CPU network actors."""
    import csv

    import pyarrow.parquet as pq

    from occparse.runtime.distributed import run
    from occparse.runtime.pipeline import EstimatorOptions

    want = list(csv.DictReader((crops / "local.csv").read_text().splitlines()))[:12]
    names = [r["filename"] for r in want]
    out = crops / "two.parquet"
    r = run(names, [str(crops / "set" / "images" / n) for n in names], str(out),
            EstimatorOptions(max_faces=1, detector_scores=False), "predict", actors=1, shard_size=6, two_stage=True,
            progress=False)
    assert r.rows == 12
    got = pq.read_table(out).to_pylist()
    assert [g["filename"] for g in got] == names
    for g, w in zip(got, want, strict=True):
        assert g["status"] == w["status"]
        for c in ("FaceOcclusion", "geometric", "regressor"):
            assert g[c] == (float(w[c]) if w[c] else None)
