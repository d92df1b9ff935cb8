"""The committed audit of the LFW Part Labels: well-formed, and naming real photos of the data folder."""

from __future__ import annotations

import csv

from occparse.synth.sources import LFW_AUDIT_KINDS, LFW_AUDIT_WHERE, lfw_label_audit, lfw_val_headwear


def test_audit_rows_are_well_formed():
    audit = lfw_label_audit()
    assert len(audit) >= 100  # beards, sunglasses, ... labelled skin: about one photo in ten
    for name, rows in audit.items():
        for r in rows:
            assert r.filename == name and name.endswith(".jpg")
            assert r.kind in LFW_AUDIT_KINDS and r.where in LFW_AUDIT_WHERE, r
            assert r.split in ("train", "val") and r.gender in ("F", "M") and r.severity in ("clear", "minor"), r
            assert r.note and "," not in r.note


def test_audit_names_photos_of_the_data_folder(data_root):
    with open(data_root / "faces" / "lfw_parts" / "index.csv", newline="") as f:
        index = {r["filename"]: r for r in csv.DictReader(f)}
    for name, rows in lfw_label_audit().items():
        assert name in index, name
        assert all(r.split == index[name]["split"] and r.gender == index[name]["gender"] for r in rows), name


def test_headwear_list_names_val_photos_of_the_data_folder(data_root):
    from importlib import resources

    with open(data_root / "faces" / "lfw_parts" / "index.csv", newline="") as f:
        split = {r["filename"]: r["split"] for r in csv.DictReader(f)}
    text = resources.files("occparse.synth").joinpath("lfw_val_headwear.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) == len({r["filename"] for r in rows}) >= 30  # one row per photo
    for r in rows:
        assert split.get(r["filename"]) == "val", r["filename"]
        assert r["headwear"] in ("cap", "hat", "helmet", "beanie", "hood", "scarf", "headband", "turban", "other"), r
        assert r["covers_face"] in ("yes", "no")
    assert set(lfw_val_headwear().values()) == {"covers_face", "above_face"}
