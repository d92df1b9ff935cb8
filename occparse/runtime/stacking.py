"""The stacker: one feature vector per face, and a small fitted model that fuses them.

The stacker file is JSON (``occparse-stacker/2``): the feature names, and the fitted model as plain
numbers, evaluated here with numpy alone. ``occparse fit-stacker`` fits it with scikit-learn and
exports it (``occparse.evaluation.stacker_fit.export_model``); inference never imports scikit-learn, so the
file loads under any scikit-learn version (or none), cannot run code when read, and start-up does
not pay scikit-learn's import (about 1 s on the development machine).

Two model kinds:

* ``linear``: ``y = ((x - mean) / scale) @ coef + intercept`` (a standardised ridge);
* ``trees``: ``y = baseline + sum of one leaf value per tree`` (gradient-boosted regression trees:
  at each split, ``x[feature] <= threshold`` goes left, NaN goes where ``missing_left`` says).

Older stacker files (``occparse-stacker/1``: a pickled scikit-learn model) still load when the
scikit-learn version that wrote them is installed; only load those from sources you trust.
"""

from __future__ import annotations

import json
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import VersionError
from .regions import REGION_NAMES

#: No face size: the fit set is aligned crops, whose face size hardly varies, so the model could
#: not learn its effect and would extrapolate arbitrarily on real photos (it did, on LFW val).
FEATURES: tuple[str, ...] = (
    "geometric", "geometric_soft", *(f"region_{n}" for n in REGION_NAMES),
    "share_hair", "share_occluder", "share_background", "share_facial_hair", "regressor", "is_gray",
    "mesh_fallback", "parser_confidence",
)

FORMAT = "occparse-stacker/2"
HEADER_FORMAT = "occparse-stacker/1"  # the older pickle format


class StackerVersionError(VersionError, RuntimeError):
    """The stacker file cannot be read by this occparse (another format, another scikit-learn, unknown features)."""


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


@dataclass(frozen=True, eq=False)  # array fields: no elementwise ==
class LinearModel:
    """A standardised linear model: ``((X - mean) / scale) @ coef + intercept``; arrays of length n_features."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def predict(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.scale) @ self.coef + self.intercept

    def to_dict(self) -> dict:
        return {"kind": "linear", "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": float(self.intercept)}


@dataclass(frozen=True, eq=False)  # array fields: no elementwise ==
class Tree:
    """One regression tree as parallel node arrays (node 0 is the root; a leaf has ``feature == -1``)."""

    feature: np.ndarray  # int64: the split's feature index, -1 at a leaf
    threshold: np.ndarray  # float64: x[feature] <= threshold goes left
    left: np.ndarray  # int64: child node indices (unused at a leaf)
    right: np.ndarray
    missing_left: np.ndarray  # bool: where NaN goes
    value: np.ndarray  # float64: the leaf's output (unused at a split)

    def to_dict(self) -> dict:
        return {k: getattr(self, k).tolist() for k in ("feature", "threshold", "left", "right", "missing_left", "value")}

    @staticmethod
    def from_dict(d: dict) -> Tree:
        # strict JSON writes an infinite threshold as null: it sends every finite value left
        thr = np.array([np.inf if v is None else v for v in d["threshold"]], np.float64)
        return Tree(np.asarray(d["feature"], np.int64), thr,
                    np.asarray(d["left"], np.int64), np.asarray(d["right"], np.int64),
                    np.asarray(d["missing_left"], bool), np.asarray(d["value"], np.float64))


@dataclass(frozen=True, eq=False)  # array fields: no elementwise ==
class TreeEnsemble:
    """Gradient-boosted regression trees: ``baseline + sum(tree(X))``."""

    baseline: float
    trees: tuple[Tree, ...]

    def __post_init__(self):
        # All trees packed into flat arrays and walked together, one tree level per step: a few numpy
        # operations per level instead of per tree and level (300 trees, 64 faces: ~40 ms -> ~2 ms).
        # Leaves point to themselves, so a walk of max-depth steps needs no per-node test.
        feature, threshold, left, right, missing_left, value, roots, depth = [], [], [], [], [], [], [], 0
        offset = 0
        for t in self.trees:
            leaf = t.feature < 0
            idx = np.arange(len(t.feature))
            feature.append(np.where(leaf, 0, t.feature))
            threshold.append(np.where(leaf, np.inf, t.threshold))
            left.append(offset + np.where(leaf, idx, t.left))
            right.append(offset + np.where(leaf, idx, t.right))
            missing_left.append(t.missing_left | leaf)
            value.append(t.value)
            roots.append(offset)
            offset += len(t.feature)
            depth = max(depth, _tree_depth(t))
        cat = (lambda a, dt: np.concatenate(a).astype(dt)) if self.trees else (lambda a, dt: np.zeros(0, dt))
        object.__setattr__(self, "_packed", (
            cat(feature, np.int64), cat(threshold, np.float64), cat(left, np.int64), cat(right, np.int64),
            cat(missing_left, bool), cat(value, np.float64), np.asarray(roots, np.int64), depth))

    def predict(self, X: np.ndarray) -> np.ndarray:
        feature, threshold, left, right, missing_left, value, roots, depth = self._packed
        X = np.ascontiguousarray(np.atleast_2d(X), np.float64)
        out = np.full(len(X), self.baseline, np.float64)
        if not len(roots) or not len(X):
            return out
        n_features = X.shape[1]
        flat_x = X.ravel()
        row_start = (np.arange(len(X)) * n_features)[:, None]
        node = np.broadcast_to(roots, (len(X), len(roots))).copy()
        has_nan = bool(np.isnan(flat_x).any())
        for _ in range(depth):
            x = flat_x.take(row_start + feature.take(node))
            go_left = x <= threshold.take(node)
            if has_nan:
                go_left = np.where(np.isnan(x), missing_left.take(node), go_left)
            node = np.where(go_left, left.take(node), right.take(node))
        return out + value.take(node).sum(axis=1)

    def to_dict(self) -> dict:
        return {"kind": "trees", "baseline": float(self.baseline), "trees": [t.to_dict() for t in self.trees]}


def _tree_depth(t: Tree) -> int:
    """Edges on the longest root-to-leaf path."""
    depth, level = 0, [0]
    while True:
        nxt = [c for n in level if t.feature[n] >= 0 for c in (int(t.left[n]), int(t.right[n]))]
        if not nxt:
            return depth
        depth, level = depth + 1, nxt


def _check_tree(t: Tree, n_features: int) -> None:
    """Refuse a tree that would read the wrong column, leave its own arrays or loop (a damaged file)."""
    n = len(t.feature)
    if n == 0 or any(len(getattr(t, k)) != n for k in ("threshold", "left", "right", "missing_left", "value")):
        raise StackerVersionError("a stacker tree has node arrays of different lengths (or none)")
    split = t.feature >= 0
    idx = np.arange(n)
    if (t.feature[split] >= n_features).any():
        raise StackerVersionError(f"a stacker tree splits on a feature index >= {n_features} features")
    # children point strictly forward (as scikit-learn writes them): in range, and no cycles
    for child in (t.left[split], t.right[split]):
        if ((child <= idx[split]) | (child >= n)).any():
            raise StackerVersionError("a stacker tree has child indices out of order or out of range")
    if (np.isnan(t.threshold[split])).any():
        raise StackerVersionError("a stacker tree has a NaN threshold")


def model_from_dict(d: dict, n_features: int) -> LinearModel | TreeEnsemble:
    """The model of a stacker file for ``n_features`` inputs; :class:`StackerVersionError` for an
    unknown kind or arrays that do not fit (a damaged or hand-edited file)."""
    kind = d.get("kind")
    if kind == "linear":
        m = LinearModel(np.asarray(d["mean"], np.float64), np.asarray(d["scale"], np.float64),
                        np.asarray(d["coef"], np.float64), float(d["intercept"]))
        if not m.mean.shape == m.scale.shape == m.coef.shape == (n_features,):
            raise StackerVersionError(f"a linear stacker needs {n_features} means, scales and coefficients")
        return m
    if kind == "trees":
        trees = tuple(Tree.from_dict(t) for t in d["trees"])
        for t in trees:
            _check_tree(t, n_features)
        return TreeEnsemble(float(d["baseline"]), trees)
    raise StackerVersionError(f"unknown stacker model kind {kind!r}")


@dataclass
class StackerBundle:
    """A fitted stacker: ``predict`` maps an (n, len(features)) float64 array to n estimates in [0, 1].

    ``model`` is a :class:`LinearModel` or :class:`TreeEnsemble` (or, for a legacy pickle file, the
    scikit-learn model itself); ``fitted_with`` records the library versions that fitted it."""

    model: object
    fitted_with: dict = field(default_factory=dict)
    features: tuple[str, ...] = FEATURES
    metrics: dict = field(default_factory=dict)

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, np.float64))
        if X.shape[1] != len(self.features):
            raise ValueError(f"the stacker takes {len(self.features)} features per row, not {X.shape[1]}")
        return np.clip(self.model.predict(X), 0.0, 1.0)


def save_stacker(bundle: StackerBundle, path: str | Path) -> None:
    """Write ``bundle`` as an ``occparse-stacker/2`` JSON file (atomically: a temporary file, then a rename).

    Raises TypeError when the model is not a :class:`LinearModel` / :class:`TreeEnsemble` (export a
    scikit-learn model first with ``occparse.evaluation.stacker_fit.export_model``)."""
    if not isinstance(bundle.model, LinearModel | TreeEnsemble):
        raise TypeError(f"cannot save a {type(bundle.model).__name__}; export it with stacker_fit.export_model first")
    import os
    import tempfile

    from .strictjson import dumps

    if isinstance(bundle.model, TreeEnsemble):
        for t in bundle.model.trees:  # strict JSON writes non-finite as null, read back as +inf
            if (~np.isfinite(t.threshold) & ~np.isposinf(t.threshold)).any():
                raise ValueError("a tree threshold is NaN or -inf; only +inf can be stored")
    path = Path(path)
    doc = {"format": FORMAT, "features": list(bundle.features), "fitted_with": bundle.fitted_with,
           "model": bundle.model.to_dict(), "metrics": bundle.metrics}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(dumps(doc, separators=(",", ":")) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_features(path, features) -> tuple[str, ...]:
    if unknown := set(features) - set(FEATURES):
        raise StackerVersionError(f"{path} expects features this occparse does not compute ({sorted(unknown)}); "
                                  "refit with `occparse fit-stacker`")
    return tuple(features)


def load_stacker(path: str | Path) -> StackerBundle:
    """Read a stacker file (JSON ``occparse-stacker/2``, or a legacy pickle ``occparse-stacker/1``).

    Raises :class:`StackerVersionError` for a file that is not a stacker, an unknown format or
    model kind, features this occparse does not compute, or a legacy pickle written by another
    scikit-learn version; OSError when it cannot be read."""
    with open(path, "rb") as f:
        head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"{":
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8-sig"))
            if doc.get("format") != FORMAT:
                raise StackerVersionError(f"{path} has stacker format {doc.get('format')!r}; this occparse reads {FORMAT}")
            features = _check_features(path, doc["features"])
            return StackerBundle(model_from_dict(doc["model"], len(features)), doc.get("fitted_with", {}), features,
                                 doc.get("metrics", {}))
        except StackerVersionError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
            raise StackerVersionError(f"{path} is not a readable occparse stacker file ({e})") from e
    if head != b"\x80":  # not a pickle either: never hand an arbitrary file to the unpickler
        raise StackerVersionError(f"{path} is not an occparse stacker file")
    return _load_legacy_pickle(path)


class _LegacyUnpickler(pickle.Unpickler):
    """Reads files written before the runtime moved into ``occparse.runtime`` (``occparse.stacking``)."""

    def find_class(self, module: str, name: str):
        if module == "occparse.stacking":
            module = __name__
        return super().find_class(module, name)


def _load_legacy_pickle(path: str | Path) -> StackerBundle:
    with open(path, "rb") as f:
        try:
            header = pickle.load(f)  # noqa: S301 (a file the user named or a checksum-pinned one)
        except Exception as e:  # noqa: BLE001 (any unpickling failure means: not our file)
            raise StackerVersionError(f"{path} is not an occparse stacker file") from e
        if not isinstance(header, dict) or header.get("format") != HEADER_FORMAT:
            raise StackerVersionError(f"{path} is not an occparse stacker file")
        try:
            import sklearn
        except ImportError as e:
            raise StackerVersionError(f"{path} is an old pickled stacker and needs scikit-learn "
                                      f"{header['sklearn_version']}; refit with `occparse fit-stacker`") from e
        if header["sklearn_version"] != sklearn.__version__:
            raise StackerVersionError(
                f"{path} was fitted with scikit-learn {header['sklearn_version']}, this is {sklearn.__version__}: "
                f"install scikit-learn=={header['sklearn_version']} or refit with `occparse fit-stacker`"
            )
        features = _check_features(path, header["features"])
        try:
            old = _LegacyUnpickler(f).load()
        except Exception as e:  # noqa: BLE001 (a damaged body: one clear message)
            raise StackerVersionError(f"{path}: the pickled stacker cannot be read ({e})") from e
    return StackerBundle(old.model, {"scikit-learn": header["sklearn_version"]}, features, getattr(old, "metrics", {}))
