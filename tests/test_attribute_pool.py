"""The CelebA-HQ attribute pool: which photos it uses, how the attributes correct the teacher's labels,
and a short run on the data folder with the shipped parser as teacher."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from occparse.cli import main
from occparse.labels import BACKGROUND, FACE, FACIAL_HAIR, HAIR, IGNORE, OCCLUDER
from occparse.runtime.regions import face_region
from occparse.synth import sources
from occparse.synth.celebahq_attr_pool import (
    attribute_labels,
    hat_labels,
    is_glasses_photo,
    is_hat_photo,
    lower_face,
    moustache_band,
    photo_kind,
    write_celebahq_attribute_pool,
)

ROOT = Path(__file__).resolve().parents[1]
TEACHER = ROOT / "weights" / "parser.onnx"

CLEAN = {"Wearing_Hat": False, "Eyeglasses": False, "Goatee": False, "Mustache": False, "Sideburns": False,
         "5_o_Clock_Shadow": False, "No_Beard": True, "Bangs": False, "Bald": False, "Receding_Hairline": False,
         "Gray_Hair": False}


def _photo(gender="M", **attrs) -> sources.CelebAPhoto:
    return sources.CelebAPhoto("celebahq", Path("1.jpg"), None, gender, {**CLEAN, **attrs})


def test_photo_kind_follows_the_attributes():
    assert photo_kind(_photo()) == "plain"
    assert photo_kind(_photo(Gray_Hair=True)) == "light_hair"
    assert photo_kind(_photo(Goatee=True, No_Beard=False)) == "beard"
    assert photo_kind(_photo(Sideburns=True, No_Beard=False, Eyeglasses=True)) is None  # dark or clear: unknown
    assert photo_kind(_photo("F", Sideburns=True)) is None  # not clean, and not a man's beard
    assert photo_kind(_photo(Goatee=True, Bangs=True)) is None  # forehead unknown
    assert photo_kind(_photo(Wearing_Hat=True)) is None
    assert photo_kind(_photo(Eyeglasses=True)) is None  # glasses may be dark: not clean, not a beard
    assert photo_kind(_photo(**{"5_o_Clock_Shadow": True})) is None  # stubble: neither beard nor clean
    missing = replace(_photo(), attributes={})
    assert photo_kind(missing) is None  # a missing attribute counts against the photo


def _probs(h=6, w=6) -> np.ndarray:
    """Teacher probabilities: left half face (0.9), right half facial hair 0.35 + hair 0.05 + face 0.6."""
    p = np.zeros((5, h, w), np.float32)
    p[FACE, :, : w // 2] = 0.9
    p[BACKGROUND, :, : w // 2] = 0.1
    p[FACE, :, w // 2 :] = 0.6
    p[FACIAL_HAIR, :, w // 2 :] = 0.35
    p[HAIR, :, w // 2 :] = 0.05
    return p


def test_beard_photo_teaches_the_beardlike_pixels_of_the_zone():
    p = _probs()
    zone = np.zeros((6, 6), bool)
    zone[3:] = True
    lab = attribute_labels(p, zone, "beard", np.ones_like(zone), beard_threshold=0.3, confidence=0.8)
    assert (lab[3:, 3:] == FACIAL_HAIR).all()  # 0.35 + 0.05 >= 0.3, although the teacher says face
    assert (lab[3:, :3] == FACE).all()  # zone, but sure skin (face 0.9 >= 0.8): bare skin beside the beard
    assert (lab[:3, :3] == FACE).all()  # outside the zone: the confident teacher
    assert (lab[:3, 3:] == IGNORE).all()  # outside the zone, unconfident (0.6 < 0.8): sideburns may be there
    clean = attribute_labels(p, np.zeros_like(zone), "plain", np.ones_like(zone))
    assert (clean[:, 3:] == FACE).all()  # a clean face: the teacher's first choice face is face, sure or not
    assert (attribute_labels(p, np.zeros_like(zone), "plain")[:, 3:] == IGNORE).all()  # without R: only sure pixels
    strict = attribute_labels(p, zone, "beard", beard_threshold=0.5)
    assert (strict[3:, 3:] == IGNORE).all()  # neither beard-like enough nor sure skin: unknown
    assert (attribute_labels(p, zone, "beard", confidence=0.95)[3:, :3] == IGNORE).all()


def test_beard_rule_needs_darker_than_skin_and_spares_the_lips():
    p = np.zeros((5, 12, 12), np.float32)
    p[FACE, :6], p[HAIR, :6] = 0.9, 0.1  # sure skin above the zone, the reference for the luminance test
    p[FACE, 6:], p[FACIAL_HAIR, 6:] = 0.6, 0.4  # the zone: beard-like to the teacher everywhere
    zone = np.zeros((12, 12), bool)
    zone[6:] = True
    luma = np.full((12, 12), 100.0, np.float32)
    luma[6:, :6] = 60.0  # darker than 0.8 x 100: a beard
    luma[6:, 6:] = 95.0  # as light as the skin: dark skin the teacher calls beard-like
    lips = np.zeros((12, 12), bool)
    lips[8:10, 2:4] = True  # dark lips inside the dark part
    lab = attribute_labels(p, zone, "beard", np.ones_like(zone), luma=luma, lips=lips)
    beard = zone & ~lips
    beard[:, 6:] = False
    assert (lab[beard] == FACIAL_HAIR).all()
    assert (lab[lips] == FACE).all()  # lips are face, never facial hair
    assert (lab[6:, 6:] == IGNORE).all()  # beard-like but not darker than the skin: unknown
    assert (lab[:6] == FACE).all()
    loose = attribute_labels(p, zone, "beard", np.ones_like(zone), luma=luma, beard_contrast=1.0)
    assert (loose[6:, 6:] == FACIAL_HAIR).all()  # a looser contrast lets the lighter pixels through
    off = attribute_labels(p, zone, "beard", np.ones_like(zone), luma=luma, beard_contrast=0.0)
    assert (off[zone] == FACIAL_HAIR).all()  # 0: no luminance test (and no lips given)
    with pytest.raises(ValueError, match="beard_contrast"):
        attribute_labels(p, zone, "beard", luma=luma, beard_contrast=float("nan"))
    few = p.copy()
    few[FACE, :6] = 0.5  # no sure skin to compare with: no pixel is called a beard
    assert not (attribute_labels(few, zone, "beard", luma=luma) == FACIAL_HAIR).any()
    with pytest.raises(ValueError, match="differ in shape"):
        attribute_labels(p, zone, "beard", luma=luma[:3])


def test_moustache_photo_never_teaches_the_upper_lip_as_face():
    p = np.zeros((5, 12, 12), np.float32)
    p[FACE], p[HAIR] = 0.9, 0.1  # a teacher sure of skin everywhere: it misses the moustache
    zone = np.zeros((12, 12), bool)
    zone[6:] = True
    luma = np.full((12, 12), 100.0, np.float32)
    band = np.zeros((12, 12), bool)
    band[6:8, 2:10] = True  # the upper lip
    luma[6:8, 2:6] = 50.0  # a dark moustache on its left half; the right half is as light as the skin
    lips = np.zeros((12, 12), bool)
    lips[7, 4:8] = True
    plain_beard = attribute_labels(p, zone, "beard", np.ones_like(zone), luma=luma, lips=lips)
    assert (plain_beard[band & ~lips] == FACE).all()  # without the attribute: the teacher's sure skin is taught
    lab = attribute_labels(p, zone, "beard", np.ones_like(zone), luma=luma, lips=lips, moustache=band)
    dark = band & ~lips & (luma <= 80)
    assert dark.any() and (lab[dark] == FACIAL_HAIR).all()  # darker than the skin: the moustache
    assert (lab[band & ~lips & ~dark] == IGNORE).all()  # skin-light upper lip: unknown, never face
    assert (lab[lips] == FACE).all() and (lab[zone & ~band] == FACE).all()  # lips and the rest of the zone as before
    assert (lab[:6] == FACE).all()
    with pytest.raises(ValueError, match="differ in shape"):
        attribute_labels(p, zone, "beard", luma=luma, moustache=band[:5])
    # without luminance, or without sure skin to compare with, the band is never face and never facial hair
    blind = attribute_labels(p, zone, "beard", np.ones_like(zone), lips=lips, moustache=band)
    assert (blind[band & ~lips] == IGNORE).all()
    unsure = p.copy()
    unsure[FACE], unsure[HAIR] = 0.5, 0.5
    lab = attribute_labels(unsure, zone, "beard", np.ones_like(zone), luma=luma, lips=lips, moustache=band)
    assert not (lab == FACIAL_HAIR)[band].any()


def test_moustache_band_lies_between_the_nose_and_the_lips(data_root):
    photo = next(p for p in sources.celebahq_photos(data_root, "celebahq", "train") if p.attributes["Mustache"])
    face = sources._mesh_cached([photo.image_path], "celebahq", False)[photo.name]
    lm = face.landmarks
    band = moustache_band(lm, face.image_size)
    ys, xs = np.nonzero(band)
    philtrum = np.round((lm[2, :2] + lm[0, :2]) / 2).astype(int)  # between the subnasale and the upper lip's top
    assert band[philtrum[1], philtrum[0]]
    # below the nose's wings, above the lower lip (image y grows downwards), and a small part of the face
    assert ys.min() >= min(lm[98, 1], lm[327, 1]) - 1 and ys.max() <= lm[17, 1] + 1
    assert 20 < band.sum() < 0.05 * face_region(face).sum()


def test_plain_photo_turns_facial_hair_in_the_zone_into_face():
    p = np.zeros((5, 4, 4), np.float32)
    p[FACIAL_HAIR] = 0.9
    p[FACE] = 0.1
    p[HAIR, :, :2], p[FACIAL_HAIR, :, :2] = 0.9, 0.0
    zone = np.zeros((4, 4), bool)
    zone[2:] = True
    for kind in ("plain", "light_hair"):
        lab = attribute_labels(p, zone, kind)
        assert (lab[2:, 2:] == FACE).all()  # no facial hair on a clean face
        assert (lab[2:, :2] == IGNORE).all()  # hair there may be long head hair
        assert (lab[:2, 2:] == FACIAL_HAIR).all() and (lab[:2, :2] == HAIR).all()  # outside the zone: teacher
    with pytest.raises(ValueError, match="kind"):
        attribute_labels(p, zone, "hat")
    with pytest.raises(ValueError, match="differ in shape"):
        attribute_labels(p, zone[:3], "plain")


@pytest.mark.skipif(not TEACHER.is_file(), reason="the shipped parser is not in weights/")
def test_attribute_pool_holds_train_photos_only(data_root, tmp_path):
    caps = {"beard": 2, "light_hair": 1, "plain": 1}
    truth, counts = write_celebahq_attribute_pool(data_root, tmp_path, TEACHER, caps, gray_every=2,
                                                  show_progress=False)
    with open(truth, newline="") as f:
        rows = list(csv.DictReader(f))
    assert counts["samples"] == len(rows) == 4 - counts["no_mesh"]
    photos = {p.name: p for p in sources.celebahq_photos(data_root, "celebahq", "all")}
    for r in rows:
        p = photos[r["base"]]
        assert sources.celebahq_split(r["base"], "celebahq") == "train"  # val is the benchmark's
        kind = photo_kind(p)
        assert r["occluder"] == f"attr_{kind}" and counts[kind] <= caps[kind]
        lab = cv2.imread(str(tmp_path / "labels" / (r["filename"][:-4] + ".png")), cv2.IMREAD_UNCHANGED)
        assert lab.shape == (224, 224)
        assert set(np.unique(lab).tolist()) <= {BACKGROUND, FACE, HAIR, OCCLUDER, FACIAL_HAIR, IGNORE}
        assert (lab == FACE).mean() > 0.05  # the face stays taught
        if kind != "beard":
            assert (lab == FACIAL_HAIR).mean() < 0.02  # only outside the zone, where the teacher is sure
        assert 0.0 <= float(r["FaceOcclusion"]) <= 1.0
    assert [r["is_gray"] for r in rows] == ["0", "1"] * (len(rows) // 2) + ["0"] * (len(rows) % 2)


def test_cli_celebahq_attributes_preset(data_root, tmp_path, capsys):
    if not TEACHER.is_file():
        pytest.skip("the shipped parser is not in weights/")
    args = ["synth", "--preset", "celebahq-attributes", "--teacher", str(TEACHER), "--out", str(tmp_path)]
    caps = ["--max-per-kind", "beard=1", "--max-per-kind", "light_hair=0", "--max-per-kind", "plain=1"]
    assert main(args + caps) == 0
    assert "1 beard, 0 light-hair and 1 plain" in capsys.readouterr().out
    assert main(args + caps + ["--hand-rate", "1"]) == 0
    assert "2 with a pasted hand" in capsys.readouterr().out
    assert main(args + ["--max-per-kind", "beard=1", "--max-per-kind", "light_hair=0", "--max-per-kind", "plain=2",
                        "--gender", "F", "--beard-threshold", "0.5"]) == 0
    assert "0 beard, 0 light-hair and 2 plain" in capsys.readouterr().out  # a woman's photo is never a beard photo
    none = ["--max-per-kind", "beard=0", "--max-per-kind", "light_hair=0", "--max-per-kind", "plain=0"]
    assert main(args + none + ["--max-per-kind", "sunglasses=1"]) == 0
    out = capsys.readouterr().out
    assert "1 samples:" in out and "sunglasses: 1 photos with dark lenses labelled" in out
    with open(tmp_path / "truth.csv", newline="") as f:
        assert [r["occluder"] for r in csv.DictReader(f)] == ["attr_sunglasses"]
    assert main(args + ["--beard-threshold", "0"]) == 2
    assert main(args + none + ["--max-per-kind", "hat=2"]) == 0
    out = capsys.readouterr().out
    assert "2 samples:" in out and "hats: 2 photos with the forehead pulled in labelled" in out
    with open(tmp_path / "truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["occluder"] for r in rows] == ["attr_hat", "attr_hat"]
    for r in rows:  # the band above the pulled-in forehead is taught as occluder
        lab = cv2.imread(str(tmp_path / "labels" / (r["filename"][:-4] + ".png")), cv2.IMREAD_UNCHANGED)
        assert (lab[:112] == OCCLUDER).sum() > 50
    # the truth is measured in the runtime's crowned R: recompute it from the photo's own mesh and labels
    from occparse.runtime.align import align
    from occparse.runtime.regions import crowned_region
    from occparse.synth.sources import _mesh_cached, celebahq_photos, read_rgb

    photos = {p.name: p for p in celebahq_photos(data_root, "celebahq", "train")}
    for r in rows:
        p = photos[r["base"]]
        lab = cv2.imread(str(tmp_path / "labels" / (r["filename"][:-4] + ".png")), cv2.IMREAD_UNCHANGED)
        face = _mesh_cached([p.image_path], "celebahq", False)[p.name]
        crop = align(read_rgb(p.image_path), face, lab.shape[0])
        region = crowned_region(crop.face, lab.shape)
        hidden = float((region & (lab != FACE) & (lab != IGNORE)).sum()) / region.sum()
        assert float(r["FaceOcclusion"]) == pytest.approx(hidden, abs=0.01)
        # and the crown's band is in it: R without the band reads a clearly different share
        plain = face_region(crop.face, lab.shape)
        without = float((plain & (lab != FACE) & (lab != IGNORE)).sum()) / plain.sum()
        assert abs(float(r["FaceOcclusion"]) - without) > 0.01
    assert main(args + ["--max-per-kind", "cap=3"]) == 2
    assert main(args + ["--count", "5"]) == 2
    assert main(["synth", "--preset", "celebahq-attributes", "--teacher", str(tmp_path / "none.onnx"),
                 "--out", str(tmp_path)]) == 2
    assert main(["synth", "--preset", "train", "--teacher", str(TEACHER), "--out", str(tmp_path)]) == 2
    assert main(["synth", "--preset", "train", "--gender", "M", "--out", str(tmp_path)]) == 2
    assert main(args + ["--hand-rate", "1", "--hand-lower-face", "1.5"]) == 2
    assert main(args + ["--hand-lower-face", "0.5"]) == 2  # places pasted hands: needs --hand-rate
    assert main(args + ["--hand-rate", "0", "--hand-lower-face", "0.5"]) == 2
    assert "needs --hand-rate above 0" in capsys.readouterr().err
    assert main(args + ["--hand-rate", "1.5"]) == 2
    assert "--hand-rate must be in 0..1" in capsys.readouterr().err
    assert main(["synth", "--preset", "train", "--hand-lower-face", "0.5", "--out", str(tmp_path)]) == 2


@pytest.mark.skipif(not TEACHER.is_file(), reason="the shipped parser is not in weights/")
def test_pasted_hands_are_occluder_in_the_labels(data_root, tmp_path):
    caps = {"beard": 0, "light_hair": 0, "plain": 2}
    _, clean = write_celebahq_attribute_pool(data_root, tmp_path / "clean", TEACHER, caps, show_progress=False)
    _, counts = write_celebahq_attribute_pool(data_root, tmp_path / "hands", TEACHER, caps, hand_rate=1.0, seed=3,
                                              show_progress=False)
    assert counts["hands"] == counts["samples"] == clean["samples"] and clean["hands"] == 0
    for name in sorted(p.name for p in (tmp_path / "hands" / "labels").iterdir()):
        with_hand = cv2.imread(str(tmp_path / "hands" / "labels" / name), cv2.IMREAD_UNCHANGED)
        without = cv2.imread(str(tmp_path / "clean" / "labels" / name), cv2.IMREAD_UNCHANGED)
        new = (with_hand == OCCLUDER) & (without != OCCLUDER)
        assert new.sum() > 200  # the hand, as occluder
        a = cv2.imread(str(tmp_path / "hands" / "images" / name.replace(".png", ".jpg"))).astype(int)
        b = cv2.imread(str(tmp_path / "clean" / "images" / name.replace(".png", ".jpg"))).astype(int)
        assert np.abs(a - b).sum(axis=2)[new].mean() > 10  # and it is in the picture where the labels say
    with pytest.raises(ValueError, match="hand_rate"):
        write_celebahq_attribute_pool(data_root, tmp_path / "x", TEACHER, caps, hand_rate=1.5)


def test_lower_face_hands_go_to_the_chin_and_cheeks(data_root):
    from occparse.runtime.faces import FaceMesher
    from occparse.synth.occluders import hand_layer
    from occparse.synth.sources import BaseFace, OccluderLibrary, read_rgb

    photo = sources.celebahq_photos(data_root, "celebahq", "train")[0]
    rgb = read_rgb(photo.image_path)
    with FaceMesher() as mesher:
        face = mesher.detect(rgb)[0]
    base = BaseFace("celebahq", photo.image_path, None, photo.gender, face)
    lib = OccluderLibrary(data_root, "train")
    _, down = face.axes()
    eyes = face.key_points()[:2].mean(0)
    mouth = face.key_points()[3:].mean(0)

    def below_mouth(lower: float) -> list[float]:
        rng = np.random.default_rng(7)
        out = []
        for _ in range(30):
            a = hand_layer(base, rgb.shape[:2], lib, rng, aim=True, lower_face=lower).alpha
            ys, xs = np.nonzero(a >= 0.5)
            if len(xs):
                c = np.array([xs.mean(), ys.mean()])
                out.append(float((c - mouth) @ down / ((mouth - eyes) @ down)))
        return out

    usual, lower = below_mouth(0.0), below_mouth(1.0)
    assert np.median(lower) > np.median(usual) + 0.2  # in eye-mouth distances: the hands sit lower
    # without lower_face the engines draw exactly as before the option existed: the generator's next
    # value after ten hands, as the code before it gave (numpy's streams do not depend on the machine)
    for aim, after in ((True, 0.1876749402345188), (False, 0.7132578641244521)):
        rng = np.random.default_rng(5)
        for _ in range(10):
            hand_layer(base, rgb.shape[:2], lib, rng, aim=aim)
        assert rng.random() == pytest.approx(after, abs=1e-15)


@pytest.mark.skipif(not TEACHER.is_file(), reason="the shipped parser is not in weights/")
def test_beard_photo_lips_are_never_facial_hair_in_the_pool(data_root, tmp_path):
    from occparse.runtime.align import CANONICAL_SIZE, align
    from occparse.runtime.mesh import OUTER_LIPS
    from occparse.runtime.regions import _fill
    from occparse.synth.sources import _mesh_cached, celebahq_photos, read_rgb

    caps = {"beard": 3, "light_hair": 0, "plain": 0}
    write_celebahq_attribute_pool(data_root, tmp_path, TEACHER, caps, gray_every=0, show_progress=False)
    with open(tmp_path / "truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    photos = {p.name: p for p in celebahq_photos(data_root, "celebahq", "train")}
    meshes = _mesh_cached([photos[r["base"]].image_path for r in rows], "celebahq", False)
    for r in rows:
        face = meshes[r["base"]]
        rgb = read_rgb(photos[r["base"]].image_path)
        lips = _fill(rgb.shape[:2], cv2.convexHull(face.landmarks[list(OUTER_LIPS)].astype(np.float32))[:, 0])
        crop = align(rgb, face, CANONICAL_SIZE)
        crop_lips = align(lips.astype(np.uint8), face, CANONICAL_SIZE, nearest=True, matrix=crop.matrix,
                          fill=0).image.astype(bool)
        lab = cv2.imread(str(tmp_path / "labels" / r["filename"].replace(".jpg", ".png")), cv2.IMREAD_UNCHANGED)
        assert crop_lips.sum() > 100
        assert not (lab[crop_lips] == FACIAL_HAIR).any() and (lab[crop_lips] == FACE).all()
    with pytest.raises(ValueError, match="hand_lower_face"):
        write_celebahq_attribute_pool(data_root, tmp_path / "x", TEACHER, caps, hand_rate=0.5, hand_lower_face=1.5)
    with pytest.raises(ValueError, match="needs hand_rate"):
        write_celebahq_attribute_pool(data_root, tmp_path / "x", TEACHER, caps, hand_lower_face=0.5)


def test_glasses_photos_are_sunglasses_candidates_only_without_hat_or_fringe():
    assert is_glasses_photo(_photo(Eyeglasses=True))
    assert not is_glasses_photo(_photo(Eyeglasses=True, Wearing_Hat=True))
    assert not is_glasses_photo(_photo(Eyeglasses=True, Bangs=True))
    assert not is_glasses_photo(_photo())


def test_hat_labels_teach_the_pulled_band_as_occluder_but_not_a_sure_forehead():
    probs = np.zeros((5, 6, 6), np.float32)
    probs[HAIR] = 0.9  # a dark cap the teacher reads as hair
    probs[FACE, 3:] = 0.95
    probs[HAIR, 3:] = 0.05
    probs[FACE, 2], probs[HAIR, 2] = 0.6, 0.4  # unsure
    band = np.zeros((6, 6), bool)
    band[1:4] = True
    lab = hat_labels(probs, band)
    assert (lab[0] == HAIR).all()  # outside the band: the teacher's confident label
    assert (lab[1:3] == OCCLUDER).all()  # the band: the hat, whatever the teacher read, unless it is sure of face
    assert (lab[3] == IGNORE).all() and (lab[4:] == FACE).all()
    assert is_hat_photo(_photo(Wearing_Hat=True)) and not is_hat_photo(_photo())
    assert not is_hat_photo(_photo(Wearing_Hat=True, Bangs=True))  # a fringe would lie in the taught band
    with pytest.raises(ValueError):
        hat_labels(probs, band[:5])
    # the lower face follows the attributes, as in the other kinds
    probs[:, 4:] = 0.0
    probs[FACIAL_HAIR, 4:] = 0.9
    probs[FACE, 4:] = 0.1
    zone = np.zeros((6, 6), bool)
    zone[4:] = True
    assert (hat_labels(probs, band, zone=zone, lower="clean")[4:] == FACE).all()
    assert (hat_labels(probs, band, zone=zone, lower="stubble")[4:] == IGNORE).all()
    assert (hat_labels(probs, band, zone=zone, lower="beard")[4:] == FACIAL_HAIR).all()
    assert lower_face(dict(CLEAN)) == "clean"
    assert lower_face({**CLEAN, "5_o_Clock_Shadow": True, "No_Beard": False}) == "stubble"
    assert lower_face({**CLEAN, "Mustache": True, "No_Beard": False}) == "beard"
    with pytest.raises(ValueError):
        hat_labels(probs, band, lower="bald")
