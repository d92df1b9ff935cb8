"""Stacker file format, its version check, the fit's out-of-fold report, and the loss weights."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from occparse.runtime.stacking import FEATURES, StackerBundle, StackerVersionError, load_stacker, save_stacker


def _table(n=400, seed=0):
    from occparse.evaluation.stacker_fit import FeatureTable

    rng = np.random.default_rng(seed)
    gt = np.clip(rng.gamma(0.8, 0.1, n), 0, 1)
    X = np.zeros((n, len(FEATURES)))
    X[:, FEATURES.index("geometric")] = np.clip(gt + rng.normal(0, 0.05, n), 0, 1)
    X[:, FEATURES.index("regressor")] = np.clip(gt + rng.normal(0, 0.05, n), 0, 1)
    return FeatureTable(X, gt, rng.random(n) < 0.5, [f"{i}.jpg" for i in range(n)], 0, np.arange(n) // 3)


def test_fit_beats_each_component_out_of_fold():
    from occparse.evaluation.stacker_fit import fit

    bundle, report = fit(_table(), folds=4)
    geo, reg = report[0]["score"], report[1]["score"]
    stacked = min(r["score"] for r in report[2:])
    # two independent noisy views of the truth: fusing them must beat either one out of fold
    assert stacked < geo and stacked < reg
    assert any("shipped" in r["name"] for r in report[2:])
    assert set(report[2]) >= {"score", "err_f", "err_m", "gap", "mae"}
    pred = bundle.predict(_table(seed=1).X)
    assert pred.min() >= 0 and pred.max() <= 1


@pytest.mark.parametrize("kind", ["ridge", "hgb"])
def test_saved_stacker_predicts_what_sklearn_predicts(tmp_path, kind):
    """The JSON file is evaluated with numpy alone: it must give scikit-learn's predictions."""
    from occparse.evaluation.stacker_fit import exported, make_model

    t = _table(600)
    m = make_model(kind).fit(t.X, t.gt)
    p = tmp_path / "s.json"
    save_stacker(StackerBundle(exported(m, t.X), {"scikit-learn": "x"}), p)
    b = load_stacker(p)
    X = _table(200, seed=5).X
    X[:3, FEATURES.index("geometric")] = [0.0, 1.0, 0.5]
    np.testing.assert_allclose(b.predict(X), np.clip(m.predict(X), 0, 1), rtol=0, atol=1e-12)
    assert b.features == FEATURES


def test_tree_missing_values_and_infinite_threshold_survive_the_file(tmp_path):
    from occparse.runtime.stacking import Tree, TreeEnsemble

    tree = Tree(np.array([0, -1, -1]), np.array([np.inf, 0, 0]), np.array([1, 0, 0]), np.array([2, 0, 0]),
                np.array([False, False, False]), np.array([0.0, 0.25, 0.75]))
    p = tmp_path / "s.json"
    save_stacker(StackerBundle(TreeEnsemble(0.0, (tree,)), features=FEATURES[:1]), p)
    b = load_stacker(p)
    # finite values go left (<= inf), NaN goes right (missing_left False)
    assert b.predict(np.array([[5.0], [np.nan]])).tolist() == [0.25, 0.75]


def test_runtime_stacker_does_not_import_sklearn():
    import subprocess
    import sys

    code = ("import sys, numpy as np; from occparse.runtime.stacking import load_stacker, FEATURES; "
            "assert 'sklearn' not in sys.modules, 'imported sklearn'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_files_are_refused_with_a_clear_error(tmp_path):
    p = tmp_path / "s.json"
    p.write_text('{"format": "occparse-stacker/9"}')
    with pytest.raises(StackerVersionError, match="stacker/9"):
        load_stacker(p)
    p.write_text('{"format": "occparse-stacker/2", "features": ["no_such_feature"], "model": {"kind": "linear"}}')
    with pytest.raises(StackerVersionError, match="no_such_feature"):
        load_stacker(p)
    p.write_text('{"format": "occparse-stacker/2", "features": ["geometric"], "model": {"kind": "forest"}}')
    with pytest.raises(StackerVersionError, match="forest"):
        load_stacker(p)
    p.write_text("{truncated")
    with pytest.raises(StackerVersionError, match="not a readable"):
        load_stacker(p)
    with pytest.raises(TypeError):
        save_stacker(StackerBundle(object()), p)


def test_legacy_pickle_stacker_loads_and_refuses_another_version(tmp_path):
    """Files of the first format (a pickled scikit-learn model) still load under their own version."""
    import sklearn
    from sklearn.linear_model import Ridge

    from occparse.runtime.stacking import HEADER_FORMAT

    m = Ridge().fit(np.random.rand(10, len(FEATURES)), np.random.rand(10))
    p = tmp_path / "s.pkl"

    def write(version):
        with open(p, "wb") as f:
            pickle.dump({"format": HEADER_FORMAT, "sklearn_version": version, "features": list(FEATURES)}, f)
            pickle.dump(StackerBundle(m), f)

    write(sklearn.__version__)
    b = load_stacker(p)
    X = np.random.rand(4, len(FEATURES))
    np.testing.assert_allclose(b.predict(X), np.clip(m.predict(X), 0, 1))
    write("0.0.1")
    with pytest.raises(StackerVersionError, match="0.0.1"):
        load_stacker(p)
    with open(p, "wb") as f:
        pickle.dump({"something": "else"}, f)
    with pytest.raises(StackerVersionError, match="not an occparse stacker"):
        load_stacker(p)


def test_bin_rebalancing_weights():
    from occparse.train.losses import inverse_frequency_weights, sample_weights

    gt = np.array([0.0] * 90 + [0.5] * 10)
    w = inverse_frequency_weights(gt)
    # each bin gets the same total weight: 90 * w0 == 10 * w1
    assert 90 * w[0] == pytest.approx(10 * w[-1])
    assert w.mean() == pytest.approx(1.0)
    m = sample_weights(gt, np.zeros(100, bool), "metric")
    assert m[-1] / m[0] == pytest.approx((1 / 30 + 0.5) / (1 / 30))
    male = np.array([True] * 80 + [False] * 20)
    g = sample_weights(np.full(100, 0.1), male, "plain", balance_gender=True)
    assert g[male].sum() == pytest.approx(g[~male].sum())
    with pytest.raises(ValueError):
        sample_weights(gt, male, "nope")


def test_fit_picks_a_stacker_that_does_not_shrink():
    """A view that shrinks heavy faces towards the mean: the chosen stacker's out-of-fold bias must stay
    within MAX_BIN_BIAS in every judged bin, and the report gives the bias per bin."""
    from occparse.evaluation.stacker_fit import MAX_BIN_BIAS, MIN_BIN_ROWS, FeatureTable, bin_bias, fit

    rng = np.random.default_rng(3)
    n = 1200
    gt = np.clip(np.concatenate([rng.gamma(0.8, 0.05, n - 200), rng.uniform(0.3, 0.8, 200)]), 0, 1)
    X = np.zeros((n, len(FEATURES)))
    X[:, FEATURES.index("geometric")] = np.clip(0.6 * gt + 0.03 + rng.normal(0, 0.04, n), 0, 1)  # shrunk
    X[:, FEATURES.index("regressor")] = np.clip(0.5 * gt + 0.05 + rng.normal(0, 0.04, n), 0, 1)  # shrunk
    t = FeatureTable(X, gt, rng.random(n) < 0.5, [f"{i}.jpg" for i in range(n)], 0, np.arange(n))
    bundle, report = fit(t, folds=4)
    shipped = next(r for r in report if "shipped" in r["name"])
    assert all(abs(b) <= MAX_BIN_BIAS for rows, b in shipped["bias_per_bin"].values() if rows >= MIN_BIN_ROWS)
    # the raw geometric view is biased in the heavy bin: the report shows it
    heavy = bin_bias(X[:, FEATURES.index("geometric")], gt)[-1]
    assert heavy[2] < -0.1
    assert bundle.metrics["model"] in shipped["name"]


def test_damaged_tree_files_are_refused_not_misread(tmp_path):
    """A tree that reads a column past the features, points outside itself or loops is refused on load."""
    import json

    def doc(tree):
        return {"format": "occparse-stacker/2", "features": ["geometric", "regressor"],
                "model": {"kind": "trees", "baseline": 0.0, "trees": [tree]}}

    good = {"feature": [0, -1, -1], "threshold": [0.5, 0, 0], "left": [1, 0, 0], "right": [2, 0, 0],
            "missing_left": [True, False, False], "value": [0, 0.1, 0.9]}
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc(good)))
    assert load_stacker(p).predict(np.array([[0.2, 0.0], [0.8, 0.0]])).tolist() == [0.1, 0.9]
    for bad in ({**good, "feature": [6, -1, -1]}, {**good, "left": [0, 0, 0]}, {**good, "right": [2, 0, 7]},
                {**good, "value": [0, 0.1]}):
        if bad["right"] == [2, 0, 7]:
            bad = {**bad, "feature": [0, 0, -1]}  # node 1 splits and points past the end
        p.write_text(json.dumps(doc(bad)))
        with pytest.raises(StackerVersionError):
            load_stacker(p)
    p.write_text(json.dumps({**doc(good), "model": {"kind": "linear", "mean": [0], "scale": [1], "coef": [1],
                                                     "intercept": 0}}))
    with pytest.raises(StackerVersionError, match="2 means"):
        load_stacker(p)
    p.write_bytes(b"GIF89a not a stacker")  # neither JSON nor a pickle: never unpickled
    with pytest.raises(StackerVersionError, match="not an occparse stacker"):
        load_stacker(p)


def test_class_labels_match_argmax_with_ties_and_nan():
    from occparse.runtime.parsing import argmax_classes

    rng = np.random.default_rng(0)
    p = rng.random((5, 16, 16)).astype(np.float32)
    p[:, :4, :4] = 0.2  # five-way ties
    p[2, 5, 5] = np.nan
    p[:, 6, 6] = np.nan
    assert np.array_equal(argmax_classes(p), p.argmax(0).astype(np.uint8))


def test_fit_sets_join_with_their_weights_and_a_named_model_is_shipped():
    """Two fit sets (e.g. the synthetic holdout and the real LFW train photos): rows keep their groups,
    each set's weight scales its rows, and --model forces the family that is fitted on all rows."""
    from occparse.evaluation.stacker_fit import fit, join

    a, b = _table(300, seed=0), _table(200, seed=1)
    t = join([a, b], [1.0, 3.0])
    assert t.X.shape == (500, len(FEATURES)) and t.weight.tolist() == [1.0] * 300 + [3.0] * 200
    assert t.groups[0] == str(a.groups[0])
    with pytest.raises(ValueError):
        join([a, b], [1.0])
    with pytest.raises(ValueError):
        join([a, b], [1.0, -1.0])
    bundle, _ = fit(t, folds=3, model="hgb_bal")
    assert bundle.metrics["model"] == "hgb_bal" and bundle.metrics["chosen_by"] == "given"
    assert type(bundle.model).__name__ == "TreeEnsemble"
    with pytest.raises(ValueError):
        fit(t, folds=3, model="forest")


def test_set_weight_moves_the_fit_towards_the_heavier_set():
    """A set weighted 0 must not pull the fit: with an offset second set, the weighted fit follows set one."""
    from occparse.evaluation.stacker_fit import FeatureTable, fit, join

    a = _table(400, seed=2)
    b = _table(400, seed=3)
    b = FeatureTable(b.X, np.clip(b.gt + 0.1, 0, 1), b.male, b.names, 0, b.groups + 10_000)
    only_a, _ = fit(join([a, b], [1.0, 0.0]), folds=3, model="ridge")
    both, _ = fit(join([a, b], [1.0, 1.0]), folds=3, model="ridge")
    bias = lambda m, t: float(np.mean(m.predict(t.X) - t.gt))  # noqa: E731
    assert abs(bias(only_a, a)) < 0.01 and bias(both, a) > 0.03
