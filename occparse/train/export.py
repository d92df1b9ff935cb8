"""Export trained PyTorch models to ONNX and check ONNX Runtime against torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def export_onnx(model: torch.nn.Module, path: Path, input_size: int, opset: int = 17) -> Path:
    """Export with a dynamic batch axis; the model is put in eval mode."""
    model = model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.randn(2, 3, input_size, input_size)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad():
        torch.onnx.export(
            model, dummy, str(tmp), opset_version=opset, input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, dynamo=False,
        )
    tmp.replace(path)
    return path


def max_abs_diff(model: torch.nn.Module, onnx_path: Path, batch: np.ndarray) -> float:
    """Largest |torch - ONNX Runtime| over the outputs of one batch."""
    import onnxruntime as ort

    model = model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(batch)).numpy()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: batch})[0]
    return float(np.abs(ref - got).max())
