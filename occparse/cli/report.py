"""``occparse report``: one self-contained HTML page over a folder-mode or predict results file
(thin over :mod:`occparse.evaluation.report`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .common import fail, output_clash


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``occparse report`` (help, description, options) on the subcommands ``sub``."""
    p = sub.add_parser(
        "report",
        help="one self-contained HTML page that shows a batch's results",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read a folder-mode output (occparse estimate DIR --out X.csv|.parquet) or a predict output, "
        "streaming (any size that fits on disk), and write one HTML file with everything embedded (no network): "
        "counts by status, the occlusion histogram and quantiles, per-region occlusion on a face diagram, what "
        "hides the face, the ISO/IEC 29794-5 style components, groups side by side (--by), the most occluded faces "
        "and the faces with warnings as thumbnails with occparse's overlay.",
        epilog="""The thumbnails re-run the Estimator on the chosen images only (about 50 + 6 per warning kind);
--no-overlay shows the plain photos instead (faster, no models needed). A photo that is not found under
--images-root gets a grey placeholder, and the page says how many.

examples:
  occparse estimate photos/ --out results.csv
  occparse report results.csv --out report.html
  occparse report results.parquet --out report.html --by gender --groups labels.csv --images-root .
  occparse report preds.csv --out report.html --truth truth.csv --images-root images/   # with the challenge metric

Exit status: 0 when the page was written, 2 when the input cannot be read or the page cannot be written.""",
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse report``'s options."""
    p.add_argument("results", help="a folder-mode or predict output: .csv or .parquet")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--images-root", action="append", default=None, metavar="DIR",
                   help="folder the results' file names are relative to (repeatable; default: the current folder, "
                   "then the results file's folder)")
    p.add_argument("--by", help="compare groups side by side: a column of the results file, of --groups or of --truth "
                   "(e.g. gender)")
    p.add_argument("--groups", metavar="CSV", help="a CSV with filename and the --by column (e.g. a labels file); "
                   "rows are matched by filename, then by its last path component")
    p.add_argument("--truth", metavar="CSV", help="truth CSV (filename,FaceOcclusion,gender): adds the challenge metric "
                   "overall (Score, Err per gender) and per group")
    p.add_argument("--top", type=int, default=50, help="how many of the most occluded faces to show (default 50)")
    p.add_argument("--no-overlay", action="store_true",
                   help="plain photos as thumbnails: no models loaded, no Estimator run")
    p.add_argument("--title", default=None, help="the page's title (default: occparse report: RESULTS)")


def run(a: argparse.Namespace) -> int:
    from ..errors import DataError
    from ..evaluation.report import ReportError, Thumbnailer, aggregate, is_report, render

    out = Path(a.out)
    if out.suffix.lower() not in (".html", ".htm"):
        return fail(f"--out {out}: the report is an HTML file; name it .html")
    if output_clash([out], [a.results]):
        return fail(f"--out {out} is the results file itself; give the report another name")
    if (out.exists() or out.is_symlink()) and not is_report(out):  # before any work: never replace a page of the user's
        return fail(f"--out {out} exists and is not an occparse report; it is left as it is (choose another --out)")
    if a.top < 0:
        return fail(f"--top must be 0 or more, not {a.top}")
    if a.groups and not a.by:
        return fail("--groups names where the --by column lives; give --by COLUMN too")
    t0 = time.perf_counter()
    try:
        agg = aggregate(a.results, by=a.by, groups_file=a.groups, truth_file=a.truth, top_n=a.top,
                        show_progress=sys.stderr.isatty())
    except (ReportError, DataError) as e:
        return fail(str(e))
    roots = [Path(r) for r in a.images_root] if a.images_root else [Path.cwd(), Path(a.results).resolve().parent]
    th = Thumbnailer(roots, overlay=not a.no_overlay)
    page = render(agg, a.title or f"occparse report: {Path(a.results).name}", th, by=a.by,
                  truth_name=a.truth, show_progress=sys.stderr.isatty())
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    except OSError as e:
        return fail(f"cannot write {out}: {e.strerror or e}")
    size = out.stat().st_size
    print(f"wrote {out} ({size / 1e6:.1f} MB): {agg.n:,} rows, {agg.all.n_ok:,} measured faces, "
          f"{time.perf_counter() - t0:.1f} s")
    if th.missing:
        print(f"occparse: warning: {th.missing} chosen image(s) not found under {', '.join(map(str, roots))} "
              "(placeholders drawn); pass --images-root", file=sys.stderr)
    return 0
