"""small_face and doubtful_face: the warnings a user can act on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from occparse.runtime.face_checks import (
    DOUBTFUL_MAX_PX,
    SMALL_FACE_PX,
    is_doubtful_face,
    is_small_face,
)

ROOT = Path(__file__).resolve().parents[1]


def test_rules_at_their_edges():
    assert is_small_face(SMALL_FACE_PX - 0.5) and not is_small_face(SMALL_FACE_PX)
    assert is_doubtful_face(30, "keypoints", 0.9, 0.9)  # the mesh itself found no face there
    assert not is_doubtful_face(DOUBTFUL_MAX_PX, "keypoints", 0.5, 0.5)  # large faces are never doubtful
    assert is_doubtful_face(30, "mesh", 0.6, 0.6) and not is_doubtful_face(30, "mesh", 0.6, 0.8)
    assert not is_doubtful_face(30, "mesh", None, 0.5)  # no detector score: no evidence against the face
    assert not is_doubtful_face(10, "canonical", 0.1, 0.1)  # the user said it is an aligned face


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


def test_a_clear_face_is_not_doubtful(estimator):
    res = estimator.analyze(ROOT / "examples" / "astronaut.png").result
    assert not res.faces[0].doubtful_face and not res.faces[0].small_face
