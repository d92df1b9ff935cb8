"""ISO/IEC 29794-5 style occlusion components, computed from occparse's own estimate and regions.

ISO/IEC 29794-5 (face image quality) and OFIQ, its open reference implementation by BSI
(github.com/BSI-OFIQ/OFIQ-Project, ``OFIQlib/modules/measures/src/FaceOcclusionPrevention.cpp``,
``EyesVisible.cpp``, ``MouthOcclusionPrevention.cpp``), report three occlusion components. Each has
a native quality measure (the *raw value*), a quality component value (the *score*) and a return code:

========================== =============================================== ==========================================
component                  raw value (0..1): occluded share of             occparse's zone
========================== =============================================== ==========================================
face_occlusion_prevention  the face region                                 R, the MediaPipe face oval (final estimate)
eyes_visible               the eye visibility zone (both eyes)             left_eye and right_eye regions (mean)
mouth_occlusion_prevention the mouth zone                                  mouth region
========================== =============================================== ==========================================

As in OFIQ, the raw value is the *occluded* share of the zone (0 = nothing hidden) and the score is the
*visible* share in percent: ``score = clamp(round_half_up(100 * (1 - raw)), 0, 100)``; OFIQ's
configuration maps none of the three through a sigmoid and applies no threshold, so neither does occparse.

These are **not** certified OFIQ values: occparse's face region (the 36-point MediaPipe face oval,
forehead included), its eye and mouth zones (grown landmark hulls, not ISO/IEC 39794-5's eye rectangles
or ADNet's lip polygon) and its segmentation (a BiSeNet face parser fused with a regressor, not OFIQ's
occlusion-segmentation network) all differ; docs/iso_components.md lists the differences.

Return codes: ``success``, or ``failure_to_assess`` when the zone cannot be measured: the zone is empty,
or more than :data:`MAX_OUT_OF_FRAME` of it (for the eyes: of either eye) lies outside the image, so a
number would describe the photo's border rather than an occlusion. Raw value and score are then None.

Imports nothing heavy: rows, results and the report use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

#: the three components, in the order every output lists them
COMPONENTS: tuple[str, ...] = ("face_occlusion_prevention", "eyes_visible", "mouth_occlusion_prevention")

#: more than this share of a zone outside the image: failure to assess (the eyes: either eye)
MAX_OUT_OF_FRAME = 0.5

#: the occparse regions (occparse.runtime.regions.REGION_NAMES) each zone is read from
ZONES: dict[str, tuple[str, ...]] = {
    "eyes_visible": ("left_eye", "right_eye"),
    "mouth_occlusion_prevention": ("mouth",),
}


class ReturnCode(StrEnum):
    """ISO/IEC 29794-5's return codes that apply here; the value is what CSV and JSON write."""

    SUCCESS = "success"
    FAILURE_TO_ASSESS = "failure_to_assess"


@dataclass(frozen=True)
class QualityComponent:
    """One component: ``raw`` the occluded share of its zone (float in 0..1), ``score`` the quality
    component value (int in 0..100, 100 = nothing hidden), ``code`` its return code; raw and score
    are None unless ``code`` is success."""

    name: str
    raw: float | None
    score: int | None
    code: ReturnCode

    @property
    def ok(self) -> bool:
        return self.code == ReturnCode.SUCCESS


@dataclass(frozen=True)
class IsoComponents:
    """The three components of one face (see the module docstring)."""

    face_occlusion_prevention: QualityComponent
    eyes_visible: QualityComponent
    mouth_occlusion_prevention: QualityComponent

    def __iter__(self):
        return iter((self.face_occlusion_prevention, self.eyes_visible, self.mouth_occlusion_prevention))

    def to_dict(self) -> dict:
        """``{name: {"raw": float | None, "score": int | None, "code": str}}``, raw rounded to 4 places."""
        return {c.name: {"raw": None if c.raw is None else round(c.raw, 4), "score": c.score, "code": str(c.code)}
                for c in self}


def score(raw: float) -> int:
    """Quality component value of a raw occluded share: round(100 * (1 - raw)) clamped to 0..100.

    Rounds half away from zero, as C++'s ``round`` in OFIQ does (Python's ``round`` rounds half to even)."""
    return int(min(100, max(0, math.floor(100.0 * (1.0 - raw) + 0.5))))


def _finite(v) -> bool:
    """A real number (Python or numpy, any width) that is not NaN or infinite."""
    try:
        return v is not None and not isinstance(v, str | bytes) and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def component(name: str, raw: float | None) -> QualityComponent:
    """A component from its raw occluded share; a missing or non-finite one is a failure to assess."""
    if not _finite(raw):
        return QualityComponent(name, None, None, ReturnCode.FAILURE_TO_ASSESS)
    raw = min(1.0, max(0.0, float(raw)))
    return QualityComponent(name, raw, score(raw), ReturnCode.SUCCESS)


def iso_components(occlusion: float | None, regions: Mapping[str, float],
                   region_out_of_frame: Mapping[str, float] | None = None) -> IsoComponents:
    """The three components of one face.

    ``occlusion``: the final estimate (occluded share of R, 0..1); ``regions``: occluded share per
    occparse region name (NaN where the region is empty), with the part outside the frame counted as
    hidden, as :class:`~occparse.runtime.results.FaceResult` holds them; ``region_out_of_frame``: the
    share of each region outside the image (0..1; None: unknown, taken as 0).

    Returns an :class:`IsoComponents`; never raises for missing or NaN values (they give
    ``failure_to_assess``)."""
    oof = region_out_of_frame or {}
    zones: dict[str, float | None] = {}
    for name, parts in ZONES.items():
        values = [regions.get(p) for p in parts]
        if not all(_finite(v) for v in values) or any(oof.get(p, 0.0) > MAX_OUT_OF_FRAME for p in parts):
            zones[name] = None
        else:
            # the two eye zones weigh alike (OFIQ counts the pixels of both rectangles together; the
            # results keep fractions, not sizes, and both eyes have about the same area in a near-frontal face)
            zones[name] = sum(values) / len(values)
    return IsoComponents(component("face_occlusion_prevention", occlusion),
                         component("eyes_visible", zones["eyes_visible"]),
                         component("mouth_occlusion_prevention", zones["mouth_occlusion_prevention"]))


def failed() -> IsoComponents:
    """All three components failed to assess (an image without a measured face)."""
    return IsoComponents(*(component(n, None) for n in COMPONENTS))


def of_face(face) -> IsoComponents:
    """The components of a :class:`~occparse.runtime.results.FaceResult`: the ones the pipeline
    computed (``face.iso``), else computed from its estimate and regions (out-of-frame shares unknown)."""
    if getattr(face, "iso", None) is not None:
        return face.iso
    return iso_components(face.occlusion, {r.name: r.fraction for r in face.regions})


#: the nine output columns (folder mode, predict), in order: raw, score, code per component
COLUMNS: tuple[str, ...] = tuple(f"{n}_{k}" for n in COMPONENTS for k in ("raw", "score", "code"))


def row_values(iso: IsoComponents | None) -> dict[str, str]:
    """The nine columns as text (raw with 6 decimals, score an integer, code a word); empty numbers
    and ``failure_to_assess`` when a component (or, with ``iso`` None, the whole face) failed."""
    iso = iso or failed()
    out: dict[str, str] = {}
    for c in iso:
        out[f"{c.name}_raw"] = "" if c.raw is None else f"{c.raw:.6f}"
        out[f"{c.name}_score"] = "" if c.score is None else str(c.score)
        out[f"{c.name}_code"] = str(c.code)
    return out
