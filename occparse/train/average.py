"""Average the weights of several ONNX exports of one network (a "model soup").

Runs of the same recipe from the same starting weights that differ only in their seed (sample order,
augmentation) land near each other; the mean of their weights is usually at least as good as each
and less at the mercy of one seed. The files must be exports of the same architecture: the same graph
(operators in the same order) and the same initializers (names, shapes, dtypes). Floating-point
initializers are averaged; everything else (the opset, the graph's inputs and outputs, every node with its
attributes and constants, non-float initializers such as shapes and axes) must be equal and is kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class IncompatibleModelsError(ValueError):
    """The ONNX files are not exports of the same network."""


def average_onnx(paths: list[Path | str], out: Path | str) -> Path:
    """Write to ``out`` an ONNX model whose float initializers are the mean of those of ``paths``.

    ``paths``: two or more ONNX files with float weights (fp32, or fp16 kept as fp16; the mean is taken in
    float64). A path given twice counts twice (a weighted mean). Int8 copies are refused: average the fp32
    exports, then quantize. Returns ``out``. Raises :class:`IncompatibleModelsError` when the models are not
    exports of one network (the reason names what differs), :class:`FileNotFoundError` for a missing file;
    a file that is not ONNX raises what ``onnx.load`` raises, and the result is checked with
    ``onnx.checker`` (``onnx.checker.ValidationError``). ``out`` is written atomically (a temporary file,
    then renamed) and is never one of ``paths``.
    """
    import onnx
    from onnx import numpy_helper

    paths = [Path(p) for p in paths]
    out = Path(out)
    if len(paths) < 2:
        raise IncompatibleModelsError("averaging needs at least two models")
    if any(out.resolve() == p.resolve() for p in paths):
        raise IncompatibleModelsError(f"{out} is one of the inputs; write the average elsewhere")
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"no such model: {p}")
    models = [onnx.load(str(p)) for p in paths]
    first = models[0]
    ops = [n.op_type for n in first.graph.node]
    inits = {t.name: numpy_helper.to_array(t) for t in first.graph.initializer}
    if any(t.dtype == np.int8 or t.dtype == np.uint8 for t in inits.values()) or "QuantizeLinear" in ops:
        raise IncompatibleModelsError(f"{paths[0]} is quantized; average the fp32 exports, then quantize")
    sums = {k: v.astype(np.float64) if np.issubdtype(v.dtype, np.floating) else v for k, v in inits.items()}
    def skeleton(m) -> tuple:
        # everything but the initializers: the opset, the graph's interface, every node with its wiring,
        # attributes and constants (exports of one network by one exporter agree byte for byte here)
        return ([o.SerializeToString() for o in m.opset_import],
                [v.SerializeToString() for v in m.graph.input], [v.SerializeToString() for v in m.graph.output],
                [n.SerializeToString() for n in m.graph.node])

    shape0 = skeleton(first)
    for p, m in zip(paths[1:], models[1:], strict=True):
        other_shape = skeleton(m)
        if other_shape != shape0:
            what = ("opset", "inputs", "outputs", "nodes")[next(i for i in range(4) if other_shape[i] != shape0[i])]
            raise IncompatibleModelsError(f"{p} has another graph than {paths[0]} (its {what} differ)")
        other = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
        if other.keys() != inits.keys():
            raise IncompatibleModelsError(f"{p} has other initializers than {paths[0]}")
        for k, v in other.items():
            if v.shape != inits[k].shape or v.dtype != inits[k].dtype:
                raise IncompatibleModelsError(f"{p}: initializer {k} is {v.dtype}{list(v.shape)}, "
                                              f"not {inits[k].dtype}{list(inits[k].shape)}")
            if np.issubdtype(v.dtype, np.floating):
                sums[k] = sums[k] + v
            elif not np.array_equal(v, inits[k]):
                raise IncompatibleModelsError(f"{p}: non-float initializer {k} differs from {paths[0]}'s")
    new = []
    for t in first.graph.initializer:
        v = sums[t.name]
        if np.issubdtype(inits[t.name].dtype, np.floating):
            v = (v / len(models)).astype(inits[t.name].dtype)
        new.append(numpy_helper.from_array(v, t.name))
    del first.graph.initializer[:]
    first.graph.initializer.extend(new)
    onnx.checker.check_model(first)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(first, str(tmp))
    tmp.replace(out)
    return out
