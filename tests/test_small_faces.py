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


def _lfw_val(data_root, n):
    """The first ``n`` LFW validation photos (index order), as paths."""
    import csv

    d = data_root / "faces" / "lfw_parts"
    with open(d / "index.csv", newline="") as f:
        names = [r["filename"] for r in csv.DictReader(f) if r["split"] == "val"]
    return [d / "images" / name for name in names[:n]]


def _pasted(photo: np.ndarray, face_box, target: float, background: np.ndarray, at: tuple[int, int]):
    """``photo`` shrunk so that its face (``face_box``) is ``target`` px tall, pasted at ``at`` (x, y)
    into a copy of ``background``; returns the scene and the face box in it."""
    s = target / (face_box[3] - face_box[1])
    small = cv2.resize(photo, (round(photo.shape[1] * s), round(photo.shape[0] * s)), interpolation=cv2.INTER_AREA)
    scene = background.copy()
    x, y = at
    scene[y:y + small.shape[0], x:x + small.shape[1]] = small
    return scene, tuple(float(v) for v in (face_box[0] * s + x, face_box[1] * s + y, face_box[2] * s + x, face_box[3] * s + y))


def test_small_real_faces_pasted_into_a_scene_are_seen_as_heads(mesher, data_root):
    """The second look behind doubtful_face (face_checks.head_on_body, with the real pose model) on
    LFW validation faces of 20-40 px, each pasted into a crop of another LFW photo: a real face with
    its shoulders below is a head on a body. These are not the masked-face photos the check was chosen on."""
    from occparse.runtime.face_checks import head_on_body
    from occparse.runtime.io import read_image

    paths = _lfw_val(data_root, 9)
    photos = [read_image(p).rgb for p in paths]
    seen = []
    for i, (photo, target) in enumerate(zip(photos[:8], np.linspace(20, 40, 8), strict=True)):
        faces = mesher.mesh_only(photo)
        assert faces, f"{paths[i].name}: no face found in the full-size photo"
        face = min(faces, key=lambda f: float(np.linalg.norm(f.centre - 125)))  # the labelled, central face
        other = photos[(i + 1) % len(photos)]
        # its lower left corner, enlarged 2.7x: clothes, backdrop, at times part of a big blurred face
        background = cv2.resize(other[130:, :120], (320, 320), interpolation=cv2.INTER_CUBIC)
        scene, box = _pasted(photo, face.box, float(target), background, (100, 90))
        seen.append(head_on_body(mesher.pose_face_points, scene, box))
    # on 107 LFW and CelebA-HQ validation faces of 20-40 px (plain and masked) pasted into the real
    # masked-face scenes, the check agreed on 91: most, not all
    assert sum(seen) >= 6, seen
