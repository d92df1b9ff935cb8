"""The geometric occlusion feature: expected face region minus visible face.

Computed in the aligned crop (where the parser ran). :func:`geometric_occlusion` measures the
part of R inside the original photo; :func:`out_of_frame` measures the part the photo's border
cuts off, which counts as hidden: the pipeline reports oof + (1 - oof) * (occlusion inside).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..labels import FACE, FACIAL_HAIR, HAIR, OCCLUDER
from .align import AlignedCrop
from .parsing import ParseResult
from .regions import REGION_NAMES, face_regions, restored_outlines
from .results import OccluderShare, RegionOcclusion

#: what facial hair counts as: "occluding" (the data definition, default) or "visible" (face)
FACIAL_HAIR_CHOICES = ("occluding", "visible")


@dataclass(frozen=True)
class GeometricOcclusion:
    overall: float  # 1 - |V ∩ R| / |R| from the parser's labels
    soft: float  # 1 - mean P(face) over R: the same, from probabilities
    regions: list[RegionOcclusion]
    occluded_by: OccluderShare
    parser_confidence: float
    region_mask: np.ndarray  # R in crop geometry (boolean)


def crop_footprint(crop: AlignedCrop, original_size: tuple[int, int]) -> np.ndarray:
    """Which crop pixels come from inside the original image."""
    h, w = original_size
    size = crop.image.shape[1], crop.image.shape[0]
    ones = np.ones((h, w), np.uint8)
    return cv2.warpAffine(ones, crop.matrix, size, flags=cv2.INTER_NEAREST, borderValue=0).astype(bool)


@dataclass(frozen=True)
class OutOfFrame:
    """How much of R (and of each sub-region) lies outside the original image."""

    overall: float  # |R outside the image| / |R|, in [0, 1]
    regions: dict[str, float]  # the same per sub-region (0.0 for an empty region)


def out_of_frame(crop: AlignedCrop, original_size: tuple[int, int], shape: tuple[int, int] | None = None) -> OutOfFrame:
    """The part of the face region the image border cuts off, measured in the aligned crop, where
    the whole of R (the face-oval polygon and its restored outline) is rasterised (also past the
    frame; the crop's own margin holds it)."""
    h, w = original_size
    outline = np.vstack([crop.face.oval, *restored_outlines(crop.face)])
    oval = outline @ crop.inverse[:, :2].T + crop.inverse[:, 2]  # R's outline back in the photo's pixels
    if oval[:, 0].min() >= 0 and oval[:, 1].min() >= 0 and oval[:, 0].max() <= w - 1 and oval[:, 1].max() <= h - 1:
        # the usual case, and the fast path: R (and every sub-region, all inside R) lies in the frame
        return OutOfFrame(0.0, dict.fromkeys(REGION_NAMES, 0.0))
    shape = shape or crop.image.shape[:2]
    valid = crop_footprint(crop, original_size)
    regions = face_regions(crop.face, shape)

    def frac(m: np.ndarray) -> float:
        n = np.count_nonzero(m)
        return float(np.count_nonzero(m & ~valid)) / n if n else 0.0

    return OutOfFrame(frac(regions.face), {name: frac(regions.parts[name]) for name in REGION_NAMES})


def with_out_of_frame(inside: float, oof: float) -> float:
    """Occlusion of the whole face region when the part outside the frame counts as hidden:
    oof + (1 - oof) * (occlusion of the part inside). NaN inside (nothing in frame) reads 1."""
    if oof >= 1.0 or inside != inside:
        return 1.0
    return float(oof + (1.0 - oof) * inside)


def region_with_out_of_frame(inside: float, oof: float) -> float:
    """A sub-region's occlusion with its part outside the frame counted as hidden (as
    :func:`with_out_of_frame`), except for a region with no pixels in R at all (``inside`` NaN and
    nothing of it outside the frame): the head's pose turned it out of view (a face turned ~50
    degrees: the oval's far side runs across the nose, and the nose, the far eye and the far cheek lie
    outside R). That region has no value (NaN), not 1: nothing hides it but the face itself."""
    if inside != inside and oof <= 0.0:
        return float("nan")
    return with_out_of_frame(inside, oof)


def _frac_hidden(part: np.ndarray, visible: np.ndarray) -> float:
    # count_nonzero: the same counts as bool .sum(), several times faster (this runs 9 times a face)
    n = np.count_nonzero(part)
    return 1.0 - float(np.count_nonzero(visible & part)) / n if n else float("nan")


def geometric_occlusion(crop: AlignedCrop, parse: ParseResult, original_size: tuple[int, int],
                        facial_hair: str = "occluding") -> GeometricOcclusion:
    """R minus the visible face, overall and per sub-region, from one parse of the aligned crop.

    ``facial_hair``: "occluding" (default, as the data definition) or "visible" (beards count as face)."""
    if facial_hair not in FACIAL_HAIR_CHOICES:
        raise ValueError(f"facial_hair must be one of {FACIAL_HAIR_CHOICES}, not {facial_hair!r}")
    shape = parse.labels.shape
    valid = crop_footprint(crop, original_size)
    regions = face_regions(crop.face, shape)
    r = regions.face & valid
    labels = parse.labels
    beard_is_face = facial_hair == "visible"
    visible = (labels == FACE) | (labels == FACIAL_HAIR) if beard_is_face else labels == FACE
    overall = _frac_hidden(r, visible)
    if np.isnan(overall):
        overall = 1.0
    n = max(1, np.count_nonzero(r))
    # only where the parser labels facial hair does its probability count as face: a faint beard probability
    # spread over a clean face must not move the estimate of a face without facial hair
    p_visible = (parse.probs[FACE] + np.where(labels == FACIAL_HAIR, parse.probs[FACIAL_HAIR], 0.0) if beard_is_face
                 else parse.probs[FACE])
    soft = 1.0 - float(p_visible[r].sum()) / n
    per_region = [RegionOcclusion(name, _frac_hidden(regions.parts[name] & valid, visible)) for name in REGION_NAMES]
    hidden = r & ~visible
    nh = np.count_nonzero(hidden)
    if nh:
        hair = float(np.count_nonzero(hidden & (labels == HAIR))) / nh
        occ = float(np.count_nonzero(hidden & (labels == OCCLUDER))) / nh
        beard = float(np.count_nonzero(hidden & (labels == FACIAL_HAIR))) / nh
        share = OccluderShare(hair=hair, occluder=occ, background=max(0.0, 1.0 - hair - occ - beard), facial_hair=beard)
    else:
        share = OccluderShare(0.0, 0.0, 0.0, 0.0)
    conf = float(parse.confidence[r].mean()) if r.any() else 0.0
    return GeometricOcclusion(overall, soft, per_region, share, conf, r)
