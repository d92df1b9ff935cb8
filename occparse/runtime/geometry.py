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
import functools
import math
import os
import sys
import threading
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from .results import HeadPose

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
    score: float | None = None  # face detector score behind this face (None: unknown)
    #: the face's orientation as a quarter turn: the clockwise turn (0/90/180/270 degrees) that
    #: stands it upright, from its roll (set by FaceMesher.detect)
    rotation: int = 0
    source: str = "mesh"  # "mesh", or "keypoints": the mean mesh fitted to the detector's key points
    #: mean distance between the detector's eye, nose and mouth key points and the mesh's, in
    #: inter-ocular distances: a mesh fitted to an upside-down face disagrees with its detector
    keypoint_error: float | None = None

    @property
    def centre(self) -> np.ndarray:
        """(x, y) mean of the face-oval points, pixels."""
        return self.oval.mean(0)

    @property
    def oval(self) -> np.ndarray:
        return self.landmarks[list(FACE_OVAL)]

    @property
    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of the face oval."""
        o = self.oval
        return float(o[:, 0].min()), float(o[:, 1].min()), float(o[:, 0].max()), float(o[:, 1].max())

    @property
    def height(self) -> float:
        """Extent of the face oval along the face's own forehead-to-chin axis, pixels: the box height
        for an upright face, its width in the picture for a face lying on its side."""
        down = self.landmarks[CHIN_BOTTOM] - self.landmarks[FOREHEAD_TOP]
        down = down / (float(np.linalg.norm(down)) + 1e-9)
        along = self.oval @ down
        return float(along.max() - along.min())

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
        return replace(self, landmarks=pts.astype(np.float32), image_size=size, depth=depth)


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


def _box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C++ start-up chatter (TFLite, absl) written straight to file descriptor 2.

    OCCPARSE_VERBOSE=1 (or the CLI's --verbose) keeps it."""
    if os.environ.get("OCCPARSE_VERBOSE", "") not in ("", "0"):
        yield
        return
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


#: Face-oval points at the two sides of the face (picture left / right on a frontal face) and
#: the mouth's centre points, used by :func:`head_pose` and the key-point fit.
OVAL_RIGHT_SIDE, OVAL_LEFT_SIDE = 234, 454
UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14
#: Tilt of the chin-to-forehead-top line out of the picture plane on a frontal face: the mean over
#: 300 UTKFace chips (mostly frontal) is -8.5 degrees (MediaPipe's depth puts the chin further
#: back); added back so that a frontal face reads pitch ~0.
PITCH_OFFSET_DEG = -8.5


def head_pose(face: Face) -> HeadPose:
    """Yaw, pitch and roll of ``face`` from its landmarks (and depth, when the mesh gave one).

    The angles are those of two 3-D vectors of the mesh (cheek edge to cheek edge for yaw,
    forehead top to chin for pitch) against the picture plane, so they do not depend on roll.
    Accurate to a few degrees near frontal, coarser past 45 degrees, where MediaPipe's depth is
    itself a guess.
    """
    kp = face.key_points()
    eye = kp[1] - kp[0]
    roll = -math.degrees(math.atan2(float(eye[1]), float(eye[0])))  # image y points down
    if roll <= -180:
        roll += 360
    if face.depth is None:
        return HeadPose(None, None, roll)
    lm, z = face.landmarks, face.depth

    def tilt(a: int, b: int) -> float:
        d = float(np.linalg.norm(lm[b] - lm[a]))
        return math.degrees(math.atan2(float(z[b] - z[a]), d))

    yaw = tilt(OVAL_RIGHT_SIDE, OVAL_LEFT_SIDE)
    pitch = tilt(CHIN_BOTTOM, FOREHEAD_TOP) - PITCH_OFFSET_DEG  # chin up: the forehead top recedes
    return HeadPose(yaw, pitch, roll)


def _rot90_matrix(k: int, h: int, w: int) -> np.ndarray:
    """2x3 affine from pixel (x, y) of an h x w image to the same pixel after ``np.rot90(img, k)``."""
    k %= 4
    if k == 0:
        return np.array([[1, 0, 0], [0, 1, 0]], np.float64)
    if k == 1:  # counter-clockwise: (x, y) -> (y, w-1-x)
        return np.array([[0, 1, 0], [-1, 0, w - 1]], np.float64)
    if k == 2:
        return np.array([[-1, 0, w - 1], [0, -1, h - 1]], np.float64)
    return np.array([[0, -1, h - 1], [1, 0, 0]], np.float64)  # clockwise: (x, y) -> (h-1-y, x)


def _mesh_graph(num_faces: int, refine_landmarks: bool, min_detection_confidence: float):
    """MediaPipe Face Mesh that also hands out its own face detector's detections (score, key points),
    which the stock ``FaceMesh`` solution computes but drops: a confidence per face at no extra cost."""
    from ._mediapipe import import_mediapipe

    import_mediapipe()  # first, so that mediapipe's unused parts stay unloaded
    from mediapipe.python.solution_base import SolutionBase
    from mediapipe.python.solutions import face_mesh

    class _Mesh(SolutionBase):
        def __init__(self):
            super().__init__(
                binary_graph_path=face_mesh._BINARYPB_FILE_PATH,
                side_inputs={"num_faces": num_faces, "with_attention": refine_landmarks, "use_prev_landmarks": False},
                calculator_params={
                    "facedetectionshortrangecpu__facedetectionshortrange__facedetection__"
                    "TensorsToDetectionsCalculator.min_score_thresh": min_detection_confidence,
                    "facelandmarkcpu__ThresholdingCalculator.threshold": 0.5,
                },
                outputs=["multi_face_landmarks", "face_detections"],
            )

        def process(self, image: np.ndarray):
            return super().process(input_data={"image": image})

    return _Mesh()


@dataclass(frozen=True)
class Detection:
    """A face detector box with its score and key points (right eye, left eye, nose tip, mouth
    centre, right ear, left ear: MediaPipe's order, subject's sides), in original pixels."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray  # (6, 2) float32


class FaceMesher:
    """MediaPipe Face Mesh in static-image mode, from the models bundled in the wheel.

    One instance holds MediaPipe graphs (not thread-safe, not picklable): make one per process.
    ``detect`` returns every face found, the subject first (the face whose face-oval centre is
    nearest the image centre), then the others largest first; an empty list means no face.

    Fast path: the mesh once on the (downscaled) picture; when its own detector is confident
    (score >= ``SURE``) that is all. Otherwise the first pass is "unsure" and the search widens:

    1. the mesh on the picture turned by 180, 90 and 270 degrees (upside-down and sideways
       photos without an EXIF tag); the orientation whose best face scores highest wins;
    2. a picture-filling face (tight crops) is retried with a mirrored border;
    3. MediaPipe's full-range face detector on tiles at several scales (small faces in large
       photos, panoramas, scenes), each new box refined by the mesh on an enlarged crop turned
       upright by the detector's eye key points; when the mesh still fails (masks, profiles),
       the mean face mesh is fitted to the detector's key points (``Face.source == "keypoints"``);
    4. when no face found so far has a confident detector score, in a picture larger than an
       aligned crop: step 3 on the picture turned by 180, 90 and 270 degrees; a confident turned box
       is added, or replaces an upright face it overlaps when clearly better (a small upside-down or
       sideways face, which the whole-picture probe of step 1 cannot see);
    5. only when all that found nothing in a picture larger than an aligned crop: both detectors on
       the picture and its mirror image, with and without a border, refined likewise
       (:meth:`_rescue`: masked faces that the mesh rejects and the full-range detector misses).

    ``exhaustive=True`` (``--all-faces``) runs steps 3 and 4 even after a confident first pass.
    """

    #: Longer side above which the image is downscaled before the mesh runs (landmarks are
    #: returned in the original pixel coordinates either way).
    MAX_SIDE = 1280
    CROP_SIDE = 320
    #: Mesh-detector score from which the first pass is trusted (upright, clear faces score
    #: 0.85-0.95; upside-down ones ~0.65; masked and turned faces lower).
    SURE = 0.8
    #: Faces the mesh graph looks for in one picture (more are found by the tile search).
    GRAPH_FACES = 16
    #: Most full-range detector tiles per picture over all scales (bounds the slow path).
    TILE_BUDGET = 128
    #: A face needs ~6.5% of the detector's input side (192 px) to be found, so finer tiles find
    #: smaller faces; tiles this small are upscaled (thumbnails of crowds).
    MIN_TILE = 96
    #: The same for each turned search (step 4 below, three turns): coarser, so that a picture with
    #: no confident face costs about twice the upright search, not four times.
    TURNED_TILE_BUDGET = 48
    #: Full-range detector score a box found on a turned picture needs (step 4): a turn must be
    #: convincing. Upside-down and tilted faces there score 0.88-0.95; on the real masked photos,
    #: false sideways boxes on 8-px faces in a crowd reach 0.80.
    TURNED_SURE = 0.85
    #: Pictures up to this side are searched whole, not tiled (aligned face crops).
    TILE_FROM = 240
    #: Smallest detector box (px) that gets a key-point fit when the mesh fails there.
    MIN_FIT = 16

    def __init__(self, max_faces: int | None = None, refine_landmarks: bool = True,
                 min_detection_confidence: float = 0.5, search_small_faces: bool = True,
                 search_rotations: bool = True):
        with _quiet_stderr():
            self._mesh = _mesh_graph(self.GRAPH_FACES, refine_landmarks, min_detection_confidence)
            # the graph's threads log their start-up (TFLite delegate, feedback manager) only after
            # construction returns: one run on a blank picture, still silenced, gets that over with
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self.max_faces = max_faces  # kept for callers; detect() returns every face, the caller truncates
        self.search_small_faces = search_small_faces
        self.search_rotations = search_rotations
        self._lock = threading.Lock()
        self._detector = None
        self._short = None
        # the mesh graph ran once above, on a blank picture; its landmark stage warns once more (a
        # "NORM_RECT" line, straight to descriptor 2) on the first picture where it finds a face
        self._warm: set[int] = set()
        self._boxes_cache: tuple[np.ndarray, list] | None = None
        self._small_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._resized_cache: tuple[np.ndarray, float, np.ndarray] | None = None

    def _process(self, graph, img: np.ndarray):
        with self._lock:
            if id(graph) not in self._warm:  # first run of a graph prints start-up chatter
                with _quiet_stderr():
                    res = graph.process(np.ascontiguousarray(img))
                # the mesh graph is warm once it has found a face (its last warning comes then)
                if graph is not self._mesh or res.multi_face_landmarks:
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

    def _small(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` downscaled to ``MAX_SIDE``, cached for the image object: every search step reuses
        it (resizing a 100-Mpx photo costs seconds; rotating the small copy costs nothing)."""
        cached = self._small_cache  # one read: another thread may replace it meanwhile
        if cached is not None and cached[0] is rgb:
            return cached[1]
        small, _ = self._fit(rgb, self.MAX_SIDE)
        self._small_cache = (rgb, small)
        return small

    def _mesh_faces(self, rgb: np.ndarray, size: tuple[int, int] | None = None) -> list[Face]:
        """The mesh on ``rgb``; landmarks in pixels of an image of ``size`` (h, w) of which ``rgb``
        is a resized copy (default: ``rgb``'s own size)."""
        h, w = size or rgb.shape[:2]
        img, _ = self._fit(rgb, self.MAX_SIDE)
        res = self._process(self._mesh, img)
        dets = [(float(d.score[0]), np.array([(k.x * w, k.y * h) for k in d.location_data.relative_keypoints[:4]],
                                              np.float32)) for d in res.face_detections or []]
        faces: list[Face] = []
        for fl in res.multi_face_landmarks or []:
            arr = np.array([(p.x, p.y, p.z) for p in fl.landmark], dtype=np.float32)
            xy = arr[:, :2] * np.array([w, h], dtype=np.float32)
            f = Face(landmarks=xy, image_size=(h, w), depth=arr[:, 2] * w)
            faces.append(_with_detection(f, dets))
        return faces

    def _mesh_turned(self, small: np.ndarray, k: int, size: tuple[int, int]) -> list[Face]:
        """The mesh on ``np.rot90(small, k)``, landmarks mapped back to the unturned image of ``size``
        (h, w), of which ``small`` is a resized copy."""
        h, w = size
        back = cv2.invertAffineTransform(_rot90_matrix(k, h, w))
        rotation = (90 * k) % 360  # rot90 turns counter-clockwise; report the clockwise turn that uprights
        return [replace(f.transformed(back, (h, w)), rotation=(360 - rotation) % 360)
                for f in self._mesh_faces(np.rot90(small, k), (w, h) if k % 2 else (h, w))]

    def _short_range(self):
        if self._short is None:
            from ._mediapipe import import_mediapipe

            mp = import_mediapipe()

            with _quiet_stderr():
                self._short = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
        return self._short

    def _probe(self, rgb: np.ndarray, k: int) -> float:
        """Best short-range detector score on ``np.rot90(rgb, k)`` (-1 when it finds nothing)."""
        short = self._short_range()
        img, _ = self._fit(np.rot90(rgb, k), self.MAX_SIDE)
        res = self._process(short, img)
        return max((float(d.score[0]) for d in res.detections or []), default=-1.0)

    # -- full-range detector ------------------------------------------------------------------

    def _full_range(self):
        if self._detector is None:
            from ._mediapipe import import_mediapipe

            mp = import_mediapipe()

            with _quiet_stderr():
                self._detector = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.4)
        return self._detector

    def _detect_in(self, tile: np.ndarray, x0: float, y0: float, scale: float = 1.0) -> list[Detection]:
        """Detections in ``tile``, a piece of the picture resized by ``scale`` whose top-left corner
        is (x0, y0) in original pixels; boxes and key points come back in original pixels."""
        img, _ = self._fit(tile, 640)  # the detector's input is 192 px: more is only resize work
        tw, th = tile.shape[1] / scale, tile.shape[0] / scale  # the tile's extent in original pixels
        return _detections_of(self._process(self._full_range(), img), (th, tw), (x0, y0))

    def detections(self, rgb: np.ndarray, tiles: bool = False, turn: int = 0,
                   budget: int | None = None) -> list[Detection]:
        """Full-range detector boxes in original pixels: the whole picture, and with ``tiles`` also
        overlapping square tiles at halving sizes (coarse to fine, at most ``TILE_BUDGET`` tiles).
        Each level is resized once so that a tile is at most 384 px (the detector sees 192).
        ``turn`` k searches ``np.rot90(rgb, k)`` instead (boxes in that turned picture's pixels);
        the turn is applied to the resized copies (the full-resolution picture only when it is
        small enough to be searched at full resolution). ``budget``:
        most tiles (default ``TILE_BUDGET``)."""
        budget = self.TILE_BUDGET if budget is None else budget
        small = np.ascontiguousarray(np.rot90(self._small(rgb), turn)) if turn % 4 else self._small(rgb)
        h, w = rgb.shape[1::-1] if turn % 2 else rgb.shape[:2]  # the turned picture's size
        found = self._detect_in(small, 0, 0, small.shape[1] / w)
        levels = []
        if tiles and max(h, w) > self.TILE_FROM:
            used = 0
            side = max(h, w) // 2
            while side >= self.MIN_TILE:
                step = side // 2
                xs = list(range(0, max(1, w - side) + 1, step)) or [0]
                ys = list(range(0, max(1, h - side) + 1, step)) or [0]
                if xs[-1] + side < w:
                    xs.append(w - side)
                if ys[-1] + side < h:
                    ys.append(h - side)
                if used + len(xs) * len(ys) > budget:
                    break
                levels.append((side, xs, ys))
                used += len(xs) * len(ys)
                side //= 2
        if levels:
            # one resize of the full picture, to the finest level's scale; coarser levels come from it
            fine = min(1.0, 384 / levels[-1][0])
            base = self._resized(rgb, fine)
            if turn % 4:
                base = np.ascontiguousarray(np.rot90(base, turn))
        for side, xs, ys in levels:
            scale = min(1.0, 384 / side)
            level = base if scale == fine else cv2.resize(
                base, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
            sx_, sy_ = level.shape[1] / w, level.shape[0] / h
            n = round(side * scale)
            for y in ys:
                for x in xs:
                    x0, y0 = max(0, x), max(0, y)
                    tx, ty = round(x0 * sx_), round(y0 * sy_)
                    found += self._detect_in(level[ty : ty + n, tx : tx + n], tx / sx_, ty / sy_, sx_)
        return _nms(found)

    def _resized(self, rgb: np.ndarray, scale: float) -> np.ndarray:
        """``rgb`` resized by ``scale`` (area averaging), cached for the image object and scale: the
        three turned searches share one copy (resizing a 100-Mpx photo costs a second). The cache
        holds the array object: a caller must not change an image in place between two calls."""
        if scale == 1.0:
            return rgb
        cached = self._resized_cache  # one read: another thread may replace it meanwhile
        if cached is not None and cached[0] is rgb and cached[1] == scale:
            return cached[2]
        h, w = rgb.shape[:2]
        out = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        self._resized_cache = (rgb, scale, out)
        return out

    def detector_boxes(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        """(box, score) from MediaPipe's full-range face detector on the whole picture (cached per image)."""
        # cached for the image object itself (holding it, so that a later image cannot reuse its id)
        if self._boxes_cache is not None and self._boxes_cache[0] is rgb:
            return self._boxes_cache[1]
        boxes = [(d.box, d.score) for d in self.detections(rgb)]
        self._boxes_cache = (rgb, boxes)
        return boxes

    def face_from_detection(self, rgb: np.ndarray, det: Detection, grows: tuple[float, ...] = (2.2, 1.6)) -> Face | None:
        """The mesh on an enlarged crop around ``det``, turned so the detector's eye line is level;
        when the mesh finds nothing there, the mean mesh fitted to the key points. ``grows``: the
        crop sides tried, in detector-box sides (the key-point fit also needs the short-range
        detector to see a face on one of those crops)."""
        h, w = rgb.shape[:2]
        kp = det.keypoints
        eye = kp[1] - kp[0]
        angle = math.degrees(math.atan2(float(eye[1]), float(eye[0])))
        if np.linalg.norm(eye) < 1e-3:
            angle = 0.0
        cx, cy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
        crops = []
        for grow in grows:
            side = grow * max(det.box[2] - det.box[0], det.box[3] - det.box[1], 1.0)
            s = self.CROP_SIDE / side
            m = cv2.getRotationMatrix2D((cx, cy), angle, s)
            m[:, 2] += (self.CROP_SIDE / 2 - cx, self.CROP_SIDE / 2 - cy)
            crop = cv2.warpAffine(rgb, m, (self.CROP_SIDE, self.CROP_SIDE), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT)
            crops.append(crop)
            found = self._mesh_faces(crop)
            if found:
                c = np.array([self.CROP_SIDE / 2, self.CROP_SIDE / 2])
                f = min(found, key=lambda f: float(np.linalg.norm(f.centre - c)))
                back = cv2.invertAffineTransform(m)
                return replace(f.transformed(back, (h, w)), score=det.score, rotation=_snap(angle))
        if min(det.box[2] - det.box[0], det.box[3] - det.box[1]) < self.MIN_FIT or det.score < 0.5:
            return None  # too small or too doubtful to place a face on key points alone
        if max((self._probe(c, 0) for c in crops), default=-1.0) < 0.5:
            return None  # the short-range detector, on the upright enlarged crop, sees no face either
        return fit_keypoints(det, (h, w), rotation=_snap(angle))

    # -- the search ----------------------------------------------------------------------------

    def detect(self, rgb: np.ndarray, exhaustive: bool = False) -> list[Face]:
        """Every face found, subject first (see the class docstring); landmarks in ``rgb``'s pixels."""
        h, w = rgb.shape[:2]
        small = self._small(rgb)
        faces = self._mesh_faces(small, (h, w))
        sure = any(_sure(f) for f in faces)
        if sure and not exhaustive:
            ordered = order_faces(faces, (h, w))
            return self._upright_subject(small, ordered, (h, w)) if self.search_rotations else ordered
        meshed_turned = False  # True when the faces come from a run on the turned picture
        if not sure and self.search_rotations:
            # a quick look first: the mesh's own short-range detector (a quarter of a mesh run) on
            # the turned picture; the mesh runs there only when that looks clearly better. With a
            # face found, only 180 degrees is tried (the sideways turns cost too much on the fast path).
            # A turn must be convincing: on real masked photos a mask turned upside down can score
            # higher than the upright face, so only a confident face (score >= SURE) there counts.
            base = _strength(faces)
            for k in (2, 1, 3) if not faces else (2,):
                if self._probe(small, k) < max(base + 0.15, 0.7):
                    continue
                turned = self._mesh_turned(small, k, (h, w))
                if _strength(turned) >= max(self.SURE, base + 0.15):
                    faces, meshed_turned = turned, True
                    break
        if faces and self.search_rotations and not meshed_turned:
            faces = self._upright_subject(small, order_faces(faces, (h, w)), (h, w))
        if not faces:
            faces = self._padded_retry(small, (h, w))
        # small or missed faces in a larger scene; an unsure face that fills an (aligned) crop is left alone
        small = not faces or max(f.box[3] - f.box[1] for f in faces) < min(h, w) / 4
        if self.search_small_faces and (exhaustive or (not any(_sure(f) for f in faces) and small)):
            for det in sorted(self.detections(rgb, tiles=True), key=lambda d: -d.score):
                if any(_box_iou(f.box, det.box) > 0.2 or _inside(det.keypoints[2], f.box) for f in faces):
                    continue
                f = self.face_from_detection(rgb, det)
                if f is not None and not any(_box_iou(f.box, g.box) > 0.3 for g in faces):
                    faces.append(f)
        # not _sure(): a mesh laid upright on an upside-down crop agrees with the detector's key
        # points there (both read the chin as the forehead), so only the detector's score counts
        if (self.search_rotations and self.search_small_faces and max(h, w) > self.TILE_FROM
                and (exhaustive or _strength(faces) < self.SURE)):
            faces = self._turned_search(rgb, faces)
        if not faces and self.search_small_faces and max(h, w) > self.TILE_FROM:
            faces = self._rescue(rgb)
        return order_faces(faces, rgb.shape[:2])

    def _turned_search(self, rgb: np.ndarray, faces: list[Face]) -> list[Face]:
        """``faces`` (found upright, none confident) with the faces that the full-range detector's
        tile search finds confidently on the picture turned by 180, 90 or 270 degrees: an upside-down
        or sideways face that is small in its picture (the quarter-turn probe above uses the mesh's
        short-range detector, which only sees faces that fill much of the picture; upright, the
        full-range detector misses such a face or boxes its chin, where the mesh then lies upside
        down). A turned box counts only when confident (>= ``TURNED_SURE``) and clearly (+0.15) better than
        any upright face it overlaps, which it then replaces (the same rule as for whole-picture
        turns: a mask turned upside down can look like a face); upright faces elsewhere stay when
        trusted (:func:`_sure`), doubtful ones go once a turned face is found.
        Returns the merged list, landmarks in ``rgb``'s pixels, unordered."""
        h, w = rgb.shape[:2]
        out = list(faces)
        turned: list[Face] = []
        for k in (2, 1, 3):
            dets = self.detections(rgb, tiles=True, turn=k, budget=self.TURNED_TILE_BUDGET)
            back = cv2.invertAffineTransform(_rot90_matrix(k, h, w))
            for det in sorted((_transformed(d, back) for d in dets), key=lambda d: -d.score):
                if det.score < self.TURNED_SURE:
                    break
                there = [f for f in out if _box_iou(f.box, det.box) > 0.2 or _inside(det.keypoints[2], f.box)
                         or _inside(f.key_points()[2], det.box)]
                if any((f.score if f.score is not None else 0.0) + 0.15 > det.score for f in there):
                    continue  # a face found upright (or on an earlier turn) there is about as sure
                # the crop is turned upright by the detector's eye line, now pointing the true way
                f = self.face_from_detection(rgb, det)
                if f is not None:
                    out = [g for g in out if not any(g is t for t in there)] + [f]
                    turned.append(f)
        if turned:  # a doubtful upright face (neither confident nor agreeing with its key points) goes:
            # next to a confident turned face it is most likely a pattern, e.g. the suit's patch
            out = [f for f in out if _sure(f) or any(f is t for t in turned)]
        return out

    #: Crop sides (in detector-box sides) of the rescue's refinement: the search's two, then a
    #: wider one, where a masked face is small enough in the crop for the short-range detector
    #: and the mesh (both miss a masked face that fills most of their input).
    RESCUE_GROWS = (2.2, 1.6, 3.2)
    #: Detector score a rescue box needs for a key-point fit (the mesh failed there too): on the
    #: real masked photos, rescue fits below it sat on the back of a head or off the face.
    RESCUE_FIT_SCORE = 0.6

    def _rescue(self, rgb: np.ndarray) -> list[Face]:
        """Last resort when every step above found nothing in a picture larger than an aligned crop
        (on real masked photos: masked faces the mesh rejects and the full-range detector misses).
        Both MediaPipe detectors, short and full range, look at the picture and its mirror image,
        each also with a plain border (a face filling much of the picture); every box is then
        refined as in the tile search (:meth:`face_from_detection`, with ``RESCUE_GROWS``).
        Returns the faces found (possibly none), unordered, landmarks in ``rgb``'s pixels."""
        h, w = rgb.shape[:2]
        small = self._small(rgb)
        sh, sw = small.shape[:2]
        short = self._short_range()
        found: list[Detection] = []
        for mirror in (False, True):
            img = small[:, ::-1] if mirror else small
            for py, px in ((0, 0), (sh // 3, sw // 3)):
                padded = cv2.copyMakeBorder(img, py, py, px, px, cv2.BORDER_CONSTANT) if py else img
                for graph in (short, self._full_range()):
                    for d in _detections_of(self._process(graph, padded), padded.shape[:2]):
                        found.append(_unpad(d, px, py, sw, w / sw, h / sh, mirror))
        faces: list[Face] = []
        for det in _nms(found):
            if any(_inside(det.keypoints[2], f.box) for f in faces):
                continue
            f = self.face_from_detection(rgb, det, self.RESCUE_GROWS)
            if f is not None and f.source == "keypoints" and det.score < self.RESCUE_FIT_SCORE:
                continue
            if f is not None and not any(_box_iou(f.box, g.box) > 0.3 for g in faces):
                faces.append(f)
        return faces

    def _upright_subject(self, small: np.ndarray, ordered: list[Face], size: tuple[int, int]) -> list[Face]:
        """``ordered`` (as :func:`order_faces` returns it), with a subject lying on its side (roll near
        90 or 270 degrees) meshed again on the picture turned upright. The mesh is trained on upright
        faces: on a sideways one its landmarks drift, and the crop then differs from the upright photo's."""
        subject = ordered[0] if ordered else None
        if subject is None or subject.rotation not in (90, 270):  # the usual case: nothing to do
            return ordered
        k = ((360 - subject.rotation) % 360) // 90  # _mesh_turned(k) uprights a face needing a (360 - 90k) turn
        turned = [f for f in self._mesh_turned(small, k, size) if _box_iou(f.box, subject.box) > 0.3]
        if not turned:
            return ordered
        best = max(turned, key=lambda f: f.score if f.score is not None else 0.0)
        return order_faces([best, *ordered[1:]], size)

    def _padded_retry(self, small: np.ndarray, size: tuple[int, int]) -> list[Face]:
        """The mesh on ``small`` with a mirrored border (a face filling the picture); landmarks in
        the pixels of the image of ``size`` (h, w) that ``small`` is a resized copy of."""
        sh, sw = small.shape[:2]
        h, w = size
        p = max(sh, sw) // 4
        padded = cv2.copyMakeBorder(small, p, p, p, p, cv2.BORDER_REFLECT_101 if min(sh, sw) > p else cv2.BORDER_REPLICATE)
        sx, sy = w / sw, h / sh
        out = []
        for f in self._mesh_faces(padded):
            lm = ((f.landmarks - np.float32(p)) * np.array([sx, sy], np.float32)).astype(np.float32)
            centre = lm[list(FACE_OVAL)].mean(0)
            if 0 <= centre[0] < w and 0 <= centre[1] < h:  # drop mirror images of the face
                depth = None if f.depth is None else f.depth * sx
                out.append(replace(f, landmarks=lm, image_size=(h, w), depth=depth))
        return out[:1]

    def scores(self, rgb: np.ndarray, faces: list[Face]) -> list[float | None]:
        """A confidence per face: its own detector score, else the score of the full-range detector
        box that overlaps it best (None if none does)."""
        if not faces:
            return []
        out: list[float | None] = []
        for f in faces:
            if f.score is not None:
                out.append(f.score)
                continue
            best, best_iou = None, 0.2
            for box, score in self.detector_boxes(rgb):
                iou = _box_iou(f.box, box)
                if iou > best_iou:
                    best, best_iou = score, iou
            out.append(best)
        return out

    def close(self) -> None:
        self._mesh.close()
        for g in (self._detector, self._short):
            if g is not None:
                g.close()

    def __enter__(self) -> FaceMesher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _inside(p: np.ndarray, box) -> bool:
    return box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]


def _snap(angle: float) -> int:
    """An eye-line angle (degrees, image coordinates) as the clockwise quarter turn that uprights the face."""
    return int((-round(angle / 90.0) * 90) % 360)


def _sure(f: Face) -> bool:
    """Whether a first-pass face is trusted without searching further: a confident detector, or a
    fair one whose key points agree with the mesh. Measured on 200 UTKFace chips and 100 synthetic
    benchmark crops: 8% and 15% of upright faces are not trusted (they get a cheap 180-degree
    probe), every face turned by 180 degrees and nearly all turned by 90 are not."""
    if f.score is None:
        return False
    return f.score >= FaceMesher.SURE or (f.score >= 0.6 and f.keypoint_error is not None and f.keypoint_error < 0.15)


def _strength(faces: list[Face]) -> float:
    """How sure a pass is: its best face's detector score (-1 with no face, 0 for an unscored one)."""
    return max((f.score if f.score is not None else 0.0 for f in faces), default=-1.0)


def _keypoint_average() -> np.ndarray:
    w = np.zeros((4, 478), np.float32)
    w[0, list(RIGHT_EYE)] = 1 / len(RIGHT_EYE)
    w[1, list(LEFT_EYE)] = 1 / len(LEFT_EYE)
    w[2, NOSE_TIP] = 1
    w[3, [UPPER_LIP_INNER, LOWER_LIP_INNER]] = 0.5
    return w


_KEYPOINT_AVERAGE = _keypoint_average()


def _with_detection(face: Face, dets: list[tuple[float, np.ndarray]]) -> Face:
    """``face`` with the score and key-point error of the mesh-detector detection whose (eyes,
    nose tip, mouth centre) key points lie nearest the mesh's; unchanged when none lies within
    one inter-ocular distance."""
    if not dets:
        return face
    mine = _KEYPOINT_AVERAGE @ face.landmarks  # (4, 2): eyes, nose tip, mouth centre in one product
    iod = float(np.hypot(*(mine[1] - mine[0]))) + 1e-6
    kps = np.stack([kp for _, kp in dets])  # (n, 4, 2)
    errs = np.sqrt(((kps - mine) ** 2).sum(-1)).mean(-1) / iod
    i = int(errs.argmin())
    return face if errs[i] >= 1.0 else replace(face, score=dets[i][0], keypoint_error=float(errs[i]))


def _detections_of(res, size: tuple[float, float], offset: tuple[float, float] = (0.0, 0.0)) -> list[Detection]:
    """A MediaPipe FaceDetection result as Detections in pixels: its relative coordinates times ``size``
    (h, w: the extent, in the wanted pixels, of the image it ran on), plus ``offset`` (x0, y0, that
    image's top-left corner in those pixels)."""
    h, w = size
    x0, y0 = offset
    out = []
    for d in res.detections or []:
        b = d.location_data.relative_bounding_box
        kp = np.array([(p.x * w + x0, p.y * h + y0) for p in d.location_data.relative_keypoints], np.float32)
        out.append(Detection((b.xmin * w + x0, b.ymin * h + y0, (b.xmin + b.width) * w + x0, (b.ymin + b.height) * h + y0),
                             float(d.score[0]), kp))
    return out


#: Key-point order after mirroring a detection back: the eyes and the ears swap picture sides.
_MIRRORED_KEYPOINTS = [1, 0, 2, 3, 5, 4]


def _transformed(d: Detection, matrix: np.ndarray) -> Detection:
    """``d`` mapped through a 2x3 affine ``matrix`` (a quarter turn here): key points point by point,
    the box as the bounds of its turned corners."""
    corners = np.array([[d.box[0], d.box[1]], [d.box[2], d.box[1]], [d.box[0], d.box[3]], [d.box[2], d.box[3]]])
    c = corners @ matrix[:, :2].T + matrix[:, 2]
    kp = (d.keypoints @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
    return Detection((float(c[:, 0].min()), float(c[:, 1].min()), float(c[:, 0].max()), float(c[:, 1].max())), d.score, kp)


def _unpad(d: Detection, px: int, py: int, sw: int, sx: float, sy: float, mirror: bool) -> Detection:
    """``d``, found on a copy of a picture ``sw`` px wide (mirrored when ``mirror``) with a border of
    ``px``, ``py`` px, mapped to the pixels of the original picture (``sx``, ``sy`` times larger)."""
    kp = d.keypoints - np.float32([px, py])
    x0, y0, x1, y1 = d.box[0] - px, d.box[1] - py, d.box[2] - px, d.box[3] - py
    if mirror:
        kp = kp[_MIRRORED_KEYPOINTS]
        kp[:, 0] = sw - kp[:, 0]
        x0, x1 = sw - x1, sw - x0
    kp = (kp * np.float32([sx, sy])).astype(np.float32)
    return Detection((x0 * sx, y0 * sy, x1 * sx, y1 * sy), d.score, kp)


def _nms(dets: list[Detection], iou: float = 0.3) -> list[Detection]:
    keep: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(_box_iou(d.box, k.box) <= iou and not _inside(d.keypoints[2], k.box) for k in keep):
            keep.append(d)
    return keep


SUBJECT_MIN_SHARE = 0.5


def order_faces(faces: list[Face], size: tuple[int, int]) -> list[Face]:
    """Duplicates dropped (box IoU > 0.3: the better-scored one stays), each face's ``rotation``
    set from its roll, then the subject first, then the rest largest first. The subject is the
    face whose face-oval centre is nearest the image centre among the faces at least
    ``SUBJECT_MIN_SHARE`` as tall as the tallest (a background face or a stray detection in a
    crowd is not the subject)."""
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: -(f.score if f.score is not None else 0.0)):
        if all(_box_iou(f.box, g.box) <= 0.3 for g in kept):
            kept.append(f)
    if not kept:
        return []
    kept = [replace(f, rotation=int(round(head_pose(f).roll / 90.0) * 90) % 360) for f in kept]
    h, w = size
    centre = np.array([w / 2, h / 2], np.float32)
    tallest = max(f.height for f in kept)
    candidates = [f for f in kept if f.height >= SUBJECT_MIN_SHARE * tallest]
    subject = min(candidates, key=lambda f: float(np.linalg.norm(f.centre - centre)))
    return [subject] + sorted((f for f in kept if f is not subject), key=lambda f: f.area, reverse=True)


def _canonical_mesh() -> np.ndarray:
    from importlib import resources

    with resources.files("occparse.assets").joinpath("canonical_face_224.npy").open("rb") as f:
        return np.load(f).astype(np.float32)


def fit_keypoints(det: Detection, size: tuple[int, int], rotation: int = 0) -> Face | None:
    """The mean mesh of aligned crops (occparse/assets) placed on a detector's key points by a
    similarity transform (eyes, nose tip, mouth centre): a face the mesh could not fit (masks,
    strong occluders) still gets a face region. Depth is unknown (None); None when degenerate."""
    mean = _canonical_mesh()
    src = np.stack([mean[list(RIGHT_EYE)].mean(0), mean[list(LEFT_EYE)].mean(0), mean[NOSE_TIP],
                    mean[[UPPER_LIP_INNER, LOWER_LIP_INNER]].mean(0)]).astype(np.float32)
    m, _ = cv2.estimateAffinePartial2D(src, det.keypoints[:4].astype(np.float32), method=cv2.LMEDS)
    if m is None or not np.isfinite(m).all() or abs(np.linalg.det(m[:, :2])) < 1e-6:
        return None
    lm = (mean @ m[:, :2].T + m[:, 2]).astype(np.float32)
    return Face(lm, size, None, score=det.score, rotation=rotation, source="keypoints")
