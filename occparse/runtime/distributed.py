"""The Ray Data engine of ``occparse predict`` and folder mode (``--engine ray``).

The input rows (a CSV or Parquet file with a ``filename`` column, or the files under folders;
local paths or any URI that pyarrow's file systems understand, e.g. ``s3://``, ``gs://``,
``hdfs://``) are cut into shards of ``shard_size`` consecutive rows. Ray Data sends the shards
to a pool of actors (``map_batches`` with a callable class): each actor loads the models once,
then for each shard decodes its images, runs the mesh, runs the networks batched, and writes the
shard's rows to ``OUT.parts/part-NNNNNN.parquet`` (written under a temporary name, then moved).
When every shard is there, the driver streams the parts, in input order, into ``OUT`` (again
via a temporary name) and removes ``OUT.parts``.

Resuming: a rerun of the same command skips the shards whose part is kept, so a killed run loses at
most the shards in flight; :mod:`occparse.runtime.shard_files` holds the parts, the checks that keep or
redo them (another input or settings refused, a shard whose photos changed done again) and the merge.

The rows are those of the local engine (:mod:`occparse.runtime.rows`), with the same per-row status.
Ray is imported only here, only when this engine is asked for.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .rows import folder_row, predict_row
from .shard_files import (
    SHARD_SIZE,
    EngineError,
    filesystem,
    is_uri,
    merge_parts,
    plan,
    read_digest,
    write_part,
)

RAY_MISSING = 'the Ray engine needs Ray: pip install "occparse[ray]" (or "ray[data]==2.60.0")'


def require_ray():
    """``import ray`` (with Ray Data), or :class:`EngineError` with the one-line install hint."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise EngineError(RAY_MISSING) from None
    return ray


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
            digests.append(read_digest(sources) or "")  # before reading ("": no record); see ShardScorer
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
                digest = str(batch["digest"][i]) or None
            else:
                sources = str(batch["sources"][i]).split("\n")
                digest = read_digest(sources)  # before reading: a file replaced meanwhile then differs
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


