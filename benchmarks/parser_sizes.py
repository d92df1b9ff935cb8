"""What a bigger face parser costs at inference: int8 latency per crop for each width and input size.

Builds occparse's BiSeNet (``occparse.train.bisenet``) with random weights at each width multiplier and
input side, exports it to ONNX, makes the int8 copy the CPU runtime uses (min-max calibration on random
crops: the speed of an int8 graph does not depend on its calibration), and times it on batches of crops
two ways: the network alone (ONNX Runtime), and ``FaceParser.parse`` on aligned face crops as the batch
pipeline runs it (resize and normalise, the network, softmax, probabilities back at the crop's size,
labels). Used to choose the size of a parser before training it for many hours: the batch pipeline's
images/s (``occparse benchmark``) falls by about the extra milliseconds per crop of the second column.

Needs the ``train`` extra (PyTorch) to build the networks. Usage::

    python benchmarks/parser_sizes.py [--widths 0.5 0.75 1.0] [--sizes 128 160] [--batch 64] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def time_parser(width: float, side: int, batch: int, threads: int, repeats: int,
                tmp: Path) -> tuple[int, float, float]:
    """(parameters of the exported network, milliseconds per crop for the network alone and for
    ``FaceParser.parse``) for an int8 parser of ``width`` at ``side`` px."""
    import onnxruntime as ort
    import torch

    from occparse.labels import N_CLASSES
    from occparse.models.quantize import quantize_model
    from occparse.runtime.align import CANONICAL_SIZE
    from occparse.runtime.parsing import FaceParser, ParserSpec
    from occparse.train.bisenet import BiSeNet
    from occparse.train.export import export_onnx

    torch.manual_seed(0)
    model = BiSeNet(N_CLASSES, width).eval()
    n_params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("aux"))
    fp32 = export_onnx(model, tmp / f"w{width}_{side}.onnx", side)
    rng = np.random.default_rng(0)
    int8 = quantize_model(fp32, tmp / f"w{width}_{side}.int8.onnx",
                          rng.uniform(-1, 1, (32, 3, side, side)).astype(np.float32))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(int8), so, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: rng.uniform(-1, 1, (batch, 3, side, side)).astype(np.float32)}
    sess.run(None, feed)  # the first run allocates
    t0 = time.perf_counter()
    for _ in range(repeats):
        sess.run(None, feed)
    network = (time.perf_counter() - t0) / (repeats * batch) * 1000

    parser = FaceParser(int8, ParserSpec(input_size=side), threads=threads, batch_size=batch)
    crops = [rng.integers(0, 256, (CANONICAL_SIZE, CANONICAL_SIZE, 3), dtype=np.uint8) for _ in range(batch)]
    parser.parse(crops)
    t0 = time.perf_counter()
    for _ in range(repeats):
        parser.parse(crops)
    return n_params, network, (time.perf_counter() - t0) / (repeats * batch) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", type=float, nargs="+", default=[0.5, 0.75, 1.0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 160])
    ap.add_argument("--batch", type=int, default=64, help="crops per run (default 64, as the batch pipeline)")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default 2)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per size (default 3)")
    args = ap.parse_args(argv)
    base = None
    print(f"{'width':>6} {'input':>6} {'parameters':>11} {'network ms/crop':>16} {'parse ms/crop':>14} {'vs first':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for w in args.widths:
            for s in args.sizes:
                n, net, parse = time_parser(w, s, args.batch, args.threads, args.repeats, Path(tmp))
                base = parse if base is None else base
                print(f"{w:>6} {s:>6} {n / 1e6:>10.2f}M {net:>16.2f} {parse:>14.2f} {parse - base:>+9.2f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
