"""Rules that correct the face parser's labels with what the photo itself shows, after parsing.

* **The crown** (:func:`with_crown`): a cap or hat over the top of the face, read by the parser as an
  occluder or as the scene behind, marks the face ``crown_covered`` so that R reaches the mean face's
  outline there (``occparse.runtime.regions.crown_band``; docs/face_region.md, rule 6).
* **Dark lenses** (:func:`with_dark_lenses`): sunglasses the parser reads as visible eyes; the lens
  pixels become occluder (``occparse.runtime.lenses``).

Both return new objects and leave their inputs as they were.
"""

from __future__ import annotations

from dataclasses import replace

from ..labels import BACKGROUND, FACE, OCCLUDER
from .align import AlignedCrop
from .lenses import dark_lens_pixels
from .occlusion import crop_footprint
from .parsing import ParseResult
from .regions import above_brow_line, crown_band, face_region

#: Names the label rules the numbers are computed with; batch outputs keep it with their settings, so
#: that a resume never mixes rows computed before and after a change of these rules.
LABEL_RULES = "crown: occluder or background; dark lenses"


def with_crown(item: tuple, parse: ParseResult) -> tuple[tuple, ParseResult]:
    """``(prep, face, crop, score)`` with the face marked ``crown_covered`` (in both geometries) where the
    parser labels an occluder, or the scene behind, over the top of the face
    (:func:`occparse.runtime.regions.crown_band`), and its parse with that band's background labelled
    occluder: inside the restored R it is the cap, and the picture and the shares say so."""
    prep, f, c, sc = item
    band = crown_band(c.face, parse.labels, (OCCLUDER, BACKGROUND), lambda: crop_footprint(c, prep.size))
    if band is None:
        return item, parse
    crowned = replace(c.face, crown_covered=True)
    band &= face_region(crowned, parse.labels.shape)  # the outline ramps out from the brow line: not all of it
    labels = parse.labels.copy()
    labels[band & (labels == BACKGROUND)] = OCCLUDER
    item = prep, replace(f, crown_covered=True), replace(c, face=crowned), sc
    return item, replace(parse, labels=labels)


DARK_LENSES_WARNING = ("dark_lenses: dark lenses cover both eyes (no eye white shows); the parser's visible face "
                       "there counts as hidden")


def with_dark_lenses(c: AlignedCrop, parse: ParseResult) -> ParseResult:
    """``parse`` with the lens pixels below the eyebrow line that it labels face relabelled occluder where
    the crop's face is behind dark lenses (:func:`occparse.runtime.lenses.dark_lens_pixels`; R from the
    crop's face), their face probability moved to occluder (the soft estimate and the parser's
    confidence follow); the same object when no pixel changes."""
    shape = parse.labels.shape
    region = face_region(c.face, shape)
    lens = dark_lens_pixels(c.image, parse.probs[FACE], region, c.face.landmarks)
    if lens is None:
        return parse
    # dark eyebrows touch a lens's top edge; above their line is the forehead, which a lens does not hide
    moved = lens & (parse.labels == FACE) & ~above_brow_line(c.face, shape)
    if not moved.any():
        return parse
    labels = parse.labels.copy()
    labels[moved] = OCCLUDER
    probs = parse.probs.copy()
    probs[OCCLUDER][moved] += probs[FACE][moved]
    probs[FACE][moved] = 0.0
    return replace(parse, labels=labels, probs=probs, top=None)
