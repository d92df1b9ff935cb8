"""ResNet-18 colour/gray occlusion regressors on ONNX Runtime, and the routing between them.

A face crop whose three channels are equal (a grayscale picture, however stored) goes to the
gray model, any other to the colour model: the challenge's gray images behaved differently
enough to deserve their own model. :func:`preprocess` is shared with training. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import is_gray_rgb
from .parsing import normalize_crops
from .session import make_session

KINDS = ("color", "gray")


@dataclass(frozen=True)
class RegressorSpec:
    input_size: int = 112
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


def preprocess(crops: list[np.ndarray], spec: RegressorSpec) -> np.ndarray:
    """uint8 RGB crops -> float32 N x 3 x S x S with ImageNet normalisation (so ImageNet weights fit)."""
    return normalize_crops(crops, spec.input_size, spec.mean, spec.std)


class Regressors:
    """The colour and gray ONNX models; ``predict`` routes each crop by channel equality."""

    def __init__(self, color: str | Path, gray: str | Path | None = None, spec: RegressorSpec | None = None,
                 providers: list[str] | None = None, threads: int = 0, batch_size: int = 64, spin: bool = True):
        self.spec = spec or RegressorSpec()
        self.batch_size = batch_size
        self.paths = {"color": Path(color)}
        if gray is not None:
            self.paths["gray"] = Path(gray)
        for p in self.paths.values():  # a missing file fails now, not at the first gray face
            if not p.is_file():
                raise FileNotFoundError(f"regressor model not found: {p}")
        self._session_args = (providers, threads, spin)
        #: ONNX Runtime sessions, made on first use: a run without gray faces never pays for the gray model
        self.sessions: dict = {}
        self.session("color")  # the model every colour face needs: a broken file fails here

    def session(self, kind: str):
        """The ONNX Runtime session of the ``kind`` model ("color" or "gray"), created on first use."""
        if kind not in self.sessions:
            self.sessions[kind] = make_session(self.paths[kind], *self._session_args)
        return self.sessions[kind]

    def route(self, crop: np.ndarray) -> str:
        return "gray" if "gray" in self.paths and is_gray_rgb(crop) else "color"

    def _run(self, kind: str, crops: list[np.ndarray]) -> np.ndarray:
        sess = self.session(kind)
        name = sess.get_inputs()[0].name
        out = []
        for i in range(0, len(crops), self.batch_size):
            out.append(sess.run(None, {name: preprocess(crops[i : i + self.batch_size], self.spec)})[0].reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def predict(self, crops: list[np.ndarray]) -> tuple[np.ndarray, list[str]]:
        """Occluded fraction per crop (clipped to [0, 1]) and the model each one went to."""
        kinds = [self.route(c) for c in crops]
        pred = np.zeros(len(crops), np.float32)
        for k in set(kinds):
            idx = [i for i, kk in enumerate(kinds) if kk == k]
            pred[idx] = self._run(k, [crops[i] for i in idx])
        return np.clip(pred, 0.0, 1.0), kinds
