"""occparse's label values, names and palette, and the facial-hair rule; defined once, used everywhere.

Label maps (parser output, synthetic training labels):

====  ============  =========================================================
  0   background    everything that is not the face, its hair or an occluder
  1   face          visible face: skin and features (eyes, brows, nose, lips)
  2   hair          head hair (a fringe over the forehead, strands over an eye)
  3   occluder      anything else in front of the face: hands, masks, caps, ...
  4   facial_hair   beard, moustache, stubble dense enough to hide skin
 255  (ignore)      unknown truth, in training labels only
====  ============  =========================================================

Facial hair counts as occluding by default, as the data definition does (LFW labels beards as
hair); ``facial_hair="visible"`` in the estimator counts it as face instead.

The LFW Part Labels have one hair class for head hair and beards. :func:`split_facial_hair`
derives the facial-hair class from them by face geometry (the rule is drawn by
``occparse synth --preview S.png --per-kind``, as ``S_facial_hair_rule.png``).
"""

from __future__ import annotations

import numpy as np

BACKGROUND, FACE, HAIR, OCCLUDER, FACIAL_HAIR = 0, 1, 2, 3, 4
IGNORE = 255
CLASSES = ("background", "face", "hair", "occluder", "facial_hair")
N_CLASSES = len(CLASSES)
#: RGB colour per class, for label pictures: black, blue, yellow, red, brown
PALETTE = np.array([[0, 0, 0], [60, 120, 255], [240, 200, 40], [230, 40, 40], [150, 90, 40]], np.uint8)

#: MediaPipe Face Mesh landmark just below the nose (subnasale): a beard zone starts under it.
SUBNASALE = 2


def colorize(labels: np.ndarray) -> np.ndarray:
    """H x W label map (uint8, 0..4; other values drawn as background) -> H x W x 3 uint8 RGB."""
    lab = np.where(labels < N_CLASSES, labels, 0)
    return PALETTE[lab]


def facial_hair_zone(face, shape: tuple[int, int]) -> np.ndarray:
    """Where facial hair can grow on ``face``: a boolean H x W mask for an image of ``shape``.

    The rule (face geometry only, so it works for any photo with a face mesh):
    pixels below the line through the subnasale (perpendicular to the face's vertical axis, so it
    follows head roll) that lie inside the face region R grown by 10% about its centre, or inside
    R's part below that line moved down by 20% of the face height (a beard hangs below the chin).
    """
    from .runtime.mesh import CHIN_BOTTOM, FOREHEAD_TOP
    from .runtime.regions import _fill

    lm = face.landmarks.astype(np.float64)
    _, down = face.axes()
    oval = face.oval.astype(np.float64)
    centre = oval.mean(0)
    grown = _fill(shape, (oval - centre) * 1.1 + centre)
    height = float(np.linalg.norm(lm[CHIN_BOTTOM] - lm[FOREHEAD_TOP]))
    dropped = _fill(shape, oval + 0.2 * height * down.astype(np.float64))
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    below = (xs * float(down[0]) + ys * float(down[1])) > float(lm[SUBNASALE] @ down)
    return below & (grown | dropped)


def split_facial_hair(labels: np.ndarray, face, gender: str) -> np.ndarray:
    """LFW-style labels (2 = head hair and beard together) -> labels with facial hair as class 4.

    Only men's hair in :func:`facial_hair_zone` becomes facial hair: a woman's hair there is long
    head hair falling across the face. Returns a new uint8 array of the same shape."""
    out = labels.copy()
    if gender.upper().startswith("M"):
        out[(labels == HAIR) & facial_hair_zone(face, labels.shape)] = FACIAL_HAIR
    return out
