"""The face region R and its sub-regions, from a face's mesh landmarks.

R is the filled polygon of the mesh's 36-point face-oval loop, rasterised at the image's own
resolution: this is the definition of "the face" that every occlusion number in occparse uses.

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
from dataclasses import dataclass, field

import cv2
import numpy as np

from .mesh import (
    BETWEEN_EYES,
    CHIN_BOTTOM,
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


def face_region(face: Face, shape: tuple[int, int] | None = None) -> np.ndarray:
    """R: the filled face-oval polygon as a boolean mask of ``shape`` (default: the face's image)."""
    return _fill(shape or face.image_size, face.oval)


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
    brow_line = max(float(np.dot(lm[i], down)) for i in LEFT_BROW + RIGHT_BROW)
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
