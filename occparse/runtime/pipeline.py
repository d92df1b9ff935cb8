"""The app object: loads the models once and turns images into typed results.

Stages: read -> mesh -> aligned crop -> parser -> geometric occlusion (-> regressors -> stacker,
when their weights are present). Each stage runs once per image; the crop and the parse are
kept in :class:`FaceDetail` so that drawing never runs a model again.

One entry point, :meth:`Estimator.analyze`, takes a path, a numpy array or a PIL image. Batch
code (``occparse predict``, folder mode) runs the two halves separately:
:meth:`Estimator.batch_prepare` (per image, CPU: mesh and crops; in worker processes) and
:meth:`Estimator.batch_finish` (the networks, batched over many images).
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .align import CANONICAL_SIZE, UPSCALE_INTERPOLATIONS, AlignedCrop, align
from .face_checks import (
    beside_a_larger_face,
    head_on_body,
    is_doubtful_face,
    is_small_face,
    may_be_doubtful,
    warning_texts,
)
from .faces import FaceMesher
from .io import ImageInputError, LoadedImage, broken_link_detail, is_gray_rgb, read_image
from .iso import iso_components
from .label_rules import DARK_LENSES_WARNING, with_crown, with_dark_lenses
from .mesh import Face, canonical_mesh, head_pose
from .occlusion import (
    FACIAL_HAIR_CHOICES,
    GeometricOcclusion,
    OutOfFrame,
    geometric_occlusion,
    out_of_frame,
    region_with_out_of_frame,
    with_out_of_frame,
)
from .parsing import FaceParser, ParseResult
from .results import FaceResult, ImageResult, RegionOcclusion, Status
from .stacking import FaceFeatures

_log = logging.getLogger("occparse")


@dataclass(frozen=True)
class EstimatorOptions:
    """How the :class:`Estimator` is set up. Defaults use the shipped weights on the best provider.

    Paths are files; ``None`` means the shipped model from the weights folder (``weights``, else
    ``$OCCPARSE_WEIGHTS``, else the installed one). ``crop_size`` is in pixels."""

    parser: str | None = None  # ONNX path; None = the shipped parser (int8 or fp32 by ``precision``)
    parser_spec: str | None = None  # "celebamask19" or a JSON spec file, for a user's parser
    max_faces: int | None = None  # faces reported per image, subject first (None: every face found)
    exhaustive: bool = False  # search for every face (tiles, full-range detector) even after a confident first pass
    providers: tuple[str, ...] | None = None
    threads: int = 0  # ONNX Runtime intra-op threads (0 = its default)
    spin: bool = True  # False when worker processes share the cores (batch mode): idle ORT threads then sleep
    crop_size: int = CANONICAL_SIZE
    detector_scores: bool = True  # run MediaPipe's face detector for a per-face confidence
    assume_aligned: bool = False  # inputs are aligned face crops: if the mesh finds no face, use the canonical layout
    regressor_color: str | None = None  # ONNX paths; None = shipped weights when present
    regressor_gray: str | None = None
    stacker: str | None = None  # stacker file; None = shipped one when present
    use_learned: bool = True  # False: geometric estimate only, even when regressors/stacker ship
    use_stacker: bool = True  # False: regressors without the stacker (fit-stacker computes its features so)
    precision: str = "auto"  # shipped networks: "int8" (CPU default when shipped), "fp32", or "auto"
    parser_flip: bool = False  # parse the mirrored crop too and average (see FaceParser.flip)
    #: "occluding" (default, the data definition) or "visible": what facial hair counts as in the
    #: geometric estimate, the per-region fractions and (through the stacker) the final estimate;
    #: the regressors learned the default and do not follow it
    facial_hair: str = "occluding"
    weights: str | None = None  # folder of shipped-style weights (manifest.json); None = $OCCPARSE_WEIGHTS, else installed
    #: how a small face (under about 53 px) is enlarged to the crop: "lanczos" (default), "linear" (before),
    #: "cubic" or "nearest" (align.align; benchmarks/lowres_parser.py measures them)
    small_face_upscale: str = "lanczos"
    #: restore R up to the mean face's outline where the parser labels an occluder or background over the top of the
    #: face (the crown, occparse.runtime.regions.crown_covered; docs/face_region.md); False: the prior alone
    crown: bool = True
    #: relabel as occluder the lens pixels the parser reads as face where both eyes are behind dark lenses
    #: (occparse.runtime.lenses); False: the parser's labels as they are
    dark_lenses: bool = True


@dataclass(frozen=True)
class FaceDetail:
    """Everything computed for one face, in crop and original geometry: the mesh (``face``), the
    aligned crop, the parser's label map on the crop (uint8, 0 background, 1 visible face, 2 hair,
    3 occluder), the geometric occlusion and the final :class:`FaceResult`."""

    face: Face
    crop: AlignedCrop
    parse: ParseResult
    geometry: GeometricOcclusion
    result: FaceResult

    def labels_original(self, size: tuple[int, int]) -> np.ndarray:
        """The crop's labels warped back to an image of ``size`` = (height, width): uint8, 0 outside the crop."""
        return self.crop.to_original(self.parse.labels, size)


#: The old name of :class:`FaceDetail` (it collided with insightface's app object ``FaceAnalysis``).
FaceAnalysis = FaceDetail


@dataclass(frozen=True)
class ImageAnalysis:
    """What :meth:`Estimator.analyze` returns: the numbers (``result``, an :class:`ImageResult`), the
    image as read (``None`` when it could not be) and each face's :class:`FaceDetail`, the subject first."""

    image: LoadedImage | None
    result: ImageResult
    faces: list[FaceDetail] = field(default_factory=list)
    fallback: bool = False  # the canonical face layout was assumed (see EstimatorOptions.assume_aligned)

    def label_map(self) -> np.ndarray:
        """All faces' labels in the original geometry (H x W uint8, 0..3); where crops overlap, the larger face wins."""
        assert self.image is not None
        size = (self.image.height, self.image.width)
        out = np.zeros(size, np.uint8)
        filled = np.zeros(size, bool)
        for f in self.faces:
            inside = f.crop.to_original(np.ones(f.parse.labels.shape, np.uint8), size).astype(bool) & ~filled
            out[inside] = f.labels_original(size)[inside]
            filled |= inside
        return out


@dataclass(frozen=True)
class Prepared:
    """An image after the per-image stages, waiting for the batched network stages.

    Small enough to send between processes once ``image`` is dropped (``lite()``): batch workers
    send the crops, not the photo.
    """

    path: str
    size: tuple[int, int]  # (height, width) of the original image
    faces: list[Face]
    scores: list[float | None]
    crops: list[AlignedCrop]
    image: LoadedImage | None = None
    status: Status = Status.OK
    message: str = ""
    fallback: bool = False  # the canonical face layout stands in for a mesh that found nothing
    n_found: int | None = None  # faces found before --max-faces cut the list (None: len(faces))
    #: per face, whether the pose model sees a head on a body there (checked only for faces that may
    #: be doubtful, :func:`.face_checks.may_be_doubtful`; None: not checked for any face)
    heads: list[bool] | None = None

    def lite(self) -> Prepared:
        return replace(self, image=None)


def failed(path: str, status: Status, message: str, size: tuple[int, int] = (0, 0)) -> Prepared:
    """A Prepared for an image that could not be read (``size``: (height, width) when known, e.g. too small)."""
    return Prepared(str(path), size, [], [], [], None, status, message)


def prepare_image(mesher: FaceMesher, image: LoadedImage, options: EstimatorOptions) -> Prepared:
    """Mesh, detector scores and aligned crops of one image: the CPU stages, no network."""
    faces = mesher.detect(image.rgb, exhaustive=options.exhaustive)
    n_found = len(faces)
    found = [f.box for f in faces]  # every face found: a face beside a larger one is judged alike in every mode
    if options.max_faces is not None:
        faces = faces[: max(1, options.max_faces)]
    size = (image.height, image.width)
    # a multi-page or animated file: say which picture was measured
    first = f"first of {image.frames} frames/pages used" if image.frames > 1 else ""
    if not faces and options.assume_aligned:
        face = replace(canonical_face(size), source="canonical")
        crop = align(image.rgb, face, options.crop_size)
        return Prepared(image.path, size, [face], [None], [crop], image, Status.OK,
                        _join("no face found by the mesh; the canonical aligned-crop layout was assumed", first),
                        fallback=True)
    if not faces:
        return Prepared(image.path, size, [], [], [], image, Status.NO_FACE,
                        _join("no face found", first))
    scores = mesher.scores(image.rgb, faces) if options.detector_scores else [f.score for f in faces]
    crops = [align(image.rgb, f, options.crop_size, upscale=options.small_face_upscale) for f in faces]
    # the second look at candidates for doubtful_face needs the photo, which batch workers do not send on
    find_head = getattr(mesher, "pose_face_points", None)
    heads = [find_head is not None and may_be_doubtful(f.box[3] - f.box[1], f.source, sc)
             and not beside_a_larger_face(f.box, found)  # its own box is never 1.5 times as tall
             and head_on_body(find_head, image.rgb, f.box) for f, sc in zip(faces, scores, strict=True)]
    return Prepared(image.path, size, faces, scores, crops, image, message=first, n_found=n_found, heads=heads)


def _join(*parts: str) -> str:
    return "; ".join(x for x in parts if x)


#: Out-of-frame share of R from which a face is flagged, and the pose limits of "extreme".
OUT_OF_FRAME_WARN = 0.02
EXTREME_YAW, EXTREME_PITCH = 45.0, 30.0


def face_warnings(face: Face, oof: float, pose, turned_away: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Short, stable warning strings for one face (empty when the reading needs no caveat).
    ``turned_away``: sub-regions with no pixels in R (the head's pose), reported without a value."""
    out = []
    if oof > OUT_OF_FRAME_WARN:
        out.append(f"out_of_frame: {oof:.0%} of the face region lies outside the image and counts as hidden")
    if pose is not None and ((pose.yaw is not None and abs(pose.yaw) > EXTREME_YAW)
                             or (pose.pitch is not None and abs(pose.pitch) > EXTREME_PITCH)):
        out.append("extreme_pose: the face is turned far from frontal; the face region is less reliable")
    if turned_away:
        out.append(f"turned_away: the head's pose turns the {', '.join(n.replace('_', ' ') for n in turned_away)} "
                   "out of the face region; no value")
    if face.crown_covered:
        out.append("crown: a cap or hat covers the top of the face; the face region reaches the mean face's "
                   "outline there and the part it hides counts")
    if face.rotation:
        out.append(f"rotated: the face is turned; it was read upright (picture turned {face.rotation} degrees clockwise)")
    if face.source == "keypoints":
        out.append("keypoint_fit: the mesh failed; the mean face was fitted to the detector's key points")
    if face.source == "canonical":
        out.append("canonical: no face found; the canonical aligned-crop layout was assumed")
    return out


def canonical_face(size: tuple[int, int]) -> Face:
    """The mean mesh of aligned training crops (occparse/assets), stretched to an image of ``size``.

    For aligned face crops like the challenge's, where a heavy occluder can defeat the mesh: the
    face is where aligned faces always are."""
    mean = canonical_mesh()
    h, w = size
    return Face((mean * np.array([w / CANONICAL_SIZE, h / CANONICAL_SIZE], np.float32)).astype(np.float32), (h, w))


def prepare_path(mesher: FaceMesher, path: str | Path, options: EstimatorOptions) -> Prepared:
    """Read and prepare; bad input becomes a Prepared with its status, never an exception."""
    p = Path(path)
    if not p.exists():
        return failed(str(p), Status.MISSING, broken_link_detail(p) if p.is_symlink() else "no such file")
    if p.is_dir():  # a CSV row with an empty file name resolves to --images-root itself
        return failed(str(p), Status.MISSING, "the file name is empty (or names the images folder itself)")
    try:
        image = read_image(p)
    except ImageInputError as e:
        return failed(str(p), _status_of(e), e.detail, e.size)
    return prepare_image(mesher, image, options)


def face_features(g: GeometricOcclusion, regressor: float, is_gray: bool, mesh_fallback: bool) -> FaceFeatures:
    """The stacker's inputs, from what the pipeline computed for one face."""
    return FaceFeatures(
        geometric=g.overall, geometric_soft=g.soft, regions=tuple(r.fraction for r in g.regions),
        share_hair=g.occluded_by.hair, share_occluder=g.occluded_by.occluder, share_background=g.occluded_by.background,
        share_facial_hair=g.occluded_by.facial_hair, regressor=regressor, is_gray=is_gray, mesh_fallback=mesh_fallback, parser_confidence=g.parser_confidence,
    )


def _status_of(e: ImageInputError) -> Status:
    try:
        return Status(e.status)
    except ValueError:
        return Status.INPUT_ERROR


class Estimator:
    """Loads the face mesh and the models once; :meth:`analyze` measures one image.

    Like insightface's app object: one object, one call for everything, including what the picture
    needs. ``Estimator(EstimatorOptions(...))`` raises :class:`occparse.errors.ModelError` when a
    model is missing or fails its pinned sha256, :class:`occparse.errors.VersionError` when the
    stacker was saved under another scikit-learn version, and ValueError for an option out of its range
    (``small_face_upscale``, ``facial_hair``, ``max_faces`` < 1, ``crop_size`` < 32).

    Example::

        est = Estimator()
        res = est.analyze("photo.jpg").result     # an ImageResult
        if res.ok:
            print(res.faces[0].occlusion)         # 0 (fully visible) .. 1 (fully hidden)
    """

    def __init__(self, options: EstimatorOptions | None = None):
        from ..models.zoo import parser_model, resolve_precision

        self.options = options or EstimatorOptions()
        o = self.options
        # options are checked here, once, so that analyze() keeps its promise of never raising for an image
        if o.small_face_upscale not in UPSCALE_INTERPOLATIONS:
            raise ValueError(f"small_face_upscale must be one of {sorted(UPSCALE_INTERPOLATIONS)}, not {o.small_face_upscale!r}")
        if o.facial_hair not in FACIAL_HAIR_CHOICES:
            raise ValueError(f"facial_hair must be one of {FACIAL_HAIR_CHOICES}, not {o.facial_hair!r}")
        if o.max_faces is not None and (isinstance(o.max_faces, bool) or not isinstance(o.max_faces, numbers.Integral)
                                        or o.max_faces < 1):
            raise ValueError(f"max_faces must be a whole number of at least 1, or None for every face, not {o.max_faces!r}")
        if o.crop_size < 32:
            raise ValueError(f"crop_size must be at least 32 pixels, not {o.crop_size!r}")
        self.precision = resolve_precision(o.precision, o.providers, o.weights)
        path, spec = parser_model(o.parser, o.parser_spec, self.precision, o.weights)
        self.parser = FaceParser(path, spec, providers=list(o.providers) if o.providers else None, threads=o.threads,
                                 spin=o.spin, flip=o.parser_flip)
        self.mesher = FaceMesher(max_faces=o.max_faces)
        self.regressors = None
        self.stacker = None
        if o.use_learned:
            self._load_learned(o)

    def _load_learned(self, o: EstimatorOptions) -> None:
        """Regressors and stacker: the user's paths, else the shipped ones when they exist."""
        from ..models.zoo import manifest, not_shipped, shipped, shipped_variant
        from .regression import Regressors, RegressorSpec
        from .stacking import load_stacker

        have = manifest(o.weights)
        prec = "int8" if self.precision == "int8" and "regressor_color_int8" in have else "fp32"
        if prec == "fp32" and "regressor_color" in have and not_shipped(have["regressor_color"], have) \
                and not (o.regressor_color and o.regressor_gray):
            # the fp32 regressors are left out of the repository (docs/training.md, Models); their int8 copies stand in
            _log.warning("occparse: note: the fp32 regressors are not installed; using the int8 ones (docs/training.md, Models)")
            prec = "int8"
        color = o.regressor_color or (shipped_variant("regressor_color", prec, o.weights).path
                                      if "regressor_color" in have else None)
        gray = o.regressor_gray or (shipped_variant("regressor_gray", prec, o.weights).path
                                    if "regressor_gray" in have else None)
        if color:
            providers = list(o.providers) if o.providers else None
            size = have["regressor_color"].spec.get("input_size", 112) if "regressor_color" in have else 112
            self.regressors = Regressors(color, gray, RegressorSpec(input_size=size), providers=providers, threads=o.threads,
                                         spin=o.spin)
        if not o.use_stacker:
            return
        stacker = o.stacker or (shipped("stacker", o.weights).path if "stacker" in have else None)
        if stacker and self.regressors is not None:
            self.stacker = load_stacker(stacker)

    def batch_prepare(self, image: LoadedImage) -> Prepared:
        """Batch stage 1, per image on the CPU: mesh, detector scores, aligned crops (what batch workers run)."""
        return prepare_image(self.mesher, image, self.options)

    def batch_finish(self, batch: list[Prepared]) -> list[ImageAnalysis]:
        """Batch stage 2: the networks for many prepared images at once (one parser, one regressor and one
        stacker call per batch), in input order."""
        items = [(prep, f, c, sc) for prep in batch for f, c, sc in zip(prep.faces, prep.crops, prep.scores, strict=True)]
        subjects = [f is prep.faces[0] for prep, f, _, _ in items]
        crops = [c.image for _, _, c, _ in items]
        parses = self.parser.parse(crops) if crops else []
        # a cap or hat over the top of the face, seen by the parser, restores R up to the mean face's outline
        if self.options.crown:
            crowned = [with_crown(it, p) for it, p in zip(items, parses, strict=True)]
            items, parses = [it for it, _ in crowned], [p for _, p in crowned]
        # dark lenses the parser read as visible eyes: the lens pixels become occluder
        lensed = [False] * len(items)
        if self.options.dark_lenses:
            lensed_parses = [with_dark_lenses(c, p) for (_, _, c, _), p in zip(items, parses, strict=True)]
            lensed = [p is not q for p, q in zip(parses, lensed_parses, strict=True)]
            parses = lensed_parses
        reg = self.regressors.predict(crops)[0] if self.regressors is not None and crops else None
        geos = [geometric_occlusion(c, p, prep.size, self.options.facial_hair)
                for (prep, _, c, _), p in zip(items, parses, strict=True)]
        oofs = [out_of_frame(c, prep.size, p.labels.shape) for (prep, _, c, _), p in zip(items, parses, strict=True)]
        # the face's own crop decides, as it does the regressor's choice (a colour face on a grey backdrop is colour)
        grays = [is_gray_rgb(c) for c in crops]
        finals = [g.overall for g in geos]
        if reg is not None and self.stacker is not None and items:
            X = np.stack([
                face_features(g, float(r), gray, prep.fallback).vector(self.stacker.features)
                for (prep, _, _, _), g, r, gray in zip(items, geos, reg, grays, strict=True)
            ])
            finals = [float(v) for v in self.stacker.predict(X)]
        # the stacker and the regressors saw the part inside the frame; the part outside is hidden
        finals = [with_out_of_frame(float(np.clip(v, 0, 1)), o.overall) for v, o in zip(finals, oofs, strict=True)]
        heads = [bool(prep.heads[i]) if prep.heads else False for prep in batch for i in range(len(prep.faces))]
        faces = iter(
            self._face(prep, f, c, p, sc, g, finals[k], None if reg is None else float(reg[k]), oofs[k], grays[k],
                       heads[k], subjects[k], lensed[k])
            for k, ((prep, f, c, sc), p, g) in enumerate(zip(items, parses, geos, strict=True))
        )
        out = []
        for prep in batch:
            base = ImageResult(prep.path, prep.status, prep.message, width=prep.size[1], height=prep.size[0],
                               faces_found=prep.n_found)
            mine = [next(faces) for _ in prep.faces]
            base.faces = [a.result for a in mine]
            out.append(ImageAnalysis(prep.image, base, mine, prep.fallback))
        return out

    @staticmethod
    def _face(prep: Prepared, f: Face, c: AlignedCrop, p: ParseResult, sc: float | None, g: GeometricOcclusion,
              final: float, r: float | None, oof: OutOfFrame, gray: bool, head: bool = False,
              subject: bool | None = None, dark_lenses: bool = False) -> FaceAnalysis:
        x0, y0, x1, y1 = f.box
        geometric = with_out_of_frame(g.overall, oof.overall)
        regions = [RegionOcclusion(q.name, region_with_out_of_frame(q.fraction, oof.regions[q.name]))
                   for q in g.regions]
        r_all = None if r is None else with_out_of_frame(float(np.clip(r, 0, 1)), oof.overall)
        unc = None if r_all is None else float(max(final, geometric, r_all) - min(final, geometric, r_all))
        pose = head_pose(f)
        size = float(y1 - y0)
        small = is_small_face(size)
        doubtful = is_doubtful_face(size, f.source, sc, g.parser_confidence, head_seen=head)
        occlusion = float(np.clip(final, 0, 1))
        iso = iso_components(occlusion, {q.name: q.fraction for q in regions}, oof.regions)
        res = FaceResult(
            occlusion=occlusion, geometric=geometric, regions=regions,
            occluded_by=g.occluded_by, box=(x0, y0, x1, y1), landmark_confidence=sc,
            parser_confidence=g.parser_confidence, is_gray=gray, face_size=size,
            regressor=r, uncertainty=unc, subject=f is prep.faces[0] if subject is None else subject, rotation=f.rotation,
            out_of_frame=oof.overall, pose=pose, source=f.source, small_face=small, doubtful_face=doubtful,
            warnings=face_warnings(f, oof.overall, pose, [q.name for q in regions if q.fraction != q.fraction])
            + warning_texts(small, doubtful, size) + ([DARK_LENSES_WARNING] if dark_lenses else []), iso=iso,
        )
        return FaceDetail(f, c, p, g, res)

    def analyze(self, image: str | Path | np.ndarray | Any) -> ImageAnalysis:
        """Measure one image: a file path, a numpy array (H x W x 3 uint8 RGB, or H x W uint8 gray), a
        PIL image, or a :class:`LoadedImage`.

        Returns an :class:`ImageAnalysis`; its ``result`` (an :class:`ImageResult`) holds one
        :class:`FaceResult` per face, the subject (nearest the image centre) first, then largest first,
        with ``occlusion`` in 0..1 (the stacker's fusion of the geometric estimate, 1 - |V ∩ R| / |R| from the parser's labels inside the face-mesh oval R,
        and the ResNet-18 regressor). Never raises for bad input: ``result.status`` says what went
        wrong (missing file, not an image, too small, wrong array shape or dtype, no face)."""
        if isinstance(image, LoadedImage):
            loaded = image
        else:
            try:
                loaded = load_any(image)
            except ImageInputError as e:
                h, w = e.size
                return ImageAnalysis(None, ImageResult(e.path, _status_of(e), e.detail, width=w, height=h))
        return self.batch_finish([self.batch_prepare(loaded)])[0]

    # Old names, kept because they cost nothing: prepare/finish are the batch stages, analyze_loaded and
    # estimate are analyze (estimate returns only the ImageResult).
    prepare = batch_prepare
    finish = batch_finish
    analyze_loaded = analyze

    def estimate(self, image: str | Path | np.ndarray | Any) -> ImageResult:
        """``analyze(image).result``: just the numbers."""
        return self.analyze(image).result


def load_any(image: str | Path | np.ndarray | Any, name: str | None = None) -> LoadedImage:
    """A path, a numpy array or a PIL image as a :class:`LoadedImage` (upright H x W x 3 uint8 RGB).

    Arrays must be uint8, H x W (gray) or H x W x 3 (RGB order, as PIL and ``read_image`` give; not
    OpenCV's BGR); H x W x 4 RGBA is put on white like RGBA files. Raises an
    :class:`~occparse.runtime.io.ImageInputError` (an ``occparse.errors.InputError``) for anything else."""
    from .io import MIN_SIDE, ImageTooSmallError, NotAnImageError, is_gray_rgb

    if isinstance(image, str | Path):
        return read_image(image)
    if isinstance(image, np.ndarray):
        label = name or f"<array {'x'.join(map(str, image.shape))} {image.dtype}>"
        if image.dtype != np.uint8:
            raise NotAnImageError(label, f"array dtype must be uint8 (0..255), not {image.dtype}")
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[..., 0]
        if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
            raise NotAnImageError(label, f"array shape must be HxW or HxWx3 (RGB), not {image.shape}")
        mode = "L" if image.ndim == 2 else ("RGBA" if image.shape[2] == 4 else "RGB")
        if mode == "RGB":
            rgb = np.ascontiguousarray(image)
        else:
            from PIL import Image

            from .io import _to_rgb8

            rgb = _to_rgb8(Image.fromarray(image, mode))
    else:
        try:
            from PIL import Image, ImageOps
        except ImportError:  # pragma: no cover (PIL is a dependency)
            Image = None
        if Image is None or not isinstance(image, Image.Image):
            raise NotAnImageError(name or f"<{type(image).__name__}>",
                                  "expected a path, a numpy array or a PIL image")
        from .io import _to_rgb8

        label = name or getattr(image, "filename", "") or f"<PIL {image.mode} {image.width}x{image.height}>"
        mode = image.mode
        rgb = _to_rgb8(ImageOps.exif_transpose(image) or image)
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ImageTooSmallError(label, f"image is {w}x{h} pixels; at least {MIN_SIDE}x{MIN_SIDE} is needed", (h, w))
    gray = mode in ("L", "LA", "I;16", "I;16B", "I;16L", "I;16N", "I", "F", "1") or is_gray_rgb(rgb)
    return LoadedImage(rgb=rgb, path=str(label), source_mode=mode, is_gray=gray)
