"""``occparse evaluate``: score predictions with the challenge metric (thin over occparse.evaluation.metrics)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..runtime.strictjson import dumps as strict_dumps
from .common import (
    fail,
    output_clash,
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

--by COLUMN breaks the metric down by the values of a truth column (a kind, a source, an occluder):
a table with n (and n per gender), Score, Err_F, Err_M, MAE, bias and the mean truth for each value,
over the same rows as the whole; in --json under "by". A column the truth lacks is refused (exit 2).

--sheet draws the worst rows (by their share of the error, w(p-GT)^2) as a contact sheet: each photo
with its truth, prediction, signed error (blue under-read, red over-read) and, when the prediction CSV
has them, the geometric and regressor components. Missing or invalid rows are not drawn.

examples:
  occparse evaluate --pred preds.csv --truth bench/truth.csv --json
  occparse evaluate --pred preds.csv --truth hair_val/truth.csv --by kind --column geometric
  occparse evaluate --pred pred_lfw.csv --truth lfwval/truth.csv --sheet worst.png \\
      --images-root ../shared/data/faces/lfw_parts/images --sheet-count 24""",
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
    p.add_argument("--by", action="append", default=[], metavar="COLUMN",
                   help="also report Score, Err_F, Err_M, MAE and bias (mean signed error) for each value of this "
                        "truth column, e.g. kind, source, occluder (repeatable; at most 100 values a column)")
    p.add_argument("--missing", choices=["worst", "zero", "skip"], default="worst", help="how missing rows are scored")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when any prediction is missing or invalid, or names a file not in the truth")
    p.add_argument("--sheet", metavar="WORST.png",
                   help="also draw a contact sheet of the worst rows (needs --images-root); .png, .jpg, .webp, "
                        ".bmp or .tiff, in a folder that exists")
    p.add_argument("--images-root", metavar="DIR", help="with --sheet: the folder the prediction filenames are in")
    p.add_argument("--sheet-count", type=int, default=24, metavar="N",
                   help="with --sheet: how many of the worst rows to draw, 1-600 (default 24, 6 per row)")


def run(a: argparse.Namespace) -> int:
    from ..evaluation.metrics import (
        TruthFileError,
        evaluate,
        format_evaluation,
        read_predictions,
        read_truth,
        valid_prediction,
    )

    if a.sheet or a.images_root:  # refused before any work: one line, exit 2
        if not a.sheet:
            return fail("--images-root is only used with --sheet WORST.png")
        if not a.images_root:
            return fail("--sheet needs --images-root DIR, the folder the prediction filenames are relative to")
        if not Path(a.images_root).is_dir():
            return fail(f"--images-root {a.images_root}: not a folder")
        if not 1 <= a.sheet_count <= 600:
            # 600 tiles of 200 px in 6 columns is a 20,000-px-tall picture already
            return fail("--sheet-count must be between 1 and 600")
        if clash := output_clash([a.sheet], [a.pred, a.truth]):
            return fail(f"--sheet {a.sheet} is the input {clash[1]}; give the sheet another file name")
        from ..evaluation.worst_sheet import sheet_path_error

        if err := sheet_path_error(a.sheet):  # before the report: a typo in the name is one line, not a table and a line
            return fail(f"--sheet: {err}")
    notes: list[str] = []
    try:
        pred, truth = read_predictions(a.pred, a.column, notes), read_truth(a.truth)
        ev = evaluate(pred, truth, missing_policy=a.missing, by=a.by, truth_name=a.truth)  # messages name the file
    except TruthFileError as e:
        return fail(str(e))
    if not pred:  # an empty file (or a header alone): a Score of nothing but penalties would mean nothing
        return fail(f"{a.pred} holds no prediction rows; nothing to score against the {len(truth)} truth rows")
    if truth and ev.n_missing == len(truth):  # a Score of nothing but penalties means the names do not line up
        names = [n for n in pred if n]
        hint = ""
        truth_names = {r["filename"] for r in truth}
        if any("/" in n or "\\" in n for n in names) and any(Path(n).name in truth_names for n in names):
            hint = ("; the predictions hold paths (as folder mode writes them) and the truth bare names: "
                    "use `occparse predict --csv TRUTH --images-root DIR` for truth-aligned rows")
        return fail(f"none of the {len(truth)} truth filenames (e.g. {truth[0]['filename']!r}) is in {a.pred}, whose "
                    f"names look like {names[0] if names else '(empty)'!r}{hint}")
    given = [v for r in truth if (v := pred.get(r["filename"]))]  # failed rows (empty values) are scored, as documented
    if given and all(valid_prediction(v) is None for v in given):
        return fail(f"column {a.column!r} of {a.pred} holds no valid prediction (a number in [0, 1]) for any truth "
                    f"row (e.g. {given[0]!r}); is it the right --column?")
    for n in notes:
        print(f"occparse: warning: {n}", file=sys.stderr)
    if ev.n_unknown:
        print(f"occparse: {'error' if a.strict else 'warning'}: {ev.n_unknown} prediction(s) for files not in the "
              f"truth, e.g. {', '.join(ev.unknown_examples[:5])}", file=sys.stderr)
    if a.json:
        print(strict_dumps(ev.to_dict(), indent=2))
    else:
        print(format_evaluation(ev))
    sys.stdout.flush()  # the report comes first, whatever happens to the sheet
    if a.sheet and (err := _sheet(a, pred, truth)):
        return err
    if a.strict and (ev.n_missing or ev.n_invalid or ev.n_unknown):
        print(f"occparse: error: --strict: {ev.n_missing} truth row(s) without a prediction, {ev.n_invalid} invalid "
              f"prediction(s), {ev.n_unknown} prediction(s) for files not in the truth", file=sys.stderr)
        return 1
    return 0


def _sheet(a: argparse.Namespace, pred: dict[str, str], truth: list[dict[str, str]]) -> int:
    """Draw and write the worst-rows sheet; 0, or the exit status after one line on stderr (stdout stays
    the report alone, so --json output stays valid)."""
    from ..errors import DataError
    from ..evaluation.worst_sheet import (
        SheetError,
        draw_worst_sheet,
        rank_worst,
        read_components,
        write_sheet,
    )

    if clash := output_clash([a.sheet], [Path(a.images_root) / name for name in pred]):
        return fail(f"--sheet {a.sheet} is the image {clash[1]} of a prediction row; give the sheet another file name")
    try:
        components = read_components(a.pred, exclude=a.column)
    except DataError:  # the scored column was read already; the components are only extra captions
        components = {}
    ranked = rank_worst(pred, truth, components=components)  # rows with a valid prediction only
    rows = ranked[: a.sheet_count]
    unreadable: list[str] = []
    rgb = draw_worst_sheet(rows, a.images_root, a.column, n_scored=len(ranked), unreadable=unreadable)
    try:
        out = write_sheet(rgb, a.sheet)
    except SheetError as e:
        return fail(f"--sheet: {e}")
    if unreadable:
        print(f"occparse: warning: {len(unreadable)} image(s) on the sheet could not be read (grey tiles), e.g. "
              + ", ".join(unreadable[:5]), file=sys.stderr)
    print(f"wrote the {len(rows)} worst row(s) to {out}", file=sys.stderr)
    return 0
