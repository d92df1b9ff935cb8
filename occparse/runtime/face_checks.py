"""Face checks: is a found face big enough to read, and does it look like a face at all?

Two warnings a user can act on, each a flag on :class:`~occparse.runtime.results.FaceResult` and a
folder-mode column, and drawn in the picture:

* ``small_face``: the face oval is under :data:`SMALL_FACE_PX` pixels tall. Below that the parser
  sees a blur of a few dozen pixels: masks and sunglasses are still read, but the share of the face
  region they hide is far less sure, and texture can pass for a face.
* ``doubtful_face``: the face finding and the parse agree that this may not be a face, and no
  head on a body is seen there. Looked at on the real masked-face photos
  (``benchmarks/masked_faces.py``), the things wrongly read as faces there (a car wheel, a coat, a
  sleeve, food on a shelf, a statue's coat, the back of a painted head) are small (16-43 px), and
  each is either a face the face mesh itself rejected (its landmark model found no face in the
  detector's box, so occparse fitted the mean face to the detector's six key points:
  ``source == "keypoints"``) or one where both the face detector and the parser are unsure
  (detector score and parser confidence under :data:`DOUBTFUL_CONFIDENCE`). Those two cues, for
  faces under :data:`DOUBTFUL_MAX_PX`, make a face a candidate (:func:`may_be_doubtful`); above
  that size no false face was seen and the mesh's own rejection happens on real profile and heavily
  masked faces too.

  The same two cues also catch small real faces, masked ones most: the mesh rejects a masked face
  of 20-40 px as readily as a coat. A candidate is therefore looked at once more, at a coarser
  scale: MediaPipe Pose (the body landmark model) runs on crops of the photo around the face box
  that take in the shoulders (:data:`HEAD_CROPS`, each resized to :data:`HEAD_CROP_PX`), and a
  crop agrees that this is a head on a body when at least :data:`HEAD_IN_BOX` of the model's 11
  face landmarks (nose, eyes, ears, mouth corners) fall inside the face box. A majority of agreeing
  crops (:func:`head_on_body`) clears the flag. A wheel, a shelf or a coat has no head there (the
  pose model finds no person, or puts the head elsewhere). Measured with the default settings on
  the 150 real masked-face photos: all six false faces listed in
  ``benchmarks/masked_faces_not_masked.txt`` stay flagged (the one most like a head, the back of a
  painted head, is agreed on by 2 of the 9 crops); of the real faces of 20-40 px, the two cues
  alone flag 5 of 25 subjects (8 of 46 faces), and with the pose check 0 of 25 (2 of 46: a face
  printed on a T-shirt and a masked face with a hand raised to it). On faces the rule was not
  chosen on, LFW and CelebA-HQ validation faces (plain and synthetically masked) shrunk to 20-40 px
  and pasted into those scenes, the pose check agrees on 91 of 107. Its blind spot: with the real
  heads out of view, a face-like thing on or beside a person can pass for the head (in the masked
  photos with their faces painted out, it agreed on a 12 px hand, while 4 other false faces there
  stayed flagged).

A candidate beside a face at least 1.5 times as tall (:func:`beside_a_larger_face`: its centre within
one of that face's heights of the face's box, to a side, at the height of that face) gets no second look: the pose
model's head there is the larger face's own. A nurse's ear found as a 22 px face beside her masked
50 px face was agreed on by 6 of 9 crops before.

The check does not separate every false face from every small real one; a flag says "look at
this one", not "this is not a face" (``docs/outputs.md`` gives the measured rates).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

#: Face-oval height (pixels of the photo) under which a face gets the ``small_face`` warning.
SMALL_FACE_PX = 40.0
#: Largest face-oval height (pixels) that can get ``doubtful_face``.
DOUBTFUL_MAX_PX = 48.0
#: Detector score and parser confidence under which both count as unsure.
DOUBTFUL_CONFIDENCE = 0.70
#: Crops the pose model sees around a candidate face: (crop side, shift of the crop's centre below
#: the face box's centre), both in face-box sides, so that the head sits in the upper part and the
#: shoulders below it. Several placements, because one crop's verdict on a small blurred face
#: depends on where the pixels fall.
HEAD_CROPS: tuple[tuple[float, float], ...] = tuple((k, d) for k in (4.0, 5.0, 6.0) for d in (1.0, 1.25, 1.5))
#: Side of each crop in pixels (the pose model's person detector sees 224).
HEAD_CROP_PX = 256
#: Share of the pose model's 11 face landmarks that must fall inside the face box for one crop to agree.
HEAD_IN_BOX = 0.6

#: A pose model run on an RGB uint8 crop: its 11 face landmarks as an (11, 2) float array of crop
#: pixels (x, y), or None when it finds no person.
FindHead = Callable[[np.ndarray], "np.ndarray | None"]


def is_small_face(face_size: float) -> bool:
    """Whether a face whose oval is ``face_size`` pixels tall is too small to read reliably."""
    return face_size < SMALL_FACE_PX


def may_be_doubtful(face_size: float, source: str, landmark_confidence: float | None) -> bool:
    """Whether a face can get ``doubtful_face`` before its parse is known: under
    :data:`DOUBTFUL_MAX_PX`, not the canonical layout, and either a key-point fit or a detector
    score under :data:`DOUBTFUL_CONFIDENCE` (arguments as for :func:`is_doubtful_face`). Only these
    faces are given to :func:`head_on_body`."""
    if source == "canonical" or face_size >= DOUBTFUL_MAX_PX:
        return False
    return source == "keypoints" or (landmark_confidence is not None and landmark_confidence < DOUBTFUL_CONFIDENCE)


def is_doubtful_face(face_size: float, source: str, landmark_confidence: float | None,
                     parser_confidence: float, head_seen: bool = False) -> bool:
    """Whether a found face may not be a face (see the module docstring for the rule and its evidence).

    ``face_size``: face-oval height in pixels; ``source``: "mesh", "keypoints" or "canonical";
    ``landmark_confidence``: the face detector's score (0..1) or None; ``parser_confidence``: the
    parser's mean top-class probability inside the face region (0..1); ``head_seen``: the pose
    model puts a head there (:func:`head_on_body`). The canonical layout assumed for aligned crops
    is never doubtful: the user said the picture is a face."""
    if head_seen or not may_be_doubtful(face_size, source, landmark_confidence):
        return False
    return source == "keypoints" or parser_confidence < DOUBTFUL_CONFIDENCE


#: A candidate whose box centre lies within this many of a larger face's heights of that face's box, to
#: either side and between its top and bottom, is beside that face's head: an ear, a hand at the
#: cheek. The pose model's head there is the larger face's own, so it cannot clear the candidate.
#: (Above is left out: in a crowd the faces of the row behind sit there.)
BESIDE_REACH = 1.0
#: ... where the other face is at least this many times as tall.
BESIDE_LARGER = 1.5


def beside_a_larger_face(box: tuple[float, float, float, float],
                         others: list[tuple[float, float, float, float]]) -> bool:
    """Whether the face ``box`` (x0, y0, x1, y1, pixels) sits beside the head of a face at least
    :data:`BESIDE_LARGER` times as tall among ``others`` (their boxes): its centre within
    :data:`BESIDE_REACH` of that face's height of the face's box to either side, and between the box's
    top and bottom. Seen on a nurse's ear found as a 22 px face next to her 50 px masked face, which
    the pose check agreed on: its head is hers. On the 149 real masked photos, every face searched,
    it holds for no candidate (a version that also looked above caught 3 real faces in the row
    behind a crowd's front row)."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    h = box[3] - box[1]
    for x0, y0, x1, y1 in others:
        H = y1 - y0
        if BESIDE_LARGER * h > H:
            continue
        r = BESIDE_REACH * H
        if x0 - r <= cx <= x1 + r and y0 <= cy <= y1:
            return True
    return False


def head_crop(rgb: np.ndarray, box: tuple[float, float, float, float], side: float, shift: float,
              px: int = HEAD_CROP_PX) -> tuple[np.ndarray, np.ndarray]:
    """A ``px`` x ``px`` crop of ``rgb`` (H x W x 3 uint8) around the face ``box`` (x0, y0, x1, y1,
    pixels), ``side`` box sides wide, its centre ``shift`` box sides below the box's centre (bicubic,
    edges repeated). Returns the crop and the 2x3 float64 matrix from photo to crop pixels."""
    x0, y0, x1, y1 = box
    s = max(x1 - x0, y1 - y0, 1.0)
    scale = px / (side * s)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + shift * s
    m = np.array([[scale, 0, px / 2 - scale * cx], [0, scale, px / 2 - scale * cy]], np.float64)
    crop = cv2.warpAffine(rgb, m, (px, px), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(crop), m


def head_on_body(find_head: FindHead, rgb: np.ndarray, box: tuple[float, float, float, float]) -> bool:
    """Whether a majority of the :data:`HEAD_CROPS` around ``box`` show a head there: ``find_head``
    (a pose model, see :data:`FindHead`) puts at least :data:`HEAD_IN_BOX` of its face landmarks
    inside the box. Stops as soon as the majority is decided (5 of the 9 crops at best)."""
    need = len(HEAD_CROPS) // 2 + 1
    yes = no = 0
    for side, shift in HEAD_CROPS:
        crop, m = head_crop(rgb, box, side, shift)
        pts = find_head(crop)
        agrees = False
        if pts is not None and len(pts):
            b = np.array([box[:2], box[2:]], np.float64) @ m[:, :2].T + m[:, 2]  # the box in crop pixels
            p = np.asarray(pts, np.float64)
            inside = (p[:, 0] >= b[0, 0]) & (p[:, 0] <= b[1, 0]) & (p[:, 1] >= b[0, 1]) & (p[:, 1] <= b[1, 1])
            agrees = float(inside.mean()) >= HEAD_IN_BOX
        yes, no = yes + agrees, no + (not agrees)
        if yes >= need or no >= need:
            break
    return yes >= need


def warning_texts(small: bool, doubtful: bool, face_size: float) -> list[str]:
    """The warning strings for the two flags (stable prefixes ``small_face:`` and ``doubtful_face:``)."""
    out = []
    if small:
        out.append(f"small_face: the face is {face_size:.0f} px tall (under {SMALL_FACE_PX:.0f}); "
                   "the reading is less reliable")
    if doubtful:
        out.append("doubtful_face: the face finding and the parse are unsure this is a face, and no head of its "
                   "own is seen there; look at the picture")
    return out
