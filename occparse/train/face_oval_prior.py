"""Fit the face-shape prior that restores the face region R (``occparse/assets/face_oval_prior.npz``).

The mesh fits the face it can see: under a cap brim, a fringe or a scarf it pulls the face oval in.
The prior predicts the 36 face-oval landmarks from the landmarks such occluders do not move (eyes,
eyebrows, nose, lips), in a pose-normalised frame: the anchors of each face are brought onto their
mean shape by a 3-D similarity (Umeyama), the oval is predicted there by ridge regression on the
anchors' offsets from their mean, and mapped back through the inverse similarity (orthographic, as
the mesh's own coordinates). The restoring rule lives in :mod:`occparse.runtime.regions`.

Data: plain CelebA-HQ faces (no hat, no fringe, no beard, no eyeglasses, not blurry), split by a
hash of the file name: ``fit`` (hash % 10 < 5) for the ridge model, ``calibrate`` (5) for the
mesh's own jitter (the outward distance a clean face's mesh oval lies beyond the prediction, per
point), ``held`` (6..9) for nothing here: benchmarks/face_region.py measures on it.

Usage::

    python -m occparse.train.face_oval_prior --cache /tmp/celebahq_mesh.npz --out occparse/assets/face_oval_prior.npz

numpy only (no torch); the meshes are cached (``--cache``), a run on 3,400 faces takes about a minute.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path

import numpy as np

from ..runtime.mesh import FACE_OVAL, LEFT_EYE, NOSE, OUTER_LIPS, RIGHT_EYE
from ..runtime.regions import umeyama

#: landmarks the prior reads: what a cap, a fringe or a scarf over the face's border does not move.
#: Not the eyebrows: a fringe or a low brim hides them and the mesh then places them where it guesses.
ANCHORS: tuple[int, ...] = tuple(sorted(set(LEFT_EYE + RIGHT_EYE + NOSE + OUTER_LIPS)))
PLAIN = {"Wearing_Hat": "-1", "Bangs": "-1", "No_Beard": "1", "Eyeglasses": "-1", "Blurry": "-1"}
#: outward jitter quantile taken as the tolerance (per oval point)
JITTER_QUANTILE = 0.95


def split_of(name: str) -> str:
    """``fit``, ``calibrate`` or ``held``, fixed by the file name's MD5."""
    k = int(hashlib.md5(name.encode()).hexdigest()[:8], 16) % 10
    return "fit" if k < 5 else "calibrate" if k == 5 else "held"


def celebahq_names(root: Path, attrs: dict[str, str] | None = None) -> list[str]:
    """File names in ``root/attributes.csv`` whose attributes equal ``attrs`` (default: :data:`PLAIN`)."""
    attrs = PLAIN if attrs is None else attrs
    with open(root / "attributes.csv", newline="") as f:
        return [r["filename"] for r in csv.DictReader(f) if all(r[k] == v for k, v in attrs.items())]


def mesh_images(paths: list[Path], cache: Path | None = None) -> dict[str, np.ndarray]:
    """The subject's mesh on each image: ``names`` (n,), ``landmarks`` (n, 478, 2) float32 pixels,
    ``depth`` (n, 478) float32; images without a meshed face are left out. Cached in ``cache``
    (an .npz), reused when it holds the same names."""
    names = [p.name for p in paths]
    if cache is not None and cache.exists():
        d = dict(np.load(cache))
        if set(d["asked"].tolist()) == set(names):
            return d
    from ..runtime.faces import FaceMesher
    from ..runtime.io import read_image

    lms, deps, kept = [], [], []
    with FaceMesher() as mesher:
        for i, p in enumerate(paths):
            faces = mesher.detect(read_image(p).rgb)
            if faces and faces[0].depth is not None and faces[0].source == "mesh":
                lms.append(faces[0].landmarks)
                deps.append(faces[0].depth)
                kept.append(p.name)
            if i % 500 == 0:
                print(f"mesh {i}/{len(paths)}", file=sys.stderr)
    d = {"names": np.array(kept), "landmarks": np.stack(lms).astype(np.float32),
         "depth": np.stack(deps).astype(np.float32), "asked": np.array(names)}
    if cache is not None:
        np.savez_compressed(cache, **d)
    return d


def fit(lm: np.ndarray, dep: np.ndarray, alpha: float = 0.1, iters: int = 3) -> dict[str, np.ndarray]:
    """The prior from clean faces: landmarks (n, 478, 2), depth (n, 478). Returns the arrays of the
    asset (template of the anchors, ridge weights and mean oval in template units)."""
    pts = np.concatenate([lm, dep[..., None]], -1).astype(np.float64)
    anc = pts[:, list(ANCHORS)]
    template = anc[0] - anc[0].mean(0)
    template /= np.sqrt((template ** 2).sum(1).mean())
    for _ in range(iters):  # generalised Procrustes: align all to the template, re-estimate it
        aligned = []
        for a in anc:
            s, r, t = umeyama(a, template)
            aligned.append(a @ (s * r).T + t)
        template = np.mean(aligned, 0)
        template -= template.mean(0)
        template /= np.sqrt((template ** 2).sum(1).mean())
    xs, ys = [], []
    for a, p in zip(anc, pts, strict=True):
        s, r, t = umeyama(a, template)
        xs.append((a @ (s * r).T + t - template).ravel())
        ys.append((p[list(FACE_OVAL)] @ (s * r).T + t).ravel())
    x, y = np.array(xs), np.array(ys)
    y_mean = y.mean(0)
    # ridge on the anchors' offsets (already centred on the template's 0)
    w = np.linalg.solve(x.T @ x + alpha * len(x) * np.eye(x.shape[1]) * 1e-3, x.T @ (y - y_mean))
    return {"anchors": np.array(ANCHORS, np.int32), "oval": np.array(FACE_OVAL, np.int32),
            "template": template.astype(np.float32), "weights": w.astype(np.float32),
            "oval_mean": y_mean.reshape(-1, 3).astype(np.float32)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data/faces/celebahq", help="CelebA-HQ folder (attributes.csv, images/)")
    ap.add_argument("--cache", help="an .npz to keep the meshes in between runs")
    ap.add_argument("--out", default="occparse/assets/face_oval_prior.npz")
    ap.add_argument("--alpha", type=float, default=0.1, help="ridge strength (times 1e-3 per face)")
    a = ap.parse_args(argv)
    from ..runtime import regions

    root = Path(a.data)
    names = celebahq_names(root)
    d = mesh_images([root / "images" / n for n in names], Path(a.cache) if a.cache else None)
    split = np.array([split_of(str(n)) for n in d["names"]])
    prior = fit(d["landmarks"][split == "fit"], d["depth"][split == "fit"], a.alpha)
    # the mesh's own jitter: how far beyond the prediction a clean face's mesh oval may lie inward
    cal = split == "calibrate"
    gaps = np.stack([regions.outward_gaps(lm, dp, prior) for lm, dp in zip(d["landmarks"][cal], d["depth"][cal],
                                                                            strict=True)])
    prior["tolerance"] = np.quantile(gaps, JITTER_QUANTILE, axis=0).astype(np.float32)
    prior["quantile"] = np.float32(JITTER_QUANTILE)
    np.savez_compressed(a.out, **prior)
    print(f"fit on {int((split == 'fit').sum())} faces, jitter from {int(cal.sum())}; wrote {a.out} "
          f"({Path(a.out).stat().st_size} bytes)")
    print("tolerance (face-size units) per oval point:", np.round(prior["tolerance"], 3).tolist())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
