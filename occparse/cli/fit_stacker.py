"""``occparse fit-stacker``: fit the stacker that fuses geometry and regression (thin over occparse.evaluation.stacker_fit)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    PRECISION_CHOICES,
    fail,
    output_clash,
)


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``occparse fit-stacker`` (help, description, options) on the subcommands ``sub``."""
    p = sub.add_parser(
        "fit-stacker",
        help="fuse geometry and regression into one estimate (scikit-learn)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compute the features of every face (cached beside each truth file, keyed by the models' "
        "checksums), report K-fold out-of-fold Score (folds grouped by the truth's `base` face column when "
        "present) for geometric-only, regressor-only and four stackers (a standardised ridge and a monotone "
        "HistGradientBoosting model, each also with equal weight per occlusion bin: *_bal), then fit one on all "
        "rows with the challenge weights 1/30 + GT: the one --model names, or (auto) the best out-of-fold Score "
        "among those whose every occlusion bin is within 0.05 on average.",
        epilog=r"""Never fit on the benchmark split or LFW val (the test sets). The synthetic holdout's base faces
were kept out of the regressors' training; the real LFW train photos were not (the parser trained
on them, the regressors on synthetic variants of them), so their out-of-fold numbers are
optimistic: judge any stacker on LFW val.
Several fit sets: one --images-root per --truth, in the same order; --set-weight multiplies each
set's row weights (--model auto still judges the candidates over all rows equally).
The shipped stacker's recipe (weights/stacker.md):
  occparse synth --preset holdout --sources lfw --count 4000 --seed 31 --out holdout/
  occparse synth --preset lfw-train --out lfwtrain/
  occparse fit-stacker --truth holdout/truth.csv lfwtrain/truth.csv \
      --images-root holdout/images DATA/faces/lfw_parts/images --model ridge --out s.json
then judge it on LFW val (occparse synth --preset lfw-val; occparse predict; occparse evaluate) and
  occparse fit-stacker ... --replace-shipped""",
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse fit-stacker``'s options."""
    p.add_argument("--truth", required=True, nargs="+", metavar="CSV",
                   help="truth CSV(s) (filename,FaceOcclusion,gender; `base` groups the folds)")
    p.add_argument("--images-root", required=True, nargs="+", metavar="DIR",
                   help="folder the filenames are relative to, one per --truth")
    p.add_argument("--set-weight", type=float, nargs="+", metavar="W",
                   help="multiplier of each fit set's weights, one per --truth (default 1 each)")
    p.add_argument("--model", choices=["auto", "ridge", "hgb", "ridge_bal", "hgb_bal"], default="auto",
                   help="stacker family to ship; auto: best out-of-fold among those that do not shrink (default)")
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
    from ..evaluation.stacker_fit import run, set_weight_error
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
    if clash := output_clash([a.out], a.truth):
        return fail(f"--out {a.out} is the input {clash[1]}; give the stacker another file name")
    if len(a.images_root) != len(a.truth):
        return fail(f"{len(a.truth)} --truth files but {len(a.images_root)} --images-root folders: give one per truth")
    if a.set_weight is not None and (err := set_weight_error(a.set_weight, len(a.truth))):
        return fail(err)
    if bad := [r for r in a.images_root if not Path(r).is_dir()]:
        return fail(f"--images-root is not a folder: {', '.join(bad)}")
    try:
        run(a.truth, a.images_root, a.out, folds=a.folds, seed=a.seed, precision=a.precision, weights=a.weights,
            set_weights=a.set_weight, model=a.model)
    except (TruthFileError, WeightsError, RuntimeError, ValueError) as e:
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
