"""A parser stage's keep/drop rule, measured and judged: the gated sets for one weights folder, then the
rule's lines for a candidate against the shipped parser (``weights/parser.md``, "Stage 27").

Two steps, so that each weights folder is measured once (about 5 minutes on 2 cores, int8 on the CPU as
the rule says; a few more the first time, to write the two synthetic sets, and with ``--speed``) and the
judgement can be read again without measuring::

    python benchmarks/parser_gate.py measure --weights weights --out gate/base
    python benchmarks/parser_gate.py measure --weights parser27w --out gate/cand --speed
    python benchmarks/parser_gate.py judge gate/base gate/cand [--json verdict.json]

``measure`` runs, with the weights folder given (a copy of ``weights/`` with the candidate's
``parser.onnx``/``parser.int8.onnx`` and its manifest, as ``occparse train parser`` exports it):

* LFW val (``occparse synth --preset lfw-val``), predicted from the photos themselves;
* CelebA-HQ val kinds and hair masks (``benchmarks/celebahq_kinds.py``);
* the real masked photos (``benchmarks/masked_faces.py``; the two committed lists of names);
* the synthetic benchmark (``occparse synth --preset bench``), on its aligned crops;
* painted caps over clean CelebA-HQ faces (``benchmarks/painted_caps.py --n 120``);
* with ``--speed``, ``occparse benchmark -n 1000 --repeat 3`` on the benchmark's crops (the batch
  pipeline's images/s, the median of three passes: one pass on the development machine reads 10-15%
  either side; run it with nothing else on the machine).

The two set folders (``--sets``, default ``gate/sets``) are written on first use and shared by every
measurement. A step whose output is already in ``--out`` is not run again (delete it to redo), so a
killed ``measure`` goes on where it stopped; ``--out`` records the weights, sets and data it was measured
with, and a folder measured with others is refused.

``judge`` prints each line of the rule with the numbers behind it and PASS/FAIL, and exits 0 only when
every line passes and at least one of the lines the stage must buy holds (1 otherwise; 2 for missing
measurements, or two folders measured on other sets or data). A line "at most k worse" is judged on
the paired per-photo comparison of ``benchmarks/paired_compare.py`` (the photos resampled 10,000 times
within each set and gender, seed 0): it fails when the relative change c of Err is above k and the share
P of resamples in which the candidate is worse is at least 0.95, or when c is above 3k whatever P says.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import paired_compare as pc  # noqa: E402  (the benchmarks folder is not a package)

from occparse.evaluation.metrics import challenge_score  # noqa: E402

HERE = Path(__file__).resolve().parent
RESAMPLES = 10000
#: passes of the batch-pipeline row the speed line reads the median of (one pass reads 10-15% either side)
SPEED_PASSES = 3


@dataclass(frozen=True)
class Rule:
    """The numbers of a keep/drop rule (stage 24's eight lines with stage 27's terms; weights/parser.md)."""

    pooled_k: float = 0.05  # line 1: pooled real sets, final and geometric, each gender
    alone_k: float = 0.10  # line 2: each real set alone, final, each gender
    mouth_min: int = 118  # line 3: masked photos with the mouth >= 0.8 hidden (of 140 found)
    facial_hair_below: float = 1.0  # line 4: facial hair found at most this many points below the base
    plain_facial_hair_max: float = 3.0  # line 4: % of plain faces with facial hair found
    plain_median_max: float = 0.05  # line 4
    bench_max: float = 0.005  # line 5: synthetic benchmark, final Score
    hats_below: float = 2.0  # line 6: hats with forehead >= 0.3, at most this many points below the base
    plain_forehead_above: float = 0.5  # line 6: plain faces with forehead >= 0.3, at most this many points more
    fringe_min: float = 70.0  # line 6: fringes with forehead >= 0.3, %
    caps_mae_max: float = 0.025  # line 7
    caps_top_max: float = 1.0  # line 7: |median move of R's top|, % of the face height
    headwear_k: float = 0.10  # line 8: LFW val photos with headwear over the face, genders pooled
    speed_min: float = 45.0  # the batch pipeline, images/s (int8)
    # ... and it must buy at least one of these
    buys_facial_hair: float = 83.0
    buys_hair_only: float = 0.0050
    buys_gap: float = 0.0008


STAGE27 = Rule()


# ---------------------------------------------------------------- measure


OCCPARSE = [sys.executable, "-m", "occparse.cli"]  # this interpreter's occparse, whatever is on PATH
CPU_INT8 = ["--device", "cpu", "--precision", "int8"]  # the rule's numbers are the CPU's int8 ones


def _run(cmd: list[str], log: Path, env: dict[str, str], rows_may_fail: bool = False) -> None:
    """Run one step, its output into ``log``; a failure stops ``measure`` with the log's last lines.
    ``rows_may_fail``: exit 1 means some rows failed (``occparse predict``: reported per row), not the step."""
    print(f"  $ {' '.join(cmd)}", flush=True)
    with open(log, "w") as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0 and not (rc == 1 and rows_may_fail):
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-8:])
        raise SystemExit(f"step failed (exit {rc}); the end of {log}:\n{tail}")


def make_sets(sets: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """LFW val photo truth and the synthetic benchmark, written once under ``sets``."""
    sets.mkdir(parents=True, exist_ok=True)
    made = []
    for name, preset in (("lfwval", "lfw-val"), ("bench", "bench")):
        d = sets / name
        if not (d / "truth.csv").is_file():
            print(f"making the {preset} set in {d}", flush=True)
            _run([*OCCPARSE, "synth", "--preset", preset, "--out", str(d)], sets / f"{name}.log", env)
        made.append(d)
    return made[0], made[1]


def measure(weights: Path, out: Path, sets: Path, speed: bool) -> None:
    import onnxruntime as ort

    from occparse.synth.sources import find_data_root

    if not (weights / "manifest.json").is_file():
        raise SystemExit(f"--weights {weights}: no manifest.json there (a folder as weights/ is)")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        # the benchmark scripts run the Estimator's defaults, which would take the GPU (fp32) here
        raise SystemExit("this ONNX Runtime has CUDA: the rule's numbers are the CPU's int8 ones; measure with "
                         "the CPU package (onnxruntime)")
    data = find_data_root(None)
    out.mkdir(parents=True, exist_ok=True)
    record = {"weights": str(weights.resolve()), "sets": str(sets.resolve()), "data": str(data)}
    rec = out / "measured.json"
    if rec.exists() and (old := json.loads(rec.read_text())) != record:
        diffs = ", ".join(f"{k} {old.get(k)} (now {v})" for k, v in record.items() if old.get(k) != v)
        raise SystemExit(f"{out} was measured with other inputs: {diffs}; give another --out or delete it")
    rec.write_text(json.dumps(record, indent=1) + "\n")  # first: a killed measure resumes only the same inputs
    env = {**os.environ, "OCCPARSE_WEIGHTS": record["weights"], "OMP_WAIT_POLICY": "PASSIVE"}
    lfwval, bench = make_sets(sets, env)
    py = sys.executable
    steps = [
        ("pred_lfw.csv", [*OCCPARSE, "predict", "--csv", str(lfwval / "truth.csv"), "--images-root",
                          str(data / "faces" / "lfw_parts" / "images"), "--out", str(out / "pred_lfw.csv"), *CPU_INT8]),
        ("celeb.json", [py, str(HERE / "celebahq_kinds.py"), "--out", str(out / "celeb"), "--weights",
                        record["weights"], "--data", str(data), "--precision", "int8", "--json", str(out / "celeb.json")]),
        ("masked.txt", [py, str(HERE / "masked_faces.py"), "--images", str(data / "real" / "masked"),
                        "--exclude-file", str(HERE / "masked_faces_small.txt"), "--not-masked-file",
                        str(HERE / "masked_faces_not_masked.txt"), "--out", str(out / "masked.csv")]),
        ("pred_bench.csv", [*OCCPARSE, "predict", "--csv", str(bench / "truth.csv"), "--images-root",
                            str(bench / "images"), "--out", str(out / "pred_bench.csv"), "--assume-aligned", *CPU_INT8]),
        ("caps.txt", [py, str(HERE / "painted_caps.py"), "--data", str(data / "faces" / "celebahq"), "--n", "120",
                      "--out", str(out / "caps.csv")]),
    ]
    if speed:
        steps.append(("speed.json", [*OCCPARSE, "benchmark", "-n", "1000", "--images", str(bench / "images"),
                                     "--precision", "int8", "--repeat", str(SPEED_PASSES), "--json",
                                     str(out / "speed.json")]))
    for i, (name, cmd) in enumerate(steps, 1):
        if (out / name).exists():
            print(f"[{i}/{len(steps)}] {name}: already measured", flush=True)
            continue
        print(f"[{i}/{len(steps)}] {name}", flush=True)
        log = out / (Path(name).stem + ".log")
        _run(cmd, log, env, rows_may_fail=name.startswith("pred_"))
        if name.endswith(".txt"):  # the script reports on stdout: that report is the result, kept once it reads
            if not PATTERNS[name](log.read_text(errors="replace")):
                raise SystemExit(f"{log}: the step ran but its report is not in the form judge reads")
            os.replace(log, out / name)
    print(f"measured into {out}")


# ---------------------------------------------------------------- judge


@dataclass
class Line:
    name: str
    ok: bool
    detail: str


def _paired(name: str, changes: list[pc.GenderChange], k: float) -> Line:
    parts, ok = [], True
    for c in changes:
        fail = (c.change > k and c.p_worse >= 0.95) or c.change > 3 * k
        ok &= not fail
        parts.append(f"{c.gender} {c.err_a:.6f} -> {c.err_b:.6f} ({c.change:+.1%}, P {c.p_worse:.2f})"
                     + (" FAIL" if fail else ""))
    return Line(name, ok, f"k {k:.0%}: " + "; ".join(parts))


def _masked(text: str):
    return re.search(r"mouth region >= 0\.8 occluded: (\d+)/(\d+)", text)


def _caps(text: str):
    mae = re.search(r"newly hidden share.*MAE ([\d.]+)", text)
    top = re.search(r"top of R moves ([+-]?[\d.]+)% of face height", text)
    return (mae, top) if mae and top else None


PATTERNS = {"masked.txt": _masked, "caps.txt": _caps}


def read_results(d: Path) -> dict:
    """What ``judge`` needs from one measurement folder; SystemExit(2) naming what is missing."""
    need = ["measured.json", "pred_lfw.csv", "celeb.json", "celeb/truth_hair.csv", "celeb/pred_hair.csv",
            "masked.txt", "pred_bench.csv", "caps.txt"]
    if missing := [n for n in need if not (d / n).exists()]:
        print(f"{d}: not measured ({', '.join(missing)} missing); run: parser_gate.py measure --out {d}",
              file=sys.stderr)
        raise SystemExit(2)
    m_mouth, caps = _masked((d / "masked.txt").read_text()), _caps((d / "caps.txt").read_text())
    if not (m_mouth and caps):
        raise SystemExit(f"{d}: masked.txt or caps.txt is not in the form this script reads")
    m_mae, m_top = caps
    celeb = json.loads((d / "celeb.json").read_text())
    speed = json.loads((d / "speed.json").read_text()) if (d / "speed.json").exists() else None
    if speed is not None and len(speed.get("pool_e2e_runs", [])) < SPEED_PASSES:
        print(f"{d / 'speed.json'}: measured with fewer than {SPEED_PASSES} passes, not judged; delete it and run "
              "measure --speed again", file=sys.stderr)
        speed = None
    return {"dir": d, "measured": json.loads((d / "measured.json").read_text()), "mouth": int(m_mouth[1]),
            "found": int(m_mouth[2]), "caps_mae": float(m_mae[1]), "caps_top": float(m_top[1]),
            "kinds": celeb["kinds"], "speed": None if speed is None else float(speed["pool_e2e_img_s"])}


def _pct(kind: dict, key: str) -> float:
    return 100.0 * kind[key] / kind["n"] if kind["n"] else float("nan")


def judge(base: Path, cand: Path, rule: Rule = STAGE27) -> tuple[list[Line], list[Line]]:
    """(the rule's lines, the 'buys' lines) for ``cand`` against ``base``."""
    a, b = read_results(base), read_results(cand)
    if diffs := [k for k in ("sets", "data") if a["measured"].get(k) != b["measured"].get(k)]:
        print(f"{base} and {cand} were measured on other {' and '.join(diffs)}: not comparable", file=sys.stderr)
        raise SystemExit(2)
    lfw_truth = Path(a["measured"]["sets"]) / "lfwval" / "truth.csv"
    celeb_truth = base / "celeb" / "truth_hair.csv"

    def sets(column: str) -> tuple[pc.Rows, pc.Rows]:
        lfw = pc.load_set("lfw", str(lfw_truth), str(base / "pred_lfw.csv"), str(cand / "pred_lfw.csv"), column,
                          [("lfw_labels", "agree")])
        cel = pc.load_set("celeba", str(celeb_truth), str(base / "celeb" / "pred_hair.csv"),
                          str(cand / "celeb" / "pred_hair.csv"), column, [("hair_only", "yes")])
        return lfw, cel

    lfw, cel = sets("FaceOcclusion")  # read once: the final estimate's lines all use them
    lines = [_paired("1. pooled real sets, final", pc.compare([lfw, cel], RESAMPLES), rule.pooled_k),
             _paired("1. pooled real sets, geometric", pc.compare(list(sets("geometric")), RESAMPLES), rule.pooled_k)]
    alone = [pc.compare([lfw], RESAMPLES), pc.compare([cel], RESAMPLES)]
    lines.append(_paired("2. LFW val agreeing, final", alone[0], rule.alone_k))
    lines.append(_paired("2. CelebA-HQ hair-only, final", alone[1], rule.alone_k))
    lines.append(Line("3. masked photos, mouth >= 0.8", b["mouth"] >= rule.mouth_min,
                      f"{b['mouth']}/{b['found']} (base {a['mouth']}/{a['found']}; at least {rule.mouth_min})"))
    ka, kb = a["kinds"], b["kinds"]
    fh_a, fh_b = _pct(ka["facial_hair"], "facial_hair_found"), _pct(kb["facial_hair"], "facial_hair_found")
    plain_fh = _pct(kb["plain"], "facial_hair_found")
    med = kb["plain"]["median_final"]
    lines.append(Line("4. facial hair found / on plain faces / plain median final",
                      fh_b >= fh_a - rule.facial_hair_below and plain_fh <= rule.plain_facial_hair_max
                      and med <= rule.plain_median_max,
                      f"{fh_b:.1f}% (base {fh_a:.1f}%, at least {fh_a - rule.facial_hair_below:.1f}%) / {plain_fh:.1f}% "
                      f"(at most {rule.plain_facial_hair_max:.0f}%) / {med:.4f} (at most {rule.plain_median_max})"))
    bench_b = _score(b["dir"] / "pred_bench.csv", Path(a["measured"]["sets"]) / "bench" / "truth.csv")
    lines.append(Line("5. synthetic benchmark, final", bench_b <= rule.bench_max,
                      f"{bench_b:.5f} (at most {rule.bench_max})"))
    hats = (_pct(ka["hat"], "forehead_hidden"), _pct(kb["hat"], "forehead_hidden"))
    plain = (_pct(ka["plain"], "forehead_hidden"), _pct(kb["plain"], "forehead_hidden"))
    fringe = _pct(kb["fringe"], "forehead_hidden")
    lines.append(Line("6. forehead >= 0.3: hats / plain faces / fringes",
                      hats[1] >= hats[0] - rule.hats_below and plain[1] <= plain[0] + rule.plain_forehead_above
                      and fringe >= rule.fringe_min,
                      f"{hats[1]:.1f}% (base {hats[0]:.1f}%) / {plain[1]:.1f}% (base {plain[0]:.1f}%) / {fringe:.1f}% "
                      f"(at least {rule.fringe_min:.0f}%)"))
    lines.append(Line("7. painted caps: MAE / top of R moves", b["caps_mae"] <= rule.caps_mae_max
                      and abs(b["caps_top"]) <= rule.caps_top_max,
                      f"{b['caps_mae']:.3f} (at most {rule.caps_mae_max}) / {b['caps_top']:+.1f}% (at most "
                      f"{rule.caps_top_max:.0f}%)"))
    hw = pc.load_set("headwear", str(lfw_truth), str(base / "pred_lfw.csv"), str(cand / "pred_lfw.csv"),
                     "FaceOcclusion", [("headwear", "covers_face")])
    lines.append(_paired("8. LFW val, headwear over the face, final", pc.compare([hw], RESAMPLES, by_gender=False),
                         rule.headwear_k))
    base_speed = "not measured" if a["speed"] is None else f"{a['speed']:.1f}"
    lines.append(Line("batch pipeline, images/s (int8)", b["speed"] is not None and b["speed"] >= rule.speed_min,
                      "not measured (measure --speed)" if b["speed"] is None else
                      f"{b['speed']:.1f} (at least {rule.speed_min:.0f}; base {base_speed})"))
    lfw_changes = alone[0]
    gap = abs(lfw_changes[0].err_b - lfw_changes[1].err_b) if len(lfw_changes) == 2 else float("nan")
    hair_only = challenge_score(cel.b, cel.gt, cel.male)[0]
    buys = [
        Line("facial hair found", fh_b >= rule.buys_facial_hair, f"{fh_b:.1f}% (at least {rule.buys_facial_hair:.0f}%)"),
        Line("CelebA-HQ hair-only final", hair_only <= rule.buys_hair_only,
             f"{hair_only:.5f} (at most {rule.buys_hair_only})"),
        Line("LFW val agreeing |Err_F - Err_M|", gap <= rule.buys_gap, f"{gap:.5f} (at most {rule.buys_gap})"),
    ]
    return lines, buys


def _score(pred: Path, truth: Path) -> float:
    """The final Score of a prediction file against a truth file, as ``occparse evaluate`` scores it."""
    from occparse.evaluation.metrics import evaluate, read_predictions, read_truth

    return float(evaluate(read_predictions(pred), read_truth(truth)).score)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="measure one weights folder on the gated sets")
    m.add_argument("--weights", type=Path, required=True, help="a weights folder with manifest.json")
    m.add_argument("--out", type=Path, required=True, help="folder for this folder's measurements")
    m.add_argument("--sets", type=Path, default=Path("gate/sets"), help="LFW val and benchmark sets (made once)")
    m.add_argument("--speed", action="store_true",
                   help=f"also occparse benchmark -n 1000 --repeat {SPEED_PASSES} (nothing else running)")
    j = sub.add_parser("judge", help="the rule's lines for a candidate against the base")
    j.add_argument("base", type=Path)
    j.add_argument("cand", type=Path)
    j.add_argument("--json", type=Path, help="also write the verdict as JSON")
    a = ap.parse_args(argv)
    if a.cmd == "measure":
        measure(a.weights, a.out, a.sets, a.speed)
        return 0
    lines, buys = judge(a.base, a.cand)
    print(f"candidate {a.cand} against {a.base}")
    for ln in lines:
        print(f"{'PASS' if ln.ok else 'FAIL'}  {ln.name}: {ln.detail}")
    print("and it must buy at least one of:")
    for ln in buys:
        print(f"{'yes ' if ln.ok else 'no  '}  {ln.name}: {ln.detail}")
    ok = all(ln.ok for ln in lines) and any(ln.ok for ln in buys)
    print(f"verdict: {'KEEP' if ok else 'DROP'}")
    if a.json:
        a.json.write_text(json.dumps({"keep": ok, "lines": [asdict(x) for x in lines],
                                      "buys": [asdict(x) for x in buys]}, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
