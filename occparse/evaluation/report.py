"""``occparse report``: one self-contained HTML page that shows a batch's results.

Input: a folder-mode output (``occparse estimate DIR --out X.csv|.parquet``) or a ``predict`` output
(CSV or Parquet). The file is read in batches (pyarrow's streaming CSV reader, Parquet row batches) and
only aggregates are kept: counts, 1000-bin histograms, sums per region, per group and per hider, the
top-N rows by occlusion and a few rows per warning kind. Memory does not grow with the number of rows,
except for a ``--groups``/``--truth`` file, which is held as a name -> value map.

Output: one HTML file with every figure (matplotlib, PNG) and thumbnail (JPEG) embedded as ``data:``
URIs: no script, no style sheet, no font or image from the network. Sections: counts by status; the
occlusion histogram and quantiles; per-region occlusion drawn on the canonical face; what hides the
face; ISO/IEC 29794-5 style components (when the file has them); groups side by side (``--by COL``),
with the challenge metric when a truth file is given; the most occluded faces and faces with warnings
as thumbnails with occparse's overlay (re-rendered by running the Estimator on those few images only).

Quantiles come from the 1000-bin histogram: exact to +-0.0005.
"""

from __future__ import annotations

import base64
import csv
import heapq
import html
import io
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..runtime.iso import COMPONENTS as ISO_COMPONENTS
from ..runtime.rows import REGIONS, column_type
from .metrics import challenge_weights

#: fine histogram of occlusion, for quantiles and the drawn histogram (50 bins of 20 fine bins each)
FINE_BINS = 1000
DRAW_BINS = 50
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
#: what hides the face: folder mode's hidden_by_* columns, plus the part of R outside the photo
HIDERS = ("hair", "facial_hair", "occluder", "background")
HIDER_LABELS = {"hair": "head hair", "facial_hair": "facial hair", "occluder": "occluder (hand, mask, glasses...)",
                "background": "background (parser)", "out_of_frame": "outside the photo"}
#: groups beyond this many distinct values are pooled as "(other)"
MAX_GROUPS = 200
#: groups drawn side by side (the largest)
DRAW_GROUPS = 8
WARNING_EXAMPLES = 6  # thumbnails per warning kind
THUMB = 180  # thumbnail side, pixels
_WARNING_KIND = re.compile(r"(?:^|; )([a-z][a-z0-9_]*):")


class ReportError(DataError, ValueError):
    """The results file (or a groups/truth file) cannot be reported on; the message is one line."""


# ---------------------------------------------------------------------------------------------
# reading


def _header(path: Path) -> list[str]:
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as e:
            raise ReportError(f"{path}: not a readable Parquet file ({type(e).__name__}: {e})") from None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ReportError(f"{path}: not a readable CSV file ({e})") from None


def results_kind(columns: list[str]) -> str:
    """"folder" (``estimate --out``) or "predict", from the columns; ReportError for anything else."""
    if "filename" in columns and "status" in columns:
        if "occlusion" in columns:
            return "folder"
        if "FaceOcclusion" in columns:
            return "predict"
    raise ReportError("not an occparse results file: folder mode's output has filename, status, occlusion; "
                      "predict's has filename, FaceOcclusion, status ("
                      + (f"this one has {', '.join(columns[:8])}{'...' if len(columns) > 8 else ''})" if columns
                         else "this one has no columns: is it empty?)"))


def _is_number(column: str) -> bool:
    return column_type(column) != "string" and column not in ("filename", "status")


def iter_batches(path: Path, columns: list[str], wanted: list[str], batch_rows: int = 65536,
                 progress: Callable[[int], None] | None = None, block_bytes: int = 1 << 23) -> Iterator[dict[str, np.ndarray | list]]:
    """The ``wanted`` columns of ``path`` in batches: numbers as float64 arrays (empty = NaN), text as
    lists of str (empty = ""). ``progress(n)`` is told the bytes (CSV) or rows (Parquet) consumed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def convert(batch) -> dict:
        out: dict = {}
        for c in wanted:
            col = batch.column(batch.schema.get_field_index(c))
            if _is_number(c):
                if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):  # text numbers: "" is empty
                    col = pc.if_else(pc.equal(col, ""), pa.scalar(None, col.type), col)
                out[c] = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
            else:
                out[c] = pc.fill_null(pc.cast(col, pa.string()), "").to_pylist()
        return out

    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            for b in pf.iter_batches(batch_size=batch_rows, columns=wanted):
                if progress:
                    progress(b.num_rows)
                yield convert(b)
            return
        import pyarrow.csv as pcsv

        types = {c: (pa.float64() if _is_number(c) else pa.string()) for c in columns}
        reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=block_bytes),
                               convert_options=pcsv.ConvertOptions(column_types=types, include_columns=wanted,
                                                                   strings_can_be_null=False,
                                                                   quoted_strings_can_be_null=False))
        seen = 0
        size = path.stat().st_size
        for b in reader:
            if progress:
                # the reader does not say how far it is; rows times the mean row length so far is close enough
                step = min(size - seen, max(1, b.nbytes))
                seen += step
                progress(step)
            yield convert(b)
    except ReportError:
        raise
    except (OSError, pa.ArrowException) as e:
        raise ReportError(f"{path}: cannot read it ({type(e).__name__}: {str(e).splitlines()[0]})") from None


def read_map(path: str | Path, column: str) -> dict[str, str]:
    """``filename -> column`` from a CSV with a ``filename`` column (a labels or truth file)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            r = csv.DictReader(f)
            if not r.fieldnames or "filename" not in r.fieldnames:
                raise ReportError(f"{path}: no filename column (it has {', '.join(r.fieldnames or [])})")
            if column not in r.fieldnames:
                raise ReportError(f"{path}: no column {column!r} (it has {', '.join(r.fieldnames)})")
            return {row["filename"]: (row[column] or "").strip() for row in r}
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ReportError(f"{path}: cannot read it ({e})") from None


class NameMap:
    """Looks a results row's filename up in a ``filename -> value`` map: the exact name first, then
    its last path component (folder mode records ``folder/name.jpg``, label files often ``name.jpg``)."""

    def __init__(self, values: dict[str, str]):
        self.values = values
        self.by_base = {_base(k): v for k, v in values.items()}

    def get(self, name: str) -> str | None:
        v = self.values.get(name)
        if v is None:
            v = self.by_base.get(_base(name))
        return v


def _base(name: str) -> str:
    """The last component of a path written with / or \\ (os.path.basename is slower, and POSIX-only)."""
    return name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]


# ---------------------------------------------------------------------------------------------
# aggregation


@dataclass(order=True)
class Picked:
    """A row chosen for a thumbnail."""

    occlusion: float
    filename: str = field(compare=False)
    caption: str = field(compare=False, default="")
    warnings: str = field(compare=False, default="")


@dataclass
class GroupStats:
    n: int = 0
    n_ok: int = 0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(FINE_BINS, np.int64))
    occ_sum: float = 0.0
    region_sum: np.ndarray = field(default_factory=lambda: np.zeros(len(REGIONS)))
    region_n: np.ndarray = field(default_factory=lambda: np.zeros(len(REGIONS), np.int64))
    # the challenge metric's parts against the truth: sum w (p - g)^2, sum w, sum |p - g|, sum (p - g), n
    t_num: float = 0.0
    t_w: float = 0.0
    t_abs: float = 0.0
    t_bias: float = 0.0
    t_n: int = 0
    t_missing: int = 0

    def err(self) -> float:
        return self.t_num / self.t_w if self.t_w > 0 else math.nan

    def mean(self) -> float:
        return self.occ_sum / self.n_ok if self.n_ok else math.nan


@dataclass
class Aggregate:
    """Everything the report draws, built batch by batch (:meth:`add`)."""

    kind: str
    columns: list[str]
    top_n: int = 50
    n: int = 0
    status: Counter = field(default_factory=Counter)
    all: GroupStats = field(default_factory=GroupStats)
    region_hidden: np.ndarray = field(default_factory=lambda: np.zeros(len(REGIONS), np.int64))
    hide_sum: dict[str, float] = field(default_factory=lambda: dict.fromkeys((*HIDERS, "out_of_frame"), 0.0))
    hide_faces: Counter = field(default_factory=Counter)  # faces mostly hidden by each hider
    warn_kinds: Counter = field(default_factory=Counter)
    n_warned: int = 0
    warn_examples: dict[str, list[Picked]] = field(default_factory=dict)
    top: list[Picked] = field(default_factory=list)  # a min-heap of the top_n most occluded
    iso_scores: dict[str, np.ndarray] = field(default_factory=lambda: {c: np.zeros(101, np.int64) for c in ISO_COMPONENTS})
    iso_codes: dict[str, Counter] = field(default_factory=lambda: {c: Counter() for c in ISO_COMPONENTS})
    groups: dict[str, GroupStats] = field(default_factory=dict)
    gender: dict[str, GroupStats] = field(default_factory=dict)  # F / M against the truth (challenge Score)
    group_unmatched: int = 0
    truth_unmatched: int = 0

    @property
    def occ_col(self) -> str:
        return "occlusion" if self.kind == "folder" else "FaceOcclusion"

    def has(self, *cols: str) -> bool:
        return all(c in self.columns for c in cols)

    def wanted(self, by: str | None) -> list[str]:
        want = ["filename", "status", self.occ_col, "geometric", "regressor", "warnings", "out_of_frame",
                *(f"region_{r}" for r in REGIONS), *(f"hidden_by_{h}" for h in HIDERS),
                *(f"{c}_{k}" for c in ISO_COMPONENTS for k in ("score", "code"))]
        if by:
            want.append(by)
        return [c for c in dict.fromkeys(want) if c in self.columns]

    def add(self, b: dict, group_of: Callable[[list[str], dict], list[str | None]] | None = None,
            truth: NameMap | None = None, truth_gender: NameMap | None = None) -> None:
        names: list[str] = b["filename"]
        k = len(names)
        self.n += k
        self.status.update(b["status"])
        occ = b[self.occ_col]
        ok = np.array([s == "ok" for s in b["status"]]) & np.isfinite(occ)
        self._stats(self.all, np.ones(k, bool), ok, occ, b)
        if self.kind == "folder":
            self._regions_hiders(ok, occ, b)
        self._iso(ok, b)
        self._top(ok, occ, b)
        if "warnings" in b:
            self._warnings(ok, occ, b)
        if group_of is not None:
            keys = group_of(names, b)
            codes = np.full(k, -1)
            order = list(self.groups)
            pos = {g: j for j, g in enumerate(order)}
            for i, g in enumerate(keys):
                if g is None:
                    self.group_unmatched += 1
                    continue
                if g not in self.groups:
                    if len(self.groups) >= MAX_GROUPS:  # too many distinct values: pool the rest
                        g = "(other)"
                    if g not in self.groups:
                        self.groups[g] = GroupStats()
                        pos[g] = len(order)
                        order.append(g)
                codes[i] = pos[g]
            for j in np.unique(codes[codes >= 0]):
                sel = codes == j
                self._stats(self.groups[order[j]], sel, ok & sel, occ, b, truth)
        if truth is not None:
            self.truth_unmatched += sum(1 for nm in names if truth.get(nm) is None)
            if truth_gender is not None:
                sexes = [_sex(truth_gender.get(nm)) for nm in names]
                for s in ("F", "M"):
                    sel = np.array([x == s for x in sexes])
                    if sel.any():
                        self._stats(self.gender.setdefault(s, GroupStats()), sel, ok & sel, occ, b, truth)

    def _stats(self, g: GroupStats, sel: np.ndarray, ok: np.ndarray, occ: np.ndarray, b: dict,
               truth: NameMap | None = None) -> None:
        g.n += int(sel.sum())
        g.n_ok += int(ok.sum())
        v = occ[ok]
        g.hist += np.histogram(np.clip(v, 0, 1), bins=FINE_BINS, range=(0.0, 1.0))[0]
        g.occ_sum += float(v.sum())
        if self.kind == "folder":
            for i, r in enumerate(REGIONS):
                c = f"region_{r}"
                if c in b:
                    x = b[c][ok]
                    fin = np.isfinite(x)
                    g.region_sum[i] += float(x[fin].sum())
                    g.region_n[i] += int(fin.sum())
        if truth is not None:
            idx = np.flatnonzero(sel)
            gt = np.array([_num(truth.get(b["filename"][i])) for i in idx])
            have = np.isfinite(gt)
            p = occ[idx]
            # a missing or failed prediction scores as the worst value, as `occparse evaluate` does by default
            p = np.where(np.isfinite(p) & ok[idx], p, np.where(gt >= 0.5, 0.0, 1.0))
            p, gt = p[have], gt[have]
            w = challenge_weights(gt)
            g.t_num += float(np.sum(w * (p - gt) ** 2))
            g.t_w += float(w.sum())
            g.t_abs += float(np.abs(p - gt).sum())
            g.t_bias += float((p - gt).sum())
            g.t_n += int(have.sum())
            g.t_missing += int((~ok[idx][have]).sum())

    def _regions_hiders(self, ok: np.ndarray, occ: np.ndarray, b: dict) -> None:
        for i, r in enumerate(REGIONS):
            c = f"region_{r}"
            if c in b:
                x = b[c][ok]
                self.region_hidden[i] += int((x[np.isfinite(x)] > 0.5).sum())
        oof = np.nan_to_num(b["out_of_frame"][ok]) if "out_of_frame" in b else np.zeros(int(ok.sum()))
        o = occ[ok]
        inside = np.clip(o - oof, 0, 1)  # occlusion = oof + (1 - oof) * inside-share: the hidden part inside
        self.hide_sum["out_of_frame"] += float(np.minimum(oof, o).sum())
        shares = {}
        for h in HIDERS:
            c = f"hidden_by_{h}"
            if c in b:
                shares[h] = np.nan_to_num(b[c][ok])
                self.hide_sum[h] += float((inside * shares[h]).sum())
        if shares:
            stack = np.vstack([shares[h] for h in shares] + [np.divide(oof, o, out=np.zeros_like(o), where=o > 0)])
            main = np.argmax(stack, axis=0)
            keys = [*shares, "out_of_frame"]
            for j in np.flatnonzero(o >= 0.05):  # faces with at least 5% hidden: who hides most of it
                self.hide_faces[keys[main[j]]] += 1

    def _iso(self, ok: np.ndarray, b: dict) -> None:
        for c in ISO_COMPONENTS:
            if f"{c}_score" in b:
                s = b[f"{c}_score"]
                fin = np.isfinite(s) & ok
                self.iso_scores[c] += np.bincount(np.clip(s[fin], 0, 100).astype(int), minlength=101)
                self.iso_codes[c].update(code for code, o in zip(b[f"{c}_code"], ok, strict=True) if o)

    def _caption(self, b: dict, i: int, occ: float) -> str:
        parts = [f"occlusion {occ:.0%}"]
        for c, tag in (("geometric", "geo"), ("regressor", "reg")):
            if c in b and math.isfinite(b[c][i]):
                parts.append(f"{tag} {b[c][i]:.0%}")
        return ", ".join(parts)

    def _top(self, ok: np.ndarray, occ: np.ndarray, b: dict) -> None:
        idx = np.flatnonzero(ok)
        if not idx.size:
            return
        if idx.size > self.top_n:
            idx = idx[np.argpartition(-occ[idx], self.top_n - 1)[: self.top_n]]
        for i in idx:
            p = Picked(float(occ[i]), b["filename"][i], self._caption(b, i, float(occ[i])),
                       b["warnings"][i] if "warnings" in b else "")
            if len(self.top) < self.top_n:
                heapq.heappush(self.top, p)
            elif p.occlusion > self.top[0].occlusion:
                heapq.heapreplace(self.top, p)

    def _warnings(self, ok: np.ndarray, occ: np.ndarray, b: dict) -> None:
        for i, w in enumerate(b["warnings"]):
            if not w or not ok[i]:
                continue
            self.n_warned += 1
            # "kind: message" items joined by "; " (a message may hold "; " itself): the kinds are the
            # snake_case words before a colon that open the text or follow "; "
            for kind in dict.fromkeys(_WARNING_KIND.findall(w)) or ("other",):
                self.warn_kinds[kind] += 1
                ex = self.warn_examples.setdefault(kind, [])
                if len(ex) < WARNING_EXAMPLES:
                    ex.append(Picked(float(occ[i]), b["filename"][i], self._caption(b, i, float(occ[i])), w))


def _num(v: str | None) -> float:
    try:
        x = float(v) if v not in (None, "") else math.nan
    except ValueError:
        return math.nan
    return x if 0.0 <= x <= 1.0 else math.nan


def _sex(v: str | None) -> str | None:
    if v is None:
        return None
    s = v.strip().upper()
    if s in ("F", "FEMALE"):
        return "F"
    if s in ("M", "MALE"):
        return "M"
    try:
        x = float(s)
    except ValueError:
        return None
    return "M" if x >= 0.5 else "F"  # a soft gender is thresholded at 0.5, as `occparse evaluate` does


def quantiles(hist: np.ndarray, qs=QUANTILES) -> dict[float, float]:
    """Quantiles of the values behind a FINE_BINS histogram over [0, 1] (bin centres, +-0.0005)."""
    total = int(hist.sum())
    if not total:
        return dict.fromkeys(qs, math.nan)
    cum = np.cumsum(hist)
    return {q: (int(np.searchsorted(cum, q * total, side="left")) + 0.5) / FINE_BINS for q in qs}


def aggregate(path: str | Path, by: str | None = None, groups_file: str | Path | None = None,
              truth_file: str | Path | None = None, top_n: int = 50, show_progress: bool = True,
              batch_rows: int = 65536, block_bytes: int = 1 << 23) -> Aggregate:
    """Stream ``path`` once and return its :class:`Aggregate`. ``by``: a column of the results file, of
    ``groups_file`` or of ``truth_file`` (looked up by filename, then by base name). ReportError on a
    file that is not occparse's or a column that is nowhere. ``batch_rows`` (Parquet) and ``block_bytes``
    (CSV) set the batch size: memory use, not results."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"{path}: no such file")
    columns = _header(path)
    agg = Aggregate(results_kind(columns), columns, top_n=top_n)
    truth = truth_gender = None
    if truth_file is not None:
        truth = NameMap(read_map(truth_file, "FaceOcclusion"))
        try:
            truth_gender = NameMap(read_map(truth_file, "gender"))
        except ReportError:
            truth_gender = None
    group_of = None
    if by:
        if by in columns:
            def group_of(names, b):
                vals = b[by]
                if isinstance(vals, np.ndarray):  # a number column (is_gray, rotation, ...): its values as text
                    return [f"{v:g}" if np.isfinite(v) else None for v in vals]
                return [v or None for v in vals]
        else:
            src = groups_file if groups_file is not None else truth_file
            if src is None:
                raise ReportError(f"--by {by}: the results file has no column {by!r}; name a CSV that has it "
                                  "with --groups FILE (filename plus that column), or --truth")
            m = NameMap(read_map(src, by))

            def group_of(names, b):
                return [m.get(nm) or None for nm in names]
    wanted = agg.wanted(by if by in columns else None)
    bar = None
    if show_progress:
        from tqdm import tqdm

        total = path.stat().st_size if path.suffix.lower() != ".parquet" else _parquet_rows(path)
        bar = tqdm(total=total, unit="B" if path.suffix.lower() != ".parquet" else "rows",
                   unit_scale=True, desc="report", leave=False)
    try:
        for b in iter_batches(path, columns, wanted, batch_rows, bar.update if bar else None, block_bytes):
            agg.add(b, group_of, truth, truth_gender)
    finally:
        if bar:
            bar.close()
    agg.top.sort(reverse=True)
    return agg


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


# ---------------------------------------------------------------------------------------------
# figures


def _png(fig) -> str:
    """A matplotlib figure as a base64 PNG (no metadata: the page must name no address)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def fig_status(agg: Aggregate) -> str:
    plt = _plt()
    items = agg.status.most_common()
    fig, ax = plt.subplots(figsize=(3.6, 0.45 * len(items) + 1.0))
    labels = [k or "(empty)" for k, _ in items][::-1]
    vals = [v for _, v in items][::-1]
    colours = ["#3a7d44" if k == "ok" else "#c0392b" for k in labels]
    ax.barh(labels, vals, color=colours)
    for y, v in enumerate(vals):
        ax.text(v, y, f" {v:,} ({v / max(1, agg.n):.1%})", va="center", fontsize=9)
    ax.set_xlabel("images")
    ax.set_xlim(0, max(vals) * 1.35 if vals else 1)
    ax.set_title("Images by status")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def fig_histogram(agg: Aggregate) -> str:
    plt = _plt()
    h = agg.all.hist.reshape(DRAW_BINS, -1).sum(1)
    edges = np.linspace(0, 1, DRAW_BINS + 1)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar(edges[:-1] * 100, h, width=100 / DRAW_BINS, align="edge", color="#4c72b0", edgecolor="white", lw=0.4)
    qs = quantiles(agg.all.hist)
    for q, ls in ((0.5, "-"), (0.9, "--"), (0.99, ":")):
        if math.isfinite(qs[q]):
            ax.axvline(qs[q] * 100, color="#c0392b", ls=ls, lw=1.2, label=f"{int(q * 100)}th percentile {qs[q]:.1%}")
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("occluded share of the face region R (%)")
    ax.set_ylabel("faces (log scale)")
    ax.set_title(f"Distribution of occlusion ({agg.all.n_ok:,} measured faces)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def _canonical_regions(scale: int = 2):
    """R and the sub-regions on the canonical 224 x 224 face (occparse's mean mesh), drawn ``scale`` times larger."""
    from ..runtime.align import CANONICAL_SIZE
    from ..runtime.mesh import Face, canonical_mesh
    from ..runtime.regions import face_regions

    lm = canonical_mesh() * scale
    side = CANONICAL_SIZE * scale
    return face_regions(Face(landmarks=lm, image_size=(side, side))), side


def fig_face(values: dict[str, float], title: str, vmax: float | None = None, fmt: str = "{:.0%}",
             label: str = "mean occluded share") -> str:
    """A heat map on the canonical face: each sub-region filled by its value (0..1), R outlined."""
    import cv2
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    plt = _plt()
    regions, side = _canonical_regions()
    finite = [v for v in values.values() if math.isfinite(v)]
    vmax = vmax or max(0.05, math.ceil(max(finite, default=0.05) * 10) / 10)
    norm = Normalize(0.0, vmax)
    cmap = colormaps["YlOrRd"]
    img = np.full((side, side, 4), 1.0, np.float32)
    img[regions.face] = (0.86, 0.86, 0.86, 1.0)
    fig, ax = plt.subplots(figsize=(4.2, 4.6))
    for name in REGIONS:
        m = regions.parts[name]
        v = values.get(name, math.nan)
        img[m] = cmap(norm(v)) if math.isfinite(v) else (0.7, 0.7, 0.7, 1.0)
    ax.imshow(img)
    for name in REGIONS:
        m = regions.parts[name].astype(np.uint8)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            ax.plot(*np.vstack([c[:, 0], c[:1, 0]]).T, color="#333333", lw=0.6)
        ys, xs = np.nonzero(m)
        if xs.size:
            v = values.get(name, math.nan)
            ax.text(xs.mean(), ys.mean(), fmt.format(v) if math.isfinite(v) else "n/a", ha="center", va="center",
                    fontsize=8, fontweight="bold", color="black",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7})
    ax.set_axis_off()
    ax.set_title(title, fontsize=10)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    cb = fig.colorbar(sm, ax=ax, fraction=0.04, pad=0.02)
    cb.set_label(label, fontsize=8)
    cb.ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda x, _: f"{x:.0%}"))
    ax.text(side / 2, side - 4, "L / R = the subject's own left / right", ha="center", va="bottom", fontsize=7)
    return _png(fig)


def fig_hiders(agg: Aggregate) -> str:
    plt = _plt()
    keys = [k for k in (*HIDERS, "out_of_frame") if agg.hide_sum.get(k, 0) > 0 or k in HIDERS]
    total = sum(agg.hide_sum[k] for k in keys)
    shares = [agg.hide_sum[k] / total if total else 0.0 for k in keys]
    faces = [agg.hide_faces.get(k, 0) for k in keys]
    # the overlay's class colours (occparse.labels.PALETTE; background gray as in the picture)
    colours = {"hair": "#f0c828", "facial_hair": "#965a28", "occluder": "#e62828", "background": "#969696",
               "out_of_frame": "#34495e"}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 2.9))
    labels = [HIDER_LABELS[k] for k in keys]
    a1.barh(labels[::-1], [s * 100 for s in shares][::-1], color=[colours[k] for k in keys][::-1])
    for y, s in enumerate(shares[::-1]):
        a1.text(s * 100, y, f" {s:.1%}", va="center", fontsize=8)
    a1.set_xlabel("share of all hidden face area (%)")
    a1.set_title("What hides the face (all faces)", fontsize=10)
    a1.set_xlim(0, max([s * 100 for s in shares] + [1]) * 1.3)
    a2.barh(labels[::-1], faces[::-1], color=[colours[k] for k in keys][::-1])
    for y, v in enumerate(faces[::-1]):
        a2.text(v, y, f" {v:,}", va="center", fontsize=8)
    a2.set_xlabel("faces (at least 5% hidden)")
    a2.set_title("Main hider, face by face", fontsize=10)
    a2.set_yticklabels([])
    a2.set_xlim(0, max(faces + [1]) * 1.3)
    for a in (a1, a2):
        a.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def fig_iso(agg: Aggregate) -> str:
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(11, 2.8), sharey=True)
    for ax, c in zip(axes, ISO_COMPONENTS, strict=True):
        h = agg.iso_scores[c]
        ax.bar(np.arange(101), h, width=1.0, color="#5b8c5a")
        ax.set_yscale("symlog", linthresh=10)
        fails = agg.iso_codes[c].get("failure_to_assess", 0)
        ax.set_title(f"{c}\n(failure to assess: {fails:,})", fontsize=9)
        ax.set_xlabel("score (0..100, 100 = nothing hidden)", fontsize=8)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("faces (log scale)")
    return _png(fig)


def fig_groups(agg: Aggregate, names: list[str]) -> str:
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [2, 1]})
    centres = (np.arange(DRAW_BINS) + 0.5) / DRAW_BINS * 100
    for g in names:
        s = agg.groups[g]
        h = s.hist.reshape(DRAW_BINS, -1).sum(1)
        if h.sum():
            a1.step(centres, h / h.sum(), where="mid", lw=1.4, label=f"{g} (n={s.n_ok:,})")
    a1.set_yscale("log")
    a1.set_xlabel("occluded share of R (%)")
    a1.set_ylabel("share of the group's faces")
    a1.set_title("Occlusion by group", fontsize=10)
    if a1.get_legend_handles_labels()[0]:
        a1.legend(frameon=False, fontsize=8)
    means = [agg.groups[g].mean() * 100 for g in names]
    a2.bar(range(len(names)), means, color="#4c72b0")
    for x, v in enumerate(means):
        if math.isfinite(v):
            a2.text(x, v, f"{v:.1f}%", ha="center", va="bottom", fontsize=8)
    a2.set_xticks(range(len(names)), names, rotation=30 if len(names) > 3 else 0, fontsize=8)
    a2.set_ylabel("mean occlusion (%)")
    a2.set_title("Mean occlusion", fontsize=10)
    for a in (a1, a2):
        a.spines[["top", "right"]].set_visible(False)
    return _png(fig)


# ---------------------------------------------------------------------------------------------
# thumbnails


def resolve_image(name: str, roots: list[Path]) -> Path | None:
    """The photo behind a results row: ``name`` itself when absolute, else the first root that has it."""
    p = Path(name)
    if p.is_absolute():
        return p if p.is_file() else None
    for r in roots:
        q = r / p
        if q.is_file():
            return q
    return None


class Thumbnailer:
    """JPEG thumbnails (base64) of the chosen faces: occparse's overlay (R tinted by parser class,
    sub-regions outlined; the Estimator runs again on just these images) or, with ``overlay=False`` or
    when the models cannot load, the plain photo."""

    def __init__(self, roots: list[Path], overlay: bool = True, options=None):
        self.roots = roots
        self.overlay = overlay
        self.options = options
        self._est = None
        self.note = ""
        self.missing = 0

    def _estimator(self):
        if self._est is None and self.overlay:
            try:
                from ..runtime.pipeline import Estimator, EstimatorOptions

                self._est = Estimator(self.options or EstimatorOptions(max_faces=1))
            except Exception as e:  # no models: plain photos, and the page says why
                self.overlay = False
                self.note = f"overlays not drawn: the models did not load ({type(e).__name__}: {e})"
        return self._est

    def make(self, name: str) -> tuple[str | None, str]:
        """(base64 JPEG or None, note): None when the photo is missing or unreadable (the note says which)."""
        import cv2

        path = resolve_image(name, self.roots)
        if path is None:
            self.missing += 1
            return None, "image not found"
        rgb = None
        est = self._estimator()
        try:
            if est is not None:
                an = est.analyze(path)
                if an.faces and an.image is not None:
                    from ..runtime.visualize import draw_face_tile

                    rgb = draw_face_tile(an.image.rgb, an.faces[0])
                elif an.image is not None:
                    rgb = an.image.rgb
            if rgb is None:
                from ..runtime.io import read_image

                rgb = read_image(path).rgb
        except Exception as e:
            self.missing += 1
            return None, f"unreadable ({type(e).__name__})"
        h, w = rgb.shape[:2]
        s = THUMB / max(h, w)
        small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", small[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 82])
        if not ok:
            return None, "could not encode"
        return base64.b64encode(buf.tobytes()).decode("ascii"), ""


# ---------------------------------------------------------------------------------------------
# the page

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d1d1d;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:18px 28px 60px}
h1{font-size:24px;margin:8px 0 2px}h2{font-size:19px;margin:30px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.muted{color:#666;font-size:13px}figure{margin:10px 0}figure img{max-width:100%;height:auto}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
.grid{display:flex;flex-wrap:wrap;gap:8px}.thumb{width:188px;font-size:11px;background:#fff;border:1px solid #ddd;padding:3px}
.thumb img{width:180px;height:180px;object-fit:contain;background:#333;display:block}
.ph{width:180px;height:180px;background:#bbb;color:#333;display:flex;align-items:center;justify-content:center;text-align:center}
.name{word-break:break-all;color:#444}.warn{color:#a04000}
"""


def _esc(s) -> str:
    return html.escape(str(s), quote=True)


def _img(b64: str, alt: str, fig_id: str, mime: str = "png") -> str:
    return f'<figure id="{fig_id}"><img alt="{_esc(alt)}" src="data:image/{mime};base64,{b64}"></figure>'


def _pct(v: float, d: int = 1) -> str:
    return f"{v:.{d}%}" if math.isfinite(v) else "n/a"


def _thumbs(picks: list[Picked], th: Thumbnailer, cls: str, progress=None) -> str:
    out = [f'<div class="grid {cls}">']
    for i, p in enumerate(picks):
        b64, note = th.make(p.filename)
        if progress:
            progress(1)
        pic = (f'<img class="face" alt="{_esc(p.filename)}" src="data:image/jpeg;base64,{b64}">' if b64 else
               f'<div class="ph missing">{_esc(note)}</div>')
        warn = f'<div class="warn">{_esc(p.warnings)}</div>' if p.warnings else ""
        out.append(f'<div class="thumb"><div>{pic}</div><b>#{i + 1}</b> {_esc(p.caption)}'
                   f'<div class="name">{_esc(p.filename)}</div>{warn}</div>')
    out.append("</div>")
    return "\n".join(out)


#: marks a page as occparse's report, so that a rerun may replace it and another file of that name is refused
GENERATOR_META = '<meta name="generator" content="occparse report">'


def is_report(path) -> bool:
    """Whether the file at ``path`` is a page :func:`render` wrote (its generator mark, in the first 4 KB)."""
    from ..runtime.io import is_regular_file

    if not is_regular_file(path):  # a named pipe would wait for a writer
        return False
    try:
        with open(path, "rb") as f:
            return GENERATOR_META.encode() in f.read(4096)
    except OSError:
        return False


def render(agg: Aggregate, title: str, th: Thumbnailer | None, by: str | None = None,
           truth_name: str | None = None, show_progress: bool = True) -> str:
    """The HTML page (a str) for an :class:`Aggregate`; ``th`` None draws no thumbnails."""
    t0 = time.perf_counter()
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">{GENERATOR_META}<title>{_esc(title)}</title>"
             f"<style>{CSS}</style></head><body><main>",
             f"<h1>{_esc(title)}</h1>",
             f'<p class="muted">{agg.n:,} rows ({"folder mode" if agg.kind == "folder" else "predict"} output); '
             f"{agg.all.n_ok:,} measured faces. Occlusion is the occluded share of the face region R (the MediaPipe "
             "face oval), 0 = fully visible, 1 = fully hidden.</p>"]

    parts.append("<h2>Counts by status and distribution of occlusion</h2>")
    parts.append('<div class="row">' + _img(fig_status(agg), "images by status", "fig-status")
                 + _img(fig_histogram(agg), "histogram of occlusion", "fig-histogram") + "</div>")
    qs = quantiles(agg.all.hist)
    parts.append('<table id="quantiles"><tr><th>mean</th>' + "".join(f"<th>{int(q * 100)}%</th>" for q in qs)
                 + f"</tr><tr><td>{_pct(agg.all.mean())}</td>" + "".join(f"<td>{_pct(v)}</td>" for v in qs.values())
                 + "</tr></table>")

    if agg.kind == "folder" and agg.has(*(f"region_{r}" for r in REGIONS)):
        means = {r: (agg.all.region_sum[i] / agg.all.region_n[i] if agg.all.region_n[i] else math.nan)
                 for i, r in enumerate(REGIONS)}
        hidden = {r: (agg.region_hidden[i] / agg.all.region_n[i] if agg.all.region_n[i] else math.nan)
                  for i, r in enumerate(REGIONS)}
        parts.append("<h2>Which regions are hidden</h2>")
        parts.append('<div class="row">'
                     + _img(fig_face(means, "Mean occluded share per region"), "face diagram: mean occlusion per region",
                            "fig-face")
                     + _img(fig_face(hidden, "Faces with the region more than half hidden", label="share of faces"),
                            "face diagram: share of faces with the region mostly hidden", "fig-face-hidden")
                     + "</div>")
        parts.append('<table id="regions"><tr><th>region</th><th>mean occluded</th><th>faces &gt;50% hidden</th></tr>'
                     + "".join(f"<tr><td>{r}</td><td>{_pct(means[r])}</td><td>{_pct(hidden[r])}</td></tr>"
                               for r in sorted(REGIONS, key=lambda r: -np.nan_to_num(means[r])))
                     + "</table>")
        parts.append("<h2>What hides the face</h2>")
        parts.append(_img(fig_hiders(agg), "what hides the face", "fig-hiders"))
        parts.append('<p class="muted">Left: the hidden face area of all faces together, split by what the parser '
                     "sees there (the part of R outside the photo on its own). Right: for each face with at least 5% "
                     "hidden, the one thing hiding most of it.</p>")
    else:
        parts.append('<h2>Which regions are hidden</h2><p class="muted">This results file has no per-region or '
                     "hidden-by columns (a predict output): run folder mode, <code>occparse estimate DIR --out X.csv"
                     "</code>, for the face diagram and what hides the face.</p>")

    if any(agg.iso_scores[c].sum() or agg.iso_codes[c] for c in ISO_COMPONENTS):
        parts.append("<h2>ISO/IEC 29794-5 style components</h2>")
        parts.append(_img(fig_iso(agg), "ISO/IEC 29794-5 style component scores", "fig-iso"))
        parts.append('<p class="muted">Computed from occparse\'s own estimate and regions, not certified OFIQ values '
                     "(docs/iso_components.md).</p>")

    if by:
        parts.append(f"<h2>Groups: {_esc(by)}</h2>")
        names = sorted(agg.groups, key=lambda g: -agg.groups[g].n)[:DRAW_GROUPS]
        if names:
            parts.append(_img(fig_groups(agg, names), f"occlusion by {by}", "fig-groups"))
            has_truth = any(s.t_n for s in agg.groups.values())
            head = ("<tr><th>group</th><th>rows</th><th>measured</th><th>mean</th><th>median</th><th>90%</th>"
                    + "".join(f"<th>{r}</th>" for r in REGIONS if agg.kind == "folder")
                    + ("<th>Err</th><th>MAE</th><th>bias</th><th>scored</th>" if has_truth else "") + "</tr>")
            rows = []
            for g in sorted(agg.groups, key=lambda g: -agg.groups[g].n):
                s = agg.groups[g]
                q = quantiles(s.hist, (0.5, 0.9))
                cells = [_esc(g), f"{s.n:,}", f"{s.n_ok:,}", _pct(s.mean()), _pct(q[0.5]), _pct(q[0.9])]
                if agg.kind == "folder":
                    cells += [_pct(s.region_sum[i] / s.region_n[i] if s.region_n[i] else math.nan)
                              for i in range(len(REGIONS))]
                if has_truth:
                    cells += [f"{s.err():.5f}" if s.t_n else "n/a",
                              f"{s.t_abs / s.t_n:.4f}" if s.t_n else "n/a",
                              f"{s.t_bias / s.t_n:+.4f}" if s.t_n else "n/a", f"{s.t_n:,}"]
                rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
            parts.append(f'<table id="groups">{head}{"".join(rows)}</table>')
            if agg.group_unmatched:
                parts.append(f'<p class="muted">{agg.group_unmatched:,} rows had no {_esc(by)} value and are left out '
                             "of the groups.</p>")
        else:
            parts.append(f'<p class="muted">No row had a {_esc(by)} value.</p>')

    if truth_name is not None:
        parts.append("<h2>Challenge metric against the truth</h2>")
        f, m = agg.gender.get("F"), agg.gender.get("M")
        if f and m and f.t_n and m.t_n:
            ef, em = f.err(), m.err()
            score = (ef + em) / 2 + abs(ef - em)
            parts.append(f'<table id="challenge"><tr><th>Score</th><th>Err F</th><th>Err M</th><th>gap</th>'
                         f"<th>scored</th></tr><tr><td>{score:.5f}</td><td>{ef:.5f}</td><td>{em:.5f}</td>"
                         f"<td>{abs(ef - em):.5f}</td><td>{f.t_n + m.t_n:,}</td></tr></table>")
        else:
            parts.append('<p class="muted">The truth file has no usable gender column, or only one gender: no Score '
                         "(the per-group Err above still holds).</p>")
        parts.append(f'<p class="muted">Truth: {_esc(truth_name)}. Err = sum w (p - GT)^2 / sum w, w = 1/30 + GT; '
                     "Score = (Err_F + Err_M) / 2 + |Err_F - Err_M|; a failed or missing prediction scores as the "
                     f"worst value. {agg.truth_unmatched:,} result rows are not in the truth.</p>")

    if th is not None:
        n_thumbs = len(agg.top) + sum(len(v) for v in agg.warn_examples.values())
        bar = None
        if show_progress and n_thumbs:
            from tqdm import tqdm

            bar = tqdm(total=n_thumbs, unit="faces", desc="thumbnails", leave=False)
        try:
            parts.append(f"<h2>The {len(agg.top)} most occluded faces</h2>")
            parts.append('<p class="muted">Look at these first. Overlay: R outlined in green, tinted by what the parser '
                         "sees (visible face blue, hair yellow, occluder red, facial hair brown, background gray), "
                         "sub-regions outlined. The caption holds the numbers from the results file; the overlay is "
                         "drawn anew by the installed occparse with its default settings.</p>")
            parts.append(_thumbs(agg.top, th, "top", bar.update if bar else None))
            parts.append("<h2>Faces with warnings</h2>")
            if agg.warn_kinds:
                parts.append('<table id="warnings"><tr><th>warning</th><th>faces</th></tr>'
                             + "".join(f"<tr><td>{_esc(k)}</td><td>{v:,}</td></tr>" for k, v in agg.warn_kinds.most_common())
                             + f"</table><p class=\"muted\">{agg.n_warned:,} faces carry at least one warning; up to "
                             f"{WARNING_EXAMPLES} of each kind are shown (the first in the file).</p>")
                for k, picks in agg.warn_examples.items():
                    parts.append(f"<h3>{_esc(k)}</h3>")
                    parts.append(_thumbs(picks, th, "warned", bar.update if bar else None))
            else:
                parts.append('<p class="muted">No face carries a warning.</p>')
        finally:
            if bar:
                bar.close()
        notes = [th.note] if th.note else []
        if th.missing:
            notes.append(f"{th.missing} chosen image(s) were not found or not readable under the images root "
                         "(grey placeholders); pass --images-root")
        if notes:
            parts.append(f'<p class="muted" id="thumb-notes">{_esc("; ".join(notes))}</p>')
    parts.append(f'<p class="muted">occparse report; page drawn in {time.perf_counter() - t0:.1f} s.</p>')
    parts.append("</main></body></html>")
    return "\n".join(parts)
