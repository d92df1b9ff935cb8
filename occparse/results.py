"""Typed results: what occparse says about an image and each face in it.

An image that cannot be measured still gets an :class:`ImageResult`, with a status and an
empty face list, never ``None``: batch code can write one row per input whatever happened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    NO_FACE = "no_face"
    UNREADABLE = "unreadable"
    EMPTY_FILE = "empty_file"
    NOT_AN_IMAGE = "not_an_image"
    TOO_SMALL = "too_small"
    INPUT_ERROR = "input_error"
    MISSING = "missing"  # a CSV row whose file is not there
    ERROR = "error"  # anything unexpected; the message says what


@dataclass(frozen=True)
class RegionOcclusion:
    """Occluded fraction of one named face sub-region (see geometry.REGION_NAMES)."""

    name: str
    fraction: float


@dataclass(frozen=True)
class OccluderShare:
    """What covers the occluded part of R: hair, other occluders, or pixels the parser calls background."""

    hair: float
    occluder: float
    background: float


@dataclass(frozen=True)
class FaceResult:
    """One face. ``occlusion`` is the final estimate; the components are kept beside it."""

    occlusion: float
    geometric: float
    regions: list[RegionOcclusion]
    occluded_by: OccluderShare
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the face oval, original pixels
    landmark_confidence: float | None  # face detector score for this face, when one matched
    parser_confidence: float  # mean top-class probability of the parser inside R
    is_gray: bool
    face_size: float  # face-oval height in original pixels
    regressor: float | None = None
    uncertainty: float | None = None
    status: Status = Status.OK

    def region(self, name: str) -> float:
        for r in self.regions:
            if r.name == name:
                return r.fraction
        raise KeyError(name)


@dataclass
class ImageResult:
    """Every face of one image, largest first; ``faces`` is empty unless ``status`` is ok."""

    path: str
    status: Status
    message: str = ""
    width: int = 0
    height: int = 0
    faces: list[FaceResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    def to_dict(self, all_faces: bool = True) -> dict:
        """The JSON schema documented in the README."""
        d = asdict(self)
        d["status"] = str(self.status)
        faces = d["faces"] if all_faces else d["faces"][:1]
        for f in faces:
            f["status"] = str(f["status"])
            f["regions"] = {r["name"]: round(r["fraction"], 4) for r in f["regions"]}
            for k in ("occlusion", "geometric", "parser_confidence", "regressor", "uncertainty", "face_size",
                      "landmark_confidence"):
                if f[k] is not None:
                    f[k] = round(float(f[k]), 4)
            f["occluded_by"] = {k: round(v, 4) for k, v in f["occluded_by"].items()}
            f["box"] = [round(v, 1) for v in f["box"]]
        d["faces"] = faces
        d["n_faces"] = len(self.faces)
        return d
