"""``occparse fit-stacker``: fit the stacker that fuses geometry and regression (thin over occparse.evaluation.stacker_fit)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    PRECISION_CHOICES,
    fail,
)


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``occparse fit-stacker`` (help, description, options) on the subcommands ``sub``."""
    p = sub.add_parser(
        "fit-stacker",
        help="fuse geometry and regression into one estimate (scikit-learn)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compute the features of every face (cached beside the truth file, keyed by the models' "
        "checksums), report K-fold out-of-fold Score (folds grouped by the truth's `base` face column when "
        "present) for geometric-only, regressor-only and two stackers (a standardised ridge and a monotone "
        "HistGradientBoosting model), then fit the one with the better out-of-fold Score on all rows, with the "
        "challenge weights 1/30 + GT.",
        epilog="""Fit on faces the regressors never trained on, never on the benchmark split:
  occparse synth --preset holdout --count 8000 --seed 31 --out holdout/
  occparse fit-stacker --truth holdout/truth.csv --images-root holdout/images --out stacker_new.json
  occparse fit-stacker --truth holdout/truth.csv --images-root holdout/images --replace-shipped""",
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse fit-stacker``'s options."""
    p.add_argument("--truth", required=True, help="truth CSV (filename,FaceOcclusion,gender)")
    p.add_argument("--images-root", required=True, help="folder the filenames are relative to")
    p.add_argument("--out", help="where the new stacker file goes (required unless --replace-shipped); never the shipped "
                   "one")
    p.add_argument("--replace-shipped", action="store_true",
                   help="overwrite the shipped stacker (then pin it: occparse models pin stacker stacker.json stacker.md)")
    p.add_argument("--weights", metavar="DIR", help="weights folder (default $OCCPARSE_WEIGHTS, else the installed one)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                   help="networks whose outputs become the features; fit with the precision users will run (default auto)")


def run(a: argparse.Namespace) -> int:
    from ..evaluation.metrics import TruthFileError
    from ..evaluation.stacker_fit import run
    from ..models.zoo import WeightsError

    if a.replace_shipped and a.out:
        return fail("give --out PATH or --replace-shipped, not both")
    if not a.out and not a.replace_shipped:
        return fail("fit-stacker needs --out PATH (a new stacker file), or --replace-shipped to overwrite the installed "
                     "one")
    if a.replace_shipped:
        from ..models.zoo import shipped

        a.out = str(shipped("stacker", a.weights, verify=False).path)
    elif Path(a.out).resolve() == _shipped_stacker_path(a.weights):
        return fail(f"{a.out} is the shipped stacker; say --replace-shipped to overwrite it")
    try:
        run(a.truth, a.images_root, a.out, folds=a.folds, seed=a.seed, precision=a.precision, weights=a.weights)
    except (TruthFileError, WeightsError, RuntimeError) as e:
        return fail(str(e))
    print(f"stacker: {a.out}")
    if a.replace_shipped:
        print("pin it: occparse models pin stacker stacker.json stacker.md", file=sys.stderr)
    return 0


def _shipped_stacker_path(weights: str | None) -> Path | None:
    from ..models.zoo import WeightsError, manifest

    try:
        e = manifest(weights).get("stacker")
    except WeightsError:
        return None
    return e.path.resolve() if e else None
