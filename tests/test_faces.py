"""Which face, which way up, how much of it is in the frame, how small, how turned (issue 14, "Faces").

The handed cases in ../shared/cases (research-licensed, never copied here) are read in place and
skipped when absent; the synthetic tests build their inputs from examples/astronaut.png.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from occparse.models.zoo import manifest
from occparse.runtime.detector import Detection
from occparse.runtime.faces import FaceMesher, order_faces
from occparse.runtime.io import is_gray_rgb, read_image
from occparse.runtime.mesh import Face, fit_keypoints, head_pose
from occparse.runtime.occlusion import with_out_of_frame

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.png"
CASES = ROOT.parent / "shared" / "cases"
needs_models = pytest.mark.skipif("parser" not in manifest(), reason="no shipped parser in weights/manifest.json")


def _case_rows() -> dict[str, dict[str, str]]:
    if not (CASES / "cases.csv").exists():
        return {}
    with open(CASES / "cases.csv", newline="") as f:
        return {r["file"]: r for r in csv.DictReader(f)}


ROWS = _case_rows()


def _case(name: str) -> tuple[Path, dict[str, str]]:
    if name not in ROWS or not (CASES / name).exists():
        pytest.skip(f"handed case {name} not found in {CASES} (research-licensed, read in place)")
    return CASES / name, ROWS[name]


@pytest.fixture(scope="module")
def estimator():
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    return Estimator(EstimatorOptions())


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return read_image(EXAMPLE).rgb


@pytest.fixture(scope="module")
def upright(estimator):
    """The reference reading of examples/astronaut.png as it is."""
    res = estimator.estimate(EXAMPLE)
    assert res.ok
    return res.faces[0]


def _estimate_array(estimator, rgb: np.ndarray, tmp_path: Path, name: str):
    p = tmp_path / f"{name}.png"
    cv2.imwrite(str(p), rgb[..., ::-1])
    return estimator.estimate(p)


def _near(value: float, row: dict[str, str]) -> bool:
    return abs(value - float(row["occlusion"])) <= float(row["tolerance"])


# -- handed cases --------------------------------------------------------------------------------

@needs_models
@pytest.mark.parametrize("name", ["two_faces_centre_hand.png", "astronaut_two_faces.png"])
def test_case_subject_is_the_face_nearest_the_centre(estimator, name):
    path, row = _case(name)
    res = estimator.estimate(path)
    assert res.ok and len(res.faces) >= 2, "both faces should be found"
    centre = np.array([res.width / 2, res.height / 2])

    def dist(f):
        return float(np.linalg.norm([(f.box[0] + f.box[2]) / 2 - centre[0], (f.box[1] + f.box[3]) / 2 - centre[1]]))

    s = res.faces[0]
    assert s.subject and not any(f.subject for f in res.faces[1:])
    assert dist(s) == min(dist(f) for f in res.faces)
    assert any(f.face_size > s.face_size for f in res.faces[1:]), "the case's other face is the larger one"
    assert _near(s.occlusion, row), (s.occlusion, row["occlusion"])
    assert res.to_dict(all_faces=False)["faces"][0]["subject"] is True


@needs_models
def test_case_cut_left_edge_counts_the_part_outside_as_hidden(estimator):
    path, row = _case("cut_left_edge.png")
    f = estimator.estimate(path).faces[0]
    assert f.out_of_frame == pytest.approx(0.30, abs=0.07)
    assert any(w.startswith("out_of_frame") for w in f.warnings)
    assert _near(f.occlusion, row), (f.occlusion, row["occlusion"])
    assert f.geometric >= f.out_of_frame


@needs_models
@pytest.mark.parametrize("name", ["rotated_180.png", "astronaut_upside_down.png"])
def test_case_upside_down_is_read_upright(estimator, name):
    path, row = _case(name)
    f = estimator.estimate(path).faces[0]
    assert f.rotation == 180
    assert abs(abs(f.pose.roll) - 180) < 20
    assert _near(f.occlusion, row), (f.occlusion, row["occlusion"])


@needs_models
@pytest.mark.parametrize("name", ["small_face_26px.png", "astronaut_canvas_4000.jpg", "masked_nurse.jpg"])
def test_case_face_found(estimator, name):
    path, row = _case(name)
    res = estimator.estimate(path)
    assert res.ok, res.message
    assert _near(res.faces[0].occlusion, row), (res.faces[0].occlusion, row["occlusion"])


@needs_models
def test_case_astronaut_half_is_valid_json_and_flagged(estimator):
    path, _ = _case("astronaut_half.png")
    d = json.loads(json.dumps(estimator.estimate(path).to_dict(), allow_nan=False))
    f = d["faces"][0]
    assert f["out_of_frame"] > 0.2 and any(w.startswith("out_of_frame") for w in f["warnings"])
    assert all(v is None or 0 <= v <= 1 for v in f["regions"].values())
    assert f["occlusion"] >= f["out_of_frame"] - 1e-6


# -- synthetic inputs from examples/astronaut.png ------------------------------------------------

@needs_models
@pytest.mark.parametrize("k", [1, 2, 3])
def test_turned_pictures_read_like_the_upright_one(estimator, astronaut, upright, tmp_path, k):
    res = _estimate_array(estimator, np.rot90(astronaut, k), tmp_path, f"rot{k}")
    f = res.faces[0]
    assert f.rotation == (90 * k) % 360  # rot90 turns counter-clockwise; rotation is the clockwise fix
    assert f.occlusion == pytest.approx(upright.occlusion, abs=0.05)


@needs_models
@pytest.mark.parametrize("k", [1, 3])
def test_sideways_face_is_meshed_upright(estimator, astronaut, k):
    """A face lying on its side is meshed again on the picture turned upright: its aligned crop is
    the upright photo's (the mesh's landmarks drift on a sideways face; the crop then differed by
    10-46 grey levels on average and the reading by up to 0.09)."""
    ref = estimator.analyze(astronaut).faces[0].crop.image.astype(np.int16)
    turned = estimator.analyze(np.ascontiguousarray(np.rot90(astronaut, k))).faces[0]
    assert turned.result.rotation == (90 * k) % 360
    assert np.abs(turned.crop.image.astype(np.int16) - ref).mean() < 1.0


@needs_models
@pytest.mark.parametrize("k, size", [(2, (600, 800)), (2, (900, 1200)), (1, (1000, 1600))])
def test_turned_face_small_in_its_picture(estimator, astronaut, upright, tmp_path, k, size):
    """An upside-down or sideways face that does not fill its picture: the whole-picture probe cannot
    see it (the short-range detector wants a large face) and upright, the full-range detector misses
    it or boxes the chin, on which the mesh lies upside down (read 0.41, or no face at all)."""
    h, w = size
    canvas = np.full((h, w, 3), 128, np.uint8)
    y, x = (h - astronaut.shape[0]) // 2, (w - astronaut.shape[1]) // 2
    canvas[y : y + astronaut.shape[0], x : x + astronaut.shape[1]] = astronaut
    res = _estimate_array(estimator, np.rot90(canvas, k), tmp_path, f"canvas{k}_{w}")
    assert res.ok, res.message
    f = res.faces[0]
    assert f.rotation == (90 * k) % 360
    assert f.occlusion == pytest.approx(upright.occlusion, abs=0.05)


@needs_models
def test_turned_search_keeps_the_faces_found_upright(estimator, astronaut, upright, tmp_path):
    """A masked upright face and an upside-down clean face side by side: the turned search adds the
    upside-down face (with --all-faces) and never drops or re-turns the upright one (an early version
    replaced every upright face by the winning turn's boxes, one of them on the suit)."""
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    masked = astronaut.copy()
    cv2.rectangle(masked, (170, 118), (285, 200), (200, 110, 70), -1)
    canvas = np.full((700, 1200, 3), 128, np.uint8)
    canvas[94:606, 40:552] = masked
    canvas[94:606, 648:1160] = np.rot90(astronaut, 2)
    default = _estimate_array(estimator, canvas, tmp_path, "two_turned").faces[0]
    assert default.box[2] < 600 and default.rotation == 0 and default.occlusion > 0.4
    every = Estimator(EstimatorOptions(exhaustive=True)).analyze(canvas).result.faces
    left = [f for f in every if f.box[2] < 600]
    right = [f for f in every if f.box[0] > 600]
    assert len(left) == 1 and left[0].rotation == 0 and left[0].occlusion > 0.4
    assert len(right) == 1 and right[0].rotation == 180
    assert right[0].occlusion == pytest.approx(upright.occlusion, abs=0.05)


@needs_models
@pytest.mark.parametrize("angle", [135, 300])
def test_tilted_face_between_quarter_turns(estimator, astronaut, upright, tmp_path, angle):
    """Tilts between quarter turns in a picture with a border: read like the upright photo, with the
    roll near the tilt (135 degrees was a 248-px "face" on the suit's patch, 300 degrees a mesh laid
    across the face)."""
    m = cv2.getRotationMatrix2D((256, 256), angle, 1)
    m[:, 2] += 106
    tilted = cv2.warpAffine(np.ascontiguousarray(astronaut), m, (724, 724), borderValue=(128, 128, 128))
    res = _estimate_array(estimator, tilted, tmp_path, f"tilt{angle}")
    assert res.ok, res.message
    f = res.faces[0]
    roll_error = (f.pose.roll - angle + 180) % 360 - 180
    assert abs(roll_error) < 20
    assert f.occlusion == pytest.approx(upright.occlusion, abs=0.05)


@needs_models
def test_small_face_in_a_panorama(estimator, astronaut, upright, tmp_path):
    pano = np.full((300, 8000, 3), 120, np.uint8)
    pano[:, 5000:5300] = cv2.resize(astronaut[20:340, 80:400], (300, 300), interpolation=cv2.INTER_AREA)
    res = _estimate_array(estimator, pano, tmp_path, "pano")
    assert res.ok, res.message
    f = res.faces[0]
    assert 5000 <= (f.box[0] + f.box[2]) / 2 <= 5300
    assert f.occlusion == pytest.approx(upright.occlusion, abs=0.06)


@needs_models
def test_small_face_in_a_huge_photo(estimator, astronaut, upright, tmp_path):
    big = np.full((9000, 12000, 3), 90, np.uint8)
    # the case: a ~215-px face, off-centre, in a 12000x9000 photo
    big[5000:6100, 2000:3100] = cv2.resize(astronaut, (1100, 1100), interpolation=cv2.INTER_CUBIC)
    from occparse.runtime.io import LoadedImage

    res = estimator.analyze_loaded(LoadedImage(big, "big", "RGB", False)).result  # no 100-Mpx PNG round trip
    assert res.ok, res.message
    f = res.faces[0]
    assert 2000 <= (f.box[0] + f.box[2]) / 2 <= 3100 and 5000 <= (f.box[1] + f.box[3]) / 2 <= 6100
    assert 150 < f.box[2] - f.box[0] < 300
    assert f.occlusion == pytest.approx(upright.occlusion, abs=0.06)


@needs_models
def test_out_of_frame_grows_with_the_cut(estimator, astronaut, tmp_path):
    # cut the picture's left border further and further through the face (face spans x ~178..273)
    oofs, occ = [], []
    for x in (150, 200, 225):
        f = _estimate_array(estimator, astronaut[:, x:], tmp_path, f"cut{x}").faces[0]
        oofs.append(f.out_of_frame)
        occ.append(f.occlusion)
        assert f.occlusion >= f.out_of_frame - 1e-6
    assert oofs[0] < 0.02 < oofs[1] < oofs[2]
    assert occ[0] < occ[2]


@needs_models
def test_text_output_of_a_cut_face_says_what_is_inside_the_frame(astronaut, tmp_path, capsys):
    """The "hidden by" shares are of the hidden part inside the frame: the text says so when the
    border cuts the face, and says "nothing hidden" rather than four 0% shares."""
    from occparse.cli import main

    cut = tmp_path / "cut.png"
    cv2.imwrite(str(cut), np.ascontiguousarray(astronaut[110:, :, ::-1]))
    assert main(["estimate", str(cut)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("face 1:"))
    assert "inside the frame, " in line
    assert main(["estimate", str(EXAMPLE)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("face 1:"))
    assert "inside the frame" not in line and "hidden by hair" in line


@needs_models
def test_is_gray_is_the_face_s_own(estimator, astronaut):
    """A colour face on a large gray backdrop is a colour face (the whole picture's channels are
    nearly equal on average): the reported flag and the stacker's feature follow the face's crop,
    as the choice of regressor always did; a gray copy of the same picture is gray."""
    canvas = np.full((2600, 2600, 3), 128, np.uint8)
    canvas[1044:1556, 1044:1556] = astronaut
    assert is_gray_rgb(canvas)  # the whole picture: nearly gray on average
    colour = estimator.analyze(canvas).faces[0].result
    assert not colour.is_gray
    gray = np.repeat(cv2.cvtColor(canvas, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    assert estimator.analyze(gray).faces[0].result.is_gray


def test_with_out_of_frame():
    assert with_out_of_frame(0.1, 0.0) == pytest.approx(0.1)
    assert with_out_of_frame(0.0, 0.3) == pytest.approx(0.3)
    assert with_out_of_frame(0.5, 0.5) == pytest.approx(0.75)
    assert with_out_of_frame(float("nan"), 0.4) == 1.0
    assert with_out_of_frame(0.2, 1.0) == 1.0


# -- pieces --------------------------------------------------------------------------------------

def _shifted(face: Face, dx: float, dy: float, scale: float = 1.0) -> Face:
    c = face.centre
    return Face(((face.landmarks - c) * scale + c + [dx, dy]).astype(np.float32), face.image_size, face.depth)


def test_order_faces_puts_the_centre_face_first_then_largest(mesher, astronaut):
    f = mesher.detect(astronaut)[0]
    h, w = astronaut.shape[:2]
    c = f.centre
    centre_small = _shifted(f, w / 2 - c[0], h / 2 - c[1], 0.7)
    big_corner = _shifted(f, 40 - c[0] + 60, 40 - c[1] + 60, 1.2)
    mid = _shifted(f, w * 0.8 - c[0], h / 2 - c[1], 0.8)
    order = order_faces([big_corner, mid, centre_small], (h, w))
    assert [np.allclose(g.centre, want.centre) for g, want in zip(order, [centre_small, big_corner, mid], strict=True)] \
        == [True, True, True]
    # a stray tiny face at the centre (less than half as tall as the tallest) is not the subject
    tiny = _shifted(f, w / 2 - c[0], h / 2 - c[1], 0.3)
    assert np.allclose(order_faces([big_corner, tiny], (h, w))[0].centre, big_corner.centre)
    # a duplicate (same place) is dropped
    assert len(order_faces([centre_small, _shifted(centre_small, 1, 1)], (h, w))) == 1


def test_subject_rule_measures_height_along_the_face(mesher, astronaut):
    """Faces lying on their side are compared by their own forehead-to-chin extent, not the picture's
    y axis (on which a sideways face measures its width)."""
    f = mesher.detect(astronaut)[0]
    turned = f.transformed(np.array([[0, 1, 0], [-1, 0, 511]], np.float64), (512, 512))  # a quarter turn
    assert turned.height == pytest.approx(f.height, rel=1e-4)
    assert f.height == pytest.approx(f.box[3] - f.box[1], rel=0.05)  # upright: the box height
    assert turned.box[3] - turned.box[1] < 0.9 * f.height  # the picture's y axis would say otherwise


def test_keypoint_fit_lands_on_the_key_points(mesher, astronaut):
    f = mesher.detect(astronaut)[0]
    kp = f.key_points()
    mouth = (kp[3] + kp[4]) / 2
    det = Detection(f.box, 0.7, np.vstack([kp[:3], mouth, kp[0] - 20, kp[1] + 20]).astype(np.float32))
    g = fit_keypoints(det, f.image_size)
    assert g is not None and g.source == "keypoints" and g.depth is None and g.score == 0.7
    gk = g.key_points()
    iod = float(np.linalg.norm(kp[1] - kp[0]))
    assert np.abs(gk[:3] - kp[:3]).max() < 0.25 * iod
    r_iou = _iou(g, f)
    assert r_iou > 0.7, r_iou
    assert head_pose(g).yaw is None
    # degenerate key points give no face, not an exception
    assert fit_keypoints(Detection(f.box, 0.5, np.zeros((6, 2), np.float32)), f.image_size) is None


def _iou(a: Face, b: Face) -> float:
    from occparse.runtime.regions import face_region

    ra, rb = face_region(a), face_region(b)
    return float((ra & rb).sum() / (ra | rb).sum())


def test_head_pose_mirror_and_roll(mesher, astronaut):
    f = mesher.detect(astronaut)[0]
    p = head_pose(f)
    m = head_pose(mesher.detect(np.ascontiguousarray(astronaut[:, ::-1]))[0])
    assert abs(p.yaw) < 15 and abs(p.pitch) < 20  # a near-frontal portrait
    assert m.yaw == pytest.approx(-p.yaw, abs=3)  # the mirror image turns the other way
    assert m.roll == pytest.approx(-p.roll, abs=2)
    h, w = astronaut.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), 30, 1.0)  # 30 degrees counter-clockwise
    r = head_pose(mesher.detect(cv2.warpAffine(astronaut, rot, (w, h), borderMode=cv2.BORDER_REFLECT_101))[0])
    assert r.roll == pytest.approx(p.roll + 30, abs=4)
    assert r.yaw == pytest.approx(p.yaw, abs=5)


def test_yaw_sign_follows_the_nose(mesher, data_root):
    """yaw > 0 means the subject turns to their own left: the nose tip then sits right of the face
    centre in the picture. Checked on real UTKFace chips with a clear turn."""
    paths = sorted((data_root / "faces/utkface/images").iterdir())[::97][:40]
    agree = total = 0
    for p in paths:
        faces = mesher.detect(read_image(p).rgb)
        if not faces or faces[0].depth is None:
            continue
        f = faces[0]
        yaw = head_pose(f).yaw
        if abs(yaw) < 8:
            continue
        total += 1
        agree += math.copysign(1, yaw) == math.copysign(1, float(f.landmarks[1, 0] - f.centre[0]))
    assert total >= 5 and agree == total


def test_all_faces_is_not_capped(mesher, astronaut):
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    grid = np.full((512, 1280, 3), 110, np.uint8)
    for i in range(5):
        grid[128:384, i * 256 : (i + 1) * 256] = small
    faces = mesher.detect(grid, exhaustive=True)
    assert len(faces) == 5  # more than the old silent cap of 4
    assert abs(faces[0].centre[0] - 640) < 64  # the middle one is the subject


def test_unsure_first_pass_only(mesher, astronaut):
    """The fast path: a clear upright face costs one mesh run and nothing else."""
    calls = []
    orig = mesher._process

    def counting(graph, img):
        calls.append(graph is mesher._mesh)
        return orig(graph, img)

    mesher._process = counting
    try:
        mesher.detect(astronaut)
    finally:
        del mesher._process
    assert calls == [True]


def test_mesher_without_search_keeps_old_behaviour(astronaut):
    with FaceMesher(search_small_faces=False, search_rotations=False) as m:
        assert m.detect(np.rot90(astronaut, 2))[0].rotation == 0


@needs_models
def test_estimate_predict_and_folder_mode_agree(astronaut, tmp_path, capsys):
    """One rule, one code path: the subject's number is the same from every entry point."""
    from occparse.cli import main

    d = tmp_path / "mixed"
    d.mkdir()
    two = np.full((800, 1100, 3), 128, np.uint8)
    two[0:512, 0:512] = astronaut  # a larger face in the corner ...
    two[300:556, 500:756] = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)  # ... the subject near the centre
    images = {"plain.png": astronaut, "upside_down.png": np.rot90(astronaut, 2), "two.png": two,
              "cut.png": astronaut[:, 200:]}
    for name, rgb in images.items():
        cv2.imwrite(str(d / name), np.ascontiguousarray(rgb)[..., ::-1])
    names = sorted(images)

    assert main(["estimate", *(str(d / n) for n in names), "--json"]) == 0
    outs = list(map(json.loads, capsys.readouterr().out.strip().splitlines()))
    est = {Path(o["path"]).name: o["faces"][0]["occlusion"] for o in outs}
    found = {Path(o["path"]).name: o["n_faces"] for o in outs}
    assert found["two.png"] == 2  # faces found, though only the subject is shown
    truth = tmp_path / "in.csv"
    truth.write_text("filename\n" + "\n".join(names) + "\n")
    assert main(["predict", "--csv", str(truth), "--images-root", str(d), "--out", str(tmp_path / "p.csv"),
                 "--workers", "1"]) == 0
    with open(tmp_path / "p.csv", newline="") as f:
        pred = {r["filename"]: float(r["FaceOcclusion"]) for r in csv.DictReader(f)}
    assert main(["estimate", str(d), "--out", str(tmp_path / "folder.csv"), "--workers", "1"]) == 0
    with open(tmp_path / "folder.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    folder = {Path(r["filename"]).name: float(r["occlusion"]) for r in rows}
    assert all(r["subject"] == "1" for r in rows)
    # n_faces counts the faces found, the same in folder mode (one analysed) as in --json (it said 1 and 2)
    assert {Path(r["filename"]).name: int(r["n_faces"]) for r in rows} == found
    capsys.readouterr()
    for n in names:
        assert est[n] == pytest.approx(pred[n], abs=1e-4) and est[n] == pytest.approx(folder[n], abs=1e-4), n
    assert est["upside_down.png"] == pytest.approx(est["plain.png"], abs=0.05)


def test_face_warnings(mesher, astronaut):
    from occparse.runtime.pipeline import face_warnings
    from occparse.runtime.results import HeadPose

    f = mesher.detect(astronaut)[0]
    assert face_warnings(f, 0.0, HeadPose(5.0, 3.0, 0.0)) == []
    w = face_warnings(f, 0.3, HeadPose(60.0, 0.0, 0.0))
    assert [x.split(":")[0] for x in w] == ["out_of_frame", "extreme_pose"]
    assert [x.split(":")[0] for x in face_warnings(f, 0.0, HeadPose(None, -40.0, 0.0))] == ["extreme_pose"]
    assert face_warnings(f, 0.0, HeadPose(None, None, 0.0)) == []


@needs_models
def test_iso_profile_says_when_faces_are_left_out(capsys):
    from occparse.cli import main

    path, _ = _case("astronaut_two_faces.png")
    assert main(["estimate", str(path), "--profile", "iso"]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "2 face(s), 1 shown (--all-faces for every face)" in head
    assert main(["estimate", str(path), "--profile", "iso", "--all-faces"]) == 0
    out = capsys.readouterr().out
    assert "shown" not in out.splitlines()[0] and "face 2:" in out
