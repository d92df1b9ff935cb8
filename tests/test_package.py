"""The package as users meet it: the public API, the README's Python example, the models and their
checks, one CLI with one error family."""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from occparse.cli import build_parser, main
from occparse.models.zoo import manifest, packaged_weights_dir, register

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.png"
HAVE_MODELS = "stacker" in manifest() and "parser" in manifest()
needs_models = pytest.mark.skipif(not HAVE_MODELS, reason="no shipped models in weights/manifest.json")


def _run_python(code: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, **(env or {})})


def test_import_is_cheap_and_exports_the_api():
    """`import occparse` loads no MediaPipe, ONNX Runtime or torch, and every public name resolves."""
    code = (
        "import sys, occparse\n"
        "heavy = [m for m in ('torch', 'mediapipe', 'onnxruntime') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "for n in occparse.__all__: getattr(occparse, n)\n"
        "assert issubclass(occparse.ModelError, occparse.OccparseError)\n"
        "assert issubclass(occparse.VersionError, occparse.ModelError)\n"
        "assert 'torch' not in sys.modules\n"
        "print(occparse.__version__)\n"
    )
    out = _run_python(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert re.match(r"^\d+\.\d+", out.stdout.strip()) or out.stdout.strip() == "0+unknown"
    assert (ROOT / "occparse" / "py.typed").is_file()


def test_runtime_evaluation_models_and_cli_never_import_torch():
    """Every module of the inference, evaluation, model-zoo and CLI subpackages imports without torch
    (only occparse.train may use it), and the layout is the one the README draws."""
    code = (
        "import importlib, pkgutil, sys\n"
        "import occparse\n"
        "names = []\n"
        "for sub in ('runtime', 'evaluation', 'models', 'cli'):\n"
        "    pkg = importlib.import_module('occparse.' + sub)\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        if m.name != '__main__':\n"
        "            importlib.import_module(f'occparse.{sub}.{m.name}'); names.append(f'{sub}.{m.name}')\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print(' '.join(sorted(names)))\n"
    )
    out = _run_python(code)
    assert out.returncode == 0, out.stderr[-2000:]
    mods = set(out.stdout.split())
    for m in ("runtime.session", "runtime.pipeline", "runtime.parsing", "evaluation.metrics", "models.zoo",
              "cli.common", "cli.estimate", "cli.predict", "cli.models"):
        assert m in mods, (m, sorted(mods))
    # one ONNX Runtime session helper: inference and evaluation make their sessions in runtime/session.py
    makers = [p.relative_to(ROOT).as_posix() for sub in ("runtime", "evaluation", "cli")
              for p in (ROOT / "occparse" / sub).rglob("*.py") if "InferenceSession(" in p.read_text()]
    assert makers == ["occparse/runtime/session.py"], makers


def test_python_dash_m_runs_the_cli():
    """`python -m occparse` is the `occparse` command."""
    out = subprocess.run([sys.executable, "-m", "occparse", "--version"], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("occparse ")


def test_error_classes_join_the_family():
    from occparse.errors import DataError, InputError, ModelError, VersionError
    from occparse.evaluation.metrics import TruthFileError
    from occparse.models.zoo import WeightsError
    from occparse.runtime.batch import BatchInputError
    from occparse.runtime.io import ImageInputError
    from occparse.runtime.stacking import StackerVersionError
    from occparse.synth.sources import DataNotFoundError

    assert issubclass(ImageInputError, InputError)
    assert issubclass(WeightsError, ModelError) and issubclass(WeightsError, RuntimeError)
    assert issubclass(StackerVersionError, VersionError) and issubclass(StackerVersionError, RuntimeError)
    for cls in (TruthFileError, BatchInputError, DataNotFoundError):
        assert issubclass(cls, DataError)


@needs_models
def test_readme_python_example_runs():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README.md has no ```python example"
    out = _run_python(blocks[0])
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r"occluded \d+\.\d%", out.stdout), out.stdout


@pytest.fixture(scope="module")
def estimator():
    if not HAVE_MODELS:
        pytest.skip("no shipped models")
    from occparse import Estimator, EstimatorOptions

    return Estimator(EstimatorOptions(max_faces=1, detector_scores=False))


def test_analyze_takes_path_array_pil_and_gray(estimator):
    from PIL import Image

    from occparse import Status, read_image

    by_path = estimator.analyze(EXAMPLE).result
    assert by_path.ok
    rgb = read_image(EXAMPLE).rgb
    by_array = estimator.analyze(rgb).result
    by_pil = estimator.analyze(Image.open(EXAMPLE)).result
    for r in (by_array, by_pil):
        assert r.status == Status.OK
        assert r.faces[0].occlusion == pytest.approx(by_path.faces[0].occlusion, abs=1e-9)
        assert (r.width, r.height) == (by_path.width, by_path.height)
    gray = np.asarray(Image.open(EXAMPLE).convert("L"))
    g = estimator.analyze(gray).result
    assert g.ok and g.faces[0].is_gray
    assert g.faces[0].occlusion == pytest.approx(estimator.analyze(np.repeat(gray[..., None], 3, 2)).result.faces[0].occlusion,
                                                 abs=1e-9)


@pytest.mark.parametrize("bad, status", [
    (np.zeros((64, 64, 3), np.float32), "not_an_image"),
    (np.zeros((64, 64, 5), np.uint8), "not_an_image"),
    (np.zeros((8, 8, 3), np.uint8), "too_small"),
    ("no/such/file.png", "missing"),
    (12345, "not_an_image"),
])
def test_analyze_bad_input_is_a_status_not_an_exception(estimator, bad, status):
    r = estimator.analyze(bad).result
    assert str(r.status) == status and not r.faces and r.message


def test_every_tool_is_a_subcommand_of_the_one_parser():
    p = build_parser()
    sub = next(a for a in p._actions if a.dest == "command")
    names = set(sub.choices)
    assert {"estimate", "predict", "parse", "benchmark", "quantize", "parser-eval", "error-budget", "models",
            "train", "fit-stacker", "evaluate", "synth"} <= names
    for cmd in ("benchmark", "quantize", "parser-eval", "error-budget", "models"):
        assert callable(sub.choices[cmd].get_default("func")), cmd
    for cmd in ("estimate", "predict", "parse", "benchmark"):
        assert "--weights" in sub.choices[cmd]._option_string_actions, cmd


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("occparse ")


def test_train_defaults_are_each_models_own():
    """The CLI repeats the training configs' defaults (it must not import torch): they must agree."""
    pytest.importorskip("torch")
    from dataclasses import fields

    from occparse.train.parser import ParserTrainConfig
    from occparse.train.regressor import RegressorTrainConfig

    p = build_parser()
    train = next(a for a in p._actions if a.dest == "command").choices["train"]
    models = next(a for a in train._actions if a.dest == "what").choices
    for name, cfg in (("parser", ParserTrainConfig), ("regressor", RegressorTrainConfig)):
        sp = models[name]
        for f in fields(cfg):
            if f.name in ("epochs", "batch", "lr", "input_size", "work", "threads", "seed", "max_minutes"):
                assert sp.get_default(f.name) == f.default, (name, f.name)
    assert models["regressor"].get_default("epochs") != models["parser"].get_default("epochs")


def test_fit_stacker_never_overwrites_the_shipped_one_unless_told(capsys):
    assert main(["fit-stacker", "--truth", "t.csv", "--images-root", "."]) == 2
    assert "--replace-shipped" in capsys.readouterr().err
    if HAVE_MODELS:
        shipped_path = manifest()["stacker"].path
        before = shipped_path.read_bytes()
        assert main(["fit-stacker", "--truth", "t.csv", "--images-root", ".", "--out", str(shipped_path)]) == 2
        assert "is the shipped stacker" in capsys.readouterr().err
        assert shipped_path.read_bytes() == before


def test_fit_stacker_pairs_truth_files_with_image_roots(capsys, tmp_path):
    """Several fit sets: a missing image root or a wrong number of set weights is refused before any work."""
    out = str(tmp_path / "s.json")
    assert main(["fit-stacker", "--truth", "a.csv", "b.csv", "--images-root", ".", "--out", out]) == 2
    assert "one per truth" in capsys.readouterr().err
    assert main(["fit-stacker", "--truth", "a.csv", "b.csv", "--images-root", ".", ".", "--set-weight", "1",
                 "--out", out]) == 2
    assert "--set-weight" in capsys.readouterr().err
    assert main(["fit-stacker", "--truth", "a.csv", "--images-root", ".", "--set-weight", "-1", "--out", out]) == 2
    assert ">= 0" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()
    assert main(["fit-stacker", "--truth", "a.csv", "--images-root", str(tmp_path / "nope"), "--out", out]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["fit-stacker", "--truth", "a.csv", "--images-root", ".", "--set-weight", "0", "--out", out]) == 2


@needs_models
def test_fit_stacker_says_when_no_image_of_a_fit_set_can_be_read(capsys, tmp_path):
    """A wrong --images-root: one clear line naming the truth file, no stacker, no feature cache."""
    truth = tmp_path / "t.csv"
    truth.write_text("filename,FaceOcclusion,gender\na.jpg,0.1,F\nb.jpg,0.2,M\n")
    (tmp_path / "imgs").mkdir()
    out = tmp_path / "s.json"
    assert main(["fit-stacker", "--truth", str(truth), "--images-root", str(tmp_path / "imgs"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "none of its 2 images" in err and "--images-root" in err
    assert not out.exists() and not list(tmp_path.glob("stacker_features_*.npz"))


def _weights_copy(tmp_path: Path) -> Path:
    """A private weights folder: links to the shipped networks, a real copy of what the test edits."""
    src = packaged_weights_dir()
    dst = tmp_path / "w"
    dst.mkdir()
    for f in src.iterdir():
        if f.suffix == ".onnx":
            (dst / f.name).symlink_to(f)
        elif f.is_file():
            shutil.copy(f, dst / f.name)
    return dst


@needs_models
def test_bad_checksum_is_one_line_and_nonzero(tmp_path, capsys, monkeypatch):
    w = _weights_copy(tmp_path)
    stacker = w / manifest()["stacker"].path.name
    stacker.write_bytes(stacker.read_bytes() + b"x")
    assert main(["models", "verify", "--weights", str(w)]) == 2
    out, err = capsys.readouterr()
    assert "FAILS ITS SHA256" in out and "stacker" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("OCCPARSE_WEIGHTS", str(w))  # the environment variable reaches estimate too
    assert main(["estimate", str(EXAMPLE)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fails its checksum" in err and err.startswith("occparse: error:")


@needs_models
def test_legacy_stacker_from_another_sklearn_is_one_line_and_nonzero(tmp_path, capsys):
    from occparse.runtime.stacking import FEATURES, HEADER_FORMAT

    w = _weights_copy(tmp_path)
    with open(w / "stacker.pkl", "wb") as f:  # a stacker file as another scikit-learn would have written it
        pickle.dump({"format": HEADER_FORMAT, "sklearn_version": "0.0.1", "features": list(FEATURES)}, f)
        pickle.dump(None, f)
    register("stacker", "stacker.pkl", "stacker.md", {}, folder=w)  # pinned, so only the version is wrong
    assert main(["estimate", str(EXAMPLE), "--weights", str(w)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "scikit-learn 0.0.1" in err, err


@needs_models
def test_fp32_precision_falls_back_to_int8_regressors_when_not_shipped(tmp_path, caplog):
    from occparse import Estimator, EstimatorOptions

    w = _weights_copy(tmp_path)
    (w / "regressor_color.onnx").unlink(missing_ok=True)
    (w / "regressor_gray.onnx").unlink(missing_ok=True)
    with caplog.at_level("WARNING", logger="occparse"):
        est = Estimator(EstimatorOptions(max_faces=1, detector_scores=False, precision="fp32", weights=str(w)))
    assert any("int8" in r.getMessage() for r in caplog.records)
    assert all(Path(p).name.endswith(".int8.onnx") for p in est.regressors.paths.values())
    assert est.parser.model_path.name == "parser.onnx"  # the parser keeps its fp32 model


def test_models_path_follows_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OCCPARSE_WEIGHTS", str(tmp_path))
    assert main(["models", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path)
    assert main(["models", "list"]) == 2  # no manifest there
    assert "manifest.json" in capsys.readouterr().err


def test_models_pin_records_a_retrained_file(tmp_path, capsys):
    (tmp_path / "m.onnx").write_bytes(b"model")
    (tmp_path / "m.md").write_text("card")
    assert main(["models", "pin", "mine", "m.onnx", "m.md", "--weights", str(tmp_path)]) == 0
    listed = json.loads((tmp_path / "manifest.json").read_text())["mine"]
    assert listed["file"] == "m.onnx" and len(listed["sha256"]) == 64
    assert main(["models", "verify", "--weights", str(tmp_path)]) == 0


def test_models_pin_takes_a_spec_file_or_text_and_rejects_bad_json(tmp_path, capsys):
    import json
    import shutil

    from occparse.cli import main as cli_main

    src = Path(__file__).resolve().parents[1] / "weights"
    w = tmp_path / "w"
    w.mkdir()
    shutil.copy(src / "manifest.json", w)
    shutil.copy(src / "stacker.md", w / "stacker.pkl")  # any file: pinning records its checksum
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"note": "from a file"}))
    assert cli_main(["models", "pin", "stacker", "stacker.pkl", "stacker.md", str(spec), "--weights", str(w)]) == 0
    assert json.loads((w / "manifest.json").read_text())["stacker"]["spec"] == {"note": "from a file"}
    assert cli_main(["models", "pin", "stacker", "stacker.pkl", "stacker.md", '{"note": "text"}', "--weights", str(w)]) == 0
    assert json.loads((w / "manifest.json").read_text())["stacker"]["spec"] == {"note": "text"}
    capsys.readouterr()
    assert cli_main(["models", "pin", "stacker", "stacker.pkl", "stacker.md", "{not json", "--weights", str(w)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SPEC_JSON" in err[0]
