"""The --visualize picture: size and layout, one row per face, shares that add up, no crash on odd faces."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from occparse.runtime import visualize as V
from occparse.runtime.regions import REGION_NAMES
from occparse.runtime.results import FaceResult, OccluderShare, RegionOcclusion

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
BAR_RED = np.array(V.class_colour("occluder"), np.uint8)  # a bar with no breakdown of what hides it


@pytest.fixture(scope="module")
def estimator():
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    return Estimator(EstimatorOptions(detector_scores=False))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.asarray(Image.open(EXAMPLE).convert("RGB"))


def _analyze(estimator, rgb: np.ndarray, tmp_path: Path, name: str):
    p = tmp_path / name
    Image.fromarray(rgb).save(p)
    return estimator.analyze(p)


def _face_result(regions: dict[str, float], geometric=0.2, occlusion=0.2, regressor=0.2, share=None) -> FaceResult:
    return FaceResult(
        occlusion=occlusion, geometric=geometric,
        regions=[RegionOcclusion(n, regions.get(n, 0.0)) for n in REGION_NAMES],
        occluded_by=share or OccluderShare(0.5, 0.3, 0.2), box=(0, 0, 10, 10), landmark_confidence=None,
        parser_confidence=0.9, is_gray=False, face_size=10.0, regressor=regressor,
    )


def _expected_shape(n_faces: int) -> tuple[int, int, int]:
    return V.HEADER_H + V.ROW_H * n_faces, V.TILE + V.PANEL_W, 3


def test_one_face_picture_and_zoom(estimator, astronaut, tmp_path):
    an = _analyze(estimator, astronaut, tmp_path, "one.png")
    assert len(an.faces) == 1
    pic = V.draw_estimate(an)
    assert pic.shape == _expected_shape(1) and pic.dtype == np.uint8
    # The face fills the zoom tile: the green R outline spans at least MIN_FACE_PX rows of the tile.
    tile = pic[V.HEADER_H :, : V.TILE]
    green = np.all(tile == np.array(V.R_GREEN, np.uint8), axis=-1)
    rows = np.flatnonzero(green.any(axis=1))
    assert rows.max() - rows.min() >= 0.9 * V.MIN_FACE_PX


def test_one_row_per_face_and_max_faces(estimator, astronaut, tmp_path):
    two = np.hstack([astronaut, astronaut[:, ::-1]])
    an = _analyze(estimator, two, tmp_path, "two.png")
    assert len(an.faces) == 2
    assert V.draw_estimate(an).shape == _expected_shape(2)
    assert V.draw_estimate(an, max_faces=1).shape == _expected_shape(1)


def test_cli_all_faces_draws_every_face(estimator, astronaut, tmp_path):
    from occparse.cli import main

    src = tmp_path / "group.png"
    Image.fromarray(np.hstack([astronaut, astronaut[:, ::-1]])).save(src)
    for flags, n in (([], 1), (["--all-faces"], 2)):
        out = tmp_path / f"v{n}.png"
        assert main(["estimate", str(src), "--visualize", str(out), *flags]) == 0
        w, h = Image.open(out).size
        assert (h, w) == _expected_shape(n)[:2]


def test_face_cut_by_the_border_and_tiny_face(estimator, astronaut, tmp_path):
    cut = _analyze(estimator, np.ascontiguousarray(astronaut[110:, 120:]), tmp_path, "cut.png")
    assert len(cut.faces) == 1 and cut.faces[0].face.box[1] < 0  # the oval runs off the top
    assert V.draw_estimate(cut).shape == _expected_shape(1)

    small = cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA)
    an = _analyze(estimator, small, tmp_path, "tiny.png")
    assert len(an.faces) == 1 and an.faces[0].result.face_size < 40
    assert V.zoom_matrix(an.faces[0].face.box)[0, 0] * an.faces[0].result.face_size >= V.MIN_FACE_PX - 1
    assert V.draw_estimate(an).shape == _expected_shape(1)


def test_no_face_gives_the_header_only(estimator, tmp_path):
    an = _analyze(estimator, np.full((200, 200, 3), 128, np.uint8), tmp_path, "grey.png")
    assert not an.faces
    assert V.draw_estimate(an).shape == _expected_shape(0)


def test_shares_of_r_add_up_and_take_extra_classes():
    res = _face_result({}, geometric=0.086, share=OccluderShare(0.99, 0.0, 0.01))
    shares = dict(V.shares_of_r(res))
    assert set(shares) == {"face", "hair", "occluder", "background", "facial_hair"}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["face"] == pytest.approx(0.914)

    res = dataclasses.replace(res, occluded_by=OccluderShare(0.4, 0.1, 0.1, 0.4))
    shares = dict(V.shares_of_r(res))
    assert shares["facial_hair"] == pytest.approx(0.086 * 0.4)
    assert sum(shares.values()) == pytest.approx(1.0)
    panel = V.draw_panel(res, 0, 1)  # the legend draws the extra class with its own colour
    assert np.all(panel == np.array(V.class_colour("facial hair"), np.uint8), axis=-1).sum() > 50


def test_the_part_outside_the_photo_is_its_own_share():
    """A face the border cuts: the part of R outside the photo is shown as such, not under the classes
    that hide the part inside (whose shares describe only that part)."""
    res = dataclasses.replace(_face_result({}, geometric=0.30, share=OccluderShare(0.0, 1.0, 0.0)), out_of_frame=0.25)
    shares = dict(V.shares_of_r(res))
    assert shares[V.OUTSIDE] == pytest.approx(0.25)
    assert shares["occluder"] == pytest.approx(0.05)
    assert shares["face"] == pytest.approx(0.70)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert V.class_colour(V.OUTSIDE) != V.FALLBACK_COLOUR


def test_nothing_hidden_still_sums_to_one():
    shares = dict(V.shares_of_r(_face_result({}, geometric=0.0, share=OccluderShare(0.0, 0.0, 0.0))))
    assert shares["face"] == 1.0 and sum(shares.values()) == 1.0


@pytest.mark.parametrize("values", [[0.914, 0.0853, 0.0, 0.0007], [1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
def test_percent_labels_add_up_to_100(values):
    labels = V.percent_labels(values)
    assert sum(float(s.rstrip("%")) for s in labels) == pytest.approx(100.0)
    for s, v in zip(labels, values, strict=True):
        assert abs(float(s.rstrip("%")) - 100 * v) < 0.1 + 1e-9


def test_zero_bars_have_no_tick():
    bars = slice(230, None)  # the region bars, below the class swatches (which use the same colours)
    zero = V.draw_panel(_face_result({}), 0, 1)[bars]
    assert not np.all(zero == BAR_RED, axis=-1).any()
    some = V.draw_panel(_face_result({"forehead": 0.35, "chin": float("nan")}), 0, 1)[bars]
    assert np.all(some == BAR_RED, axis=-1).sum() > 100


def test_explanation_outside_both_components_or_away_from_the_tint():
    assert V.explain_final(_face_result({}, geometric=0.086, regressor=0.083, occlusion=0.104)).startswith("Why above")
    assert V.explain_final(_face_result({}, geometric=0.002, regressor=0.037, occlusion=0.0)).startswith("Why below")
    # between the two, far from the tinted (geometric) share: say why the headline differs from the tint
    why = V.explain_final(_face_result({}, geometric=0.303, regressor=0.137, occlusion=0.249))
    assert why.startswith("Why below the tinted share?") and "30.3%" in why and "13.7%" in why
    assert V.explain_final(_face_result({}, geometric=0.0, regressor=0.128, occlusion=0.037)).startswith("Why above the")
    assert V.explain_final(_face_result({}, geometric=0.12, regressor=0.08, occlusion=0.11)) is None  # near the tint
    assert V.explain_final(_face_result({}, geometric=0.1, regressor=None, occlusion=0.3)) is None


def test_region_bars_take_the_colour_of_what_hides_them():
    hair, occluder = np.array(V.class_colour("hair"), np.uint8), np.array(V.class_colour("occluder"), np.uint8)
    res = _face_result({"forehead": 0.6, "mouth": 0.6})
    hiders = {"forehead": [("hair", 1.0)], "mouth": [("occluder", 0.5), ("facial_hair", 0.5)]}
    panel = V.draw_panel(res, 0, 1, hiders=hiders)[230:]  # the bars, below the class swatches
    assert np.all(panel == hair, axis=-1).sum() > 100  # the forehead's bar is hair, not occluder red
    red = np.all(panel == occluder, axis=-1).sum()
    brown = np.all(panel == np.array(V.class_colour("facial_hair"), np.uint8), axis=-1).sum()
    assert red > 50 and abs(red - brown) < 0.2 * red  # the mouth's bar is split half and half


def test_beard_region_bars_and_legend_name_only_what_is_there(estimator, tmp_path):
    case = Path(__file__).resolve().parents[2] / "shared" / "cases" / "beard_natural.jpg"
    if not case.is_file():
        pytest.skip("../shared/cases not found")
    an = estimator.analyze(case)
    hiders = V.region_hiders(an.faces[0])
    assert hiders["chin"][0][0] == "facial_hair"  # the beard, not an occluder, hides the chin
    header_with = V.draw_header(None, [], "t", 940, {"face", "facial_hair"})
    header_all = V.draw_header(None, [], "t", 940, None)
    swatch = np.array(V.class_colour("occluder"), np.uint8)
    assert not np.all(header_with == swatch, axis=-1).any() and np.all(header_all == swatch, axis=-1).any()


def test_a_face_the_border_cuts_shows_the_outside_part_as_such(estimator, astronaut, tmp_path):
    """The astronaut cut by the left border: the legend and each region's bar give the part outside the
    photo its own share, as large as the reported out-of-frame share, and not the parser's classes
    (the crop's border there is a mirror of the photo)."""
    full = _analyze(estimator, astronaut, tmp_path, "full.png")
    x0 = int(full.faces[0].result.box[0] + 0.3 * (full.faces[0].result.box[2] - full.faces[0].result.box[0]))
    an = _analyze(estimator, np.ascontiguousarray(astronaut[:, x0:]), tmp_path, "cut.png")
    res = an.faces[0].result
    assert res.out_of_frame > 0.1
    shares = dict(V.shares_of_r(res))
    assert shares[V.OUTSIDE] == pytest.approx(res.out_of_frame, abs=1e-6)
    assert sum(shares.values()) == pytest.approx(1.0)
    hiders = V.region_hiders(an.faces[0])
    cut = [name for name in hiders if hiders[name] and hiders[name][0][0] == V.OUTSIDE]
    assert cut  # at least one region is hidden mostly by the border


def test_a_region_the_border_cuts_is_outlined_past_the_border(estimator, astronaut, tmp_path):
    """The sub-region outlines are drawn whole, over the grey outside the photo too: a region mostly outside
    gets its outline (and so its name) where the region is, not on the sliver left at the border."""
    full = _analyze(estimator, astronaut, tmp_path, "full.png")
    x0 = int(full.faces[0].result.box[0] + 0.3 * (full.faces[0].result.box[2] - full.faces[0].result.box[0]))
    cut = np.ascontiguousarray(astronaut[:, x0:])
    an = _analyze(estimator, cut, tmp_path, "cut.png")
    tile = V.draw_face_tile(cut, an.faces[0])
    m = V.zoom_matrix(an.faces[0].face.box)
    h, w = cut.shape[:2]
    outside = ~cv2.warpAffine(np.ones((h, w), np.uint8), m, (V.TILE, V.TILE), flags=cv2.INTER_NEAREST).astype(bool)
    outside = cv2.erode(outside.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # clear of the border
    white = (tile == 255).all(axis=2)
    assert np.count_nonzero(white & outside) > 50  # outline pixels in the grey, where the cut regions lie
