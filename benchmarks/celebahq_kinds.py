"""CelebA-HQ benchmark: hair-mask truth scored with the challenge metric, and acceptance rates per kind.

    python benchmarks/celebahq_kinds.py --out DIR [--data ../shared/data] [--split val] [--limit N]
                                        [--workers 1] [--batch 64] [--precision auto|fp32|int8]
                                        [--weights DIR] [--facial-hair occluding|visible]
                                        [--sheet WORST.png] [--sheet-count 24] [--json SUMMARY.json]

Runs occparse (the Python API, as ``occparse predict`` does: the subject face, shipped models unless
--weights says otherwise) on the ``val`` part of the fixed CelebA-HQ split
(``occparse.synth.sources.celebahq_split``: 20% of ``faces/celebahq``, 40% of ``faces/celebahq_hair``)
and reports two things.

**(a) Hair-mask truth** (``faces/celebahq_hair``, about 240 val photos). Truth = share of the face
region R under hair: R is the filled MediaPipe face-oval polygon of the photo's own mesh
(``mesh_only``, the face nearest the centre: the data definition, as for the LFW truth), and hair is
the CelebAMask-HQ mask (1 = hair). Only hair is labelled there: a hat, a hand, glasses or a beard over
R count as visible in this truth while occparse counts them as occluding, so the truth's ``kind``
column (hat, fringe, facial_hair, eyeglasses, plain, other; first that applies, from the attributes)
and its ``hair_only`` column (yes: no hat, glasses, facial hair or stubble) let a reader set those
rows apart. Attributes miss headbands, hands, microphones and watermarks, so the photos were also
audited by eye (``occparse/synth/celebahq_hair_audit.csv``): ``hair_audit`` names what the audit saw
clearly over the face besides hair (``none``), and ``hair_complete`` is yes where ``hair_only`` holds
and the audit saw nothing: the rows whose truth is the whole occlusion. Every score is also broken
down by ``kind``, ``hair_only`` and ``hair_complete``. A photo the truth mesh finds no face in has no
truth and is listed, not scored. Scores (``occparse.evaluation.metrics``): final estimate, geometric estimate,
and two diagnostics that separate the causes of an error: ``parser hair in R`` (share of the truth's
R that the parser labels hair: the hair mask alone, compared like with like) and ``geometric on truth
R`` (the parser's not-face share of the truth's R: occparse's own R taken out). Each with Err per
true-occlusion bin and the bin's bias (mean signed error). Also: the mean IoU of occparse's R with
the truth's R, and the parser's hair recall and precision inside R.

**(b) Kinds** (both val parts together, CelebA's image-level attributes; a kind can be wrong or
borderline, e.g. stubble):

* facial hair = Goatee or Mustache or Sideburns: *found* when the facial-hair share of R (the
  face's ``occluded_by.facial_hair`` times its in-frame occluded share, i.e. what the parser labels
  facial hair inside R) is >= 0.02;
* plain = none of Wearing_Hat, Bangs, Eyeglasses, Goatee, Mustache, Sideburns, 5_o_Clock_Shadow, and
  No_Beard: the facial-hair-found rate (should be low) and the median final estimate;
* fringe = Bangs: the share with the forehead region >= 0.3 occluded;
* hat = Wearing_Hat, eyeglasses = Eyeglasses: the same numbers, no acceptance line.

The attribute does not say how much of the forehead hair hides, so on the hair-mask photos the
forehead test is also read from the drawn hair: the share of the
forehead sub-region (of the truth mesh's R) under the mask, against occparse's reading, per kind.

A photo where occparse finds no face counts as *not found* and *forehead < 0.3* (the rates are
lower bounds) and is left out of the medians; every count is printed.

Writes into --out: ``truth_hair.csv`` (filename, FaceOcclusion, gender, kind, hair_only, hair_audit, hair_complete,
forehead_hair: the challenge
contract, so ``occparse evaluate --pred pred_hair.csv --truth truth_hair.csv --by kind`` reproduces part (a)),
``pred_hair.csv`` (filename, FaceOcclusion, status, geometric, regressor, parser_hair, geometric_truth_r),
``faces.csv`` (one row per val photo of both parts: kinds, estimates, forehead, facial-hair share)
and ``report.txt``; --sheet draws the worst hair-mask rows (--sheet-hair-only: only hair_only rows)
with the truth hair tinted red, the truth's R outlined green, occparse's R yellow and the parser's
hair cyan (near R). The data are
research-licensed: read from the data folder, never copied.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: acceptance thresholds of the CelebA kinds (issue "Real faces, real labels")
FACIAL_HAIR_FOUND = 0.02  # share of R labelled facial hair
FOREHEAD_HIDDEN = 0.3  # forehead region occluded fraction
BIN_BIAS_LIMIT = 0.06
#: attributes that make a face not plain (with No_Beard = -1)
NOT_PLAIN = ("Wearing_Hat", "Bangs", "Eyeglasses", "Goatee", "Mustache", "Sideburns", "5_o_Clock_Shadow")
KINDS = ("facial_hair", "plain", "fringe", "hat", "eyeglasses")


def has_facial_hair(a: dict[str, bool]) -> bool:
    return a["Goatee"] or a["Mustache"] or a["Sideburns"]


def is_plain(a: dict[str, bool]) -> bool:
    return not any(a[k] for k in NOT_PLAIN) and a["No_Beard"]


def kinds_of(a: dict[str, bool]) -> list[str]:
    """Every kind of :data:`KINDS` a photo's attributes give (a photo can be several)."""
    out = []
    if has_facial_hair(a):
        out.append("facial_hair")
    if is_plain(a):
        out.append("plain")
    if a["Bangs"]:
        out.append("fringe")
    if a["Wearing_Hat"]:
        out.append("hat")
    if a["Eyeglasses"]:
        out.append("eyeglasses")
    return out


def truth_kind(a: dict[str, bool]) -> str:
    """One kind per photo for the hair-mask truth's ``kind`` column: the first of hat, fringe,
    facial_hair, eyeglasses, plain that applies, else other (e.g. stubble or a beard without
    goatee or moustache)."""
    if a["Wearing_Hat"]:
        return "hat"
    if a["Bangs"]:
        return "fringe"
    if has_facial_hair(a):
        return "facial_hair"
    if a["Eyeglasses"]:
        return "eyeglasses"
    return "plain" if is_plain(a) else "other"


def hair_only(a: dict[str, bool]) -> bool:
    """No hat, glasses or facial hair of any kind (stubble included): photos where hair is the only
    occluder the attributes know of, so the hair-mask truth is the whole occlusion as far as they tell
    (a hand or a microphone is not an attribute)."""
    return not any(a[k] for k in NOT_PLAIN if k != "Bangs") and a["No_Beard"]


@dataclass
class Measured:
    """occparse's reading of one photo (fields None when it found no face)."""

    status: str
    final: float | None = None
    geometric: float | None = None
    regressor: float | None = None
    forehead: float | None = None
    facial_hair_share: float | None = None  # share of R labelled facial hair
    hair_share: float | None = None  # share of R labelled hair (occparse's own R)
    labels: np.ndarray | None = None  # parser labels in the photo's geometry (hair part only)
    region: np.ndarray | None = None  # occparse's R (hair part only)


def measure(est, paths: list[Path], workers: int, batch: int, keep_maps: set[str]) -> dict[str, Measured]:
    from occparse.runtime.batch import analyses
    from occparse.runtime.regions import face_region

    out: dict[str, Measured] = {}
    t0 = time.time()
    for i, (p, an) in enumerate(zip(paths, analyses(est, paths, workers=workers, batch_size=batch), strict=True)):
        res = an.result
        if not res.ok:
            out[p.name] = Measured(str(res.status))
            continue
        f = res.faces[0]
        inside = max(0.0, f.geometric - f.out_of_frame)  # the in-frame hidden share of R (see occlusion.py)
        m = Measured("ok", f.occlusion, f.geometric, f.regressor, f.region("forehead"),
                     f.occluded_by.facial_hair * inside, f.occluded_by.hair * inside)
        if p.name in keep_maps:
            size = (res.height, res.width)
            m.labels = an.faces[0].labels_original(size)
            m.region = face_region(an.faces[0].face, size)
        out[p.name] = m
        if (i + 1) % 200 == 0:
            print(f"  {i + 1}/{len(paths)} photos, {(i + 1) / (time.time() - t0):.1f}/s", file=sys.stderr)
    return out


def hair_truth(photos, show_progress: bool = True):
    """(rows, maps, no_mesh): truth rows of the hair-mask photos, per-photo (R, hair mask) and the names
    the truth mesh found no face in."""
    from occparse.runtime.regions import face_regions
    from occparse.synth.sources import _mesh_cached, hair_mask_occluders, read_label_map

    meshes = _mesh_cached([p.image_path for p in photos], "celebahq_hair", show_progress)
    rows, maps, no_mesh = [], {}, []
    for p in photos:
        face = meshes.get(p.name)
        if face is None:
            no_mesh.append(p.name)
            continue
        hair = read_label_map(p.hair_path) == 1
        regions = face_regions(face, hair.shape)
        region, forehead = regions.face, regions.parts["forehead"]
        n = int(region.sum())
        gt = float((hair & region).sum()) / n if n else 1.0
        # the forehead's share under the drawn hair: what (b)'s forehead test would read on a perfect parser
        fh = float((hair & forehead).sum()) / float(forehead.sum()) if forehead.any() else math.nan
        seen = hair_mask_occluders(p.name)
        only = hair_only(p.attributes)
        rows.append({"filename": p.name, "FaceOcclusion": f"{gt:.6f}", "gender": p.gender,
                     "kind": truth_kind(p.attributes), "hair_only": "yes" if only else "no",
                     "hair_audit": "+".join(seen) or "none", "hair_complete": "yes" if only and not seen else "no",
                     "forehead_hair": _f(fh, ".4f")})
        maps[p.name] = (region, hair)
    return rows, maps, no_mesh


def _f(v: float | None, spec: str = ".6f") -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def bins_table(ev, label: str) -> tuple[list[str], list[str]]:
    """The report lines of one scored column, and the bins whose |bias| breaks the limit."""
    from occparse.evaluation.metrics import format_breakdown

    lines = [f"{label}: Score {ev.score:.6f}  Err_F {ev.err_f:.6f}  Err_M {ev.err_m:.6f}  MAE {ev.mae:.4f}  "
             f"Pearson {ev.pearson_r:.4f}  ({ev.n_scored} scored, {ev.n_missing + ev.n_invalid} without a prediction, "
             "scored worst)"]
    bad = []
    lines.append(f"  {'true occlusion':<22}{'n':>5}{'Err':>11}{'MAE':>8}{'bias':>9}")
    for g in ev.groups:
        if g.name.startswith("gt "):
            flag = " <- |bias| > 0.06" if abs(g.bias) > BIN_BIAS_LIMIT else ""
            if flag:
                bad.append(g.name)
            lines.append(f"  {g.name[3:]:<22}{g.n:>5}{g.err:>11.6f}{g.mae:>8.4f}{g.bias:>+9.4f}{flag}")
    for b in ev.by:
        lines += ["  " + x for x in format_breakdown(b).splitlines()]
    return lines, bad


def rate(hits: int, n: int) -> str:
    return f"{hits}/{n} = {100 * hits / n:.1f}%" if n else "n/a (no photo)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="folder for the truth, predictions, rows and report")
    ap.add_argument("--data", help="data folder (default $OCCPARSE_DATA or ../shared/data)")
    ap.add_argument("--split", choices=["val", "train"], default="val",
                    help="val (default: held-out numbers) or train (not held out once models train on it)")
    ap.add_argument("--limit", type=int, help="at most N photos of each part (quick tries; not a benchmark number)")
    ap.add_argument("--workers", type=int, default=1, help="processes for decoding and the mesh (default 1)")
    ap.add_argument("--batch", type=int, default=64, help="crops per network batch")
    ap.add_argument("--precision", choices=["auto", "fp32", "int8"], default="auto")
    ap.add_argument("--weights", help="a weights folder with its manifest.json (default: the installed models)")
    ap.add_argument("--facial-hair", choices=["occluding", "visible"], default="occluding")
    ap.add_argument("--sheet", type=Path, help="contact sheet of the worst hair-mask rows (.png/.jpg)")
    ap.add_argument("--sheet-count", type=int, default=24)
    ap.add_argument("--sheet-hair-only", action="store_true",
                    help="draw only hair_only rows (no hat, glasses, facial hair: where the truth is complete)")
    ap.add_argument("--json", type=Path, help="also write the summary as JSON")
    a = ap.parse_args(argv)

    from occparse.errors import DataError
    from occparse.evaluation.metrics import evaluate
    from occparse.runtime.pipeline import Estimator, EstimatorOptions
    from occparse.runtime.strictjson import dumps
    from occparse.synth.sources import celebahq_photos, find_data_root

    try:
        root = find_data_root(a.data)
        hair_photos = celebahq_photos(root, "celebahq_hair", a.split)[: a.limit]
        attr_photos = celebahq_photos(root, "celebahq", a.split)[: a.limit]
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    print(f"hair-mask truth for {len(hair_photos)} {a.split} photos ...", file=sys.stderr)
    truth, maps, no_mesh = hair_truth(hair_photos)
    if not truth:
        print("error: the truth mesh found no face in any hair-mask photo", file=sys.stderr)
        return 1
    est = Estimator(EstimatorOptions(max_faces=1, detector_scores=False, precision=a.precision, weights=a.weights,
                                     facial_hair=a.facial_hair, spin=a.workers <= 1))
    print(f"occparse on {len(hair_photos)} + {len(attr_photos)} photos ...", file=sys.stderr)
    got = measure(est, [p.image_path for p in hair_photos], a.workers, a.batch, keep_maps=set(maps))
    got |= measure(est, [p.image_path for p in attr_photos], a.workers, a.batch, keep_maps=set())
    seconds = time.time() - t0

    # (a) hair-mask truth
    pred_rows = []
    iou, recall, precision = [], [], []
    for r in truth:
        m, (region, hair) = got[r["filename"]], maps[r["filename"]]
        row = {"filename": r["filename"], "FaceOcclusion": _f(m.final), "status": m.status, "geometric": _f(m.geometric),
               "regressor": _f(m.regressor), "parser_hair": "", "geometric_truth_r": ""}
        if m.labels is not None:
            n = max(1, int(region.sum()))
            p_hair = m.labels == 2
            row["parser_hair"] = _f(float((p_hair & region).sum()) / n)
            row["geometric_truth_r"] = _f(1.0 - float(((m.labels == 1) & region).sum()) / n)
            iou.append(float((m.region & region).sum()) / max(1, int((m.region | region).sum())))
            t_h = hair & region
            if t_h.sum() >= 0.02 * n:  # recall only where there is hair to find
                recall.append(float((p_hair & t_h).sum()) / float(t_h.sum()))
            if (p_hair & region).sum() >= 0.02 * n:
                precision.append(float((p_hair & t_h).sum()) / float((p_hair & region).sum()))
        pred_rows.append(row)
    write_csv(a.out / "truth_hair.csv", truth)
    write_csv(a.out / "pred_hair.csv", pred_rows)

    lines = [f"CelebA-HQ kinds benchmark, split {a.split}{f', limit {a.limit}' if a.limit else ''}; "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; occparse {_version()}, precision "
             f"{est.precision}, facial hair {a.facial_hair}; {seconds:.0f} s", "",
             f"(a) hair-mask truth: {len(hair_photos)} photos, {len(truth)} with truth "
             f"({len(no_mesh)} where the truth mesh found no face: {', '.join(no_mesh[:10]) or '-'}); "
             f"mean truth {statistics.fmean(float(r['FaceOcclusion']) for r in truth):.4f}", ""]
    summary: dict = {"split": a.split, "limit": a.limit, "precision": est.precision, "facial_hair": a.facial_hair,
                     "n_hair_photos": len(hair_photos), "n_truth": len(truth), "no_truth_mesh": no_mesh, "hair": {}}
    pred_by = {c: {r["filename"]: r[c] for r in pred_rows} for c in ("FaceOcclusion", "geometric", "parser_hair",
                                                                        "geometric_truth_r")}
    for column, label in (("FaceOcclusion", "final"), ("geometric", "geometric"),
                          ("parser_hair", "diagnostic: parser hair in truth R"),
                          ("geometric_truth_r", "diagnostic: geometric on truth R")):
        ev = evaluate(pred_by[column], truth, by=["kind", "hair_only", "hair_complete"])
        block, bad = bins_table(ev, label)
        lines += block + [f"  bins with |bias| > {BIN_BIAS_LIMIT}: {', '.join(b[3:] for b in bad) or 'none'}", ""]
        summary["hair"][column] = {"score": ev.score, "err_f": ev.err_f, "err_m": ev.err_m, "mae": ev.mae,
                                   "n_scored": ev.n_scored, "n_missing": ev.n_missing + ev.n_invalid,
                                   "bins": [{"bin": g.name[3:], "n": g.n, "err": g.err, "bias": g.bias}
                                            for g in ev.groups if g.name.startswith("gt ")],
                                   "by_kind": [vars(v) for v in ev.by[0].values],
                                   "by_hair_only": [vars(v) for v in ev.by[1].values],
                                   "by_hair_complete": [vars(v) for v in ev.by[2].values], "bins_over_limit": bad}
    lines.append(f"occparse R vs truth R: mean IoU {statistics.fmean(iou):.4f} (min {min(iou):.4f}, "
                 f"{sum(x < 0.9 for x in iou)} of {len(iou)} below 0.9)" if iou else "occparse R vs truth R: no face")
    lines.append(f"parser hair inside truth R: recall {statistics.fmean(recall):.4f} over {len(recall)} photos with "
                 f"truth hair >= 2% of R; precision {statistics.fmean(precision):.4f} over {len(precision)} photos "
                 "with parser hair >= 2% of R" if recall and precision else "parser hair: too few photos with hair")
    lines.append("")
    summary["r_iou_mean"] = statistics.fmean(iou) if iou else None
    summary["hair_recall"] = statistics.fmean(recall) if recall else None
    summary["hair_precision"] = statistics.fmean(precision) if precision else None

    # (b) kinds, on both val parts
    face_rows = []
    by_kind: dict[str, list[Measured]] = {k: [] for k in KINDS}
    for p in hair_photos + attr_photos:
        m = got[p.name]
        ks = kinds_of(p.attributes)
        for k in ks:
            by_kind[k].append(m)
        face_rows.append({"filename": p.name, "folder": p.folder, "gender": p.gender, "kinds": " ".join(ks),
                          "status": m.status, "occlusion": _f(m.final), "geometric": _f(m.geometric),
                          "regressor": _f(m.regressor), "region_forehead": _f(m.forehead, ".4f"),
                          "facial_hair_share": _f(m.facial_hair_share, ".4f"), "hair_share": _f(m.hair_share, ".4f")})
    write_csv(a.out / "faces.csv", face_rows)
    n_all = len(face_rows)
    lines.append(f"(b) kinds: {n_all} photos ({len(hair_photos)} hair-mask + {len(attr_photos)} attribute photos), "
                 f"{sum(r['status'] != 'ok' for r in face_rows)} without a face found by occparse")
    lines.append(f"  {'kind':<12}{'n':>6}{'failed':>8}{'median final':>14}{'median geo':>12}"
                 f"{'facial hair >= 2% of R':>26}{'forehead >= 0.3':>22}")
    summary["kinds"] = {}
    for k in KINDS:
        ms = by_kind[k]
        ok = [m for m in ms if m.status == "ok"]
        fh = sum(m.facial_hair_share is not None and m.facial_hair_share >= FACIAL_HAIR_FOUND for m in ms)
        fo = sum(m.forehead is not None and not math.isnan(m.forehead) and m.forehead >= FOREHEAD_HIDDEN for m in ms)
        med = statistics.median(m.final for m in ok) if ok else math.nan
        medg = statistics.median(m.geometric for m in ok) if ok else math.nan
        lines.append(f"  {k:<12}{len(ms):>6}{len(ms) - len(ok):>8}{med:>14.4f}{medg:>12.4f}{rate(fh, len(ms)):>26}"
                     f"{rate(fo, len(ms)):>22}")
        summary["kinds"][k] = {"n": len(ms), "failed": len(ms) - len(ok), "median_final": med, "median_geometric": medg,
                               "facial_hair_found": fh, "forehead_hidden": fo}
    lines += forehead_against_mask(hair_photos, truth, got, summary)
    kd = summary["kinds"]
    h = summary["hair"]

    def pct(x, n):
        return 100 * x / n if n else math.nan

    def final_on_yes(by: str) -> str:  # the final Score of the rows whose column `by` is yes
        return next((f"{v['score']:.6f} on {v['n']}" for v in h["FaceOcclusion"][by] if v["value"] == "yes"), "n/a")

    checks = [
        ("hair-mask final Score <= 0.004", h["FaceOcclusion"]["score"] <= 0.004, f"{h['FaceOcclusion']['score']:.6f}"),
        ("hair-only photos: final Score (no threshold)", None, final_on_yes("by_hair_only")),
        ("hair-only photos the audit saw nothing else on: final Score (no threshold)", None,
         final_on_yes("by_hair_complete")),
        ("hair-mask geometric Score <= 0.005", h["geometric"]["score"] <= 0.005, f"{h['geometric']['score']:.6f}"),
        ("hair-mask final: no bin with |bias| > 0.06", not h["FaceOcclusion"]["bins_over_limit"],
         ", ".join(h["FaceOcclusion"]["bins_over_limit"]) or "none"),
        ("facial hair found on >= 85% of facial-hair photos",
         pct(kd["facial_hair"]["facial_hair_found"], kd["facial_hair"]["n"]) >= 85,
         f"{pct(kd['facial_hair']['facial_hair_found'], kd['facial_hair']['n']):.1f}%"),
        ("facial hair found on <= 3% of plain photos", pct(kd["plain"]["facial_hair_found"], kd["plain"]["n"]) <= 3,
         f"{pct(kd['plain']['facial_hair_found'], kd['plain']['n']):.1f}%"),
        ("forehead >= 0.3 on >= 70% of fringe photos", pct(kd["fringe"]["forehead_hidden"], kd["fringe"]["n"]) >= 70,
         f"{pct(kd['fringe']['forehead_hidden'], kd['fringe']['n']):.1f}%"),
        ("plain median final <= 0.05", kd["plain"]["median_final"] <= 0.05, f"{kd['plain']['median_final']:.4f}"),
    ]
    lines += ["", "acceptance (issue: Real faces, real labels):"]
    lines += [f"  {'info' if ok is None else 'PASS' if ok else 'FAIL'}  {name}: {value}" for name, ok, value in checks]
    summary["acceptance"] = [{"check": n, "pass": None if ok is None else bool(ok), "value": v} for n, ok, v in checks]
    summary["seconds"] = seconds
    text = "\n".join(lines)
    print(text)
    (a.out / "report.txt").write_text(text + "\n")
    if a.json:
        a.json.write_text(dumps(summary, indent=2) + "\n")
    if a.sheet:
        rows = [r for r in truth if r["hair_only"] == "yes"] if a.sheet_hair_only else truth
        draw_sheet(a.sheet, rows, pred_rows, maps, got, {p.name: p.image_path for p in hair_photos}, a.sheet_count)
    return 0


def forehead_against_mask(hair_photos, truth, got, summary: dict) -> list[str]:
    """(b)'s forehead test on the hair-mask photos, against their drawn hair: how often the mask itself puts
    at least FOREHEAD_HIDDEN of the forehead under hair (a kind's attribute does not say it: a `Bangs`
    fringe can be light, a "plain" face can have hair over its forehead), and where occparse agrees. Only
    hair is drawn, so a hat or a headband over the forehead is an "occparse only" row that occparse reads
    right. A photo's kinds are :func:`kinds_of`'s (a photo can count in several; part (a)'s ``kind`` is one per
    photo), and a photo occparse found no face in is left out here (unlike the kinds table, where it counts
    as forehead < 0.3). Adds ``summary["forehead_vs_mask"]`` and returns the report's lines."""
    mask = {r["filename"]: float(r["forehead_hair"]) for r in truth if r["forehead_hair"]}
    lines = ["", f"  hair-mask photos, forehead >= {FOREHEAD_HIDDEN} by the drawn hair (truth mesh) and by occparse:",
             f"  {'kind':<12}{'n':>6}{'by the mask':>20}{'by occparse':>20}{'both':>7}{'occparse only':>15}"
             f"{'mask only':>11}"]
    summary["forehead_vs_mask"] = {}
    for k in KINDS:
        pairs = []
        for p in hair_photos:
            m = got[p.name]
            if k in kinds_of(p.attributes) and p.name in mask and m.forehead is not None and not math.isnan(m.forehead):
                pairs.append((mask[p.name] >= FOREHEAD_HIDDEN, m.forehead >= FOREHEAD_HIDDEN))
        n = len(pairs)
        t, o = sum(x for x, _ in pairs), sum(y for _, y in pairs)
        both = sum(x and y for x, y in pairs)
        lines.append(f"  {k:<12}{n:>6}{rate(t, n):>20}{rate(o, n):>20}{both:>7}{o - both:>15}{t - both:>11}")
        summary["forehead_vs_mask"][k] = {"n": n, "by_mask": t, "by_occparse": o, "both": both}
    return lines


def draw_sheet(path: Path, truth, pred_rows, maps, got, images: dict[str, Path], count: int) -> None:
    """The worst hair-mask rows by their share of the final error, w (p - GT)^2, one 256-px tile each."""
    import cv2

    from occparse.evaluation.metrics import challenge_weights
    from occparse.synth.sources import read_rgb

    pred = {r["filename"]: r for r in pred_rows}
    scored = []
    for r in truth:
        p = pred[r["filename"]]
        if p["FaceOcclusion"]:
            gt, fin = float(r["FaceOcclusion"]), float(p["FaceOcclusion"])
            scored.append((float(challenge_weights(np.array([gt]))[0]) * (fin - gt) ** 2, r, p))
    scored.sort(key=lambda t: -t[0])
    tiles = []
    for _, r, p in scored[:count]:
        name = r["filename"]
        rgb = read_rgb(images[name]).copy()
        region, hair = maps[name]
        m = got[name]
        tint = hair & region
        rgb[tint] = (0.55 * rgb[tint] + 0.45 * np.array([255, 0, 0])).astype(np.uint8)
        grown = cv2.dilate(region.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        for mask, colour in ((region, (0, 255, 0)), (m.region, (255, 255, 0)), ((m.labels == 2) & grown, (0, 255, 255))):
            cs, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(rgb, cs, -1, colour, 1)
        tile = np.full((rgb.shape[0] + 34, rgb.shape[1], 3), 255, np.uint8)
        tile[: rgb.shape[0]] = rgb
        cv2.putText(tile, f"{name} {r['kind']} {r['gender']}", (3, rgb.shape[0] + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(tile, f"T {float(r['FaceOcclusion']):.2f} F {float(p['FaceOcclusion']):.2f} "
                    f"G {float(p['geometric']):.2f} pH {float(p['parser_hair'] or 'nan'):.2f}",
                    (3, rgb.shape[0] + 29), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    if not tiles:
        return
    cols = 6
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    sheet = np.vstack([np.hstack(tiles[i: i + cols]) for i in range(0, len(tiles), cols)])
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {min(count, len(scored))} worst rows to {path}", file=sys.stderr)


def _version() -> str:
    import occparse

    return occparse.__version__


if __name__ == "__main__":
    sys.exit(main())
