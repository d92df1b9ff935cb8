"""Dark lenses: the test, the lens mask, the attribute pool's sunglasses labels and the pipeline's step."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from occparse.labels import FACE, IGNORE, OCCLUDER
from occparse.runtime.lenses import LENS_P90, dark_lens_pixels, dark_lenses, lens_mask, search_ellipses
from occparse.synth.celebahq_attr_pool import sunglasses_labels

ROOT = Path(__file__).resolve().parents[1]


def _lens_face(lens_luma: float | None, size: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """A flat grey 'face' (luminance 150) with the canonical mesh's landmarks, two eyes drawn as a white
    with a dark iris, and, with ``lens_luma``, a dark lens ellipse over each eye (a highlight inside)."""
    from occparse.runtime.pipeline import canonical_face

    face = canonical_face((size, size))
    luma = np.full((size, size), 150.0, np.float32)
    lm = face.landmarks
    for a, b in ((33, 133), (263, 362)):
        c = (lm[a, :2] + lm[b, :2]) / 2
        w = float(np.linalg.norm(lm[a, :2] - lm[b, :2]))
        cv2.ellipse(luma, (int(c[0]), int(c[1])), (int(w / 2), int(w / 5)), 0, 0, 360, 235, -1)  # the white
        cv2.circle(luma, (int(c[0]), int(c[1])), int(w / 6), 40, -1)  # the iris
        if lens_luma is not None:
            cv2.ellipse(luma, (int(c[0]), int(c[1])), (int(0.8 * w), int(0.55 * w)), 0, 0, 360, lens_luma, -1)
            cv2.circle(luma, (int(c[0] - w / 4), int(c[1] - w / 8)), 2, 250, -1)  # a highlight on the lens
    return luma, lm


def test_dark_lenses_and_their_mask_follow_the_pixels():
    luma, lm = _lens_face(None)
    assert not dark_lenses(luma, lm, 150.0)  # an open eye shows its white
    luma, lm = _lens_face(20.0)
    assert dark_lenses(luma, lm, 150.0)
    assert not dark_lenses(luma, lm, 0.0)  # no skin to compare with
    assert not dark_lenses(luma, lm, 20.0 / LENS_P90 * 0.5)  # darker skin: the lens is not dark enough against it
    lens, searched = lens_mask(luma, lm, 150.0)
    drawn = luma <= 21
    assert (lens <= searched).all() and lens.sum() > 0
    assert (lens & drawn).sum() / drawn.sum() > 0.9  # the lens, with its highlight filled
    assert (lens & ~drawn).sum() < 0.05 * lens.sum()
    assert np.array_equal(searched, search_ellipses(luma.shape, lm))


def test_sunglasses_labels_mark_dark_lenses_only():
    luma, lm = _lens_face(20.0)
    h, w = luma.shape
    probs = np.zeros((5, h, w), np.float32)
    probs[FACE] = 0.95  # a teacher that reads the lenses as face, as a parser taught on pasted ones does
    region = np.ones((h, w), bool)
    lab = sunglasses_labels(probs, luma, lm, region)
    assert lab is not None
    lens, searched = lens_mask(luma, lm, 150.0)
    assert (lab[lens] == OCCLUDER).all()
    assert (lab[searched & ~lens] == IGNORE).all() and (lab[~searched] == FACE).all()
    clear, lm = _lens_face(None)
    assert sunglasses_labels(probs, clear, lm, region) is None  # clear glasses: skipped
    probs[FACE] = 0.5
    assert sunglasses_labels(probs, luma, lm, region) is None  # no sure skin to compare with


def test_dark_lens_pixels_need_a_skin_reference_and_dark_eyes():
    luma, lm = _lens_face(20.0)
    rgb = np.repeat(luma.clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
    region = np.ones(luma.shape, bool)
    sure = np.full(luma.shape, 0.95, np.float32)
    lens = dark_lens_pixels(rgb, sure, region, lm)
    assert lens is not None and np.array_equal(lens, lens_mask(luma.clip(0, 255).astype(np.uint8).astype(np.float32),
                                                                lm, 150.0)[0])
    assert dark_lens_pixels(rgb, np.full(luma.shape, 0.5, np.float32), region, lm) is None  # no sure skin
    clear, lm = _lens_face(None)
    rgb = np.repeat(clear.clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
    assert dark_lens_pixels(rgb, sure, region, lm) is None


def _painted_lenses(rgb: np.ndarray, face) -> np.ndarray:
    """The photo with a near-black lens painted over each eye (a highlight on each)."""
    out = rgb.copy()
    lm = face.landmarks
    for a, b in ((33, 133), (263, 362)):
        c = (lm[a, :2] + lm[b, :2]) / 2
        w = float(np.linalg.norm(lm[a, :2] - lm[b, :2]))
        cv2.ellipse(out, (int(c[0]), int(c[1])), (int(0.75 * w), int(0.55 * w)), 0, 0, 360, (18, 18, 22), -1)
        cv2.circle(out, (int(c[0] - w / 4), int(c[1] - w / 8)), max(1, int(w / 12)), (200, 200, 200), -1)
    return out


def test_the_pipeline_reads_painted_dark_lenses_as_hidden_eyes():
    """Whatever the parser makes of them, dark lenses over both eyes hide the eyes; the warning says so,
    a clean face gets neither, and the option turns the step off."""
    from occparse.runtime.io import read_image
    from occparse.runtime.label_rules import with_dark_lenses
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    rgb = read_image(ROOT / "examples" / "astronaut.png").rgb
    est = Estimator()
    clean = est.analyze(rgb)
    assert not any(w.startswith("dark_lenses") for w in clean.result.faces[0].warnings)
    assert with_dark_lenses(clean.faces[0].crop, clean.faces[0].parse) is clean.faces[0].parse
    painted = _painted_lenses(rgb, clean.faces[0].face)
    got = est.analyze(painted)
    f = got.result.faces[0]
    assert any(w.startswith("dark_lenses") for w in f.warnings)
    eyes = {r.name: r.fraction for r in f.regions}
    assert eyes["left_eye"] >= 0.5 and eyes["right_eye"] >= 0.5
    labels = got.faces[0].parse.labels
    assert (labels == OCCLUDER).any() and not (labels == IGNORE).any()
    off_detail = Estimator(EstimatorOptions(dark_lenses=False)).analyze(painted).faces[0]
    off = off_detail.result
    assert not any(w.startswith("dark_lenses") for w in off.warnings)
    moved = (off_detail.parse.labels == FACE) & (labels == OCCLUDER)
    assert moved.any() and ((off_detail.parse.labels != labels) <= moved).all()  # only face -> occluder
    assert (got.faces[0].parse.probs[FACE][moved] == 0).all()  # the soft estimate follows the labels
    assert f.occlusion >= off.occlusion - 1e-6 and f.geometric > off.geometric


def test_real_dark_sunglasses_read_as_hidden_eyes(data_root):
    """CelebA-HQ val 03824 (a man in dark sunglasses and a red cap): the parser alone read his eyes as
    visible; with the dark-lens step both eyes read hidden."""
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    photo = data_root / "faces" / "celebahq" / "images" / "03824.jpg"
    on = Estimator().analyze(photo).result.faces[0]
    off = Estimator(EstimatorOptions(dark_lenses=False)).analyze(photo).result.faces[0]
    eyes = {r.name: r.fraction for r in on.regions}
    assert any(w.startswith("dark_lenses") for w in on.warnings)
    assert eyes["left_eye"] >= 0.5 and eyes["right_eye"] >= 0.5
    assert on.geometric > off.geometric
