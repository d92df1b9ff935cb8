"""The challenge metric and the grouped errors that explain it.

Err = sum w_i (p_i - GT_i)^2 / sum w_i with w_i = 1/30 + GT_i, computed separately for
female and male images; Score = (Err_F + Err_M) / 2 + |Err_F - Err_M| (lower is better).
The gap term is why every report here shows both genders.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

OCCLUSION_BINS = (0.0, 0.025, 0.05, 0.1, 0.2, 0.35, 1.0)


class TruthFileError(ValueError):
    """The truth or prediction CSV does not follow the data contract."""


def challenge_weights(gt: np.ndarray) -> np.ndarray:
    """Per-sample weight 1/30 + GT: occluded faces count more."""
    return 1.0 / 30.0 + np.asarray(gt, dtype=np.float64)


def weighted_error(pred: np.ndarray, gt: np.ndarray) -> float:
    """Err over one group; NaN for an empty group."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if gt.size == 0:
        return math.nan
    w = challenge_weights(gt)
    return float(np.sum(w * (pred - gt) ** 2) / np.sum(w))


def parse_gender(value: str | float | None) -> float:
    """Gender as a probability of male: "M" -> 1, "F" -> 0, or a soft value in [0, 1]."""
    if value is None:  # a CSV row with fewer fields than the header
        raise TruthFileError("gender is missing")
    if isinstance(value, str):
        v = value.strip().upper()
        if v in ("M", "MALE"):
            return 1.0
        if v in ("F", "FEMALE"):
            return 0.0
        try:
            value = float(v)
        except ValueError:
            raise TruthFileError(f"gender {value!r} is neither F/M nor a number in [0, 1]") from None
    value = float(value)
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise TruthFileError(f"gender {value} is outside [0, 1]")
    return value


def challenge_score(pred: np.ndarray, gt: np.ndarray, male: np.ndarray) -> tuple[float, float, float]:
    """(Score, Err_F, Err_M); ``male`` is boolean (a soft gender is thresholded at 0.5 by the caller)."""
    male = np.asarray(male, dtype=bool)
    err_f = weighted_error(np.asarray(pred)[~male], np.asarray(gt)[~male])
    err_m = weighted_error(np.asarray(pred)[male], np.asarray(gt)[male])
    errs = [e for e in (err_f, err_m) if not math.isnan(e)]
    if not errs:
        return math.nan, err_f, err_m
    if len(errs) == 1:  # one gender only: the gap term is undefined, report the plain error
        return errs[0], err_f, err_m
    return (err_f + err_m) / 2.0 + abs(err_f - err_m), err_f, err_m


@dataclass
class GroupError:
    name: str
    n: int
    err: float
    mae: float


@dataclass
class Evaluation:
    """Everything `occparse evaluate` reports."""

    n_truth: int
    n_scored: int
    n_missing: int
    n_invalid: int
    score: float
    err_f: float
    err_m: float
    gap: float
    mae: float
    pearson_r: float
    missing_policy: str
    groups: list[GroupError] = field(default_factory=list)
    missing_examples: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def read_csv_rows(path: Path, error: type[Exception] | None = None) -> list[dict[str, str]]:
    """All rows of a CSV file; a missing or unreadable file raises ``error`` (default TruthFileError) with one line."""
    error = error or TruthFileError
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise error(f"{path}: cannot read as CSV ({e})") from None
    return rows


def read_truth(path: str | Path) -> list[dict[str, str]]:
    """Rows of a truth CSV: ``filename,FaceOcclusion,gender`` (more columns are kept)."""
    rows = read_csv_rows(Path(path))
    if not rows:
        raise TruthFileError(f"{path}: no rows")
    need = {"filename", "FaceOcclusion", "gender"}
    missing = need - set(rows[0])
    if missing:
        raise TruthFileError(f"{path}: missing column(s) {sorted(missing)}; the contract is filename,FaceOcclusion,gender")
    return rows


def read_predictions(path: str | Path, column: str = "FaceOcclusion") -> dict[str, str]:
    """filename -> raw prediction text of ``column`` (may be empty for a failed row)."""
    rows = read_csv_rows(Path(path))
    if rows and ("filename" not in rows[0] or column not in rows[0]):
        raise TruthFileError(f"{path}: predictions need columns filename,{column}")
    out: dict[str, str] = {}
    for r in rows:
        out[r["filename"]] = (r.get(column) or "").strip()
    return out


def _as_valid_prediction(text: str | None) -> float | None:
    if text is None or text == "":
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    if math.isnan(v) or v < 0.0 or v > 1.0:
        return None
    return v


def evaluate(
    pred: dict[str, str],
    truth_rows: list[dict[str, str]],
    missing_policy: str = "worst",
) -> Evaluation:
    """Score predictions against truth.

    A missing or invalid prediction is never dropped silently: under ``missing_policy="worst"``
    (the default) it is scored as the prediction farthest from the truth (0 or 1), which is
    what a crashed row would cost in the challenge; under ``"zero"`` it is scored as 0;
    under ``"skip"`` it is left out of the error but still counted and reported.
    """
    if missing_policy not in ("worst", "zero", "skip"):
        raise ValueError("missing_policy must be worst, zero or skip")
    gts, preds, males, grays, kinds, sources = [], [], [], [], [], []
    n_missing = n_invalid = 0
    missing_examples: list[str] = []
    for row in truth_rows:
        try:
            gt = float(row["FaceOcclusion"])
        except (TypeError, ValueError):  # TypeError: a short row leaves the field None
            raise TruthFileError(f"truth row {row['filename']}: FaceOcclusion {row['FaceOcclusion']!r} is not a number") from None
        try:
            male = parse_gender(row["gender"]) > 0.5
        except TruthFileError as e:
            raise TruthFileError(f"truth row {row['filename']}: {e}") from None
        raw = pred.get(row["filename"])
        p = _as_valid_prediction(raw)
        if p is None:
            if raw is None:
                n_missing += 1
            else:
                n_invalid += 1
            if len(missing_examples) < 10:
                missing_examples.append(row["filename"])
            if missing_policy == "skip":
                continue
            p = (1.0 if gt < 0.5 else 0.0) if missing_policy == "worst" else 0.0
        gts.append(gt)
        preds.append(p)
        males.append(male)
        grays.append(str(row.get("is_gray", "")).strip() in ("1", "true", "True"))
        kinds.append(row.get("occluder", ""))
        sources.append(row.get("source", ""))
    gt_a = np.array(gts)
    p_a = np.array(preds)
    m_a = np.array(males, dtype=bool)
    score, err_f, err_m = challenge_score(p_a, gt_a, m_a)
    mae = float(np.mean(np.abs(p_a - gt_a))) if gt_a.size else math.nan
    r = math.nan
    if gt_a.size > 1 and np.std(gt_a) > 0 and np.std(p_a) > 0:
        r = float(np.corrcoef(p_a, gt_a)[0, 1])

    groups: list[GroupError] = []

    def add(name: str, mask: np.ndarray) -> None:
        if mask.any():
            groups.append(
                GroupError(name, int(mask.sum()), weighted_error(p_a[mask], gt_a[mask]),
                           float(np.mean(np.abs(p_a[mask] - gt_a[mask]))))
            )

    add("female", ~m_a)
    add("male", m_a)
    if truth_rows and "is_gray" in truth_rows[0]:
        g_a = np.array(grays, dtype=bool)
        add("colour", ~g_a)
        add("gray", g_a)
    for lo, hi in zip(OCCLUSION_BINS[:-1], OCCLUSION_BINS[1:], strict=True):
        last = hi >= 1.0
        add(f"gt [{lo:.3f}, {hi:.3f}{']' if last else ')'}", (gt_a >= lo) & ((gt_a <= hi) if last else (gt_a < hi)))
    # base-face source (lfw / utkface, from occparse synth): the two follow different V conventions
    for column, values in (("source", sources), ("occluder", kinds)):
        if truth_rows and column in truth_rows[0]:
            v_a = np.array(values)
            for k in sorted(set(values)):
                add(f"{column}={k or 'none'}", v_a == k)
    gap = abs(err_f - err_m) if not (math.isnan(err_f) or math.isnan(err_m)) else math.nan
    return Evaluation(
        n_truth=len(truth_rows), n_scored=int(gt_a.size), n_missing=n_missing, n_invalid=n_invalid,
        score=score, err_f=err_f, err_m=err_m, gap=gap, mae=mae, pearson_r=r,
        missing_policy=missing_policy, groups=groups, missing_examples=missing_examples,
    )


def format_evaluation(ev: Evaluation) -> str:
    """A human-readable report."""
    lines = [
        f"Score   {ev.score:.6f}   (= (Err_F + Err_M)/2 + |Err_F - Err_M|, lower is better)",
        f"Err_F   {ev.err_f:.6f}",
        f"Err_M   {ev.err_m:.6f}",
        f"|gap|   {ev.gap:.6f}",
        f"MAE     {ev.mae:.4f}",
        f"Pearson {ev.pearson_r:.4f}",
        f"rows    {ev.n_truth} in truth, {ev.n_scored} scored, {ev.n_missing} missing, "
        f"{ev.n_invalid} invalid (policy: {ev.missing_policy})",
    ]
    if ev.missing_examples:
        lines.append("        e.g. " + ", ".join(ev.missing_examples[:5]))
    lines.append("")
    lines.append(f"{'group':<28}{'n':>7}{'Err':>12}{'MAE':>9}")
    for g in ev.groups:
        lines.append(f"{g.name:<28}{g.n:>7}{g.err:>12.6f}{g.mae:>9.4f}")
    return "\n".join(lines)
