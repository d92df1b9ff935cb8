"""Face geometry from MediaPipe Face Mesh: landmarks, the face region R, sub-regions, aligned crops.

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

import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

REGION_NAMES: tuple[str, ...] = (
    "forehead", "left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek", "chin",
)

# 36-point face-oval loop, in order (the loop that FACEMESH_FACE_OVAL's edges form; a test checks it).
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)
LEFT_EYE = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
RIGHT_EYE = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
LEFT_BROW = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
RIGHT_BROW = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
NOSE = (1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327, 344, 440)
OUTER_LIPS = (0, 17, 37, 39, 40, 61, 84, 91, 146, 181, 185, 267, 269, 270, 291, 314, 321, 375, 405, 409)

# Named single points used by alignment and occluder placement.
FOREHEAD_TOP = 10
CHIN_BOTTOM = 152
NOSE_TIP = 1
NOSE_BRIDGE_MID = 197  # half-way down the nose bridge
LOWER_LIP_BOTTOM = 17
MOUTH_LEFT, MOUTH_RIGHT = 291, 61  # subject's left / right mouth corner
BETWEEN_EYES = 168

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
class Face:
    """One detected face: mesh landmarks in pixel coordinates of the image they came from."""

    landmarks: np.ndarray  # (478, 2) float32, x then y, in pixels
    image_size: tuple[int, int]  # (height, width) of the image the landmarks refer to
    depth: np.ndarray | None = None  # (478,) relative z, MediaPipe's units (scaled like x)

    @property
    def oval(self) -> np.ndarray:
        return self.landmarks[list(FACE_OVAL)]

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the face oval."""
        o = self.oval
        return float(o[:, 0].min()), float(o[:, 1].min()), float(o[:, 0].max()), float(o[:, 1].max())

    @property
    def area(self) -> float:
        """Area of the face-oval polygon in pixels (shoelace), used to order faces."""
        o = self.oval.astype(np.float64)
        return float(0.5 * abs(np.dot(o[:, 0], np.roll(o[:, 1], 1)) - np.dot(o[:, 1], np.roll(o[:, 0], 1))))

    def key_points(self) -> np.ndarray:
        """(right eye, left eye, nose tip, right mouth corner, left mouth corner), picture order."""
        lm = self.landmarks
        return np.stack([
            lm[list(RIGHT_EYE)].mean(0), lm[list(LEFT_EYE)].mean(0), lm[NOSE_TIP], lm[MOUTH_RIGHT], lm[MOUTH_LEFT],
        ]).astype(np.float32)

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit vectors (across, down) of the face: across points from the subject's right to left."""
        down = self.landmarks[CHIN_BOTTOM] - self.landmarks[FOREHEAD_TOP]
        down = down / (np.linalg.norm(down) + 1e-9)
        across = np.array([-down[1], down[0]], dtype=np.float32)  # rotate +90 deg in image coords
        kp = self.key_points()
        if np.dot(kp[1] - kp[0], across) < 0:
            across = -across
        return across.astype(np.float32), down.astype(np.float32)

    def transformed(self, matrix: np.ndarray, size: tuple[int, int]) -> Face:
        """This face's landmarks mapped through a 2x3 affine ``matrix`` into an image of ``size`` (h, w)."""
        pts = self.landmarks @ matrix[:, :2].T + matrix[:, 2]
        scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
        depth = None if self.depth is None else self.depth * scale
        return Face(pts.astype(np.float32), size, depth)


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

    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
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


def align(image: np.ndarray, face: Face, size: int = CANONICAL_SIZE, nearest: bool = False,
          matrix: np.ndarray | None = None, fill: int = 0) -> AlignedCrop:
    """Warp ``image`` (or a label map, with ``nearest=True``) to the canonical crop of ``face``.

    Pixels the crop needs from outside the image are mirrored for pictures (a plain border
    would be a give-away edge) and set to ``fill`` for label maps.
    """
    m = alignment_matrix(face, size) if matrix is None else matrix
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    border = cv2.BORDER_CONSTANT if nearest else cv2.BORDER_REFLECT_101
    crop = cv2.warpAffine(image, m, (size, size), flags=flags, borderMode=border, borderValue=fill)
    return AlignedCrop(image=crop, matrix=m, face=face.transformed(m, (size, size)))


class FaceMesher:
    """MediaPipe Face Mesh in static-image mode, from the models bundled in the wheel.

    One instance holds one MediaPipe graph (not thread-safe, not picklable): make one per
    process. ``detect`` returns every face found, largest first; an empty list means no face.
    """

    #: Longer side above which the image is downscaled before the mesh runs (landmarks are
    #: returned in the original pixel coordinates either way).
    MAX_SIDE = 1280

    def __init__(self, max_faces: int = 4, refine_landmarks: bool = True, min_detection_confidence: float = 0.5):
        import mediapipe as mp  # heavy import, deferred until a mesher is needed

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True,
            max_num_faces=max_faces,
            refine_landmarks=refine_landmarks,
            min_detection_confidence=min_detection_confidence,
        )
        self._lock = threading.Lock()

    def detect(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        img = rgb
        if max(h, w) > self.MAX_SIDE:
            s = self.MAX_SIDE / max(h, w)
            img = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        with self._lock:
            res = self._mesh.process(np.ascontiguousarray(img))
        faces: list[Face] = []
        for fl in res.multi_face_landmarks or []:
            arr = np.array([(p.x, p.y, p.z) for p in fl.landmark], dtype=np.float32)
            xy = arr[:, :2] * np.array([w, h], dtype=np.float32)
            faces.append(Face(landmarks=xy, image_size=(h, w), depth=arr[:, 2] * w))
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceMesher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
