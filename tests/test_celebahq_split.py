"""The fixed CelebA-HQ train/val split: stable (a file name's side never moves), disjoint, and the
shares it promises; on the data folder when present."""

from __future__ import annotations

import hashlib

import pytest

from occparse.synth.sources import (
    CELEBAHQ_VAL_PERCENT,
    HOLDOUT_BUCKETS,
    celebahq_photos,
    celebahq_split,
    stable_bucket,
)

# Pinned: a change of the rule would move benchmark photos into training (and back). The bucket is
# the first 8 hex digits of sha1(name) mod 100; val is the last 20 (attribute photos) or 40 (hair masks).
PINNED = {
    "27639.jpg": ("train", "train"),
    "27642.jpg": ("val", "val"),  # bucket 90
    "27644.jpg": ("train", "val"),  # bucket 68: val only in the hair-mask folder
    "27656.jpg": ("val", "val"),  # bucket 94
    "00003.jpg": ("train", "train"),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_split_is_pinned(name):
    assert (celebahq_split(name, "celebahq"), celebahq_split(name, "celebahq_hair")) == PINNED[name]


def test_split_follows_the_name_hash_and_keeps_holdout_in_train():
    for i in range(2000):
        name = f"{i:05d}.jpg"
        bucket = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) % 100  # independent of stable_bucket
        assert stable_bucket(name) == bucket
        for folder, pct in CELEBAHQ_VAL_PERCENT.items():
            assert celebahq_split(name, folder) == ("val" if bucket >= 100 - pct else "train")
            if bucket < HOLDOUT_BUCKETS:  # a training command's holdout never takes a val photo
                assert celebahq_split(name, folder) == "train"


def test_split_refuses_unknown_folder(tmp_path):
    with pytest.raises(ValueError, match="celebahq_hair"):
        celebahq_split("1.jpg", "lfw_parts")
    with pytest.raises(ValueError, match="split must be"):
        celebahq_photos(tmp_path, "celebahq", "test")


@pytest.mark.parametrize("folder", sorted(CELEBAHQ_VAL_PERCENT))
def test_split_on_the_data_is_disjoint_complete_and_near_its_share(data_root, folder):
    every = celebahq_photos(data_root, folder, "all")
    train = {p.name for p in celebahq_photos(data_root, folder, "train")}
    val = {p.name for p in celebahq_photos(data_root, folder, "val")}
    assert not train & val
    assert train | val == {p.name for p in every}
    assert len(every) == len(train) + len(val)  # no name twice in attributes.csv
    share = len(val) / len(every)
    assert abs(share - CELEBAHQ_VAL_PERCENT[folder] / 100) < 0.04, share
    # every listed photo is there (and its mask, for the hair-mask folder)
    assert all(p.image_path.is_file() for p in every)
    assert all(p.hair_path is None or p.hair_path.is_file() for p in every)


def test_the_two_folders_hold_different_photos(data_root):
    """The hair-mask photos are not among the attribute photos: the two splits can never disagree."""
    attr = {p.name for p in celebahq_photos(data_root, "celebahq", "all")}
    hair = {p.name for p in celebahq_photos(data_root, "celebahq_hair", "all")}
    assert attr and hair and not attr & hair
