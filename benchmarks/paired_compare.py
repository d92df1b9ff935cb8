"""Paired comparison of two prediction files on the same photos: is B really worse than A, or is it the seed?

A parser stage is judged on small real sets (a few hundred photos per gender, a few dozen of a kind),
where one or two heavy photos can move a gender's Err by 10%. This script scores A and B on the same
rows and asks how sure the difference is: it resamples the photos (with replacement, within each
gender and set, ``--resamples`` times) and reports, per gender, Err under A and B, B's relative change,
its 5th-95th percentile interval and the share of resamples where B is worse. It also names the photos
that carry most of the difference.

Several sets can be pooled: ``--set NAME TRUTH PRED_A PRED_B`` (repeatable); ``--where NAME COL=VALUE``
keeps the rows of set NAME whose truth column COL is VALUE (e.g. ``lfw_labels=agree``). ``--column``
picks the prediction column (``FaceOcclusion``, the final estimate, or ``geometric``). Missing or
invalid predictions are scored as ``occparse evaluate`` scores them by default (the farthest value).

Usage::

    python benchmarks/paired_compare.py \\
        --set lfw lfwval/truth.csv a/pred_lfw.csv b/pred_lfw.csv --where lfw lfw_labels=agree \\
        --set celeba a/celeb/truth_hair.csv a/celeb/pred_hair.csv b/celeb/pred_hair.csv \\
        --where celeba hair_only=yes [--column geometric] [--all-genders] [--resamples 10000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass

import numpy as np

from occparse.evaluation.metrics import (
    challenge_weights,
    farthest_prediction,
    parse_gender,
    read_predictions,
    read_truth,
    valid_prediction,
)


@dataclass
class Rows:
    """The paired rows of one set: names, truth, A's and B's predictions, male flags (1-D arrays), and how
    many rows each prediction file lacked or held no valid number for (scored as the farthest value)."""

    set_name: str
    names: list[str]
    gt: np.ndarray
    a: np.ndarray
    b: np.ndarray
    male: np.ndarray
    unscored_a: int = 0
    unscored_b: int = 0


@dataclass
class GenderChange:
    """One gender's pooled Err under A and B, and how sure B's change is."""

    gender: str
    n: int
    err_a: float
    err_b: float
    change: float  # err_b / err_a - 1
    low: float  # 5th percentile of the resampled change
    high: float  # 95th percentile
    p_worse: float  # share of resamples with err_b > err_a
    top: list[tuple[str, float]]  # (set:photo, share of the Err difference it carries)


def load_set(name: str, truth: str, pred_a: str, pred_b: str, column: str, where: list[tuple[str, str]]) -> Rows:
    """Read one set's truth and both prediction files; keep rows whose truth matches every ``where`` pair."""
    rows = read_truth(truth)
    for col, _ in where:
        if col not in rows[0]:
            raise SystemExit(f"{truth}: no column {col!r} (columns: {', '.join(rows[0])})")
    rows = [r for r in rows if all(r[c] == v for c, v in where)]
    if not rows:
        raise SystemExit(f"set {name}: no truth rows left after --where")
    pa, pb = read_predictions(pred_a, column), read_predictions(pred_b, column)
    for path, pred in ((pred_a, pa), (pred_b, pb)):
        if not any(r["filename"] in pred for r in rows):
            raise SystemExit(f"{path}: no prediction for any of the {len(rows)} rows of set {name} "
                             "(are the file names written as in the truth?)")
    gt = np.array([float(r["FaceOcclusion"]) for r in rows])

    def scored(pred: dict[str, str]) -> tuple[np.ndarray, int]:
        """The predictions of ``rows`` (an unscored one as the farthest value), and how many were unscored."""
        values = [valid_prediction(pred.get(r["filename"])) for r in rows]
        return (np.array([farthest_prediction(g) if v is None else v for v, g in zip(values, gt, strict=True)]),
                sum(v is None for v in values))

    (a, unscored_a), (b, unscored_b) = scored(pa), scored(pb)
    male = np.array([parse_gender(r["gender"]) > 0.5 for r in rows])
    return Rows(name, [r["filename"] for r in rows], gt, a, b, male, unscored_a, unscored_b)


def compare(sets: list[Rows], resamples: int = 10000, seed: int = 0, top: int = 5,
            by_gender: bool = True) -> list[GenderChange]:
    """Per gender (F, then M; or one group "all"): pooled Err of A and B over ``sets`` and the paired
    bootstrap of B's change.

    Photos are resampled within each (set, gender) cell, so every resample keeps the sets' sizes.
    """
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    rng = np.random.default_rng(seed)
    out = []
    groups = (("F", False), ("M", True)) if by_gender else (("all", None),)
    for gender, is_male in groups:
        cells = []  # per set: weights, A's and B's weighted squared errors
        names = []
        for s in sets:
            keep = s.male == is_male if is_male is not None else np.ones(len(s.gt), bool)
            if not keep.any():
                continue
            w = challenge_weights(s.gt[keep])
            cells.append((w, w * (s.a[keep] - s.gt[keep]) ** 2, w * (s.b[keep] - s.gt[keep]) ** 2))
            names += [f"{s.set_name}:{n}" for n, k in zip(s.names, keep, strict=True) if k]
        if not cells:
            continue
        w = np.concatenate([c[0] for c in cells])
        ea, eb = np.concatenate([c[1] for c in cells]), np.concatenate([c[2] for c in cells])
        err_a, err_b = ea.sum() / w.sum(), eb.sum() / w.sum()
        sum_w = np.zeros(resamples)
        sum_a = np.zeros(resamples)
        sum_b = np.zeros(resamples)
        for cw, ca, cb in cells:
            idx = rng.integers(0, len(cw), size=(resamples, len(cw)))
            sum_w += cw[idx].sum(1)
            sum_a += ca[idx].sum(1)
            sum_b += cb[idx].sum(1)
        diff = eb - ea
        total = diff.sum()
        # the photos that carry the difference (none when A and B agree on every photo)
        carried = [] if total == 0 else [(names[i], float(diff[i] / total)) for i in np.argsort(-np.abs(diff))[:top]]
        if err_a > 0:
            with np.errstate(divide="ignore", invalid="ignore"):  # a resample of perfect A rows: no ratio
                ratio = (sum_b / sum_w) / (sum_a / sum_w) - 1.0
            ratio = ratio[np.isfinite(ratio)]
            change = float(err_b / err_a - 1.0)
            low, high = (float(np.percentile(ratio, q)) for q in (5, 95)) if ratio.size else (math.nan, math.nan)
        else:  # A is exact on every photo: a relative change is undefined
            change = low = high = math.nan
        out.append(GenderChange(gender, len(w), float(err_a), float(err_b), change, low, high,
                                float(np.mean(sum_b > sum_a)), carried))
    return out


def format_changes(title: str, changes: list[GenderChange]) -> str:
    lines = [title, f"  {'':3} {'n':>4} {'Err A':>9} {'Err B':>9} {'change':>8} {'5%..95%':>17} {'P(B worse)':>10}"]
    for c in changes:
        lines.append(f"  {c.gender:3} {c.n:4d} {c.err_a:9.6f} {c.err_b:9.6f} {c.change:+8.1%} "
                     f"{c.low:+8.1%}..{c.high:+7.1%} {c.p_worse:10.3f}")
        if c.top:
            lines.append("       most of the difference: " + ", ".join(f"{n} {s:+.0%}" for n, s in c.top))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", nargs=4, action="append", required=True, metavar=("NAME", "TRUTH", "PRED_A", "PRED_B"),
                    help="a set to pool: its truth CSV and the two prediction CSVs (repeatable)")
    ap.add_argument("--where", nargs=2, action="append", default=[], metavar=("NAME", "COL=VALUE"),
                    help="keep only the rows of set NAME whose truth column COL equals VALUE (repeatable)")
    ap.add_argument("--column", default="FaceOcclusion", help="prediction column (default FaceOcclusion: the final estimate)")
    ap.add_argument("--all-genders", action="store_true", help="one group of all photos instead of F and M")
    ap.add_argument("--resamples", type=int, default=10000, help="bootstrap resamples (default 10000)")
    ap.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    ap.add_argument("--json", help="also write the result as JSON here")
    a = ap.parse_args(argv)
    where: dict[str, list[tuple[str, str]]] = {}
    for name, cond in a.where:
        if "=" not in cond:
            ap.error(f"--where {name} {cond}: expected COL=VALUE")
        col, value = cond.split("=", 1)
        where.setdefault(name, []).append((col, value))
    unknown = set(where) - {s[0] for s in a.set}
    if unknown:
        ap.error(f"--where names no set: {', '.join(sorted(unknown))}")
    sets = [load_set(n, t, pa, pb, a.column, where.get(n, [])) for n, t, pa, pb in a.set]
    if a.resamples < 1:
        ap.error("--resamples must be at least 1")
    for s in sets:
        if s.unscored_a or s.unscored_b:
            print(f"set {s.set_name}: rows without a valid prediction (scored as the farthest value, as occparse "
                  f"evaluate does): A {s.unscored_a}, B {s.unscored_b} of {len(s.names)}", file=sys.stderr)
    changes = compare(sets, a.resamples, a.seed, by_gender=not a.all_genders)
    print(format_changes(f"{' + '.join(s.set_name for s in sets)} ({a.column}); A = first predictions, B = second",
                         changes))
    if a.json:
        def finite(v):  # strict JSON has no NaN: an undefined change is null
            return None if isinstance(v, float) and not math.isfinite(v) else v
        with open(a.json, "w") as f:
            json.dump([{k: finite(v) for k, v in asdict(c).items()} for c in changes], f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
