"""benchmarks/parser_gate.py: a parser stage's rule, judged line by line from two measurement folders."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


gate = _load("parser_gate")


def _csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _kinds(facial_hair=200, hats=150, plain_forehead=50, fringe=180, plain_fh=1, median=0.045):
    def k(n, fh, fore, med=0.1):
        return {"n": n, "failed": 0, "median_final": med, "median_geometric": med, "facial_hair_found": fh,
                "forehead_hidden": fore}

    return {"facial_hair": k(250, facial_hair, 40), "plain": k(600, plain_fh, plain_forehead, median),
            "fringe": k(250, 20, fringe), "hat": k(250, 30, hats), "eyeglasses": k(250, 10, 30)}


@pytest.fixture()
def sets(tmp_path):
    """LFW val and benchmark truths of 80 photos each, shared by both measurement folders."""
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 0.3, 80)
    s = tmp_path / "sets"
    _csv(s / "lfwval" / "truth.csv", [
        {"filename": f"l{i}.jpg", "FaceOcclusion": f"{g:.4f}", "gender": "MF"[i % 2],
         "lfw_labels": "contradict" if i % 10 == 0 else "agree", "headwear": "covers_face" if i % 8 == 0 else "none"}
        for i, g in enumerate(gt)])
    _csv(s / "bench" / "truth.csv", [{"filename": f"b{i}.png", "FaceOcclusion": f"{g:.4f}", "gender": "MF"[i % 2]}
                                     for i, g in enumerate(gt)])
    return s, gt


def _measured(root: Path, name: str, sets, noise: float, *, mouth=121, caps="MAE 0.024", top="+0.0",
              kinds=None, speed=None, passes=3, seed=1) -> Path:
    s, gt = sets
    d = root / name
    rng = np.random.default_rng(seed)
    pred = np.clip(gt + rng.normal(0, noise, len(gt)), 0, 1)
    _csv(d / "pred_lfw.csv", [{"filename": f"l{i}.jpg", "FaceOcclusion": f"{p:.4f}", "geometric": f"{p:.4f}"}
                              for i, p in enumerate(pred)])
    _csv(d / "pred_bench.csv", [{"filename": f"b{i}.png", "FaceOcclusion": f"{p:.4f}"} for i, p in enumerate(pred)])
    _csv(d / "celeb" / "truth_hair.csv", [{"filename": f"c{i}.jpg", "FaceOcclusion": f"{g:.4f}", "gender": "FM"[i % 2],
                                           "hair_only": "yes"} for i, g in enumerate(gt)])
    _csv(d / "celeb" / "pred_hair.csv", [{"filename": f"c{i}.jpg", "FaceOcclusion": f"{p:.4f}", "geometric": f"{p:.4f}"}
                                         for i, p in enumerate(pred)])
    (d / "celeb.json").write_text(json.dumps({"kinds": kinds or _kinds()}))
    (d / "masked.txt").write_text(f"mouth region >= 0.8 occluded: {mouth}/140 = 86.4% of found subjects\n")
    (d / "caps.txt").write_text(f"final against the newly hidden share (mean 0.130): {caps}, mean signed -0.001\n"
                                f"top of R moves {top}% of face height (median; 90th pct 2.5%)\n")
    if speed is not None:
        (d / "speed.json").write_text(json.dumps({"pool_e2e_img_s": speed, "pool_e2e_runs": [speed] * passes}))
    (d / "measured.json").write_text(json.dumps({"sets": str(s)}))
    return d


def _by_name(lines):
    return {ln.name.split(".")[0] if ln.name[0].isdigit() else ln.name: ln for ln in lines}


def test_a_copy_of_the_base_passes_every_line_but_buys_nothing(tmp_path, sets):
    base = _measured(tmp_path, "base", sets, 0.02, speed=55.9)
    cand = _measured(tmp_path, "cand", sets, 0.02, speed=46.0)
    lines, buys = gate.judge(base, cand)
    assert all(ln.ok for ln in lines), [ln for ln in lines if not ln.ok]
    assert not any(b.ok for b in buys[:1])  # facial hair 80% < 83%
    assert gate.main(["judge", str(base), str(cand), "--json", str(tmp_path / "v.json")]) in (0, 1)
    v = json.loads((tmp_path / "v.json").read_text())
    assert len(v["lines"]) == len(lines) and v["keep"] == any(b.ok for b in buys)


def test_each_line_can_fail(tmp_path, sets):
    base = _measured(tmp_path, "base", sets, 0.02, speed=55.9)
    worse = _measured(tmp_path, "worse", sets, 0.09, mouth=100, caps="MAE 0.040", top="+2.5", speed=40.0,
                      kinds=_kinds(facial_hair=190, hats=140, plain_forehead=60, fringe=170, plain_fh=30, median=0.06),
                      seed=2)
    lines, _ = gate.judge(base, worse)
    assert not any(ln.ok for ln in lines), [ln for ln in lines if ln.ok]
    assert gate.main(["judge", str(base), str(worse)]) == 1
    # better where the stage is meant to buy: facial hair found on 85%
    better = _measured(tmp_path, "better", sets, 0.02, speed=50.0, kinds=_kinds(facial_hair=213))
    lines, buys = gate.judge(base, better)
    assert buys[0].ok and all(ln.ok for ln in lines)
    assert gate.main(["judge", str(base), str(better)]) == 0


def test_speed_not_measured_fails_its_line_and_missing_files_exit_2(tmp_path, sets, capsys):
    base = _measured(tmp_path, "base", sets, 0.02)
    cand = _measured(tmp_path, "cand", sets, 0.02)
    lines, _ = gate.judge(base, cand)
    speed = _by_name(lines)["batch pipeline, images/s (int8)"]
    assert not speed.ok and "not measured" in speed.detail
    one_pass = _measured(tmp_path, "one_pass", sets, 0.02, speed=60.0, passes=1)  # a reading of one pass is not judged
    lines, _ = gate.judge(base, one_pass)
    assert not _by_name(lines)["batch pipeline, images/s (int8)"].ok
    assert "fewer than 3 passes" in capsys.readouterr().err
    (cand / "caps.txt").unlink()
    with pytest.raises(SystemExit) as e:
        gate.judge(base, cand)
    assert e.value.code == 2 and "caps.txt" in capsys.readouterr().err


def test_folders_measured_on_other_sets_are_not_compared(tmp_path, sets, capsys):
    base = _measured(tmp_path, "base", sets, 0.02)
    cand = _measured(tmp_path, "cand", sets, 0.02)
    (cand / "measured.json").write_text(json.dumps({"sets": str(tmp_path / "elsewhere")}))
    with pytest.raises(SystemExit) as e:
        gate.judge(base, cand)
    assert e.value.code == 2 and "not comparable" in capsys.readouterr().err


def test_measure_refuses_what_it_cannot_measure_and_a_step_failing_is_no_result(tmp_path, data_root, monkeypatch):
    with pytest.raises(SystemExit, match="manifest.json"):
        gate.measure(tmp_path, tmp_path / "out", tmp_path / "sets", speed=False)
    # a folder measured with other weights is refused before any step runs (its numbers are never mixed)
    monkeypatch.setenv("OCCPARSE_DATA", str(data_root))
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "manifest.json").write_text("{}")
    out = tmp_path / "out"
    out.mkdir()
    (out / "measured.json").write_text(json.dumps({"weights": "/other/weights"}))
    with pytest.raises(SystemExit, match="measured with other inputs: weights /other/weights"):
        gate.measure(tmp_path / "w", out, tmp_path / "sets", speed=False)
    assert not (tmp_path / "sets").exists()
    # exit 1 is a per-row failure only where occparse predict says so
    fail = [sys.executable, "-c", "import sys; print('boom'); sys.exit(1)"]
    with pytest.raises(SystemExit, match=r"(?s)step failed .exit 1.*boom"):
        gate._run(fail, tmp_path / "step.log", {})
    gate._run(fail, tmp_path / "step.log", {}, rows_may_fail=True)
