"""The app object: loads the models once and turns images into typed results.

Stages: read -> mesh -> aligned crop -> parser -> geometric occlusion (-> regressors -> stacker,
when their weights are present). Each stage runs once per image; the crop and the parse are
kept in :class:`FaceAnalysis` so that drawing never runs a model again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .geometry import CANONICAL_SIZE, AlignedCrop, Face, FaceMesher, align
from .io import ImageInputError, LoadedImage, read_image
from .occlusion import GeometricOcclusion, geometric_occlusion
from .parsing import FaceParser, ParseResult
from .results import FaceResult, ImageResult, Status
from .stacking import FaceFeatures


@dataclass(frozen=True)
class EstimatorOptions:
    """How the :class:`Estimator` is set up. Defaults use the shipped weights on the best provider."""

    parser: str | None = None  # ONNX path; None = shipped weights/parser.onnx
    parser_spec: str | None = None  # "celebamask19" or a JSON spec file, for a user's parser
    max_faces: int = 4
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


@dataclass(frozen=True)
class FaceAnalysis:
    """Everything computed for one face, in crop and original geometry."""

    face: Face
    crop: AlignedCrop
    parse: ParseResult
    geometry: GeometricOcclusion
    result: FaceResult

    def labels_original(self, size: tuple[int, int]) -> np.ndarray:
        return self.crop.to_original(self.parse.labels, size)


@dataclass(frozen=True)
class ImageAnalysis:
    image: LoadedImage | None
    result: ImageResult
    faces: list[FaceAnalysis] = field(default_factory=list)
    fallback: bool = False  # the canonical face layout was assumed (see EstimatorOptions.assume_aligned)

    def label_map(self) -> np.ndarray:
        """All faces' labels in the original geometry; where crops overlap, the larger face wins."""
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
    is_gray: bool
    faces: list[Face]
    scores: list[float | None]
    crops: list[AlignedCrop]
    image: LoadedImage | None = None
    status: Status = Status.OK
    message: str = ""
    fallback: bool = False  # the canonical face layout stands in for a mesh that found nothing

    def lite(self) -> Prepared:
        return replace(self, image=None)


def failed(path: str, status: Status, message: str) -> Prepared:
    """A Prepared for an image that could not be read."""
    return Prepared(str(path), (0, 0), False, [], [], [], None, status, message)


def prepare_image(mesher: FaceMesher, image: LoadedImage, options: EstimatorOptions) -> Prepared:
    """Mesh, detector scores and aligned crops of one image: the CPU stages, no network."""
    faces = mesher.detect(image.rgb)
    size = (image.height, image.width)
    if not faces and options.assume_aligned:
        face = canonical_face(size)
        crop = align(image.rgb, face, options.crop_size)
        return Prepared(image.path, size, image.is_gray, [face], [None], [crop], image, Status.OK,
                        "no face found by the mesh; the canonical aligned-crop layout was assumed", fallback=True)
    if not faces:
        return Prepared(image.path, size, image.is_gray, [], [], [], image, Status.NO_FACE, "no face found")
    scores = mesher.scores(image.rgb, faces) if options.detector_scores else [None] * len(faces)
    crops = [align(image.rgb, f, options.crop_size) for f in faces]
    return Prepared(image.path, size, image.is_gray, faces, scores, crops, image)


def canonical_face(size: tuple[int, int]) -> Face:
    """The mean mesh of aligned training crops (occparse/assets), stretched to an image of ``size``.

    For aligned face crops like the challenge's, where a heavy occluder can defeat the mesh: the
    face is where aligned faces always are."""
    from importlib import resources

    with resources.files("occparse.assets").joinpath("canonical_face_224.npy").open("rb") as f:
        mean = np.load(f)
    h, w = size
    return Face((mean * np.array([w / CANONICAL_SIZE, h / CANONICAL_SIZE], np.float32)).astype(np.float32), (h, w))


def prepare_path(mesher: FaceMesher, path: str | Path, options: EstimatorOptions) -> Prepared:
    """Read and prepare; bad input becomes a Prepared with its status, never an exception."""
    p = Path(path)
    if not p.exists():
        return failed(str(p), Status.MISSING, "no such file")
    try:
        image = read_image(p)
    except ImageInputError as e:
        return failed(str(p), _status_of(e), e.detail)
    return prepare_image(mesher, image, options)


def face_features(g: GeometricOcclusion, regressor: float, is_gray: bool, mesh_fallback: bool) -> FaceFeatures:
    """The stacker's inputs, from what the pipeline computed for one face."""
    return FaceFeatures(
        geometric=g.overall, geometric_soft=g.soft, regions=tuple(r.fraction for r in g.regions),
        share_hair=g.occluded_by.hair, share_occluder=g.occluded_by.occluder, share_background=g.occluded_by.background,
        regressor=regressor, is_gray=is_gray, mesh_fallback=mesh_fallback, parser_confidence=g.parser_confidence,
    )


def _status_of(e: ImageInputError) -> Status:
    try:
        return Status(e.status)
    except ValueError:
        return Status.INPUT_ERROR


class Estimator:
    """Loads the mesh and the parser once; ``estimate(path)`` -> :class:`ImageResult`.

    Like insightface's ``FaceAnalysis``: one object, ``analyze`` for everything (including what
    the picture needs), ``estimate`` for just the numbers.
    """

    def __init__(self, options: EstimatorOptions | None = None):
        from .weights import parser_model, resolve_precision

        self.options = options or EstimatorOptions()
        o = self.options
        self.precision = resolve_precision(o.precision, o.providers)
        path, spec = parser_model(o.parser, o.parser_spec, self.precision)
        self.parser = FaceParser(path, spec, providers=list(o.providers) if o.providers else None, threads=o.threads,
                                 spin=o.spin, flip=o.parser_flip)
        self.mesher = FaceMesher(max_faces=o.max_faces)
        self.regressors = None
        self.stacker = None
        if o.use_learned:
            self._load_learned(o)

    def _load_learned(self, o: EstimatorOptions) -> None:
        """Regressors and stacker: the user's paths, else the shipped ones when they exist."""
        from .regression import Regressors, RegressorSpec
        from .stacking import load_stacker
        from .weights import manifest, shipped, shipped_variant

        have = manifest()
        prec = "int8" if self.precision == "int8" and "regressor_color_int8" in have else "fp32"
        color = o.regressor_color or (shipped_variant("regressor_color", prec).path if "regressor_color" in have else None)
        gray = o.regressor_gray or (shipped_variant("regressor_gray", prec).path if "regressor_gray" in have else None)
        if color:
            providers = list(o.providers) if o.providers else None
            size = have["regressor_color"].spec.get("input_size", 112) if "regressor_color" in have else 112
            self.regressors = Regressors(color, gray, RegressorSpec(input_size=size), providers=providers, threads=o.threads,
                                         spin=o.spin)
        if not o.use_stacker:
            return
        stacker = o.stacker or (shipped("stacker").path if "stacker" in have else None)
        if stacker and self.regressors is not None:
            self.stacker = load_stacker(stacker)

    def prepare(self, image: LoadedImage) -> Prepared:
        """The per-image CPU stages: mesh, detector scores, aligned crops (what batch workers run)."""
        return prepare_image(self.mesher, image, self.options)

    def finish(self, batch: list[Prepared]) -> list[ImageAnalysis]:
        """The network stages for many images at once: one parser, one regressor and one stacker call per batch."""
        items = [(prep, f, c, sc) for prep in batch for f, c, sc in zip(prep.faces, prep.crops, prep.scores, strict=True)]
        crops = [c.image for _, _, c, _ in items]
        parses = self.parser.parse(crops) if crops else []
        reg = self.regressors.predict(crops)[0] if self.regressors is not None and crops else None
        geos = [geometric_occlusion(c, p, prep.size) for (prep, _, c, _), p in zip(items, parses, strict=True)]
        finals = [g.overall for g in geos]
        if reg is not None and self.stacker is not None and items:
            X = np.stack([
                face_features(g, float(r), prep.is_gray, prep.fallback).vector()
                for (prep, f, _, _), g, r in zip(items, geos, reg, strict=True)
            ])
            finals = [float(v) for v in self.stacker.predict(X)]
        faces = iter(
            self._face(prep, f, c, p, sc, g, finals[k], None if reg is None else float(reg[k]))
            for k, ((prep, f, c, sc), p, g) in enumerate(zip(items, parses, geos, strict=True))
        )
        out = []
        for prep in batch:
            base = ImageResult(prep.path, prep.status, prep.message, width=prep.size[1], height=prep.size[0])
            mine = [next(faces) for _ in prep.faces]
            base.faces = [a.result for a in mine]
            out.append(ImageAnalysis(prep.image, base, mine, prep.fallback))
        return out

    @staticmethod
    def _face(prep: Prepared, f: Face, c: AlignedCrop, p: ParseResult, sc: float | None, g: GeometricOcclusion,
              final: float, r: float | None) -> FaceAnalysis:
        x0, y0, x1, y1 = f.box
        unc = None if r is None else float(max(final, g.overall, r) - min(final, g.overall, r))
        res = FaceResult(
            occlusion=float(np.clip(final, 0, 1)), geometric=g.overall, regions=g.regions,
            occluded_by=g.occluded_by, box=(x0, y0, x1, y1), landmark_confidence=sc,
            parser_confidence=g.parser_confidence, is_gray=prep.is_gray, face_size=float(y1 - y0),
            regressor=r, uncertainty=unc,
        )
        return FaceAnalysis(f, c, p, g, res)

    def analyze_loaded(self, image: LoadedImage) -> ImageAnalysis:
        return self.finish([self.prepare(image)])[0]

    def analyze(self, path: str | Path) -> ImageAnalysis:
        """Never raises for bad input: the status says what went wrong."""
        try:
            image = read_image(path)
        except ImageInputError as e:
            return ImageAnalysis(None, ImageResult(str(path), _status_of(e), e.detail))
        return self.analyze_loaded(image)

    def estimate(self, path: str | Path) -> ImageResult:
        return self.analyze(path).result
