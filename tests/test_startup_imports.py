"""Start-up: what a first result costs in imports (issue 16: time to the first result <= 1 s)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("mediapipe")


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


def test_face_mesh_does_not_import_unused_heavy_modules():
    """matplotlib (mediapipe's drawing helpers), the MediaPipe Tasks audio stack and scikit-learn
    (the stacker is evaluated with numpy) must not be imported to mesh a face."""
    out = _run(
        "import sys\n"
        "from occparse.runtime.faces import FaceMesher\n"
        "m = FaceMesher(max_faces=1)\n"
        "print(','.join(x for x in ('matplotlib', 'sounddevice', 'sklearn', 'torch', "
        "'mediapipe.tasks.python.audio') if x in sys.modules))\n"
    )
    assert out.strip() == ""


def test_deferred_mediapipe_parts_still_work_when_asked_for():
    out = _run(
        "from occparse.runtime._mediapipe import import_mediapipe\n"
        "mp = import_mediapipe()\n"
        "print(mp.solutions.drawing_utils.DrawingSpec.__name__, mp.tasks.vision.FaceLandmarker.__name__,\n"
        "      callable(mp.solutions.drawing_styles.get_default_face_mesh_contours_style),\n"
        "      mp.solutions.hands.Hands.__name__, mp.solutions.selfie_segmentation.SelfieSegmentation.__name__)\n"
        "from mediapipe.python.solutions import drawing_utils\n"
        "print(drawing_utils.DrawingSpec.__name__)\n"
    )
    assert out.split() == ["DrawingSpec", "FaceLandmarker", "True", "Hands", "SelfieSegmentation", "DrawingSpec"]
