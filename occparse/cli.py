"""The ``occparse`` command: thin wrappers over the package's API, one subcommand each."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

EPILOG = """examples:
  occparse synth --preset bench --out bench/            # the fixed 3,000-sample benchmark split
  occparse synth --preset bench --out bench/ --preview sheet.png
  occparse synth --preset train --count 20000 --out synth_train/
  occparse evaluate --pred preds.csv --truth bench/truth.csv

Occlusion = 1 - |V ∩ R| / |R|: R is the MediaPipe face-oval polygon, V the visible face
(skin and features). See README.md for the data contract and the method.
"""


def _quiet_native_logs() -> None:
    # MediaPipe/TFLite print start-up chatter on stderr; keep the terminal for occparse's own messages.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _fail(msg: str, code: int = 2) -> int:
    print(f"occparse: error: {msg}", file=sys.stderr)
    return code


def cmd_synth(a: argparse.Namespace) -> int:
    from .synth.engine import SynthConfig, Synthesizer
    from .synth.sources import DataNotFoundError
    from .synth.writer import WriteJob, preview, tasks_for, write_dataset

    if a.preset == "bench" and a.count is not None:
        return _fail("--count does not apply to --preset bench (it is fixed at 3,000 samples)")
    if not a.out and not a.preview:
        return _fail("nothing to do: give --out DIR and/or --preview SHEET.png")
    split = "bench" if a.preset == "bench" else "train"
    cfg = SynthConfig(none_rate=a.none_rate, gray_rate=a.gray_rate, size=a.size)
    sources = tuple(a.sources.split(","))
    if bad := set(sources) - {"lfw", "utkface"}:
        return _fail(f"unknown --sources {sorted(bad)}; use lfw, utkface or both")
    try:
        synth = Synthesizer(a.data, split, cfg, sources, limit=a.limit)
    except DataNotFoundError as e:
        return _fail(str(e))
    tasks = tasks_for(synth, a.preset, a.count or 10000)
    if a.preview:
        preview(synth, tasks, a.seed, Path(a.preview))
        print(f"contact sheet of {min(48, len(tasks))} samples: {a.preview}")
    if a.out:
        job = WriteJob(str(synth.faces.root), split, a.seed, cfg, sources, a.limit, str(a.out))
        truth = write_dataset(job, tasks, workers=a.workers)
        _print_distribution(truth)
    return 0


def _print_distribution(truth: Path) -> None:
    import numpy as np

    from .metrics import read_truth

    rows = read_truth(truth)
    gt = np.array([float(r["FaceOcclusion"]) for r in rows])
    male = np.array([r["gender"] == "M" for r in rows])
    gray = np.array([r.get("is_gray") == "1" for r in rows])
    print(f"wrote {len(rows)} samples and {truth}")
    print(f"occlusion: mean {gt.mean():.3f}  median {np.median(gt):.3f}  <0.02 {np.mean(gt < 0.02):.0%}  "
          f"p95 {np.quantile(gt, 0.95):.3f}  max {gt.max():.3f}")
    print(f"by gender: F mean {gt[~male].mean() if (~male).any() else math.nan:.3f} (n={int((~male).sum())})  "
          f"M mean {gt[male].mean() if male.any() else math.nan:.3f} (n={int(male.sum())});  gray {gray.mean():.0%}")


def cmd_evaluate(a: argparse.Namespace) -> int:
    from .metrics import TruthFileError, evaluate, format_evaluation, read_predictions, read_truth

    try:
        ev = evaluate(read_predictions(a.pred), read_truth(a.truth), missing_policy=a.missing)
    except TruthFileError as e:
        return _fail(str(e))
    if a.json:
        print(json.dumps(ev.to_dict(), indent=2))
    else:
        print(format_evaluation(ev))
    return 1 if (a.strict and (ev.n_missing or ev.n_invalid)) else 0


def cmd_train(a: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        return _fail('training needs PyTorch: pip install -e ".[train]"')
    if a.what == "parser":
        return _train_parser(a)
    return _fail(f"unknown model {a.what!r}")


def _train_parser(a: argparse.Namespace) -> int:
    from .synth.sources import DataNotFoundError
    from .train.parser import ParserTrainConfig, train_parser

    pools = [str(p) for p in (a.pool or [])]
    if not pools:  # make a pool of training samples once, reused by later runs
        from .synth.engine import SynthConfig, Synthesizer
        from .synth.writer import WriteJob, tasks_for, write_dataset

        pool = Path(a.work) / "pool"
        if not (pool / "truth.csv").exists():
            try:
                synth = Synthesizer(a.data, "train")
            except DataNotFoundError as e:
                return _fail(str(e))
            job = WriteJob(str(synth.faces.root), "train", a.seed, SynthConfig(), ("lfw", "utkface"), None, str(pool))
            write_dataset(job, tasks_for(synth, "train", a.pool_size))
        pools = [str(pool)]
    missing = [p for p in pools if not (Path(p) / "truth.csv").exists()]
    if missing:
        return _fail(f"not a synth output folder (no truth.csv): {', '.join(missing)}")
    cfg = ParserTrainConfig(
        pools=pools, out=str(a.out), work=str(a.work), data=a.data, bench=a.bench, epochs=a.epochs, batch=a.batch,
        lr=a.lr, width=a.width, input_size=a.input_size, threads=a.threads, seed=a.seed, max_minutes=a.max_minutes,
        resume=not a.restart,
    )
    try:
        train_parser(cfg)
    except DataNotFoundError as e:
        return _fail(str(e))
    return 0


def cmd_parse(a: argparse.Namespace) -> int:
    import cv2

    from .io import ImageInputError
    from .pipeline import Parser
    from .visualize import label_overlay
    from .weights import WeightsError

    try:
        app = Parser(a.parser, a.parser_spec, max_faces=a.max_faces)
    except (WeightsError, FileNotFoundError, ValueError) as e:
        return _fail(str(e))
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in a.images:
        try:
            res = app.parse(path)
        except ImageInputError as e:
            print(f"{path}: {e.status}: {e.detail}", file=sys.stderr)
            failures += 1
            continue
        if not res.faces:
            print(f"{path}: no_face: no face found", file=sys.stderr)
            failures += 1
            continue
        labels = res.label_map()
        stem = Path(path).stem
        cv2.imwrite(str(out_dir / f"{stem}_labels.png"), labels)
        overlay = label_overlay(res.image.rgb, labels, [f.face for f in res.faces])
        cv2.imwrite(str(out_dir / f"{stem}_overlay.png"), overlay[..., ::-1])
        print(f"{path}: {len(res.faces)} face(s) -> {out_dir / (stem + '_labels.png')}, {out_dir / (stem + '_overlay.png')}")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="occparse",
        description="Measure how much of a face is occluded (0..1), with a picture that shows why.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser(
        "synth",
        help="make synthetic occluded faces with exact ground truth",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Paste masks, glasses, caps, hands, hair, scarves and objects onto real faces from the data "
        "folder, placed by MediaPipe landmarks, and write 224x224 aligned crops, the challenge CSV "
        "(filename,FaceOcclusion,gender + is_gray,occluder,source,base) and label maps "
        "(0 background, 1 visible face, 2 hair, 3 occluder, 255 unknown).",
        epilog="""presets:
  bench   the fixed benchmark split: 2,000 samples on the 500 LFW val faces (first variant of each
          face un-occluded) and 1,000 on the committed UTKFace benchmark list; benchmark-only hands
          and hair donors. Never used by training commands.
  train   --count samples on training faces (LFW train + UTKFace minus the benchmark list).

examples:
  occparse synth --preset bench --out /tmp/bench
  occparse synth --preset bench --preview sheet.png          # 48 samples, R outlined, occluders red
  occparse synth --preset train --count 5000 --seed 1 --out /tmp/train --workers 2""",
    )
    s.add_argument("--preset", choices=["bench", "train"], default="train", help="which faces and occluders (default train)")
    s.add_argument("--out", type=Path, help="output folder (images/, labels/, truth.csv)")
    s.add_argument("--count", type=int, help="number of samples for --preset train (default 10000)")
    s.add_argument("--seed", type=int, default=0, help="same seed, same samples (default 0)")
    s.add_argument("--preview", metavar="SHEET.png", help="also draw a contact sheet of 48 samples")
    s.add_argument("--data", help="data folder (default $OCCPARSE_DATA or ../shared/data)")
    s.add_argument("--workers", type=int, default=0, help="processes (default: all cores)")
    s.add_argument("--sources", default="lfw,utkface", help="base faces: lfw, utkface or both (default both)")
    s.add_argument("--limit", type=int, help="use at most this many faces per source (quick tries)")
    s.add_argument("--none-rate", type=float, default=0.35, help="share of samples without pasted occluder (default 0.35)")
    s.add_argument("--gray-rate", type=float, default=0.15, help="share converted to grayscale (default 0.15)")
    s.add_argument("--size", type=int, default=224, help="crop side in pixels (default 224)")
    s.set_defaults(func=cmd_synth)

    e = sub.add_parser(
        "evaluate",
        help="score predictions with the challenge metric",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Err = sum w(p-GT)^2 / sum w with w = 1/30 + GT, per gender; "
        "Score = (Err_F + Err_M)/2 + |Err_F - Err_M| (lower is better). Also MAE, Pearson r and "
        "errors per group (gender, colour/gray, occlusion bin, occluder kind when the truth has those columns).",
        epilog="""A prediction that is missing or not a number in [0, 1] is counted and reported, and by default
scored as the worst possible value (--missing worst); --missing zero scores it as 0, --missing skip
leaves it out of the error (still reported).

example:
  occparse evaluate --pred preds.csv --truth bench/truth.csv --json""",
    )
    e.add_argument("--pred", required=True, help="CSV with filename,FaceOcclusion")
    e.add_argument("--truth", required=True, help="CSV with filename,FaceOcclusion,gender (gender F/M or 0..1, 1 = male)")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.add_argument("--missing", choices=["worst", "zero", "skip"], default="worst", help="how missing rows are scored")
    e.add_argument("--strict", action="store_true", help="exit 1 when any prediction is missing or invalid")
    e.set_defaults(func=cmd_evaluate)

    pa = sub.add_parser(
        "parse",
        help="label face, hair and occluders in photos",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="For each image: find the faces (MediaPipe), parse each aligned crop (BiSeNet on ONNX Runtime) "
        "and write, in the original image's geometry, NAME_labels.png (0 background, 1 visible face, 2 hair, "
        "3 occluder) and NAME_overlay.png (classes tinted, face region outlined).",
        epilog="""examples:
  occparse parse photo.jpg --out-dir parsed/
  occparse parse a.jpg b.png --out-dir parsed/ --parser my_celebamask.onnx --parser-spec celebamask19

--parser-spec: "celebamask19" for the common 19-class CelebAMask-HQ BiSeNet export (512x512 input, ImageNet
mean/std), or a JSON file {"input_size": S, "mean": [..], "std": [..], "class_map": [..]} mapping each output
class to occparse's 0..3. Exit status 1 when any image failed (each failure is reported on stderr).""",
    )
    pa.add_argument("images", nargs="+", help="image files")
    pa.add_argument("--out-dir", required=True, help="folder for the label maps and overlays")
    pa.add_argument("--parser", help="a parser ONNX file (default: the shipped weights/parser.onnx)")
    pa.add_argument("--parser-spec", help="celebamask19 or a JSON spec for --parser")
    pa.add_argument("--max-faces", type=int, default=4, help="faces per image (default 4)")
    pa.set_defaults(func=cmd_parse)

    t = sub.add_parser(
        "train",
        help="train occparse's models (needs the [train] extra)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a model on the CPU (or GPU) with checkpoints; rerunning the same command resumes.",
        epilog="""examples:
  occparse synth --preset train --sources lfw --count 8000 --seed 11 --out pools/lfw
  occparse synth --preset bench --out bench/
  occparse train parser --pool pools/lfw --bench bench/ --out weights/ --epochs 12 --max-minutes 60
""",
    )
    t.add_argument("what", choices=["parser"], help="which model")
    t.add_argument("--pool", nargs="+", type=Path, help="synth output folder(s) to train on (default: make one in WORK/pool)")
    t.add_argument("--pool-size", type=int, default=12000, help="samples in the default pool (default 12000)")
    t.add_argument("--bench", help="benchmark split folder: its occluder IoU is reported each epoch")
    t.add_argument("--out", type=Path, default=Path("weights"), help="where the ONNX goes (default weights/)")
    t.add_argument("--work", default="runs/parser", help="checkpoints and history (default runs/parser)")
    t.add_argument("--data", help="data folder (default $OCCPARSE_DATA or ../shared/data)")
    t.add_argument("--epochs", type=int, default=12)
    t.add_argument("--batch", type=int, default=16)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--width", type=float, default=0.5, help="channel width multiplier of the ResNet-18 trunk")
    t.add_argument("--input-size", type=int, default=128, help="network input side in pixels")
    t.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--max-minutes", type=float, default=0.0, help="stop after the epoch that passes this many minutes")
    t.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    t.set_defaults(func=cmd_train)
    return p


def main(argv: list[str] | None = None) -> int:
    _quiet_native_logs()
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "func", None):
        parser.print_help()
        return 2
    try:
        return int(a.func(a) or 0)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
