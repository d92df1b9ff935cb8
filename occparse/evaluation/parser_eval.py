"""Parser accuracy on held-out data, on ONNX Runtime (the artefact users get, not the torch model).

``occparse parser-eval --bench DIR`` prints IoU per class on LFW val (500 real labelled
photos never trained on, compared inside the aligned 224 x 224 crop; LFW's hair label split into
hair and facial hair by :func:`occparse.labels.split_facial_hair`) and on a benchmark split's
label maps (all classes). ``mean_merged`` is the mean over background, face and hair with facial
hair counted as hair: the number earlier (four-class) parsers were judged by.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..labels import CLASSES, FACIAL_HAIR, HAIR, IGNORE, N_CLASSES, split_facial_hair
from ..runtime.align import align
from ..runtime.parsing import FaceParser, iou_per_class
from ..runtime.strictjson import dumps as strict_dumps
from ..synth.sources import FaceSource, find_data_root, read_label_map, read_rgb
from ..synth.writer import read_truth_rows


def lfw_val_crops(data_root: Path, size: int = 224) -> tuple[np.ndarray, np.ndarray]:
    """LFW val (never trained on): aligned crops and their real labels (0 bg, 1 skin, 2 hair, 4 facial hair; 255 outside the photo)."""
    src = FaceSource(data_root, "bench", ("lfw",), show_progress=False)
    imgs, labs = [], []
    for f in src.faces:
        rgb = read_rgb(f.image_path)
        lab = split_facial_hair(read_label_map(f.label_path), f.face, f.gender)
        crop = align(rgb, f.face, size)
        imgs.append(crop.image)
        labs.append(align(lab, f.face, size, nearest=True, matrix=crop.matrix, fill=IGNORE).image)
    return np.stack(imgs), np.stack(labs)


def folder_crops(d: Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Crops and label maps of a folder written by ``occparse synth`` (e.g. the benchmark split)."""
    rows = read_truth_rows(d)[:limit]
    imgs = [read_rgb(d / "images" / r["filename"]) for r in rows]
    labs = [read_label_map(d / "labels" / (Path(r["filename"]).stem + ".png")) for r in rows]
    return np.stack(imgs), np.stack(labs)


def _iou(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    inter = np.zeros(N_CLASSES, np.int64)
    union = np.zeros(N_CLASSES, np.int64)
    for p, t in zip(pred, truth, strict=True):
        i, u = iou_per_class(p, t)
        inter += i
        union += u
    return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def iou_report(pred: np.ndarray, truth: np.ndarray, classes: tuple[int, ...] = tuple(range(N_CLASSES))) -> dict[str, float]:
    """IoU per class summed over the whole set (not averaged per image), their mean over ``classes``, and
    ``mean_merged``: background, face and hair with facial hair counted as hair (four-class parsers' measure).

    ``pred``, ``truth``: N x H x W uint8 label maps (truth 255 = ignore)."""
    iou = _iou(pred, truth)
    out = {CLASSES[c]: float(iou[c]) for c in classes}
    out["mean"] = float(np.nanmean([iou[c] for c in classes]))
    merged = _iou(np.where(pred == FACIAL_HAIR, HAIR, pred), np.where(truth == FACIAL_HAIR, HAIR, truth))
    out["mean_merged"] = float(np.nanmean(merged[:3]))
    return out


#: the classes LFW's labels know (no occluder class)
LFW_CLASSES = (0, 1, 2, FACIAL_HAIR)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """``occparse parser-eval``'s options, on an ``argparse`` (sub-)parser."""
    ap.add_argument("--parser", help="ONNX file (default: the shipped parser)")
    ap.add_argument("--parser-spec", help="celebamask19 or a JSON spec, for --parser")
    ap.add_argument("--data", help="data folder (default ../shared/data)")
    ap.add_argument("--bench", help="benchmark split folder written by occparse synth --preset bench")
    ap.add_argument("--precision", choices=["fp32", "int8"], default="fp32", help="which shipped parser (default fp32)")
    ap.add_argument("--flip-tta", action="store_true", help="also parse each mirrored crop and average")
    ap.add_argument("--weights", metavar="DIR", help="weights folder (default $OCCPARSE_WEIGHTS, else the installed one)")


def main(argv: list[str] | None = None) -> int:
    """``python -m occparse.evaluation.parser_eval``: the same as ``occparse parser-eval``."""
    ap = argparse.ArgumentParser(prog="occparse parser-eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return run(ap.parse_args(argv))


def run(a: argparse.Namespace) -> int:
    """Run ``occparse parser-eval`` with parsed arguments (see :func:`add_arguments`)."""
    from ..models.zoo import parser_model

    path, spec = parser_model(a.parser, a.parser_spec, a.precision, a.weights)
    fp = FaceParser(path, spec, flip=a.flip_tta)
    out = {"parser": str(path), "flip_tta": a.flip_tta}
    x, y = lfw_val_crops(find_data_root(a.data))
    out["lfw_val"] = iou_report(np.stack([r.labels for r in fp.parse(list(x))]), y, LFW_CLASSES)
    out["lfw_val"]["n"] = len(x)
    if a.bench:
        x, y = folder_crops(Path(a.bench))
        out["bench"] = iou_report(np.stack([r.labels for r in fp.parse(list(x))]), y)
        out["bench"]["n"] = len(x)
    print(strict_dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
