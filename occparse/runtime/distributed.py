"""The Ray Data engine of ``occparse predict`` and folder mode (``--engine ray``).

The input rows (a CSV or Parquet file with a ``filename`` column, or the files under folders;
local paths or any URI that pyarrow's file systems understand, e.g. ``s3://``, ``gs://``,
``hdfs://``) are cut into shards of ``shard_size`` consecutive rows. Ray Data sends the shards
to a pool of actors (``map_batches`` with a callable class): each actor loads the models once,
then for each shard decodes its images, runs the mesh, runs the networks batched, and writes the
shard's rows to ``OUT.parts/part-NNNNNN.parquet`` (written under a temporary name, then moved).
When every shard is there, the driver streams the parts, in input order, into ``OUT`` (again
via a temporary name) and removes ``OUT.parts``.

Resuming: a rerun of the same command skips shards whose part file exists, so a killed run
loses at most the shards in flight. Each part holds its rows' filenames, which a rerun checks
against the input: parts of another input are refused, not mixed in (``OUT.parts/_job.json``
records the job kind, the shard size and the settings that decide the numbers; a rerun with other
settings is refused, naming each difference, as the local engine does with ``OUT.partial.json``).
Each part also records what its shard's files were when they were read (:func:`sources_digest`:
size and modification time): a shard with a photo replaced since then is scored again.

The rows are those of the local engine (:mod:`occparse.runtime.rows`), with the same per-row status.
Ray is imported only here, only when this engine is asked for.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import OccparseError
from .rows import FOLDER_COLUMNS, PREDICT_COLUMNS, column_type, folder_row, predict_row, typed

RAY_MISSING = 'the Ray engine needs Ray: pip install "occparse[ray]" (or "ray[data]==2.60.0")'
SHARD_SIZE = 256  # rows per shard: what a killed run can lose per actor, and the unit of work
PARTS_SUFFIX = ".parts"
#: a part's Parquet metadata key for :func:`sources_digest` of its shard's files, as read
INPUTS_KEY = b"occparse.inputs"
STAT_THREADS = 16  # object stores answer one file's size and time per request: ask several at once


class EngineError(OccparseError, RuntimeError):
    """The Ray engine cannot run this job (Ray missing, bad input or output, another run's parts)."""


def require_ray():
    """``import ray`` (with Ray Data), or :class:`EngineError` with the one-line install hint."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise EngineError(RAY_MISSING) from None
    return ray


# ---------------------------------------------------------------- file systems


def is_uri(s: str) -> bool:
    return "://" in s


def filesystem(location: str):
    """(pyarrow FileSystem, path on it) for a local path or a URI."""
    import pyarrow.fs as pafs

    if not is_uri(location):
        return pafs.LocalFileSystem(), os.path.abspath(location)
    try:
        return pafs.FileSystem.from_uri(location)
    except (ValueError, OSError) as e:  # pyarrow's ArrowInvalid is a ValueError
        raise EngineError(f"{location}: not a file system pyarrow can open ({e})") from None


def join(root: str, name: str) -> str:
    """``name`` under ``root``: a local path (as the local engine builds it) or a URI."""
    if is_uri(root):
        return root.rstrip("/") + "/" + name.lstrip("/")
    return str(Path(root) / name)


def read_filenames(table_uri: str) -> list[str]:
    """The ``filename`` values of a CSV or Parquet file (local or URI), in order; an empty or null one is
    kept as "" (one output row per input row; its row says 'missing')."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    fs, path = filesystem(table_uri)
    try:
        if path.lower().endswith(".parquet"):
            table = pq.read_table(path, filesystem=fs, columns=["filename"])
        else:
            with fs.open_input_stream(path) as f:
                table = pacsv.read_csv(f, convert_options=pacsv.ConvertOptions(
                    include_columns=["filename"], column_types={"filename": pa.string()},
                    strings_can_be_null=False))
    except FileNotFoundError:
        raise EngineError(f"{table_uri}: no such file") from None
    except (pa.ArrowInvalid, KeyError, OSError) as e:
        if "filename" in str(e):
            raise EngineError(f"{table_uri}: needs a 'filename' column (the challenge contract is "
                              "filename,FaceOcclusion,gender)") from None
        raise EngineError(f"{table_uri}: cannot read it ({str(e).splitlines()[0]})") from None
    return [v or "" for v in table.column("filename").to_pylist()]


def list_folder(location: str) -> list[str]:
    """Every file under a folder (local or URI), sorted: the URIs as given, local paths as the local engine lists them."""
    import pyarrow.fs as pafs

    if not is_uri(location):
        return [str(q) for q in sorted(q for q in Path(location).rglob("*")
                                       if not q.is_dir())]  # broken links, pipes: a row
    fs, path = filesystem(location)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    scheme = location.split("://", 1)[0]
    return sorted(f"{scheme}://{i.path}" for i in infos if i.type == pafs.FileType.File)


def _stamp(source: str) -> str:
    """One source's line of :func:`sources_digest`."""
    import pyarrow.fs as pafs

    try:
        if not is_uri(source):
            st = os.stat(source)
            return f"{source}\0{st.st_size}\0{st.st_mtime_ns}"
        fs, path = filesystem(source)
        info = fs.get_file_info(path)
    except (EngineError, OSError, ValueError):
        return f"{source}\0-"
    if info.type != pafs.FileType.File:
        return f"{source}\0-"
    return f"{source}\0{info.size}\0{info.mtime_ns}"


def sources_digest(sources: list[str]) -> str:
    """A short digest (32 hex characters) of what the files at ``sources`` (local paths or URIs, as the
    actors read them) are now: each one's size and modification time, or that it is missing or not a
    file. A file replaced under the same name changes it. A local path costs a ``stat``; a URI one
    request to its file system (``STAT_THREADS`` at once). Never raises."""
    import hashlib

    if any(is_uri(s) for s in sources):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max(1, min(STAT_THREADS, len(sources)))) as pool:
            stamps = list(pool.map(_stamp, sources))
    else:
        stamps = [_stamp(s) for s in sources]
    return hashlib.sha256("\n".join(stamps).encode("utf-8", "surrogateescape")).hexdigest()[:32]


# ---------------------------------------------------------------- the actor


def _prepare_uri(mesher, options, uri: str):
    """prepare_path for a URI: the file is copied to a local temporary file and read exactly as a local one."""
    import tempfile

    import pyarrow.fs as pafs

    from .pipeline import Status, failed, prepare_path

    fs, path = filesystem(uri)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        return failed(uri, Status.MISSING, "no such file")
    if info.type == pafs.FileType.Directory:  # an empty file name resolves to the images root itself
        return failed(uri, Status.MISSING, "the file name is empty (or names the images folder itself)")
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "image" + Path(path).suffix)
        try:
            with fs.open_input_file(path) as src, open(local, "wb") as dst:
                dst.write(src.read())
        except OSError as e:
            return failed(uri, Status.UNREADABLE, f"cannot read it ({e})")
        prep = prepare_path(mesher, local, options).lite()
    return replace(prep, path=uri)


def prepare_sources(mesher, options, sources: list[str]) -> list:
    """The CPU stages (decode, mesh, aligned crops) for each path or URI, in order; never raises per image."""
    from .batch import _prepare_safely
    from .pipeline import Status, failed

    out = []
    for src in sources:
        if not is_uri(src):
            out.append(_prepare_safely(mesher, options, src))
            continue
        try:
            out.append(_prepare_uri(mesher, options, src))
        except Exception as e:  # one image never takes the shard down
            out.append(failed(src, Status.ERROR, f"{type(e).__name__}: {e}"))
    return out


class MeshStage:
    """Stage 1 of the two-stage pipeline (``--device cuda``): CPU actors that decode, run the mesh and
    cut the aligned crops of a shard, so that the GPU actors only run networks."""

    def __init__(self, options):
        import cv2

        from .faces import FaceMesher

        cv2.setNumThreads(1)  # one core per actor
        self.options = options
        self.mesher = FaceMesher(max_faces=options.max_faces)

    def __call__(self, batch: dict) -> dict:
        import pickle

        import numpy as np

        preps, digests = [], []
        for src in batch["sources"]:
            sources = str(src).split("\n")
            digests.append(sources_digest(sources))  # before reading: a file replaced meanwhile then differs
            preps.append(pickle.dumps(prepare_sources(self.mesher, self.options, sources), protocol=5))
        return {"shard": np.asarray(batch["shard"]), "names": np.asarray(batch["names"], dtype=object),
                "prepared": np.asarray(preps, dtype=object), "digest": np.asarray(digests, dtype=object)}


class ShardScorer:
    """A Ray actor's work: models loaded once in ``__init__``, then one shard per call.

    A shard arrives as its sources (one stage: this actor decodes and runs the mesh too) or as the
    :class:`MeshStage`'s prepared crops (two stages). ``kind``: "predict" or "folder" (which rows
    to write). ``device``: "cpu" or "cuda"; the providers are chosen on the actor's own machine."""

    def __init__(self, options, kind: str, parts: str, batch: int = 64, device: str = "cpu", threads: int = 1):
        t = time.perf_counter()
        from .pipeline import Estimator
        from .session import select_providers

        providers = tuple(select_providers(device))
        # one actor per CPU: one ONNX Runtime thread each, idle threads sleeping (the mesh shares the core)
        self.est = Estimator(replace(options, providers=providers, threads=threads if device == "cpu" else 0,
                                     spin=device != "cpu"))
        self.kind, self.parts, self.batch = kind, parts, batch
        self.load_s = time.perf_counter() - t

    def __call__(self, batch: dict) -> dict:
        import pickle
        import resource

        import numpy as np

        out: dict[str, list] = {"shard": [], "rows": [], "failed": [], "seconds": [], "load_s": [], "rss_mb": [],
                                "pid": []}
        for i, shard in enumerate(batch["shard"]):
            t = time.perf_counter()
            names = str(batch["names"][i]).split("\n")
            if "prepared" in batch:
                preps = pickle.loads(batch["prepared"][i])  # noqa: S301 (written by this job's MeshStage)
                digest = str(batch["digest"][i])
            else:
                sources = str(batch["sources"][i]).split("\n")
                digest = sources_digest(sources)  # before reading: a file replaced meanwhile then differs
                preps = prepare_sources(self.est.mesher, self.est.options, sources)
            rows = self.finish(names, preps)
            write_part(self.parts, int(shard), rows, self.kind, digest)
            out["shard"].append(int(shard))
            out["rows"].append(len(rows))
            out["failed"].append(sum(r["status"] != "ok" for r in rows))
            out["seconds"].append(time.perf_counter() - t)
            out["load_s"].append(self.load_s)
            out["rss_mb"].append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # peak, KiB on Linux
            out["pid"].append(os.getpid())
        return {k: np.asarray(v) for k, v in out.items()}

    def finish(self, names: list[str], preps: list) -> list[dict[str, str]]:
        """The networks on prepared images, ``batch`` at a time, as rows."""
        make = predict_row if self.kind == "predict" else folder_row
        rows: list[dict[str, str]] = []
        for i in range(0, len(preps), self.batch):
            chunk = preps[i:i + self.batch]
            for name, an in zip(names[i:i + len(chunk)], self.est.batch_finish(chunk), strict=True):
                rows.append(make(name, an.result))
        return rows



def write_part(parts: str, shard: int, rows: list[dict[str, str]], kind: str, digest: str | None) -> None:
    """Write one shard's rows to ``parts/part-NNNNNN.parquet`` (a temporary name, then moved), with
    ``digest`` (:func:`sources_digest` of its files as they were read; None: not recorded) in its metadata."""
    import pyarrow.parquet as pq

    columns = PREDICT_COLUMNS if kind == "predict" else FOLDER_COLUMNS
    fs, where = filesystem(parts)
    final = f"{where}/{part_name(shard)}"
    tmp = f"{final}.tmp-{os.getpid()}"
    table = arrow_table(rows, columns)
    if digest is not None:
        table = table.replace_schema_metadata({INPUTS_KEY: digest.encode()})
    pq.write_table(table, tmp, filesystem=fs)
    fs.move(tmp, final)  # a part is there whole or not at all


def part_name(shard: int) -> str:
    return f"part-{shard:06d}.parquet"


def arrow_schema(columns: tuple[str, ...]):
    import pyarrow as pa

    kinds = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
    return pa.schema([(c, kinds[column_type(c)]) for c in columns])


def arrow_table(rows: list[dict[str, str]], columns: tuple[str, ...]):
    import pyarrow as pa

    return pa.table(typed(rows, columns), schema=arrow_schema(columns))


# ---------------------------------------------------------------- the driver


@dataclass
class RayRun:
    """What a Ray run did: rows written, rows failed, time and memory figures."""

    out: str
    rows: int
    failed: int
    skipped_shards: int
    shards: int
    startup_s: float  # ray.init until the cluster answers
    wall_s: float  # ray.init to the final file
    actors: int
    actor_load_s: list[float]
    actor_rss_mb: list[float]
    statuses: dict[str, int] = field(default_factory=dict)  # rows per status ("ok", "no_face", ...)


@dataclass
class Plan:
    """Where a job's parts go and which shards are still to do."""

    out: str
    parts: str  # OUT.parts, a local path or a URI
    kind: str
    shard_size: int
    n_shards: int
    todo: list[int]

    def shard(self, seq: list[str], k: int) -> list[str]:
        return seq[k * self.shard_size:(k + 1) * self.shard_size]


def plan(names: list[str], out: str, kind: str = "predict", shard_size: int = SHARD_SIZE,
         settings: dict | None = None, sources: list[str] | None = None) -> Plan:
    """Check ``out``, make ``OUT.parts`` and find the shards still to do.

    A part already there is kept when it holds exactly its shard's filenames; a part holding the
    first rows of its shard (an earlier run on fewer rows) is done again; any other part means
    another input, and :class:`EngineError` says to delete the parts folder. With ``sources`` (the
    paths or URIs read for ``names``), a kept part whose shard's files changed since they were read
    (:func:`sources_digest` against the part's record) is done again, with a line on stderr; a part
    without that record (an older occparse's) is kept unchecked, also said. ``settings`` (JSON-able
    values: weights, precision, options; see ``occparse.cli.common.run_settings``) are recorded in
    ``_job.json``; parts kept from a run with other settings raise :class:`EngineError` naming each
    difference (parts from before settings were recorded are resumed, with a line on stderr)."""
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    from .resumable import compare_settings

    if not out.lower().endswith(".parquet"):
        raise EngineError(f"--out {out}: the Ray engine writes Parquet; give a name ending in .parquet")
    parts = out + PARTS_SUFFIX if is_uri(out) else os.path.abspath(out) + PARTS_SUFFIX
    fs, parts_path = filesystem(parts)
    columns = PREDICT_COLUMNS if kind == "predict" else FOLDER_COLUMNS
    record = {"kind": kind, "shard_size": shard_size}
    if settings is not None:
        record["settings"] = settings
    n_shards = (len(names) + shard_size - 1) // shard_size
    p = Plan(out, parts, kind, shard_size, n_shards, [])
    try:
        fs.create_dir(parts_path, recursive=True)
        rec = f"{parts_path}/_job.json"
        old = None
        if fs.get_file_info(rec).type == pafs.FileType.File:
            with fs.open_input_stream(rec) as f:
                old = json.loads(f.read().decode())
            if not isinstance(old, dict) or {k: old.get(k) for k in ("kind", "shard_size")} != {
                    "kind": kind, "shard_size": shard_size}:
                was = (f"{old.get('kind')} job, {old.get('shard_size')} rows a shard" if isinstance(old, dict)
                       else "an unknown job")
                raise EngineError(f"{parts} was written by another kind of job or shard size ({was}; now {kind}, "
                                  f"{shard_size}); delete it to start over")
        if sources is not None and len(sources) != len(names):
            raise ValueError("names and sources differ in length")
        existing = fs.get_file_info(pafs.FileSelector(parts_path))
        done = set()
        changed: list[str] = []  # kept parts whose photos changed: deleted once the settings check passes
        unrecorded = 0
        for info in existing:
            if ".parquet.tmp-" in info.base_name:  # a killed run's half-written part
                fs.delete_file(info.path)
                continue
            if not (info.base_name.startswith("part-") and info.base_name.endswith(".parquet")):
                continue
            k = int(info.base_name[5:-8])
            schema = pq.read_schema(info.path, filesystem=fs)
            if schema.names != list(columns):
                raise EngineError(f"{info.path} holds other columns than this occparse writes (an older version's "
                                  f"part?); delete {parts} to start over")
            got = pq.read_table(info.path, filesystem=fs, columns=["filename"]).column("filename").to_pylist()
            want = p.shard(names, k)
            if got == want:
                stored = (schema.metadata or {}).get(INPUTS_KEY)
                if sources is not None and stored is None:
                    unrecorded += 1
                if sources is not None and stored is not None and stored.decode() != sources_digest(
                        p.shard(sources, k)):
                    changed.append(info.path)
                else:
                    done.add(k)
            elif got and len(got) < len(want) and want[:len(got)] == got:
                fs.delete_file(info.path)  # the input grew: this shard gets its new rows
            else:
                raise EngineError(f"{info.path} holds other files than this input's shard {k}; delete {parts} to "
                                  "start over")
        unchecked = False
        if done and settings is not None:
            stored = old.get("settings") if old is not None else None
            unchecked = stored is None
            note, diffs = compare_settings(stored, settings, parts)
            if diffs:
                raise EngineError(f"{parts} was written with other settings: {'; '.join(diffs)}. Rerun with the same "
                                  f"options to resume, or delete {parts} to start over")
            if note:
                print(note, file=sys.stderr)
        for path in changed:
            fs.delete_file(path)
        if changed:
            print(f"{len(changed)} kept shard(s) hold photos that changed since they were scored (size or "
                  "modification time): scoring them again", file=sys.stderr)
        if unrecorded:
            print(f"{unrecorded} kept shard(s) do not record their photos' sizes and times (written by an older "
                  "occparse): kept without checking them", file=sys.stderr)
        # nothing kept yet, or kept parts resumed unchecked: from now on this run's settings are the record
        if old is None or unchecked or (not done and old != record):
            with fs.open_output_stream(rec) as f:
                f.write(json.dumps(record).encode())
    except OSError as e:
        raise EngineError(f"--out {out}: cannot write beside it ({e})") from None
    p.todo = [k for k in range(n_shards) if k not in done]
    return p


def run(names: list[str], sources: list[str], out: str, options, kind: str = "predict", *,
        address: str | None = None, actors: int = 0, device: str = "cpu", batch: int = 64,
        shard_size: int = SHARD_SIZE, num_cpus: int | None = None, progress: bool = True,
        two_stage: bool | None = None, settings: dict | None = None) -> RayRun:
    """Score ``sources`` (paths or URIs; ``names`` are the filenames written) with Ray; see the module docstring.

    ``address``: a Ray cluster to join (None: ``$RAY_ADDRESS``, else a local Ray with ``num_cpus``).
    ``actors``: pool size (0: one per CPU of the cluster, or one per GPU with ``device="cuda"``).
    ``two_stage`` (default: with ``device="cuda"``): decoding and the mesh run in a separate pool of
    CPU actors (:class:`MeshStage`) that feeds the network actors, so a GPU actor is not held back
    by one core's mesh; on the CPU alone one stage is faster (no crops between processes).
    ``settings``: what decides the numbers (see :func:`plan`), checked against kept parts.
    Raises :class:`EngineError` for an output that cannot be written, parts of another input, or parts
    written with other settings."""
    if len(names) != len(sources):
        raise ValueError("names and sources differ in length")
    pl = plan(names, out, kind, shard_size, settings, sources)
    todo, n_shards, parts_uri = pl.todo, pl.n_shards, pl.parts
    if len(todo) < n_shards:
        print(f"resuming: {n_shards - len(todo)} of {n_shards} shards already in {parts_uri}", file=sys.stderr)

    t0 = time.perf_counter()
    loads: list[float] = []
    rss: dict[int, float] = {}
    n_actors = 0
    startup = 0.0
    if todo:
        ray = require_ray()
        if not ray.is_initialized():
            addr = address or os.environ.get("RAY_ADDRESS") or None
            ray.init(address=addr, num_cpus=None if addr else num_cpus, include_dashboard=False,
                     log_to_driver=False, configure_logging=False)
        startup = time.perf_counter() - t0
        res = ray.cluster_resources()
        per = "GPU" if device == "cuda" else "CPU"
        if device == "cuda" and not res.get("GPU"):
            raise EngineError("--device cuda: the Ray cluster has no GPUs")
        n_actors = max(1, min(actors or int(res.get(per, 1)), len(todo)))
        if os.environ.get("OCCPARSE_VERBOSE", "") in ("", "0"):  # Ray Data's per-run INFO lines are noise here
            import logging

            logging.getLogger("ray.data").setLevel(logging.WARNING)
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        items = [{"shard": k, "names": "\n".join(pl.shard(names, k)), "sources": "\n".join(pl.shard(sources, k))}
                 for k in todo]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        if two_stage is None:
            two_stage = device == "cuda"
        if two_stage:
            # decode + mesh on CPU actors (one per CPU left over), networks on the GPU actors: each side scales alone
            n_mesh = max(1, min(int(res.get("CPU", 1)) - (n_actors if device == "cpu" else 0) or 1, len(todo)))
            ds = ds.map_batches(MeshStage, batch_size=1, compute=ray.data.ActorPoolStrategy(size=n_mesh), num_cpus=1,
                                fn_constructor_kwargs={"options": options})
        ds = ds.map_batches(
            ShardScorer, batch_size=1, compute=ray.data.ActorPoolStrategy(size=n_actors),
            num_cpus=1 if device == "cpu" else 0, num_gpus=1 if device == "cuda" else 0,
            fn_constructor_kwargs={"options": options, "kind": kind, "parts": parts_uri, "batch": batch,
                                   "device": device},
        )
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(names), initial=len(names) - sum(len(pl.shard(names, k)) for k in todo),
                       desc=f"{kind} (ray)", unit="img")
        try:
            for r in ds.iter_rows():
                loads.append(float(r["load_s"]))
                rss[int(r["pid"])] = max(rss.get(int(r["pid"]), 0.0), float(r["rss_mb"]))
                if bar is not None:
                    bar.update(int(r["rows"]))
        except ray.exceptions.RayError as e:  # an actor that could not start or died: one line, parts kept
            lines = [x.strip() for x in str(e).strip().splitlines() if x.strip()]
            raise EngineError(f"the Ray job failed ({lines[-1] if lines else type(e).__name__}); finished shards are "
                              f"kept in {parts_uri}: rerun the same command to resume") from None
        finally:
            if bar is not None:
                bar.close()
    rows, statuses = merge_parts(parts_uri, out, n_shards, kind)
    failed = rows - statuses.get("ok", 0)
    return RayRun(out, rows, failed, n_shards - len(todo), n_shards, startup, time.perf_counter() - t0, n_actors,
                  sorted(set(loads)), sorted(rss.values()), statuses)


def merge_parts(parts_uri: str, out: str, n_shards: int, kind: str) -> tuple[int, dict[str, int]]:
    """Stream the parts, in shard order, into ``out`` (via a temporary name), then remove the parts folder.

    Returns (rows, rows per status)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    columns = PREDICT_COLUMNS if kind == "predict" else FOLDER_COLUMNS
    fs, parts = filesystem(parts_uri)
    _, out_path = filesystem(out)
    tmp = out_path + ".tmp"
    rows = 0
    statuses: dict[str, int] = {}
    with pq.ParquetWriter(tmp, arrow_schema(columns), filesystem=fs) as w:
        for k in range(n_shards):
            p = f"{parts}/{part_name(k)}"
            try:
                t = pq.read_table(p, filesystem=fs, schema=arrow_schema(columns))
            except FileNotFoundError:
                raise EngineError(f"{p} is missing; rerun the same command to finish") from None
            rows += t.num_rows
            for v in pc.value_counts(t.column("status")).to_pylist():
                statuses[v["values"]] = statuses.get(v["values"], 0) + int(v["counts"])
            w.write_table(t)
    fs.move(tmp, out_path)
    fs.delete_dir(parts)
    return rows, statuses
