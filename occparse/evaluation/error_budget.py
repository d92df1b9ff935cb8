"""How much of the geometric estimate's error is the parser's, and how much the face region's.

``occparse error-budget --bench DIR`` scores every face of a folder written by
``occparse synth`` (label maps beside the images) twice, with the same inference-time face region
R (the mesh run on the occluded image, as ``predict`` does):

* with the **parser's** labels: the geometric estimate users get;
* with the folder's **true** label map warped into the crop: what a perfect parser would give.

The second is the floor of the geometric method with this mesh; the gap between the two is what
a better parser can still win. Why it exists: it tells whether to spend compute on the parser or
on the region (see docs/commands.md, error-budget).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..runtime.occlusion import geometric_occlusion
from ..runtime.parsing import ParseResult
from ..synth.sources import DataNotFoundError, read_label_map
from ..synth.writer import read_truth_rows
from .metrics import challenge_score, parse_gender

#: GT bins the bias is reported in.
BINS = ((0.0, 0.1), (0.1, 0.35), (0.35, 1.0001))


def oracle_parse(labels: np.ndarray, matrix: np.ndarray, fallback: np.ndarray) -> ParseResult:
    """A ParseResult from a true label map (original geometry) warped into the crop.

    Where the truth is unknown (255: outside a UTKFace sample's labelled area, which is the
    sample's own R), the ``fallback`` labels (the parser's) stand in: an inference-time R a few
    pixels wider than the sample's must not count those pixels as occluded."""
    h, w = fallback.shape
    lab = cv2.warpAffine(labels, matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=255)
    unknown = lab > 3
    lab[unknown] = fallback[unknown]
    probs = np.eye(4, dtype=np.float32)[lab].transpose(2, 0, 1)
    return ParseResult(lab.astype(np.uint8), np.ascontiguousarray(probs))


@dataclass
class Budget:
    n: int = 0
    skipped: int = 0  # no face even with --assume-aligned (should not happen on aligned crops)
    gt: list[float] = field(default_factory=list)
    male: list[bool] = field(default_factory=list)
    parser: list[float] = field(default_factory=list)
    oracle: list[float] = field(default_factory=list)

    def score(self, which: str) -> tuple[float, float, float]:
        return challenge_score(np.array(getattr(self, which)), np.array(self.gt), np.array(self.male))

    def bias(self, which: str) -> list[tuple[str, int, float]]:
        g, p = np.array(self.gt), np.array(getattr(self, which))
        out = []
        for lo, hi in BINS:
            m = (g >= lo) & (g < hi)
            out.append((f"[{lo:.2f}, {min(hi, 1.0):.2f}]", int(m.sum()), float((p[m] - g[m]).mean()) if m.any() else float("nan")))
        return out

    def format(self) -> str:
        lines = [f"{self.n} faces scored, {self.skipped} skipped", "",
                 f"{'labels':<34}{'Score':>9}{'Err_F':>9}{'Err_M':>9}"]
        for which, name in (("parser", "parser (what users get)"), ("oracle", "true labels, same R (the floor)")):
            s, f, m = self.score(which)
            lines.append(f"{name:<34}{s:>9.5f}{f:>9.5f}{m:>9.5f}")
        lines += ["", "mean signed error (estimate - truth) by true occlusion:"]
        for (b, n, bp), (_, _, bo) in zip(self.bias("parser"), self.bias("oracle"), strict=True):
            lines.append(f"  gt {b:<14} n={n:<5} parser {bp:+.4f}   true labels {bo:+.4f}")
        return "\n".join(lines)


def measure(folder: Path, limit: int | None = None, precision: str = "auto", show_progress: bool = True) -> Budget:
    from tqdm import tqdm

    from ..runtime.pipeline import Estimator, EstimatorOptions

    rows = read_truth_rows(folder)[:limit]
    est = Estimator(EstimatorOptions(max_faces=1, detector_scores=False, assume_aligned=True, use_learned=False,
                                     precision=precision))
    b = Budget()
    for r in tqdm(rows, desc="error budget", unit="img", disable=not show_progress):
        a = est.analyze(str(folder / "images" / r["filename"]))
        try:
            labels = read_label_map(folder / "labels" / (Path(r["filename"]).stem + ".png"))
        except DataNotFoundError:
            labels = None
        if not a.faces or labels is None:
            b.skipped += 1
            continue
        f = a.faces[0]
        size = (a.image.height, a.image.width)
        truth = oracle_parse(labels, f.crop.matrix, f.parse.labels)
        b.gt.append(float(r["FaceOcclusion"]))
        b.male.append(parse_gender(r["gender"]) >= 0.5)
        b.parser.append(f.geometry.overall)
        b.oracle.append(geometric_occlusion(f.crop, truth, size).overall)
        b.n += 1
    return b


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """``occparse error-budget``'s options, on an ``argparse`` (sub-)parser."""
    ap.add_argument("--bench", required=True, help="folder written by occparse synth (images/, labels/, truth.csv)")
    ap.add_argument("-n", type=int, default=None, help="only the first N rows")
    ap.add_argument("--precision", choices=["auto", "fp32", "int8"], default="auto")


def main(argv: list[str] | None = None) -> int:
    """``python -m occparse.evaluation.error_budget``: the same as ``occparse error-budget``."""
    ap = argparse.ArgumentParser(prog="occparse error-budget", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return run(ap.parse_args(argv))


def run(a: argparse.Namespace) -> int:
    """Run ``occparse error-budget`` with parsed arguments (see :func:`add_arguments`)."""
    folder = Path(a.bench)
    if not (folder / "truth.csv").exists() or not (folder / "labels").is_dir():
        print(f"error: {folder} is not a synth output folder with label maps (truth.csv, labels/)", file=sys.stderr)
        return 2
    print(measure(folder, a.n, a.precision).format())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

