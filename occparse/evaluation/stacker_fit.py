"""``occparse fit-stacker``: features per face (cached), K-fold out-of-fold evaluation, final fit.

Fit it on a split made by ``occparse synth --preset holdout`` (training faces the regressors
never saw), optionally joined by the real LFW train photos (``--preset lfw-train``), never on the
benchmark split or LFW val. The holdout's synthetic occluders teach the heavy cases; the real
photos teach what clean real faces look like to the networks (the holdout alone left the stacker
over-reading them). The parser trained on every LFW train face, so the out-of-fold numbers are
optimistic: judge a stacker on LFW val (``occparse evaluate``), which no model has seen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..runtime.stacking import FEATURES, LinearModel, StackerBundle, Tree, TreeEnsemble, save_stacker
from ..runtime.strictjson import dumps as strict_dumps
from .metrics import challenge_score, occlusion_bins, parse_gender, read_truth


@dataclass(frozen=True)
class FeatureTable:
    X: np.ndarray  # n x len(FEATURES)
    gt: np.ndarray
    male: np.ndarray
    names: list[str]
    n_failed: int
    groups: np.ndarray  # base face of each row (truth column `base`, else the file): folds never split a face
    #: per-row multiplier of the fit weights (one value per fit set, see :func:`join`); None = all 1
    weight: np.ndarray | None = None


def set_weight_error(weights: list[float], n_sets: int) -> str | None:
    """Why ``weights`` cannot weight ``n_sets`` fit sets (one finite value >= 0 each, at least one > 0),
    or None. The CLI asks before computing any feature; :func:`join` raises it."""
    if len(weights) != n_sets:
        return f"{len(weights)} --set-weight values for {n_sets} --truth files"
    if any(not 0 <= w < float("inf") for w in weights) or not any(weights):
        return "--set-weight values must be finite and >= 0, and at least one > 0"
    return None


def join(tables: list[FeatureTable], weights: list[float] | None = None) -> FeatureTable:
    """Several fit sets as one table; rows of set i have their fit weight multiplied by ``weights[i]``
    (default 1). Groups keep their base-face names, so a photo and the synthetic samples made from
    it fall in the same fold. Raises ValueError with :func:`set_weight_error`'s reason."""
    weights = [1.0] * len(tables) if weights is None else list(weights)
    if err := set_weight_error(weights, len(tables)):
        raise ValueError(err)
    per_row = [np.full(len(t.gt), w) * (1.0 if t.weight is None else t.weight) for t, w in zip(tables, weights, strict=True)]
    return FeatureTable(np.vstack([t.X for t in tables]), np.concatenate([t.gt for t in tables]),
                        np.concatenate([t.male for t in tables]), [n for t in tables for n in t.names],
                        sum(t.n_failed for t in tables), np.concatenate([t.groups.astype(str) for t in tables]),
                        np.concatenate(per_row))


def _model_key(est) -> str:
    """Features depend on the models that made them: the cache is keyed by their checksums."""
    from ..models.zoo import file_sha256

    h = hashlib.sha256(",".join(FEATURES).encode())
    paths = [est.parser.model_path, *est.regressors.paths.values()]
    for p in paths:
        h.update(file_sha256(Path(p)).encode())
    return h.hexdigest()[:16]


def compute_features(est, truth: str | Path, images_root: str | Path, cache_dir: Path | None = None) -> FeatureTable:
    from ..runtime.pipeline import face_features

    rows = read_truth(truth)
    cache_dir = cache_dir or Path(truth).parent
    cache = cache_dir / f"stacker_features_{_model_key(est)}.npz"
    # the cache holds for this exact truth file: same rows, same values (a relabelled or extended
    # truth file with the same names must not reuse stale features or truth)
    key = hashlib.sha256("\n".join(f"{r['filename']},{r['FaceOcclusion']},{r['gender']},{r.get('base', '')}"
                                   for r in rows).encode()).hexdigest()
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        if "truth_key" in z and str(z["truth_key"]) == key:
            print(f"features from cache: {cache}")
            return FeatureTable(z["X"], z["gt"], z["male"], list(z["names"]), int(z["n_failed"]), z["groups"])
    X, gt, male, names, groups = [], [], [], [], []
    failed = 0
    root = Path(images_root)
    for r in tqdm(rows, desc="features", unit="img"):
        an = est.analyze(root / r["filename"])
        if not an.result.ok:
            failed += 1
            continue
        fa = an.faces[0]
        res = fa.result
        X.append(face_features(fa.geometry, res.regressor, res.is_gray, an.fallback).vector())
        gt.append(float(r["FaceOcclusion"]))
        male.append(parse_gender(r["gender"]) > 0.5)
        names.append(r["filename"])
        groups.append(r.get("base") or r["filename"])
    if not X:
        raise RuntimeError(f"{truth}: none of its {len(rows)} images under {images_root} could be analysed; "
                           "is --images-root right?")
    if failed:
        print(f"{truth}: {failed} of {len(rows)} images could not be analysed and are left out", flush=True)
    table = FeatureTable(np.array(X), np.array(gt), np.array(male, bool), names, failed, np.array(groups))
    np.savez(cache, X=table.X, gt=table.gt, male=table.male, names=np.array(names), n_failed=failed,
             groups=table.groups, truth_key=np.array(key))
    return table


def make_model(kind: str = "hgb", seed: int = 0):
    """``hgb``: gradient boosting, monotone in the main estimates; ``ridge``: a linear fusion, which
    wins when the fit set is small."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind.startswith("ridge"):
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    # monotone: more geometric occlusion or a higher regressor output never lowers the estimate
    mono = [1 if f in ("geometric", "geometric_soft", "regressor") else 0 for f in FEATURES]
    return HistGradientBoostingRegressor(
        loss="squared_error", learning_rate=0.05, max_iter=300, max_leaf_nodes=15, min_samples_leaf=30,
        l2_regularization=1.0, monotonic_cst=mono, random_state=seed,
    )


#: model families tried; "_bal" weights each true-occlusion bin equally (times the challenge weight), so
#: that the many light faces cannot pull the heavy ones towards the mean (the shrinkage the bins show)
CANDIDATES = ("ridge", "hgb", "ridge_bal", "hgb_bal")
#: the largest |mean signed error| a shipped stacker may have in any true-occlusion bin ...
MAX_BIN_BIAS = 0.05
#: ... among bins with at least this many out-of-fold rows (smaller bins are reported, not judged)
MIN_BIN_ROWS = 20


def bin_bias(pred: np.ndarray, gt: np.ndarray) -> list[tuple[str, int, float]]:
    """(bin name, rows, mean signed error) per true-occlusion bin (the bins ``occparse evaluate`` reports)."""
    return [(f"[{lo:.2f},{hi:.2f})", int(m.sum()), float(np.mean(pred[m] - gt[m])) if m.any() else float("nan"))
            for lo, hi, m in occlusion_bins(gt)]


def sample_weights(kind: str, gt: np.ndarray) -> np.ndarray:
    """The challenge weight, and for ``*_bal`` candidates times 1 / (occlusion-bin frequency); mean 1."""
    from ..train.losses import sample_weights as loss_weights  # numpy only, no torch

    return loss_weights(gt, np.zeros(len(gt), bool), "bins+metric" if kind.endswith("_bal") else "metric")


def _row(name: str, pred: np.ndarray, t: FeatureTable) -> dict:
    score, ef, em = challenge_score(pred, t.gt, t.male)
    return {"name": name, "score": score, "err_f": ef, "err_m": em, "gap": abs(ef - em),
            "mae": float(np.abs(pred - t.gt).mean()),
            "bias_per_bin": {n: [rows, round(b, 4)] for n, rows, b in bin_bias(pred, t.gt)}}


def worst_bin_bias(pred: np.ndarray, gt: np.ndarray) -> float:
    """Largest |mean signed error| over the bins with at least MIN_BIN_ROWS rows."""
    return max((abs(b) for _, n, b in bin_bias(pred, gt) if n >= MIN_BIN_ROWS), default=0.0)


def _weight_arg(kind: str, w: np.ndarray) -> dict:
    return {"ridge__sample_weight": w} if kind.startswith("ridge") else {"sample_weight": w}


def export_model(model) -> LinearModel | TreeEnsemble:
    """A fitted scikit-learn stacker as plain arrays that ``occparse.runtime.stacking`` evaluates with numpy alone.

    Takes ``make_pipeline(StandardScaler(), Ridge())`` (or a bare linear model) and
    ``HistGradientBoostingRegressor`` (squared error, numeric features); raises TypeError otherwise."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if isinstance(model, HistGradientBoostingRegressor):
        if getattr(model, "is_categorical_", None) is not None and np.any(model.is_categorical_):
            raise TypeError("categorical features are not exported")
        if model.loss != "squared_error":  # other losses have a link function the export does not apply
            raise TypeError(f"only loss='squared_error' is exported, not {model.loss!r}")
        trees = []
        for per_iteration in model._predictors:  # one tree per iteration for a regressor
            (pred,) = per_iteration
            nd = pred.nodes
            leaf = nd["is_leaf"].astype(bool)
            trees.append(Tree(np.where(leaf, -1, nd["feature_idx"]).astype(np.int64), nd["num_threshold"].astype(np.float64),
                              nd["left"].astype(np.int64), nd["right"].astype(np.int64),
                              nd["missing_go_to_left"].astype(bool), nd["value"].astype(np.float64)))
        return TreeEnsemble(float(np.ravel(model._baseline_prediction)[0]), tuple(trees))
    scaler, lin = None, model
    if isinstance(model, Pipeline):
        *pre, (_, lin) = model.steps
        if len(pre) > 1 or (pre and not isinstance(pre[0][1], StandardScaler)):
            raise TypeError(f"only a StandardScaler before the linear model is exported, not {[type(p).__name__ for _, p in pre]}")
        scaler = pre[0][1] if pre else None
    if not hasattr(lin, "coef_"):
        raise TypeError(f"cannot export a {type(lin).__name__} stacker")
    coef = np.ravel(np.asarray(lin.coef_, np.float64))
    centred = scaler is not None and scaler.with_mean
    scaled = scaler is not None and scaler.with_std
    mean = np.asarray(scaler.mean_, np.float64) if centred else np.zeros_like(coef)
    scale = np.asarray(scaler.scale_, np.float64) if scaled else np.ones_like(coef)
    return LinearModel(mean, scale, coef, float(np.ravel(lin.intercept_)[0]))


def exported(model, X: np.ndarray) -> LinearModel | TreeEnsemble:
    """:func:`export_model`, checked: the export must reproduce scikit-learn's predictions on ``X``."""
    ex = export_model(model)
    diff = float(np.max(np.abs(ex.predict(X) - model.predict(X)))) if len(X) else 0.0
    if not diff <= 1e-9:  # NaN fails too
        raise RuntimeError(f"the exported stacker differs from scikit-learn's by {diff:.2e}")
    return ex


def _fit_weights(kind: str, table: FeatureTable, rows: np.ndarray) -> np.ndarray:
    w = sample_weights(kind, table.gt[rows])
    return w if table.weight is None else w * table.weight[rows]


def fit(table: FeatureTable, folds: int = 5, seed: int = 0, model: str = "auto") -> tuple[StackerBundle, list[dict]]:
    """Out-of-fold report of every candidate, then the final fit on all rows. ``model``: one of
    :data:`CANDIDATES`, or ``auto`` (the best out-of-fold Score among candidates that do not shrink).
    Raises ValueError for an unknown ``model``."""
    import sklearn
    from sklearn.model_selection import GroupKFold

    if model != "auto" and model not in CANDIDATES:
        raise ValueError(f"unknown stacker model {model!r}; use auto or one of {', '.join(CANDIDATES)}")
    # grouped by base face: several synthetic variants of one face never sit on both sides of a fold
    splits = list(GroupKFold(folds, shuffle=True, random_state=seed).split(table.X, groups=table.groups))
    oofs = {}
    for kind in CANDIDATES:
        oof = np.zeros(len(table.gt))
        for tr, te in splits:
            m = make_model(kind, seed).fit(table.X[tr], table.gt[tr], **_weight_arg(kind, _fit_weights(kind, table, tr)))
            oof[te] = m.predict(table.X[te])
        oofs[kind] = np.clip(oof, 0, 1)
    # the best out-of-fold Score among candidates that do not shrink (every judged bin's bias within
    # MAX_BIN_BIAS); if none qualifies, the one whose worst bin is least biased
    fair = [k for k in CANDIDATES if worst_bin_bias(oofs[k], table.gt) <= MAX_BIN_BIAS]
    if model != "auto":
        best = model
    elif fair:
        best = min(fair, key=lambda k: challenge_score(oofs[k], table.gt, table.male)[0])
    else:
        best = min(CANDIDATES, key=lambda k: worst_bin_bias(oofs[k], table.gt))
    report = [
        _row("geometric only", np.clip(table.X[:, FEATURES.index("geometric")], 0, 1), table),
        _row("regressor only", np.clip(table.X[:, FEATURES.index("regressor")], 0, 1), table),
        *[_row(f"stacked, {k} ({folds}-fold out-of-fold){' <- shipped' if k == best else ''}", oofs[k], table)
          for k in CANDIDATES],
    ]
    everything = np.arange(len(table.gt))
    final = make_model(best, seed).fit(table.X, table.gt, **_weight_arg(best, _fit_weights(best, table, everything)))
    metrics = {"oof": report, "model": best, "chosen_by": "given" if model != "auto" else "out-of-fold",
               "n": int(len(table.gt)), "n_failed": table.n_failed, "folds": folds}
    bundle = StackerBundle(exported(final, table.X), {"scikit-learn": sklearn.__version__}, FEATURES, metrics)
    return bundle, report


def run(truth: str | list[str], images_root: str | list[str], out: str, folds: int = 5, seed: int = 0,
        precision: str = "auto", weights: str | None = None, set_weights: list[float] | None = None,
        model: str = "auto") -> list[dict]:
    """Features of every fit set (``truth[i]`` with images under ``images_root[i]``), the report and
    the final fit, saved to ``out``. ``set_weights[i]`` multiplies set i's fit weights."""
    from ..runtime.pipeline import Estimator, EstimatorOptions

    truths = [truth] if isinstance(truth, str) else list(truth)
    roots = [images_root] if isinstance(images_root, str) else list(images_root)
    if len(truths) != len(roots):
        raise ValueError(f"{len(truths)} truth files but {len(roots)} image roots: give one --images-root per --truth")

    # the same options as `occparse predict --assume-aligned`, so the features mean the same at fit and use
    est = Estimator(EstimatorOptions(max_faces=1, detector_scores=False, assume_aligned=True, precision=precision,
                                     use_stacker=False, weights=weights))  # features never depend on an older stacker
    print(f"features from the {est.precision} networks", flush=True)
    if est.regressors is None:
        raise RuntimeError("fit-stacker needs the regressors (weights/regressor_color.onnx); train them first")
    table = join([compute_features(est, t, r) for t, r in zip(truths, roots, strict=True)], set_weights)
    bundle, report = fit(table, folds, seed, model)
    bundle.metrics["fit_sets"] = [{"truth": str(t), "weight": w} for t, w in
                                  zip(truths, set_weights or [1.0] * len(truths), strict=True)]
    save_stacker(bundle, out)
    print(strict_dumps({"n": len(table.gt), "n_failed": table.n_failed, "model": bundle.metrics["model"],
                        "report": report}, indent=2))
    return report
