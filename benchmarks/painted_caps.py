"""Painted caps: does a cap over a clean face raise occparse's reading by the share of the face it hides?

Takes held-out plain CelebA-HQ faces (no hat, fringe, beard, eyeglasses or blur; the ``held`` part of
``occparse.train.face_oval_prior.split_of``, never used to fit the face-oval prior), reads each clean
face, paints a cap over its upper face (a dark crown above a brim line between the top of the face
region and the eyebrows, tilted up to 8 degrees, with a brim band a little wider than the face; its
colour, shading and noise vary), and reads it again. The truth is the share of the clean face's
region R under the paint. Reported: the increase of the reading (final and geometric) against that
share (mean absolute error, mean signed error) and how far the top of R moves between the clean and
the painted photo, in face heights (the clean face's oval along its own down axis; positive: down).

``--no-restore`` reads with the mesh's oval alone (no restored outline), for comparison.

Usage::

    python benchmarks/painted_caps.py [--data ../shared/data/faces/celebahq] [--n 120] [--no-restore]
        [--out results.csv] [--sheet caps.png]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np


def paint_cap(rgb: np.ndarray, face, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` with a cap painted over ``face``'s upper face; returns (painted image, cap mask bool)."""
    from occparse.runtime.mesh import LEFT_BROW, RIGHT_BROW

    h, w = rgb.shape[:2]
    across, down = face.axes()
    lm = face.landmarks
    along = face.oval @ down
    top = float(along.min())
    brow = float(np.mean([lm[i] @ down for i in LEFT_BROW + RIGHT_BROW]))
    brim = top + rng.uniform(0.15, 0.9) * (brow - top)  # where the brim's lower edge crosses the midline
    tilt = np.deg2rad(rng.uniform(-8, 8))
    d = np.array([np.cos(tilt) * down[0] - np.sin(tilt) * down[1], np.sin(tilt) * down[0] + np.cos(tilt) * down[1]])
    centre = face.oval.mean(0)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    pa = (xs - centre[0]) * d[0] + (ys - centre[1]) * d[1]  # along the tilted down axis
    pc = (xs - centre[0]) * across[0] + (ys - centre[1]) * across[1]
    cut = brim - float(centre @ down)
    half = 0.5 * float((face.oval @ across).max() - (face.oval @ across).min())
    # the crown: the upper half of an ellipse standing on the brim line, a little wider than the face
    cw, ch = half * rng.uniform(1.1, 1.3), half * rng.uniform(1.1, 1.5)
    crown = (pa < cut) & (((pa - cut) / ch) ** 2 + (pc / cw) ** 2 < 1)
    # the visor: a flat half-ellipse hanging from the brim line, seen from the front
    vw, vd = half * rng.uniform(0.9, 1.2), half * rng.uniform(0.08, 0.2)
    visor = (pa >= cut) & (((pa - cut) / vd) ** 2 + (pc / vw) ** 2 < 1)
    mask = crown | visor
    colour = rng.choice(np.array([[20, 20, 25], [25, 35, 80], [90, 20, 20], [40, 60, 40], [70, 70, 70], [15, 15, 15],
                                  [150, 140, 120]]))
    # fabric: a smooth random field for folds and a fine one for the weave; light from one side
    folds = cv2.resize(rng.normal(0, 1, (6, 6)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    shade = np.clip(1.0 + 0.2 * (pc / (half + 1e-6)) * rng.choice([-1, 1]) + 0.12 * folds, 0.5, 1.5)
    cap = colour[None, None, :] * shade[..., None] + rng.normal(0, 5, (h, w, 1))
    cap[visor] *= 0.75  # the visor is darker, in its own shadow
    out = rgb.astype(np.float32)
    out[mask] = cap[mask]
    return np.clip(out, 0, 255).astype(np.uint8), mask


def top_of(region: np.ndarray, down: np.ndarray) -> float:
    ys, xs = np.nonzero(region)
    return float((xs * down[0] + ys * down[1]).min())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/faces/celebahq"))
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-restore", action="store_true", help="the mesh's oval alone (before restoring)")
    ap.add_argument("--out", help="per-face rows (CSV)")
    ap.add_argument("--sheet", help="a contact sheet of the first 24 painted faces with R (PNG)")
    a = ap.parse_args(argv)

    from occparse.labels import FACE
    from occparse.runtime import regions
    from occparse.runtime.io import read_image
    from occparse.runtime.pipeline import Estimator
    from occparse.train.face_oval_prior import celebahq_names, split_of

    if a.no_restore:
        regions.restored_outline = lambda face: None  # the module's own name: face_region reads it
    root = Path(a.data)
    if not (root / "attributes.csv").exists():
        print(f"painted_caps: no CelebA-HQ at {root}", file=sys.stderr)
        return 2
    names = sorted(n for n in celebahq_names(root) if split_of(n) == "held")
    est = Estimator()
    rng = np.random.default_rng(a.seed)
    rows, tiles = [], []
    for n in names:
        if len(rows) >= a.n:
            break
        rgb = read_image(root / "images" / n).rgb
        clean = est.analyze(rgb)
        if not clean.faces or clean.faces[0].face.depth is None:
            continue
        f0 = clean.faces[0].face
        r0 = regions.face_region(f0, rgb.shape[:2])
        painted, cap = paint_cap(rgb, f0, rng)
        hidden = float((cap & r0).sum() / r0.sum())
        # the part of that the parser saw as visible face on the clean photo (a fringe under the cap was
        # already counted there, so the reading can only rise by this much)
        seen = clean.label_map() == FACE
        hidden_new = float((cap & r0 & seen).sum() / r0.sum())
        after = est.analyze(painted)
        if not after.faces:
            rows.append({"filename": n, "hidden": hidden, "status": "no_face"})
            continue
        f1 = after.faces[0].face
        r1 = regions.face_region(f1, rgb.shape[:2])
        _, down = f0.axes()
        height = f0.height
        c0, c1 = clean.result.faces[0], after.result.faces[0]
        rows.append({"filename": n, "hidden": hidden, "hidden_new": hidden_new, "status": "ok",
                     # R's share under the cap on the painted photo: the reading with a parser that labels
                     # every cap pixel an occluder, so only the face region's own error is left
                     "region_only": float((cap & r1).sum() / r1.sum()),
                     # the parser's part: the share of the cap inside R that it labels visible face
                     "cap_read_as_face": float((after.label_map()[cap & r1] == FACE).mean()) if (cap & r1).any() else 0.0,
                     "final_clean": c0.occlusion, "final_cap": c1.occlusion,
                     "geo_clean": c0.geometric, "geo_cap": c1.geometric,
                     "forehead_cap": c1.region("forehead"),
                     "top_shift": (top_of(r1, down) - top_of(r0, down)) / height,
                     "restored": regions.restored_outline(f1) is not None})
        if a.sheet and len(tiles) < 24:
            im = painted.copy()
            cv2.polylines(im, [np.round(regions.region_outline(f1) * 16).astype(np.int32)], True, (0, 255, 0), 1,
                          cv2.LINE_AA, 4)
            cv2.polylines(im, [np.round(f0.oval * 16).astype(np.int32)], True, (255, 255, 0), 1, cv2.LINE_AA, 4)
            cv2.putText(im, f"{hidden:.2f}/{c1.occlusion - c0.occlusion:+.2f}", (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                        (255, 255, 255), 1, cv2.LINE_AA)
            tiles.append(cv2.resize(im, (192, 192), interpolation=cv2.INTER_AREA))
    ok = [r for r in rows if r["status"] == "ok"]
    hid = np.array([r["hidden"] for r in ok])
    for col in ("final", "geo"):
        inc = np.array([r[f"{col}_cap"] - r[f"{col}_clean"] for r in ok])
        err = inc - hid
        print(f"{col:5s}: increase {inc.mean():.3f} vs hidden {hid.mean():.3f}; MAE {np.abs(err).mean():.3f}, "
              f"mean signed {err.mean():+.3f}")
    new = np.array([r["hidden_new"] for r in ok])
    inc = np.array([r["final_cap"] - r["final_clean"] for r in ok])
    print(f"final against the newly hidden share (the clean photo's visible face under the cap, mean {new.mean():.3f}):"
          f" MAE {np.abs(inc - new).mean():.3f}, mean signed {(inc - new).mean():+.3f}")
    reg = np.array([r["region_only"] for r in ok])
    print(f"face region alone (R's share under the cap on the painted photo vs on the clean one): MAE "
          f"{np.abs(reg - hid).mean():.3f}, mean signed {(reg - hid).mean():+.3f}")
    print(f"the parser labels {np.mean([r['cap_read_as_face'] for r in ok]):.0%} of the cap inside R visible face "
          f"(mean over faces)")
    shift = np.array([r["top_shift"] for r in ok])
    print(f"top of R moves {np.median(shift) * 100:+.1f}% of face height (median; 90th pct of |shift| "
          f"{np.quantile(np.abs(shift), 0.9) * 100:.1f}%); restored on {np.mean([r['restored'] for r in ok]):.0%}; "
          f"forehead >= 0.3 on {np.mean([r['forehead_cap'] >= 0.3 for r in ok]):.0%}; "
          f"{len(ok)} faces ({len(rows) - len(ok)} lost the face)")
    if a.out:
        with open(a.out, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(ok[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(ok)
    if a.sheet and tiles:
        while len(tiles) % 6:
            tiles.append(np.zeros_like(tiles[0]))
        sheet = np.vstack([np.hstack(tiles[i : i + 6]) for i in range(0, len(tiles), 6)])
        cv2.imwrite(a.sheet, sheet[..., ::-1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
