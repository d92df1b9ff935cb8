"""The ``occparse`` command: thin wrappers over the package's API, one subcommand each."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from pathlib import Path

# the batch commands' output columns and rows (import-light); the old names stay importable from here
from .rows import FACE_EXTRA_COLUMNS, PREDICT_COLUMNS  # noqa: F401
from .rows import face_extra as _face_extra  # noqa: F401
from .strictjson import dumps as strict_dumps

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


def _verbose() -> bool:
    return os.environ.get("OCCPARSE_VERBOSE", "") not in ("", "0")


def _quiet_native_logs() -> None:
    """MediaPipe/TFLite write start-up chatter straight to file descriptor 2, from their own threads.

    Keep the terminal for occparse's own messages: Python's ``sys.stderr`` moves to a copy of the
    real stderr, and descriptor 2 (used only by native code) goes to /dev/null. OCCPARSE_VERBOSE=1
    (or --verbose) keeps everything.
    """
    if _verbose():
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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
    engine = a.engine or ("first" if a.preset == "bench" else "real")
    make_cfg = SynthConfig.first_engine if engine == "first" else SynthConfig.real
    cfg = make_cfg(none_rate=a.none_rate, gray_rate=a.gray_rate, size=a.size)
    sources = tuple(a.sources.split(","))
    if bad := set(sources) - {"lfw", "utkface"}:
        return _fail(f"unknown --sources {sorted(bad)}; use lfw, utkface or both")
    try:
        synth = Synthesizer(a.data, split, cfg, sources, limit=a.limit)
    except DataNotFoundError as e:
        return _fail(str(e))
    tasks = tasks_for(synth, a.preset, a.count or 10000)
    if a.preview and a.per_kind:
        from .synth.writer import preview_per_kind

        for path in preview_per_kind(synth, a.seed, Path(a.preview)):
            print(f"contact sheet: {path}")
    elif a.preview:
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

    notes: list[str] = []
    try:
        ev = evaluate(read_predictions(a.pred, a.column, notes), read_truth(a.truth), missing_policy=a.missing)
    except TruthFileError as e:
        return _fail(str(e))
    for n in notes:
        print(f"occparse: warning: {n}", file=sys.stderr)
    if ev.n_unknown:
        print(f"occparse: {'error' if a.strict else 'warning'}: {ev.n_unknown} prediction(s) for files not in the "
              f"truth, e.g. {', '.join(ev.unknown_examples[:5])}", file=sys.stderr)
    if a.json:
        print(strict_dumps(ev.to_dict(), indent=2))
    else:
        print(format_evaluation(ev))
    return 1 if (a.strict and (ev.n_missing or ev.n_invalid or ev.n_unknown)) else 0


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
    cfg = RegressorTrainConfig(
        pools=[str(p) for p in a.pool], kind=a.kind, out=str(a.out), work=a.work, epochs=a.epochs, batch=a.batch,
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
                synth = Synthesizer(a.data, "train", SynthConfig.real())
            except DataNotFoundError as e:
                return _fail(str(e))
            job = WriteJob(str(synth.faces.root), "train", a.seed, SynthConfig.real(), ("lfw", "utkface"), None, str(pool))
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
                                         detector_scores=False, weights=a.weights, providers=_providers(a)))
    except (WeightsError, FileNotFoundError, ValueError) as e:
        return _fail(str(e))
    out_dir = Path(a.out_dir)
    if err := _unwritable_folder(out_dir):
        return _fail(f"--out-dir {out_dir}: {err}")
    out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path, stem in zip(a.images, _unique_stems(a.images), strict=True):
        res = app.analyze(path)
        if not res.result.ok:
            print(f"{path}: {res.result.status}: {res.result.message}", file=sys.stderr)
            failures += 1
            continue
        labels = res.label_map()
        overlay = label_overlay(res.image.rgb, labels, [f.face for f in res.faces])
        outs = [out_dir / f"{stem}_labels.png", out_dir / f"{stem}_overlay.png"]
        for o in outs:
            if o.exists():  # a previous run's output: replaced, but never silently
                print(f"replacing {o}", file=sys.stderr)
        if not (cv2.imwrite(str(outs[0]), labels) and cv2.imwrite(str(outs[1]), overlay[..., ::-1])):
            print(f"{path}: error: could not write {outs[0]} / {outs[1]}", file=sys.stderr)
            failures += 1
            continue
        print(f"{path}: {len(res.faces)} face(s) -> {outs[0]}, {outs[1]}")
    return 1 if failures else 0


def _unique_stems(paths: list[str], by_folder: bool = False) -> list[str]:
    """A stem per input for its output files, never one for two inputs.

    ``a.jpg`` and ``a.png`` would both give ``a``: inputs whose stems collide keep their extension
    (``a.jpg``, ``a.png``), and a number is added when even the names collide (same name in two
    folders). Compared without case (macOS and Windows file systems ignore it). ``by_folder``: only
    inputs of the same folder compete (outputs written beside each input).
    """
    from collections import Counter

    def key(p: str, stem: str) -> tuple[str, str]:
        return (str(Path(p).resolve().parent) if by_folder else "", stem.lower())

    stems = [Path(p).stem for p in paths]
    counts = Counter(key(p, st) for p, st in zip(paths, stems, strict=True))
    out, seen = [], set()
    for p, st in zip(paths, stems, strict=True):
        cand = Path(p).name if counts[key(p, st)] > 1 else st
        base, n = cand, 1
        while key(p, cand) in seen:
            n += 1
            cand = f"{base}-{n}"
        seen.add(key(p, cand))
        out.append(cand)
    return out


def _unwritable_folder(folder: Path) -> str | None:
    """Why files cannot be written into ``folder`` (made if missing), or None when they can."""
    probe = folder
    while not probe.exists():  # the nearest existing folder decides whether the rest can be made
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        return f"{probe} is a file, not a folder"
    import tempfile

    try:  # really try: permissions, read-only file systems and root's privileges all decide
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        return f"folder {probe} is not writable ({e.strerror or e})"
    return None


def _picture_path_error(out: Path) -> str | None:
    """Why the picture cannot be written to ``out``, checked before any work, or None."""
    import cv2

    if out.is_dir():
        return f"{out} is a folder; give a file name such as {out / 'picture.png'}"
    if not cv2.haveImageWriter(str(out)):
        return f"cannot write a picture as {out.name!r}: use .png, .jpg, .webp, .bmp or .tiff"
    if err := _unwritable_folder(out.parent):
        return err
    if out.exists() and not os.access(out, os.W_OK):
        return f"{out} exists and is not writable"
    return None


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
                                          parser_flip=a.flip_tta, facial_hair=a.facial_hair, weights=a.weights,
                                          providers=_providers(a), **kw)), None
    except (WeightsError, FileNotFoundError, ValueError) as e:
        return None, _fail(str(e))


def _pct(v: float | None, fmt: str = ".1%") -> str:
    """A fraction as a percentage; a region outside the picture has no value (NaN) and says so."""
    if v is None or not math.isfinite(v):
        return "n/a (outside frame)"
    return format(v, fmt)


def _table(res, all_faces: bool) -> str:
    from .geometry import REGION_NAMES

    if not res.ok:
        return f"{res.path}: {res.status}: {res.message}"
    lines = [f"{res.path}: {len(res.faces)} face(s), {res.width}x{res.height}"]
    for i, f in enumerate(res.faces if all_faces else res.faces[:1]):
        conf = "n/a" if f.landmark_confidence is None else f"{f.landmark_confidence:.2f}"
        lines.append(
            f"  face {i + 1}: occluded {_pct(f.occlusion)}  (geometric {_pct(f.geometric)}"
            + (f", regressor {_pct(f.regressor)}" if f.regressor is not None else "")
            + f")  hidden by hair {f.occluded_by.hair:.0%} / facial hair {f.occluded_by.facial_hair:.0%}"
            + f" / occluder {f.occluded_by.occluder:.0%} / background {f.occluded_by.background:.0%}"
            + f"  box {tuple(round(v) for v in f.box)}  confidence {conf}{'  gray' if f.is_gray else ''}"
        )
        lines.append("    " + "  ".join(f"{n} {_pct(f.region(n), '.0%')}" for n in REGION_NAMES))
        lines += _face_facts(f)
    return "\n".join(lines)


def _face_facts(f) -> list[str]:
    """Table lines for subject, pose, out-of-frame share and warnings."""
    p = f.pose
    pose = "" if p is None else "  pose " + ", ".join(
        f"{k} {v:.0f}" for k, v in (("yaw", p.yaw), ("pitch", p.pitch), ("roll", p.roll)) if v is not None)
    facts = [f"    {'subject' if f.subject else 'other face'}{pose}  out of frame {f.out_of_frame:.0%}"]
    return facts + [f"    warning: {w}" for w in f.warnings]



def _estimate_folder(a: argparse.Namespace) -> int:
    """Folder/batch mode: every image under the inputs, one row each, streamed to --out, resumable."""
    from tqdm import tqdm

    from .batch import BatchInputError, ResumableWriter, analyses
    from .rows import FOLDER_COLUMNS, folder_row

    if a.engine == "ray":
        return _estimate_folder_ray(a)
    paths: list[Path] = []
    for item in a.images:
        p = Path(item)
        if p.is_dir():
            paths += sorted(q for q in p.rglob("*") if q.is_file())
        else:
            paths.append(p)
    out = Path(a.out)
    # the output's own files (OUT, OUT.partial, OUT.tmp) are never inputs, even when OUT lies in an input folder
    own = {out.resolve(), out.with_name(out.name + ".partial").resolve(), out.with_name(out.name + ".tmp").resolve()}
    paths = [q for q in paths if q.resolve() not in own]
    if not paths:
        return _fail("no files found in the given folder(s)")
    parquet = out.suffix.lower() == ".parquet"
    # refuse before computing anything: a writer that is missing at the end would lose the run
    if out.suffix.lower() not in (".csv", ".parquet"):
        return _fail(f"--out {out}: unknown file type {out.suffix or '(none)'!r}; use .csv or .parquet")
    if parquet and importlib.util.find_spec("pyarrow") is None:
        return _fail("writing .parquet needs pyarrow (pip install pyarrow), or use --out with .csv")
    if out.is_dir():
        return _fail(f"--out {out} is a folder; give a file name ending in .csv or .parquet")
    if err := _unwritable_folder(out.parent):
        return _fail(f"--out {out}: {err}")
    columns = FOLDER_COLUMNS
    try:
        # rows stream to OUT.partial (CSV text, what resuming reads); only OUT itself is ever replaced
        writer = ResumableWriter(out, columns)
        done = writer.resume_check([str(p) for p in paths])
    except BatchInputError as e:
        return _fail(str(e))
    if done:
        print(f"resuming: {done} of {len(paths)} images already in {writer.partial}", file=sys.stderr)
    todo = paths[done:]
    workers = _workers(a.workers, len(todo))
    app, err = _estimator(a, max_faces=1 if not a.all_faces else a.max_faces, detector_scores=False,
                          assume_aligned=a.assume_aligned, spin=workers <= 1, exhaustive=a.all_faces)
    if app is None:
        return err
    counts: dict[str, int] = {}
    bar = tqdm(total=len(paths), initial=done, desc="estimate", unit="img", smoothing=0.1)
    try:
        for p, an in zip(todo, analyses(app, todo, workers=workers, batch_size=a.batch), strict=True):
            res = an.result
            row = folder_row(str(p), res)
            counts[row["status"]] = counts.get(row["status"], 0) + 1
            writer.write(row)
            bar.update()
    except KeyboardInterrupt:
        writer.close()
        return _fail(f"interrupted; {writer.partial} keeps the finished rows, rerun the same command to resume", 130)
    bar.close()
    if parquet:
        writer.close()
        try:
            final = _csv_to_parquet(writer.partial, out, columns)
        except (ImportError, OSError) as e:
            return _fail(f"could not write {out} ({e}); the rows are kept in {writer.partial}")
    else:
        final = writer.finish()
    # rows of an earlier, resumed run count too: the exit status describes the whole output
    failed = sum(v for k, v in counts.items() if k != "ok") + sum(r.get("status") != "ok" for r in writer.done)
    print(f"wrote {len(paths)} rows to {final}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if failed:
        print(f"{failed} of {len(paths)} images failed (see the status column)", file=sys.stderr)
    return 1 if failed else 0


def _csv_to_parquet(src: Path, dst: Path, columns: tuple[str, ...]) -> Path:
    """Stream the finished rows (CSV text) into Parquet in blocks (memory stays flat), then swap it in atomically.

    Column types are fixed, not inferred per block: a first block of failed rows (empty numbers)
    must not decide the type of the rest."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from .rows import column_type

    kinds = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
    types = {c: kinds[column_type(c)] for c in columns}  # one definition for both engines (occparse/rows.py)
    tmp = dst.with_name(dst.name + ".tmp")
    reader = pacsv.open_csv(src, convert_options=pacsv.ConvertOptions(
        column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False))
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
    pictures: list[Path | None] = [None] * len(a.images)
    if a.visualize == "auto":
        pictures = [Path(p).with_name(st + "_occlusion.png") for p, st in
                    zip(a.images, _unique_stems(a.images, by_folder=True), strict=True)]
    elif a.visualize:
        pictures = [Path(a.visualize)]
    for pic in pictures:  # before any work: a bad path must not cost the whole run
        if pic is not None and (err := _picture_path_error(pic)):
            return _fail(f"--visualize: {err}")
    app, err = _estimator(a, max_faces=a.max_faces if a.all_faces else None, assume_aligned=a.assume_aligned,
                          exhaustive=a.all_faces)
    if app is None:
        return err
    failures = 0
    for path, pic in zip(a.images, pictures, strict=True):
        try:
            an = app.analyze(path)
        except Exception as e:  # keep a batch going; report what broke
            print(f"{path}: error: {type(e).__name__}: {e}", file=sys.stderr)
            failures += 1
            continue
        res = an.result
        if a.json:
            print(strict_dumps(res.to_dict(all_faces=a.all_faces)))
        elif res.ok:
            print(_table(res, a.all_faces))
        if not res.ok:
            if not a.json:
                print(f"{path}: {res.status}: {res.message}", file=sys.stderr)
            failures += 1
            continue
        if pic is not None:
            pic.parent.mkdir(parents=True, exist_ok=True)
            try:
                written = cv2.imwrite(str(pic), draw_estimate(an, None if a.all_faces else 1)[..., ::-1])
            except cv2.error as e:
                written = False
                print(f"{path}: error: {str(e).strip().splitlines()[-1]}", file=sys.stderr)
            if not written:
                print(f"{path}: error: could not write the picture {pic}", file=sys.stderr)
                failures += 1
                continue
            print(f"picture: {pic}", file=sys.stderr if a.json else sys.stdout)
    return 1 if failures else 0


def cmd_predict(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .batch import BatchInputError, ResumableWriter, analyses, read_input_csv
    from .rows import predict_row

    if a.engine == "ray":
        return _predict_ray(a)
    if not Path(a.images_root).is_dir():
        return _fail(f"--images-root {a.images_root}: no such folder")
    out = Path(a.out)
    if out.is_dir():
        return _fail(f"--out {out} is a folder; give a file name such as {out / 'preds.csv'}")
    if err := _unwritable_folder(out.parent):
        return _fail(f"--out {out}: {err}")
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
            row = predict_row(r.filename, res)
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
    failed = sum(v for k, v in counts.items() if k != "ok") + sum(r.get("status") != "ok" for r in writer.done)
    if failed:
        print(f"{failed} of {len(rows)} rows failed (empty FaceOcclusion; see the status column)", file=sys.stderr)
    return 1 if failed else 0


def _providers(a: argparse.Namespace) -> tuple[str, ...] | None:
    """--device as ONNX Runtime providers (None for auto: the library's own choice, CUDA when present)."""
    device = getattr(a, "device", "auto")
    if device == "auto":
        return None
    from .providers import select_providers

    return tuple(select_providers(device))  # DeviceError (exit 2) when cuda is asked for and absent


def _ray_options(a: argparse.Namespace, **kw):
    """The EstimatorOptions the Ray actors get (as the local engine's), checked here first: a missing model
    is one line now, not a traceback from every actor."""
    from .pipeline import EstimatorOptions

    app, err = _estimator(a, **kw)
    if app is None:
        return None, err
    del app
    return EstimatorOptions(parser=a.parser, parser_spec=a.parser_spec, precision=a.precision, parser_flip=a.flip_tta,
                            facial_hair=a.facial_hair, weights=a.weights, **kw), None


def _run_ray(a: argparse.Namespace, names: list[str], sources: list[str], kind: str, options) -> int:
    from .distributed import require_ray, run

    require_ray()  # before any work: one line when Ray is not installed
    device = "cuda" if _providers(a) and _providers(a)[0] == "CUDAExecutionProvider" else "cpu"
    if a.shard_rows < 1:
        return _fail("--shard-rows must be at least 1")
    r = run(names, sources, a.out, options, kind, address=a.address, actors=a.actors, device=device, batch=a.batch,
            shard_size=a.shard_rows)
    print(f"wrote {r.rows} rows to {r.out}: ok {r.rows - r.failed}, failed {r.failed}")
    if r.actors:
        load = f"{min(r.actor_load_s):.1f}-{max(r.actor_load_s):.1f} s" if r.actor_load_s else "n/a"
        mem = f"{min(r.actor_rss_mb):.0f}-{max(r.actor_rss_mb):.0f} MB" if r.actor_rss_mb else "n/a"
        print(f"ray: start-up {r.startup_s:.1f} s, {r.actors} actor(s), model load {load} per actor, peak memory "
              f"{mem} per actor, {r.wall_s:.1f} s in all", file=sys.stderr)
    if r.failed:
        print(f"{r.failed} of {r.rows} rows failed (see the status column)", file=sys.stderr)
    return 1 if r.failed else 0


def _predict_ray(a: argparse.Namespace) -> int:
    """predict --engine ray: the CSV/Parquet and the images may be local or on any pyarrow file system."""
    from .distributed import is_uri, join, read_filenames

    if not is_uri(a.images_root) and not Path(a.images_root).is_dir():
        return _fail(f"--images-root {a.images_root}: no such folder")
    if not is_uri(a.out) and Path(a.out).is_dir():
        return _fail(f"--out {a.out} is a folder; give a file name such as {Path(a.out) / 'preds.parquet'}")
    names = read_filenames(a.csv)
    options, err = _ray_options(a, max_faces=1, detector_scores=False, assume_aligned=a.assume_aligned)
    if options is None:
        return err
    return _run_ray(a, names, [join(a.images_root, n) for n in names], "predict", options)


def _estimate_folder_ray(a: argparse.Namespace) -> int:
    """Folder mode with --engine ray: files under local folders or URIs (s3://bucket/prefix/)."""
    from .distributed import PARTS_SUFFIX, is_uri, list_folder

    names: list[str] = []
    for item in a.images:
        names += list_folder(item) if is_uri(item) or Path(item).is_dir() else [item]
    if not is_uri(a.out):  # the output's own files are never inputs
        out = Path(a.out).resolve()
        parts = Path(str(out) + PARTS_SUFFIX)
        names = [n for n in names if is_uri(n) or (Path(n).resolve() not in (out, Path(str(out) + ".tmp"))
                                                   and parts not in Path(n).resolve().parents)]
    if not names:
        return _fail("no files found in the given folder(s)")
    options, err = _ray_options(a, max_faces=1 if not a.all_faces else a.max_faces, detector_scores=False,
                                assume_aligned=a.assume_aligned, exhaustive=a.all_faces)
    if options is None:
        return err
    return _run_ray(a, names, names, "folder", options)


def cmd_fit_stacker(a: argparse.Namespace) -> int:
    from .metrics import TruthFileError
    from .stacker_fit import run
    from .weights import WeightsError

    if a.replace_shipped and a.out:
        return _fail("give --out PATH or --replace-shipped, not both")
    if not a.out and not a.replace_shipped:
        return _fail("fit-stacker needs --out PATH (a new stacker file), or --replace-shipped to overwrite the installed "
                     "one")
    if a.replace_shipped:
        from .weights import shipped

        a.out = str(shipped("stacker", a.weights, verify=False).path)
    elif Path(a.out).resolve() == _shipped_stacker_path(a.weights):
        return _fail(f"{a.out} is the shipped stacker; say --replace-shipped to overwrite it")
    try:
        run(a.truth, a.images_root, a.out, folds=a.folds, seed=a.seed, precision=a.precision, weights=a.weights)
    except (TruthFileError, WeightsError, RuntimeError) as e:
        return _fail(str(e))
    print(f"stacker: {a.out}")
    if a.replace_shipped:
        print("pin it: occparse models pin stacker stacker.json stacker.md", file=sys.stderr)
    return 0


def _shipped_stacker_path(weights: str | None) -> Path | None:
    from .weights import WeightsError, manifest

    try:
        e = manifest(weights).get("stacker")
    except WeightsError:
        return None
    return e.path.resolve() if e else None


#: --precision values (the same as occparse.weights.PRECISIONS, kept here so building the CLI stays import-light)
PRECISION_CHOICES = ("auto", "fp32", "int8")

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
    p.add_argument("--facial-hair", choices=("occluding", "visible"), default="occluding",
                   help="what beards and moustaches count as: occluding (default, as the data definition: hair "
                   "hides skin) or visible face. Moves the geometric estimate, the per-region fractions and the "
                   "final estimate; the regressor estimate does not follow it")
    p.add_argument("--weights", metavar="DIR",
                   help="a weights folder with its manifest.json (default $OCCPARSE_WEIGHTS, else the installed models; "
                   "`occparse models path` shows which)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where the networks run: cuda (ONNX Runtime's CUDA provider; an error when absent), cpu, or "
                   "auto (default: cuda when available, else cpu). The face mesh always runs on the CPU")


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    """--engine/--address/--actors: the batch commands on a Ray cluster (README, Running on a cluster)."""
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default: processes on this machine) or ray (Ray Data actors, this machine or a "
                   "cluster; needs occparse[ray]; writes Parquet, resumable by shard)")
    p.add_argument("--address", help="--engine ray: the Ray cluster to join (default $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--shard-rows", type=int, default=256,
                   help="--engine ray: rows per shard, the unit of work and of resuming (default 256; a rerun must "
                   "use the same value)")
    p.add_argument("--actors", type=int, default=0,
                   help="--engine ray: scoring actors (default 0: one per CPU of the cluster, one per GPU with "
                   "--device cuda)")


ALIGNED_HELP = ("inputs are aligned face crops (like the challenge's 224x224 ones): when a heavy occluder defeats "
                "the mesh, assume the canonical face layout instead of reporting no_face (the message says so)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``occparse`` parser; with ``command``, the tools other than that one are registered by name only."""
    p = argparse.ArgumentParser(
        prog="occparse",
        description="Measure how much of a face is occluded (0..1), with a picture that shows why.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--verbose", action="store_true",
                   help="keep MediaPipe/TensorFlow Lite log lines on stderr (also: OCCPARSE_VERBOSE=1)")
    p.add_argument("--version", action="version", version=f"occparse {_version()}")
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
    s.add_argument("--per-kind", action="store_true",
                   help="with --preview: one sheet per occluder kind and look-alike (SHEET_KIND.png), "
                        "and SHEET_facial_hair_rule.png showing how LFW hair becomes facial hair")
    s.add_argument("--engine", choices=["first", "real"],
                   help="occlusion distribution: 'first' (the benchmark's, default for --preset bench) or "
                        "'real' (adds beards, hands over mouth/eyes, hair of every colour, and look-alikes "
                        "such as face paint and shadows that stay face; default for train/holdout)")
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
    e.add_argument("--strict", action="store_true",
                   help="exit 1 when any prediction is missing or invalid, or names a file not in the truth")
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
    pa.add_argument("--max-faces", type=int, default=None, help="most faces per image, subject first (default: all found)")
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
    _add_engine_args(es)
    es.add_argument("--visualize", nargs="?", const="auto", metavar="PATH",
                    help="write the picture: PATH, or NAME_occlusion.png beside the input when PATH is left out")
    es.add_argument("--json", action="store_true", help="one JSON object per image (schema in README)")
    es.add_argument("--all-faces", action="store_true",
                    help="search for and report every face (default: only the subject, the face nearest the image centre)")
    es.add_argument("--assume-aligned", action="store_true", help=ALIGNED_HELP)
    es.add_argument("--max-faces", type=int, default=None,
                    help="with --all-faces: report at most N faces, subject first (default: every face found)")
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
Ctrl-C, rerunning the same command resumes where OUT.partial stops. Exit status: 0 when every row is ok,
1 when any row failed (the output is still complete), 2 for unusable arguments (checked before any work).

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
    _add_engine_args(pr)
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
  occparse fit-stacker --truth holdout/truth.csv --images-root holdout/images --out stacker_new.json
  occparse fit-stacker --truth holdout/truth.csv --images-root holdout/images --replace-shipped""",
    )
    fs.add_argument("--truth", required=True, help="truth CSV (filename,FaceOcclusion,gender)")
    fs.add_argument("--images-root", required=True, help="folder the filenames are relative to")
    fs.add_argument("--out", help="where the new stacker file goes (required unless --replace-shipped); never the shipped "
                    "one")
    fs.add_argument("--replace-shipped", action="store_true",
                    help="overwrite the shipped stacker (then pin it: occparse models pin stacker stacker.json stacker.md)")
    fs.add_argument("--weights", metavar="DIR", help="weights folder (default $OCCPARSE_WEIGHTS, else the installed one)")
    fs.add_argument("--folds", type=int, default=5)
    fs.add_argument("--seed", type=int, default=0)
    fs.add_argument("--precision", choices=PRECISION_CHOICES, default="auto",
                    help="networks whose outputs become the features; fit with the precision users will run (default auto)")
    fs.set_defaults(func=cmd_fit_stacker)

    t = sub.add_parser(
        "train",
        help="train occparse's models (needs the [train] extra)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a model on the CPU (or GPU) with checkpoints; rerunning the same command resumes. "
        "`occparse train parser --help` and `occparse train regressor --help` list each one's options and defaults.",
        epilog="""examples:
  occparse synth --preset train --sources lfw --count 8000 --seed 11 --out pools/lfw
  occparse synth --preset bench --out bench/
  occparse train parser --pool pools/lfw --bench bench/ --out weights/ --epochs 12 --max-minutes 60
  occparse train regressor --kind color --pool pools/lfw pools/utk
  occparse train regressor --kind gray --pool pools/lfw pools/utk --init-from runs/regressor/color/best.pt --epochs 2
""",
    )
    tsub = t.add_subparsers(dest="what", metavar="MODEL", required=True)
    # Defaults are those of ParserTrainConfig / RegressorTrainConfig (occparse/train/), repeated here because
    # building the CLI must not import torch; tests/test_package.py checks they agree.
    tp = tsub.add_parser("parser", help="the BiSeNet face parser", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    tp.add_argument("--pool", nargs="+", type=Path, help="synth output folder(s) to train on (default: make one in WORK/pool)")
    tp.add_argument("--pool-size", type=int, default=12000, help="samples in the default pool")
    tp.add_argument("--bench", help="benchmark split folder: its occluder IoU is reported each epoch")
    tp.add_argument("--data", help="data folder (default $OCCPARSE_DATA or ../shared/data)")
    tp.add_argument("--work", default="runs/parser", help="checkpoints and history")
    tp.add_argument("--epochs", type=int, default=12, help="passes over the pool")
    tp.add_argument("--batch", type=int, default=16, help="crops per step")
    tp.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    tp.add_argument("--width", type=float, default=0.5, help="channel width multiplier of the ResNet-18 trunk")
    tp.add_argument("--input-size", type=int, default=128, help="network input side in pixels")
    tp.add_argument("--init-from", help="a previous stage's WORK/parser_last.pt (auxiliary heads included); fresh schedule")
    tr = tsub.add_parser("regressor", help="a ResNet-18 occlusion regressor (colour or gray)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    tr.add_argument("--pool", nargs="+", type=Path, required=True, help="synth output folder(s) to train on")
    tr.add_argument("--kind", choices=["color", "gray"], default="color", help="which of the two models")
    tr.add_argument("--work", default="runs/regressor", help="checkpoints and history")
    tr.add_argument("--epochs", type=int, default=5, help="passes over the pool")
    tr.add_argument("--batch", type=int, default=32, help="crops per step")
    tr.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    tr.add_argument("--input-size", type=int, default=112, help="network input side in pixels")
    tr.add_argument("--weighting", choices=["plain", "bins", "metric", "bins+metric"], default="bins",
                    help="loss weights: inverse frequency over occlusion bins, the metric's 1/30+GT, ...")
    tr.add_argument("--balance-gender", action="store_true", help="equal total weight for F and M")
    tr.add_argument("--init-from", help="checkpoint whose weights start the run (e.g. the colour model for the gray one)")
    tr.add_argument("--pretrained", action="store_true", help="torchvision ImageNet weights (if you have them)")
    tr.add_argument("--max-train", type=int, default=0, help="at most this many training samples (0: all)")
    for q in (tp, tr):
        q.add_argument("--out", type=Path, default=Path("weights"), help="where the ONNX goes")
        q.add_argument("--init-onnx", help="continue training from an occparse ONNX export, e.g. weights/parser.onnx "
                       "(the shipped weights survive where checkpoints do not; BatchNorm is then frozen)")
        q.add_argument("--threads", type=int, default=2, help="torch CPU threads")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--max-minutes", type=float, default=0.0, help="stop after the epoch that passes this many minutes")
        q.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
        q.set_defaults(func=cmd_train)

    _add_tool(sub, "benchmark", "benchmark", "per-stage latency and end-to-end images/s, with the machine's facts",
              load=command in (None, "benchmark"))
    _add_tool(sub, "quantize", "quantize", "int8 copies of the shipped networks for the CPU (a build step)",
              load=command in (None, "quantize"))
    _add_tool(sub, "parser-eval", "parser_eval", "the parser's IoU on LFW val and a benchmark split",
              load=command in (None, "parser-eval"))
    _add_tool(sub, "error-budget", "error_budget", "the geometric error with the parser's labels vs the true labels",
              load=command in (None, "error-budget"))
    _add_tool(sub, "models", "weights", "list, verify (sha256), locate or pin the models",
              load=command in (None, "models"))
    return p


def _add_tool(sub, name: str, module: str, help: str, load: bool = True) -> None:
    """Register a command whose options and code live in ``occparse/<module>.py`` (``add_arguments`` + ``run``).

    Building its options imports that module (numpy, OpenCV): with ``load=False`` (another command was
    asked for) only the name and help line are registered, so ``occparse --help`` stays fast."""
    import importlib

    if not load:
        sub.add_parser(name, help=help)
        return
    mod = importlib.import_module(f".{module}", __package__)
    q = sub.add_parser(name, help=help, description=mod.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=getattr(mod, "EPILOG", None))
    mod.add_arguments(q)
    q.set_defaults(func=mod.run)


def _version() -> str:
    from . import __version__

    return __version__


def main(argv: list[str] | None = None) -> int:
    """The ``occparse`` command. Any :class:`occparse.errors.OccparseError` becomes one line on stderr, exit 2."""
    from .errors import OccparseError

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--verbose" in argv:  # accepted anywhere on the line; the environment carries it to worker processes
        argv = [x for x in argv if x != "--verbose"]
        os.environ["OCCPARSE_VERBOSE"] = "1"
    _quiet_native_logs()
    parser = build_parser(argv[0] if argv and not argv[0].startswith("-") else "")
    a = parser.parse_args(argv)
    if not getattr(a, "func", None):
        parser.print_help()
        return 2
    try:
        return int(a.func(a) or 0)
    except OccparseError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
