"""The last-resort rescue of FaceMesher.detect (masked faces the mesh and the tile search miss),
issue 14's masked-faces acceptance. Real photos are read in place from ../shared/data/real/masked
(research-licensed, never copied here) and skipped when absent; the rest uses examples/astronaut.png.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from occparse.runtime import detector as g
from occparse.runtime.io import read_image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.png"

#: Masked faces >= 40 px wide that the search before the rescue missed, with the face centre
#: (x, y) in pixels as judged by eye on the photo.
MISSED_MASKED = {"0032.jpg": (130, 70), "0034.jpg": (130, 55), "0071.jpg": (75, 70)}


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return read_image(EXAMPLE).rgb


def _masked(data_root: Path, name: str) -> np.ndarray:
    p = data_root / "real" / "masked" / name
    if not p.exists():
        pytest.skip(f"{p} not found (research-licensed, read in place)")
    return read_image(p).rgb


@pytest.mark.parametrize("name", sorted(MISSED_MASKED))
def test_rescue_finds_a_masked_face_the_search_missed(mesher, data_root, name, monkeypatch):
    rgb = _masked(data_root, name)
    faces = mesher.detect(rgb)
    assert faces, f"{name}: no face found"
    f = faces[0]
    width = f.box[2] - f.box[0]
    assert width >= 38, width
    assert np.linalg.norm(f.centre - np.float32(MISSED_MASKED[name])) < 0.5 * width, (f.centre, width)
    # it is the rescue that finds it: without it the search comes back empty
    monkeypatch.setattr(mesher, "_rescue", lambda rgb: [])
    assert mesher.detect(rgb) == []


def test_rescue_runs_only_when_nothing_was_found(mesher, astronaut, monkeypatch):
    calls = []
    real = mesher._rescue
    monkeypatch.setattr(mesher, "_rescue", lambda rgb: calls.append(rgb.shape) or real(rgb))
    assert mesher.detect(astronaut)  # a clear face: never
    blank = np.full((180, 200, 3), 128, np.uint8)
    assert mesher.detect(blank) == [] and calls == []  # no bigger than an aligned crop: never
    scene = np.full((300, 400, 3), 128, np.uint8)
    assert mesher.detect(scene) == [] and calls == [(300, 400, 3)]  # an empty scene: once, finds nothing


@pytest.mark.parametrize("pad", [0, 40])
def test_unpad_maps_a_mirrored_detection_back(mesher, astronaut, pad):
    """A detection on the mirrored (and bordered) picture lands where the plain picture's one does,
    key points in picture order (the eye on the picture's left first)."""
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    short = mesher._short_range()
    plain = max(g._detections_of(mesher._process(short, small), (256, 256)), key=lambda d: d.score)
    img = cv2.copyMakeBorder(np.ascontiguousarray(small[:, ::-1]), pad, pad, pad, pad, cv2.BORDER_CONSTANT)
    mirrored = max(g._detections_of(mesher._process(short, img), img.shape[:2]), key=lambda d: d.score)
    back = g._unpad(mirrored, pad, pad, 256, 2.0, 2.0, mirror=True)  # to a 512-px original
    assert back.keypoints[0, 0] < back.keypoints[1, 0]
    assert np.abs(back.keypoints[:4] - plain.keypoints[:4] * 2).max() < 12
    assert g._box_iou(back.box, tuple(v * 2 for v in plain.box)) > 0.8


def _list_lines(name: str) -> list[str]:
    """The entries of a list file in benchmarks/ (comment lines left out)."""
    return [ln for ln in (ROOT / "benchmarks" / name).read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def test_small_face_list_names_real_files_with_reasons(data_root):
    lines = _list_lines("masked_faces_small.txt")
    assert len(lines) >= 10
    for ln in lines:
        name, _, reason = ln.partition(" ")
        assert (data_root / "real" / "masked" / name).exists(), name
        assert len(reason.strip()) > 5, ln


def test_not_masked_list_names_real_files_points_inside_and_reasons(data_root):
    """benchmarks/masked_faces_not_masked.txt: 'NAME X Y  # reason', the point inside its photo."""
    lines = _list_lines("masked_faces_not_masked.txt")
    assert len(lines) >= 5
    for ln in lines:
        fields, _, reason = ln.partition("#")
        name, x, y = fields.split()
        p = data_root / "real" / "masked" / name
        if not p.exists():
            pytest.skip(f"{p} not found (research-licensed, read in place)")
        h, w = read_image(p).rgb.shape[:2]
        assert 0 <= float(x) < w and 0 <= float(y) < h, ln
        assert len(reason.strip()) > 10, ln
