"""The handed real-photo cases of the facial-hair / real-occluder kind (../shared/cases, research-licensed:
read from there, never copied). Each stands for a kind of failure: a natural full beard, a painted beard,
paint lines on the skin (still face), sunglasses plus a mask. The expected values come from label maps
(see the cases' README); a miss that the shipped models cannot fix yet is a strict xfail with the
measured reading in its reason, so that a fix shows up as an unexpected pass."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

CASES = {
    "beard_natural.jpg": None,
    "beard_painted.png": None,
    "paint_lines.png": None,
    "sunglasses_mask.png": None,
}
#: cases the shipped models still miss, with what they read when this was written (xfail, strict)
KNOWN_MISSES: dict[str, str] = {
    "beard_natural.jpg": "reads 0.234 (geometric 0.271, regressor 0.047) against 0.352 +- 0.07: the parser finds "
                         "part of the beard, the regressors do not read it and the stacker, fitted mostly on faces "
                         "whose regressor is right, follows them part-way",
    "sunglasses_mask.png": "reads 0.646 (geometric 0.692, regressor 0.492) against 0.742 +- 0.07: the parser reads "
                           "part of the lenses as skin and the regressor misses them; the lenses are too light for "
                           "the dark-lens rule (the brightest tenth of each eye at 0.47-0.51 of the skin, the rule "
                           "needs 0.35 or less)",
}


def _cases_dir(data_root: Path) -> Path:
    d = data_root.parent / "cases"
    if not (d / "cases.csv").exists():
        pytest.skip("../shared/cases not found")
    return d


@pytest.fixture(scope="module")
def estimator():
    from occparse import Estimator

    return Estimator()


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_photo_case_reads_within_tolerance(name, data_root, estimator, request):
    d = _cases_dir(data_root)
    with open(d / "cases.csv", newline="") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    row = rows[name]
    if name in KNOWN_MISSES:
        request.applymarker(pytest.mark.xfail(strict=True, reason=KNOWN_MISSES[name]))
    res = estimator.analyze(d / name).result
    assert res.ok, res.message
    got = res.faces[0].occlusion
    assert abs(got - float(row["occlusion"])) <= float(row["tolerance"]), f"{name}: read {got:.3f}, want {row['occlusion']}"


def test_facial_hair_visible_reads_a_beard_as_face(data_root):
    """The option moves the geometric estimate down on a bearded face (the beard is then visible face)."""
    from occparse import Estimator, EstimatorOptions

    d = _cases_dir(data_root)
    occ = Estimator().analyze(d / "beard_natural.jpg").result.faces[0]
    vis = Estimator(EstimatorOptions(facial_hair="visible")).analyze(d / "beard_natural.jpg").result.faces[0]
    assert occ.occluded_by.facial_hair > 0.2  # the parser sees the beard as facial hair
    assert vis.geometric < occ.geometric - 0.05
