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

import contextlib
import os
import sys
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


def _box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C++ start-up chatter (TFLite, absl) written straight to file descriptor 2."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


class FaceMesher:
    """MediaPipe Face Mesh in static-image mode, from the models bundled in the wheel.

    One instance holds MediaPipe graphs (not thread-safe, not picklable): make one per process.
    ``detect`` returns every face found, largest first; an empty list means no face.

    The mesh's own detector only sees faces that are large in the picture. When fewer faces than
    ``max_faces`` were found, MediaPipe's full-range face detector looks for more, and the mesh
    runs again on an enlarged crop around each new box: small faces in group photos and scenes.
    A face that fills the whole picture (tight crops like the challenge's) is retried with a
    mirrored border.
    """

    #: Longer side above which the image is downscaled before the mesh runs (landmarks are
    #: returned in the original pixel coordinates either way).
    MAX_SIDE = 1280
    CROP_SIDE = 320

    def __init__(self, max_faces: int = 4, refine_landmarks: bool = True, min_detection_confidence: float = 0.5,
                 search_small_faces: bool = True):
        import mediapipe as mp  # heavy import, deferred until a mesher is needed

        with _quiet_stderr():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True,
                max_num_faces=max_faces,
                refine_landmarks=refine_landmarks,
                min_detection_confidence=min_detection_confidence,
            )
        self.max_faces = max_faces
        self.search_small_faces = search_small_faces
        self._lock = threading.Lock()
        self._detector = None
        self._warm: set[int] = set()
        self._boxes_cache: tuple[np.ndarray, list] | None = None

    def _process(self, graph, img: np.ndarray):
        with self._lock:
            if id(graph) not in self._warm:  # first run of a graph prints start-up chatter
                with _quiet_stderr():
                    res = graph.process(np.ascontiguousarray(img))
                self._warm.add(id(graph))
                return res
            return graph.process(np.ascontiguousarray(img))

    @staticmethod
    def _fit(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
        h, w = rgb.shape[:2]
        if max(h, w) <= max_side:
            return rgb, 1.0
        s = max_side / max(h, w)
        return cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA), s

    def mesh_only(self, rgb: np.ndarray) -> list[Face]:
        """The mesh on the whole picture, nothing else (no small-face search, no retry), unsorted.
        The synthetic data's base faces were found this way; keep it so the benchmark stays fixed."""
        return self._mesh_faces(rgb)

    def _mesh_faces(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        img, _ = self._fit(rgb, self.MAX_SIDE)
        res = self._process(self._mesh, img)
        faces: list[Face] = []
        for fl in res.multi_face_landmarks or []:
            arr = np.array([(p.x, p.y, p.z) for p in fl.landmark], dtype=np.float32)
            xy = arr[:, :2] * np.array([w, h], dtype=np.float32)
            faces.append(Face(landmarks=xy, image_size=(h, w), depth=arr[:, 2] * w))
        return faces

    def detector_boxes(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        """(box, score) from MediaPipe's full-range face detector, in original pixels (cached per image)."""
        # cached for the image object itself (holding it, so that a later image cannot reuse its id)
        if self._boxes_cache is not None and self._boxes_cache[0] is rgb:
            return self._boxes_cache[1]
        if self._detector is None:
            import mediapipe as mp

            with _quiet_stderr():
                self._detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.4)
        h, w = rgb.shape[:2]
        img, _ = self._fit(rgb, self.MAX_SIDE)
        res = self._process(self._detector, img)
        boxes = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            boxes.append(((b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h), float(d.score[0])))
        self._boxes_cache = (rgb, boxes)
        return boxes

    def _mesh_in_box(self, rgb: np.ndarray, box) -> Face | None:
        """Run the mesh on an enlarged, upscaled crop around a detector box; landmarks back in image pixels."""
        h, w = rgb.shape[:2]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = 2.2 * max(box[2] - box[0], box[3] - box[1])
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        x1, y1 = x0 + int(round(side)), y0 + int(round(side))
        crop = rgb[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
        if crop.size == 0:
            return None
        crop = cv2.copyMakeBorder(crop, max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w), cv2.BORDER_CONSTANT)
        s = self.CROP_SIDE / crop.shape[0]
        crop = cv2.resize(crop, (self.CROP_SIDE, self.CROP_SIDE), interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)
        found = self._mesh_faces(crop)
        if not found:
            return None
        c = np.array([self.CROP_SIDE / 2, self.CROP_SIDE / 2])
        f = min(found, key=lambda f: float(np.linalg.norm(f.oval.mean(0) - c)))
        lm = f.landmarks / s + np.array([x0, y0], np.float32)
        return Face(lm.astype(np.float32), (h, w), None if f.depth is None else f.depth / s)

    def detect(self, rgb: np.ndarray) -> list[Face]:
        faces = self._mesh_faces(rgb)
        if self.search_small_faces and len(faces) < self.max_faces:
            for box, _ in sorted(self.detector_boxes(rgb), key=lambda b: -b[1]):
                if len(faces) >= self.max_faces:
                    break
                if any(_box_iou(f.box, box) > 0.2 for f in faces):
                    continue
                f = self._mesh_in_box(rgb, box)
                if f is not None and not any(_box_iou(f.box, g.box) > 0.3 for g in faces):
                    faces.append(f)
        if not faces:
            faces = self._padded_retry(rgb)
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def _padded_retry(self, rgb: np.ndarray) -> list[Face]:
        h, w = rgb.shape[:2]
        p = max(h, w) // 4
        padded = cv2.copyMakeBorder(rgb, p, p, p, p, cv2.BORDER_REFLECT_101 if min(h, w) > p else cv2.BORDER_REPLICATE)
        out = []
        for f in self._mesh_faces(padded):
            lm = f.landmarks - np.float32(p)
            centre = lm[list(FACE_OVAL)].mean(0)
            if 0 <= centre[0] < w and 0 <= centre[1] < h:  # drop mirror images of the face
                out.append(Face(lm, (h, w), f.depth))
        return out[:1]

    def scores(self, rgb: np.ndarray, faces: list[Face]) -> list[float | None]:
        """A confidence per face: the score of the detector box that overlaps it best (None if none does)."""
        if not faces:
            return []
        boxes = self.detector_boxes(rgb)
        out: list[float | None] = []
        for f in faces:
            best, best_iou = None, 0.2
            for box, score in boxes:
                iou = _box_iou(f.box, box)
                if iou > best_iou:
                    best, best_iou = score, iou
            out.append(best)
        return out

    def close(self) -> None:
        self._mesh.close()
        if self._detector is not None:
            self._detector.close()

    def __enter__(self) -> FaceMesher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
