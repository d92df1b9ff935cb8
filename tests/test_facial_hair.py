"""Facial hair as its own class: the labelling rule, the synthetic kinds, the option, the report."""

from __future__ import annotations

import numpy as np
import pytest

from occparse.evaluation.metrics import evaluate
from occparse.labels import FACE, FACIAL_HAIR, HAIR, OCCLUDER, facial_hair_zone, split_facial_hair
from occparse.runtime.align import AlignedCrop
from occparse.runtime.mesh import CHIN_BOTTOM, FOREHEAD_TOP, NOSE_TIP
from occparse.runtime.occlusion import geometric_occlusion
from occparse.runtime.parsing import ParseResult
from occparse.runtime.regions import face_region


@pytest.fixture(scope="module")
def synth(data_root):
    from occparse.synth.engine import SynthConfig, Synthesizer

    return Synthesizer(data_root, "bench", SynthConfig.real(), ("lfw", "utkface"), limit=6, show_progress=False)


def _man(synth, source="lfw"):
    return next(f for f in synth.faces.of(source) if f.gender == "M")


def test_zone_is_the_lower_face(synth):
    base = _man(synth)
    shape = base.face.image_size
    zone = facial_hair_zone(base.face, shape)
    lm = base.face.landmarks
    _, down = base.face.axes()
    ys, xs = np.nonzero(zone)
    along = xs * down[0] + ys * down[1]
    assert along.min() > float(lm[NOSE_TIP] @ down)  # nothing at or above the nose tip
    chin = np.round(lm[CHIN_BOTTOM]).astype(int)
    assert zone[chin[1] - 1, chin[0]]
    top = np.round(lm[FOREHEAD_TOP]).astype(int)
    assert not zone[top[1], top[0]]
    region = face_region(base.face, shape)
    assert 0.15 < (zone & region).sum() / region.sum() < 0.6


def test_split_turns_only_mens_lower_hair_into_facial_hair(synth):
    base = _man(synth)
    shape = base.face.image_size
    labels = np.zeros(shape, np.uint8)
    labels[face_region(base.face, shape)] = FACE
    labels[: shape[0] // 4] = HAIR  # head hair at the top
    zone = facial_hair_zone(base.face, shape)
    beard = zone & face_region(base.face, shape)
    labels[beard] = HAIR
    man = split_facial_hair(labels, base.face, "M")
    assert (man[beard] == FACIAL_HAIR).all()
    assert (man[: shape[0] // 4] == HAIR).all()
    assert np.array_equal(split_facial_hair(labels, base.face, "F"), labels)


def test_beard_kind_is_labelled_and_occludes(synth):
    import numpy.random as npr

    for source in ("lfw", "utkface"):
        base = _man(synth, source)
        clean = synth.make(base, npr.default_rng(3), kinds=())
        for seed in range(4):
            s = synth.make(base, npr.default_rng([7, seed]), kinds=("beard",))
            assert (s.labels == FACIAL_HAIR).sum() > 50, (source, seed)
            assert s.occlusion > clean.occlusion + 0.02


def test_utkface_men_have_an_unknown_beard_zone(synth):
    from occparse.labels import IGNORE

    base = _man(synth, "utkface")
    s = synth.make(base, np.random.default_rng(1), kinds=())
    lower = s.labels[150:190, 90:134]  # chin area of the canonical crop
    assert (lower == IGNORE).mean() > 0.5


def test_look_alikes_change_the_picture_not_the_truth(synth):
    for kind in ("paint", "shadow"):
        for base in (synth.faces.of("lfw")[0], synth.faces.of("utkface")[0]):
            clean = synth.make(base, np.random.default_rng(5), kinds=(), gray=False)
            s = synth.make(base, np.random.default_rng(5), kinds=(kind,), gray=False)
            assert s.occlusion == clean.occlusion
            assert np.array_equal(s.base_visible, clean.base_visible)
            assert not np.isin(s.labels, [OCCLUDER]).any()


def _crop_with_beard():
    from occparse.runtime.align import CANONICAL_SIZE
    from occparse.runtime.mesh import Face

    rng = np.random.default_rng(0)
    # a round "face" of landmarks: only the oval matters to geometric_occlusion's R
    t = np.linspace(0, 2 * np.pi, 478, endpoint=False)
    pts = np.stack([112 + 80 * np.cos(t), 112 + 95 * np.sin(t)], 1).astype(np.float32)
    face = Face(pts, (CANONICAL_SIZE, CANONICAL_SIZE))
    crop = AlignedCrop(np.zeros((224, 224, 3), np.uint8), np.float32([[1, 0, 0], [0, 1, 0]]), face)
    labels = np.full((224, 224), FACE, np.uint8)
    labels[150:] = FACIAL_HAIR
    probs = np.zeros((5, 224, 224), np.float32)
    probs[labels, *np.indices(labels.shape)] = 1.0
    del rng
    return crop, ParseResult(labels, probs)


def test_facial_hair_option_moves_the_geometric_estimate():
    crop, parse = _crop_with_beard()
    occ = geometric_occlusion(crop, parse, (224, 224))
    vis = geometric_occlusion(crop, parse, (224, 224), facial_hair="visible")
    r = face_region(crop.face, (224, 224))
    share = float((r[150:]).sum()) / r.sum()
    assert occ.overall == pytest.approx(share, abs=1e-6)
    assert vis.overall == pytest.approx(0.0, abs=1e-6)
    assert occ.occluded_by.facial_hair == pytest.approx(1.0)
    assert vis.occluded_by.facial_hair == 0.0
    with pytest.raises(ValueError):
        geometric_occlusion(crop, parse, (224, 224), facial_hair="maybe")


def test_facial_hair_option_leaves_a_face_without_facial_hair_alone():
    """A faint facial-hair probability on a clean face (no pixel labelled facial hair) must not move any
    feature: before, --facial-hair visible added it to P(face) everywhere and lowered the final estimate."""
    crop, parse = _crop_with_beard()
    labels = np.full_like(parse.labels, FACE)
    probs = np.zeros_like(parse.probs)
    probs[FACE], probs[FACIAL_HAIR], probs[HAIR] = 0.8, 0.1, 0.1  # face wins everywhere, a little beard mass
    clean = ParseResult(labels, probs)
    occ = geometric_occlusion(crop, clean, (224, 224))
    vis = geometric_occlusion(crop, clean, (224, 224), facial_hair="visible")
    assert vis.overall == occ.overall == 0.0
    assert vis.soft == pytest.approx(occ.soft) and occ.soft == pytest.approx(0.2)
    # where facial hair is labelled, its probability does count as face
    _, beard = _crop_with_beard()
    assert geometric_occlusion(crop, beard, (224, 224), facial_hair="visible").soft == pytest.approx(0.0, abs=1e-6)


def test_evaluate_reports_bias_per_bin_and_facial_hair_groups():
    truth = [
        {"filename": f"{i}.jpg", "FaceOcclusion": str(gt), "gender": g, "facial_hair": str(fh)}
        for i, (gt, g, fh) in enumerate([(0.0, "F", 0.0), (0.01, "M", 0.0), (0.4, "M", 0.3), (0.5, "M", 0.35)])
    ]
    pred = {"0.jpg": "0.05", "1.jpg": "0.03", "2.jpg": "0.2", "3.jpg": "0.3"}
    ev = evaluate(pred, truth)
    groups = {g.name: g for g in ev.groups}
    heavy = next(g for name, g in groups.items() if name.startswith("gt [0.300"))
    assert heavy.n == 2 and heavy.bias == pytest.approx(-0.2)
    light = next(g for name, g in groups.items() if name.startswith("gt [0.000"))
    assert light.bias == pytest.approx(0.035)
    assert groups["full beard"].n == 2 and groups["full beard"].bias == pytest.approx(-0.2)
    assert groups["no facial hair"].n == 2
