"""Small faces: how the aligned crop enlarges a face of a few pixels (align.align, EstimatorOptions.small_face_upscale)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from occparse.runtime.align import CANONICAL_SIZE, SMALL_FACE_SCALE, align, alignment_matrix
from occparse.runtime.pipeline import canonical_face


def _face_at(scale: float, size: int = 400):
    """The canonical face shrunk ``scale`` times about the image centre, in a size x size picture."""
    f = canonical_face((CANONICAL_SIZE, CANONICAL_SIZE))
    lm = (f.landmarks - CANONICAL_SIZE / 2) / scale + size / 2
    return type(f)(lm.astype(np.float32), (size, size))


def _scene(size: int = 400) -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.resize(rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8), (size, size),
                      interpolation=cv2.INTER_NEAREST)


def test_small_face_uses_the_chosen_interpolation():
    img = _scene()
    small = _face_at(4.0)  # a face about 40 px wide: enlarged 4x
    assert np.sqrt(abs(np.linalg.det(alignment_matrix(small)[:, :2]))) > SMALL_FACE_SCALE
    lin = align(img, small).image
    lan = align(img, small, upscale="lanczos").image
    near = align(img, small, upscale="nearest").image
    m = alignment_matrix(small)
    expect = cv2.warpAffine(img, m, (CANONICAL_SIZE, CANONICAL_SIZE), flags=cv2.INTER_LANCZOS4,
                            borderMode=cv2.BORDER_REFLECT_101)
    assert np.array_equal(lan, expect)
    assert not np.array_equal(lin, lan)
    # nearest keeps the photo's own values: every crop pixel is one of the scene's block colours
    assert set(map(tuple, near.reshape(-1, 3))) <= set(map(tuple, img.reshape(-1, 3)))


def test_well_resolved_face_and_label_maps_stay_bilinear():
    img = _scene()
    # an aligned-crop-sized face, and one of about 65 px: the default path must not change
    for big in (_face_at(1.2), _face_at(2.5)):
        for up in ("lanczos", "nearest", "cubic"):
            assert np.array_equal(align(img, big, upscale=up).image, align(img, big).image)
    lab = (img[..., 0] // 64).astype(np.uint8)
    small = _face_at(4.0)
    a = align(lab, small, nearest=True, fill=255, upscale="lanczos").image
    assert set(np.unique(a)) <= set(np.unique(lab)) | {255}


def test_threshold_is_about_the_face_not_the_crop_size():
    """A bigger crop of the same face is not a 'smaller face'."""
    img = _scene()
    face = _face_at(1.5)
    assert np.array_equal(align(img, face, 448, upscale="nearest").image, align(img, face, 448).image)


def test_estimator_refuses_an_unknown_upscale():
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    with pytest.raises(ValueError, match="small_face_upscale"):
        Estimator(EstimatorOptions(small_face_upscale="bicubic-ish", use_learned=False))


def test_pipeline_passes_the_option_to_the_crop(monkeypatch):
    """prepare_image warps small faces with the option's interpolation (mesh stubbed: one known small face)."""
    from occparse.runtime.io import LoadedImage
    from occparse.runtime.pipeline import EstimatorOptions, prepare_image

    img = _scene()
    face = _face_at(5.0)

    class OneFace:
        def detect(self, rgb, exhaustive=False):
            return [face]

    im = LoadedImage(rgb=img, path="x", source_mode="RGB", is_gray=False)
    for up in ("linear", "lanczos"):
        prep = prepare_image(OneFace(), im, EstimatorOptions(small_face_upscale=up, detector_scores=False))
        assert np.array_equal(prep.crops[0].image, align(img, face, upscale=up).image)


@pytest.mark.parametrize("bad,match", [({"facial_hair": "yes"}, "facial_hair"), ({"max_faces": 0}, "max_faces"),
                                       ({"max_faces": -1}, "max_faces"), ({"max_faces": 2.5}, "max_faces"),
                                       ({"crop_size": 8}, "crop_size")])
def test_options_out_of_range_are_refused_when_the_estimator_is_made(bad, match):
    """Not later, from analyze(), which promises never to raise for an image (facial_hair='yes' did)."""
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    with pytest.raises(ValueError, match=match):
        Estimator(EstimatorOptions(use_learned=False, **bad))
