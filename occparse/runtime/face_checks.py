"""Face checks: is a found face big enough to read, and does it look like a face at all?

Two warnings a user can act on, each a flag on :class:`~occparse.runtime.results.FaceResult` and a
folder-mode column, and drawn in the picture:

* ``small_face``: the face oval is under :data:`SMALL_FACE_PX` pixels tall. Below that the parser
  sees a blur of a few dozen pixels: masks and sunglasses are still read, but the share of the face
  region they hide is far less sure, and texture can pass for a face.
* ``doubtful_face``: the face finding and the parse agree that this may not be a face. Looked at on
  the real masked-face photos (``benchmarks/masked_faces.py``), the things wrongly read as faces
  there (a car wheel, a coat, a sleeve, food on a shelf, a statue's coat, the back of a painted
  head) are small (16-43 px), and each is either a face the face mesh itself rejected (its landmark
  model found no face in the detector's box, so occparse fitted the mean face to the detector's six
  key points: ``source == "keypoints"``) or one where both the face detector and the parser are
  unsure (detector score and parser confidence under :data:`DOUBTFUL_CONFIDENCE`). The rule is those
  two cues, for faces under :data:`DOUBTFUL_MAX_PX`; above that size no false face was seen and the
  mesh's own rejection happens on real profile and heavily masked faces too.

The cues do not separate every false face from every small real one: a real masked face of 20-40 px
that the mesh rejects is flagged too (see ``docs/outputs.md`` for the measured rates). A flag says
"look at this one", not "this is not a face".
"""

from __future__ import annotations

#: Face-oval height (pixels of the photo) under which a face gets the ``small_face`` warning.
SMALL_FACE_PX = 40.0
#: Largest face-oval height (pixels) that can get ``doubtful_face``.
DOUBTFUL_MAX_PX = 48.0
#: Detector score and parser confidence under which both count as unsure.
DOUBTFUL_CONFIDENCE = 0.70


def is_small_face(face_size: float) -> bool:
    """Whether a face whose oval is ``face_size`` pixels tall is too small to read reliably."""
    return face_size < SMALL_FACE_PX


def is_doubtful_face(face_size: float, source: str, landmark_confidence: float | None,
                     parser_confidence: float) -> bool:
    """Whether a found face may not be a face (see the module docstring for the rule and its evidence).

    ``face_size``: face-oval height in pixels; ``source``: "mesh", "keypoints" or "canonical";
    ``landmark_confidence``: the face detector's score (0..1) or None; ``parser_confidence``: the
    parser's mean top-class probability inside the face region (0..1). The canonical layout assumed
    for aligned crops is never doubtful: the user said the picture is a face."""
    if source == "canonical" or face_size >= DOUBTFUL_MAX_PX:
        return False
    if source == "keypoints":
        return True
    unsure_detector = landmark_confidence is not None and landmark_confidence < DOUBTFUL_CONFIDENCE
    return unsure_detector and parser_confidence < DOUBTFUL_CONFIDENCE


def warning_texts(small: bool, doubtful: bool, face_size: float) -> list[str]:
    """The warning strings for the two flags (stable prefixes ``small_face:`` and ``doubtful_face:``)."""
    out = []
    if small:
        out.append(f"small_face: the face is {face_size:.0f} px tall (under {SMALL_FACE_PX:.0f}); "
                   "the reading is less reliable")
    if doubtful:
        out.append("doubtful_face: the face finding and the parse are unsure this is a face; look at the picture")
    return out
