"""ISO/IEC 29794-5 style occlusion components: mapping, return codes, and every output that carries them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from occparse.runtime import iso
from occparse.runtime.iso import ReturnCode, iso_components, score
from occparse.runtime.results import FaceResult, ImageResult, OccluderShare, RegionOcclusion, Status
from occparse.runtime.rows import FOLDER_COLUMNS, PREDICT_COLUMNS, folder_row, predict_row, typed

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
REGIONS = {"forehead": 0.4, "left_eye": 0.1, "right_eye": 0.3, "nose": 0.0, "mouth": 0.25,
           "left_cheek": 0.0, "right_cheek": 0.0, "chin": 0.0}


def test_score_is_the_visible_share_rounded_half_up_and_clamped():
    assert score(0.0) == 100 and score(1.0) == 0
    assert score(0.123) == 88
    assert score(0.125) == 88  # 87.5 rounds up (C++ round), where Python's round would give 88 too
    assert score(0.135) == 87  # 86.5 -> 87 (half away from zero); Python's round(86.5) is 86
    assert score(1.7) == 0 and score(-0.2) == 100


def test_components_from_estimate_and_regions():
    c = iso_components(0.2, REGIONS)
    assert [x.name for x in c] == list(iso.COMPONENTS)
    assert c.face_occlusion_prevention.raw == pytest.approx(0.2) and c.face_occlusion_prevention.score == 80
    assert c.eyes_visible.raw == pytest.approx(0.2) and c.eyes_visible.score == 80  # mean of 0.1 and 0.3
    assert c.mouth_occlusion_prevention.raw == pytest.approx(0.25) and c.mouth_occlusion_prevention.score == 75
    assert all(x.code == ReturnCode.SUCCESS for x in c)


def test_eye_out_of_frame_or_empty_fails_to_assess():
    oof = dict.fromkeys(REGIONS, 0.0) | {"left_eye": 0.8}
    c = iso_components(0.5, REGIONS | {"left_eye": 1.0}, oof)
    assert c.eyes_visible.code == ReturnCode.FAILURE_TO_ASSESS
    assert c.eyes_visible.raw is None and c.eyes_visible.score is None
    assert c.mouth_occlusion_prevention.ok and c.face_occlusion_prevention.ok
    # exactly half outside still counts (the threshold is "more than half")
    assert iso_components(0.5, REGIONS, oof | {"left_eye": 0.5}).eyes_visible.ok
    import numpy as np

    assert iso_components(np.float32(0.25), REGIONS).face_occlusion_prevention.score == 75  # numpy numbers too
    c = iso_components(float("nan"), REGIONS | {"mouth": float("nan")})
    assert c.mouth_occlusion_prevention.code == ReturnCode.FAILURE_TO_ASSESS
    assert c.face_occlusion_prevention.code == ReturnCode.FAILURE_TO_ASSESS


def _face(**kw) -> FaceResult:
    args = dict(occlusion=0.3, geometric=0.31, regions=[RegionOcclusion(n, v) for n, v in REGIONS.items()],
                occluded_by=OccluderShare(0.5, 0.5, 0.0), box=(0.0, 0.0, 10.0, 10.0), landmark_confidence=0.9,
                parser_confidence=0.9, is_gray=False, face_size=10.0)
    return FaceResult(**(args | kw))


def test_rows_and_json_carry_the_components():
    ok = ImageResult("a.png", Status.OK, width=10, height=10, faces=[_face()])
    bad = ImageResult("b.png", Status.NO_FACE, message="no face")
    for make, cols in ((folder_row, FOLDER_COLUMNS), (predict_row, PREDICT_COLUMNS)):
        row = make("a.png", ok)
        assert set(row) == set(cols)
        assert row["face_occlusion_prevention_raw"] == "0.300000" and row["face_occlusion_prevention_score"] == "70"
        assert row["eyes_visible_score"] == "80" and row["mouth_occlusion_prevention_code"] == "success"
        failed = make("b.png", bad)
        assert failed["eyes_visible_raw"] == "" and failed["eyes_visible_code"] == "failure_to_assess"
        t = typed([row, failed], cols)
        assert t["eyes_visible_score"] == [80, None] and t["face_occlusion_prevention_raw"] == [0.3, None]
    d = json.loads(json.dumps(ok.to_dict()))
    assert d["faces"][0]["iso"]["mouth_occlusion_prevention"] == {"raw": 0.25, "score": 75, "code": "success"}


def test_pipeline_components_win_over_recomputed_ones():
    stored = iso_components(0.9, REGIONS)
    assert iso.of_face(_face(iso=stored)) is stored
    assert math.isclose(iso.of_face(_face()).face_occlusion_prevention.raw, 0.3)


def test_estimate_json_eyes_out_of_frame(tmp_path, capsys):
    """End to end: the astronaut cropped just below the eyes: a face, but no eye zone to assess."""
    pytest.importorskip("onnxruntime")
    from PIL import Image

    from occparse.cli import main

    src = tmp_path / "cut.png"
    with Image.open(EXAMPLE) as im:
        im.crop((110, 108, 340, 338)).save(src)
    main(["estimate", str(src), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert d["status"] == "ok", d
    c = d["faces"][0]["iso"]
    assert c["eyes_visible"] == {"raw": None, "score": None, "code": "failure_to_assess"}
    assert c["mouth_occlusion_prevention"]["code"] == "success"
    assert 0 <= c["face_occlusion_prevention"]["score"] <= 100
    assert c["face_occlusion_prevention"]["raw"] == pytest.approx(d["faces"][0]["occlusion"], abs=1e-4)
    main(["estimate", str(EXAMPLE), "--profile", "iso"])
    out = capsys.readouterr().out
    assert "eyes_visible" in out and "mouth_occlusion_prevention" in out and "hidden by" not in out
