"""Training learns only from labels that mean occlusion: the LFW audit's regions are ignored, LFW truth
says which photos agree, and the CelebA-HQ hair pool labels only what its masks and attributes tell."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from occparse.cli import main
from occparse.labels import FACE, HAIR, IGNORE, split_facial_hair
from occparse.runtime.mesh import CHIN_BOTTOM, FOREHEAD_TOP, LEFT_EYE, RIGHT_EYE
from occparse.runtime.regions import face_region
from occparse.synth import sources
from occparse.synth.celebahq_pool import hair_pool_labels, is_clean, teaches_face, write_celebahq_hair_pool
from occparse.synth.engine import base_labels
from occparse.synth.sources import (
    LFW_AUDIT_WHERE,
    BaseFace,
    contradiction_region,
    lfw_label_audit,
    lfw_labels_agree,
    read_label_map,
)


def _lfw_base(data_root, name: str) -> BaseFace:
    d = data_root / "faces/lfw_parts"
    with open(d / "index.csv", newline="") as f:
        gender = next(r["gender"] for r in csv.DictReader(f) if r["filename"] == name)
    face = sources._mesh_cached([d / "images" / name], f"test_{name}", show_progress=False)[name]
    return BaseFace("lfw", d / "images" / name, d / "labels" / (name[:-4] + ".png"), gender, face)


def _audited(where: str, kind: str = "beard_as_skin") -> str:
    return next(n for n, rows in sorted(lfw_label_audit().items())
                if len(rows) == 1 and rows[0].where == where and rows[0].kind == kind)


@pytest.fixture(scope="module")
def bearded(data_root):
    return _lfw_base(data_root, _audited("lower_face"))


def _at(mask: np.ndarray, point: np.ndarray) -> bool:
    x, y = np.round(point).astype(int)
    return bool(mask[y, x])


def test_contradiction_regions_follow_where(bearded):
    face, shape = bearded.face, bearded.face.image_size
    lm = face.landmarks
    r = face_region(face, shape)
    chin = lm[CHIN_BOTTOM] + (lm[FOREHEAD_TOP] - lm[CHIN_BOTTOM]) * 0.05  # just inside R
    top = lm[FOREHEAD_TOP] + (lm[CHIN_BOTTOM] - lm[FOREHEAD_TOP]) * 0.05
    eye = lm[list(LEFT_EYE)].mean(0)
    masks = {w: contradiction_region(face, shape, w) for w in LFW_AUDIT_WHERE}
    for w, m in masks.items():
        assert m.shape == shape and m.dtype == bool and m.any(), w
    for w in ("mouth", "lower_face"):
        assert _at(masks[w], chin) and not _at(masks[w], top) and not _at(masks[w], eye)
    assert _at(masks["eyes"], eye) and _at(masks["eyes"], lm[list(RIGHT_EYE)].mean(0))
    assert not _at(masks["eyes"], chin) and not _at(masks["eyes"], top)
    assert _at(masks["forehead"], top) and not _at(masks["forehead"], chin) and not _at(masks["forehead"], eye)
    assert _at(masks["cheeks"], chin) and not _at(masks["cheeks"], top)
    assert not (masks["forehead"] & masks["cheeks"]).any()  # the brow line splits them
    for w in ("whole_face", "other"):
        assert (masks[w] | ~r).all()  # all of R
    with pytest.raises(ValueError, match="where must be one of"):
        contradiction_region(face, shape, "nose")


def test_audited_regions_are_ignored_in_training_labels(bearded):
    raw = split_facial_hair(read_label_map(bearded.label_path), bearded.face, bearded.gender)
    region = face_region(bearded.face, raw.shape)
    got = base_labels(bearded, region)
    zone = contradiction_region(bearded.face, raw.shape, "lower_face")
    assert zone.sum() > 0.1 * region.sum()
    assert (got[zone] == IGNORE).all()  # the beard labelled skin is never learnt from
    assert np.array_equal(got[~zone], raw[~zone])  # the rest of the map is unchanged
    assert ((raw[zone] == FACE).mean()) > 0.3  # (it really was labelled skin there)


def test_agreeing_photo_keeps_its_labels(data_root):
    with open(data_root / "faces/lfw_parts/index.csv", newline="") as f:
        name = next(r["filename"] for r in csv.DictReader(f) if r["split"] == "val" and lfw_labels_agree(r["filename"]))
    base = _lfw_base(data_root, name)
    raw = split_facial_hair(read_label_map(base.label_path), base.face, base.gender)
    assert np.array_equal(base_labels(base, face_region(base.face, raw.shape)), raw)


def test_lfw_photo_truth_marks_and_can_drop_contradicting_photos(data_root, bearded, tmp_path):
    from occparse.synth.writer import write_lfw_photo_truth

    with open(data_root / "faces/lfw_parts/index.csv", newline="") as f:
        name = next(r["filename"] for r in csv.DictReader(f) if lfw_labels_agree(r["filename"]))
    good = _lfw_base(data_root, name)
    synth = SimpleNamespace(faces=SimpleNamespace(of=lambda src: [good, bearded] if src == "lfw" else []))
    rows = _rows(write_lfw_photo_truth(synth, tmp_path / "all"))
    assert {r["base"]: r["lfw_labels"] for r in rows} == {good.name: "agree", bearded.name: "contradict"}
    rows = _rows(write_lfw_photo_truth(synth, tmp_path / "agree", agreeing_only=True))
    assert [r["base"] for r in rows] == [good.name]
    assert main(["synth", "--preset", "train", "--agreeing-labels", "--out", str(tmp_path / "x")]) == 2


def test_truth_region_follows_the_crown_where_the_label_map_shows_a_cap(data_root, tmp_path):
    """A cap pulls the mesh's forehead in; where the photo's own labels show it (LFW draws headwear as
    background), the truth's R reaches the mean face's outline as occparse's does, and counts the band."""
    from occparse.runtime.regions import face_region
    from occparse.synth.engine import base_visible, occlusion_of, truth_face
    from occparse.synth.writer import write_lfw_photo_truth

    capped = _lfw_base(data_root, "Barry_Zito_0002.jpg")  # a baseball cap low on the forehead (val, judged by eye)
    assert sources.lfw_val_headwear().get(capped.name) == "covers_face"
    crowned = truth_face(capped)
    assert crowned.crown_covered and not capped.face.crown_covered
    shape = read_label_map(capped.label_path).shape
    mesh_r, r = face_region(capped.face, shape), face_region(crowned, shape)
    assert (mesh_r & ~r).sum() == 0 and r.sum() > 1.03 * mesh_r.sum()
    gt_before = occlusion_of(mesh_r, base_visible(capped, mesh_r))
    gt = occlusion_of(r, base_visible(capped, r))
    assert gt > gt_before + 0.02  # the band is the cap: background in the labels, hidden face by the definition
    synth = SimpleNamespace(faces=SimpleNamespace(of=lambda src: [capped] if src == "lfw" else []))
    (row,) = _rows(write_lfw_photo_truth(synth, tmp_path / "t"))
    assert float(row["FaceOcclusion"]) == pytest.approx(gt, abs=1e-6)
    plain = _lfw_base(data_root, "Dianne_Feinstein_0002.jpg")  # bareheaded: R stays the restored mesh oval
    assert sources.lfw_val_headwear().get(plain.name) is None
    assert truth_face(plain) is plain.face
    # the synthetic engine's samples on that photo take the same R, and their crop's face says so
    from occparse.synth.engine import Synthesizer

    synth_bench = Synthesizer(data_root, "bench", limit=1, show_progress=False)
    sample = synth_bench.make(capped, np.random.default_rng(0), kinds=())
    assert np.array_equal(sample.base_region, r) and sample.face.crown_covered
    assert sample.occlusion == pytest.approx(gt, abs=1e-9)


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# --- the CelebA-HQ hair pool -----------------------------------------------------------------------


def _attrs(**on):
    keys = ("Wearing_Hat", "Eyeglasses", "Goatee", "Mustache", "Sideburns", "5_o_Clock_Shadow", "No_Beard", "Bangs")
    a = {k: False for k in keys}
    a["No_Beard"] = True
    a.update(on)
    return a


def test_clean_means_no_hat_glasses_or_facial_hair():
    assert is_clean(_attrs()) and is_clean(_attrs(Bangs=True))
    for k in ("Wearing_Hat", "Eyeglasses", "Goatee", "Mustache", "Sideburns", "5_o_Clock_Shadow"):
        assert not is_clean(_attrs(**{k: True})), k
    assert not is_clean(_attrs(No_Beard=False))
    assert not is_clean({})  # unknown attributes: not clean


def test_hair_pool_labels_on_a_tiny_map():
    hair = np.zeros((4, 5), np.uint8)
    hair[0, :] = 1
    hair[1, 2] = 1
    region = np.zeros((4, 5), bool)
    region[1:3, 1:4] = True
    clean = hair_pool_labels(hair, region, clean=True)
    assert (clean[hair == 1] == HAIR).all()
    assert (clean[region & (hair == 0)] == FACE).all()
    assert (clean[~region & (hair == 0)] == IGNORE).all()
    dirty = hair_pool_labels(hair, region, clean=False)
    assert (dirty[hair == 1] == HAIR).all() and (dirty[hair == 0] == IGNORE).all()
    with pytest.raises(ValueError, match="differ in shape"):
        hair_pool_labels(hair, region[:3], clean=True)


def test_celebahq_hair_pool_holds_train_photos_only(data_root, tmp_path):
    truth, counts = write_celebahq_hair_pool(data_root, tmp_path, variants=2, gray_every=2, limit=4,
                                             show_progress=False)
    rows = _rows(truth)
    assert counts["photos"] == 4 and counts["samples"] == len(rows) == 2 * (4 - counts["no_mesh"])
    photos = {p.name: p for p in sources.celebahq_photos(data_root, "celebahq_hair", "all")}
    for r in rows:
        p = photos[r["base"]]
        assert sources.celebahq_split(r["base"], "celebahq_hair") == "train"  # val is the benchmark's
        lab = cv2.imread(str(tmp_path / "labels" / (r["filename"][:-4] + ".png")), cv2.IMREAD_UNCHANGED)
        img = cv2.imread(str(tmp_path / "images" / r["filename"]))
        assert lab.shape == (224, 224) and img.shape == (224, 224, 3)
        values = set(np.unique(lab).tolist())
        assert values <= {FACE, HAIR, IGNORE}
        assert (FACE in values) == teaches_face(p)
        assert r["occluder"] == ("hair_mask" if teaches_face(p) else "hair_mask_partial")
        assert 0.0 <= float(r["FaceOcclusion"]) <= 1.0
    assert [r["is_gray"] for r in rows] == ["0", "1"] * (len(rows) // 2)  # every second copy gray
    with pytest.raises(ValueError, match="variants"):
        write_celebahq_hair_pool(data_root, tmp_path, variants=0)


def test_a_hand_or_headband_the_audit_saw_is_never_taught_as_face(data_root):
    photos = sources.celebahq_photos(data_root, "celebahq_hair", "train")
    flagged = [p for p in photos if is_clean(p.attributes) and sources.hair_mask_occluders(p.name)]
    assert flagged  # clean by the attributes, yet a hand, a headband, ... over the face
    assert not any(teaches_face(p) for p in flagged)
    assert all(teaches_face(p) for p in photos if is_clean(p.attributes) and p not in flagged)


def test_cli_celebahq_hair_preset(data_root, tmp_path, capsys):
    assert main(["synth", "--preset", "celebahq-hair", "--limit", "3", "--count", "6", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "(2 per photo)" in out and "train hair-mask photos" in out
    assert main(["synth", "--preset", "celebahq-hair", "--kind-weight", "mask=1", "--out", str(tmp_path)]) == 2
    assert main(["synth", "--preset", "celebahq-hair"]) == 2
