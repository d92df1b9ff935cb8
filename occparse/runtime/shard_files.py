"""The Ray engine's files (``--engine ray``): inputs and outputs on local paths or any file system
pyarrow opens (``s3://``, ``gs://``, ``hdfs://``, ``file://``), and the shards' part files.

A job's rows are cut into shards of ``shard_size`` consecutive rows; each shard's rows are written to
``OUT.parts/part-NNNNNN.parquet`` (:func:`write_part`: a temporary name, then moved), with what its
photos were when they were read (:func:`sources_digest`: size and modification time). :func:`plan` finds
the shards a rerun still has to do: a part is kept when it holds exactly its shard's filenames, its
photos are unchanged and the settings recorded in ``OUT.parts/_job.json`` match; parts of another input
or settings are refused (:class:`EngineError`), a part whose photos changed is done again.
:func:`merge_parts` streams the parts, in input order, into ``OUT``. pyarrow only; no Ray here.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import OccparseError
from .rows import FOLDER_COLUMNS, PREDICT_COLUMNS, column_type, typed

SHARD_SIZE = 256  # rows per shard: what a killed run can lose per actor, and the unit of work
PARTS_SUFFIX = ".parts"
#: a part's Parquet metadata key for :func:`sources_digest` of its shard's files, as read
INPUTS_KEY = b"occparse.inputs"
STAT_THREADS = 16  # object stores answer one file's size and time per request: ask several at once


class EngineError(OccparseError, RuntimeError):
    """The Ray engine cannot run this job (Ray missing, bad input or output, another run's parts)."""


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


def _stamp(source: str, opened: dict) -> str:
    """One source's line of :func:`sources_digest`: its size and modification time, or ``-`` when it is
    missing, not a file or not a location at all. ``opened``: file systems already opened, by URI prefix.
    Raises OSError when a URI's file system cannot answer (a network error, no access)."""
    import stat

    import pyarrow.fs as pafs

    if not is_uri(source):
        try:
            st = os.stat(source)
        except (OSError, ValueError):  # what a local read would meet too: the row says it
            return "-"
        return f"{st.st_size}\0{st.st_mtime_ns}" if stat.S_ISREG(st.st_mode) else "-"
    try:
        fs, path = _on_filesystem(source, opened)
    except (EngineError, ValueError):
        return "-"
    info = fs.get_file_info(path)
    return f"{info.size}\0{info.mtime_ns}" if info.type == pafs.FileType.File else "-"


def _on_filesystem(uri: str, opened: dict):
    """:func:`filesystem` of a URI, opening one file system per scheme and host: (file system, path)."""
    scheme, rest = uri.split("://", 1)
    key = f"{scheme}://{rest.split('/', 1)[0]}"
    if key in opened:
        fs, prefix = opened[key]
        if prefix is not None and uri.startswith(prefix):
            return fs, uri[len(prefix):]
    fs, path = filesystem(uri)
    # the part of the URI that is not the path (``s3://`` keeps the bucket in the path, ``hdfs://host`` does not)
    opened[key] = (fs, uri[:len(uri) - len(path)] if path and uri.endswith(path) else None)
    return fs, path


def sources_digest(sources: list[str]) -> str:
    """A short digest (32 hex characters) of what the files at ``sources`` (local paths or URIs, as the
    actors read them) are now: each one's size and modification time, in order, or that it is missing or
    not a file. A file replaced under the same name changes it; the same files named from another working
    folder do not. A local path costs a ``stat``; a URI one request to its store (``STAT_THREADS`` at once).
    Raises OSError when a store cannot answer for one of them."""
    import contextlib
    import hashlib

    opened: dict = {}
    if any(is_uri(s) for s in sources):
        from concurrent.futures import ThreadPoolExecutor

        with contextlib.suppress(EngineError, ValueError):  # the first store opened before the threads share it
            _on_filesystem(next(s for s in sources if is_uri(s)), opened)
        with ThreadPoolExecutor(max(1, min(STAT_THREADS, len(sources)))) as pool:
            stamps = list(pool.map(lambda s: _stamp(s, opened), sources))
    else:
        stamps = [_stamp(s, opened) for s in sources]
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()[:32]


def read_digest(sources: list[str]) -> str | None:
    """:func:`sources_digest` as an actor takes it before reading a shard: None when a store cannot answer
    (the part is then written without the record, and a rerun keeps it unchecked, saying so)."""
    try:
        return sources_digest(sources)
    except OSError:
        return None


def write_part(parts: str, shard: int, rows: list[dict[str, str]], kind: str, digest: str | None) -> None:
    """Write one shard's rows to ``parts/part-NNNNNN.parquet`` (a temporary name, then moved), with
    ``digest`` (:func:`sources_digest` of its files as they were read; None: not recorded) in its metadata."""
    import pyarrow.parquet as pq

    columns = job_columns(kind)
    fs, where = filesystem(parts)
    final = f"{where}/{part_name(shard)}"
    tmp = f"{final}.tmp-{os.getpid()}"
    table = arrow_table(rows, columns)
    if digest is not None:
        table = table.replace_schema_metadata({INPUTS_KEY: digest.encode()})
    pq.write_table(table, tmp, filesystem=fs)
    fs.move(tmp, final)  # a part is there whole or not at all


def job_columns(kind: str) -> tuple[str, ...]:
    """The columns a job of ``kind`` ("predict" or "folder") writes, in order."""
    return PREDICT_COLUMNS if kind == "predict" else FOLDER_COLUMNS


def part_name(shard: int) -> str:
    return f"part-{shard:06d}.parquet"


def arrow_schema(columns: tuple[str, ...]):
    import pyarrow as pa

    kinds = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64()}
    return pa.schema([(c, kinds[column_type(c)]) for c in columns])


def arrow_table(rows: list[dict[str, str]], columns: tuple[str, ...]):
    import pyarrow as pa

    return pa.table(typed(rows, columns), schema=arrow_schema(columns))


# ---------------------------------------------------------------- resuming and merging


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
    if sources is not None and len(sources) != len(names):
        raise ValueError("names and sources differ in length")
    parts = out + PARTS_SUFFIX if is_uri(out) else os.path.abspath(out) + PARTS_SUFFIX
    fs, parts_path = filesystem(parts)
    columns = job_columns(kind)
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
        existing = fs.get_file_info(pafs.FileSelector(parts_path))
        kept: list[tuple[int, str, bytes | None]] = []  # parts of this input: shard, path, their photos' record
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
                kept.append((k, info.path, (schema.metadata or {}).get(INPUTS_KEY)))
            elif got and len(got) < len(want) and want[:len(got)] == got:
                fs.delete_file(info.path)  # the input grew: this shard gets its new rows
            else:
                raise EngineError(f"{info.path} holds other files than this input's shard {k}; delete {parts} to "
                                  "start over")
        unchecked = False
        if kept and settings is not None:
            stored = old.get("settings") if old is not None else None
            unchecked = stored is None
            note, diffs = compare_settings(stored, settings, parts)
            if diffs:
                raise EngineError(f"{parts} was written with other settings: {'; '.join(diffs)}. Rerun with the same "
                                  f"options to resume, or delete {parts} to start over")
            if note:
                print(note, file=sys.stderr)
        # then the photos, once the rest holds: a kept part whose photos changed is done again
        done, changed, unrecorded = set(), 0, 0
        for k, path, photos in kept:
            if sources is not None and photos is not None and photos.decode() != _digest_now(p.shard(sources, k), path):
                fs.delete_file(path)
                changed += 1
                continue
            unrecorded += int(sources is not None and photos is None)
            done.add(k)
        if changed:
            print(f"{changed} kept shard(s) hold photos that changed since they were scored (size or "
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


def _digest_now(sources: list[str], part: str) -> str:
    try:
        return sources_digest(sources)
    except OSError as e:  # a store that cannot answer now: never taken for a change (the part is kept on disk)
        raise EngineError(f"cannot check whether the photos of {part} changed ({e}); rerun to resume") from None


def merge_parts(parts_uri: str, out: str, n_shards: int, kind: str) -> tuple[int, dict[str, int]]:
    """Stream the parts, in shard order, into ``out`` (via a temporary name), then remove the parts folder.

    Returns (rows, rows per status)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    columns = job_columns(kind)
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
