"""Helpers shared by the ``occparse`` commands: messages, output checks, the Estimator from options, shared options."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path


def verbose() -> bool:
    return os.environ.get("OCCPARSE_VERBOSE", "") not in ("", "0")


def quiet_native_logs() -> None:
    """MediaPipe/TFLite write start-up chatter straight to file descriptor 2, from their own threads.

    Keep the terminal for occparse's own messages: Python's ``sys.stderr`` moves to a copy of the
    real stderr, and descriptor 2 (used only by native code) goes to /dev/null. OCCPARSE_VERBOSE=1
    (or --verbose) keeps everything.
    """
    if verbose():
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


def fail(msg: str, code: int = 2) -> int:
    print(f"occparse: error: {msg}", file=sys.stderr)
    return code


def resolved(path: Path) -> Path:
    """``path`` made absolute with its links followed, or only made absolute when that fails (a link loop
    raises RuntimeError, a path that is too long OSError): a file that cannot be resolved still gets its row."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):
        return path.absolute()


def unique_stems(paths: list[str], by_folder: bool = False) -> list[str]:
    """A stem per input for its output files, never one for two inputs.

    ``a.jpg`` and ``a.png`` would both give ``a``: inputs whose stems collide keep their extension
    (``a.jpg``, ``a.png``), and a number is added when even the names collide (same name in two
    folders). Compared without case (macOS and Windows file systems ignore it). ``by_folder``: only
    inputs of the same folder compete (outputs written beside each input).
    """
    from collections import Counter

    def key(p: str, stem: str) -> tuple[str, str]:
        return (str(resolved(Path(p)).parent) if by_folder else "", stem.lower())

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


def unwritable_folder(folder: Path) -> str | None:
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
        # a folder that cannot be created reports the nearest existing one, whose error names the real cause
        reason = e.strerror or str(e)
        if probe != folder:
            return f"folder {folder} cannot be created in {probe} ({reason})"
        return f"folder {probe} is not writable ({reason})"
    return None


def say_new_folder(folder: Path, what: str) -> None:
    """One line on stderr when ``folder`` does not exist yet (it is made when the first file is written):
    a mistyped path shows up at once instead of as a stray folder found later."""
    if not folder.exists():
        print(f"occparse: {what}: folder {folder} does not exist; creating it", file=sys.stderr)


def picture_path_error(out: Path) -> str | None:
    """Why the picture cannot be written to ``out``, checked before any work, or None."""
    if out.is_dir():
        return f"{out} is a folder; give a file name such as {out / 'picture.png'}"
    if out.suffix.lower() not in PICTURE_FORMATS:
        return f"cannot write a picture as {out.name!r}: use .png, .jpg, .webp, .tiff, .bmp or .gif"
    if err := unwritable_folder(out.parent):
        return err
    if out.exists() and not os.access(out, os.W_OK):
        return f"{out} exists and is not writable"
    return None


def output_clash(outputs, inputs) -> tuple[Path, Path] | None:
    """The first of ``outputs`` that is one of ``inputs``, as ``(output, input)``, or None.

    "The same" means the same file (device and inode, so hard links, symlinks and case-insensitive
    file systems count), or, for files that do not exist yet, the same resolved path. One pass over
    each list (no pairwise comparisons), so thousands of inputs cost thousands of ``stat`` calls."""
    by_inode: dict[tuple[int, int], Path] = {}
    by_path: dict[Path, Path] = {}
    for item in inputs:
        q = Path(item)
        try:
            st = q.stat()
            by_inode.setdefault((st.st_dev, st.st_ino), q)
        except (OSError, ValueError):
            pass
        with contextlib.suppress(OSError, RuntimeError, ValueError):
            by_path.setdefault(q.resolve(), q)
    for item in outputs:
        o = Path(item)
        try:
            st = o.stat()
            if (hit := by_inode.get((st.st_dev, st.st_ino))) is not None:
                return o, hit
        except (OSError, ValueError):
            pass
        try:
            if (hit := by_path.get(o.resolve())) is not None:
                return o, hit
        except (OSError, RuntimeError, ValueError):
            pass
    return None


def resumable_outputs(out: Path) -> tuple[Path, ...]:
    """Every file a resumable batch output writes: OUT, OUT.partial (with its .tmp, its settings sidecar and
    the sidecar's .tmp), OUT.tmp, and OUT.occparse.json (the settings of a complete OUT, with its .tmp)."""
    partial = out.with_name(out.name + ".partial")
    sidecar = partial.with_name(partial.name + ".json")
    record = out.with_name(out.name + ".occparse.json")
    return (out, partial, partial.with_name(partial.name + ".tmp"), sidecar, sidecar.with_name(sidecar.name + ".tmp"),
            out.with_name(out.name + ".tmp"), record, record.with_name(record.name + ".tmp"))


#: the extensions named in the "skipped" line (the common ones; io.IMAGE_EXTENSIONS has all)
IMAGE_EXTENSIONS_SHOWN = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", "...")


def by_extension(found: list) -> tuple[list, list]:
    """``found`` (paths or names) split into those with an image extension and the others, each in order."""
    from ..runtime.io import has_image_extension

    images, others = [], []
    for f in found:
        (images if has_image_extension(f) else others).append(f)
    return images, others


def say_skipped(n: int) -> None:
    """The folder-mode line for ``n`` files left out for their extension (nothing when none)."""
    if n:
        print(f"occparse: skipped {n} file{'s' if n != 1 else ''} without an image extension "
              f"({', '.join(IMAGE_EXTENSIONS_SHOWN)})", file=sys.stderr)


def rerun_status(writer, expected: list[str], what: str, overwrite: bool) -> int | None:
    """The exit status of a rerun whose output is already complete for ``expected`` (the inputs, in order) and
    this run's settings, after saying so; 2 when ``OUT`` is a file occparse did not write (refused unless
    ``overwrite``); None when the output must be computed (it says why when an earlier complete output is
    replaced). ``what`` names the inputs in the line ("these images", "this CSV")."""
    if err := foreign_out_error(str(writer.out), overwrite):
        print(f"occparse: error: {err}", file=sys.stderr)
        return 2
    if not overwrite and (done := writer.complete_rows(expected)) is not None:
        n, failed = done
        named = writer.named_otherwise
        print(f"{writer.out} is already complete: {n} rows from {what} with these settings"
              f"{f', {failed} of them failed (see the status column)' if failed else ''}; nothing to do "
              "(--overwrite computes it again)"
              + (f"; the same files, named in its filename column as first given (e.g. {named})" if named else ""),
              file=sys.stderr)
        return 1 if failed else 0
    if writer.stale and not overwrite:
        print(f"occparse: {writer.stale}", file=sys.stderr)
    return None


def resume_or_start_over(writer, expected: list[str], overwrite: bool) -> int:
    """How many rows of ``OUT.partial`` this run keeps (:meth:`ResumableWriter.resume_check`). A partial run
    with other settings or other inputs is refused (BatchInputError) unless ``overwrite``, which discards it,
    saying so; a partial run with the same settings and inputs is resumed either way (its rows are what this
    run would compute)."""
    from ..runtime.batch import BatchInputError

    try:
        return writer.resume_check(expected)
    except BatchInputError as e:
        if not overwrite:
            raise
        reason = getattr(e, "reason", str(e))  # a stale partial run's why, without the advice to rerun
        print(f"occparse: --overwrite: discarding the partial run ({reason}); starting over", file=sys.stderr)
        writer.start_over()
        return 0


EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C


def interrupted(msg: str = "interrupted (Ctrl-C)") -> int:
    """Report a stop the user asked for (Ctrl-C): not an error of occparse's, so no ``error:`` prefix; exit 130."""
    print(f"occparse: {msg}", file=sys.stderr)
    return EXIT_INTERRUPTED


def interrupted_message(writer) -> str:
    """What Ctrl-C leaves behind, truthfully: the partial file and its rows, or nothing to resume."""
    if writer.partial.exists():
        n = len(writer.done) + writer.written
        return f"interrupted (Ctrl-C); {writer.partial} keeps the {n} finished row(s), rerun the same command to resume"
    return "interrupted (Ctrl-C) before any row was written; nothing was saved, rerun the command to start"


def summary_line(out: Path | str, resumed: list[dict[str, str]], added: dict[str, int]) -> str:
    """"wrote N rows to OUT: ok .., no_face .." over the whole file; after a resume, how many this run added."""
    counts = dict(added)
    for r in resumed:
        counts[r.get("status", "")] = counts.get(r.get("status", ""), 0) + 1
    total = sum(counts.values())
    line = (f"wrote {total} row{'' if total == 1 else 's'} to {out}"
            + (": " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) if counts else ""))
    if resumed:
        line += f" ({sum(added.values())} added this run, {len(resumed)} resumed from the partial file)"
    return line


#: --workers above this many per core is lowered to it: more only adds start-up time and memory
MAX_WORKERS_PER_CORE = 4


def batch_args_error(a: argparse.Namespace) -> str | None:
    """Why ``--workers``/``--batch`` cannot be used (a negative number of processes, an empty batch), or None.
    More workers than cores is allowed, with a warning: they only compete for the same cores."""
    workers, batch = getattr(a, "workers", 0), getattr(a, "batch", 1)
    if workers is not None and workers < 0:
        return f"--workers must be 0 (one per core for large jobs) or more, not {workers}"
    if batch is not None and batch < 1:
        return f"--batch must be at least 1, not {batch}"
    cores = os.cpu_count() or 1
    if workers and cores < workers <= MAX_WORKERS_PER_CORE * cores:
        print(f"occparse: warning: --workers {workers} on {cores} cores: the processes compete for the same cores "
              "and start-up costs each of them; --workers 0 picks one per core", file=sys.stderr)
    return None


def default_workers(requested: int, n_items: int) -> int:
    """The mesh processes of the local engine for ``n_items`` inputs: ``requested``, at most one per input and
    :data:`MAX_WORKERS_PER_CORE` per core (a line on stderr says when the cores lower it), or for --workers 0
    (the default) one per core once the job is big enough to repay their start-up."""
    cores = os.cpu_count() or 1
    if min(requested, n_items) > MAX_WORKERS_PER_CORE * cores:
        print(f"occparse: warning: --workers {requested} on {cores} cores: using {MAX_WORKERS_PER_CORE * cores} (at "
              f"most {MAX_WORKERS_PER_CORE} per core: each process holds its own face mesh)", file=sys.stderr)
    if requested > 0:
        return max(1, min(requested, n_items, MAX_WORKERS_PER_CORE * cores))
    return cores if n_items >= 100 else 1


def estimator(a: argparse.Namespace, **kw):
    from ..models.zoo import WeightsError
    from ..runtime.pipeline import Estimator, EstimatorOptions

    try:
        return Estimator(EstimatorOptions(parser=a.parser, parser_spec=a.parser_spec, precision=a.precision,
                                          parser_flip=a.flip_tta, facial_hair=a.facial_hair, weights=a.weights,
                                          providers=device_providers(a), **kw)), None
    except (WeightsError, FileNotFoundError, ValueError) as e:
        return None, fail(str(e))


def run_settings(a: argparse.Namespace, **extra) -> dict:
    """What decides the numbers of a batch run, as JSON-able values: stored beside OUT.partial so a resume with
    other settings is refused (docs/outputs.md, Folder mode). ``extra``: the command's own such options.

    The weights are named by their pinned sha256s (one digest: the same files in another folder match);
    ``--precision auto`` by what it resolves to on this machine (auto = int8 on a CPU); a parser file of
    one's own by its sha256."""
    import hashlib

    from ..models.zoo import WeightsError, file_sha256, manifest, resolve_precision

    try:
        pins = {name: e.sha256 for name, e in sorted(manifest(a.weights).items())}
        weights = hashlib.sha256(repr(sorted(pins.items())).encode()).hexdigest()[:16] if pins else None
    except (WeightsError, OSError, ValueError):
        weights = None
    try:
        precision = resolve_precision(a.precision, device_providers(a), a.weights)
    except Exception:  # an unusable device or weights folder is reported later, by the Estimator, in one line
        precision = a.precision
    try:
        parser = file_sha256(Path(a.parser))[:16] if a.parser else None
    except OSError:
        parser = a.parser
    from ..runtime.label_rules import LABEL_RULES

    return {"weights": weights, "precision": precision, "parser": parser, "parser_spec": a.parser_spec,
            "facial_hair": a.facial_hair, "flip_tta": bool(a.flip_tta), "label_rules": LABEL_RULES, **extra}


def device_providers(a: argparse.Namespace) -> tuple[str, ...] | None:
    """--device as ONNX Runtime providers (None for auto: the library's own choice, CUDA when present)."""
    device = getattr(a, "device", "auto")
    if device == "auto":
        return None
    from ..runtime.session import select_providers

    return tuple(select_providers(device))  # DeviceError (exit 2) when cuda is asked for and absent


def ray_options(a: argparse.Namespace, **kw):
    """The EstimatorOptions the Ray actors get (as the local engine's), checked here first: a missing model
    is one line now, not a traceback from every actor."""
    from ..runtime.pipeline import EstimatorOptions

    app, err = estimator(a, **kw)
    if app is None:
        return None, err
    del app
    return EstimatorOptions(parser=a.parser, parser_spec=a.parser_spec, precision=a.precision, parser_flip=a.flip_tta,
                            facial_hair=a.facial_hair, weights=a.weights, **kw), None


def run_ray(a: argparse.Namespace, names: list[str], sources: list[str], kind: str, options,
            settings: dict | None = None) -> int:
    """The Ray engine for predict and folder mode; ``settings`` (:func:`run_settings`) guard its resume."""
    from ..runtime.distributed import require_ray, run

    require_ray()  # before any work: one line when Ray is not installed
    device = "cuda" if device_providers(a) and device_providers(a)[0] == "CUDAExecutionProvider" else "cpu"
    if a.shard_rows < 1:
        return fail("--shard-rows must be at least 1")
    r = run(names, sources, a.out, options, kind, address=a.address, actors=a.actors, device=device, batch=a.batch,
            shard_size=a.shard_rows, settings=settings)  # an EngineError becomes one line in cli.main
    line = summary_line(r.out, [], r.statuses)  # the local engine's line, with the same status names
    if r.skipped_shards:
        line += f" ({r.skipped_shards} of {r.shards} shards resumed from {r.out}.parts)"
    print(line)
    if r.actors:
        load = f"{min(r.actor_load_s):.1f}-{max(r.actor_load_s):.1f} s" if r.actor_load_s else "n/a"
        mem = f"{min(r.actor_rss_mb):.0f}-{max(r.actor_rss_mb):.0f} MB" if r.actor_rss_mb else "n/a"
        print(f"ray: start-up {r.startup_s:.1f} s, {r.actors} actor(s), model load {load} per actor, peak memory "
              f"{mem} per actor, {r.wall_s:.1f} s in all", file=sys.stderr)
    if r.failed:
        print(f"{r.failed} of {r.rows} rows failed (see the status column)", file=sys.stderr)
    return 1 if r.failed else 0

#: --precision values (the same as occparse.models.zoo.PRECISIONS, kept here so building the CLI stays import-light)
PRECISION_CHOICES = ("auto", "fp32", "int8")


def add_parser_args(p: argparse.ArgumentParser) -> None:
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


#: the --engine ray options: flag, destination, default
RAY_ONLY = (("--address", "address", None), ("--shard-rows", "shard_rows", 256), ("--actors", "actors", 0))


def warn_ray_only_options(a: argparse.Namespace) -> None:
    """With the local engine, name the --engine ray options the user gave (they would otherwise be ignored
    silently); their defaults are :func:`add_engine_args`'s own."""
    if getattr(a, "engine", "local") != "local":
        return
    given = [flag for flag, dest, default in RAY_ONLY if getattr(a, dest, default) != default]
    if given:
        print(f"occparse: warning: {', '.join(given)} {'is' if len(given) == 1 else 'are'} for --engine ray; "
              "ignored with the local engine", file=sys.stderr)


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """--engine/--address/--actors: the batch commands on a Ray cluster (docs/cluster.md)."""
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local (default: processes on this machine) or ray (Ray Data actors, this machine or a "
                   "cluster; needs occparse[ray]; writes Parquet, resumable by shard)")
    p.add_argument("--address", help="--engine ray: the Ray cluster to join (default $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--shard-rows", type=int, default=RAY_ONLY[1][2],
                   help="--engine ray: rows per shard, the unit of work and of resuming (default 256; a rerun must "
                   "use the same value)")
    p.add_argument("--actors", type=int, default=RAY_ONLY[2][2],
                   help="--engine ray: scoring actors (default 0: one per CPU of the cluster, one per GPU with "
                   "--device cuda)")


ALIGNED_HELP = ("inputs are aligned face crops (like the challenge's 224x224 ones): when a heavy occluder defeats "
                "the mesh, assume the canonical face layout instead of reporting no_face (the message says so)")


def plain_text(text: str | None) -> str | None:
    """``text`` (a docstring written in reST) as plain terminal text: ``code`` -> code, :func:`x` -> x, `x` -> x."""
    import re

    if not text:
        return text
    text = re.sub(r":[a-z]+:`~?([^`]+)`", r"\1", text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    return re.sub(r"(?<![A-Za-z0-9])`([^`]+)`(?![A-Za-z0-9])", r"\1", text)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written (line breaks kept); every option whose help does not already name its default
    gets "(default: X)", so that ``--help`` shows what happens when the option is left out."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is False or default == argparse.SUPPRESS
                or not action.option_strings):
            return text
        if isinstance(default, list | tuple) and not default:  # a repeatable option given no times
            return text + " (default: none)"
        return text + " (default: %(default)s)"


def plain_help(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` and its subcommands print plain text with defaults (:class:`HelpFormatter`)."""
    parser.formatter_class = HelpFormatter
    parser.description = plain_text(parser.description)
    parser.epilog = plain_text(parser.epilog)
    for action in parser._actions:
        action.help = plain_text(action.help) if isinstance(action.help, str) else action.help
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                plain_help(sub)


class ToolCommand:
    """A subcommand whose options and code live in another module (``add_arguments(p)`` and ``run(a)``
    there). Building its options imports that module (numpy, OpenCV): with ``load=False`` (another
    command was asked for) only the name and help line are registered, so ``occparse --help`` and
    the other commands stay fast."""

    def __init__(self, name: str, module: str, help: str):
        self.name, self.module, self.help = name, module, help

    def _impl(self):
        from importlib import import_module

        return import_module(self.module)

    def add_parser(self, sub, load: bool = True) -> argparse.ArgumentParser:
        """Register the command on the subcommands ``sub``."""
        if not load:
            return sub.add_parser(self.name, help=self.help)
        impl = self._impl()
        p = sub.add_parser(self.name, help=self.help, description=impl.__doc__, epilog=getattr(impl, "EPILOG", None),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        self.add_arguments(p)
        p.set_defaults(func=self.run)
        return p

    def add_arguments(self, p: argparse.ArgumentParser) -> None:
        self._impl().add_arguments(p)

    def run(self, a: argparse.Namespace) -> int:
        return self._impl().run(a)


#: the PNG text chunk (Software) that marks a picture or label map as occparse's, so that a rerun may replace it
PNG_SOFTWARE = "occparse"


def write_marked_png(path: Path, image) -> bool:
    """Write ``image`` (H x W uint8 gray, or H x W x 3 RGB) as a PNG carrying occparse's Software text chunk.
    False when it cannot be written."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", PNG_SOFTWARE)
    try:
        Image.fromarray(image).save(path, format="PNG", pnginfo=info)
        return True
    except (OSError, ValueError):
        return False


#: EXIF / TIFF tag 305 (Software): marks a JPEG, WebP or TIFF picture as occparse's, as the PNG text chunk does
SOFTWARE_TAG = 305
#: the picture formats occparse writes, by extension: Pillow's format name (BMP and GIF cannot carry the mark)
PICTURE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF",
                   ".bmp": "BMP", ".gif": "GIF"}


def write_marked_picture(path: Path, rgb) -> bool:
    """Write a picture (H x W x 3 uint8 RGB) in the format of ``path``'s extension (one of
    :data:`PICTURE_FORMATS`), marked as occparse's where the format can carry it (PNG: :func:`write_marked_png`;
    JPEG and WebP: the EXIF Software tag, quality 95; TIFF: its Software tag; BMP and GIF: no mark). False
    when it cannot be written."""
    fmt = PICTURE_FORMATS[path.suffix.lower()]
    if fmt == "PNG":
        return write_marked_png(path, rgb)
    from PIL import Image

    try:
        im = Image.fromarray(rgb)
        if fmt in ("JPEG", "WEBP"):
            exif = Image.Exif()
            exif[SOFTWARE_TAG] = PNG_SOFTWARE
            im.save(path, format=fmt, quality=95, exif=exif.tobytes())
        elif fmt == "TIFF":
            im.save(path, format=fmt, tiffinfo={SOFTWARE_TAG: PNG_SOFTWARE})
        else:
            im.save(path, format=fmt)
        return True
    except (OSError, ValueError):
        return False


#: Pillow's names of the formats in :data:`PICTURE_FORMATS`
PICTURE_FORMAT_NAMES = frozenset(PICTURE_FORMATS.values())


def own_picture(path: Path, width: int | None, formats: frozenset[str] = PICTURE_FORMAT_NAMES) -> bool:
    """Whether ``path`` is a picture occparse wrote: one of ``formats`` (Pillow's names; default: every one of
    :data:`PICTURE_FORMATS`) that carries occparse's mark, or (BMP and GIF, which cannot carry it, and pictures
    written before the mark existed) is exactly ``width`` pixels wide, the width of every occparse picture."""
    from PIL import Image

    from ..runtime.io import is_regular_file

    if not is_regular_file(path):  # a named pipe would make Image.open wait for a writer
        return False
    try:
        with Image.open(path) as im:
            if im.format not in formats:
                return False
            marked = im.info.get("Software") == PNG_SOFTWARE or (
                im.format != "PNG" and im.getexif().get(SOFTWARE_TAG) == PNG_SOFTWARE)
            return marked or im.width == width
    except (OSError, ValueError):
        return False


def own_png(path: Path, legacy_width: int | None = None) -> bool:
    """Whether ``path`` is a PNG occparse wrote: it carries occparse's Software chunk, or (written before the
    chunk existed) it is exactly ``legacy_width`` pixels wide (:func:`own_picture` for PNGs alone)."""
    return own_picture(path, legacy_width, formats=frozenset({"PNG"}))


def old_label_map(path: Path) -> bool:
    """Whether ``path`` is a label map as ``occparse parse`` wrote it before its PNGs were marked: an 8-bit gray
    PNG whose values are occparse's classes (0..4)."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.mode == "L" and int(np.asarray(im).max(initial=0)) <= 4
    except (OSError, ValueError):
        return False


def foreign_out_error(out: str, overwrite: bool) -> str | None:
    """The refusal for a local ``--out`` that exists and is not an occparse output (see
    :func:`occparse.runtime.resumable.foreign_table`), unless ``overwrite``; None otherwise (and for URIs)."""
    from ..runtime.resumable import foreign_table
    from ..runtime.shard_files import is_uri

    if overwrite or is_uri(out) or not foreign_table(Path(out)):
        return None
    return f"--out {out} exists and is not an occparse output; it is left as it is (choose another --out, or " \
           "--overwrite to replace it)"
