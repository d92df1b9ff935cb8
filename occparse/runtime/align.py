"""Similarity-aligned face crops (the canonical 224-px layout the networks see) and the inverse warp
that maps a crop-sized map back to the picture."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .mesh import Face

#: Canonical positions in a 224x224 crop of (right eye centre, left eye centre, nose tip,
#: right mouth corner, left mouth corner) in picture coordinates. Measured as the mean mesh
#: positions over 400 UTKFace crops scaled to 224 (they resemble the challenge's crops, whose
#: face oval just overflows the frame), then shrunk by 0.85 about the oval's centre and made
#: symmetric, so that the whole oval (rows ~20..206) fits with a margin for hair and chin.
CANONICAL_SIZE = 224
CANONICAL_POINTS = np.array(
    [[75.45, 78.6], [148.55, 78.6], [112.0, 126.3], [80.7, 153.7], [143.3, 153.7]], dtype=np.float32
)


@dataclass(frozen=True)
class AlignedCrop:
    """A similarity-aligned square crop and the transform that maps it back."""

    image: np.ndarray  # size x size x C
    matrix: np.ndarray  # 2x3, original pixel -> crop pixel
    face: Face  # landmarks in crop coordinates

    @property
    def inverse(self) -> np.ndarray:
        return cv2.invertAffineTransform(self.matrix)

    def to_original(self, crop_map: np.ndarray, original_size: tuple[int, int], nearest: bool = True) -> np.ndarray:
        """Warp a crop-sized map (labels or probabilities) back to the original image geometry."""
        h, w = original_size
        flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
        return cv2.warpAffine(crop_map, self.inverse, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def alignment_matrix(face: Face, size: int = CANONICAL_SIZE) -> np.ndarray:
    """Similarity transform (rotation, uniform scale, shift) taking the face's key points to the canonical ones."""
    dst = CANONICAL_POINTS * (size / CANONICAL_SIZE)
    m, _ = cv2.estimateAffinePartial2D(face.key_points(), dst, method=cv2.LMEDS)
    if m is None:  # degenerate landmarks; fall back to the two eyes
        m = cv2.getAffineTransform(
            np.vstack([face.key_points()[:2], face.key_points()[2:3]]).astype(np.float32), dst[:3].astype(np.float32)
        )
    return m.astype(np.float64)


#: The interpolations :func:`align` can enlarge a small face with (``upscale``).
UPSCALE_INTERPOLATIONS = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4,
                          "nearest": cv2.INTER_NEAREST}
#: Enlargement (to the 224-px crop) from which a face counts as small for ``upscale``: 3x, an upright
#: face oval under about 53 px in the photo (it spans about 160 px of the crop). Larger faces read
#: the same either way (benchmarks/lowres_parser.py: within 0.003 IoU from 48 px up) and keep the
#: bilinear path; aligned face crops (about 1x) never reach it.
SMALL_FACE_SCALE = 3.0


def align(image: np.ndarray, face: Face, size: int = CANONICAL_SIZE, nearest: bool = False,
          matrix: np.ndarray | None = None, fill: int = 0, upscale: str = "linear") -> AlignedCrop:
    """Warp ``image`` (or a label map, with ``nearest=True``) to the canonical crop of ``face``.

    Pixels the crop needs from outside the image are mirrored for pictures (a plain border
    would be a give-away edge) and set to ``fill`` for label maps. A picture is warped bilinearly,
    except a small face (enlarged more than :data:`SMALL_FACE_SCALE` times), which is warped with
    ``upscale`` (a key of :data:`UPSCALE_INTERPOLATIONS`; KeyError otherwise): bilinear enlargement
    leaves a face of 10-30 px so smooth that the parser reads a mask on it as skin.
    """
    m = alignment_matrix(face, size) if matrix is None else matrix
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    # enlargement relative to the canonical 224-px crop, so that the rule is about the face's pixels in the photo
    if not nearest and upscale != "linear" and \
            np.sqrt(abs(np.linalg.det(m[:, :2]))) * CANONICAL_SIZE / size > SMALL_FACE_SCALE:
        flags = UPSCALE_INTERPOLATIONS[upscale]
    border = cv2.BORDER_CONSTANT if nearest else cv2.BORDER_REFLECT_101
    crop = cv2.warpAffine(image, m, (size, size), flags=flags, borderMode=border, borderValue=fill)
    return AlignedCrop(image=crop, matrix=m, face=face.transformed(m, (size, size)))
