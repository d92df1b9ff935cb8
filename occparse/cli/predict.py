"""``occparse predict``: score a challenge CSV, one output row per input row (resumable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..runtime.rows import PREDICT_COLUMNS
from .common import (
    ALIGNED_HELP,
    add_engine_args,
    add_parser_args,
    batch_args_error,
    default_workers,
    estimator,
    fail,
    foreign_out_error,
    interrupted,
    interrupted_message,
    output_clash,
    ray_options,
    rerun_status,
    resumable_outputs,
    resume_or_start_over,
    run_ray,
    run_settings,
    say_new_folder,
    summary_line,
    unwritable_folder,
    warn_ray_only_options,
)


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``occparse predict`` (help, description, options) on the subcommands ``sub``."""
    p = sub.add_parser(
        "predict",
        help="score a challenge CSV: one row per input row",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Read CSV rows (a 'filename' column, e.g. filename,FaceOcclusion,gender) and write "
        "filename,FaceOcclusion,status,geometric,regressor in the same order (the last two are the components "
        "of the estimate; `occparse evaluate --column geometric` scores one of them). A row that fails gets an empty FaceOcclusion and its "
        "status (no_face, missing, unreadable, empty_file, not_an_image, corrupt, too_small, too_large, error), never a silent zero.",
        epilog="""The output appears only when complete (written as OUT.partial, then renamed); after a crash or
Ctrl-C, rerunning the same command resumes where OUT.partial stops (a rerun with options that change the
numbers is refused: they are kept in OUT.partial.json). Exit status: 0 when every row is ok,
1 when any row failed (the output is still complete), 2 for unusable arguments (checked before any work).

example:
  occparse predict --csv bench/truth.csv --images-root bench/images --out preds.csv
  occparse evaluate --pred preds.csv --truth bench/truth.csv""",
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse predict``'s options."""
    p.add_argument("--csv", required=True, help="input CSV with a filename column")
    p.add_argument("--images-root", required=True, help="folder the filenames are relative to")
    p.add_argument("--out", required=True, help="output CSV")
    p.add_argument("--assume-aligned", action="store_true", help=ALIGNED_HELP)
    p.add_argument("--workers", type=int, default=0,
                   help="processes for decoding and the mesh (default 0: one per core for 100+ rows, else 1; at most "
                        "4 per core and one per row)")
    p.add_argument("--batch", type=int, default=64,
                   help="crops per network batch (default 64; a part-filled batch runs after 2 s)")
    p.add_argument("--overwrite", action="store_true",
                   help="compute OUT again even when it is already complete for this CSV and these settings "
                        "(default: say so and exit with its status); with the local engine, an interrupted OUT.partial written with other settings "
                        "or inputs is discarded instead of refused")
    add_engine_args(p)
    add_parser_args(p)


def run(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..runtime.batch import BatchInputError, analyses, read_input_csv
    from ..runtime.resumable import ResumableWriter, inputs_digest
    from ..runtime.rows import predict_row

    if err := batch_args_error(a):
        return fail(err)
    if a.engine == "ray":
        return _predict_ray(a)
    warn_ray_only_options(a)
    if not Path(a.images_root).is_dir():
        return fail(f"--images-root {a.images_root}: no such folder")
    out = Path(a.out)
    if out.is_dir():
        return fail(f"--out {out} is a folder; give a file name such as {out / 'preds.csv'}")
    if err := unwritable_folder(out.parent):
        return fail(f"--out {out}: {err}")
    if clash := output_clash(resumable_outputs(out), [a.csv]):  # before reading anything: never write over the input
        return fail(f"--out {out} would write {clash[0]}, which is the input CSV {clash[1]}; give --out another name")
    if out.suffix.lower() != ".csv":
        return fail(f"--out {out}: predict writes CSV; give a file name ending in .csv")
    say_new_folder(out.parent, "--out")
    try:
        rows = read_input_csv(a.csv, a.images_root)
        if (clash := _image_clash(out, Path(a.images_root), rows)):
            return fail(f"--out {out} would write {clash[0]}, which is the input image {clash[1]}; give --out another "
                        "name")
        writer = ResumableWriter(a.out, PREDICT_COLUMNS, settings=_settings(a),
                                 inputs_digest=inputs_digest([r.path for r in rows]))
        if (rc := rerun_status(writer, [r.filename for r in rows], "this CSV", a.overwrite)) is not None:
            return rc
        done = resume_or_start_over(writer, [r.filename for r in rows], a.overwrite)
    except BatchInputError as e:
        return fail(str(e))
    if writer.note:
        print(f"occparse: warning: {writer.note}", file=sys.stderr)
    if done:
        print(f"resuming: {done} of {len(rows)} rows already in {writer.partial}", file=sys.stderr)
    todo = rows[done:]
    workers = default_workers(a.workers, len(todo))
    app, err = estimator(a, max_faces=1, detector_scores=False, assume_aligned=a.assume_aligned, spin=workers <= 1)
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
        bar.close()  # the message starts on its own line, not after the progress bar
        writer.close()
        return interrupted(interrupted_message(writer))
    bar.close()
    out = writer.finish()
    print(summary_line(out, writer.done, counts))
    failed = sum(v for k, v in counts.items() if k != "ok") + sum(r.get("status") != "ok" for r in writer.done)
    if failed:
        print(f"{failed} of {len(rows)} rows failed (empty FaceOcclusion; see the status column)", file=sys.stderr)
    return 1 if failed else 0


def _image_clash(out: Path, root: Path, rows) -> tuple[Path, Path] | None:
    """An output file that is one of the images to score (only possible when OUT lies under the images root;
    otherwise no image is stat'ed)."""
    try:
        inside = root.resolve() in out.resolve().parents
    except (OSError, RuntimeError):
        inside = True
    return output_clash(resumable_outputs(out), [r.path for r in rows]) if inside else None


def _predict_ray(a: argparse.Namespace) -> int:
    """predict --engine ray: the CSV/Parquet and the images may be local or on any pyarrow file system."""
    from ..runtime.shard_files import is_uri, join, read_filenames

    if not is_uri(a.images_root) and not Path(a.images_root).is_dir():
        return fail(f"--images-root {a.images_root}: no such folder")
    if not is_uri(a.out) and Path(a.out).is_dir():
        return fail(f"--out {a.out} is a folder; give a file name such as {Path(a.out) / 'preds.parquet'}")
    if not is_uri(a.out) and not is_uri(a.csv) and (clash := output_clash([a.out, a.out + ".tmp"], [a.csv])):
        return fail(f"--out {a.out} would write {clash[0]}, which is the input CSV {clash[1]}; give --out another name")
    if err := foreign_out_error(a.out, a.overwrite):
        return fail(err)
    names = read_filenames(a.csv)
    options, err = ray_options(a, max_faces=1, detector_scores=False, assume_aligned=a.assume_aligned)
    if options is None:
        return err
    return run_ray(a, names, [join(a.images_root, n) for n in names], "predict", options, _settings(a))


def _settings(a: argparse.Namespace) -> dict:
    """predict's resume record: the common settings, --assume-aligned and where the images are read from (the
    same file names under another --images-root are other images)."""
    from ..runtime.shard_files import is_uri

    root = a.images_root if is_uri(a.images_root) else str(Path(a.images_root).resolve())
    return run_settings(a, assume_aligned=bool(a.assume_aligned), images_root=root)
