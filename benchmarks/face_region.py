"""The restored face region on CelebA-HQ: does it leave clean faces alone and restore hats?

1. Held-out plain faces (the ``held`` part of ``occparse.train.face_oval_prior.split_of``: never used
   to fit the prior or its tolerance): IoU of the restored R with the mesh's own oval, at the
   image's resolution; the share of faces where anything is restored.
2. ``Wearing_Hat`` photos: the share restored, and how far the top of R moves up (in face heights).
3. With ``--csv NAME=before.csv,after.csv`` (folder-mode outputs of ``occparse estimate`` on a set,
   before and after restoring): median final estimate and the share of faces whose forehead reads
   >= 0.3 hidden, before and after.

Usage::

    python benchmarks/face_region.py [--data ../shared/data/faces/celebahq] [--cache DIR]
        [--csv hats=hats_before.csv,hats_after.csv ...]
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import numpy as np


def summary(path: str) -> tuple[int, float, float]:
    """(rows with a number, median final, share with region_forehead >= 0.3) of an estimate CSV."""
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("occlusion")]
    fh = [float(r["region_forehead"]) for r in rows if r.get("region_forehead") not in (None, "")]
    return len(rows), statistics.median(float(r["occlusion"]) for r in rows), float(np.mean([v >= 0.3 for v in fh]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/faces/celebahq"))
    ap.add_argument("--cache", help="folder to keep the meshes in between runs")
    ap.add_argument("--csv", nargs="*", default=[], help="NAME=before.csv,after.csv")
    ap.add_argument("--utkface", type=int, default=400,
                    help="also this many UTKFace faces (ages 1-116; another population than the fit set)")
    a = ap.parse_args(argv)

    from occparse.runtime import regions
    from occparse.runtime.mesh import Face
    from occparse.train.face_oval_prior import celebahq_names, mesh_images, split_of

    root = Path(a.data)
    cache = Path(a.cache) if a.cache else None
    groups = [("plain held-out", None), ("Wearing_Hat", {"Wearing_Hat": "1"})]
    if a.utkface:
        groups.append(("UTKFace", "utkface"))
    for label, attrs in groups:
        if attrs == "utkface":
            utk = root.parent / "utkface"
            with open(utk / "labels.csv", newline="") as f:
                every = [r["filename"] for r in csv.DictReader(f)]
            pick = np.random.default_rng(0).choice(len(every), min(a.utkface, len(every)), replace=False)
            d = mesh_images([utk / "images" / every[i] for i in pick], cache / "utkface_mesh.npz" if cache else None)
        else:
            names = celebahq_names(root, attrs)
            d = mesh_images([root / "images" / n for n in names],
                            cache / f"celebahq_{'plain' if attrs is None else 'hat'}_mesh.npz" if cache else None)
        size = (200, 200) if attrs == "utkface" else (256, 256)
        if attrs is None:  # every plain face is meshed (the fitting run's cache), the held-out ones are read
            keep = np.array([split_of(str(n)) == "held" for n in d["names"]])
            d = {k: d[k][keep] for k in ("names", "landmarks", "depth")}
        ious, moved, restored, errs = [], [], [], []
        for lm, dp in zip(d["landmarks"], d["depth"], strict=True):
            face = Face(lm, size, dp)
            pred, _ = regions.predicted_oval(lm, dp)
            errs.append(np.linalg.norm(pred - face.oval, axis=1) / face.height)
            mesh = regions._fill(size, face.oval)
            r = regions.face_region(face, size)
            ious.append((mesh & r).sum() / (mesh | r).sum())
            _, down = face.axes()
            top = float((face.oval @ down).min())
            out = regions.region_outline(face)
            moved.append((top - float((out @ down).min())) / face.height)
            restored.append(regions.restored_outline(face) is not None)
        ious = np.array(ious)
        print(f"{label}: {len(ious)} faces; IoU(restored R, mesh oval) median {np.median(ious):.4f}, "
              f"5th pct {np.quantile(ious, 0.05):.4f}, >= 0.97 on {np.mean(ious >= 0.97):.1%}; restored on "
              f"{np.mean(restored):.0%}; top of R up by {np.median(moved) * 100:.1f}% of face height (median), "
              f"{np.quantile(moved, 0.9) * 100:.1f}% (90th pct)")
        errs = np.array(errs)
        print(f"  prior vs mesh oval: RMS point distance {np.sqrt((errs ** 2).mean()) * 100:.2f}% of face height "
              f"(forehead top, landmark 10: {np.sqrt((errs[:, 0] ** 2).mean()) * 100:.2f}%; chin, 152: "
              f"{np.sqrt((errs[:, 18] ** 2).mean()) * 100:.2f}%)")
    for spec in a.csv:
        name, paths = spec.split("=", 1)
        before, after = paths.split(",")
        (nb, mb, fb), (na, ma, fa) = summary(before), summary(after)
        print(f"{name}: median final {mb:.3f} -> {ma:.3f}; forehead >= 0.3 on {fb:.1%} -> {fa:.1%} ({nb}/{na} faces)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
