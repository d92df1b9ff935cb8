"""The face region R and its sub-regions, from a face's mesh landmarks.

R is the filled polygon of the mesh's 36-point face-oval loop, restored where an occluder pulled it
in (:func:`region_outline`), rasterised at the image's own resolution: this is the definition of
"the face" that every occlusion number in occparse uses, at runtime, in evaluation and in the
synthetic data's truth.

The mesh fits the face it can see: under a cap brim it puts the top of the forehead at the brim, and
the part the cap hides would fall outside R. A face-shape prior (``occparse/assets/face_oval_prior.npz``,
card: docs/face_region.md) predicts the 36 oval points from the eyes, eyebrows, nose and lips in a
pose-normalised frame; where the prediction lies outward of the mesh oval by more than the mesh's
own jitter on clean faces, the outline is moved out towards it. R is the union of the mesh polygon
and that outline, so it never shrinks; on a clean face the two agree within the jitter. Where the
face parser labels an occluder or the scene behind over the top of the face (:func:`crown_covered`, set on the face as
``crown_covered`` after parsing), the outline above the eyebrows reaches the mean face's oval.

Sub-regions (all clipped to R; they need not tile R exactly):

* ``left_eye`` / ``right_eye`` (the subject's own left and right: the subject's left eye appears
  on the right of the picture): the convex hull of the eye contour grown by 50% around its
  centre: the eye and its lids, the area that sunglasses hide (eyebrows belong to the forehead).
* ``nose``: convex hull of the mesh's nose points (bridge between the eyes to the nostrils).
* ``mouth``: convex hull of the outer lip contour grown by 25%.
* ``forehead``: the part of R above the line through the bottom of the eyebrows (perpendicular to
  the face's vertical axis, so it follows head roll), eyebrows included, minus the eye areas.
* ``chin``: the part of R below the line through the bottom of the lower lip, minus the mouth.
* ``left_cheek`` / ``right_cheek``: what is left of R between those two lines once eyes, nose and
  mouth are removed, split by the facial midline.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources

import cv2
import numpy as np

from .mesh import (
    BETWEEN_EYES,
    CHIN_BOTTOM,
    FACE_OVAL,
    LEFT_BROW,
    LEFT_EYE,
    LOWER_LIP_BOTTOM,
    NOSE,
    NOSE_TIP,
    OUTER_LIPS,
    RIGHT_BROW,
    RIGHT_EYE,
    Face,
)

REGION_NAMES: tuple[str, ...] = (
    "forehead", "left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek", "chin",
)


def _fill(shape: tuple[int, int], pts: np.ndarray) -> np.ndarray:
    """Rasterise a polygon with sub-pixel vertices (cv2 fixed point, 4 fractional bits)."""
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


PRIOR_FILE = "face_oval_prior.npz"


@functools.lru_cache(maxsize=1)
def oval_prior() -> dict[str, np.ndarray]:
    """The shipped face-shape prior (occparse/assets/face_oval_prior.npz): ``anchors`` (k,) and ``oval``
    (36,) landmark indices, ``template`` (k, 3) the anchors' mean shape (RMS radius 1: one face-size
    unit), ``weights`` (3k, 108) and ``oval_mean`` (36, 3) the ridge model in template units,
    ``tolerance`` (36,) the mesh's outward jitter per oval point, face-size units."""
    with resources.files("occparse.assets").joinpath(PRIOR_FILE).open("rb") as f, np.load(f) as d:
        # float64 once here, not per face
        return {k: d[k].astype(np.float64) if d[k].dtype.kind == "f" else d[k] for k in d.files}


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (s, R, t), s R src_i + t ~ dst_i; src, dst (n, 3) float64. Raises
    numpy's LinAlgError only on non-finite input."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.ones(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    r = u @ np.diag(d) @ vt
    var = float((a ** 2).sum(1).mean())
    s = float((sig * d).sum() / var) if var > 0 else 1.0
    return s, r, md - s * r @ ms


def predicted_oval(landmarks: np.ndarray, depth: np.ndarray, prior: dict[str, np.ndarray] | None = None,
                   mean_shape: bool = False) -> tuple[np.ndarray, float]:
    """The prior's 36 face-oval points for a face: landmarks (478, 2) pixels, depth (478,) the mesh's z
    in the same units. ``mean_shape``: the mean face's oval placed on the anchors (the ridge's offsets
    left out: nothing of this face's own shape, so nothing of what an occluder did to the mesh).
    Returns ((36, 2) float64 picture pixels, pixels per face-size unit)."""
    prior = oval_prior() if prior is None else prior
    idx = prior["anchors"]
    anc = np.column_stack([landmarks[idx], depth[idx]]).astype(np.float64)
    tpl = prior["template"].astype(np.float64, copy=False)
    s, r, t = umeyama(anc, tpl)
    y = prior["oval_mean"].astype(np.float64, copy=False)
    if not mean_shape:
        x = (anc @ (s * r).T + t - tpl).ravel()
        y = y + (x @ prior["weights"].astype(np.float64, copy=False)).reshape(-1, 3)
    back = (y - t) @ r / s  # inverse similarity; orthographic: drop z
    return back[:, :2], 1.0 / s


def _outward_normals(loop: np.ndarray) -> np.ndarray:
    """(n, 2) unit normals of a closed polygon (n, 2), pointing away from its centroid."""
    tangent = np.empty_like(loop)
    tangent[1:-1] = loop[2:] - loop[:-2]
    tangent[0], tangent[-1] = loop[1] - loop[-1], loop[0] - loop[-2]
    n = np.stack([tangent[:, 1], -tangent[:, 0]], 1)
    n /= np.linalg.norm(n, axis=1, keepdims=True) + 1e-9
    flip = ((loop - loop.mean(0)) * n).sum(1) < 0
    n[flip] *= -1
    return n


#: Positions in the 36-point oval loop of its upper part (forehead and temples, from the forehead top
#: round to the cheekbones on both sides) and of its lower part (jaw and chin).
OVAL_UPPER = tuple(range(0, 9)) + tuple(range(28, 36))
OVAL_LOWER = tuple(range(10, 27))
_UPPER, _LOWER = np.array(OVAL_UPPER), np.array(OVAL_LOWER)


def outward_gaps(landmarks: np.ndarray, depth: np.ndarray, prior: dict[str, np.ndarray] | None = None
                 ) -> np.ndarray:
    """(36,) how far the prior's oval point lies outward of the mesh's, along the mesh oval's outward
    normal, in face-size units (negative: inward), less the part common to the whole oval.

    An occluder over the face's border pulls in one part of the oval (a cap the top, a scarf the
    bottom); a gap all round is the face's own proportions (a child's face, for one), not occlusion.
    The common part is the smaller of the upper and the lower part's median gaps, when positive."""
    pred, unit = predicted_oval(landmarks, depth, prior)
    return _gaps(landmarks[list(FACE_OVAL)].astype(np.float64), pred, unit)


def _gaps(mesh: np.ndarray, pred: np.ndarray, unit: float) -> np.ndarray:
    gaps = ((pred - mesh) * _outward_normals(mesh)).sum(1) / unit
    common = max(0.0, min(float(np.median(gaps[_UPPER])), float(np.median(gaps[_LOWER]))))
    return gaps - common


def restored_outline(face: Face) -> np.ndarray | None:
    """The outline of R where the prior restores it: (36, 2) float32 picture pixels, the mesh's face oval
    moved out towards the prior's where that lies outward (:func:`outward_gaps`) by more than the
    mesh's jitter (``tolerance``); each point moves by a weight that ramps from 0 at the tolerance to
    1 at twice it, so the outline has no steps; for a ``crown_covered`` face, the crown's outline built on
    it (the last of :func:`restored_outlines`). None when nothing moves: on a clean face, and for a
    face without depth (a key-point fit, already the mean face)."""
    outlines = restored_outlines(face)
    return outlines[-1] if outlines else None


_CACHE = "_restored_outlines"


_FIT = "_prior_fit"


def _prior_fit(face: Face) -> tuple[np.ndarray, np.ndarray] | None:
    """(the prior's 36 oval points, their outward gaps from the mesh's oval in face-size units) for a face
    with depth and a finite fit, else None. Cached on the face object like its outlines: the restored
    outline and the crown's pull test both need it."""
    cached = face.__dict__.get(_FIT, _FIT)
    if cached is not _FIT:
        return cached
    fit = None
    if face.depth is not None:
        pred, unit = predicted_oval(face.landmarks, face.depth)
        if np.isfinite(pred).all():
            fit = pred, _gaps(face.oval.astype(np.float64), pred, unit)
    object.__setattr__(face, _FIT, fit)  # Face is a frozen dataclass; this is a cache, not a field
    return fit


def _restore(face: Face) -> list[np.ndarray]:
    """The prior's restored outline (when anything moves), then the crown's (when the face is crowned
    and it moves anything the prior's did not)."""
    fit = _prior_fit(face)
    if fit is None:
        return []
    pred, gaps = fit
    mesh = face.oval.astype(np.float64)
    tol = oval_prior()["tolerance"].astype(np.float64, copy=False)
    w = np.clip((gaps - tol) / tol, 0.0, 1.0)
    out = mesh + w[:, None] * (pred - mesh)
    outlines = [out.astype(np.float32)] if w.any() else []
    if face.crown_covered:
        # an occluder over the top: the upper outline reaches the mean face's where that lies further out
        # (the ridge follows the mesh's own shape, which the occluder pulled in with the forehead)
        top = crown_outline(face)
        if top is not None:
            normals = _outward_normals(mesh)
            # the points above the eyebrow line move, fully from a tenth of the face height above it (the
            # forehead and the upper temples); the weight ramps from 0 at the line, so the outline has no step
            _, down = face.axes()
            ramp = np.clip((_brow_line(face, down) - mesh @ down) / (CROWN_RAMP * face.height), 0.0, 1.0)
            further = ((top - mesh) * normals).sum(1) > ((out - mesh) * normals).sum(1)
            ramp = np.where(further, ramp, 0.0)
            if ramp.any():
                outlines.append((out + ramp[:, None] * (top - out)).astype(np.float32))
    return outlines


def _brow_line(face: Face, down: np.ndarray) -> float:
    """The line through the bottom of the eyebrows, as a coordinate along ``down`` (pixels)."""
    return max(float(np.dot(face.landmarks[i], down)) for i in LEFT_BROW + RIGHT_BROW)


def above_brow_line(face: Face, shape: tuple[int, int]) -> np.ndarray:
    """H x W bool: the pixels of an image of ``shape`` above the line through the bottom of the
    eyebrows (the forehead's side of it), in the face's own up direction."""
    _, down = face.axes()
    ys, xs = _pixel_grid(tuple(shape))
    return (xs * down[0] + ys * down[1]) < _brow_line(face, down)


def crown_outline(face: Face) -> np.ndarray | None:
    """(36, 2) float64 picture pixels: the mean face shape's oval placed on this face's eyes, nose and
    lips (:func:`predicted_oval` with ``mean_shape``), or None for a face without depth or a
    non-finite fit."""
    if face.depth is None:
        return None
    pts, _ = predicted_oval(face.landmarks, face.depth, mean_shape=True)
    return pts if np.isfinite(pts).all() else None


#: The crown test: the share of the band between R and the mean face's upper outline (above the
#: eyebrows) that the parser must label covering (occluder, or background: a cap or hat is read as the
#: scene behind as often as an occluder), and the band's least size as a share of R (smaller bands are
#: a few pixels of outline jitter). With the pull test below it holds on 42% (248/585) of CelebA-HQ
#: train `Wearing_Hat` photos (78/175 val), 0.6% (5/799) of plain faces and no fringe (hair is not covering here:
#: hair above the forehead is where hair grows).
CROWN_OCCLUDER_SHARE = 0.5
CROWN_MIN_BAND = 0.005
#: ... and the prior's outward gap at the forehead top (landmark 10) must exceed this share of the mesh's
#: jitter there (a cap resting above a forehead the mesh found whole leaves R as it is)
CROWN_MIN_PULL = 0.5
#: the crown's outline reaches the mean face's fully from this share of the face height above the eyebrow
#: line, ramping from 0 at the line
CROWN_RAMP = 0.1
_TOP = 0  # landmark 10, the forehead top, opens the oval loop


def crown_band(face: Face, labels: np.ndarray, covering: int | Sequence[int],
               valid: Callable[[], np.ndarray] | None = None) -> np.ndarray | None:
    """The band a cap or hat covers over the top of the face, or None when the crown test fails.

    ``labels``: H x W uint8, the parser's labels of the face's own image (for a crop, the crop's face);
    ``covering``: the labels that count as covering (the pipeline gives occluder and background). The test
    holds when the prior finds the forehead top pulled in (by more than :data:`CROWN_MIN_PULL` of the
    mesh's jitter there), at least :data:`CROWN_OCCLUDER_SHARE` of the band between R and the mean face's
    upper outline (above the eyebrows) is ``covering``, and the band holds at least :data:`CROWN_MIN_BAND`
    of R. ``valid`` (optional): returns the H x W bool mask of the pixels that come from inside the photo
    (``occlusion.crop_footprint``), called only when the band is needed (a mask of the photo's size is
    not cheap); only those of the band count, as the crop's border is filled with a mirror of the photo's
    edge. Returns the band as an H x W bool mask (its in-photo part); None for a face without depth."""
    band = pulled_band(face, labels.shape[:2], valid)
    if band is None:
        return None
    covers = np.isin(labels[band], np.atleast_1d(np.asarray(covering, dtype=labels.dtype)))
    return band if np.count_nonzero(covers) >= CROWN_OCCLUDER_SHARE * np.count_nonzero(band) else None


def pulled_band(face: Face, shape: tuple[int, int], valid: Callable[[], np.ndarray] | None = None
                ) -> np.ndarray | None:
    """The geometric half of :func:`crown_band`, without the labels: the H x W bool band between R and the mean
    face's upper outline, above the eyebrows, where the prior finds the forehead top pulled in, or None
    (no pull, a face without depth, a band under :data:`CROWN_MIN_BAND` of R). ``valid`` as there."""
    # the prior must see the forehead top pulled in: a cap resting above a forehead the mesh found whole
    # (as a pasted cap over a clean face) leaves R as it is; landmarks only, so it is the cheap test first
    fit = _prior_fit(face)
    if fit is None or not fit[1][_TOP] > CROWN_MIN_PULL * float(oval_prior()["tolerance"][_TOP]):
        return None
    top = crown_outline(face)
    if top is None:
        return None
    shape = tuple(shape[:2])
    r = face_region(face, shape)
    band = _fill(shape, top) & ~r & above_brow_line(face, shape)
    if valid is not None:
        band &= valid()
    if np.count_nonzero(band) < CROWN_MIN_BAND * max(1, np.count_nonzero(r)):
        return None
    return band


def crown_covered(face: Face, labels: np.ndarray, covering: int | Sequence[int],
                  valid: Callable[[], np.ndarray] | None = None) -> bool:
    """Whether the crown test of :func:`crown_band` holds (same arguments)."""
    return crown_band(face, labels, covering, valid) is not None


def region_outline(face: Face) -> np.ndarray:
    """(36, 2) float32 picture pixels: :func:`restored_outline`, or the mesh's face oval where nothing
    is restored."""
    out = restored_outline(face)
    return face.oval if out is None else out


def restored_outlines(face: Face) -> list[np.ndarray]:
    """The outlines R unites with the mesh's face oval ((36, 2) float32 picture pixels each): none on a
    clean face; the prior's (:func:`restored_outline`); for a ``crown_covered`` face also the crown's,
    whose points move along the contour as well as outward, so the prior's part is kept with it. Kept
    on the face object (a face's landmarks are not changed in place; every transform makes a new Face),
    as R, the sub-regions and the out-of-frame share of one face each ask for them."""
    cached = face.__dict__.get(_CACHE)
    if cached is None:
        cached = _restore(face)
        object.__setattr__(face, _CACHE, cached)  # Face is a frozen dataclass; this is a cache, not a field
    return cached


def face_region(face: Face, shape: tuple[int, int] | None = None) -> np.ndarray:
    """R as a boolean mask of ``shape`` (default: the face's image): the mesh's filled face-oval
    polygon united with the restored outlines' (:func:`restored_outlines`)."""
    shape = shape or face.image_size
    r = _fill(shape, face.oval)
    for out in restored_outlines(face):
        r |= _fill(shape, out)
    return r


def crowned_region(face: Face, shape: tuple[int, int] | None = None) -> np.ndarray:
    """R of ``face`` marked ``crown_covered`` (:func:`face_region` of it): the region a face is measured in
    once the crown rule holds (``occparse.runtime.label_rules.with_crown``). Its outline ramps out from the
    eyebrow line, so it holds less than R plus the whole :func:`crown_band`."""
    return face_region(replace(face, crown_covered=True), shape)


def _hull(points: np.ndarray, grow: float = 1.0) -> np.ndarray:
    c = points.mean(0)
    pts = (points - c) * grow + c
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2)


@dataclass(frozen=True)
class FaceRegions:
    """R and its named sub-regions as boolean masks of one image."""

    face: np.ndarray
    parts: dict[str, np.ndarray] = field(default_factory=dict)


def _pixel_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates (float32) of every pixel, read-only. Crop-sized grids are cached
    (every face of a crop size shares them); a whole photo's is not (it would hold memory)."""
    if shape[0] * shape[1] <= 1024 * 1024:
        return _cached_grid(shape)
    return tuple(np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32))


@functools.lru_cache(maxsize=8)
def _cached_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    ys.flags.writeable = False
    xs.flags.writeable = False
    return ys, xs


def face_regions(face: Face, shape: tuple[int, int] | None = None) -> FaceRegions:
    """R and the sub-regions of :data:`REGION_NAMES`, built as described in the module docstring."""
    shape = shape or face.image_size
    lm = face.landmarks
    r = face_region(face, shape)
    across, down = face.axes()
    left_eye = _fill(shape, _hull(lm[list(LEFT_EYE)], 1.5)) & r
    right_eye = _fill(shape, _hull(lm[list(RIGHT_EYE)], 1.5)) & r
    nose = _fill(shape, _hull(lm[list(NOSE)])) & r
    mouth = _fill(shape, _hull(lm[list(OUTER_LIPS)], 1.25)) & r

    ys, xs = _pixel_grid(tuple(shape))
    brow_line = _brow_line(face, down)
    lip_bottom = float(np.dot(lm[LOWER_LIP_BOTTOM], down))
    along = xs * down[0] + ys * down[1]
    mid = lm[[BETWEEN_EYES, NOSE_TIP, LOWER_LIP_BOTTOM, CHIN_BOTTOM]].mean(0)
    side = (xs - mid[0]) * across[0] + (ys - mid[1]) * across[1]
    eyes = left_eye | right_eye
    forehead = r & (along < brow_line) & ~eyes
    chin = r & (along > lip_bottom) & ~mouth
    cheeks = r & ~forehead & ~chin & ~eyes & ~nose & ~mouth
    parts = {
        "forehead": forehead,
        "left_eye": left_eye,
        "right_eye": right_eye,
        "nose": nose,
        "mouth": mouth,
        "left_cheek": cheeks & (side > 0),
        "right_cheek": cheeks & (side <= 0),
        "chin": chin,
    }
    return FaceRegions(face=r, parts=parts)
