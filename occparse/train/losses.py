"""Sample weights for the regression loss.

The challenge's winning recipe rebalanced the MSE by inverse frequency over occlusion bins, so
that the rare heavily occluded faces are not drowned by the many nearly clean ones. The metric's
own weights (1/30 + GT) and a gender balance are options, for the ablation.
"""

from __future__ import annotations

import numpy as np

BINS = (0.0, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 1.0)
SCHEMES = ("plain", "bins", "metric", "bins+metric")


def bin_index(gt: np.ndarray) -> np.ndarray:
    return np.clip(np.searchsorted(np.array(BINS[1:-1]), gt, side="right"), 0, len(BINS) - 2)


def inverse_frequency_weights(gt: np.ndarray) -> np.ndarray:
    """Weight each sample by 1 / (its bin's share), normalised to mean 1; empty bins are skipped."""
    idx = bin_index(np.asarray(gt, np.float64))
    counts = np.bincount(idx, minlength=len(BINS) - 1).astype(np.float64)
    w = 1.0 / counts[idx]
    return w / w.mean()


def sample_weights(gt: np.ndarray, male: np.ndarray, scheme: str = "bins", balance_gender: bool = False) -> np.ndarray:
    """Per-sample loss weights (mean 1) for a training set."""
    gt = np.asarray(gt, np.float64)
    if scheme not in SCHEMES:
        raise ValueError(f"unknown weighting {scheme!r}; choose from {SCHEMES}")
    w = np.ones_like(gt)
    if "bins" in scheme:
        w *= inverse_frequency_weights(gt)
    if "metric" in scheme:
        w *= 1.0 / 30.0 + gt
    if balance_gender:
        male = np.asarray(male, bool)
        for g in (True, False):
            m = male == g
            if m.any():
                w[m] *= 0.5 * len(w) / m.sum()
    return w / w.mean()
