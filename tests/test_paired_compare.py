"""benchmarks/paired_compare.py: the paired bootstrap that tells a real change from a few photos."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location("paired_compare", Path(__file__).parents[1] / "benchmarks/paired_compare.py")
pc = importlib.util.module_from_spec(_spec)
sys.modules["paired_compare"] = pc  # dataclasses look their module up
_spec.loader.exec_module(pc)


def _rows(n=200, seed=0):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(0, 0.4, n)
    a = np.clip(gt + rng.normal(0, 0.03, n), 0, 1)
    male = np.arange(n) % 2 == 1
    return gt, a, male


def test_same_predictions_are_no_change():
    gt, a, male = _rows()
    r = pc.Rows("s", [f"p{i}" for i in range(len(gt))], gt, a, a.copy(), male)
    for c in pc.compare([r], resamples=500):
        assert c.change == 0 and c.p_worse == 0 and c.top == []
    exact = pc.Rows("s", ["x", "y"], np.array([0.1, 0.2]), np.array([0.1, 0.2]), np.array([0.1, 0.3]),
                    np.array([True, True]))
    (m,) = pc.compare([exact], resamples=50)
    assert np.isnan(m.change) and m.err_b > 0 and m.p_worse > 0  # A exact: no relative change, B still worse


def test_a_worse_everywhere_is_sure_and_one_photo_is_not():
    gt, a, male = _rows()
    names = [f"p{i}" for i in range(len(gt))]
    everywhere = pc.Rows("s", names, gt, a, np.clip(gt + 1.5 * (a - gt), 0, 1), male)
    f, m = pc.compare([everywhere], resamples=2000)
    assert f.change == pytest.approx(1.25, rel=0.01) and f.p_worse > 0.99 and f.low > 0
    one = a.copy()
    one[1] = min(1.0, gt[1] + 0.25)  # one man read far off
    f, m = pc.compare([pc.Rows("s", names, gt, a, one, male)], resamples=2000)
    assert f.change == 0
    assert m.change > 0.3 and m.top[0][0] == "s:p1" and m.top[0][1] == pytest.approx(1.0)
    assert m.low <= 0.01 and m.p_worse < 0.95  # one photo: the interval reaches down to about no change


def test_cli_pools_sets_and_filters(tmp_path, capsys):
    gt, a, male = _rows(40)
    truth = tmp_path / "truth.csv"
    truth.write_text("filename,FaceOcclusion,gender,kind\n" + "".join(
        f"p{i},{g:.4f},{'M' if m else 'F'},{'x' if i < 20 else 'y'}\n" for i, (g, m) in enumerate(zip(gt, male, strict=True))))
    pa, pb = tmp_path / "a.csv", tmp_path / "b.csv"
    pa.write_text("filename,FaceOcclusion\n" + "".join(f"p{i},{v:.4f}\n" for i, v in enumerate(a)))
    pb.write_text("filename,FaceOcclusion\n" + "".join(f"p{i},{v:.4f}\n" for i, v in enumerate(a) if i != 3))
    out = tmp_path / "r.json"
    assert pc.main(["--set", "s", str(truth), str(pa), str(pb), "--where", "s", "kind=x", "--resamples", "200",
                    "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "s:p3" in text  # the photo B did not read counts as the farthest value, and carries the change
    assert sum(c["n"] for c in __import__("json").loads(out.read_text())) == 20
    assert pc.main(["--set", "s", str(truth), str(pa), str(pb), "--all-genders", "--resamples", "200"]) == 0
    assert " all " in capsys.readouterr().out
    with pytest.raises(SystemExit):
        pc.main(["--set", "s", str(truth), str(pa), str(pb), "--where", "s", "nocol=1"])
    other = tmp_path / "c.csv"  # names written otherwise than in the truth: refused, not scored as all wrong
    other.write_text("filename,FaceOcclusion\n" + "".join(f"img/p{i},{v:.4f}\n" for i, v in enumerate(a)))
    with pytest.raises(SystemExit, match="no prediction for any"):
        pc.main(["--set", "s", str(truth), str(pa), str(other)])
