"""Continuing training from an ONNX export, int8 quantization, and the precision switch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the [train] extra (torch) to build test models")
pytest.importorskip("onnx", reason="needs the [train] extra (onnx)")

from occparse.models.zoo import WeightsError, resolve_precision  # noqa: E402
from occparse.train.bisenet import BiSeNet  # noqa: E402
from occparse.train.export import export_onnx  # noqa: E402
from occparse.train.resnet import OcclusionRegressor  # noqa: E402
from occparse.train.warmstart import freeze_batchnorm, load_from_onnx  # noqa: E402


def _randomise_batchnorm(model: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm statistics, so folding them into the convs actually changes the weights."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize("make,size", [(lambda: BiSeNet(4, 0.25), 64), (lambda: OcclusionRegressor(), 64)])
def test_onnx_export_loads_back_into_torch(tmp_path: Path, make, size: int):
    torch.manual_seed(0)
    src = make().eval()
    _randomise_batchnorm(src)
    onnx_path = export_onnx(src, tmp_path / "m.onnx", size)
    fresh = make()
    diff = load_from_onnx(fresh, onnx_path, size)
    assert diff < 1e-4
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        assert torch.allclose(src(x), fresh.eval()(x), atol=1e-4)


def test_wrong_architecture_is_refused(tmp_path: Path):
    onnx_path = export_onnx(BiSeNet(4, 0.25).eval(), tmp_path / "narrow.onnx", 64)
    with pytest.raises(ValueError):
        load_from_onnx(BiSeNet(4, 0.5), onnx_path, 64)


def test_frozen_batchnorm_keeps_statistics_while_training(tmp_path: Path):
    model = OcclusionRegressor()
    load_from_onnx(model, export_onnx(OcclusionRegressor().eval(), tmp_path / "r.onnx", 64), 64)
    bn = model.net.bn1
    before = bn.running_mean.clone()
    model.train()
    freeze_batchnorm(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss = ((model(torch.randn(4, 3, 64, 64) * 3 + 1) - 0.5) ** 2).mean()
    loss.backward()
    opt.step()
    assert torch.equal(bn.running_mean, before)
    assert model.training and not bn.training


def test_int8_model_tracks_fp32(tmp_path: Path):
    from occparse.models.quantize import output_drift, quantize_model

    torch.manual_seed(0)
    model = OcclusionRegressor().eval()
    src = export_onnx(model, tmp_path / "r.onnx", 64)
    rng = np.random.default_rng(0)
    calib = rng.normal(0, 1, (32, 3, 64, 64)).astype(np.float32)
    dst = quantize_model(src, tmp_path / "r.int8.onnx", calib)
    assert dst.exists() and dst.stat().st_size < src.stat().st_size / 2
    # a sigmoid output in [0, 1]: int8 may move it a little, never across the range
    assert output_drift(src, dst, calib[:8]) < 0.1


@pytest.mark.parametrize("make,size", [(lambda: OcclusionRegressor(), 64), (lambda: BiSeNet(4, 0.25), 64)])
def test_int8_export_warm_starts_close_to_its_float_model(tmp_path: Path, make, size: int):
    """An int8 (QDQ) copy starts training as well as the fp32 file it came from: its weights are read back
    (dequantized), the ReLUs the quantizer folded into its zero points come back, and the result stays
    close to the fp32 model (the weights' int8 rounding is all that differs)."""
    import onnx

    from occparse.models.quantize import quantize_model
    from occparse.train.warmstart import dequantized

    torch.manual_seed(1)
    src = make().eval()
    _randomise_batchnorm(src, 1)
    fp32 = export_onnx(src, tmp_path / "m.onnx", size)
    calib = np.random.default_rng(1).normal(0, 1, (16, 3, size, size)).astype(np.float32)
    int8 = quantize_model(fp32, tmp_path / "m.int8.onnx", calib)
    int8_proto = onnx.load(str(int8))
    before = int8_proto.SerializeToString()
    float_graph = dequantized(int8_proto)
    assert int8_proto.SerializeToString() == before  # the caller's model is left as it was
    ops = {n.op_type for n in float_graph.graph.node}
    assert not ops & {"QuantizeLinear", "DequantizeLinear"}
    fresh = make()
    assert load_from_onnx(fresh, int8, size) < 1e-4  # against the dequantized graph
    x = torch.from_numpy(calib[:4])
    with torch.no_grad():
        want, got = src(x), fresh.eval()(x)
    if isinstance(want, (tuple, list)):
        want, got = want[0], got[0]
    spread = float(want.abs().max())
    assert float((want - got).abs().max()) < 0.05 * max(spread, 1e-6) + 0.02


def test_int8_regressor_keeps_its_output_head_float(tmp_path: Path):
    """A sigmoid head quantized over the calibration's range caps the output (the shipped regressors once
    could not read above 0.62): the logit and the output stay float, and a shipped-style int8 file with
    a quantized head is fixed by float_output_head without touching anything else."""
    import onnx

    from occparse.models.quantize import float_output_head, quantize_model

    torch.manual_seed(0)
    src = export_onnx(OcclusionRegressor().eval(), tmp_path / "r.onnx", 64)
    calib = np.random.default_rng(0).normal(0, 1, (16, 3, 64, 64)).astype(np.float32)
    g = onnx.load(str(quantize_model(src, tmp_path / "r.int8.onnx", calib))).graph
    prod = {o: n for n in g.node for o in n.output}
    sig = next(n for n in g.node if n.op_type == "Sigmoid")
    assert prod[sig.input[0]].op_type == "Gemm"  # the logit is float
    after = [n.op_type for n in g.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
             and any(i == sig.output[0] for i in n.input)]
    assert not after
    assert float_output_head(onnx.load(str(tmp_path / "r.int8.onnx"))).SerializeToString() == onnx.load(
        str(tmp_path / "r.int8.onnx")).SerializeToString()  # nothing left to remove: unchanged


def test_precision_resolution():
    from occparse.cli import PRECISION_CHOICES
    from occparse.models.zoo import PRECISIONS

    assert PRECISION_CHOICES == PRECISIONS  # the CLI's copy cannot drift from the registry's
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("int8", ["CPUExecutionProvider"]) == "int8"
    assert resolve_precision("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == "fp32"
    assert resolve_precision("auto", ["CPUExecutionProvider"]) in ("fp32", "int8")
    with pytest.raises(WeightsError):
        resolve_precision("fp16")


def test_parser_init_from_checkpoint_keeps_weights_and_frozen_flag(tmp_path):
    """--init-from: a previous stage's checkpoint starts a new one, aux heads included, BatchNorm as it was."""
    from occparse.train.bisenet import BiSeNet
    from occparse.train.parser import init_from_checkpoint

    torch.manual_seed(3)
    src = BiSeNet(4, width=0.25)
    for flag, conf, want in ((True, {}, True), (None, {"init_onnx": "weights/parser.onnx"}, True), (None, {}, False)):
        ck = {"model": src.state_dict(), "config": conf}
        if flag is not None:
            ck["frozen_bn"] = flag
        torch.save(ck, tmp_path / "last.pt")
        dst = BiSeNet(4, width=0.25)
        assert init_from_checkpoint(dst, tmp_path / "last.pt") is want
        for (name, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items(), strict=True):
            assert torch.equal(a, b), name


def test_parser_refuses_both_starting_points(tmp_path, capsys):
    from occparse.cli import main

    (tmp_path / "truth.csv").write_text("filename,FaceOcclusion,gender\n")
    rc = main(["train", "parser", "--pool", str(tmp_path), "--init-onnx", "a.onnx", "--init-from", "b.pt"])
    assert rc == 2 and "not both" in capsys.readouterr().err


def test_parser_warm_start_at_another_input_size(tmp_path, capsys):
    """A parser exported at one input side continues training at another: the weights carry over."""
    from occparse.models.quantize import input_side
    from occparse.train.parser import warm_start_onnx

    torch.manual_seed(5)
    src = BiSeNet(5, 0.25).eval()
    _randomise_batchnorm(src)
    path = export_onnx(src, tmp_path / "p64.onnx", 64)
    assert input_side(path) == 64
    model = warm_start_onnx(path, 0.25, 96).eval()
    assert "takes 64 px; training continues at 96 px" in capsys.readouterr().out
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(src(x), model(x), atol=1e-4)  # the same network, now fed 96-px crops
