"""The geometric occlusion feature: expected face region minus visible face.

Computed in the aligned crop (where the parser ran), with R restricted to the part of the crop
that comes from inside the original photo: R is defined at the photo's own resolution, so a
face cut by the photo's border only counts its visible part, exactly like the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .geometry import REGION_NAMES, AlignedCrop, face_regions
from .parsing import FACE, HAIR, OCCLUDER, ParseResult
from .results import OccluderShare, RegionOcclusion


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


def _frac_hidden(part: np.ndarray, visible: np.ndarray) -> float:
    n = int(part.sum())
    return 1.0 - float((visible & part).sum()) / n if n else float("nan")


def geometric_occlusion(crop: AlignedCrop, parse: ParseResult, original_size: tuple[int, int]) -> GeometricOcclusion:
    shape = parse.labels.shape
    valid = crop_footprint(crop, original_size)
    regions = face_regions(crop.face, shape)
    r = regions.face & valid
    labels = parse.labels
    visible = labels == FACE
    overall = _frac_hidden(r, visible)
    if np.isnan(overall):
        overall = 1.0
    n = max(1, int(r.sum()))
    soft = 1.0 - float(parse.probs[FACE][r].sum()) / n
    per_region = [RegionOcclusion(name, _frac_hidden(regions.parts[name] & valid, visible)) for name in REGION_NAMES]
    hidden = r & ~visible
    nh = int(hidden.sum())
    if nh:
        hair = float((hidden & (labels == HAIR)).sum()) / nh
        occ = float((hidden & (labels == OCCLUDER)).sum()) / nh
        share = OccluderShare(hair=hair, occluder=occ, background=max(0.0, 1.0 - hair - occ))
    else:
        share = OccluderShare(0.0, 0.0, 0.0)
    conf = float(parse.confidence[r].mean()) if r.any() else 0.0
    return GeometricOcclusion(overall, soft, per_region, share, conf, r)
