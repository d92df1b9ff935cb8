"""MediaPipe's two face detectors: the short-range one (orientation probe) and the full-range one
(the tile search for small faces), with the box helpers the face search shares (:class:`Detection`,
box IoU, non-maximum suppression, boxes mapped through turns, borders and mirroring), and MediaPipe
Pose for the head check behind ``doubtful_face`` (:meth:`FaceDetectors.pose_face_points`).

:class:`FaceDetectors` holds the detectors and the per-picture caches; :class:`.faces.FaceMesher`
builds the face search on it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from ._mediapipe import quiet_stderr as _quiet_stderr


def _box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


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


@dataclass(frozen=True)
class Detection:
    """A face detector box with its score and key points (right eye, left eye, nose tip, mouth
    centre, right ear, left ear: MediaPipe's order, subject's sides), in original pixels."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray  # (6, 2) float32


class FaceDetectors:
    """MediaPipe's face detectors, built on first use, and the per-picture caches of the face search.

    Not thread-safe beyond :meth:`_process` (one lock around every graph run): one per process.
    ``_mesh`` is the Face Mesh graph of a subclass (None here): its first runs are kept quiet
    until it has found a face.
    """

    #: Longer side above which the image is downscaled before the mesh runs (landmarks are
    #: returned in the original pixel coordinates either way).
    MAX_SIDE = 1280
    #: Most full-range detector tiles per picture over all scales (bounds the slow path).
    TILE_BUDGET = 128
    #: A face needs ~6.5% of the detector's input side (192 px) to be found, so finer tiles find
    #: smaller faces; tiles this small are upscaled (thumbnails of crowds).
    MIN_TILE = 96
    #: Pictures up to this side are searched whole, not tiled (aligned face crops).
    TILE_FROM = 240

    def __init__(self) -> None:
        self._mesh = None
        self._lock = threading.Lock()
        self._detector = None
        self._short = None
        self._pose = None
        # the mesh graph warns once more (a "NORM_RECT" line, straight to descriptor 2) on the
        # first picture where it finds a face
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

    def _small(self, rgb: np.ndarray) -> np.ndarray:
        """``rgb`` downscaled to ``MAX_SIDE``, cached for the image object: every search step reuses
        it (resizing a 100-Mpx photo costs seconds; rotating the small copy costs nothing)."""
        cached = self._small_cache  # one read: another thread may replace it meanwhile
        if cached is not None and cached[0] is rgb:
            return cached[1]
        small, _ = self._fit(rgb, self.MAX_SIDE)
        self._small_cache = (rgb, small)
        return small

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

    def pose_face_points(self, rgb: np.ndarray) -> np.ndarray | None:
        """MediaPipe Pose (the bundled full body landmark model, static-image mode) on ``rgb`` (H x W x 3
        uint8): the 11 face landmarks of the person it finds (nose, eyes, ears, mouth corners) as an
        (11, 2) float32 array of ``rgb``'s pixels (x, y), or None when it finds no person. Built on
        first use: only small doubtful faces need it (:func:`.face_checks.head_on_body`)."""
        if self._pose is None:
            from ._mediapipe import import_mediapipe

            mp = import_mediapipe()
            with _quiet_stderr():
                # model_complexity=1: the model in the wheel (0 and 2 would be downloaded)
                self._pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                                    min_detection_confidence=0.3)
        res = self._process(self._pose, rgb)
        if not res.pose_landmarks:
            return None
        h, w = rgb.shape[:2]
        return np.array([(p.x * w, p.y * h) for p in res.pose_landmarks.landmark[:11]], np.float32)

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


def _inside(p: np.ndarray, box) -> bool:
    return box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]


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
