"""The face parser on ONNX Runtime: preprocessing, batching, label maps, class mappings.

The parser labels every pixel of an aligned face crop with occparse's classes
(:mod:`occparse.labels`): 0 background, 1 visible face (skin and features), 2 hair, 3 occluder,
4 facial hair. occparse ships its own BiSeNet (``weights/parser.onnx``), and
also accepts a user's 19-class CelebAMask-HQ BiSeNet export through a label mapping.

:func:`preprocess` is the single definition of the network input that training uses too, so
the runtime cannot drift from what the model learned. This module imports no torch.
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from ..labels import BACKGROUND, CLASSES, FACE, FACIAL_HAIR, HAIR, N_CLASSES, OCCLUDER, colorize
from .session import fixed_input_side, make_session

__all__ = ["BACKGROUND", "CLASSES", "FACE", "FACIAL_HAIR", "HAIR", "N_CLASSES", "OCCLUDER", "colorize"]

#: CelebAMask-HQ's 19 classes (face-parsing.PyTorch order) mapped onto occparse's classes.
#: Eyeglasses count as occluder, hats as occluder, ears/neck/cloth as background
#: (they are outside the face region anyway). CelebAMask-HQ has no beard class: its parsers
#: label beards as skin or hair, so facial hair reads as face or hair with such a model.
CELEBAMASK_19_TO_4 = (
    BACKGROUND,  # 0 background
    FACE,  # 1 skin
    FACE, FACE,  # 2 l_brow, 3 r_brow
    FACE, FACE,  # 4 l_eye, 5 r_eye
    OCCLUDER,  # 6 eye_g (eyeglasses)
    BACKGROUND, BACKGROUND, BACKGROUND,  # 7 l_ear, 8 r_ear, 9 ear_r (earring)
    FACE,  # 10 nose
    FACE, FACE, FACE,  # 11 mouth, 12 u_lip, 13 l_lip
    BACKGROUND, BACKGROUND, BACKGROUND,  # 14 neck, 15 neck_l, 16 cloth
    HAIR,  # 17 hair
    OCCLUDER,  # 18 hat
)


@dataclass(frozen=True)
class ParserSpec:
    """How a parser model wants its input and what its output classes mean."""

    input_size: int = 128
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # on 0..1 RGB
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    #: output class index -> occparse class (0..4); identity for occparse's own model. A four-class
    #: map (0, 1, 2, 3) is a model without the facial-hair class (occparse's before it had one).
    class_map: tuple[int, ...] = (0, 1, 2, 3, 4)
    name: str = "occparse-bisenet"
    #: the labels are the argmax with the facial-hair probability multiplied by this (1: plain argmax);
    #: a calibration of a model that under-calls a thin, low-contrast class (weights/parser.md). The
    #: probabilities themselves are left as the model gives them.
    facial_hair_weight: float = 1.0

    def __post_init__(self):
        w = self.facial_hair_weight
        if isinstance(w, bool) or not isinstance(w, numbers.Real) or not (np.isfinite(w) and w > 0):
            raise ValueError(f"facial_hair_weight must be a finite number above 0, not {w!r}")
        object.__setattr__(self, "facial_hair_weight", float(w))

    @staticmethod
    def celebamask19() -> ParserSpec:
        """The common face-parsing.PyTorch export: 512 x 512 input, ImageNet mean/std, 19 classes."""
        return ParserSpec(512, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), CELEBAMASK_19_TO_4, "celebamask-hq-19")

    @staticmethod
    def from_json(path: str | Path) -> ParserSpec:
        """Read a spec file: {"input_size": 512, "mean": [...], "std": [...], "class_map": [...]}."""
        d = json.loads(Path(path).read_text())
        if d.get("preset") == "celebamask19":
            return ParserSpec.celebamask19()
        class_map = tuple(int(c) for c in d["class_map"])
        if any(c not in range(N_CLASSES) for c in class_map):
            raise ValueError(f"{path}: class_map entries must be occparse classes 0..{N_CLASSES - 1}")
        w = d.get("facial_hair_weight", 1.0)
        if isinstance(w, bool) or not isinstance(w, numbers.Real):
            raise ValueError(f"{path}: facial_hair_weight must be a number above 0, not {w!r}")
        return ParserSpec(int(d["input_size"]), tuple(d["mean"]), tuple(d["std"]), class_map, d.get("name", Path(path).stem),
                          w)


def normalize_crops(crops, size: int, mean, std) -> np.ndarray:
    """uint8 RGB crops (N x H x W x 3 or a list) -> float32 N x 3 x size x size, (x/255 - mean) / std."""
    batch = np.empty((len(crops), 3, size, size), np.float32)
    m = np.array(mean, np.float32).reshape(3, 1, 1)
    s = np.array(std, np.float32).reshape(3, 1, 1)
    for i, c in enumerate(crops):
        if c.shape[0] != size or c.shape[1] != size:
            c = cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA if c.shape[0] > size else cv2.INTER_LINEAR)
        # the same float32 arithmetic as (c / 255 - mean) / std, written in place: no temporaries
        out = batch[i]
        np.divide(c.transpose(2, 0, 1), np.float32(255.0), out=out, dtype=np.float32)
        out -= m
        out /= s
    return batch


def preprocess(crops: np.ndarray | list[np.ndarray], spec: ParserSpec) -> np.ndarray:
    """The parser's input. Shared by training and inference: change it and the shipped model no longer matches."""
    return normalize_crops(crops, spec.input_size, spec.mean, spec.std)


def softmax(logits: np.ndarray, axis: int = 1) -> np.ndarray:
    """Probabilities along ``axis``; computed in one new array, in place (the same values, fewer copies)."""
    e = logits - logits.max(axis=axis, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=axis, keepdims=True)
    return e


def argmax_classes(probs: np.ndarray, top: np.ndarray | None = None) -> np.ndarray:
    """``probs.argmax(0).astype(uint8)`` for a C x H x W array, the same labels (ties go to the lower
    class) in about a third of the time: numpy's argmax along a short axis is slow, max is not.
    ``top``: ``probs.max(0)`` when the caller has it already."""
    top = probs.max(axis=0) if top is None else top
    labels = np.full(probs.shape[1:], probs.shape[0] - 1, np.uint8)
    for c in range(probs.shape[0] - 2, -1, -1):  # downwards, so the lowest class equal to the max wins
        np.putmask(labels, probs[c] == top, c)
    nan = np.isnan(top)
    if nan.any():  # as argmax: the first NaN class wins
        labels[nan] = np.isnan(probs[:, nan]).argmax(axis=0)
    return labels


def weighted_labels(probs: np.ndarray, facial_hair_weight: float = 1.0, top: np.ndarray | None = None) -> np.ndarray:
    """H x W uint8 labels of 5 x H x W occparse probabilities: the argmax with the facial-hair probability
    multiplied by ``facial_hair_weight`` (``top``: ``probs.max(0)``, used when the weight is 1)."""
    if facial_hair_weight == 1.0:
        return argmax_classes(probs, top)
    weighted = probs.copy()
    weighted[FACIAL_HAIR] *= facial_hair_weight
    return argmax_classes(weighted)


@dataclass(frozen=True)
class ParseResult:
    """Parser output for one crop, at the crop's own resolution."""

    labels: np.ndarray  # H x W uint8, occparse classes 0..4 (occparse.labels)
    probs: np.ndarray  # 5 x H x W float32, occparse class probabilities (facial hair 0 for a model without it)
    top: np.ndarray | None = field(default=None, repr=False)  # probs.max(0), when the parser computed it already

    @property
    def confidence(self) -> np.ndarray:
        """Top-class probability per pixel (H x W float32): the largest of the model's probabilities,
        before any ``facial_hair_weight`` (so with a weight it may be another class's than the label's)."""
        return self.probs.max(axis=0) if self.top is None else self.top


@dataclass
class FaceParser:
    """Runs a parser ONNX model on aligned crops, in batches."""

    model_path: Path
    spec: ParserSpec = field(default_factory=ParserSpec)
    providers: list[str] | None = None
    threads: int = 0
    batch_size: int = 32
    spin: bool = True  # see make_session
    #: also parse the mirrored crop and average the two (test-time augmentation): about +0.005 mean
    #: IoU on LFW val for twice the parser time. Valid because occparse's classes have no left/right.
    flip: bool = False

    def __post_init__(self):
        self.model_path = Path(self.model_path)
        if not self.model_path.is_file():
            raise FileNotFoundError(f"parser model not found: {self.model_path}")
        self.session = make_session(self.model_path, self.providers, self.threads, self.spin)
        self.input_name = self.session.get_inputs()[0].name
        side = fixed_input_side(self.session)
        if side is not None and side != self.spec.input_size:  # a fixed input side wins over the spec's
            self.spec = replace(self.spec, input_size=side)
        out_shape = self.session.get_outputs()[0].shape
        n_out = out_shape[1] if len(out_shape) == 4 and isinstance(out_shape[1], int) else None
        if n_out is not None and n_out != len(self.spec.class_map):
            raise ValueError(
                f"{self.model_path.name} outputs {n_out} classes but the spec maps {len(self.spec.class_map)}; "
                "give a matching label mapping (e.g. --parser-spec celebamask19)"
            )

    def _map_probs(self, probs: np.ndarray) -> np.ndarray:
        """N x C x H x W model probabilities -> N x 5 x H x W occparse probabilities."""
        if self.spec.class_map == tuple(range(N_CLASSES)):
            return probs
        out = np.zeros((probs.shape[0], N_CLASSES) + probs.shape[2:], np.float32)
        for src, dst in enumerate(self.spec.class_map):
            out[:, dst] += probs[:, src]
        return out

    def _labels(self, p: np.ndarray, top: np.ndarray) -> np.ndarray:
        return weighted_labels(p, self.spec.facial_hair_weight, top)

    def parse(self, crops: list[np.ndarray]) -> list[ParseResult]:
        """Label each uint8 RGB crop; results come back at each crop's resolution."""
        results: list[ParseResult] = []
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start : start + self.batch_size]
            x = preprocess(chunk, self.spec)
            if self.flip:
                x = np.concatenate([x, x[..., ::-1]])
            logits = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
            probs = self._map_probs(softmax(logits.astype(np.float32)))
            if self.flip:  # mapped to occparse's classes first, so a model with left/right classes is fine too
                n = len(chunk)
                probs = 0.5 * (probs[:n] + probs[n:, :, :, ::-1])
            for c, p in zip(chunk, probs, strict=True):
                h, w = c.shape[:2]
                if p.shape[1:] != (h, w):
                    p = cv2.resize(p.transpose(1, 2, 0), (w, h), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
                p = np.ascontiguousarray(p, dtype=np.float32)
                top = p.max(axis=0)  # the labels and the confidence both need it: computed once
                results.append(ParseResult(labels=self._labels(p, top), probs=p, top=top))
        return results


def iou_per_class(pred: np.ndarray, truth: np.ndarray, classes: int = N_CLASSES, ignore: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """Intersection and union counts per class (sum them over a dataset before dividing)."""
    valid = truth != ignore
    inter = np.zeros(classes, np.int64)
    union = np.zeros(classes, np.int64)
    for c in range(classes):
        p = (pred == c) & valid
        t = (truth == c) & valid
        inter[c] = int((p & t).sum())
        union[c] = int((p | t).sum())
    return inter, union
