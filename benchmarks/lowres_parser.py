"""How the parser reads small faces: benchmark crops degraded to a face width of a few pixels.

    python benchmarks/lowres_parser.py [--bench /work/data/bench] [--occluder mask] [--widths 16,24,32,48,64]
                                       [--upscale linear,cubic] [--every N] [--limit N]

A face W px wide in a photo reaches the parser as a 224-px aligned crop warped up from W px
(``align.align``, bilinear) and then shrunk to the parser's 128 px. This script simulates that on
the benchmark split (aligned 224-px synthetic crops with exact labels): each crop, aligned as the
pipeline aligns it (mesh on the crop, else the canonical layout), is shrunk with area averaging
until its face oval is W px wide, then brought back to 224 px with the chosen interpolation, and
parsed. The face region R (and the mouth region) come from the full-resolution mesh, so only the
parser's view changes with W.

Per width it prints: the mouth region's reading (mean, and the share >= 0.8 among crops whose true
mouth reading is >= 0.8), the parser's IoU for face and occluder against the exact labels (summed
over the crops, inside the aligned crop, unknown pixels ignored), and the geometric occlusion's
mean error and mean absolute error against the labels' own 1 - |V ∩ R| / |R| (R from the mesh,
unknown pixels left out). "full" is the undegraded crop.
Rows: ``--occluder`` matches the truth's ``occluder`` column (substring; "mask" takes every row with
a mask). The benchmark split is occparse's own synthetic data (``occparse synth --preset bench``).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import cv2
import numpy as np

INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4,
                  "nearest": cv2.INTER_NEAREST, "area": cv2.INTER_AREA}


def degrade(crop: np.ndarray, face_width: float, target: float, upscale: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``crop`` (S x S x 3 uint8) as it would look had its face been ``target`` px wide in the photo:
    shrunk by area averaging, then brought back to S x S with ``upscale``. No-op when target >= face_width."""
    s = crop.shape[0]
    if target >= face_width:
        return crop
    small = max(2, round(s * target / face_width))
    lo = cv2.resize(crop, (small, small), interpolation=cv2.INTER_AREA)
    return cv2.resize(lo, (s, s), interpolation=upscale)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default="/work/data/bench")
    ap.add_argument("--occluder", default="mask", help="substring of the truth's occluder column ('' = every row)")
    ap.add_argument("--widths", default="12,16,20,24,32,40,48,64", help="face widths in px")
    ap.add_argument("--upscale", default="linear", help="comma-separated: " + ",".join(INTERPOLATIONS))
    ap.add_argument("--every", type=int, default=1, help="take every n-th matching row")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--parser", help="parser ONNX (default: the shipped one)")
    a = ap.parse_args(argv)

    from dataclasses import replace

    from occparse.labels import FACE, OCCLUDER
    from occparse.runtime.align import align
    from occparse.runtime.occlusion import geometric_occlusion
    from occparse.runtime.parsing import iou_per_class
    from occparse.runtime.pipeline import Estimator, EstimatorOptions, canonical_face
    from occparse.runtime.regions import face_regions

    bench = Path(a.bench)
    if not (bench / "truth.csv").is_file():
        print(f"no truth.csv in {bench} (write one with: occparse synth --preset bench --out DIR)", file=sys.stderr)
        return 1
    with open(bench / "truth.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if a.occluder in r["occluder"]]
    rows = rows[:: max(1, a.every)]
    if a.limit:
        rows = rows[: a.limit]
    if not rows:
        print(f"no rows with occluder ~ {a.occluder!r} in {bench}", file=sys.stderr)
        return 1
    widths = [float(w) for w in a.widths.split(",") if w]
    ups = [u.strip() for u in a.upscale.split(",") if u.strip()]
    bad = [u for u in ups if u not in INTERPOLATIONS]
    if bad:
        print(f"unknown --upscale {bad}; choose from {list(INTERPOLATIONS)}", file=sys.stderr)
        return 1
    est = Estimator(EstimatorOptions(parser=a.parser, use_learned=False, detector_scores=False))
    conds = [("full", "linear", None)] + [(f"{w:g}", u, w) for u in ups for w in widths]
    acc = {c[:2]: {"mouth": [], "overall": [], "inter": 0, "union": 0} for c in conds}
    truth_mouth, truth_overall, n_canon, face_w, t0 = [], [], 0, [], time.perf_counter()
    for r in rows:
        img = cv2.cvtColor(cv2.imread(str(bench / "images" / r["filename"])), cv2.COLOR_BGR2RGB)
        lab = cv2.imread(str(bench / "labels" / (Path(r["filename"]).stem + ".png")), cv2.IMREAD_GRAYSCALE)
        faces = est.mesher.detect(img)
        if faces:
            face = faces[0]
        else:
            face, n_canon = canonical_face(img.shape[:2]), n_canon + 1
        crop = align(img, face)
        lab_c = align(lab, face, nearest=True, matrix=crop.matrix, fill=255).image
        x0, _, x1, _ = crop.face.box
        fw = x1 - x0
        face_w.append(fw)
        mouth = face_regions(crop.face, lab_c.shape).parts["mouth"] & (lab_c != 255)
        truth_mouth.append(1 - float((lab_c[mouth] == FACE).mean()) if mouth.any() else float("nan"))
        known_r = face_regions(crop.face, lab_c.shape).face & (lab_c != 255)
        truth_overall.append(1 - float((lab_c[known_r] == FACE).mean()) if known_r.any() else float("nan"))
        for name, up, w in conds:
            x = crop.image if w is None else degrade(crop.image, fw, w, INTERPOLATIONS[up])
            p = est.parser.parse([x])[0]
            g = geometric_occlusion(replace(crop, image=x), p, img.shape[:2])
            acc[(name, up)]["mouth"].append(next(q.fraction for q in g.regions if q.name == "mouth"))
            acc[(name, up)]["overall"].append(g.overall)
            i, u = iou_per_class(p.labels, lab_c)
            acc[(name, up)]["inter"] += i
            acc[(name, up)]["union"] += u
    tm = np.array(truth_mouth)
    covered = tm >= 0.8
    print(f"{len(rows)} crops (occluder ~ {a.occluder!r}) from {bench}; mesh failed on {n_canon} (canonical layout); "
          f"face width in the 224-px crop {np.mean(face_w):.0f} px; true mouth reading >= 0.8 on {covered.sum()}; "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"{'width':>6} {'upscale':>8} {'mouth mean':>10} {'mouth>=0.8':>11} {'IoU face':>9} {'IoU occl':>9} "
          f"{'occl. bias':>10} {'occl. MAE':>9}")
    to = np.array(truth_overall, dtype=float)
    for name, up, _ in conds:
        d = acc[(name, up)]
        m = np.array(d["mouth"], dtype=float)
        iou = d["inter"] / np.maximum(d["union"], 1)
        hit = (m[covered] >= 0.8).mean() if covered.any() else float("nan")
        err = np.array(d["overall"], dtype=float) - to
        print(f"{name:>6} {up:>8} {np.nanmean(m):10.3f} {hit:11.1%} {iou[FACE]:9.3f} {iou[OCCLUDER]:9.3f} "
              f"{np.nanmean(err):+10.3f} {np.nanmean(np.abs(err)):9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
