"""Finding faces in a picture: the mesh at several orientations and scales, the full-range detector's
tile search, the key-point fit, and the choice of the subject (:func:`order_faces`)."""

from __future__ import annotations

import math
from dataclasses import replace

import cv2
import numpy as np

from ._mediapipe import quiet_stderr as _quiet_stderr
from .detector import (
    Detection,
    FaceDetectors,
    _box_iou,
    _detections_of,
    _inside,
    _nms,
    _rot90_matrix,
    _transformed,
    _unpad,
)
from .mesh import FACE_OVAL, Face, _mesh_graph, _with_detection, fit_keypoints, head_pose


class FaceMesher(FaceDetectors):
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

    CROP_SIDE = 320
    #: Mesh-detector score from which the first pass is trusted (upright, clear faces score
    #: 0.85-0.95; upside-down ones ~0.65; masked and turned faces lower).
    SURE = 0.8
    #: Faces the mesh graph looks for in one picture (more are found by the tile search).
    GRAPH_FACES = 16
    #: The same for each turned search (step 4 below, three turns): coarser, so that a picture with
    #: no confident face costs about twice the upright search, not four times.
    TURNED_TILE_BUDGET = 48
    #: Full-range detector score a box found on a turned picture needs (step 4): a turn must be
    #: convincing. Upside-down and tilted faces there score 0.88-0.95; on the real masked photos,
    #: false sideways boxes on 8-px faces in a crowd reach 0.80.
    TURNED_SURE = 0.85
    #: Smallest detector box (px) that gets a key-point fit when the mesh fails there.
    MIN_FIT = 16

    def __init__(self, max_faces: int | None = None, refine_landmarks: bool = True,
                 min_detection_confidence: float = 0.5, search_small_faces: bool = True,
                 search_rotations: bool = True):
        super().__init__()
        with _quiet_stderr():
            self._mesh = _mesh_graph(self.GRAPH_FACES, refine_landmarks, min_detection_confidence)
            # the graph's threads log their start-up (TFLite delegate, feedback manager) only after
            # construction returns: one run on a blank picture, still silenced, gets that over with
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self.max_faces = max_faces  # kept for callers; detect() returns every face, the caller truncates
        self.search_small_faces = search_small_faces
        self.search_rotations = search_rotations

    def mesh_only(self, rgb: np.ndarray) -> list[Face]:
        """The mesh on the whole picture, nothing else (no small-face search, no retry), unsorted.
        The synthetic data's base faces were found this way; keep it so the benchmark stays fixed."""
        return self._mesh_faces(rgb)

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
        for g in (self._detector, self._short, self._pose):
            if g is not None:
                g.close()

    def __enter__(self) -> FaceMesher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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

