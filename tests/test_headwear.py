"""Procedural headwear of the synthetic engine: caps, beanies, hats, hoods and headscarves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from occparse.runtime.mesh import LEFT_EYE, NOSE, RIGHT_EYE
from occparse.runtime.regions import face_region, face_regions
from occparse.synth.real_occluders import HEADWEAR_STYLES, hat_layer
from occparse.synth.sources import BaseFace

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


@pytest.fixture(scope="module")
def base(mesher):
    rgb = np.asarray(Image.open(EXAMPLE).convert("RGB"))
    faces = mesher.detect(rgb)
    return BaseFace("lfw", EXAMPLE, None, "F", faces[0]), rgb.shape[:2]


@pytest.mark.parametrize("style", [n for n, _ in HEADWEAR_STYLES])
def test_each_style_hides_the_border_of_the_face_not_its_features(base, style):
    face_base, shape = base
    R = face_region(face_base.face, shape)
    parts = face_regions(face_base.face, shape).parts
    hidden = [(hat_layer(face_base, shape, np.random.default_rng(seed), style=style).alpha >= 0.5) for seed in range(4)]
    for h in hidden:
        assert 0.01 < h[R].mean() < 0.6, style  # part of the face region, never most of it
        assert h[parts["nose"]].mean() < 0.05 and h[parts["mouth"]].mean() < 0.05, style
    if style in ("crown", "cap", "beanie"):  # from above: the forehead
        assert np.mean([h[parts["forehead"]].mean() for h in hidden]) > 0.15, style
    else:  # framing the face: its left and right edges as well as its top
        lm = face_base.face.landmarks
        eyes = np.vstack([lm[list(LEFT_EYE)], lm[list(RIGHT_EYE)], lm[list(NOSE)]])
        assert all(not h[int(y), int(x)] for h in hidden for x, y in eyes), style


def test_styles_are_drawn_by_weight_and_unknown_ones_refused(base):
    face_base, shape = base
    assert abs(sum(w for _, w in HEADWEAR_STYLES) - 1) < 1e-9
    with pytest.raises(ValueError, match="unknown headwear style"):
        hat_layer(face_base, shape, np.random.default_rng(0), style="crown of thorns")
    layer = hat_layer(face_base, shape, np.random.default_rng(0))
    assert layer.kind == "hat" and layer.alpha.shape == shape and layer.rgb.shape == (*shape, 3)
