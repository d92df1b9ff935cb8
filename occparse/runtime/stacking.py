"""The stacker: one feature vector per face, and a small scikit-learn model that fuses them.

The file is a pickle of a :class:`StackerBundle`, which records the scikit-learn version it was
fitted with; loading under another version is refused with a clear message, because a pickled
scikit-learn model is only guaranteed to behave the same under the version that wrote it.
Only load stacker files you trust (shipped ones are checksum-pinned in weights/manifest.json).
"""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import VersionError
from .geometry import REGION_NAMES

#: No face size: the fit set is aligned crops, whose face size hardly varies, so the model could
#: not learn its effect and would extrapolate arbitrarily on real photos (it did, on LFW val).
FEATURES: tuple[str, ...] = (
    "geometric", "geometric_soft", *(f"region_{n}" for n in REGION_NAMES),
    "share_hair", "share_occluder", "share_background", "share_facial_hair", "regressor", "is_gray",
    "mesh_fallback", "parser_confidence",
)


class StackerVersionError(VersionError, RuntimeError):
    """The stacker file was written by another scikit-learn version."""


@dataclass(frozen=True)
class FaceFeatures:
    """The stacker's inputs for one face."""

    geometric: float
    geometric_soft: float
    regions: tuple[float, ...]  # in REGION_NAMES order; NaN for a region outside the photo
    share_hair: float
    share_occluder: float
    share_background: float
    share_facial_hair: float
    regressor: float
    is_gray: bool
    mesh_fallback: bool  # canonical layout used because the mesh found nothing (--assume-aligned)
    parser_confidence: float

    def vector(self, names: tuple[str, ...] = FEATURES) -> np.ndarray:
        """float64 vector of the named features (default: all of :data:`FEATURES`, in that order).

        A stacker fitted on fewer features (an older file) passes its own list."""
        regions = [0.0 if math.isnan(r) else r for r in self.regions]
        values = dict(zip(FEATURES, [
            self.geometric, self.geometric_soft, *regions, self.share_hair, self.share_occluder,
            self.share_background, self.share_facial_hair, self.regressor, float(self.is_gray),
            float(self.mesh_fallback), self.parser_confidence,
        ], strict=True))
        return np.array([values[n] for n in names], np.float64)


@dataclass
class StackerBundle:
    model: object
    sklearn_version: str
    features: tuple[str, ...] = FEATURES
    metrics: dict = field(default_factory=dict)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.clip(self.model.predict(np.atleast_2d(X)), 0.0, 1.0)


HEADER_FORMAT = "occparse-stacker/1"


def save_stacker(bundle: StackerBundle, path: str | Path) -> None:
    """A header of plain Python values first (readable under any version), then the bundle."""
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    header = {"format": HEADER_FORMAT, "sklearn_version": bundle.sklearn_version, "features": list(bundle.features)}
    with open(tmp, "wb") as f:
        pickle.dump(header, f, protocol=5)
        pickle.dump(bundle, f, protocol=5)
    tmp.replace(path)


def load_stacker(path: str | Path) -> StackerBundle:
    import sklearn

    with open(path, "rb") as f:
        header = pickle.load(f)  # noqa: S301 (trusted, checksum-pinned file)
        if not isinstance(header, dict) or header.get("format") != HEADER_FORMAT:
            raise StackerVersionError(f"{path} is not an occparse stacker file")
        if header["sklearn_version"] != sklearn.__version__:
            raise StackerVersionError(
                f"{path} was fitted with scikit-learn {header['sklearn_version']}, this is {sklearn.__version__}: "
                f"install scikit-learn=={header['sklearn_version']} or refit with `occparse fit-stacker`"
            )
        if unknown := set(header["features"]) - set(FEATURES):
            raise StackerVersionError(f"{path} expects features this occparse does not compute ({sorted(unknown)}); "
                                      "refit with `occparse fit-stacker`")
        bundle = pickle.load(f)  # noqa: S301
    return bundle
