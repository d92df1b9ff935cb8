"""benchmarks/celebahq_kinds.py: its kind rules on hand-made attributes, and a short run on the data
(skipped without ../shared/data) whose written truth and predictions `occparse evaluate` scores to the
same numbers the benchmark reports."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from occparse.cli import main
from occparse.synth.sources import hair_mask_occluders

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("celebahq_kinds", ROOT / "benchmarks" / "celebahq_kinds.py")
ck = importlib.util.module_from_spec(_spec)
sys.modules["celebahq_kinds"] = ck  # dataclasses look their module up while the file runs
_spec.loader.exec_module(ck)

ATTRS = ("Wearing_Hat", "Bangs", "Eyeglasses", "Goatee", "Mustache", "Sideburns", "5_o_Clock_Shadow", "No_Beard")


def attrs(*on: str, beard: bool = False) -> dict[str, bool]:
    a = dict.fromkeys(ATTRS, False)
    a.update(dict.fromkeys(on, True))
    a["No_Beard"] = not beard
    return a


@pytest.mark.parametrize(("on", "beard", "kinds", "kind", "hair_only"), [
    ((), False, ["plain"], "plain", True),
    (("Bangs",), False, ["fringe"], "fringe", True),
    (("Mustache",), True, ["facial_hair"], "facial_hair", False),
    (("Sideburns", "Bangs"), False, ["facial_hair", "fringe"], "fringe", False),
    (("Wearing_Hat", "Goatee"), True, ["facial_hair", "hat"], "hat", False),
    (("Eyeglasses",), False, ["eyeglasses"], "eyeglasses", False),
    (("5_o_Clock_Shadow",), False, [], "other", False),  # stubble: neither plain nor facial hair
    ((), True, [], "other", False),  # No_Beard = -1 without goatee or moustache: not plain
])
def test_kind_rules(on, beard, kinds, kind, hair_only):
    a = attrs(*on, beard=beard)
    assert ck.kinds_of(a) == kinds
    assert ck.truth_kind(a) == kind
    assert ck.hair_only(a) is hair_only


def test_short_run_agrees_with_evaluate(data_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert ck.main(["--data", str(data_root), "--out", str(out), "--limit", "6", "--json", str(tmp_path / "s.json")]) == 0
    capsys.readouterr()
    summary = json.loads((tmp_path / "s.json").read_text())
    truth = (out / "truth_hair.csv").read_text().splitlines()
    assert truth[0] == ("filename,FaceOcclusion,gender,kind,hair_only,hair_audit,hair_complete,forehead_hair"
                        ) and len(truth) - 1 == summary["n_truth"] > 0
    rows = list(csv.DictReader(truth))
    gts = np.array([float(r["FaceOcclusion"]) for r in rows])
    assert ((gts >= 0) & (gts <= 1)).all() and gts.max() > 0  # some hair over R among six photos
    # the forehead's share under the drawn hair: some of the six have hair over the forehead
    fh = np.array([float(r["forehead_hair"]) for r in rows])
    assert ((fh >= 0) & (fh <= 1)).all() and fh.max() > 0
    for r in rows:  # the audit by eye: what it saw, and whether the hair mask is then the whole truth
        seen = hair_mask_occluders(r["filename"])
        assert r["hair_audit"] == ("+".join(seen) or "none")
        assert r["hair_complete"] == ("yes" if r["hair_only"] == "yes" and not seen else "no")
    vs = summary["forehead_vs_mask"]
    assert set(vs) == set(ck.KINDS) and sum(v["n"] for v in vs.values()) >= 1
    for v in vs.values():
        assert 0 <= v["both"] <= min(v["by_mask"], v["by_occparse"]) <= v["n"]
    for column in ("FaceOcclusion", "geometric"):
        assert main(["evaluate", "--pred", str(out / "pred_hair.csv"), "--truth", str(out / "truth_hair.csv"),
                     "--column", column, "--by", "kind", "--json"]) == 0
        ev = json.loads(capsys.readouterr().out)
        assert ev["score"] == pytest.approx(summary["hair"][column]["score"])
        assert [v["value"] for v in ev["by"][0]["values"]] == [v["value"] for v in summary["hair"][column]["by_kind"]]
    faces = (out / "faces.csv").read_text().splitlines()
    assert len(faces) - 1 == summary["n_hair_photos"] + 6  # both parts, one row per photo
    assert {a["check"].split(":")[0] for a in summary["acceptance"]} >= {"plain median final <= 0.05"}
    assert "acceptance" in (out / "report.txt").read_text()
