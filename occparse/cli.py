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
  occparse benchmark --images bench/images -n 200       # per-stage latency and images/s (see --help)
  occparse quantize parser --calib pools/lfw --out weights/parser.int8.onnx   # int8 CPU models (see --help)

Occlusion = 1 - |V ∩ R| / |R|: R is the MediaPipe face-oval polygon, V the visible face
(skin and features). See README.md for the data contract and the method.
"""


def _quiet_native_logs() -> None:
    """MediaPipe/TFLite write start-up chatter straight to file descriptor 2, from their own threads.

    Keep the terminal for occparse's own messages: Python's ``sys.stderr`` moves to a copy of the
    real stderr, and descriptor 2 (used only by native code) goes to /dev/null. OCCPARSE_VERBOSE=1
    keeps everything.
    """
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ.get("OCCPARSE_VERBOSE"):
        return
    try:
        fd = sys.stderr.fileno()
        sys.stderr.flush()
        copy = os.dup(fd)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
        sys.stderr = os.fdopen(copy, "w", buffering=1, encoding=sys.stderr.encoding or "utf-8", errors="backslashreplace")
    except (AttributeError, OSError, ValueError):  # no real stderr (embedded, captured): leave it
        pass


def _fail(msg: str, code: int = 2) -> int:
    print(f"occparse: error: {msg}", file=sys.stderr)
    return code


def cmd_synth(a: argparse.Namespace) -> int:
    from .synth.engine import SynthConfig, Synthesizer
    from .synth.sources import DataNotFoundError
    from .synth.writer import WriteJob, preview, tasks_for, write_dataset

    if a.preset in ("bench", "lfw-val") and a.count is not None:
        return _fail(f"--count does not apply to --preset {a.preset} (its size is fixed)")
    if not a.out and not a.preview:
        return _fail("nothing to do: give --out DIR and/or --preview SHEET.png")
    split = {"train": "train", "holdout": "holdout"}.get(a.preset, "bench")
    if a.preset == "lfw-val":
        if not a.out:
            return _fail("--preset lfw-val needs --out DIR")
        from .synth.writer import write_lfw_val_truth

        try:
            synth = Synthesizer(a.data, "bench", SynthConfig(), ("lfw",))
        except DataNotFoundError as e:
            return _fail(str(e))
        truth = write_lfw_val_truth(synth, Path(a.out))
        _print_distribution(truth)
        print(f"images: --images-root {synth.faces.root / 'faces/lfw_parts/images'}")
        return 0
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
        ev = evaluate(read_predictions(a.pred, a.column), read_truth(a.truth), missing_policy=a.missing)
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
    return _train_regressor(a)


def _train_regressor(a: argparse.Namespace) -> int:
    from .train.regressor import RegressorTrainConfig, train_regressor

    if not a.pool:
        return _fail("train regressor needs --pool DIR [DIR ...] (folders written by occparse synth --preset train)")
    missing = [str(p) for p in a.pool if not (Path(p) / "truth.csv").exists()]
    if missing:
        return _fail(f"not a synth output folder (no truth.csv): {', '.join(missing)}")
    work = a.work if a.work != "runs/parser" else "runs/regressor"
    cfg = RegressorTrainConfig(
        pools=[str(p) for p in a.pool], kind=a.kind, out=str(a.out), work=work, epochs=a.epochs, batch=a.batch,
        lr=a.lr, input_size=a.input_size, weighting=a.weighting, balance_gender=a.balance_gender,
        init_from=a.init_from, pretrained=a.pretrained, threads=a.threads, seed=a.seed, max_minutes=a.max_minutes,
        max_train=a.max_train, resume=not a.restart, init_onnx=a.init_onnx,
    )
    train_regressor(cfg)
    return 0


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
    if a.init_onnx and a.init_from:
        return _fail("give --init-onnx (a shipped ONNX) or --init-from (a checkpoint), not both")
    cfg = ParserTrainConfig(
        pools=pools, out=str(a.out), work=str(a.work), data=a.data, bench=a.bench, epochs=a.epochs, batch=a.batch,
        lr=a.lr, width=a.width, input_size=a.input_size, threads=a.threads, seed=a.seed, max_minutes=a.max_minutes,
        resume=not a.restart, init_onnx=a.init_onnx, init_from=a.init_from,
    )
    try:
        train_parser(cfg)
    except DataNotFoundError as e:
        return _fail(str(e))
    return 0


def cmd_parse(a: argparse.Namespace) -> int:
    import cv2

    from .pipeline import Estimator, EstimatorOptions
    from .visualize import label_overlay
    from .weights import WeightsError

    try:
        app = Estimator(EstimatorOptions(parser=a.parser, parser_spec=a.parser_spec, precision=a.precision,
                                         parser_flip=a.flip_tta, max_faces=a.max_faces,
                                         detector_scores=False))
    except (WeightsError, FileNotFoundError, ValueError) as e:
        return _fail(str(e))
    out_dir = Path(a.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in a.images:
        res = app.analyze(path)
        if not res.result.ok:
            print(f"{path}: {res.result.status}: {res.result.message}", file=sys.stderr)
            failures += 1
            continue
        labels = res.label_map()
        stem = Path(path).stem
        cv2.imwrite(str(out_dir / f"{stem}_labels.png"), labels)
        overlay = label_overlay(res.image.rgb, labels, [f.face for f in res.faces])
        cv2.imwrite(str(out_dir / f"{stem}_overlay.png"), overlay[..., ::-1])
        print(f"{path}: {len(res.faces)} face(s) -> {out_dir / (stem + '_labels.png')}, {out_dir / (stem + '_overlay.png')}")
    return 1 if failures else 0


def _workers(requested: int, n_items: int) -> int:
    """--workers 0 (the default): one mesh process per core once the job is big enough to repay their start-up."""
    if requested > 0:
        return requested
    return (os.cpu_count() or 1) if n_items >= 100 else 1


def _estimator(a: argparse.Namespace, **kw):
    from .pipeline import Estimator, EstimatorOptions
    from .weights import WeightsError

    try:
        return Estimator(EstimatorOptions(parser=a.parser, parser_spec=a.parser_spec, precision=a.precision,
                                          parser_flip=a.flip_tta, **kw)), None
    except (WeightsError, FileNotFoundError, ValueError) as e:
        return None, _fail(str(e))


def _table(res, all_faces: bool) -> str:
    from .geometry import REGION_NAMES

    if not res.ok:
        return f"{res.path}: {res.status}: {res.message}"
    lines = [f"{res.path}: {len(res.faces)} face(s), {res.width}x{res.height}"]
    for i, f in enumerate(res.faces if all_faces else res.faces[:1]):
        conf = "n/a" if f.landmark_confidence is None else f"{f.landmark_confidence:.2f}"
        lines.append(
            f"  face {i + 1}: occluded {f.occlusion:.1%}  (geometric {f.geometric:.1%}"
            + (f", regressor {f.regressor:.1%}" if f.regressor is not None else "")
            + f")  hidden by hair {f.occluded_by.hair:.0%} / other {f.occluded_by.occluder:.0%}"
            + f"  box {tuple(round(v) for v in f.box)}  confidence {conf}{'  gray' if f.is_gray else ''}"
        )
        lines.append("    " + "  ".join(f"{n} {f.region(n):.0%}" for n in REGION_NAMES))
    return "\n".join(lines)



def _estimate_folder(a: argparse.Namespace) -> int:
    """Folder/batch mode: every image under the inputs, one row each, streamed to --out, resumable."""
    from tqdm import tqdm

    from .batch import BatchInputError, ResumableWriter, analyses
    from .geometry import REGION_NAMES

    paths: list[Path] = []
    for item in a.images:
        p = Path(item)
        if p.is_dir():
            paths += sorted(q for q in p.rglob("*") if q.is_file())
        else:
            paths.append(p)
    if not paths:
        return _fail("no files found in the given folder(s)")
    out = Path(a.out)
    if out.suffix.lower() not in (".csv", ".parquet"):
        return _fail("--out must end in .csv or .parquet")
    csv_out = out.with_suffix(".csv") if out.suffix.lower() == ".parquet" else out
    columns = ("filename", "status", "message", "n_faces", "occlusion", "geometric", "regressor", "uncertainty",
               *(f"region_{n}" for n in REGION_NAMES), "hidden_by_hair", "hidden_by_occluder",
               "x0", "y0", "x1", "y1", "is_gray")
    try:
        writer = ResumableWriter(csv_out, columns)
        done = writer.resume_check([str(p) for p in paths])
    except BatchInputError as e:
        return _fail(str(e))
    if done:
        print(f"resuming: {done} of {len(paths)} images already in {writer.partial}", file=sys.stderr)
    todo = paths[done:]
    workers = _workers(a.workers, len(todo))
    app, err = _estimator(a, max_faces=1 if not a.all_faces else a.max_faces, detector_scores=False,
                          assume_aligned=a.assume_aligned, spin=workers <= 1)
    if app is None:
        return err
    counts: dict[str, int] = {}
    bar = tqdm(total=len(paths), initial=done, desc="estimate", unit="img", smoothing=0.1)
    try:
        for p, an in zip(todo, analyses(app, todo, workers=workers, batch_size=a.batch), strict=True):
            res = an.result
            row = {k: "" for k in columns}
            row.update(filename=str(p), status=str(res.status), message=res.message, n_faces=str(len(res.faces)))
            if res.ok:
                f = res.faces[0]
                row.update(occlusion=f"{f.occlusion:.6f}", geometric=f"{f.geometric:.6f}",
                           regressor="" if f.regressor is None else f"{f.regressor:.6f}",
                           uncertainty="" if f.uncertainty is None else f"{f.uncertainty:.6f}",
                           hidden_by_hair=f"{f.occluded_by.hair:.4f}", hidden_by_occluder=f"{f.occluded_by.occluder:.4f}",
                           x0=f"{f.box[0]:.1f}", y0=f"{f.box[1]:.1f}", x1=f"{f.box[2]:.1f}", y1=f"{f.box[3]:.1f}",
                           is_gray=str(int(f.is_gray)))
                for r in f.regions:
                    row[f"region_{r.name}"] = "" if r.fraction != r.fraction else f"{r.fraction:.4f}"
            counts[row["status"]] = counts.get(row["status"], 0) + 1
            writer.write(row)
            bar.update()
    except KeyboardInterrupt:
        writer.close()
        return _fail(f"interrupted; {writer.partial} keeps the finished rows, rerun the same command to resume", 130)
    bar.close()
    final = writer.finish()
    if out.suffix.lower() == ".parquet":
        try:
            final = _csv_to_parquet(csv_out, out)
        except ImportError:
            return _fail(f"writing Parquet needs pyarrow (pip install pyarrow); the CSV is at {csv_out}")
    print(f"wrote {len(paths)} rows to {final}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def _csv_to_parquet(src: Path, dst: Path) -> Path:
    """Stream the finished CSV into Parquet in blocks (memory stays flat), then swap it in atomically."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    tmp = dst.with_name(dst.name + ".tmp")
    reader = pacsv.open_csv(src, convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
    with pq.ParquetWriter(tmp, reader.schema) as w:
        for batch in reader:
            w.write_batch(batch)
    os.replace(tmp, dst)
    src.unlink()
    return dst


def cmd_estimate(a: argparse.Namespace) -> int:
    import cv2

    from .visualize import draw_estimate

    if a.out or any(Path(p).is_dir() for p in a.images):
        if not a.out:
            return _fail("a folder input needs --out results.csv (or .parquet)")
        if a.visualize:
            return _fail("--visualize is for single images, not folder mode")
        return _estimate_folder(a)

    if a.visualize and a.visualize != "auto" and len(a.images) > 1:
        return _fail("--visualize PATH takes one image; with several, use --visualize alone (a PNG beside each input)")
    app, err = _estimator(a, max_faces=a.max_faces, assume_aligned=a.assume_aligned)
    if app is None:
        return err
    failures = 0
    for path in a.images:
        try:
            an = app.analyze(path)
        except Exception as e:  # keep a batch going; report what broke
            print(f"{path}: error: {type(e).__name__}: {e}", file=sys.stderr)
            failures += 1
            continue
        res = an.result
        if a.json:
            print(json.dumps(res.to_dict(all_faces=a.all_faces)))
        elif res.ok:
            print(_table(res, a.all_faces))
        if not res.ok:
            if not a.json:
                print(f"{path}: {res.status}: {res.message}", file=sys.stderr)
            failures += 1
            continue
        if a.visualize:
            out = Path(a.visualize) if a.visualize != "auto" else Path(path).with_name(Path(path).stem + "_occlusion.png")
            out.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(out), draw_estimate(an)[..., ::-1])
            print(f"picture: {out}", file=sys.stderr if a.json else sys.stdout)
    return 1 if failures else 0


def cmd_predict(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .batch import BatchInputError, ResumableWriter, analyses, read_input_csv

    try:
        rows = read_input_csv(a.csv, a.images_root)
        writer = ResumableWriter(a.out, PREDICT_COLUMNS)
        done = writer.resume_check([r.filename for r in rows])
    except BatchInputError as e:
        return _fail(str(e))
    if done:
        print(f"resuming: {done} of {len(rows)} rows already in {writer.partial}", file=sys.stderr)
    todo = rows[done:]
    workers = _workers(a.workers, len(todo))
    app, err = _estimator(a, max_faces=1, detector_scores=False, assume_aligned=a.assume_aligned, spin=workers <= 1)
    if app is None:
        return err
    counts: dict[str, int] = {}
    bar = tqdm(total=len(rows), initial=done, desc="predict", unit="img", smoothing=0.1)
    try:
        for r, an in zip(todo, analyses(app, [r.path for r in todo], workers=workers, batch_size=a.batch), strict=True):
            res = an.result
            row = {"filename": r.filename, "FaceOcclusion": "", "status": str(res.status), "geometric": "", "regressor": ""}
            if res.ok:
                f = res.faces[0]
                row.update(FaceOcclusion=f"{f.occlusion:.6f}", geometric=f"{f.geometric:.6f}",
                           regressor="" if f.regressor is None else f"{f.regressor:.6f}")
            if res.status == "error":
                print(f"{r.filename}: {res.message}", file=sys.stderr)
            counts[str(res.status)] = counts.get(str(res.status), 0) + 1
            writer.write(row)
            bar.update()
    except KeyboardInterrupt:
        writer.close()
        return _fail(f"interrupted; {writer.partial} keeps the finished rows, rerun the same command to resume", 130)
    bar.close()
    out = writer.finish()
    print(f"wrote {len(rows)} rows to {out}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return 0


def cmd_fit_stacker(a: argparse.Namespace) -> int:
    from .metrics import TruthFileError
    from .stacker_fit import run
    from .weights import WeightsError

    try:
        run(a.truth, a.images_root, a.out, folds=a.folds, seed=a.seed, precision=a.precision)
    except (TruthFileError, WeightsError, RuntimeError) as e:
        return _fail(str(e))
    print(f"stacker: {a.out}")
    return 0


#: --precision values (the same as occparse.weights.PRECISIONS, kept here so building the CLI stays import-light)
PRECISION_CHOICES = ("auto", "fp32", "int8")

#: predict's output: the challenge's two columns, the status, and the two components of the estimate
PREDICT_COLUMNS = ("filename", "FaceOcclusion", "status", "geometric", "regressor")

def _add_parser_args(p: argparse.ArgumentParser) -> None:
    """--parser/--parser-spec: a user's own parser model, for every command that parses faces."""
    p.add_argument("--parser", help="a parser ONNX file (default: the shipped weights/parser.onnx)")
    p.add_argument("--parser-spec", help="celebamask19 or a JSON spec (input_size, mean, std, class_map) for --parser")
    p.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                   help="shipped networks: int8 (about 2-3x faster on a CPU), fp32, or auto (default: int8 on CPU, "
                   "fp32 on CUDA)")
    p.add_argument("--flip-tta", action="store_true",
                   help="parser test-time augmentation: also parse the mirrored face and average (a little more "
                   "accurate, twice the parser time; the shipped stacker was fitted without it)")


ALIGNED_HELP = ("inputs are aligned face crops (like the challenge's 224x224 ones): when a heavy occluder defeats "
                "the mesh, assume the canonical face layout instead of reporting no_face (the message says so)")


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
  holdout --count samples on the training faces that the regressors never train on (5 of 100
          name-hash buckets): what `occparse fit-stacker` is fitted on.
  lfw-val only DIR/truth.csv for the 500 real LFW val photos as they are (GT from their skin labels
          inside R); predict on them with --images-root DATA/faces/lfw_parts/images.

examples:
  occparse synth --preset bench --out /tmp/bench
  occparse synth --preset bench --preview sheet.png          # 48 samples, R outlined, occluders red
  occparse synth --preset train --count 5000 --seed 1 --out /tmp/train --workers 2""",
    )
    s.add_argument("--preset", choices=["bench", "train", "holdout", "lfw-val"], default="train",
                   help="which faces and occluders (default train)")
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
        "errors per group (gender, colour/gray, occlusion bin, and base-face source and occluder kind when the truth "
        "has those columns).",
        epilog="""A prediction that is missing or not a number in [0, 1] is counted and reported, and by default
scored as the worst possible value (--missing worst); --missing zero scores it as 0, --missing skip
leaves it out of the error (still reported).

example:
  occparse evaluate --pred preds.csv --truth bench/truth.csv --json""",
    )
    e.add_argument("--pred", required=True, help="CSV with filename,FaceOcclusion")
    e.add_argument("--truth", required=True, help="CSV with filename,FaceOcclusion,gender (gender F/M or 0..1, 1 = male)")
    e.add_argument("--json", action="store_true", help="print JSON instead of a table")
    e.add_argument("--column", default="FaceOcclusion",
                   help="prediction column to score (predict also writes 'geometric' and 'regressor')")
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
    _add_parser_args(pa)
    pa.add_argument("--max-faces", type=int, default=4, help="faces per image (default 4)")
    pa.set_defaults(func=cmd_parse)

    es = sub.add_parser(
        "estimate",
        help="how much of each face is occluded, per region, with a picture",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="For each image: find the faces, parse them, and report the occluded fraction of the face "
        "region R (0..1), per-region fractions (forehead, eyes, nose, mouth, cheeks, chin), what hides the face "
        "(hair vs other occluders), the face box and a confidence.",
        epilog="""examples:
  occparse estimate examples/astronaut.png --visualize        # writes examples/astronaut_occlusion.png
  occparse estimate photo.jpg --visualize out.png --json
  occparse estimate group.jpg --all-faces
  occparse estimate photos/ --out results.csv --workers 2    # folder mode: a row per file, resumable

Exit status: 0 when every image gave a face, 1 when any failed (no face, unreadable, not an image, too small);
each failure is one line on stderr (with --json, a JSON object with its status on stdout).""",
    )
    es.add_argument("images", nargs="+", help="image files (JPEG, PNG, WebP, BMP, TIFF), or folders with --out")
    es.add_argument("--out", help="folder mode: write one row per image to this .csv or .parquet (resumable)")
    es.add_argument("--workers", type=int, default=0,
                    help="folder mode: processes for decoding and the mesh (default 0: one per core for 100+ files)")
    es.add_argument("--batch", type=int, default=64, help="folder mode: crops per network batch")
    es.add_argument("--visualize", nargs="?", const="auto", metavar="PATH",
                    help="write the picture: PATH, or NAME_occlusion.png beside the input when PATH is left out")
    es.add_argument("--json", action="store_true", help="one JSON object per image (schema in README)")
    es.add_argument("--all-faces", action="store_true", help="report every face, not just the largest")
    es.add_argument("--assume-aligned", action="store_true", help=ALIGNED_HELP)
    es.add_argument("--max-faces", type=int, default=4, help="faces to look for per image (default 4)")
    _add_parser_args(es)
    es.set_defaults(func=cmd_estimate)

    pr = sub.add_parser(
        "predict",
        help="score a challenge CSV: one row per input row",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read CSV rows (a 'filename' column, e.g. filename,FaceOcclusion,gender) and write "
        "filename,FaceOcclusion,status,geometric,regressor in the same order (the last two are the components "
        "of the estimate; `occparse evaluate --column geometric` scores one of them). A row that fails gets an empty FaceOcclusion and its "
        "status (no_face, missing, unreadable, not_an_image, too_small, error), never a silent zero.",
        epilog="""The output appears only when complete (written as OUT.partial, then renamed); after a crash or
Ctrl-C, rerunning the same command resumes where OUT.partial stops.

example:
  occparse predict --csv bench/truth.csv --images-root bench/images --out preds.csv
  occparse evaluate --pred preds.csv --truth bench/truth.csv""",
    )
    pr.add_argument("--csv", required=True, help="input CSV with a filename column")
    pr.add_argument("--images-root", required=True, help="folder the filenames are relative to")
    pr.add_argument("--out", required=True, help="output CSV")
    pr.add_argument("--assume-aligned", action="store_true", help=ALIGNED_HELP)
    pr.add_argument("--workers", type=int, default=0,
                    help="processes for decoding and the mesh (default 0: one per core for 100+ rows, else 1)")
    pr.add_argument("--batch", type=int, default=64, help="crops per network batch (default 64)")
    _add_parser_args(pr)
    pr.set_defaults(func=cmd_predict)

    fs = sub.add_parser(
        "fit-stacker",
        help="fuse geometry and regression into one estimate (scikit-learn)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compute the features of every face (cached beside the truth file, keyed by the models' "
        "checksums), report K-fold out-of-fold Score (folds grouped by the truth's `base` face column when "
        "present) for geometric-only, regressor-only and two stackers (a standardised ridge and a monotone "
        "HistGradientBoosting model), then fit the one with the better out-of-fold Score on all rows, with the "
        "challenge weights 1/30 + GT.",
        epilog="""Fit on faces the regressors never trained on, never on the benchmark split:
  occparse synth --preset holdout --count 8000 --seed 31 --out holdout/
  occparse fit-stacker --truth holdout/truth.csv --images-root holdout/images --out weights/stacker.pkl""",
    )
    fs.add_argument("--truth", required=True, help="truth CSV (filename,FaceOcclusion,gender)")
    fs.add_argument("--images-root", required=True, help="folder the filenames are relative to")
    fs.add_argument("--out", default="weights/stacker.pkl", help="stacker file (default weights/stacker.pkl)")
    fs.add_argument("--folds", type=int, default=5)
    fs.add_argument("--seed", type=int, default=0)
    fs.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                    help="networks whose outputs become the features; fit with the precision users will run (default auto)")
    fs.set_defaults(func=cmd_fit_stacker)

    t = sub.add_parser(
        "train",
        help="train occparse's models (needs the [train] extra)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a model on the CPU (or GPU) with checkpoints; rerunning the same command resumes.",
        epilog="""examples:
  occparse synth --preset train --sources lfw --count 8000 --seed 11 --out pools/lfw
  occparse synth --preset bench --out bench/
  occparse train parser --pool pools/lfw --bench bench/ --out weights/ --epochs 12 --max-minutes 60
  occparse train regressor --kind color --pool pools/lfw pools/utk --epochs 5 --input-size 112 --lr 1e-3 --batch 32
  occparse train regressor --kind gray --pool pools/lfw pools/utk --init-from runs/regressor/color/best.pt --epochs 2

Defaults differ per model: parser --epochs 12 --batch 16 --lr 2e-3 --input-size 128; give them explicitly for
the regressor (the examples above are the shipped recipe).
""",
    )
    t.add_argument("what", choices=["parser", "regressor"], help="which model")
    t.add_argument("--kind", choices=["color", "gray"], default="color", help="regressor: which of the two models")
    t.add_argument("--weighting", choices=["plain", "bins", "metric", "bins+metric"], default="bins",
                   help="regressor loss weights: inverse frequency over occlusion bins (default), the metric's 1/30+GT, ...")
    t.add_argument("--balance-gender", action="store_true", help="regressor: equal total weight for F and M")
    t.add_argument("--init-from", help="checkpoint whose weights start a new run (regressor: e.g. the colour model for the gray one; "
                   "parser: a previous stage's WORK/parser_last.pt, auxiliary heads included)")
    t.add_argument("--init-onnx", help="continue training from an occparse ONNX export, e.g. weights/parser.onnx "
                   "(the shipped weights survive where checkpoints do not; BatchNorm is then frozen)")
    t.add_argument("--pretrained", action="store_true", help="regressor: torchvision ImageNet weights (if you have them)")
    t.add_argument("--max-train", type=int, default=0, help="regressor: at most this many training samples")
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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["benchmark"]:  # its own argument parser (shared with benchmarks/bench_pipeline.py)
        from .benchmark import main as bench_main

        return bench_main(argv[1:])
    if argv[:1] == ["quantize"]:  # its own argument parser (a build step for the int8 models)
        from .quantize import main as quantize_main

        return quantize_main(argv[1:])
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
