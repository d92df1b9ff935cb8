"""Warm-start a PyTorch model from an occparse ONNX export, so training can continue from shipped weights.

Why: checkpoints live outside the repository and do not survive a machine; the ONNX files in
``weights/`` do. The exporter folds each BatchNorm into the convolution before it, so the
``.pt`` state cannot be read back by name. Instead the convolutions are matched by execution
order (the ONNX graph is topologically ordered like the eval-mode forward) and shape, each
folded BatchNorm becomes a fixed affine (running mean 0, variance 1, scale sqrt(1 + eps),
shift = the folded bias), and the caller trains with BatchNorm frozen (``freeze_batchnorm``).
The load is checked end to end: torch's output must match ONNX Runtime's.
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


def load_from_onnx(model: nn.Module, onnx_path: Path, input_size: int, check: bool = True) -> float:
    """Copy the weights of ``onnx_path`` into ``model``; return max |torch - ONNX Runtime| on a random batch.

    Raises ValueError if the graph does not match the model (another architecture or width).
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
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
            onnx_convs.append((w, b))

    order = _execution_order(model, input_size)
    convs: list[tuple[nn.Conv2d, nn.BatchNorm2d | None]] = []
    for m in order:
        if isinstance(m, nn.Conv2d):
            convs.append((m, None))
        elif convs and convs[-1][1] is None and convs[-1][0].out_channels == m.num_features:
            convs[-1] = (convs[-1][0], m)
    if len(convs) != len(onnx_convs):
        raise ValueError(f"{onnx_path}: {len(onnx_convs)} convolutions in the ONNX graph, {len(convs)} in the model")

    with torch.no_grad():
        for (conv, bn), (w, b) in zip(convs, onnx_convs, strict=True):
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
    diff = max_abs_diff(model, onnx_path, x)
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
