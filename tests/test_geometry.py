"""Face geometry: the face-oval loop, the mesh on a real face, sub-regions, alignment round trip."""

from __future__ import annotations

import numpy as np
import pytest

from occparse.runtime.align import CANONICAL_POINTS, CANONICAL_SIZE, align
from occparse.runtime.io import read_image
from occparse.runtime.mesh import FACE_OVAL, Face
from occparse.runtime.regions import REGION_NAMES, face_region, face_regions

# A benchmark UTKFace chip (200x200) whose whole mesh lies inside the frame.
UTK_NAME = "10_0_0_20170110224500062.jpg.chip.jpg"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def test_face_oval_is_mediapipe_loop():
    import mediapipe as mp

    edges = mp.solutions.face_mesh.FACEMESH_FACE_OVAL
    neighbours: dict[int, set[int]] = {}
    for a, b in edges:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    assert all(len(n) == 2 for n in neighbours.values()), "the edges must form one simple loop"
    # chain the edges from the forehead top (10), in the direction FACE_OVAL starts with
    loop = [10, FACE_OVAL[1]]
    assert FACE_OVAL[1] in neighbours[10]
    while True:
        nxt = (neighbours[loop[-1]] - {loop[-2]}).pop()
        if nxt == loop[0]:
            break
        loop.append(nxt)
    assert len(loop) == len(neighbours) == 36
    assert tuple(loop) == FACE_OVAL


@pytest.fixture(scope="module")
def utk(data_root, mesher):
    path = data_root / "faces/utkface/images" / UTK_NAME
    img = read_image(path).rgb
    return img, mesher.detect(img)


def test_mesh_on_real_face(utk):
    img, faces = utk
    assert len(faces) == 1
    f = faces[0]
    h, w = img.shape[:2]
    assert f.image_size == (h, w)
    assert f.landmarks.shape == (478, 2) and f.landmarks.dtype == np.float32
    assert (f.landmarks[:, 0] >= 0).all() and (f.landmarks[:, 0] < w).all()
    assert (f.landmarks[:, 1] >= 0).all() and (f.landmarks[:, 1] < h).all()
    assert f.oval.shape == (36, 2)
    x0, y0, x1, y1 = f.box
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    # subject's left eye appears on the right of the picture
    kp = f.key_points()
    assert kp[1, 0] > kp[0, 0]


def test_regions_on_real_face(utk):
    img, faces = utk
    f = faces[0]
    r = face_region(f)
    assert r.shape == img.shape[:2] and r.dtype == bool
    # a UTKFace chip is mostly face: R covers a good part of the 200x200 frame
    assert 0.3 < r.mean() < 0.9
    # R is close to the oval's own (shoelace) area
    assert r.sum() == pytest.approx(f.area, rel=0.05)
    regs = face_regions(f)
    assert np.array_equal(regs.face, r)
    assert set(regs.parts) == set(REGION_NAMES)
    for name, part in regs.parts.items():
        assert part.any(), name
        assert not (part & ~r).any(), f"{name} leaks outside R"

    def centre_y(m):
        return float(np.nonzero(m)[0].mean())

    def centre_x(m):
        return float(np.nonzero(m)[1].mean())

    p = regs.parts
    eyes_y = (centre_y(p["left_eye"]) + centre_y(p["right_eye"])) / 2
    assert centre_y(p["mouth"]) > centre_y(p["nose"]) > eyes_y > centre_y(p["forehead"])
    assert centre_y(p["chin"]) > centre_y(p["mouth"])
    assert centre_x(p["left_eye"]) > centre_x(p["right_eye"])  # subject's left = picture's right
    assert centre_x(p["left_cheek"]) > centre_x(p["right_cheek"])
    # the cheeks, forehead and chin do not overlap the eye/nose/mouth areas
    feats = p["left_eye"] | p["right_eye"] | p["nose"] | p["mouth"]
    for name in ("left_cheek", "right_cheek"):
        assert not (p[name] & feats).any()


def test_align_and_back(utk):
    img, faces = utk
    f = faces[0]
    crop = align(img, f)
    assert crop.image.shape == (CANONICAL_SIZE, CANONICAL_SIZE, 3) and crop.image.dtype == np.uint8
    assert crop.face.image_size == (CANONICAL_SIZE, CANONICAL_SIZE)
    # key points land near the canonical ones
    assert np.abs(crop.face.key_points() - CANONICAL_POINTS).max() < 12
    # R drawn in the crop and mapped back matches R drawn in the original
    r_crop = face_region(crop.face).astype(np.uint8)
    back = crop.to_original(r_crop, img.shape[:2]).astype(bool)
    assert back.shape == img.shape[:2]
    assert _iou(back, face_region(f)) > 0.9
    # the inverse really inverts the matrix
    m3 = np.vstack([crop.matrix, [0, 0, 1]])
    inv3 = np.vstack([crop.inverse, [0, 0, 1]])
    assert np.allclose(m3 @ inv3, np.eye(3), atol=1e-6)


def test_transformed_face_keeps_geometry():
    lm = np.random.default_rng(0).uniform(10, 90, (478, 2)).astype(np.float32)
    f = Face(lm, (100, 100), depth=np.ones(478, np.float32))
    m = np.array([[2.0, 0, 5], [0, 2.0, -3]])
    g = f.transformed(m, (200, 200))
    assert np.allclose(g.landmarks, lm * 2 + [5, -3], atol=1e-4)
    assert g.image_size == (200, 200) and np.allclose(g.depth, 2.0)


def test_no_face_gives_empty_list(mesher):
    grey = np.full((240, 320, 3), 128, np.uint8)
    assert mesher.detect(grey) == []


def test_large_image_is_downscaled_but_landmarks_in_original_pixels(utk, mesher):
    img, faces = utk
    big = np.kron(img, np.ones((8, 8, 1), np.uint8))  # 1600x1600 > MAX_SIDE
    found = mesher.detect(big)
    assert len(found) == 1 and found[0].image_size == big.shape[:2]
    assert np.abs(found[0].landmarks / 8 - faces[0].landmarks).max() < 3
