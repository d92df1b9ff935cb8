"""The app object: loads the models once and turns images into typed results.

Stages: read -> mesh -> aligned crop -> parser -> back to the original geometry. Each stage
runs once per image; later stages (geometric occlusion, regressors, stacker) reuse the crop
and the parse held in :class:`FaceParse`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .geometry import CANONICAL_SIZE, AlignedCrop, Face, FaceMesher, align
from .io import LoadedImage, read_image
from .parsing import FaceParser, ParseResult, ParserSpec


@dataclass(frozen=True)
class FaceParse:
    """One face: its mesh, its aligned crop, and the parser's labels in crop and original geometry."""

    face: Face
    crop: AlignedCrop
    parse: ParseResult
    labels_original: np.ndarray  # H x W uint8 in the original image, 0 outside the crop


@dataclass(frozen=True)
class ImageParse:
    """Every face of one image (largest first); empty ``faces`` when none was found."""

    image: LoadedImage
    faces: list[FaceParse] = field(default_factory=list)

    def label_map(self) -> np.ndarray:
        """All faces' labels in one map; where crops overlap, the larger face wins."""
        out = np.zeros((self.image.height, self.image.width), np.uint8)
        filled = np.zeros_like(out, dtype=bool)
        for f in self.faces:
            inside = self._crop_footprint(f) & ~filled
            out[inside] = f.labels_original[inside]
            filled |= inside
        return out

    def _crop_footprint(self, f: FaceParse) -> np.ndarray:
        ones = np.ones((f.crop.image.shape[0], f.crop.image.shape[1]), np.uint8)
        return f.crop.to_original(ones, (self.image.height, self.image.width)).astype(bool)


class Parser:
    """Mesh + face parser, loaded once. ``parse(path)`` -> :class:`ImageParse`."""

    def __init__(self, parser_path: str | Path | None = None, parser_spec: str | None = None, max_faces: int = 4,
                 providers: list[str] | None = None, threads: int = 0, crop_size: int = CANONICAL_SIZE):
        from .weights import parser_model

        path, spec = parser_model(parser_path, parser_spec)
        self.spec: ParserSpec = spec
        self.parser = FaceParser(path, spec, providers=providers, threads=threads)
        self.mesher = FaceMesher(max_faces=max_faces)
        self.crop_size = crop_size

    def parse_loaded(self, image: LoadedImage) -> ImageParse:
        faces = self.mesher.detect(image.rgb)
        if not faces:
            return ImageParse(image, [])
        crops = [align(image.rgb, f, self.crop_size) for f in faces]
        results = self.parser.parse([c.image for c in crops])
        out = []
        for f, c, r in zip(faces, crops, results, strict=True):
            back = c.to_original(r.labels, (image.height, image.width))
            out.append(FaceParse(f, c, r, back))
        return ImageParse(image, out)

    def parse(self, path: str | Path) -> ImageParse:
        return self.parse_loaded(read_image(path))
