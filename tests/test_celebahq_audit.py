"""The committed audit of the CelebA-HQ hair-mask photos: well-formed, naming photos of the data folder with the
split and gender the data gives them, and read by the rule that decides whether a hair mask is a photo's truth."""

from __future__ import annotations

import csv

from occparse.synth.sources import (
    CELEBAHQ_AUDIT_KINDS,
    CELEBAHQ_AUDIT_OCCLUDING,
    celebahq_hair_audit,
    celebahq_split,
    hair_mask_occluders,
)

PLACES = {"forehead", "eyes", "nose", "mouth", "chin", "cheek", "jaw"}


def test_audit_rows_are_well_formed():
    audit = celebahq_hair_audit()
    assert len(audit) >= 100  # beards, hands, headbands, ...: on a good part of 600 photos
    for name, flags in audit.items():
        kinds = [f.kind for f in flags]
        assert len(kinds) == len(set(kinds)), name  # one row per thing seen
        for f in flags:
            assert f.filename == name and name.endswith(".jpg")
            assert f.kind in CELEBAHQ_AUDIT_KINDS and set(f.where.split("+")) <= PLACES, f
            assert f.severity in ("clear", "slight") and f.note, f
            assert f.split == celebahq_split(name, "celebahq_hair"), f


def test_audit_names_photos_of_the_data_folder(data_root):
    with open(data_root / "faces" / "celebahq_hair" / "attributes.csv", newline="") as fh:
        gender = {r["filename"]: r["gender"] for r in csv.DictReader(fh)}
    for name, flags in celebahq_hair_audit().items():
        assert name in gender, name
        assert all(f.gender == gender[name] for f in flags), name


def test_only_clear_occluders_make_a_hair_mask_incomplete():
    audit = celebahq_hair_audit()
    assert "face_paint" not in CELEBAHQ_AUDIT_OCCLUDING and "cut" not in CELEBAHQ_AUDIT_OCCLUDING
    assert {"hand", "headband", "microphone", "sunglasses"} <= set(CELEBAHQ_AUDIT_OCCLUDING)
    seen = {name: hair_mask_occluders(name) for name in audit}
    for name, flags in audit.items():
        expected = {f.kind for f in flags if f.severity == "clear" and f.kind in CELEBAHQ_AUDIT_OCCLUDING}
        assert seen[name] == sorted(expected), name
    assert any(seen.values()) and not all(seen.values())  # some photos only carry paint, a cut or slight flags
    assert hair_mask_occluders("not_audited.jpg") == []
