"""The parser's low-resolution training augmentation (occparse.train.parser_data.low_resolution)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the training augmentation needs the [train] extra (torch)")


def _detail(img: np.ndarray) -> float:
    """High-frequency energy: variance of the Laplacian."""
    return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def _sample(seed: int = 3):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    lab = rng.integers(0, 5, (224, 224), dtype=np.uint8)
    return img, lab


def test_lowres_off_is_the_old_augmentation():
    """lowres=0 draws nothing extra: stages 1-6 stay reproducible."""
    from occparse.train.parser_data import augment

    img, lab = _sample()
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    a, la = augment(img, lab, g1)
    b, lb = augment(img, lab, g2, lowres=0.0)
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert g1.random() == g2.random()


def test_lowres_removes_detail_and_keeps_labels():
    from occparse.train.parser_data import augment

    img, lab = _sample()
    for seed in range(6):
        a, la = augment(img, lab, np.random.default_rng(seed), lowres=0.0)
        b, lb = augment(img, lab, np.random.default_rng(seed), lowres=1.0)
        assert b.shape == a.shape and b.dtype == np.uint8
        assert np.array_equal(la, lb)  # the truth stays at full resolution, same geometry
        assert _detail(b) < 0.5 * _detail(a)


def test_low_resolution_face_width_and_jpeg():
    from occparse.train.parser_data import FACE_SHARE, low_resolution

    img, _ = _sample()
    # a face of exactly 16 px: the crop is shrunk to 16 / FACE_SHARE px; enlarged with nearest
    # neighbours (one of the draws), the crop has as many distinct rows as the small image had
    seen = set()
    for seed in range(20):
        out = low_resolution(img, np.random.default_rng(seed), face_px=(16.0, 16.0), jpeg=0.0)
        assert out.shape == img.shape and out.dtype == np.uint8
        seen.add(len(np.unique(out.reshape(224, -1), axis=0)))
    assert min(seen) == round(16 / FACE_SHARE)  # reached, and never fewer: the face is not shrunk below 16 px
    # with JPEG at that resolution the colours stay in place (RGB in, RGB out), only coarser
    red = np.zeros((224, 224, 3), np.uint8)
    red[..., 0] = 200
    out = low_resolution(red, np.random.default_rng(0), face_px=(20.0, 20.0), jpeg=1.0)
    assert abs(float(out[..., 0].mean()) - 200) < 12 and float(out[..., 2].mean()) < 12


def test_dataset_rejects_a_bad_probability(tmp_path):
    from occparse.runtime.parsing import ParserSpec
    from occparse.train.parser_data import PoolDataset

    with pytest.raises(ValueError, match="lowres"):
        PoolDataset([], ParserSpec(), lowres=1.5)


def test_train_config_proposes_lowres():
    from occparse.train.parser import ParserTrainConfig

    assert 0 < ParserTrainConfig(pools=[]).lowres < 1
