"""Int8 versions of the shipped networks for CPU inference (``occparse quantize``).

Why: on a CPU the parser and the regressors cost more than the face mesh; static int8
quantization (ONNX Runtime, QDQ format, per-channel weights) runs them about 2-3x faster on
CPUs with VNNI. Activation ranges are calibrated on aligned training crops (a synth pool),
never on the benchmark split. Accuracy is not assumed: compare both precisions with
``occparse predict --precision fp32|int8`` + ``occparse evaluate`` (results in the model cards).
Needs the ``onnx`` package (the ``[train]`` extra); the quantized models then run anywhere.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..runtime.io import to_gray3
from ..synth.sources import DataNotFoundError, read_rgb

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class CalibrationSet:
    """Where calibration crops come from, and how many: aligned 224x224 crops such as a synth pool's."""

    folders: tuple[Path, ...]
    count: int = 256
    gray: bool = False  # convert to gray first (for the gray regressor)
    seed: int = 0

    def crops(self) -> list[np.ndarray]:
        files = sorted(f for d in self.folders for f in (d / "images" if (d / "images").is_dir() else d).iterdir()
                       if f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no images in {', '.join(map(str, self.folders))}")
        rng = np.random.default_rng(self.seed)
        pick = rng.choice(len(files), min(self.count, len(files)), replace=False)
        out = []
        for i in sorted(pick):
            try:
                rgb = read_rgb(files[i])
            except DataNotFoundError:  # an unreadable calibration file is skipped, not fatal
                continue
            out.append(to_gray3(rgb) if self.gray else rgb)
        return out


def _reader(input_name: str, batches: list[np.ndarray]):
    from onnxruntime.quantization import CalibrationDataReader

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            b = next(self._it, None)
            return None if b is None else {input_name: b}

    return _Reader()


def quantize_model(src: Path, dst: Path, inputs: np.ndarray, batch: int = 16) -> Path:
    """Write an int8 QDQ copy of ``src`` calibrated (min-max) on the preprocessed ``inputs`` (N x 3 x S x S);
    a sigmoid output stays float (:func:`float_output_head`)."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    batches = [inputs[i : i + batch] for i in range(0, len(inputs), batch)]
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre))
        out = Path(tmp) / "int8.onnx"
        quantize_static(str(pre), str(out), _reader(name, batches), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        import onnx

        model = float_output_head(onnx.load(str(out)))
        onnx.checker.check_model(model)
        onnx.save(model, str(out))
        out.replace(dst)
    return dst


def reconnect(nodes: list, rename: dict[str, str], outputs: set[str]) -> None:
    """Rewire ONNX ``nodes`` (changed in place) after nodes were taken out of a graph: every input named
    in ``rename`` (a removed node's output -> the tensor that replaces it, followed through chains)
    reads its replacement, and a graph output in ``outputs`` that a removed node produced is written,
    under its own name, by the node that now produces its replacement."""
    def resolve(x: str) -> str:
        while x in rename:
            x = rename[x]
        return x

    for n in nodes:
        for i, x in enumerate(n.input):
            n.input[i] = resolve(x)
    for o in outputs & set(rename):
        src = resolve(o)
        for n in nodes:
            for i, x in enumerate(n.output):
                if x == src:
                    n.output[i] = o
            for i, x in enumerate(n.input):
                if x == src:
                    n.input[i] = o


#: ops a bounded output head passes through unchanged in range (walked back from the graph output)
_SHAPE_OPS = ("Squeeze", "Unsqueeze", "Reshape", "Flatten", "Identity")


def float_output_head(proto):
    """``proto`` (an ``onnx.ModelProto``, changed in place and returned) with the quantize/dequantize
    pairs between its last Sigmoid and its output, and the one on the Sigmoid's input (the logit),
    removed, so that the output head is float.

    Why: a QDQ output is uint8 over the range calibration saw; a sigmoid regressor calibrated on crops
    that never read above 0.62 could then never output more than 0.62 (the regressors shipped before
    this did exactly that on heavily covered faces). Below the old cap the values are unchanged; the
    rest of the graph is left as it is. A graph without a Sigmoid head is returned unchanged."""
    g = proto.graph
    prod = {o: n for n in g.node for o in n.output}
    out_name = g.output[0].name
    drop: list = []
    rewire: dict[str, str] = {}  # a removed DequantizeLinear's output -> the QuantizeLinear's input
    name, found = out_name, False
    while name in prod:
        n = prod[name]
        if n.op_type == "DequantizeLinear" and n.input[0] in prod and prod[n.input[0]].op_type == "QuantizeLinear":
            q = prod[n.input[0]]
            drop += [n, q]
            rewire[n.output[0]] = q.input[0]
            name = q.input[0]
        elif n.op_type in _SHAPE_OPS:
            name = n.input[0]
        else:
            found = n.op_type == "Sigmoid"
            if found:  # the logit into it too: its range is capped the same way (0.62 is logit 0.49)
                x = n.input[0]
                if x in prod and prod[x].op_type == "DequantizeLinear":
                    dq = prod[x]
                    if dq.input[0] in prod and prod[dq.input[0]].op_type == "QuantizeLinear":
                        q = prod[dq.input[0]]
                        drop += [dq, q]
                        rewire[dq.output[0]] = q.input[0]
            break
    if not found or not drop:
        return proto
    keep = [n for n in g.node if all(n is not d for d in drop)]
    reconnect(keep, rewire, {out_name})
    del g.node[:]
    g.node.extend(keep)
    used = {x for n in keep for x in n.input}
    unused = [t for t in g.initializer if t.name not in used]  # the removed pairs' scales and zero points
    for t in unused:
        g.initializer.remove(t)
    return proto


def output_drift(fp32: Path, int8: Path, inputs: np.ndarray) -> float:
    """Largest |fp32 - int8| output difference over ``inputs``: a quick sanity number, not an accuracy metric."""
    import onnxruntime as ort

    outs = []
    for p in (fp32, int8):
        s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        outs.append(s.run(None, {s.get_inputs()[0].name: inputs})[0])
    return float(np.abs(outs[0] - outs[1]).max())


EPILOG = ("example:\n  occparse quantize parser --calib pools/lfw2 pools/utk3 --out weights/parser.int8.onnx\n"
          "  occparse models pin parser_int8 parser.int8.onnx parser.md   # pin it (keeps the listed spec)")


def input_side(path: Path) -> int | None:
    """The fixed input side (pixels) of an N x 3 x S x S ONNX model, or None when it is dynamic."""
    import onnxruntime as ort

    from ..runtime.session import fixed_input_side

    return fixed_input_side(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]))


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """``occparse quantize``'s options, on an ``argparse`` (sub-)parser."""
    ap.add_argument("model", choices=["parser", "regressor_color", "regressor_gray"], help="which shipped network")
    ap.add_argument("--src", type=Path, help="ONNX to quantize (default: the shipped one)")
    ap.add_argument("--calib", type=Path, nargs="+", required=True, help="folders of aligned training crops (synth pools)")
    ap.add_argument("--count", type=int, default=256, help="calibration crops (default 256)")
    ap.add_argument("--out", type=Path, required=True, help="where the int8 ONNX goes")


def main(argv: list[str] | None = None) -> int:
    """``python -m occparse.models.quantize``: the same as ``occparse quantize``."""
    ap = argparse.ArgumentParser(prog="occparse quantize", description=__doc__, epilog=EPILOG,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return run(ap.parse_args(argv))


def run(a: argparse.Namespace) -> int:
    """Run ``occparse quantize`` with parsed arguments (see :func:`add_arguments`)."""
    from ..runtime.parsing import ParserSpec
    from ..runtime.parsing import preprocess as parser_pre
    from ..runtime.regression import RegressorSpec
    from ..runtime.regression import preprocess as regressor_pre
    from .zoo import shipped

    try:
        src = a.src or shipped(a.model).path
        crops = CalibrationSet(tuple(a.calib), a.count, gray=a.model == "regressor_gray").crops()
    except (OSError, RuntimeError) as e:
        print(f"occparse quantize: {e}")
        return 1
    # calibrate at the model's own input side (a parser trained at 160 px takes 160 x 160 inputs)
    side = input_side(src)
    if a.model == "parser":
        x = parser_pre(crops, ParserSpec(input_size=side or ParserSpec().input_size))
    else:
        x = regressor_pre(crops, RegressorSpec(input_size=side or RegressorSpec().input_size))
    try:
        quantize_model(src, a.out, x)
    except ImportError as e:
        print(f"occparse quantize: {e.name or e} is missing; install the build tools with: pip install -e \".[train]\"")
        return 1
    print(f"{a.out}: {a.out.stat().st_size / 1e6:.1f} MB, max output drift on the calibration crops "
          f"{output_drift(src, a.out, x[:64]):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
