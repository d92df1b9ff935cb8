"""Warm-start a PyTorch model from an occparse ONNX export, so training can continue from shipped weights.

Why: checkpoints live outside the repository and do not survive a machine; the ONNX files in
``weights/`` do. The exporter folds each BatchNorm into the convolution before it, so the
``.pt`` state cannot be read back by name. Instead the convolutions are matched by execution
order (the ONNX graph is topologically ordered like the eval-mode forward) and shape, each
folded BatchNorm becomes a fixed affine (running mean 0, variance 1, scale sqrt(1 + eps),
shift = the folded bias), and the caller trains with BatchNorm frozen (``freeze_batchnorm``).
The load is checked end to end: torch's output must match ONNX Runtime's.

An int8 copy (``occparse quantize``: QDQ format) also works, for models whose fp32 file is not shipped:
:func:`dequantized` turns its weights back into float32 and drops the activations' quantize/dequantize
pairs (a pair whose zero point clips negatives was a ReLU the quantizer folded in: it becomes one again),
and the check compares against that float graph (the int8 rounding of the weights is kept).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn


def _execution_order(model: nn.Module, input_size: int) -> list[nn.Module]:
    """Conv2d and BatchNorm2d modules in the order the eval-mode forward runs them (first use)."""
    order: list[nn.Module] = []
    seen: set[int] = set()

    def hook(mod, _inp, _out):
        if id(mod) not in seen:
            seen.add(id(mod))
            order.append(mod)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    for h in handles:
        h.remove()
    return order


def dequantized(proto):
    """A float32 copy of a QDQ-quantized ONNX model (``onnx.ModelProto``): every DequantizeLinear of a
    constant becomes that constant in float32 ((q - zero_point) * scale, per axis where given), and each
    QuantizeLinear -> DequantizeLinear pair on an activation is removed; where the pair follows a Conv,
    Add, Gemm or MatMul and its zero point is the type's minimum, it becomes the ReLU the quantizer folded
    into it. The input is not changed; a model without such pairs is returned as it is. Raises
    ValueError for quantized ops this does not know (QLinearConv, ConvInteger, QGemm, com.microsoft ops,
    a DequantizeLinear of neither a constant nor a QuantizeLinear)."""
    import onnx
    from onnx import helper, numpy_helper

    from ..models.quantize import reconnect

    if not any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in proto.graph.node):
        return proto
    src_proto, proto = proto, onnx.ModelProto()
    proto.CopyFrom(src_proto)  # the nodes are rewired in place below: never the caller's model
    g = proto.graph
    odd = {n.op_type for n in g.node
           if n.op_type.startswith(("QLinear", "QGemm")) or n.op_type in ("ConvInteger", "MatMulInteger")
           or n.domain not in ("", "ai.onnx")}
    if odd:
        raise ValueError(f"cannot dequantize an ONNX graph with {sorted(odd)}")
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    producer = {o: n.op_type for n in g.node for o in n.output}
    rename: dict[str, str] = {}
    consts: dict[str, np.ndarray] = {}
    qin = {n.output[0]: (n.input[0], inits.get(n.input[2]) if len(n.input) > 2 else None)
           for n in g.node if n.op_type == "QuantizeLinear"}
    keep = []
    for n in g.node:
        if n.op_type == "DequantizeLinear" and n.input[0] in inits:
            q = inits[n.input[0]].astype(np.float64)
            scale = inits[n.input[1]].astype(np.float64)
            zp = inits[n.input[2]].astype(np.float64) if len(n.input) > 2 and n.input[2] else np.zeros_like(scale)
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            if scale.ndim == 1 and q.ndim > 1:  # per-channel along axis
                shape = [1] * q.ndim
                shape[axis] = -1
                scale, zp = scale.reshape(shape), zp.reshape(shape)
            # the quantizer names a weight X's int8 copy X_quantized: the float constant gets X back, so
            # parameters matched by name (linear heads) are found
            name = n.input[0].removesuffix("_quantized")
            consts[name] = ((q - zp) * scale).astype(np.float32)
            if name != n.output[0]:
                rename[n.output[0]] = name
        elif n.op_type == "DequantizeLinear" and n.input[0] in qin:
            src, zp = qin[n.input[0]]
            folded = producer.get(src) in ("Conv", "Add", "Gemm", "MatMul")
            if folded and zp is not None and zp.size == 1 and int(zp.ravel()[0]) == np.iinfo(zp.dtype).min:
                # a zero point at the type's minimum clips negatives: the quantizer folded a ReLU into it
                keep.append(helper.make_node("Relu", [src], [n.output[0]], name=n.output[0] + "_relu"))
            else:
                rename[n.output[0]] = src
        elif n.op_type == "DequantizeLinear":
            raise ValueError(f"cannot dequantize {n.name}: its input is neither a constant nor a QuantizeLinear")
        elif n.op_type != "QuantizeLinear":
            keep.append(n)
    outs = {o.name for o in g.output}
    reconnect(keep, rename, outs)  # a quantized graph output: its producer writes the output's name again
    used = {name for n in keep for name in n.input} | outs
    new_inits = [t for t in g.initializer if t.name in used]
    new_inits += [numpy_helper.from_array(v, k) for k, v in consts.items() if k in used]
    graph = helper.make_graph(keep, g.name, list(g.input), list(g.output), new_inits)
    out = helper.make_model(graph, opset_imports=list(proto.opset_import))
    out.ir_version = proto.ir_version
    onnx.checker.check_model(out)
    return out


def _export_conv_order(model: nn.Module, input_size: int) -> list[str]:
    """The Conv node names of a fresh fp32 export of ``model``'s architecture, in the export's order (the
    eval-mode forward's, which the matching below relies on)."""
    import copy
    import tempfile

    import onnx

    from .export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(copy.deepcopy(model), Path(tmp) / "order.onnx", input_size)
        return [n.name for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]


def _in_model_order(onnx_convs: list, order: list[str]) -> list:
    """The ONNX convolutions ``(name, weight, bias)`` listed in ``order`` (node names). A quantized graph
    may list independent branches in another valid order (a residual block's 1x1 shortcut before its
    3x3 convolutions, one of BiSeNet's two paths before the other); the quantizer keeps node names, so
    they map back. Unchanged when the names do not match (an export from another tool)."""
    by_name = {c[0]: c for c in onnx_convs}
    if len(by_name) != len(onnx_convs) or set(by_name) != set(order):
        return onnx_convs
    return [by_name[n] for n in order]


def load_from_onnx(model: nn.Module, onnx_path: Path, input_size: int, check: bool = True) -> float:
    """Copy the weights of ``onnx_path`` (fp32, or an int8 QDQ copy: see :func:`dequantized`) into
    ``model``; return max |torch - ONNX Runtime| on a random batch.

    Raises ValueError if the graph does not match the model (another architecture or width).
    """
    import tempfile

    import onnx

    proto = onnx.load(str(onnx_path))
    float_proto = dequantized(proto)
    with tempfile.TemporaryDirectory() as tmp:
        run_path = Path(onnx_path)  # what ONNX Runtime checks against: the float graph of an int8 copy
        if float_proto is not proto:
            run_path = Path(tmp) / "dequantized.onnx"
            onnx.save(float_proto, str(run_path))
        return _load(model, float_proto, Path(onnx_path), run_path, input_size, check, quantized=float_proto is not proto)


def _load(model: nn.Module, float_proto, onnx_path: Path, run_path: Path, input_size: int, check: bool,
          quantized: bool) -> float:
    from onnx import numpy_helper

    graph = float_proto.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    consts = {}
    for node in graph.node:  # some exporters put weights in Constant nodes
        if node.op_type == "Constant" and node.attribute and node.attribute[0].t.dims:
            consts[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    inits.update(consts)
    onnx_convs = []
    for node in graph.node:
        if node.op_type == "Conv":
            w = inits.get(node.input[1])
            b = inits.get(node.input[2]) if len(node.input) > 2 else None
            if w is None:
                raise ValueError(f"{onnx_path}: Conv {node.name} has no constant weight")
            onnx_convs.append((node.name, w, b))

    order = _execution_order(model, input_size)
    convs: list[tuple[nn.Conv2d, nn.BatchNorm2d | None]] = []
    for m in order:
        if isinstance(m, nn.Conv2d):
            convs.append((m, None))
        elif convs and convs[-1][1] is None and convs[-1][0].out_channels == m.num_features:
            convs[-1] = (convs[-1][0], m)
    if len(convs) != len(onnx_convs):
        raise ValueError(f"{onnx_path}: {len(onnx_convs)} convolutions in the ONNX graph, {len(convs)} in the model")
    if quantized:
        onnx_convs = _in_model_order(onnx_convs, _export_conv_order(model, input_size))

    with torch.no_grad():
        for (conv, bn), (_, w, b) in zip(convs, onnx_convs, strict=True):
            if tuple(conv.weight.shape) != w.shape:
                raise ValueError(f"{onnx_path}: conv shape {w.shape} does not match the model's {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(np.array(w)))
            bias = torch.from_numpy(np.array(b)) if b is not None else torch.zeros(w.shape[0])
            if bn is not None:
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0)
                bn.weight.fill_(float(np.sqrt(1.0 + bn.eps)))
                bn.bias.copy_(bias)
                if conv.bias is not None:
                    conv.bias.zero_()
            elif conv.bias is not None:
                conv.bias.copy_(bias)
            elif b is not None and np.abs(b).max() > 0:
                raise ValueError(f"{onnx_path}: a conv has a bias the model cannot hold")
        # everything else (linear heads) keeps its exported name
        state = model.state_dict()
        for name, arr in inits.items():
            if name in state and state[name].shape == arr.shape and not name.endswith(("running_mean", "running_var")):
                state[name].copy_(torch.from_numpy(np.array(arr)))
    if not check:
        return 0.0
    from .export import max_abs_diff

    x = np.random.default_rng(0).normal(0, 1, (2, 3, input_size, input_size)).astype(np.float32)
    diff = max_abs_diff(model, run_path, x)
    if diff > 1e-3:
        raise ValueError(f"{onnx_path}: loaded model differs from ONNX Runtime by {diff:.2e}; graph and model do not match")
    return diff


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm in eval mode (fixed statistics, trainable affine); call after ``model.train()``."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def expand_classes(model: nn.Module, classes: int, copy_from: int) -> None:
    """Give every output head of a BiSeNet ``classes`` outputs; each new one starts as a copy of output
    ``copy_from`` (e.g. facial hair from hair), with its bias lowered by 1 so the old class wins at first."""
    for head in (model.head, model.aux8, model.aux16):
        old = head.out
        new = nn.Conv2d(old.in_channels, classes, 1)
        with torch.no_grad():
            new.weight[: old.out_channels] = old.weight
            new.bias[: old.out_channels] = old.bias
            for c in range(old.out_channels, classes):
                new.weight[c] = old.weight[copy_from]
                new.bias[c] = old.bias[copy_from] - 1.0
        head.out = new
    model.classes = classes
