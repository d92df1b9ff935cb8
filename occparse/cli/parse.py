"""``occparse parse``: label face, hair and occluders in photos; writes label maps and overlays."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (
    add_parser_args,
    device_providers,
    fail,
    old_label_map,
    output_clash,
    own_png,
    unique_stems,
    unwritable_folder,
    write_marked_png,
)


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``occparse parse`` (help, description, options) on the subcommands ``sub``."""
    p = sub.add_parser(
        "parse",
        help="label face, hair and occluders in photos",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="For each image: find the faces (MediaPipe), parse each aligned crop (BiSeNet on ONNX Runtime) "
        "and write, in the original image's geometry, NAME_labels.png (0 background, 1 visible face, 2 hair, "
        "3 occluder, 4 facial hair) and NAME_overlay.png (classes tinted, face region outlined). The labels are "
        "the ones occparse measures with: the parser's, after its label rules (a cap over the top of the face "
        "and dark lenses over the eyes read as occluder; docs/method.md).",
        epilog="""examples:
  occparse parse photo.jpg --out-dir parsed/
  occparse parse a.jpg b.png --out-dir parsed/ --parser my_celebamask.onnx --parser-spec celebamask19

--parser-spec: "celebamask19" for the common 19-class CelebAMask-HQ BiSeNet export (512x512 input, ImageNet
mean/std), or a JSON file {"input_size": S, "mean": [..], "std": [..], "class_map": [..]} mapping each output
class to occparse's 0..4 (0 background, 1 visible face, 2 hair, 3 occluder, 4 facial hair), with an optional
"facial_hair_weight" (default 1: the facial-hair probability is multiplied by it before the labels are taken). Exit status 1 when any image failed (each failure is reported on stderr).""",
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse parse``'s options."""
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--out-dir", required=True, help="folder for the label maps and overlays")
    add_parser_args(p)
    p.add_argument("--max-faces", type=int, default=None, help="most faces per image (N >= 1), subject first (default: all found)")


def run(a: argparse.Namespace) -> int:

    from ..models.zoo import WeightsError
    from ..runtime.pipeline import Estimator, EstimatorOptions
    from ..runtime.visualize import label_overlay

    if a.max_faces is not None and a.max_faces < 1:
        return fail(f"--max-faces must be at least 1, not {a.max_faces}")
    out_dir = Path(a.out_dir)
    stems = unique_stems(a.images)
    outputs = [out_dir / f"{st}_{kind}.png" for st in stems for kind in ("labels", "overlay")]
    if clash := output_clash(outputs, a.images):  # before any work: an input is never overwritten
        return fail(f"--out-dir {out_dir} would write {clash[0]}, which is the input {clash[1]}; choose another "
                    "--out-dir")
    # before any work: a file of that name that occparse did not write is the user's, never replaced
    def ours(o: Path) -> bool:  # marked, or written before the mark: a label map, or the overlay beside one
        if own_png(o):
            return True
        labels = o.with_name(o.name[: -len("_overlay.png")] + "_labels.png") if o.name.endswith("_overlay.png") else o
        return labels.is_file() and (own_png(labels) or old_label_map(labels))

    if foreign := next((o for o in outputs if (o.exists() or o.is_symlink()) and not ours(o)), None):
        return fail(f"--out-dir {out_dir} would replace {foreign}, which occparse did not write; move it or choose "
                    "another --out-dir")
    try:
        app = Estimator(EstimatorOptions(parser=a.parser, parser_spec=a.parser_spec, precision=a.precision,
                                         parser_flip=a.flip_tta, max_faces=a.max_faces,
                                         detector_scores=False, weights=a.weights, providers=device_providers(a)))
    except (WeightsError, FileNotFoundError, ValueError) as e:
        return fail(str(e))
    if err := unwritable_folder(out_dir):
        return fail(f"--out-dir {out_dir}: {err}")
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path, stem in zip(a.images, stems, strict=True):
        res = app.analyze(path)
        if not res.result.ok:
            print(f"{path}: {res.result.status}: {res.result.message}", file=sys.stderr)
            failures += 1
            continue
        labels = res.label_map()
        overlay = label_overlay(res.image.rgb, labels, [f.face for f in res.faces])
        outs = [out_dir / f"{stem}_labels.png", out_dir / f"{stem}_overlay.png"]
        for o in outs:
            if o.exists():  # a previous run's output (checked above): replaced, but never silently
                print(f"replacing {o}", file=sys.stderr)
        if not (write_marked_png(outs[0], labels) and write_marked_png(outs[1], overlay)):
            print(f"{path}: error: could not write {outs[0]} / {outs[1]}", file=sys.stderr)
            failures += 1
            continue
        print(f"{path}: {len(res.faces)} face(s) -> {outs[0]}, {outs[1]}")
    return 1 if failures else 0
