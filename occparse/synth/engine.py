"""The synthetic occlusion engine: real faces + occluders -> aligned crops with exact ground truth.

Ground truth follows ../shared/data/README.md: R is the face oval of the *unoccluded* base
image, V is the base image's visible face (LFW: skin label; UTKFace: R itself, since it has
no pixel labels) minus every pixel a pasted occluder covers (alpha >= 0.5), and
occlusion = 1 - |V ∩ R| / |R|, all at the base image's own resolution. The picture and the
label map are then warped to the canonical 224 x 224 crop.

Label maps (for parser training, values in :mod:`occparse.labels`): 0 background, 1 visible
face, 2 hair, 3 occluder, 4 facial hair, and 255 "unknown" where the truth is not known
(UTKFace pixels outside R, and a UTKFace man's facial-hair zone, since UTKFace has no pixel
labels to say whether he has a beard; pixels mirrored in from outside the base image; the regions of
an LFW label map that the committed label audit found to contradict the definition, e.g. a moustache
labelled skin: :func:`occparse.synth.sources.ignore_contradictions`).
LFW's hair label becomes facial hair by :func:`occparse.labels.split_facial_hair`. Truth is
unchanged by that split: facial hair occludes, like all hair.

Two occlusion distributions: ``SynthConfig.first_engine()`` (the default; the benchmark split
keeps it, so its numbers stay comparable across sessions) and ``SynthConfig.real()``, which
adds the occluders of real photos (beards, hands aimed at the mouth and eyes, hair of every
colour; see :mod:`occparse.synth.real_occluders`) and look-alikes that must stay face.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..labels import BACKGROUND, IGNORE, facial_hair_zone, split_facial_hair
from ..runtime.align import CANONICAL_SIZE, align
from ..runtime.io import to_gray3
from ..runtime.mesh import Face
from ..runtime.regions import crown_band, face_region, face_regions
from . import occluders as occ
from .compose import camera_finish, composite, harmonise_layer
from .real_occluders import (
    BeardDonors,
    beard_layer,
    goggles_layer,
    hat_layer,
    held_object_layer,
    paint_layer,
    shadow_layer,
    sunglasses_layer,
)
from .sources import (
    BaseFace,
    FaceSource,
    OccluderLibrary,
    find_data_root,
    ignore_contradictions,
    lfw_label_audit_of,
    read_label_map,
    read_rgb,
)

KINDS = ("hand", "object", "hair", "glasses", "sunglasses", "cap", "mask", "scarf", "beard", "goggles", "hat",
         "held_object")
#: look-alikes that change the picture but not the truth (``SynthConfig.negative_rate``)
NEGATIVE_KINDS = ("paint", "shadow")


@dataclass(frozen=True)
class SynthConfig:
    """The occlusion distribution and output options.

    The defaults resemble the challenge's distribution (mean about 0.09, median about 0.05,
    a quarter near zero, a tail to about 0.7); ``occparse synth --out`` prints the distribution it wrote.
    """

    none_rate: float = 0.35  # share of samples with no pasted occluder
    second_rate: float = 0.08  # share of occluded samples that get a second occluder
    weights: tuple[tuple[str, float], ...] = (
        ("hand", 0.22), ("object", 0.22), ("hair", 0.2), ("glasses", 0.1), ("sunglasses", 0.06),
        ("cap", 0.07), ("mask", 0.06), ("scarf", 0.05),
    )
    gray_rate: float = 0.15
    size: int = CANONICAL_SIZE
    #: the real-occluder engine's options: hands aimed at mouth/eyes, recoloured hair, beards
    real_occluders: bool = False
    negative_rate: float = 0.0  # share of samples that also get a look-alike (paint or a shadow)

    @staticmethod
    def first_engine(**kw) -> SynthConfig:
        """The first engine's distribution (the benchmark split's; byte-identical samples)."""
        return SynthConfig(**kw)

    @staticmethod
    def real(**kw) -> SynthConfig:
        """The real-photo distribution: more beards, hands over mouth and eyes, hair of every colour,
        and look-alikes (paint, tattoos, make-up, hard shadows) in a fifth of the samples."""
        weights = (
            ("hand", 0.18), ("object", 0.1), ("hair", 0.17), ("glasses", 0.06), ("sunglasses", 0.06),
            ("cap", 0.05), ("mask", 0.06), ("scarf", 0.05), ("beard", 0.12), ("goggles", 0.04), ("hat", 0.05),
            ("held_object", 0.06),
        )
        return SynthConfig(**{"weights": weights, "real_occluders": True, "negative_rate": 0.2, **kw})

    def with_kind_weights(self, changes: dict[str, float]) -> SynthConfig:
        """A copy with some kinds' relative weights replaced (a kind not drawn before is added).

        Raises ValueError for an unknown kind, a weight that is not finite and >= 0, or all weights 0."""
        weights = dict(self.weights)
        for kind, w in changes.items():
            if kind not in KINDS:
                raise ValueError(f"unknown occluder kind {kind!r}; choose from {', '.join(KINDS)}")
            if not (np.isfinite(w) and w >= 0):
                raise ValueError(f"the weight of {kind} must be a finite number >= 0, not {w}")
            if kind == "beard" and not self.real_occluders:
                raise ValueError("beard is a kind of the real engine only (--engine real)")
            weights[kind] = float(w)
        if sum(weights.values()) <= 0:
            raise ValueError("at least one kind needs a weight above 0")
        return replace(self, weights=tuple(weights.items()))

    def kind_probabilities(self) -> tuple[list[str], np.ndarray]:
        names = [k for k, _ in self.weights]
        p = np.array([w for _, w in self.weights], np.float64)
        return names, p / p.sum()


@dataclass
class Sample:
    """One synthetic sample: the crop, its labels and its exact ground truth."""

    image: np.ndarray  # size x size x 3 uint8 RGB (three equal channels when gray)
    labels: np.ndarray  # size x size uint8: 0 bg, 1 face, 2 hair, 3 occluder, 255 unknown
    occlusion: float
    gender: str
    is_gray: bool
    kinds: tuple[str, ...]
    source: str
    base_name: str
    face: Face  # landmarks in crop coordinates
    region_occlusion: dict[str, float] = field(default_factory=dict)
    # at the base image's geometry, for checking the ground truth
    base_region: np.ndarray | None = None
    base_visible: np.ndarray | None = None


def _label_map(base: BaseFace, labels: np.ndarray | None) -> np.ndarray:
    """``labels`` when the caller has read the base's label map already, else the map read from its file."""
    return read_label_map(base.label_path) if labels is None else labels


def base_visible(base: BaseFace, region: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """V of the unoccluded base image: LFW skin label, or R itself for UTKFace. ``labels``: the base's label
    map when the caller has read it already (None: read here)."""
    if base.label_path is not None:
        return _label_map(base, labels) == 1
    return region.copy()


def truth_face(base: BaseFace, labels: np.ndarray | None = None) -> Face:
    """The face whose R a truth uses: ``base.face``, marked ``crown_covered`` where the base photo's own
    label map shows a cap or hat over the top of the face, as the runtime marks a face from the parser's
    labels (:func:`occparse.runtime.regions.crown_band`; LFW Part Labels draw headwear as background, so
    background is what covers here). The mesh's oval is pulled in under a brim; without this the truth's R
    would stop at the brim while occparse's reaches the mean face's outline. Faces without a label map
    (UTKFace) are returned as they are. The label map must be in the photo's pixel frame (LFW's are).
    Computed once per base face (kept on it: the engine asks for every sample). ``labels``: the base's label
    map when the caller has read it already (None: read here). Raises
    :class:`~occparse.synth.sources.DataNotFoundError` when the label map cannot be read."""
    cached = base.__dict__.get("_truth_face")
    if cached is not None:
        return cached
    face = base.face
    if base.label_path is not None and crown_band(face, _label_map(base, labels), BACKGROUND) is not None:
        face = replace(face, crown_covered=True)
    object.__setattr__(base, "_truth_face", face)  # BaseFace is frozen; this is a cache, not a field
    return face


def base_labels(base: BaseFace, region: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Label map of the unoccluded base image (values of :mod:`occparse.labels`). ``labels``: the base's
    label map as read from its file, when the caller has it already (None: read here; not changed)."""
    if base.label_path is not None:
        lab = split_facial_hair(_label_map(base, labels), base.face, base.gender)
        if base.source == "lfw" and (bad := lfw_label_audit_of(base.name)):
            # the audited regions contradict the definition (a beard labelled skin, ...): never learnt from
            lab = ignore_contradictions(lab, base.face, bad)
        return lab
    lab = np.full(region.shape, IGNORE, np.uint8)
    lab[region] = 1
    if base.gender.upper().startswith("M"):  # a beard or not: UTKFace cannot say
        lab[region & facial_hair_zone(base.face, region.shape)] = IGNORE
    return lab


def occlusion_of(region: np.ndarray, visible: np.ndarray) -> float:
    """1 - |V ∩ R| / |R|; an empty R (face outside the image) counts as fully occluded."""
    n = int(region.sum())
    return 1.0 - float((visible & region).sum()) / n if n else 1.0


class Synthesizer:
    """Makes samples for one split (``bench`` or ``train``); deterministic given a seed."""

    def __init__(self, data_root: str | Path | None = None, split: str = "train", config: SynthConfig | None = None,
                 sources: tuple[str, ...] = ("lfw", "utkface"), limit: int | None = None, show_progress: bool = True):
        root = find_data_root(data_root)
        self.config = config or SynthConfig()
        self.faces = FaceSource(root, split, sources, limit=limit, show_progress=show_progress)
        donor_src = self.faces if "lfw" in sources else FaceSource(root, split, ("lfw",), limit=limit,
                                                                   show_progress=show_progress)
        self.donors = donor_src.of("lfw")
        self.texture_pool = self.faces.of("utkface") or self.faces.faces
        self.lib = OccluderLibrary(root, split)
        self.beards = BeardDonors(self.donors)
        if not self.faces.faces:
            raise ValueError(f"no usable base faces for split {split!r} in {root}")

    def _layer(self, kind: str, base: BaseFace, base_rgb: np.ndarray, rng: np.random.Generator,
               mask_template: str | None = None) -> occ.Layer:
        shape = base_rgb.shape[:2]
        real = self.config.real_occluders
        if kind == "hand":
            return occ.hand_layer(base, shape, self.lib, rng, aim=real)
        if kind == "object":
            return occ.object_layer(base, shape, self.lib, self.texture_pool, rng)
        if kind == "hair":
            return occ.hair_layer(base, shape, self.donors, rng, real=real)
        if kind == "beard":
            return beard_layer(base, shape, self.beards, rng)
        if kind == "paint":
            return paint_layer(base, shape, rng)
        if kind == "goggles":
            return goggles_layer(base, shape, rng)
        if kind == "hat":
            return hat_layer(base, shape, rng)
        if kind == "held_object":
            return held_object_layer(base, shape, self.lib, rng)
        if kind == "sunglasses" and real and rng.random() < 2 / 3:
            return sunglasses_layer(base, base_rgb, shape, rng)  # many shapes; the library has one cut-out
        if kind in ("glasses", "sunglasses"):
            return occ.glasses_layer(base, shape, self.lib, rng, sun=kind == "sunglasses")
        if kind == "cap":
            return occ.cap_layer(base, shape, self.lib, rng)
        if kind == "mask":
            return occ.mask_layer(base, shape, self.lib, rng, mask_template, neutral_rate=0.3 if real else 0.0)
        if kind == "scarf":
            return occ.scarf_layer(base, shape, self.lib, self.texture_pool, rng)
        raise ValueError(f"unknown occluder kind {kind!r}; choose from {KINDS + NEGATIVE_KINDS}")

    def choose_kinds(self, rng: np.random.Generator) -> tuple[str, ...]:
        if rng.random() < self.config.none_rate:
            return ()
        names, p = self.config.kind_probabilities()
        n = 2 if rng.random() < self.config.second_rate else 1
        n = min(n, int(np.count_nonzero(p)))  # one kind left by --kind-weight: no second of another
        return tuple(rng.choice(names, size=n, replace=False, p=p).tolist())

    def make(self, base: BaseFace, rng: np.random.Generator, kinds: tuple[str, ...] | None = None,
             gray: bool | None = None, mask_template: str | None = None) -> Sample:
        """One sample on ``base``; ``kinds`` and ``gray`` are drawn from the config unless given;
        ``mask_template`` forces the template of a "mask" occluder (for tests)."""
        drawn = kinds is None
        kinds = self.choose_kinds(rng) if kinds is None else kinds
        gray = bool(rng.random() < self.config.gray_rate) if gray is None else gray
        if drawn and self.config.real_occluders:
            if not base.gender.upper().startswith("M"):  # beards on men only
                kinds = tuple("hair" if k == "beard" else k for k in kinds)
            if rng.random() < self.config.negative_rate:  # a look-alike goes under the occluders
                kinds = (NEGATIVE_KINDS[int(rng.integers(len(NEGATIVE_KINDS)))],) + kinds
        rgb = read_rgb(base.image_path)
        shape = rgb.shape[:2]
        face = truth_face(base)
        region = face_region(face, shape)
        visible = base_visible(base, region)
        labels = base_labels(base, region)
        layers = []
        for k in kinds:
            if k == "shadow":
                layers.append(shadow_layer(base, rgb, rng))
                continue
            layer = self._layer(k, base, rgb, rng, mask_template)
            layers.append(harmonise_layer(layer, rgb, region & visible, rng) if layer.occludes else layer)
        picture = camera_finish(composite(rgb, layers, rng), rng)
        for layer in layers:
            if not layer.occludes:
                continue
            covered = layer.alpha >= 0.5
            visible &= ~covered
            labels[covered] = layer.label
        occlusion = occlusion_of(region, visible)
        regions = face_regions(face, shape)
        per_region = {name: occlusion_of(m, visible) for name, m in regions.parts.items() if m.any()}
        crop = align(picture, face, self.config.size)  # the crop's face keeps the crown flag, so its R is the truth's
        crop_labels = align(labels, face, self.config.size, nearest=True, matrix=crop.matrix, fill=IGNORE).image
        image = to_gray3(crop.image) if gray else crop.image
        return Sample(
            image=image, labels=crop_labels, occlusion=occlusion, gender=base.gender, is_gray=gray,
            kinds=tuple(layer.kind for layer in layers), source=base.source, base_name=base.name, face=crop.face,
            region_occlusion=per_region, base_region=region, base_visible=visible,
        )

    def random_sample(self, seed: int, index: int) -> Sample:
        """Sample ``index`` of an endless stream: random base face, random occluders."""
        rng = np.random.default_rng([seed, index])
        base = self.faces.faces[int(rng.integers(len(self.faces.faces)))]
        return self.make(base, rng)

    def stream(self, seed: int = 0, start: int = 0) -> Iterator[Sample]:
        """Endless variety for training, without storing anything."""
        i = start
        while True:
            yield self.random_sample(seed, i)
            i += 1


@dataclass(frozen=True)
class Task:
    """What one stored sample is made from: a base face, a variant number, forced options."""

    base_index: int
    variant: int
    clean: bool = False  # no pasted occluder (natural occlusion only)


def bench_tasks(synth: Synthesizer, lfw_samples: int = 2000) -> list[Task]:
    """The fixed benchmark: ``lfw_samples`` variants spread over the LFW val faces (each face's
    first variant clean, i.e. natural occlusion only; faces the mesh misses are replaced by extra
    variants of the others), and each benchmark UTKFace face once: 2000 + 1000 = 3000 samples."""
    lfw = [i for i, f in enumerate(synth.faces.faces) if f.source == "lfw"]
    tasks = []
    if lfw:
        per, extra = divmod(lfw_samples, len(lfw))
        for j, i in enumerate(lfw):
            tasks += [Task(i, v, clean=(v == 0)) for v in range(per + (1 if j < extra else 0))]
    tasks += [Task(i, 0) for i, f in enumerate(synth.faces.faces) if f.source != "lfw"]
    return tasks


def run_task(synth: Synthesizer, task: Task, seed: int) -> Sample:
    rng = np.random.default_rng([seed, task.base_index, task.variant])
    base = synth.faces.faces[task.base_index]
    return synth.make(base, rng, kinds=() if task.clean else None)
