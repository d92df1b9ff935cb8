"""`occparse train average`: the mean of several exports of one network."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="averaging needs the [train] extra (onnx)")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from occparse.cli import main  # noqa: E402
from occparse.train.average import IncompatibleModelsError, average_onnx  # noqa: E402


def _linear(path, w: np.ndarray, b: np.ndarray, extra_op: bool = False, extra_init=None):
    """y = x @ w + b (optionally followed by a Relu), with an int64 shape initializer that must be kept
    (and ``extra_init``, an unused initializer, when given)."""
    nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y0"]),
             helper.make_node("Reshape", ["y0", "shape"], ["y1" if extra_op else "y"])]
    if extra_op:
        nodes.append(helper.make_node("Relu", ["y1"], ["y"]))
    graph = helper.make_graph(
        nodes, "lin",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, w.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, w.shape[1]])],
        [numpy_helper.from_array(w.astype(np.float32), "w"), numpy_helper.from_array(b.astype(np.float32), "b"),
         numpy_helper.from_array(np.array([1, w.shape[1]], np.int64), "shape")]
        + ([numpy_helper.from_array(extra_init, "extra")] if extra_init is not None else []),
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _run(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def test_average_is_the_mean_of_the_weights(tmp_path):
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(4, 3)) for _ in range(3)]
    bs = [rng.normal(size=3) for _ in range(3)]
    paths = [_linear(tmp_path / f"m{i}.onnx", w, b) for i, (w, b) in enumerate(zip(ws, bs, strict=True))]
    out = average_onnx(paths, tmp_path / "soup" / "mean.onnx")
    x = rng.normal(size=(1, 4)).astype(np.float32)
    want = x @ np.mean(ws, 0) + np.mean(bs, 0)
    np.testing.assert_allclose(_run(out, x), want, rtol=1e-5, atol=1e-5)
    # a linear model's output is then the mean of the outputs, which no single input model gives
    assert not np.allclose(_run(paths[0], x), want, atol=1e-3)
    assert not list(tmp_path.glob("soup/*.tmp"))


def test_average_refuses_other_networks_and_overwriting_an_input(tmp_path):
    a = _linear(tmp_path / "a.onnx", np.ones((4, 3)), np.zeros(3))
    b = _linear(tmp_path / "b.onnx", np.ones((4, 3)), np.zeros(3), extra_op=True)
    c = _linear(tmp_path / "c.onnx", np.ones((4, 2)), np.zeros(2))
    with pytest.raises(IncompatibleModelsError, match="another graph .*nodes differ"):
        average_onnx([a, b], tmp_path / "o.onnx")
    with pytest.raises(IncompatibleModelsError, match="another graph .*outputs differ"):
        average_onnx([a, c], tmp_path / "o.onnx")
    d = _linear(tmp_path / "d.onnx", np.ones((4, 3)), np.zeros(3), extra_init=np.array([1, 2], np.int64))
    e = _linear(tmp_path / "e.onnx", np.ones((4, 3)), np.zeros(3), extra_init=np.array([1, 3], np.int64))
    with pytest.raises(IncompatibleModelsError, match="other initializers"):
        average_onnx([a, d], tmp_path / "o.onnx")
    with pytest.raises(IncompatibleModelsError, match="non-float initializer extra differs"):
        average_onnx([d, e], tmp_path / "o.onnx")
    q = _linear(tmp_path / "q.onnx", np.ones((4, 3)), np.zeros(3), extra_init=np.array([1, 2], np.int8))
    with pytest.raises(IncompatibleModelsError, match="quantized"):
        average_onnx([q, q], tmp_path / "o.onnx")
    with pytest.raises(IncompatibleModelsError, match="one of the inputs"):
        average_onnx([a, a], a)
    with pytest.raises(IncompatibleModelsError, match="at least two"):
        average_onnx([a], tmp_path / "o.onnx")
    before = a.read_bytes()
    assert main(["train", "average", str(a), str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "o.onnx")]) == 2
    assert main(["train", "average", str(a), str(b), "--out", str(a)]) == 2
    assert a.read_bytes() == before and not (tmp_path / "o.onnx").exists()


def test_average_cli_writes_the_model(tmp_path, capsys):
    a = _linear(tmp_path / "a.onnx", np.full((2, 2), 1.0), np.zeros(2))
    b = _linear(tmp_path / "b.onnx", np.full((2, 2), 3.0), np.zeros(2))
    assert main(["train", "average", str(a), str(b), "--out", str(tmp_path / "m.onnx")]) == 0
    assert "mean of 2 models" in capsys.readouterr().out
    np.testing.assert_allclose(_run(tmp_path / "m.onnx", np.ones((1, 2), np.float32)), [[4.0, 4.0]])
