"""The challenge metric against hand-worked numbers, and `occparse evaluate`."""

from __future__ import annotations

import json
import math

import pytest

from occparse.cli import main
from occparse.evaluation.metrics import (
    TruthFileError,
    challenge_score,
    evaluate,
    parse_gender,
    read_predictions,
    read_truth,
)

# Hand-worked example: two women, two men. w = 1/30 + GT.
#
#   file   gender  GT    pred   (p-GT)^2   w
#   a.jpg  F       0.0   0.1    0.01       1/30
#   b.jpg  F       0.5   0.3    0.04       16/30
#   c.jpg  M       0.2   0.2    0.00       7/30
#   d.jpg  M       0.1   0.4    0.09       4/30
#
# Err_F = (1/30*0.01 + 16/30*0.04) / (17/30) = (0.01 + 0.64) / 17 = 0.65/17 = 13/340
# Err_M = (7/30*0 + 4/30*0.09) / (11/30)    = 0.36 / 11         = 9/275
# Score = (Err_F + Err_M)/2 + |Err_F - Err_M| = 1.5*13/340 - 0.5*9/275   (Err_F > Err_M)
#       = 39/680 - 9/550 = 2145/37400 - 612/37400 = 1533/37400 = 0.0409893048...
TRUTH = [
    {"filename": "a.jpg", "FaceOcclusion": "0.0", "gender": "F"},
    {"filename": "b.jpg", "FaceOcclusion": "0.5", "gender": "F"},
    {"filename": "c.jpg", "FaceOcclusion": "0.2", "gender": "M"},
    {"filename": "d.jpg", "FaceOcclusion": "0.1", "gender": "M"},
]
PRED = {"a.jpg": "0.1", "b.jpg": "0.3", "c.jpg": "0.2", "d.jpg": "0.4"}
ERR_F = 13 / 340  # 0.0382352941
ERR_M = 9 / 275  # 0.0327272727
SCORE = 1533 / 37400  # 0.0409893048


def _write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(str(v) for v in r) for r in rows]) + "\n")
    return path


def test_hand_worked_example():
    ev = evaluate(PRED, TRUTH)
    assert ev.err_f == pytest.approx(ERR_F, abs=1e-12)
    assert ev.err_m == pytest.approx(ERR_M, abs=1e-12)
    assert ev.score == pytest.approx(SCORE, abs=1e-12)
    assert ev.gap == pytest.approx(ERR_F - ERR_M, abs=1e-12)
    # MAE = (0.1 + 0.2 + 0 + 0.3) / 4 = 0.15
    assert ev.mae == pytest.approx(0.15)
    assert (ev.n_truth, ev.n_scored, ev.n_missing, ev.n_invalid) == (4, 4, 0, 0)
    groups = {g.name: g for g in ev.groups}
    assert groups["female"].n == 2 and groups["female"].err == pytest.approx(ERR_F)
    assert groups["male"].n == 2 and groups["male"].err == pytest.approx(ERR_M)


def test_groups_by_source_and_occluder():
    """Rows a and b come from one source, c and d from another: each group's Err is its own rows' Err."""
    truth = [dict(r, source=s, occluder=k) for r, s, k in zip(TRUTH, ["lfw", "lfw", "utkface", "utkface"],
                                                               ["hand", "", "hand", "mask"], strict=True)]
    groups = {g.name: g for g in evaluate(PRED, truth).groups}
    assert groups["source=lfw"].n == 2 and groups["source=lfw"].err == pytest.approx(ERR_F)
    assert groups["source=utkface"].n == 2 and groups["source=utkface"].err == pytest.approx(ERR_M)
    # hand: a (w 1/30, 0.01) and c (w 7/30, 0) -> (0.01/30) / (8/30) = 0.00125
    assert groups["occluder=hand"].n == 2 and groups["occluder=hand"].err == pytest.approx(0.01 / 8)
    assert groups["occluder=none"].n == 1 and groups["occluder=mask"].n == 1


def test_challenge_score_direct():
    import numpy as np

    score, ef, em = challenge_score(
        np.array([0.1, 0.3, 0.2, 0.4]), np.array([0.0, 0.5, 0.2, 0.1]), np.array([False, False, True, True])
    )
    assert (score, ef, em) == pytest.approx((SCORE, ERR_F, ERR_M), abs=1e-12)


def test_truth_against_itself_is_zero():
    ev = evaluate({r["filename"]: r["FaceOcclusion"] for r in TRUTH}, TRUTH)
    assert ev.score == 0.0 and ev.err_f == 0.0 and ev.err_m == 0.0 and ev.mae == 0.0
    assert ev.pearson_r == pytest.approx(1.0)


def test_constant_prediction():
    # Predict 0.1 everywhere:
    #   a: (0.1-0.0)^2 = 0.01, w 1/30    b: (0.1-0.5)^2 = 0.16, w 16/30
    #   c: (0.1-0.2)^2 = 0.01, w 7/30    d: 0,                  w 4/30
    # Err_F = (0.01 + 16*0.16) / 17 = 2.57/17 = 0.1511764706
    # Err_M = (7*0.01) / 11         = 0.07/11 = 0.0063636364
    # Score = 1.5*2.57/17 - 0.5*0.07/11 = 0.2267647059 - 0.0031818182 = 0.2235828877
    ev = evaluate({n: "0.1" for n in PRED}, TRUTH)
    assert ev.err_f == pytest.approx(2.57 / 17, abs=1e-12)
    assert ev.err_m == pytest.approx(0.07 / 11, abs=1e-12)
    assert ev.score == pytest.approx(0.2235828877, abs=1e-9)
    assert math.isnan(ev.pearson_r)  # a constant prediction has no correlation


def test_missing_row_counted_and_scored_worst():
    pred = dict(PRED)
    del pred["b.jpg"]  # GT 0.5 -> worst prediction is 0.0 (GT >= 0.5), (0-0.5)^2 = 0.25
    ev = evaluate(pred, TRUTH)
    assert ev.n_missing == 1 and ev.n_invalid == 0 and ev.n_scored == 4
    assert ev.missing_examples == ["b.jpg"]
    # Err_F = (1/30*0.01 + 16/30*0.25) / (17/30) = 4.01/17
    assert ev.err_f == pytest.approx(4.01 / 17, abs=1e-12)
    assert ev.err_m == pytest.approx(ERR_M, abs=1e-12)
    # worst is worse than any real prediction would have been
    assert ev.score > SCORE

    skip = evaluate(pred, TRUTH, missing_policy="skip")
    assert skip.n_missing == 1 and skip.n_scored == 3
    assert skip.err_f == pytest.approx(0.01)  # only a.jpg left among women
    zero = evaluate(pred, TRUTH, missing_policy="zero")
    assert zero.err_f == pytest.approx(4.01 / 17)  # 0 is also the worst for GT 0.5


def test_worst_policy_for_low_truth_is_one():
    pred = dict(PRED)
    del pred["a.jpg"]  # GT 0.0 -> worst is 1.0: (1-0)^2 = 1, w 1/30
    ev = evaluate(pred, TRUTH)
    # Err_F = (1/30*1 + 16/30*0.04) / (17/30) = (1 + 0.64) / 17 = 1.64/17
    assert ev.err_f == pytest.approx(1.64 / 17, abs=1e-12)


def test_invalid_values_counted():
    pred = {"a.jpg": "abc", "b.jpg": "0.3", "c.jpg": "1.5", "d.jpg": ""}
    ev = evaluate(pred, TRUTH)
    assert ev.n_invalid == 3 and ev.n_missing == 0
    assert sorted(ev.missing_examples) == ["a.jpg", "c.jpg", "d.jpg"]
    # worst policy: a (GT 0) -> 1: 1.00, w 1/30; c (GT .2) -> 1: 0.64, w 7/30; d (GT .1) -> 1: 0.81, w 4/30
    # Err_F = (1*1 + 16*0.04)/17 = 1.64/17 ; Err_M = (7*0.64 + 4*0.81)/11 = (4.48 + 3.24)/11 = 7.72/11
    assert ev.err_f == pytest.approx(1.64 / 17, abs=1e-12)
    assert ev.err_m == pytest.approx(7.72 / 11, abs=1e-12)
    assert evaluate({**PRED, "a.jpg": "nan"}, TRUTH).n_invalid == 1
    assert evaluate({**PRED, "a.jpg": "-0.01"}, TRUTH).n_invalid == 1


def test_soft_gender():
    assert parse_gender("M") == 1.0 and parse_gender("f") == 0.0 and parse_gender(" 0.7 ") == 0.7
    with pytest.raises(TruthFileError):
        parse_gender("X")
    with pytest.raises(TruthFileError):
        parse_gender("1.5")
    # 0.2, 0.5 -> female (0.5 is not > 0.5); 0.51, 1 -> male: same split as the F/M example
    soft = [dict(r) for r in TRUTH]
    for r, g in zip(soft, ["0.2", "0.5", "0.51", "1"], strict=True):
        r["gender"] = g
    ev = evaluate(PRED, soft)
    assert ev.err_f == pytest.approx(ERR_F) and ev.err_m == pytest.approx(ERR_M) and ev.score == pytest.approx(SCORE)
    # flipping one soft gender over 0.5 moves b.jpg to the men and changes the score
    soft[1]["gender"] = "0.9"
    assert evaluate(PRED, soft).score != pytest.approx(SCORE)


def test_single_gender_reports_plain_error():
    ev = evaluate(PRED, TRUTH[:2])
    assert ev.score == pytest.approx(ERR_F) and math.isnan(ev.err_m) and math.isnan(ev.gap)


def test_read_csvs(tmp_path):
    t = _write_csv(tmp_path / "t.csv", ["filename", "FaceOcclusion", "gender"], [[r["filename"], r["FaceOcclusion"], r["gender"]] for r in TRUTH])
    p = _write_csv(tmp_path / "p.csv", ["filename", "FaceOcclusion"], [["a.jpg", "0.1"], ["b.jpg", ""]])
    assert len(read_truth(t)) == 4
    assert read_predictions(p) == {"a.jpg": "0.1", "b.jpg": ""}
    bad = _write_csv(tmp_path / "bad.csv", ["filename", "gender"], [["a.jpg", "F"]])
    with pytest.raises(TruthFileError, match="FaceOcclusion"):
        read_truth(bad)
    with pytest.raises(TruthFileError, match="no such file"):
        read_truth(tmp_path / "absent.csv")


@pytest.fixture
def csvs(tmp_path):
    t = _write_csv(tmp_path / "truth.csv", ["filename", "FaceOcclusion", "gender"],
                   [[r["filename"], r["FaceOcclusion"], r["gender"]] for r in TRUTH])
    p = _write_csv(tmp_path / "pred.csv", ["filename", "FaceOcclusion"], [[k, v] for k, v in PRED.items()])
    return t, p


def test_cli_evaluate_json(csvs, capsys):
    t, p = csvs
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["score"] == pytest.approx(SCORE) and out["err_f"] == pytest.approx(ERR_F)
    assert out["err_m"] == pytest.approx(ERR_M)
    assert out["n_truth"] == 4 and out["n_missing"] == 0 and out["missing_policy"] == "worst"


def test_cli_evaluate_table_and_strict(csvs, capsys, tmp_path):
    t, _ = csvs
    p = _write_csv(tmp_path / "partial.csv", ["filename", "FaceOcclusion"], [["a.jpg", "0.1"], ["c.jpg", "0.2"]])
    assert main(["evaluate", "--pred", str(p), "--truth", str(t)]) == 0
    out = capsys.readouterr().out
    assert "Score" in out and "2 missing" in out
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--strict"]) == 1


@pytest.mark.parametrize(
    "truth_text",
    [
        "filename,gender\na.jpg,F\n",  # missing column
        "filename,FaceOcclusion,gender\na.jpg,0.1\n",  # short row: gender missing
        "filename,FaceOcclusion,gender\na.jpg,x,F\n",  # GT not a number
        "filename,FaceOcclusion,gender\na.jpg,0.1,Q\n",  # bad gender
    ],
    ids=["missing-column", "short-row", "bad-gt", "bad-gender"],
)
def test_cli_bad_truth_exits_2_with_one_line(tmp_path, capsys, truth_text):
    t = tmp_path / "truth.csv"
    t.write_text(truth_text)
    p = _write_csv(tmp_path / "pred.csv", ["filename", "FaceOcclusion"], [["a.jpg", "0.1"]])
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--json"]) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    err = cap.err.strip()
    assert err.startswith("occparse: error:") and "\n" not in err and "Traceback" not in cap.err


# --by: the hand-worked rows split two ways. kind x = {a (F, GT 0, p 0.1), c (M, 0.2, 0.2)}:
# Err_F = 0.01, Err_M = 0 -> Score = 0.005 + 0.01 = 0.015; bias = (0.1 + 0) / 2 = +0.05.
# kind y = {b (F, 0.5, 0.3), d (M, 0.1, 0.4)}: Err_F = 0.04, Err_M = 0.09 -> Score = 0.065 + 0.05 = 0.115;
# bias = (-0.2 + 0.3) / 2 = +0.05, MAE 0.25, mean GT 0.3.
KIND_TRUTH = [dict(r, kind=k) for r, k in zip(TRUTH, ["x", "y", "x", "y"], strict=True)]


def test_by_column_scores_each_value():
    ev = evaluate(PRED, KIND_TRUTH, by=["kind"])
    assert [b.column for b in ev.by] == ["kind"]
    x, y = ev.by[0].values
    assert (x.value, x.n, x.n_f, x.n_m) == ("x", 2, 1, 1)
    assert x.err_f == pytest.approx(0.01) and x.err_m == pytest.approx(0.0) and x.score == pytest.approx(0.015)
    assert x.bias == pytest.approx(0.05) and x.mae == pytest.approx(0.05) and x.mean_truth == pytest.approx(0.1)
    assert y.score == pytest.approx(0.115) and y.err_f == pytest.approx(0.04) and y.err_m == pytest.approx(0.09)
    assert y.bias == pytest.approx(0.05) and y.mae == pytest.approx(0.25) and y.mean_truth == pytest.approx(0.3)
    # the whole is unchanged by asking for a breakdown
    assert ev.score == pytest.approx(SCORE)


def test_by_one_gender_value_and_numeric_order():
    truth = [dict(r, bin=b) for r, b in zip(TRUTH, ["10", "2", "10", ""], strict=True)]
    ev = evaluate(PRED, truth, by=["bin", "gender", "bin"])  # asked twice: reported once
    assert [b.column for b in ev.by] == ["bin", "gender"]
    assert [v.value for v in ev.by[0].values] == ["2", "10", ""]  # numbers by value, the empty value last
    f, m = ev.by[1].values
    assert (f.value, f.n_f, f.n_m) == ("F", 2, 0) and f.score == pytest.approx(ERR_F) and math.isnan(f.err_m)
    assert (m.value, m.n_m) == ("M", 2) and m.score == pytest.approx(ERR_M)


def test_by_counts_missing_rows_as_the_whole_does():
    """A missing prediction is scored (worst) in its value's row too, or left out of both under skip."""
    pred = {k: v for k, v in PRED.items() if k != "b.jpg"}
    y = evaluate(pred, KIND_TRUTH, by=["kind"]).by[0].values[1]
    assert y.n == 2 and y.bias == pytest.approx(((0.0 - 0.5) + 0.3) / 2)  # b scored 0 (truth 0.5 -> worst is 0)
    y = evaluate(pred, KIND_TRUTH, missing_policy="skip", by=["kind"]).by[0].values[1]
    assert (y.n, y.n_f, y.n_m) == (1, 0, 1) and y.score == pytest.approx(0.09)


def test_by_refuses_missing_and_continuous_columns():
    with pytest.raises(TruthFileError, match="no column 'occluder'.*filename, FaceOcclusion, gender, kind"):
        evaluate(PRED, KIND_TRUTH, by=["occluder"])
    many = [{"filename": f"{i}.jpg", "FaceOcclusion": "0.1", "gender": "F", "share": str(i / 1000)} for i in range(150)]
    with pytest.raises(TruthFileError, match="150 distinct values"):
        evaluate({}, many, by=["share"])


def test_cli_evaluate_by(tmp_path, capsys):
    t = _write_csv(tmp_path / "truth.csv", ["filename", "FaceOcclusion", "gender", "kind"],
                   [[r["filename"], r["FaceOcclusion"], r["gender"], r["kind"]] for r in KIND_TRUTH])
    p = _write_csv(tmp_path / "pred.csv", ["filename", "FaceOcclusion"], [[k, v] for k, v in PRED.items()])
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--by", "kind"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[out.splitlines().index(
        next(x for x in out.splitlines() if x.startswith("by kind"))) + 1:] if line.strip()}
    assert rows["x"][1:4] == ["2", "1", "1"] and float(rows["x"][4]) == pytest.approx(0.015)
    assert float(rows["y"][4]) == pytest.approx(0.115) and float(rows["y"][8]) == pytest.approx(0.05)
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--by", "kind", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["by"][0]["column"] == "kind"
    assert {v["value"]: v["score"] for v in out["by"][0]["values"]} == pytest.approx({"x": 0.015, "y": 0.115})
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--by", "gender", "--json"]) == 0
    f = json.loads(capsys.readouterr().out)["by"][0]["values"][0]
    assert f["value"] == "F" and f["err_m"] is None and f["score"] == pytest.approx(ERR_F)  # strict JSON: null
    assert main(["evaluate", "--pred", str(p), "--truth", str(t), "--by", "source", "--json"]) == 2
    cap = capsys.readouterr()
    assert cap.out == "" and "--by source" in cap.err and str(t) in cap.err and "kind" in cap.err
