"""``occparse evaluate``: score predictions with the challenge metric (thin over occparse.evaluation.metrics)."""

from __future__ import annotations

import argparse
import sys

from ..runtime.strictjson import dumps as strict_dumps
from .common import (
    fail,
)


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``occparse evaluate`` (help, description, options) on the subcommands ``sub``."""
    p = sub.add_parser(
        "evaluate",
        help="score predictions with the challenge metric",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Err = sum w(p-GT)^2 / sum w with w = 1/30 + GT, per gender; "
        "Score = (Err_F + Err_M)/2 + |Err_F - Err_M| (lower is better). Also MAE, Pearson r and "
        "errors per group (gender, colour/gray, occlusion bin, and base-face source and occluder kind when the truth "
        "has those columns).",
        epilog="""A prediction that is missing or not a number in [0, 1] is counted and reported, and by default
scored as the worst possible value (--missing worst); --missing zero scores it as 0, --missing skip
leaves it out of the error (still reported).

example:
  occparse evaluate --pred preds.csv --truth bench/truth.csv --json""",
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse evaluate``'s options."""
    p.add_argument("--pred", required=True, help="CSV with filename,FaceOcclusion")
    p.add_argument("--truth", required=True, help="CSV with filename,FaceOcclusion,gender (gender F/M or 0..1, 1 = male)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--column", default="FaceOcclusion",
                   help="prediction column to score (predict also writes 'geometric' and 'regressor')")
    p.add_argument("--missing", choices=["worst", "zero", "skip"], default="worst", help="how missing rows are scored")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when any prediction is missing or invalid, or names a file not in the truth")


def run(a: argparse.Namespace) -> int:
    from ..evaluation.metrics import TruthFileError, evaluate, format_evaluation, read_predictions, read_truth

    notes: list[str] = []
    try:
        ev = evaluate(read_predictions(a.pred, a.column, notes), read_truth(a.truth), missing_policy=a.missing)
    except TruthFileError as e:
        return fail(str(e))
    for n in notes:
        print(f"occparse: warning: {n}", file=sys.stderr)
    if ev.n_unknown:
        print(f"occparse: {'error' if a.strict else 'warning'}: {ev.n_unknown} prediction(s) for files not in the "
              f"truth, e.g. {', '.join(ev.unknown_examples[:5])}", file=sys.stderr)
    if a.json:
        print(strict_dumps(ev.to_dict(), indent=2))
    else:
        print(format_evaluation(ev))
    return 1 if (a.strict and (ev.n_missing or ev.n_invalid or ev.n_unknown)) else 0
