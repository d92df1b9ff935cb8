"""The synthetic occlusion engine: ground truth checked independently, determinism, splits, the CLI."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from occparse.cli import main
from occparse.runtime.mesh import Face
from occparse.synth import sources
from occparse.synth.engine import IGNORE, KINDS, NEGATIVE_KINDS, Synthesizer, bench_tasks, occlusion_of
from occparse.synth.writer import TRUTH_COLUMNS

LABEL_VALUES = {0, 1, 2, 3, 4, 255}


@pytest.fixture(scope="module")
def synth(data_root):
    # 3 LFW val faces + 3 benchmark UTKFace faces: small and fast
    s = Synthesizer(data_root, "bench", limit=3, show_progress=False)
    assert {f.source for f in s.faces.faces} == {"lfw", "utkface"}
    return s


def _bases(synth):
    """One LFW base (pixel labels) and one UTKFace base (V = R)."""
    return [synth.faces.of("lfw")[0], synth.faces.of("utkface")[0]]


def _my_region(base) -> np.ndarray:
    """R rasterised here, independently of occparse.runtime.regions' rasteriser: the filled face-oval polygon
    united with its restored outline (the outline is the definition's, ``regions.region_outline``), at the
    image's size."""
    from occparse.runtime.regions import region_outline

    img = cv2.imread(str(base.image_path))
    mask = np.zeros(img.shape[:2], np.uint8)
    for outline in (base.face.oval, region_outline(base.face)):
        cv2.fillPoly(mask, [np.round(outline).astype(np.int32)], 1)
    return mask.astype(bool)


def _my_visible(base, region: np.ndarray) -> np.ndarray:
    """V of the unoccluded base: LFW skin label (1); UTKFace has no pixel labels, so V = R."""
    if base.source == "lfw":
        lab = cv2.imread(str(base.label_path), cv2.IMREAD_GRAYSCALE)
        assert lab is not None and lab.shape == region.shape
        return lab == 1
    assert base.label_path is None
    return region.copy()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def _ratio_occlusion(region: np.ndarray, visible: np.ndarray) -> float:
    return 1.0 - float(np.count_nonzero(visible & region)) / float(np.count_nonzero(region))


@pytest.mark.parametrize("kind", KINDS)
def test_ground_truth_is_the_pixel_ratio(synth, kind):
    for base in _bases(synth):
        clean = synth.make(base, np.random.default_rng(11), kinds=())
        s = synth.make(base, np.random.default_rng(11), kinds=(kind,))
        assert s.kinds == (kind,) and clean.kinds == ()
        r = _my_region(base)
        v = _my_visible(base, s.base_region)
        # R is the unoccluded base image's face oval, at the base image's resolution
        assert s.base_region.shape == r.shape
        assert _iou(s.base_region, r) > 0.99
        assert np.array_equal(s.base_region, clean.base_region)
        # V only ever loses pixels to occluders, and is exactly the base V when nothing is pasted
        assert np.array_equal(clean.base_visible, v)
        assert not (s.base_visible & ~v).any()
        # GT = 1 - |V ∩ R| / |R|, recomputed here from the sample's own masks ...
        assert s.occlusion == pytest.approx(_ratio_occlusion(s.base_region, s.base_visible), abs=1e-12)
        expected_clean = _ratio_occlusion(clean.base_region, clean.base_visible)
        assert clean.occlusion == pytest.approx(expected_clean, abs=1e-12)
        # ... and from this test's own R and V for the clean sample
        assert clean.occlusion == pytest.approx(_ratio_occlusion(r, v), abs=0.01)
        assert 0.0 <= clean.occlusion <= s.occlusion <= 1.0
        if base.source == "utkface":
            assert clean.occlusion == 0.0  # V = R: nothing is occluded before pasting
        # the crop's labels hold only the known classes, and the pasted kind shows up in them
        assert set(np.unique(s.labels).tolist()) <= LABEL_VALUES
        assert s.labels.shape == s.image.shape[:2] == (synth.config.size, synth.config.size)
        if s.occlusion > clean.occlusion + 0.01:
            assert (s.labels == {"hair": 2, "beard": 4}.get(kind, 3)).any()


def test_region_occlusion_matches_masks(synth):
    from occparse.runtime.regions import face_regions

    base = _bases(synth)[0]
    s = synth.make(base, np.random.default_rng(3), kinds=("hand",))
    parts = face_regions(base.face, s.base_region.shape).parts
    for name, value in s.region_occlusion.items():
        assert value == pytest.approx(occlusion_of(parts[name], s.base_visible))
        assert 0.0 <= value <= 1.0


def test_mask_hides_the_mouth(synth):
    for base in synth.faces.faces:
        for seed in range(3):
            s = synth.make(base, np.random.default_rng(seed), kinds=("mask",))
            assert s.region_occlusion["mouth"] >= 0.8, (base.name, seed)
            assert s.region_occlusion["forehead"] < 0.2, (base.name, seed)
            assert s.occlusion > 0.25


def test_sunglasses_hide_both_eyes(synth):
    # The eye regions are the eye and lids (brows belong to the forehead): lenses cover nearly all of them.
    for base in synth.faces.faces:
        for seed in range(3):
            s = synth.make(base, np.random.default_rng(seed), kinds=("sunglasses",))
            assert s.region_occlusion["left_eye"] >= 0.8, (base.name, seed)
            assert s.region_occlusion["right_eye"] >= 0.8, (base.name, seed)
            assert s.region_occlusion["mouth"] < 0.1, base.name


def test_same_seed_same_bytes(synth):
    base = synth.faces.faces[1]
    a = synth.make(base, np.random.default_rng([5, 1]), kinds=("hand", "glasses"))
    b = synth.make(base, np.random.default_rng([5, 1]), kinds=("hand", "glasses"))
    assert a.image.tobytes() == b.image.tobytes()
    assert a.labels.tobytes() == b.labels.tobytes()
    assert a.occlusion == b.occlusion and a.is_gray == b.is_gray
    c = synth.make(base, np.random.default_rng([6, 1]), kinds=("hand", "glasses"))
    assert c.image.tobytes() != a.image.tobytes()
    # the random stream too
    for i in range(4):
        x, y = synth.random_sample(9, i), synth.random_sample(9, i)
        assert x.image.tobytes() == y.image.tobytes() and x.kinds == y.kinds and x.occlusion == y.occlusion


def test_labels_and_gray(synth):
    seen = set()
    for i in range(12):
        s = synth.random_sample(21, i)
        vals = set(np.unique(s.labels).tolist())
        assert vals <= LABEL_VALUES
        seen |= vals
        assert s.image.dtype == np.uint8 and s.image.shape == (224, 224, 3)
        assert 0.0 <= s.occlusion <= 1.0
        assert s.gender in ("F", "M") and s.source in ("lfw", "utkface")
        if s.source == "utkface":
            assert IGNORE in vals  # UTKFace pixels outside R are unknown
    assert {0, 1, IGNORE} <= seen
    g = synth.make(synth.faces.faces[0], np.random.default_rng(1), kinds=(), gray=True)
    assert g.is_gray
    assert (g.image[..., 0] == g.image[..., 1]).all() and (g.image[..., 1] == g.image[..., 2]).all()
    c = synth.make(synth.faces.faces[0], np.random.default_rng(1), kinds=(), gray=False)
    assert not c.is_gray and not (c.image[..., 0] == c.image[..., 1]).all()


def test_bench_tasks(synth):
    tasks = bench_tasks(synth)
    lfw = [i for i, f in enumerate(synth.faces.faces) if f.source == "lfw"]
    utk = [i for i, f in enumerate(synth.faces.faces) if f.source == "utkface"]
    assert len(tasks) == 2000 + len(utk)
    assert sum(t.base_index in lfw for t in tasks) == 2000
    for i in lfw:
        mine = [t for t in tasks if t.base_index == i]
        assert mine[0].variant == 0 and mine[0].clean
        assert not any(t.clean for t in mine[1:])
    assert sorted(t.base_index for t in tasks if t.base_index in utk) == utk


def test_unknown_kind_is_refused(synth):
    with pytest.raises(ValueError, match="unknown occluder kind"):
        synth.make(synth.faces.faces[0], np.random.default_rng(0), kinds=("banana",))


def test_cli_synth_train(data_root, tmp_path, capsys):
    out = tmp_path / "synth"
    rc = main(["synth", "--preset", "train", "--limit", "4", "--count", "6", "--out", str(out),
               "--workers", "1", "--data", str(data_root)])
    assert rc == 0
    assert "wrote 6 samples" in capsys.readouterr().out
    images = sorted(p.name for p in (out / "images").iterdir())
    labels = sorted(p.name for p in (out / "labels").iterdir())
    assert len(images) == 6 and all(n.endswith(".jpg") for n in images)
    assert labels == [n[:-4] + ".png" for n in images]
    with open(out / "truth.csv", newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames) == TRUTH_COLUMNS == (
        "filename", "FaceOcclusion", "gender", "is_gray", "occluder", "source", "base", "facial_hair", "lfw_labels",
        "headwear")
    assert sorted(r["filename"] for r in rows) == images
    bench_utk = set(sources.bench_utkface_names())
    with open(data_root / "faces/lfw_parts/index.csv", newline="") as f:
        lfw_val = {r["filename"] for r in csv.DictReader(f) if r["split"] == "val"}
    for r in rows:
        assert 0.0 <= float(r["FaceOcclusion"]) <= 1.0
        assert r["gender"] in ("F", "M") and r["is_gray"] in ("0", "1") and r["source"] in ("lfw", "utkface")
        assert r["occluder"] == "none" or set(r["occluder"].split("+")) <= set(KINDS + NEGATIVE_KINDS)
        assert r["base"] not in bench_utk and r["base"] not in lfw_val  # training never sees benchmark faces
        lab = cv2.imread(str(out / "labels" / (r["filename"][:-4] + ".png")), cv2.IMREAD_UNCHANGED)
        assert lab.shape == (224, 224) and set(np.unique(lab).tolist()) <= LABEL_VALUES
        img = cv2.imread(str(out / "images" / r["filename"]))
        assert img.shape == (224, 224, 3)


def test_cli_synth_refuses_count_for_bench(capsys):
    assert main(["synth", "--preset", "bench", "--count", "5", "--out", "x"]) == 2
    assert "occparse: error:" in capsys.readouterr().err


# --- split logic, without meshing thousands of faces ---------------------------------------------


@pytest.fixture
def fake_mesh(monkeypatch):
    """Replace the (slow, cached) mesher with a fake face for every path it is asked about."""
    asked: dict[str, list[str]] = {}
    face = Face(np.zeros((478, 2), np.float32), (200, 200))

    def fake(paths, key, show_progress=True):
        asked[key] = [p.name for p in paths]
        return {p.name: face for p in paths}

    monkeypatch.setattr(sources, "_mesh_cached", fake)
    return asked


def test_training_faces_exclude_the_benchmark_list(data_root, fake_mesh):
    bench = sources.bench_utkface_names()
    assert len(bench) == 1000 == len(set(bench))
    with open(data_root / "faces/utkface/labels.csv", newline="") as f:
        all_utk = {r["filename"] for r in csv.DictReader(f)}
    assert set(bench) <= all_utk  # every reserved name exists in the data
    train = sources.FaceSource(data_root, "train", ("utkface",), limit=None, show_progress=False)
    names = {f.name for f in train.faces}
    assert names.isdisjoint(bench)
    assert names == all_utk - set(bench)
    assert set(fake_mesh["utkface_train"]) == names
    bench_src = sources.FaceSource(data_root, "bench", ("utkface",), limit=None, show_progress=False)
    assert {f.name for f in bench_src.faces} == set(bench)


def test_lfw_split_follows_the_index(data_root, fake_mesh):
    with open(data_root / "faces/lfw_parts/index.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    val = {r["filename"] for r in rows if r["split"] == "val"}
    train = {r["filename"] for r in rows if r["split"] == "train"}
    got_train = {f.name for f in sources.FaceSource(data_root, "train", ("lfw",), show_progress=False).faces}
    got_bench = {f.name for f in sources.FaceSource(data_root, "bench", ("lfw",), show_progress=False).faces}
    assert got_train == train and got_bench == val and got_train.isdisjoint(got_bench)


def test_hands_split(data_root):
    bench = sources.OccluderLibrary(data_root, "bench").hand_paths
    train = sources.OccluderLibrary(data_root, "train").hand_paths
    assert bench and train and {p.name for p in bench}.isdisjoint(p.name for p in train)
    assert all(sources.stable_bucket(p.name) >= 80 for p in bench)
    assert all(sources.stable_bucket(p.name) < 80 for p in train)
    assert 0.1 < len(bench) / (len(bench) + len(train)) < 0.3


def test_stable_bucket_is_fixed():
    # sha1("a.jpg")[:8] as an integer, mod 100: must not depend on PYTHONHASHSEED or the platform
    import hashlib

    assert sources.stable_bucket("a.jpg") == int(hashlib.sha1(b"a.jpg").hexdigest()[:8], 16) % 100
    assert sources.stable_bucket("a.jpg") == sources.stable_bucket("a.jpg")


@pytest.mark.parametrize("preset,split", [("lfw-val", "val"), ("lfw-train", "train")])
def test_lfw_photo_presets_write_truth_for_their_split_only(data_root, tmp_path, preset, split):
    """`--preset lfw-train` (real-photo rows for fit-stacker) and `lfw-val` (the judge) never share a photo."""
    assert main(["synth", "--preset", preset, "--out", str(tmp_path)]) == 0
    with open(tmp_path / "truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(data_root / "faces/lfw_parts/index.csv", newline="") as f:
        want = {r["filename"] for r in csv.DictReader(f) if r["split"] == split}
    names = {r["filename"] for r in rows}
    assert names <= want and len(names) >= 0.95 * len(want)  # a photo the mesh misses has no R, so no row
    for r in rows:
        assert 0.0 <= float(r["FaceOcclusion"]) <= 1.0 and 0.0 <= float(r["facial_hair"]) <= 1.0
        assert r["occluder"] == "none" and r["base"] == r["filename"]
        assert r["headwear"] in (("none", "covers_face", "above_face") if split == "val" else ("",))
    if split == "val":  # the committed headwear list, as evaluate --by headwear reads it
        worn = {r["filename"]: r["headwear"] for r in rows if r["headwear"] != "none"}
        assert worn == {n: v for n, v in sources.lfw_val_headwear().items() if n in names} and len(worn) >= 30
    assert not (tmp_path / "images").exists()  # the photos stay in the data folder
    assert main(["synth", "--preset", preset, "--count", "5", "--out", str(tmp_path)]) == 2
