"""Parser accuracy on held-out data, on ONNX Runtime (the artefact users get, not the torch model).

``python -m occparse.parser_eval --bench DIR`` prints IoU per class on LFW val (500 real labelled
photos never trained on; classes 0-2, compared inside the aligned 224 x 224 crop) and on a
benchmark split's label maps (all four classes).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from .geometry import align
from .parsing import CLASSES, FaceParser, iou_per_class
from .synth.engine import IGNORE
from .synth.sources import FaceSource, find_data_root
from .synth.writer import read_truth_rows


def lfw_val_crops(data_root: Path, size: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """LFW val (never trained on): aligned crops and their real labels (0 bg, 1 skin, 2 hair; 255 outside the photo)."""
    src = FaceSource(data_root, "bench", ("lfw",), show_progress=False)
    imgs, labs = [], []
    for f in src.faces:
        rgb = cv2.cvtColor(cv2.imread(str(f.image_path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        lab = cv2.imread(str(f.label_path), cv2.IMREAD_GRAYSCALE)
        crop = align(rgb, f.face, size)
        imgs.append(crop.image)
        labs.append(align(lab, f.face, size, nearest=True, matrix=crop.matrix, fill=IGNORE).image)
    return np.stack(imgs), np.stack(labs)


def folder_crops(d: Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Crops and label maps of a folder written by ``occparse synth`` (e.g. the benchmark split)."""
    rows = read_truth_rows(d)[:limit]
    imgs = [cv2.cvtColor(cv2.imread(str(d / "images" / r["filename"]), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for r in rows]
    labs = [cv2.imread(str(d / "labels" / (Path(r["filename"]).stem + ".png")), cv2.IMREAD_GRAYSCALE) for r in rows]
    return np.stack(imgs), np.stack(labs)


def iou_report(pred: np.ndarray, truth: np.ndarray, classes: int) -> dict[str, float]:
    """IoU per class summed over the whole set (not averaged per image), and their mean."""
    inter = np.zeros(4, np.int64)
    union = np.zeros(4, np.int64)
    for p, t in zip(pred, truth, strict=True):
        i, u = iou_per_class(p, t)
        inter += i
        union += u
    ious = {CLASSES[c]: float(inter[c] / union[c]) if union[c] else float("nan") for c in range(classes)}
    ious["mean"] = float(np.nanmean([ious[CLASSES[c]] for c in range(classes)]))
    return ious


def main(argv: list[str] | None = None) -> int:
    from .weights import parser_model

    ap = argparse.ArgumentParser(prog="python -m occparse.parser_eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parser", help="ONNX file (default: the shipped parser)")
    ap.add_argument("--parser-spec", help="celebamask19 or a JSON spec, for --parser")
    ap.add_argument("--data", help="data folder (default ../shared/data)")
    ap.add_argument("--bench", help="benchmark split folder written by occparse synth --preset bench")
    ap.add_argument("--precision", choices=["fp32", "int8"], default="fp32", help="which shipped parser (default fp32)")
    ap.add_argument("--flip-tta", action="store_true", help="also parse each mirrored crop and average")
    a = ap.parse_args(argv)
    path, spec = parser_model(a.parser, a.parser_spec, a.precision)
    fp = FaceParser(path, spec, flip=a.flip_tta)
    out = {"parser": str(path), "flip_tta": a.flip_tta}
    x, y = lfw_val_crops(find_data_root(a.data))
    out["lfw_val"] = iou_report(np.stack([r.labels for r in fp.parse(list(x))]), y, 3)
    out["lfw_val"]["n"] = len(x)
    if a.bench:
        x, y = folder_crops(Path(a.bench))
        out["bench"] = iou_report(np.stack([r.labels for r in fp.parse(list(x))]), y, 4)
        out["bench"]["n"] = len(x)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
