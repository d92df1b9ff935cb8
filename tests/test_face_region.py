"""The restored face region R: a clean face keeps the mesh's oval, an oval pulled in (a cap brim) is
restored, the rule follows the head's pose, and a painted cap raises the reading."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from occparse.labels import BACKGROUND, OCCLUDER
from occparse.runtime import regions
from occparse.runtime.io import read_image
from occparse.runtime.mesh import FACE_OVAL

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def _top(mask: np.ndarray, down: np.ndarray) -> float:
    ys, xs = np.nonzero(mask)
    return float((xs * down[0] + ys * down[1]).min())


@pytest.fixture(scope="module")
def astronaut(mesher):
    rgb = read_image(EXAMPLE).rgb
    return rgb, mesher.detect(rgb)[0]


def test_prior_asset_is_small_and_complete():
    p = regions.oval_prior()
    assert set(p) >= {"anchors", "oval", "template", "weights", "oval_mean", "tolerance"}
    assert tuple(p["oval"]) == FACE_OVAL
    assert p["weights"].shape == (3 * len(p["anchors"]), 3 * len(FACE_OVAL))
    assert (p["tolerance"] > 0).all() and (p["tolerance"] < 0.2).all()  # face-size units
    from importlib import resources

    assert resources.files("occparse.assets").joinpath(regions.PRIOR_FILE).stat().st_size < 200_000


def test_clean_face_keeps_the_mesh_oval(astronaut):
    _, face = astronaut
    mesh = regions._fill(face.image_size, face.oval)
    r = regions.face_region(face)
    assert (r >= mesh).all()  # R never shrinks below the mesh's oval
    assert _iou(r, mesh) >= 0.97


def test_a_face_without_depth_is_not_restored(astronaut):
    _, face = astronaut
    flat = replace(face, depth=None)  # a key-point fit: the mean face already
    assert regions.restored_outline(flat) is None
    assert np.array_equal(regions.face_region(flat), regions._fill(face.image_size, face.oval))


def test_an_oval_pulled_in_at_the_top_is_restored(astronaut):
    """The mesh under a cap brim: the forehead points drawn down towards the eyes by 10% of the face
    height, everything else in place. R's top comes back to within 2% of the face height."""
    _, face = astronaut
    across, down = face.axes()
    lm = face.landmarks.copy()
    top = float((face.oval @ down).min())
    height = face.height
    for i in FACE_OVAL:
        above = float(lm[i] @ down) - top
        if above < 0.25 * height:  # the upper quarter of the oval: pulled down, most at the top
            lm[i] = lm[i] + down * 0.1 * height * (1 - above / (0.25 * height))
    pulled = replace(face, landmarks=lm)
    mesh_top = _top(regions._fill(face.image_size, pulled.oval), down)
    r_top = _top(regions.face_region(pulled), down)
    clean_top = _top(regions.face_region(face), down)
    assert mesh_top - clean_top > 0.08 * height  # the pulled oval lost the forehead top
    assert abs(r_top - clean_top) < 0.02 * height  # R restored it
    assert regions.restored_outline(pulled) is not None


def test_restoring_follows_the_head_pose(astronaut):
    """The prior works in a pose-normalised frame: turning and scaling the photo turns and scales the
    restored outline with it."""
    _, face = astronaut
    lm = face.landmarks.copy()
    _, down = face.axes()
    lm[10] = lm[10] + down * 0.08 * face.height  # pull the top in so that something is restored
    lm[[338, 109]] += down * 0.05 * face.height
    pulled = replace(face, landmarks=lm)
    out = regions.restored_outline(pulled)
    assert out is not None
    m = cv2.getRotationMatrix2D((256, 256), 35, 0.6)
    turned = pulled.transformed(m, (512, 512))
    out_t = regions.restored_outline(turned)
    assert out_t is not None
    expect = out @ m[:, :2].T + m[:, 2]
    assert np.abs(out_t - expect).max() < 0.5  # pixels


def _pulled_top(face, amount: float = 0.1):
    """The face with its oval's upper quarter drawn down towards the eyes (most at the top), as a cap
    brim pulls the mesh in."""
    _, down = face.axes()
    lm = face.landmarks.copy()
    top = float((face.oval @ down).min())
    for i in FACE_OVAL:
        above = float(lm[i] @ down) - top
        if above < 0.25 * face.height:
            lm[i] = lm[i] + down * amount * face.height * (1 - above / (0.25 * face.height))
    return replace(face, landmarks=lm)


def _crown_band(face) -> np.ndarray:
    """The pixels between R and the mean face's outline above the eyebrows (where the crown test looks)."""
    from occparse.runtime.mesh import LEFT_BROW, RIGHT_BROW

    shape = face.image_size
    _, down = face.axes()
    brow = max(float(face.landmarks[i] @ down) for i in LEFT_BROW + RIGHT_BROW)
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]]
    return regions._fill(shape, regions.crown_outline(face)) & ~regions.face_region(face) & ((xs * down[0] + ys * down[1]) < brow)


def test_an_occluder_over_the_top_restores_r_up_to_the_mean_face(astronaut):
    """The crown rule: where the parser labels an occluder over the band above a pulled-in forehead, R's
    upper outline reaches the mean face's; hair there (where hair grows) or a face without that label
    keeps R as the prior alone restores it. The test follows the labels, not a picture."""
    from occparse.labels import HAIR

    _, face = astronaut
    pulled = _pulled_top(face, 0.12)
    band = _crown_band(pulled)
    assert band.sum() > 0.005 * regions.face_region(pulled).sum()
    labels = np.full(face.image_size, BACKGROUND, np.uint8)
    labels[band] = HAIR
    assert not regions.crown_covered(pulled, labels, OCCLUDER)
    labels[band] = OCCLUDER
    assert regions.crown_covered(pulled, labels, OCCLUDER)
    labels[band & (np.arange(face.image_size[1])[None, :] % 3 != 0)] = HAIR  # a third occluder: not enough
    assert not regions.crown_covered(pulled, labels, OCCLUDER)
    # a cap the parser reads as the scene behind counts where background is named as covering
    labels[band] = BACKGROUND
    assert not regions.crown_covered(pulled, labels, OCCLUDER)
    assert regions.crown_covered(pulled, labels, (OCCLUDER, BACKGROUND))
    got = regions.crown_band(pulled, labels, (OCCLUDER, BACKGROUND))
    assert got is not None and np.array_equal(got, band)
    labels[band] = OCCLUDER

    _, down = face.axes()
    crowned = replace(pulled, crown_covered=True)
    r, rc = regions.face_region(pulled), regions.face_region(crowned)
    assert (rc >= r).all() and rc.sum() > r.sum()
    mean_top = float((regions.crown_outline(pulled) @ down).min())
    assert abs(_top(rc, down) - mean_top) < 0.01 * face.height  # the top is the mean face's
    # only the upper outline moves: below the eyes R is unchanged
    eyes = float(np.mean([face.landmarks[i] @ down for i in (33, 263)]))
    ys, xs = np.mgrid[0:face.image_size[0], 0:face.image_size[1]]
    below = (xs * down[0] + ys * down[1]) > eyes
    assert np.array_equal(r & below, rc & below)
    # the flag travels with the face into a crop's geometry
    m = cv2.getRotationMatrix2D((256, 256), 20, 0.7)
    assert crowned.transformed(m, (512, 512)).crown_covered
    assert not regions.crown_covered(replace(pulled, depth=None), labels, OCCLUDER)
    # a cap over a forehead the mesh found whole (its oval where the prior puts it: nothing pulled in)
    # leaves R as it is, however much of the band above is occluder
    lm = face.landmarks.copy()
    lm[list(FACE_OVAL)] = regions.predicted_oval(face.landmarks, face.depth)[0]
    whole = replace(face, landmarks=lm)
    assert regions.restored_outline(whole) is None
    clean_labels = np.full(face.image_size, OCCLUDER, np.uint8)
    clean_labels[regions.face_region(whole)] = BACKGROUND
    assert not regions.crown_covered(whole, clean_labels, OCCLUDER)


def _paint_cap(rgb: np.ndarray, face, depth: float = 0.45) -> tuple[np.ndarray, np.ndarray]:
    """A dark cap crown over the top ``depth`` of the way from R's top to the eyebrows, with a visor."""
    from occparse.runtime.mesh import LEFT_BROW, RIGHT_BROW

    h, w = rgb.shape[:2]
    across, down = face.axes()
    top = float((face.oval @ down).min())
    brow = float(np.mean([face.landmarks[i] @ down for i in LEFT_BROW + RIGHT_BROW]))
    cut = top + depth * (brow - top)
    c = face.oval.mean(0)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    pa = xs * down[0] + ys * down[1]
    pc = (xs - c[0]) * across[0] + (ys - c[1]) * across[1]
    half = 0.5 * float(np.ptp(face.oval @ across))
    crown = (pa < cut) & (((pa - cut) / (1.3 * half)) ** 2 + (pc / (1.2 * half)) ** 2 < 1)
    visor = (pa >= cut) & (((pa - cut) / (0.12 * half)) ** 2 + (pc / (1.05 * half)) ** 2 < 1)
    cap = crown | visor
    out = rgb.copy()
    out[cap] = (25, 30, 60)
    return out, cap


def test_a_painted_cap_raises_the_reading_and_keeps_the_top(astronaut):
    """A low cap: R on the capped photo still holds what the cap hides of the clean face's R (the
    region's part, parser aside), the top of R stays within 1.5% of the face height, and the reading
    rises by at least half of what the cap newly hides (the clean photo's visible face under it; the
    astronaut's hairline was hidden already). The parser's labels of a flat painted cap vary with
    where it sits (benchmarks/painted_caps.py measures 120 faces); this brim is one it reads. The
    astronaut's mesh hardly moves under this paint: the pull-in itself is tested above."""
    from occparse.labels import FACE
    from occparse.runtime.pipeline import Estimator

    rgb, _ = astronaut
    est = Estimator()
    clean = est.analyze(rgb)
    painted, cap = _paint_cap(rgb, clean.faces[0].face, depth=0.8)
    capped = est.analyze(painted)
    f0, f1 = clean.faces[0].face, capped.faces[0].face
    r0, r1 = regions.face_region(f0), regions.face_region(f1)
    hidden = float((cap & r0).sum() / r0.sum())
    assert hidden > 0.15
    assert abs(float((cap & r1).sum() / r1.sum()) - hidden) < 0.02
    _, down = f0.axes()
    assert abs(_top(r1, down) - _top(r0, down)) < 0.015 * f0.height
    newly = float((cap & r0 & (clean.label_map() == FACE)).sum() / r0.sum())
    rise = capped.result.faces[0].occlusion - clean.result.faces[0].occlusion
    assert rise > 0.5 * newly > 0.03
    assert capped.result.faces[0].region("forehead") >= 0.3


def test_a_region_the_pose_turns_away_has_no_value():
    from occparse.runtime.occlusion import region_with_out_of_frame

    nan = float("nan")
    assert region_with_out_of_frame(nan, 0.0) != region_with_out_of_frame(nan, 0.0)  # empty in R: NaN
    assert region_with_out_of_frame(nan, 1.0) == 1.0  # wholly outside the frame: hidden
    assert region_with_out_of_frame(0.2, 0.5) == pytest.approx(0.6)


def test_a_turned_head_reports_its_far_side_as_turned_away(data_root):
    """A CelebA-HQ face turned about 55 degrees under a cap: the oval's far side runs across the nose,
    so the nose, the far eye and the far cheek have no pixels in R. They read null with a warning,
    not 100% hidden."""
    import math

    from occparse.runtime.pipeline import Estimator

    res = Estimator().estimate(data_root / "faces/celebahq/images/13498.jpg").faces[0]
    assert abs(res.pose.yaw) > 40
    away = [r.name for r in res.regions if math.isnan(r.fraction)]
    assert "nose" in away
    assert all(0.0 <= r.fraction <= 1.0 for r in res.regions if r.name not in away)
    assert any(w.startswith("turned_away:") and "nose" in w for w in res.warnings)


def test_the_pipeline_applies_the_crown_to_both_geometries(astronaut, monkeypatch):
    """Where the crown test holds, the face is crowned in the photo's and the crop's geometry alike, the
    reported numbers use that R, the subject stays the subject and the warning says so; the option
    turns it off."""
    from occparse.runtime import label_rules
    from occparse.runtime.occlusion import crop_footprint
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    rgb, _ = astronaut
    seen = {}

    def top_rows(face, labels, covering, valid=None):  # the test holds; the band is the crop's top rows
        seen["covering"] = covering
        band = np.zeros(labels.shape, bool)
        band[:8] = True
        return band

    monkeypatch.setattr(label_rules, "crown_band", top_rows)
    a = Estimator().analyze(rgb)
    d = a.faces[0]
    assert d.face.crown_covered and d.crop.face.crown_covered
    assert set(seen["covering"]) == {OCCLUDER, BACKGROUND}
    assert not (d.parse.labels[:8] == BACKGROUND).any()  # the band's background is the cap: occluder
    assert a.result.faces[0].subject
    assert any(w.startswith("crown:") for w in a.result.faces[0].warnings)
    shape = d.parse.labels.shape
    want = regions.face_region(d.crop.face, shape) & crop_footprint(d.crop, rgb.shape[:2])
    assert np.array_equal(d.geometry.region_mask, want)
    off = Estimator(EstimatorOptions(crown=False)).analyze(rgb).faces[0]
    assert not off.face.crown_covered and not any(w.startswith("crown") for w in off.result.warnings)
