"""small_face and doubtful_face: the warnings a user can act on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from occparse.runtime.face_checks import (
    BESIDE_LARGER,
    DOUBTFUL_MAX_PX,
    HEAD_CROPS,
    SMALL_FACE_PX,
    beside_a_larger_face,
    head_on_body,
    is_doubtful_face,
    is_small_face,
    may_be_doubtful,
)

ROOT = Path(__file__).resolve().parents[1]


def test_rules_at_their_edges():
    assert is_small_face(SMALL_FACE_PX - 0.5) and not is_small_face(SMALL_FACE_PX)
    assert is_doubtful_face(30, "keypoints", 0.9, 0.9)  # the mesh itself found no face there
    assert not is_doubtful_face(DOUBTFUL_MAX_PX, "keypoints", 0.5, 0.5)  # large faces are never doubtful
    assert is_doubtful_face(30, "mesh", 0.6, 0.6) and not is_doubtful_face(30, "mesh", 0.6, 0.8)
    assert not is_doubtful_face(30, "mesh", None, 0.5)  # no detector score: no evidence against the face
    assert not is_doubtful_face(10, "canonical", 0.1, 0.1)  # the user said it is an aligned face
    # a head on a body seen there clears the flag, whichever cue raised it
    assert not is_doubtful_face(30, "keypoints", 0.9, 0.9, head_seen=True)
    assert not is_doubtful_face(30, "mesh", 0.6, 0.6, head_seen=True)
    # the candidates given to the pose check are exactly the faces the rule can flag
    for args in [(30, "keypoints", 0.9), (30, "mesh", 0.6), (30, "mesh", 0.8), (30, "mesh", None),
                 (DOUBTFUL_MAX_PX, "keypoints", 0.5), (10, "canonical", 0.1)]:
        assert may_be_doubtful(*args) == (is_doubtful_face(*args, 0.0) or is_doubtful_face(*args, 1.0))


def _bright_square(box, size=(300, 400)):
    """A dark picture with one bright square filling ``box`` (x0, y0, x1, y1)."""
    img = np.full((*size, 3), 30, np.uint8)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = 220
    return img


def _square_finder(calls):
    """A stand-in for the pose model: its 11 face landmarks at the centroid of the bright pixels."""
    def find(crop):
        calls.append(crop.shape)
        ys, xs = np.nonzero(crop[..., 0] > 128)
        return None if not len(xs) else np.tile([xs.mean(), ys.mean()], (11, 1)).astype(np.float32)
    return find


def test_head_on_body_maps_the_box_into_each_crop():
    calls = []
    img = _bright_square((190, 100, 220, 130))  # a 30 px "head"
    assert head_on_body(_square_finder(calls), img, (188.0, 98.0, 222.0, 132.0))
    assert len(calls) == len(HEAD_CROPS) // 2 + 1  # the majority is reached: no further crops
    assert all(c == (256, 256, 3) for c in calls)
    calls.clear()
    # the "head" the model finds lies beside the box (a coat below a face): no agreement
    assert not head_on_body(_square_finder(calls), img, (188.0, 150.0, 222.0, 184.0))
    assert len(calls) == len(HEAD_CROPS) // 2 + 1
    assert not head_on_body(lambda crop: None, img, (188.0, 98.0, 222.0, 132.0))  # no person at all


def test_head_on_body_needs_a_majority():
    img = _bright_square((190, 100, 220, 130))
    box = (188.0, 98.0, 222.0, 132.0)
    n = len(HEAD_CROPS)
    for agree in (n // 2, n // 2 + 1):
        seen = []
        finder = _square_finder([])

        def some(crop, seen=seen, finder=finder, agree=agree):
            seen.append(1)
            return finder(crop) if len(seen) <= agree else None
        assert head_on_body(some, img, box) == (agree > n // 2)


@pytest.fixture(scope="module")
def estimator():
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    return Estimator(EstimatorOptions())


def test_a_32_px_face_in_a_432_px_picture_is_flagged_small(estimator):
    astro = Image.open(ROOT / "examples" / "astronaut.png").convert("RGB")
    big = estimator.analyze(np.asarray(astro)).result.faces[0]
    scale = 32.0 / big.face_size
    small = astro.resize((round(astro.width * scale), round(astro.height * scale)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (432, 432), (128, 128, 128))
    canvas.paste(small, ((432 - small.width) // 2, (432 - small.height) // 2))
    res = estimator.analyze(np.asarray(canvas)).result
    assert res.ok, res.message
    f = res.faces[0]
    assert 26 <= f.face_size <= 38
    assert f.small_face and any(w.startswith("small_face:") for w in f.warnings)
    assert not f.doubtful_face
    assert not big.small_face and not any(w.startswith("small_face:") for w in big.warnings)
    assert res.to_dict()["faces"][0]["small_face"] is True


def _listed_false_faces(path: Path) -> dict[str, tuple[float, float, str]]:
    out = {}
    for line in path.read_text().splitlines():
        body, _, why = line.partition("#")
        parts = body.split()
        if len(parts) == 3 and ("not a face" in why or "no face" in why):
            out[parts[0]] = (float(parts[1]), float(parts[2]), why)
    return out


def test_the_listed_false_faces_are_doubtful(estimator, data_root):
    listed = _listed_false_faces(ROOT / "benchmarks" / "masked_faces_not_masked.txt")
    assert len(listed) == 6
    for name, (x, y, why) in listed.items():
        res = estimator.analyze(data_root / "real" / "masked" / name).result
        hits = [f for f in res.faces if f.box[0] <= x <= f.box[2] and f.box[1] <= y <= f.box[3]]
        assert hits, f"{name}: the false face ({why.strip()}) is no longer found"
        assert hits[0].doubtful_face, f"{name}: {why.strip()} not flagged"


#: Real masked subjects of 20-40 px that the face mesh rejects (their face is a key-point fit, which
#: alone would flag them): the pose model sees the head on the body in each.
MESH_REJECTED_REAL = ("0002.jpg", "0021.jpg", "0077.jpg", "0138.jpg")


def test_small_masked_faces_the_mesh_rejects_are_not_doubtful(estimator, data_root):
    fits = 0
    for name in MESH_REJECTED_REAL:
        res = estimator.analyze(data_root / "real" / "masked" / name).result
        f = res.faces[0]
        # MediaPipe's detector output on such small faces shifts with what else of mediapipe the process
        # has imported (0077's subject is then a 15-px mesh face): count the key-point fits, do not pin them
        fits += 20 <= f.face_size <= 40 and f.source == "keypoints"
        assert not f.doubtful_face, f"{name}: a real masked face flagged doubtful"
    assert fits >= 3, "the subjects are no longer small key-point fits: the test no longer tries the pose check"


def test_the_pose_model_finds_no_head_on_the_false_faces(estimator, data_root):
    """The check itself, with the real pose model, on the listed false faces' boxes."""
    from occparse.runtime.io import read_image

    listed = _listed_false_faces(ROOT / "benchmarks" / "masked_faces_not_masked.txt")
    for name, (x, y, why) in listed.items():
        res = estimator.analyze(data_root / "real" / "masked" / name).result
        box = next(f.box for f in res.faces if f.box[0] <= x <= f.box[2] and f.box[1] <= y <= f.box[3])
        rgb = read_image(data_root / "real" / "masked" / name).rgb
        assert not head_on_body(estimator.mesher.pose_face_points, rgb, box), f"{name}: {why.strip()}"


def test_a_clear_face_is_not_doubtful(estimator):
    res = estimator.analyze(ROOT / "examples" / "astronaut.png").result
    assert not res.faces[0].doubtful_face and not res.faces[0].small_face


def test_a_small_face_beside_a_larger_ones_head_is_beside_it():
    big = (100.0, 100.0, 140.0, 150.0)  # 50 px tall
    assert beside_a_larger_face((60, 110, 80, 130), [big])  # left of it, at its height: an ear
    assert not beside_a_larger_face((112, 60, 128, 80), [big])  # above it: a face in the row behind
    assert not beside_a_larger_face((112, 170, 128, 190), [big])  # below the chin: a face in front
    assert not beside_a_larger_face((20, 110, 40, 130), [big])  # more than a face height away
    h = 50 / BESIDE_LARGER + 2  # a face nearly as large is a neighbour, not a part of the head
    assert not beside_a_larger_face((80 - h, 110, 80, 110 + h), [big])
    assert not beside_a_larger_face((60, 110, 80, 130), [])


def test_an_ear_found_as_a_face_beside_the_subject_is_doubtful(data_root):
    """The handed masked nurse with --all-faces: her ear is found as a 22 px second face, and the pose
    model's head there is hers; the ear is flagged, she is not."""
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    nurse = data_root.parent / "cases" / "masked_nurse.jpg"
    if not nurse.exists():
        pytest.skip("../shared/cases not found")
    res = Estimator(EstimatorOptions(max_faces=None, exhaustive=True)).analyze(nurse).result
    subject = next(f for f in res.faces if f.subject)
    others = [f for f in res.faces if not f.subject]
    assert not subject.doubtful_face
    small = [f for f in others if f.face_size < subject.face_size / BESIDE_LARGER]
    assert small and all(f.doubtful_face for f in small)
