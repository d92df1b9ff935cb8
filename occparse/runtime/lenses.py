"""Dark lenses: sunglasses that the face parser reads as visible eyes.

A parser trained on pasted sunglasses reads many real dark lenses as visible face (on 24 CelebA-HQ
val photos with dark lenses, the shipped parser read both eyes at least half hidden on 14). The
photo's own pixels tell a dark lens from an eye: an open eye shows its white, a dark lens does not.
So, per face, on the aligned crop:

* **the test** (:func:`dark_lenses`): the 90th percentile of the luminance in a widened hull of each
  eye's landmarks is at most :data:`LENS_P90` of the median luminance of the face's sure skin (the
  parser's face pixels with probability >= 0.8 inside R, away from the eyes), for both eyes;
* **the lens** (:func:`lens_mask`): inside an ellipse around each eye (:data:`LENS_SEARCH`), the pixels
  at most :data:`LENS_CONTRAST` of that skin that form a dark patch over the eye itself, closed, with
  the highlights inside filled.

Where the test holds, the lens pixels the parser labels face become occluder (the pipeline's
``dark_lenses`` step; ``EstimatorOptions(dark_lenses=False)`` turns it off). The same test and mask
label the sunglasses kind of the CelebA-HQ attribute pool (``occparse synth --preset
celebahq-attributes``). Chosen on CelebA-HQ train photos: plain faces never come below 0.68, eyes
shadowed by a brim rarely below 0.4 (1 of 300 hat photos at 0.35), sunglasses from 0.01 to 0.55. What
it cannot see: light or mirrored lenses, one dark lens, an eye closed under dark eye shadow (read as
a lens).
"""

from __future__ import annotations

import cv2
import numpy as np

from .mesh import LEFT_EYE, RIGHT_EYE
from .regions import _fill, _hull

#: dark lenses: both eyes' 90th-percentile luminance at most this share of the sure skin's median
#: (chosen on CelebA-HQ train: plain faces never go below 0.68, shadowed eyes under a brim rarely below
#: 0.4; sunglasses reach 0.01-0.55)
LENS_P90 = 0.35
#: a lens pixel is at most this share of the sure skin's median luminance
LENS_CONTRAST = 0.5
#: the ellipse searched around each eye, in eye widths (corner to corner): half-width, half-height
LENS_SEARCH = (0.95, 0.75)
#: the parser's face probability from which a pixel is sure skin (the luminance reference)
SURE_SKIN = 0.8
#: fewer sure-skin pixels than this: no reference, no lens
MIN_SKIN_PIXELS = 50


def _eye_geometry(landmarks: np.ndarray) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """Per eye: its centre (x, y), its width (corner to corner, pixels) and its landmark points."""
    out = []
    for idx, corners in ((RIGHT_EYE, (33, 133)), (LEFT_EYE, (263, 362))):
        pts = landmarks[list(idx), :2].astype(np.float64)
        width = float(np.linalg.norm(landmarks[corners[0], :2] - landmarks[corners[1], :2]))
        out.append((pts.mean(0), max(width, 1.0), pts))
    return out


def _ellipse(shape: tuple[int, int], centre: np.ndarray, half: tuple[float, float]) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.ellipse(m, (int(round(centre[0])), int(round(centre[1]))),
                (max(1, int(round(half[0]))), max(1, int(round(half[1])))), 0, 0, 360, 1, -1)
    return m.astype(bool)


def _search_ellipse(shape: tuple[int, int], centre: np.ndarray, width: float) -> np.ndarray:
    return _ellipse(shape, centre, (LENS_SEARCH[0] * width, LENS_SEARCH[1] * width))


def search_ellipses(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """bool H x W: the ellipses :data:`LENS_SEARCH` around both eyes, where a lens is looked for."""
    out = np.zeros(shape, bool)
    for centre, width, _ in _eye_geometry(landmarks):
        out |= _search_ellipse(shape, centre, width)
    return out


def dark_lenses(luma: np.ndarray, landmarks: np.ndarray, skin: float) -> bool:
    """Whether both eyes sit behind dark lenses: the 90th percentile of ``luma`` (float H x W) in a
    widened hull of each eye's landmarks (``landmarks``: (468+, 2+) pixels of the same image) is at most
    :data:`LENS_P90` of ``skin`` (the median luminance of the photo's sure skin)."""
    if not skin > 0:
        return False
    for centre, _, pts in _eye_geometry(landmarks):
        hull = _hull(centre + (pts - centre) * np.array([1.4, 2.2]))
        m = _fill(luma.shape, hull)
        if not m.any() or float(np.percentile(luma[m], 90)) > LENS_P90 * skin:
            return False
    return True


def lens_mask(luma: np.ndarray, landmarks: np.ndarray, skin: float) -> tuple[np.ndarray, np.ndarray]:
    """(lens, searched): bool H x W masks. ``searched`` is the ellipse :data:`LENS_SEARCH` around each
    eye; ``lens`` its pixels at most :data:`LENS_CONTRAST` of ``skin`` that belong to a dark patch over
    the eye itself, closed and with the holes (highlights) filled."""
    shape = luma.shape
    lens = np.zeros(shape, bool)
    searched = np.zeros(shape, bool)
    for centre, width, pts in _eye_geometry(landmarks):
        ell = _search_ellipse(shape, centre, width)
        searched |= ell
        dark = (ell & (luma <= LENS_CONTRAST * skin)).astype(np.uint8)
        r = max(1, int(round(0.08 * width)))
        dark = cv2.morphologyEx(dark, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
        n, comp = cv2.connectedComponents(dark)
        eye = _fill(shape, _hull(pts))
        keep = [k for k in range(1, n) if (eye & (comp == k)).any()]
        patch = np.isin(comp, keep).astype(np.uint8) if keep else np.zeros(shape, np.uint8)
        contours, _ = cv2.findContours(patch, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        filled = np.zeros(shape, np.uint8)
        cv2.drawContours(filled, contours, -1, 1, -1)
        lens |= filled.astype(bool) & ell
    return lens, searched


def skin_luminance(luma: np.ndarray, face_prob: np.ndarray, region: np.ndarray, landmarks: np.ndarray) -> float | None:
    """Median of ``luma`` (float H x W) over the sure skin: ``face_prob`` (H x W) at least
    :data:`SURE_SKIN` inside ``region`` (bool H x W, R) and outside the lens search ellipses; None with
    fewer than :data:`MIN_SKIN_PIXELS` such pixels."""
    sure = (face_prob >= SURE_SKIN) & region & ~search_ellipses(luma.shape, landmarks)
    if np.count_nonzero(sure) < MIN_SKIN_PIXELS:
        return None
    return float(np.median(luma[sure]))


def luminance(rgb: np.ndarray) -> np.ndarray:
    """H x W float32 luminance (Rec. 601 weights) of an H x W x 3 uint8 RGB image."""
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def find_lenses(luma: np.ndarray, face_prob: np.ndarray, region: np.ndarray,
                landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(lens, searched) of :func:`lens_mask` for a face behind dark lenses, or None when no skin reference
    can be had (:func:`skin_luminance`), :func:`dark_lenses` does not hold or no lens pixel is found.
    ``luma``: float H x W luminance of the aligned crop; ``face_prob``: the parser's face probability on
    it; ``region``: R on it; ``landmarks``: the crop's mesh points."""
    skin = skin_luminance(luma, face_prob, region, landmarks)
    if skin is None or not dark_lenses(luma, landmarks, skin):
        return None
    lens, searched = lens_mask(luma, landmarks, skin)
    return (lens, searched) if lens.any() else None


def dark_lens_pixels(rgb: np.ndarray, face_prob: np.ndarray, region: np.ndarray,
                     landmarks: np.ndarray) -> np.ndarray | None:
    """The lens pixels (bool H x W) of :func:`find_lenses` on the aligned crop ``rgb`` (H x W x 3 uint8),
    or None."""
    found = find_lenses(luminance(rgb), face_prob, region, landmarks)
    return None if found is None else found[0]
