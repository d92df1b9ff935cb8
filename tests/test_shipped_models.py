"""The shipped models, through the runtime (ONNX Runtime, no torch): they load, match their pinned
checksums, and read known synthetic occlusions right, per region.

The synthetic samples here are made on benchmark faces with benchmark occluders: nothing the
shipped models were trained on.
"""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from occparse.models.zoo import manifest

pytestmark = pytest.mark.skipif("parser" not in manifest(), reason="no shipped parser in weights/manifest.json")


@pytest.fixture(scope="module")
def estimator():
    from occparse.runtime.pipeline import Estimator, EstimatorOptions

    return Estimator(EstimatorOptions(max_faces=1, detector_scores=False))


@pytest.fixture(scope="module")
def bench_synth(data_root):
    from occparse.synth.engine import Synthesizer

    return Synthesizer(data_root, "bench", limit=12, show_progress=False)


def _estimate(estimator, sample, tmp_path, name):
    p = tmp_path / f"{name}.png"
    cv2.imwrite(str(p), sample.image[..., ::-1])
    res = estimator.estimate(p)
    assert res.ok, res.message
    return res.faces[0]


def test_runtime_imports_no_torch():
    """A full estimate with every shipped model loads no torch (in a fresh interpreter)."""
    import subprocess
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"
    code = (
        "import sys; from occparse.runtime.pipeline import Estimator; "
        f"r = Estimator().estimate({str(example)!r}); assert r.ok, r.message; "
        "assert 'torch' not in sys.modules, 'torch was imported'; print(r.faces[0].occlusion)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 0.0 <= float(out.stdout.strip().splitlines()[-1]) <= 1.0


def test_manifest_checksums_hold():
    """Every listed file is there and matches its pin, except fp32 networks left out on purpose (int8 copy present)."""
    from occparse.models.zoo import check_all, shipped

    states = {st.entry.name: st.state for st in check_all()}
    assert set(states.values()) <= {"ok", "not_shipped"}, states
    for name, state in states.items():
        if state == "ok":
            e = shipped(name)  # raises on a checksum mismatch
            assert e.path.is_file() and e.card.is_file(), name
        else:
            assert shipped(f"{name}_int8").path.is_file(), name


@pytest.mark.usefixtures("data_root")
def test_sunglasses_read_as_eyes_covered(estimator, bench_synth, tmp_path):
    eyes, lower = [], []
    for i, base in enumerate(bench_synth.faces.faces[:8]):
        s = bench_synth.make(base, np.random.default_rng([1, i]), kinds=("sunglasses",), gray=False)
        f = _estimate(estimator, s, tmp_path, f"sun{i}")
        eyes += [f.region("left_eye"), f.region("right_eye")]
        lower += [f.region("mouth"), f.region("nose")]
    assert np.median(eyes) >= 0.7, eyes
    assert np.mean(np.array(eyes) >= 0.7) >= 0.75, eyes
    assert np.median(lower) <= 0.15, lower


@pytest.mark.usefixtures("data_root")
def test_surgical_mask_reads_as_mouth_covered(estimator, bench_synth, tmp_path):
    mouth, eyes = [], []
    for i, base in enumerate(bench_synth.faces.faces[:8]):
        s = bench_synth.make(base, np.random.default_rng([2, i]), kinds=("mask",), gray=False, mask_template="surgical")
        f = _estimate(estimator, s, tmp_path, f"mask{i}")
        mouth.append(f.region("mouth"))
        eyes += [f.region("left_eye"), f.region("right_eye")]
    assert np.median(mouth) >= 0.8, mouth
    assert np.mean(np.array(mouth) >= 0.8) >= 0.75, mouth
    assert np.median(eyes) <= 0.1, eyes
