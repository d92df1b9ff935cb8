"""``occparse estimate``: how much of each face is occluded, per region, with a picture; folder mode."""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import sys
from pathlib import Path

from ..runtime.strictjson import dumps as strict_dumps
from .common import (
    ALIGNED_HELP,
    add_engine_args,
    add_parser_args,
    batch_args_error,
    by_extension,
    default_workers,
    estimator,
    fail,
    foreign_out_error,
    interrupted,
    interrupted_message,
    output_clash,
    own_picture,
    picture_path_error,
    ray_options,
    rerun_status,
    resolved,
    resumable_outputs,
    resume_or_start_over,
    run_ray,
    run_settings,
    say_new_folder,
    say_skipped,
    summary_line,
    unique_stems,
    unwritable_folder,
    warn_ray_only_options,
    write_marked_picture,
)


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``occparse estimate`` (help, description, options) on the subcommands ``sub``."""
    p = sub.add_parser(
        "estimate",
        help="how much of each face is occluded, per region, with a picture",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="For each image: find the faces, parse them, and report the occluded fraction of the face "
        "region R (0..1), per-region fractions (forehead, eyes, nose, mouth, cheeks, chin), what hides the face "
        "(hair vs other occluders), the face box, the face detector's score and the parser's confidence.",
        epilog="""examples:
  occparse estimate examples/astronaut.png --visualize        # writes examples/astronaut_occlusion.png
  occparse estimate photo.jpg --visualize out.png --json
  occparse estimate a.jpg b.jpg --visualize pictures/      # writes pictures/a_occlusion.png, pictures/b_occlusion.png
  occparse estimate group.jpg --all-faces
  occparse estimate photo.jpg --profile iso                  # only the ISO/IEC 29794-5 style components
  occparse estimate photos/ --out results.csv --workers 2    # folder mode: a row per file, resumable

Exit status: 0 when every image gave a face, 1 when any failed (no face, unreadable, not an image, too small);
each failure is one line on stderr (with --json, a JSON object with its status on stdout).""",
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse estimate``'s options."""
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG, WebP, BMP, TIFF, GIF, PPM, JPEG 2000, TGA, ...), or folders with --out")
    p.add_argument("--out", help="folder mode: write one row per image to this .csv or .parquet (resumable)")
    p.add_argument("--workers", type=int, default=0,
                   help="folder mode: processes for decoding and the mesh (default 0: one per core for 100+ files; "
                        "at most 4 per core and one per file)")
    p.add_argument("--batch", type=int, default=64,
                   help="folder mode: crops per network batch (default 64; a part-filled batch runs after 2 s)")
    p.add_argument("--overwrite", action="store_true",
                   help="folder mode: compute OUT again even when it is already complete for these images and settings "
                        "(default: say so and exit with its status); with the local engine, an interrupted OUT.partial written with other settings "
                        "or inputs is discarded instead of refused")
    add_engine_args(p)
    p.add_argument("--visualize", nargs="?", const="auto", metavar="PATH",
                   help="write the picture: PATH (one image); with a folder (an existing one, one ending in /, or "
                        "any name without an extension when there are several images), NAME_occlusion.png "
                        "there for each image (two inputs of one name: NAME.ext, then -2, -3); --visualize alone: "
                        "NAME_occlusion.png beside each input. A file occparse did not write is never replaced")
    p.add_argument("--json", action="store_true", help="one JSON object per image (schema in docs/outputs.md)")
    p.add_argument("--profile", choices=("full", "iso"), default="full",
                   help="full (default): everything; iso: only the ISO/IEC 29794-5 style occlusion components "
                   "(face occlusion prevention, eyes visible, mouth occlusion prevention: raw value, score 0..100, "
                   "return code; docs/iso_components.md). Folder mode always writes every column")
    p.add_argument("--all-faces", action="store_true",
                   help="search for and report every face (default: only the subject, the face nearest the image centre)")
    p.add_argument("--assume-aligned", action="store_true", help=ALIGNED_HELP)
    p.add_argument("--max-faces", type=int, default=None,
                   help="with --all-faces: report at most N >= 1 faces, subject first (default: every face found)")
    add_parser_args(p)
    # read back from the parser itself, so the single-image warning never drifts from the defaults above
    p.set_defaults(folder_defaults={d: p.get_default(d) for _, d in FOLDER_ONLY})


#: the options that only folder mode uses: (flag, argparse dest)
FOLDER_ONLY = (("--workers", "workers"), ("--batch", "batch"), ("--overwrite", "overwrite"), ("--engine", "engine"),
               ("--address", "address"), ("--shard-rows", "shard_rows"), ("--actors", "actors"))


def run(a: argparse.Namespace) -> int:
    import cv2

    from ..runtime.visualize import draw_estimate

    if a.max_faces is not None and a.max_faces < 1:
        return fail(f"--max-faces must be at least 1, not {a.max_faces}")
    if a.out or any(Path(p).is_dir() for p in a.images):
        if not a.out:
            return fail("a folder input needs --out results.csv (or .parquet)")
        if a.visualize:
            return fail("--visualize is for single images, not folder mode")
        if a.json:
            return fail("--json is for single images; folder mode writes its rows to --out (.csv or .parquet)")
        if a.profile != "full":
            return fail("--profile iso is for single images; folder mode's rows always hold the ISO components "
                        "(columns face_occlusion_prevention_raw ... mouth_occlusion_prevention_code)")
        return _estimate_folder(a)

    if ignored := _folder_only_options(a):
        print(f"occparse: warning: {', '.join(ignored)} {'is' if len(ignored) == 1 else 'are'} for folder mode "
              "(--out); ignored for single images", file=sys.stderr)
    if a.max_faces is not None and not a.all_faces:
        print("occparse: warning: --max-faces works with --all-faces; only the subject is reported", file=sys.stderr)
    if a.visualize is not None and not a.visualize.strip():
        return fail("--visualize: empty path; give a picture file name, a folder, or --visualize alone")
    into = a.visualize not in (None, "auto") and _picture_folder(a.visualize, len(a.images))
    if a.visualize and a.visualize != "auto" and not into and len(a.images) > 1:
        return fail(f"--visualize {a.visualize} names one picture, and there are {len(a.images)} images: give a "
                    "folder (--visualize pictures/) or use --visualize alone (a PNG beside each input)")
    chosen = a.visualize == "auto" or into  # occparse names the pictures: NAME_occlusion.png
    pictures: list[Path | None] = [None] * len(a.images)
    if a.visualize == "auto":
        pictures = [Path(p).with_name(st + "_occlusion.png") for p, st in
                    zip(a.images, unique_stems(a.images, by_folder=True), strict=True)]
    elif into:
        pictures = [Path(a.visualize) / (st + "_occlusion.png") for st in unique_stems(a.images)]
    elif a.visualize:
        pictures = [Path(a.visualize)]
    for pic in pictures:  # before any work: a bad path must not cost the whole run
        if pic is not None and (err := picture_path_error(pic)):
            hint = f" (or {pic}/ for a folder of pictures)" if not pic.suffix and not chosen else ""
            return fail(f"--visualize: {err}{hint}")
    if clash := output_clash([p for p in pictures if p is not None], a.images):  # never write over an input
        pic, inp = clash
        if chosen:
            return fail(f"--visualize would write its picture to {pic}, which is the input {inp}; "
                        "name the picture with --visualize PATH (one image), another folder, or rename that input")
        return fail(f"--visualize {pic} is the input image {inp}; give the picture another file name")
    # a picture never replaces a file occparse did not write, whether occparse chose its name or the user did
    # (as --out and report --out refuse); an earlier picture of occparse's is replaced
    for pic in pictures:
        if pic is not None and pic.exists() and not _own_picture(pic):
            if chosen:
                return fail(f"--visualize would replace {pic}, which is not a picture occparse wrote; name the "
                            "picture with --visualize PATH (one image), another folder, or move that file")
            return fail(f"--visualize {pic} exists and is not a picture occparse wrote; it is left as it is "
                        "(give another file name, or remove that file)")
    for folder in dict.fromkeys(p.parent for p in pictures if p is not None and a.visualize != "auto"):
        say_new_folder(folder, "--visualize")
    app, err = estimator(a, max_faces=a.max_faces if a.all_faces else None, assume_aligned=a.assume_aligned,
                          exhaustive=a.all_faces)
    if app is None:
        return err
    failures = 0
    out = _Stdout()
    for path, pic in zip(a.images, pictures, strict=True):
        try:
            an = app.analyze(path)
        except Exception as e:  # keep a batch going; report what broke
            print(f"{path}: error: {type(e).__name__}: {e}", file=sys.stderr)
            failures += 1
            continue
        res = an.result
        # the picture first: a reader that closes stdout early (`| head -1`) must not cost it
        picture_line = None
        if res.ok and pic is not None:
            pic.parent.mkdir(parents=True, exist_ok=True)
            try:
                written = write_marked_picture(pic, draw_estimate(an, None if a.all_faces else 1))
            except cv2.error as e:
                written = False
                print(f"{path}: error: {str(e).strip().splitlines()[-1]}", file=sys.stderr)
            if not written:
                print(f"{path}: error: could not write the picture {pic}", file=sys.stderr)
                failures += 1
            else:
                picture_line = f"picture: {pic}"
        if a.json:
            from ..runtime.rows import utf8_text

            d = res.to_dict(all_faces=a.all_faces)
            d["path"], d["message"] = utf8_text(d["path"]), utf8_text(d["message"])  # as folder mode writes it
            if a.profile == "iso":
                d["faces"] = [{"subject": f["subject"], "iso": f["iso"]} for f in d["faces"]]
                d = {k: d[k] for k in ("path", "status", "message", "n_faces", "faces")}
            out.say(strict_dumps(d))
        elif res.ok:
            out.say(_iso_table(res, a.all_faces) if a.profile == "iso" else _table(res, a.all_faces))
        if not res.ok:
            if not a.json:
                print(f"{path}: {res.status}: {res.message}", file=sys.stderr)
            failures += 1
            continue
        if picture_line:
            if a.json:
                print(picture_line, file=sys.stderr)
            else:
                out.say(picture_line)
    if out.gone:
        raise BrokenPipeError  # every picture is written; the CLI's entry point exits quietly (141)
    return 1 if failures else 0


def _folder_only_options(a: argparse.Namespace) -> list[str]:
    """The folder-mode options given on a single-image run (they change nothing there)."""
    return [flag for flag, dest in FOLDER_ONLY if getattr(a, dest) != a.folder_defaults[dest]]


def _missing_folder(item: str) -> bool:
    """Whether a command-line input names a folder that is not there: a missing path that ends in a separator
    or has no image extension. That is a mistake in the command (exit 2); a missing image file is a row."""
    from ..runtime.io import has_image_extension

    p = Path(item)
    return not p.exists() and not p.is_symlink() and (item.endswith(("/", os.sep)) or not has_image_extension(p))


def _picture_folder(path: str, n_images: int) -> bool:
    """Whether ``--visualize PATH`` names a folder for the pictures: an existing folder, a path ending in a
    separator, or, with several images, a path without a file extension (it is made)."""
    return (Path(path).is_dir() or path.endswith(("/", os.sep))
            or (n_images > 1 and not Path(path).suffix))


def _own_picture(path: Path) -> bool:
    """Whether ``path`` is a picture occparse wrote (:func:`.common.own_picture`; one without the mark is recognised
    by the picture's width)."""
    from ..runtime.visualize import PANEL_W, TILE

    return own_picture(path, TILE + PANEL_W)


class _Stdout:
    """Standard output that a reader may close early (``occparse estimate x.png | head -1``): after that,
    lines are dropped and the work (pictures) goes on; ``gone`` says it happened."""

    def __init__(self) -> None:
        self.gone = False

    def say(self, text: str) -> None:
        if self.gone:
            return
        try:
            print(text, flush=True)
        except BrokenPipeError:
            self.gone = True


def _pct(v: float | None, fmt: str = ".1%") -> str:
    """A fraction as a percentage; a region the head's pose turns out of R has no value (NaN) and says so."""
    if v is None or not math.isfinite(v):
        return "n/a (turned away)"
    return format(v, fmt)


def _table(res, all_faces: bool) -> str:
    from ..runtime.regions import REGION_NAMES

    if not res.ok:
        return f"{res.path}: {res.status}: {res.message}"
    shown = len(res.faces) if all_faces else min(1, len(res.faces))
    found = f"{res.n_faces} face(s)" + (f", {shown} shown (--all-faces for every face)" if shown < res.n_faces else "")
    lines = [f"{res.path}: {found}, {res.width}x{res.height}"]
    if res.message:  # what was assumed: the first frame of several, the canonical layout
        lines.append(f"  note: {res.message}")
    for i, f in enumerate(res.faces if all_faces else res.faces[:1]):
        det = "n/a" if f.landmark_confidence is None else f"{f.landmark_confidence:.2f}"
        lines.append(
            f"  face {i + 1}: occluded {_pct(f.occlusion)}  (geometric {_pct(f.geometric)}"
            + (f", regressor {_pct(f.regressor)}" if f.regressor is not None else "")
            + ")  " + _hidden_by(f)
            + f"  box {tuple(round(v) for v in f.box)}  detector score {det}  parser confidence "
            f"{f.parser_confidence:.2f}{'  gray' if f.is_gray else ''}"
        )
        lines.append("    " + "  ".join(f"{n} {_pct(f.region(n), '.0%')}" for n in REGION_NAMES))
        lines += _face_facts(f)
        lines.append("    ISO/IEC 29794-5 style: " + _iso_line(f))
    return "\n".join(lines)


def _iso_line(f) -> str:
    """The three ISO/IEC 29794-5 style components of a face on one line: score (raw occluded share)."""
    from ..runtime.iso import of_face

    return "  ".join(f"{c.name} {c.score} (raw {c.raw:.3f})" if c.ok else f"{c.name} {c.code}" for c in of_face(f))


def _iso_table(res, all_faces: bool) -> str:
    """``--profile iso``: per face, only the three components (score 0..100, raw occluded share, return code)."""
    shown = len(res.faces) if all_faces else min(1, len(res.faces))
    lines = [f"{res.path}: {res.n_faces} face(s)"
             + (f", {shown} shown (--all-faces for every face)" if shown < res.n_faces else "")]
    for i, f in enumerate(res.faces[:shown]):
        lines.append(f"  face {i + 1}: {_iso_line(f)}")
    return "\n".join(lines)


#: below this geometric share of R the text output does not split the hidden part by cause
SPLIT_FLOOR = 0.005


def _hidden_by(f) -> str:
    """What hides the part of R inside the frame, as shares of that hidden part (the part outside
    the frame is reported on its own, as "out of frame")."""
    o = f.occluded_by
    where = "inside the frame, " if f.out_of_frame > 0 else ""
    if o.hair + o.facial_hair + o.occluder + o.background == 0:
        return f"{where}nothing hidden"
    # "hair 100%" of a few pixels reads as a finding; it is noise (the part outside the frame is not split)
    if f.geometric - f.out_of_frame < SPLIT_FLOOR:
        return f"{where}hidden part under {SPLIT_FLOOR:.1%} of R (not split by cause)"
    return (f"{where}hidden by hair {o.hair:.0%} / facial hair {o.facial_hair:.0%}"
            f" / occluder {o.occluder:.0%} / background {o.background:.0%}")


def _face_facts(f) -> list[str]:
    """Table lines for subject, pose, out-of-frame share and warnings."""
    p = f.pose
    pose = "" if p is None else "  pose " + ", ".join(
        f"{k} {v:.0f}" for k, v in (("yaw", p.yaw), ("pitch", p.pitch), ("roll", p.roll)) if v is not None)
    if p is not None and (p.yaw is None or p.pitch is None):
        pose += " (yaw and pitch not measured: the face mesh did not fit, the face is fitted to key points)"
    facts = [f"    {'subject' if f.subject else 'other face'}{pose}  out of frame {f.out_of_frame:.0%}"]
    return facts + [f"    warning: {w}" for w in f.warnings]


def _estimate_folder(a: argparse.Namespace) -> int:
    """Folder/batch mode: every image under the inputs, one row each, streamed to --out, resumable."""
    from tqdm import tqdm

    from ..runtime.batch import BatchInputError, analyses
    from ..runtime.resumable import ResumableWriter, inputs_digest
    from ..runtime.rows import FOLDER_COLUMNS, folder_row

    if err := batch_args_error(a):
        return fail(err)
    if a.engine == "ray":
        return _estimate_folder_ray(a)
    warn_ray_only_options(a)
    paths: list[Path] = []
    named: set[Path] = set()  # the files named on the command line (not found in a folder)
    scanned: list[Path] = []  # files in a folder without an image extension: not read, never written over either
    for item in a.images:
        p = Path(item)
        if p.is_dir():
            # a broken symbolic link or a named pipe gets a row too (status missing / unreadable), never silence
            found = sorted(p.rglob("*"))
            images, others = by_extension([q for q in found if not q.is_dir()])
            paths += images
            scanned += others
            # rglob does not descend into a linked folder (a loop could never end): say so, never drop it unsaid
            if links := sum(q.is_symlink() and q.is_dir() for q in found):
                print(f"occparse: {links} symbolic link{'s' if links != 1 else ''} to a folder in {item} not followed "
                      "(name the linked folder itself to include its images)", file=sys.stderr)
        elif _missing_folder(item):
            return fail(f"{item}: no such folder or file")
        else:
            paths.append(p)
            named.add(p)
    out = Path(a.out)
    # an output file named as an input is refused: writing it would destroy that input
    if clash := output_clash(resumable_outputs(out), named):
        return fail(f"--out {out} would write {clash[0]}, which is the input {clash[1]}; give --out another name")
    # the output's own files (OUT, OUT.partial, ...) found in a scanned input folder are not inputs: a rerun (or
    # resume) writes them again; a file there that occparse did not write is an input, and refused as above
    own = {resolved(q) for q in resumable_outputs(out)}
    mine = [resolved(q) in own for q in paths]
    theirs = [q for q, m in zip(paths, mine, strict=True) if m] + [q for q in scanned if resolved(q) in own]
    if (clash := output_clash([out], theirs)) and not _folder_output(out):
        return fail(f"--out {out} is the input {clash[1]} (not an earlier occparse estimate output); give --out "
                    "another name")
    paths = [q for q, m in zip(paths, mine, strict=True) if not m]
    if not paths:
        return fail("no image files found in the given folder(s)")
    parquet = out.suffix.lower() == ".parquet"
    # refuse before computing anything: a writer that is missing at the end would lose the run
    if out.is_dir():
        return fail(f"--out {out} is a folder; give a file name ending in .csv or .parquet")
    if out.suffix.lower() not in (".csv", ".parquet"):
        return fail(f"--out {out}: unknown file type {out.suffix or '(none)'!r}; use .csv or .parquet")
    if parquet and importlib.util.find_spec("pyarrow") is None:
        return fail("writing .parquet needs pyarrow (pip install pyarrow), or use --out with .csv")
    if err := unwritable_folder(out.parent):
        return fail(f"--out {out}: {err}")
    columns = FOLDER_COLUMNS
    say_new_folder(out.parent, "--out")
    say_skipped(len(scanned))  # once the options are known to be good, so that a refusal stays one line
    try:
        # rows stream to OUT.partial (CSV text, what resuming reads); only OUT itself is ever replaced
        writer = ResumableWriter(out, columns, settings=_folder_settings(a), inputs_digest=inputs_digest(paths),
                                 renamable=True)
        if (rc := rerun_status(writer, [str(p) for p in paths], "these images", a.overwrite)) is not None:
            return rc
        done = resume_or_start_over(writer, [str(p) for p in paths], a.overwrite)
    except BatchInputError as e:
        return fail(str(e))
    if writer.note:
        print(f"occparse: warning: {writer.note}", file=sys.stderr)
    if done:
        print(f"resuming: {done} of {len(paths)} images already in {writer.partial}", file=sys.stderr)
    todo = paths[done:]
    workers = default_workers(a.workers, len(todo))
    app, err = estimator(a, max_faces=1 if not a.all_faces else a.max_faces, detector_scores=False,
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
        bar.close()  # the message starts on its own line, not after the progress bar
        writer.close()
        return interrupted(interrupted_message(writer))
    bar.close()
    if parquet:
        writer.close()
        try:
            final = _csv_to_parquet(writer.partial, out, columns)
        except (ImportError, OSError) as e:
            return fail(f"could not write {out} ({e}); the rows are kept in {writer.partial}")
        writer.drop_settings()
    else:
        final = writer.finish()
    # rows of an earlier, resumed run count too: the summary and the exit status describe the whole output
    print(summary_line(final, writer.done, counts))
    failed = sum(v for k, v in counts.items() if k != "ok") + sum(r.get("status") != "ok" for r in writer.done)
    if failed:
        print(f"{failed} of {len(paths)} images failed (see the status column)", file=sys.stderr)
    return 1 if failed else 0


def _folder_output(path: Path) -> bool:
    """Whether ``path`` is an earlier folder-mode output (its columns are FOLDER_COLUMNS, or those of an older
    occparse), so a rerun may replace it."""
    import csv

    from ..runtime.rows import FOLDER_COLUMNS, FOLDER_COLUMNS_V1, FOLDER_COLUMNS_V2, FOLDER_COLUMNS_V3

    known = (list(FOLDER_COLUMNS), list(FOLDER_COLUMNS_V3), list(FOLDER_COLUMNS_V2), list(FOLDER_COLUMNS_V1))
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names) in known
        with open(path, newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), []) in known
    except Exception:  # unreadable, not CSV, not Parquet, no pyarrow: not something occparse wrote
        return False


def _csv_to_parquet(src: Path, dst: Path, columns: tuple[str, ...]) -> Path:
    """Stream the finished rows (CSV text) into Parquet in blocks (memory stays flat), then swap it in atomically.

    Column types are fixed, not inferred per block: a first block of failed rows (empty numbers)
    must not decide the type of the rest."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from ..runtime.rows import column_type

    kinds = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
    types = {c: kinds[column_type(c)] for c in columns}  # one definition for both engines (occparse/runtime/rows.py)
    tmp = dst.with_name(dst.name + ".tmp")
    reader = pacsv.open_csv(src, convert_options=pacsv.ConvertOptions(
        column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False))
    with pq.ParquetWriter(tmp, reader.schema) as w:
        for batch in reader:
            w.write_batch(batch)
    os.replace(tmp, dst)
    src.unlink()
    return dst


def _estimate_folder_ray(a: argparse.Namespace) -> int:
    """Folder mode with --engine ray: files under local folders or URIs (s3://bucket/prefix/)."""
    from ..runtime.shard_files import PARTS_SUFFIX, is_uri, list_folder

    names: list[str] = []
    skipped = 0
    for item in a.images:
        if is_uri(item) or Path(item).is_dir():
            images, others = by_extension(list_folder(item))
            names += images
            skipped += len(others)
        elif _missing_folder(item):
            return fail(f"{item}: no such folder or file")
        else:
            names.append(item)
    if err := foreign_out_error(a.out, a.overwrite):
        return fail(err)
    say_skipped(skipped)
    named = [n for n in a.images if not is_uri(n) and not Path(n).is_dir()]
    if not is_uri(a.out) and (clash := output_clash([a.out, a.out + ".tmp"], named)):
        return fail(f"--out {a.out} would write {clash[0]}, which is the input {clash[1]}; give --out another name")
    if not is_uri(a.out):  # the output's own files are never inputs
        out = resolved(Path(a.out))
        parts = Path(str(out) + PARTS_SUFFIX)
        names = [n for n in names if is_uri(n) or (resolved(Path(n)) not in (out, Path(str(out) + ".tmp"))
                                                   and parts not in resolved(Path(n)).parents)]
    if not names:
        return fail("no image files found in the given folder(s)")
    options, err = ray_options(a, max_faces=1 if not a.all_faces else a.max_faces, detector_scores=False,
                                assume_aligned=a.assume_aligned, exhaustive=a.all_faces)
    if options is None:
        return err
    return run_ray(a, names, names, "folder", options, _folder_settings(a))


def _folder_settings(a: argparse.Namespace) -> dict:
    """Folder mode's resume record (both engines): the common settings and the face options."""
    return run_settings(a, all_faces=bool(a.all_faces), max_faces=a.max_faces if a.all_faces else 1,
                        assume_aligned=bool(a.assume_aligned))
