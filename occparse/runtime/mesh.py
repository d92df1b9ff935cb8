"""MediaPipe Face Mesh landmarks: the landmark index sets occparse uses, :class:`Face` (one face's
478 landmarks in picture pixels), head pose, the mesh graph, and the mean mesh fitted to a face
detector's key points where the mesh itself fails.

Finding faces in a picture (detectors, orientation, scales, the subject) is :mod:`.faces`; the face
region R and its sub-regions are :mod:`.regions`; aligned crops are :mod:`.align`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .results import HeadPose

if TYPE_CHECKING:
    from .detector import Detection

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
    #: the face parser saw an occluder or the scene behind (a cap, a hat) over the top of the face, just above the mesh's
    #: forehead: R's upper outline then reaches the mean face shape's (occparse.runtime.regions); set
    #: after parsing, never by the mesh
    crown_covered: bool = False

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


@functools.lru_cache(maxsize=1)
def canonical_mesh() -> np.ndarray:
    """The mean mesh of aligned training crops (occparse/assets/canonical_face_224.npy): (478, 2) float32
    pixels of a 224 x 224 crop, read once (read-only: callers transform copies of it)."""
    from importlib import resources

    with resources.files("occparse.assets").joinpath("canonical_face_224.npy").open("rb") as f:
        mean = np.load(f).astype(np.float32)
    mean.flags.writeable = False
    return mean


def fit_keypoints(det: Detection, size: tuple[int, int], rotation: int = 0) -> Face | None:
    """The mean mesh of aligned crops (occparse/assets) placed on a detector's key points by a
    similarity transform (eyes, nose tip, mouth centre): a face the mesh could not fit (masks,
    strong occluders) still gets a face region. Depth is unknown (None); None when degenerate."""
    mean = canonical_mesh()
    src = np.stack([mean[list(RIGHT_EYE)].mean(0), mean[list(LEFT_EYE)].mean(0), mean[NOSE_TIP],
                    mean[[UPPER_LIP_INNER, LOWER_LIP_INNER]].mean(0)]).astype(np.float32)
    m, _ = cv2.estimateAffinePartial2D(src, det.keypoints[:4].astype(np.float32), method=cv2.LMEDS)
    if m is None or not np.isfinite(m).all() or abs(np.linalg.det(m[:, :2])) < 1e-6:
        return None
    lm = (mean @ m[:, :2].T + m[:, 2]).astype(np.float32)
    return Face(lm, size, None, score=det.score, rotation=rotation, source="keypoints")
