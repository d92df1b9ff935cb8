"""The challenge metric and the grouped errors that explain it.

Err = sum w_i (p_i - GT_i)^2 / sum w_i with w_i = 1/30 + GT_i, computed separately for
female and male images; Score = (Err_F + Err_M) / 2 + |Err_F - Err_M| (lower is better).
The gap term is why every report here shows both genders.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..runtime.io import read_csv_rows

#: true-occlusion bins of the report: a model that shrinks towards the mean shows a positive bias
#: in the first bins and a negative one in the last (judge heavy cases by these, not the mean alone)
OCCLUSION_BINS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 1.0)
#: facial-hair groups for LFW-based truth (column ``facial_hair``: share of R that is facial hair)
FACIAL_HAIR_GROUPS = (("no facial hair", 0.0, 0.01), ("some facial hair", 0.01, 0.1), ("full beard", 0.1, 1.01))


def occlusion_bins(gt: np.ndarray) -> list[tuple[float, float, np.ndarray]]:
    """(low, high, boolean mask of ``gt``) for each bin of :data:`OCCLUSION_BINS`; the last bin includes 1.0."""
    gt = np.asarray(gt, np.float64)
    out = []
    for lo, hi in zip(OCCLUSION_BINS[:-1], OCCLUSION_BINS[1:], strict=True):
        out.append((lo, hi, (gt >= lo) & ((gt <= hi) if hi >= 1.0 else (gt < hi))))
    return out


class TruthFileError(DataError, ValueError):
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
    """Errors of one group of rows: Err (the challenge's weighted squared error), mean absolute error,
    and bias, the mean signed error (prediction - truth; negative = under-read)."""

    name: str
    n: int
    err: float
    mae: float
    bias: float = math.nan


@dataclass
class ValueScore:
    """The challenge metric over the rows whose truth ``column`` holds one value (``occparse evaluate --by``).

    ``score`` is Score = (Err_F + Err_M)/2 + |Err_F - Err_M| over those rows (the plain Err of the one
    gender when the other has no row; NaN when no row was scored); ``mae`` and ``bias`` (mean of
    prediction - truth, negative = under-read) are over all of them; ``mean_truth`` is their mean GT."""

    value: str
    n: int
    n_f: int
    n_m: int
    score: float
    err_f: float
    err_m: float
    mae: float
    bias: float
    mean_truth: float


@dataclass
class ColumnBreakdown:
    """Every value of one truth column and its :class:`ValueScore`, values in sorted order (numbers by value)."""

    column: str
    values: list[ValueScore] = field(default_factory=list)


#: --by refuses a column with more distinct values than this (a continuous column, such as a
#: facial-hair share, gives one row per sample: bin it into a kind column first)
MAX_BY_VALUES = 100


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
    n_unknown: int = 0  # prediction rows whose filename is not in the truth (not scored)
    unknown_examples: list[str] = field(default_factory=list)
    by: list[ColumnBreakdown] = field(default_factory=list)  # one per --by column, in the order asked

    def to_dict(self) -> dict:
        return asdict(self)


def read_truth(path: str | Path) -> list[dict[str, str]]:
    """Rows of a truth CSV: ``filename,FaceOcclusion,gender`` (more columns are kept)."""
    rows = read_csv_rows(Path(path), TruthFileError)
    if not rows:
        raise TruthFileError(f"{path}: no rows")
    need = {"filename", "FaceOcclusion", "gender"}
    missing = need - set(rows[0])
    if missing:
        raise TruthFileError(f"{path}: missing column(s) {sorted(missing)}; the contract is filename,FaceOcclusion,gender")
    return rows


def read_predictions(path: str | Path, column: str = "FaceOcclusion", notes: list[str] | None = None) -> dict[str, str]:
    """filename -> raw prediction text of ``column`` (may be empty for a failed row).

    A filename given twice with different values raises :class:`TruthFileError` (which one would
    count?); repeated identical rows are collapsed, and ``notes`` (when given) receives a line
    saying so.
    """
    rows = read_csv_rows(Path(path), TruthFileError)
    if rows and ("filename" not in rows[0] or column not in rows[0]):
        raise TruthFileError(f"{path}: predictions need columns filename,{column}")
    out: dict[str, str] = {}
    conflicts: list[str] = []
    repeated = 0
    for r in rows:
        name, value = r["filename"], (r.get(column) or "").strip()
        if name in out:
            if out[name] != value:
                if name not in conflicts:
                    conflicts.append(name)
                continue
            repeated += 1
        out[name] = value
    if conflicts:
        raise TruthFileError(f"{path}: {len(conflicts)} filename(s) predicted twice with different values, e.g. "
                             + ", ".join(conflicts[:5]))
    if repeated and notes is not None:
        notes.append(f"{path}: {repeated} repeated identical prediction row(s) counted once")
    return out


def _truth_problems(truth_rows: list[dict[str, str]]) -> list[str]:
    """Every truth row that breaks the contract (GT a number in [0, 1], gender F/M or in [0, 1]), described."""
    bad = []
    seen: dict[str, tuple[int, tuple]] = {}
    for i, row in enumerate(truth_rows):
        where = f"line {i + 2} ({row.get('filename')})"  # line 1 is the header
        try:  # compared as values: 0.1 and 0.10, M and m are the same truth
            value: tuple = (float(row.get("FaceOcclusion")), parse_gender(row.get("gender")))  # type: ignore[arg-type]
        except (TypeError, ValueError, TruthFileError):
            value = (str(row.get("FaceOcclusion")).strip(), str(row.get("gender")).strip())
        first = seen.setdefault(row.get("filename") or "", (i + 2, value))
        if first[1] != value:  # which one would count?
            bad.append(f"{where}: given again with other values than on line {first[0]}")
        raw = row.get("FaceOcclusion")
        try:
            gt = float(raw)  # type: ignore[arg-type]
            if not 0.0 <= gt <= 1.0:  # also false for NaN
                bad.append(f"{where}: FaceOcclusion {raw.strip()} is not in [0, 1]")
        except (TypeError, ValueError):  # TypeError: a short row leaves the field None
            bad.append(f"{where}: FaceOcclusion {raw!r} is not a number")
        try:
            parse_gender(row.get("gender"))
        except TruthFileError as e:
            bad.append(f"{where}: {e}")
    return bad


def farthest_prediction(gt: float) -> float:
    """The prediction farthest from ``gt`` (0 or 1): how a missing or invalid prediction is scored under the
    ``"worst"`` policy, what a crashed row would cost in the challenge."""
    return 1.0 if gt < 0.5 else 0.0


def valid_prediction(text: str | None) -> float | None:
    """A prediction's text as a number in [0, 1], or None when it is empty, not a number, NaN or out of range."""
    if text is None or text == "":
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    if math.isnan(v) or v < 0.0 or v > 1.0:
        return None
    return v


def check_by_columns(truth_rows: list[dict[str, str]], columns: list[str] | tuple[str, ...], where: str = "the truth") -> None:
    """Raise :class:`TruthFileError` unless every one of ``columns`` is a column of ``truth_rows`` with at
    most :data:`MAX_BY_VALUES` distinct values (the message names the columns there are)."""
    have = list(truth_rows[0]) if truth_rows else []
    for c in columns:
        if c not in have:
            raise TruthFileError(f"--by {c}: {where} has no column {c!r}; its columns are {', '.join(have)}")
        n = len({(r.get(c) or "").strip() for r in truth_rows})
        if n > MAX_BY_VALUES:
            raise TruthFileError(f"--by {c}: column {c!r} of {where} has {n} distinct values (at most {MAX_BY_VALUES}); "
                                 "--by is for kinds (source, occluder, ...): bin a continuous column into a kind "
                                 "column first")


def _value_order(values: set[str]) -> list[str]:
    """Numbers by value (2 before 10), then text in alphabetical order; the empty value last."""
    def key(v: str):
        try:
            return (0, float(v), v)
        except ValueError:
            return (1 if v else 2, 0.0, v)
    return sorted(values, key=key)


def breakdown(column: str, values: list[str], p: np.ndarray, gt: np.ndarray, male: np.ndarray) -> ColumnBreakdown:
    """The challenge metric per value of one column. ``values`` (text, stripped), ``p`` and ``gt`` (float,
    0..1) and ``male`` (bool) are aligned, one entry per scored row."""
    v_a = np.array(values, dtype=object)
    out = ColumnBreakdown(column)
    for v in _value_order(set(values)):
        m = v_a == v
        score, err_f, err_m = challenge_score(p[m], gt[m], male[m])
        d = p[m] - gt[m]
        out.values.append(ValueScore(v, int(m.sum()), int((m & ~male).sum()), int((m & male).sum()), score, err_f,
                                     err_m, float(np.mean(np.abs(d))), float(np.mean(d)), float(np.mean(gt[m]))))
    return out


def evaluate(
    pred: dict[str, str],
    truth_rows: list[dict[str, str]],
    missing_policy: str = "worst",
    by: list[str] | tuple[str, ...] = (),
    truth_name: str = "the truth",
) -> Evaluation:
    """Score predictions against truth.

    A missing or invalid prediction is never dropped silently: under ``missing_policy="worst"``
    (the default) it is scored as the prediction farthest from the truth (0 or 1), which is
    what a crashed row would cost in the challenge; under ``"zero"`` it is scored as 0;
    under ``"skip"`` it is left out of the error but still counted and reported.

    ``by``: truth columns (e.g. ``kind``, ``source``, ``occluder``) to break the metric down by: Score,
    Err_F, Err_M, MAE and bias for each of their values (``Evaluation.by``), over the same scored rows
    as the whole. Raises :class:`TruthFileError` for a column the truth lacks, or one with more than
    :data:`MAX_BY_VALUES` values; the message calls the truth ``truth_name`` (its file, from the CLI).
    """
    if missing_policy not in ("worst", "zero", "skip"):
        raise ValueError("missing_policy must be worst, zero or skip")
    by = list(dict.fromkeys(by))  # a column asked twice is reported once
    check_by_columns(truth_rows, by, where=truth_name)
    if problems := _truth_problems(truth_rows):
        raise TruthFileError(f"{len(problems)} invalid truth value(s): " + "; ".join(problems[:5])
                             + ("; ..." if len(problems) > 5 else ""))
    gts, preds, males, grays, kinds, sources, beards = [], [], [], [], [], [], []
    by_values: dict[str, list[str]] = {c: [] for c in by}
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
        p = valid_prediction(raw)
        if p is None:
            if raw is None:
                n_missing += 1
            else:
                n_invalid += 1
            if len(missing_examples) < 10:
                missing_examples.append(row["filename"])
            if missing_policy == "skip":
                continue
            p = farthest_prediction(gt) if missing_policy == "worst" else 0.0
        gts.append(gt)
        preds.append(p)
        males.append(male)
        grays.append(str(row.get("is_gray", "")).strip() in ("1", "true", "True"))
        kinds.append(row.get("occluder", ""))
        sources.append(row.get("source", ""))
        beards.append(valid_prediction(row.get("facial_hair")))
        for c in by_values:
            by_values[c].append((row.get(c) or "").strip())
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
                           float(np.mean(np.abs(p_a[mask] - gt_a[mask]))), float(np.mean(p_a[mask] - gt_a[mask])))
            )

    add("female", ~m_a)
    add("male", m_a)
    if truth_rows and "is_gray" in truth_rows[0]:
        g_a = np.array(grays, dtype=bool)
        add("colour", ~g_a)
        add("gray", g_a)
    for lo, hi, mask in occlusion_bins(gt_a):
        add(f"gt [{lo:.3f}, {hi:.3f}{']' if hi >= 1.0 else ')'}", mask)
    if any(b is not None for b in beards):  # LFW-based truth with its facial-hair share
        b_a = np.array([np.nan if b is None else b for b in beards], np.float64)
        for name, lo, hi in FACIAL_HAIR_GROUPS:
            add(name, (b_a >= lo) & (b_a < hi))
    # base-face source (lfw / utkface, from occparse synth): the two follow different V conventions
    for column, values in (("source", sources), ("occluder", kinds)):
        if truth_rows and column in truth_rows[0]:
            v_a = np.array(values)
            for k in sorted(set(values)):
                add(f"{column}={k or 'none'}", v_a == k)
    gap = abs(err_f - err_m) if not (math.isnan(err_f) or math.isnan(err_m)) else math.nan
    known = {row["filename"] for row in truth_rows}
    unknown = [name for name in pred if name not in known]
    return Evaluation(
        n_truth=len(truth_rows), n_scored=int(gt_a.size), n_missing=n_missing, n_invalid=n_invalid,
        score=score, err_f=err_f, err_m=err_m, gap=gap, mae=mae, pearson_r=r,
        missing_policy=missing_policy, groups=groups, missing_examples=missing_examples,
        n_unknown=len(unknown), unknown_examples=unknown[:10],
        by=[breakdown(c, by_values[c], p_a, gt_a, m_a) for c in by],
    )


def _fmt(v: float, spec: str) -> str:
    """A number for the report; one that has no value (NaN: an empty group, a constant column) says n/a."""
    return format(v, spec) if math.isfinite(v) else "n/a"


def format_evaluation(ev: Evaluation) -> str:
    """A human-readable report."""
    lines = [
        f"Score   {_fmt(ev.score, '.6f')}   (= (Err_F + Err_M)/2 + |Err_F - Err_M|, lower is better)",
        f"Err_F   {_fmt(ev.err_f, '.6f')}",
        f"Err_M   {_fmt(ev.err_m, '.6f')}",
        f"|gap|   {_fmt(ev.gap, '.6f')}",
        f"MAE     {_fmt(ev.mae, '.4f')}",
        f"Pearson {_fmt(ev.pearson_r, '.4f')}",
        f"rows    {ev.n_truth} in truth, {ev.n_scored} scored, {ev.n_missing} missing, "
        f"{ev.n_invalid} invalid (policy: {ev.missing_policy})",
    ]
    if ev.missing_examples:
        lines.append("        e.g. " + ", ".join(ev.missing_examples[:5]))
    if ev.n_unknown:
        lines.append(f"        {ev.n_unknown} prediction(s) for files not in the truth (not scored), e.g. "
                     + ", ".join(ev.unknown_examples[:5]))
    lines.append("")
    lines.append(f"{'group':<28}{'n':>7}{'Err':>12}{'MAE':>9}{'bias':>9}")
    for g in ev.groups:
        lines.append(f"{g.name:<28}{g.n:>7}{_fmt(g.err, '.6f'):>12}{_fmt(g.mae, '.4f'):>9}{_fmt(g.bias, '+.4f'):>9}")
    lines.append("(bias: mean signed error, prediction - truth; negative = occlusion under-read)")
    for b in ev.by:
        lines += ["", format_breakdown(b)]
    return "\n".join(lines)


def format_breakdown(b: ColumnBreakdown) -> str:
    """One --by column as a table: a line per value (an empty value reads ``(empty)``)."""
    width = max([len(b.column) + 3, 12, *(len(v.value) + 2 for v in b.values)])
    lines = [f"{'by ' + b.column:<{width}}{'n':>6}{'n_F':>6}{'n_M':>6}{'Score':>11}{'Err_F':>11}{'Err_M':>11}"
             f"{'MAE':>8}{'bias':>9}{'mean GT':>9}"]
    for v in b.values:
        lines.append(f"{v.value or '(empty)':<{width}}{v.n:>6}{v.n_f:>6}{v.n_m:>6}{_fmt(v.score, '.6f'):>11}"
                     f"{_fmt(v.err_f, '.6f'):>11}{_fmt(v.err_m, '.6f'):>11}{_fmt(v.mae, '.4f'):>8}"
                     f"{_fmt(v.bias, '+.4f'):>9}{_fmt(v.mean_truth, '.4f'):>9}")
    if any(v.n_f == 0 or v.n_m == 0 for v in b.values):
        lines.append("(a value with one gender only: Score is that gender's Err, without the gap term)")
    return "\n".join(lines)
