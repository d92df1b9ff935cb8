"""The model registry: a swapped file is refused with a message that says how to pin it, and pinning keeps the spec."""

from __future__ import annotations

import json
import os

import pytest

from occparse.models.zoo import WeightsError, main, shipped


def test_swapped_file_refused_then_pinned_keeping_spec(tmp_path, monkeypatch):
    monkeypatch.setenv("OCCPARSE_WEIGHTS", str(tmp_path))
    (tmp_path / "model.onnx").write_bytes(b"first")
    (tmp_path / "model.md").write_text("card")
    assert main(["mymodel", "model.onnx", "model.md", '{"input_size": 96}']) == 0
    assert shipped("mymodel").spec == {"input_size": 96}

    (tmp_path / "model.onnx").write_bytes(b"retrained")
    os.utime(tmp_path / "model.onnx", (1, 1))  # a new mtime, so the once-per-process check runs again
    with pytest.raises(WeightsError, match="python -m occparse.models.zoo mymodel model.onnx model.md"):
        shipped("mymodel")

    assert main(["mymodel", "model.onnx", "model.md"]) == 0  # no spec given: the listed one is kept
    assert shipped("mymodel").spec == {"input_size": 96}
    assert json.loads((tmp_path / "manifest.json").read_text())["mymodel"]["spec"] == {"input_size": 96}
