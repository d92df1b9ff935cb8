"""Typed results: what occparse says about an image and each face in it.

An image that cannot be measured still gets an :class:`ImageResult`, with a status and an
empty face list, never ``None``: batch code can write one row per input whatever happened.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

from .iso import IsoComponents, of_face


class Status(StrEnum):
    """Why an image has (or has no) faces; the string value is what CSV and JSON output write."""

    OK = "ok"
    NO_FACE = "no_face"
    UNREADABLE = "unreadable"
    EMPTY_FILE = "empty_file"
    NOT_AN_IMAGE = "not_an_image"
    CORRUPT = "corrupt"  # a picture file cut short or damaged (an interrupted copy): fetch it again
    TOO_SMALL = "too_small"
    TOO_LARGE = "too_large"  # more pixels than can be decoded safely (a decompression bomb)
    INPUT_ERROR = "input_error"
    MISSING = "missing"  # a file (a CSV row, a broken symbolic link) that is not there
    ERROR = "error"  # anything unexpected; the message says what


@dataclass(frozen=True)
class RegionOcclusion:
    """Occluded fraction of one named face sub-region (see regions.REGION_NAMES)."""

    name: str
    fraction: float


@dataclass(frozen=True)
class OccluderShare:
    """What covers the occluded part of R, as shares that add up to 1 (all 0 when nothing is occluded):
    head hair, other occluders, pixels the parser calls background, and facial hair (0 when facial
    hair counts as visible face, ``facial_hair="visible"``)."""

    hair: float
    occluder: float
    background: float
    facial_hair: float = 0.0


@dataclass(frozen=True)
class HeadPose:
    """Head pose in degrees (see mesh.head_pose). yaw > 0: the subject turns to their own left
    (towards the picture's right); pitch > 0: chin up; roll: the eye line's angle in the picture,
    counter-clockwise positive, in (-180, 180]. yaw and pitch are None for a face fitted from
    detector key points (no depth)."""

    yaw: float | None
    pitch: float | None
    roll: float


@dataclass(frozen=True)
class FaceResult:
    """One face. ``occlusion`` is the final estimate; the components are kept beside it.

    All fractions are floats in 0..1 (0 fully visible, 1 fully hidden) of the face region R, the
    filled MediaPipe face-oval polygon at the image's resolution, restored where an occluder pulled
    it in (``occparse.runtime.regions``, docs/face_region.md):

    * ``occlusion``: the scikit-learn stacker's fusion of ``geometric`` and ``regressor`` (the
      geometric estimate alone when no regressor or stacker is loaded);
    * ``geometric``: 1 - |V ∩ R| / |R| with V the parser's visible-face pixels mapped back to the image;
    * ``regressor``: the ResNet-18 regressor's output on the aligned crop (colour or gray model), or None;
    * ``uncertainty``: the spread (max - min) of the three estimates, or None without a regressor;
    * ``regions``: the geometric fraction per sub-region (``occparse.runtime.regions.REGION_NAMES``; NaN
      where a region is empty);
    * ``occluded_by``: what covers the occluded part of R (shares summing to 1, or all 0 when nothing does);
    * ``box``, ``face_size``: pixels of the original image; ``landmark_confidence`` (0..1) from
      MediaPipe's face detector, ``parser_confidence`` (0..1) the parser's mean top-class probability in R.
    """

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
    subject: bool = False  # the face of interest: face-oval centre nearest the image centre
    rotation: int = 0  # degrees the picture was turned clockwise to find this face upright
    out_of_frame: float = 0.0  # fraction of R outside the image (counted as hidden in occlusion)
    pose: HeadPose | None = None
    source: str = "mesh"  # "mesh", or "keypoints" (mean mesh fitted to the detector's key points)
    #: the face oval is under SMALL_FACE_PX tall: few pixels to read, the estimate is less reliable
    small_face: bool = False
    #: the face finding and the parse do not look like a face (occparse.runtime.face_checks)
    doubtful_face: bool = False
    warnings: list[str] = field(default_factory=list)
    #: ISO/IEC 29794-5 style components (occparse.runtime.iso); None: not computed (``iso.of_face`` computes them)
    iso: IsoComponents | None = None

    def region(self, name: str) -> float:
        for r in self.regions:
            if r.name == name:
                return r.fraction
        raise KeyError(name)


@dataclass
class ImageResult:
    """Every face of one image, the subject first (nearest the image centre), then largest first;
    ``faces`` is empty unless ``status`` is ok.

    ``width`` and ``height`` are the image's pixels as read (upright, after EXIF rotation), 0 when it
    could not be read; ``message`` says what went wrong (or what was assumed) in one line."""

    path: str
    status: Status
    message: str = ""
    width: int = 0
    height: int = 0
    faces: list[FaceResult] = field(default_factory=list)
    #: faces found in the image, before ``--max-faces`` (``faces`` may hold fewer); None: ``len(faces)``
    faces_found: int | None = None

    @property
    def n_faces(self) -> int:
        """Faces found in the image (every entry point reports this same count as ``n_faces``)."""
        return len(self.faces) if self.faces_found is None else self.faces_found

    @property
    def ok(self) -> bool:
        return self.status == Status.OK

    def to_dict(self, all_faces: bool = True) -> dict:
        """The JSON schema documented in docs/outputs.md."""
        d = asdict(self)
        d["status"] = str(self.status)
        faces = d["faces"] if all_faces else d["faces"][:1]
        for f, face in zip(faces, self.faces, strict=False):
            f["iso"] = of_face(face).to_dict()
            f["status"] = str(f["status"])
            f["regions"] = {r["name"]: round(r["fraction"], 4) for r in f["regions"]}
            for k in ("occlusion", "geometric", "parser_confidence", "regressor", "uncertainty", "face_size",
                      "landmark_confidence"):
                if f[k] is not None:
                    f[k] = round(float(f[k]), 4)
            f["occluded_by"] = {k: round(v, 4) for k, v in f["occluded_by"].items()}
            f["box"] = [round(v, 1) for v in f["box"]]
            f["out_of_frame"] = round(float(f["out_of_frame"]), 4)
            if f["pose"] is not None:
                f["pose"] = {k: None if v is None else round(float(v), 1) for k, v in f["pose"].items()}
        d["faces"] = faces
        del d["faces_found"]
        d["n_faces"] = self.n_faces
        return d
