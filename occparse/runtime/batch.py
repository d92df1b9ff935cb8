"""Batch scoring: the input CSV, and the worker processes that decode and mesh photos while the networks
run on batches of crops (:func:`analyses`). The resumable output is :mod:`occparse.runtime.resumable`."""

from __future__ import annotations

import csv
import multiprocessing as mp
import signal
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from ..errors import DataError


class BatchInputError(DataError, ValueError):
    """The input CSV cannot be used."""


@dataclass(frozen=True)
class BatchRow:
    filename: str
    path: Path


def read_input_csv(csv_path: str | Path, images_root: str | Path) -> list[BatchRow]:
    """Rows of a challenge-style CSV (only ``filename`` is needed), resolved against ``images_root``."""
    from .io import read_csv_rows

    p = Path(csv_path)
    rows = read_csv_rows(p, BatchInputError)
    if not rows:  # header only, or an empty file: the header alone decides
        with open(p, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
        if "filename" not in header:
            raise BatchInputError(
                f"{p}: {'file is empty; it ' if not header else ''}needs a 'filename' column "
                f"(the challenge contract is filename,FaceOcclusion,gender){_header_hint(header)}")
    if rows and "filename" not in rows[0]:
        raise BatchInputError(f"{p}: needs a 'filename' column (the challenge contract is filename,FaceOcclusion,gender)"
                              f"{_header_hint([k for k in rows[0] if k is not None])}")
    for i, r in enumerate(rows):
        if any(c in (r.get("filename") or "") for c in "\r\n"):  # a quote opened and never closed swallows lines
            raise BatchInputError(f"{p}: row {i + 1}'s file name holds a line break (a quote that is never closed?): "
                                  f"{(r.get('filename') or '')[:60]!r}")
    root = Path(images_root)
    # one output row per input row: an empty name is kept (its row says 'missing'), never dropped
    return [BatchRow(r.get("filename") or "", root / (r.get("filename") or "")) for r in rows]


def _header_hint(header: list[str]) -> str:
    """The columns a CSV without 'filename' has, and the likely slip: another spelling, or another delimiter."""
    if not header:
        return ""
    hint = f"; found the column(s) {', '.join(repr(h) for h in header)}"
    near = [h for h in header if h.strip().lower() == "filename"]
    if near:
        return hint + f": the name must be exactly 'filename' (lower case, no spaces), not {near[0]!r}"
    if len(header) == 1:
        for sep, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
            if sep in header[0]:
                return hint + f": the file looks separated by {name}; save it with commas"
    return hint


_WORKER = None
_STOP = None


def _init_worker(options, stop=None) -> None:
    global _WORKER, _STOP
    import cv2

    from .faces import FaceMesher

    # Ctrl-C is the parent's to handle: a worker killed by it while holding the pool's task-queue lock
    # would leave the parent waiting on that lock forever when it shuts the pool down
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cv2.setNumThreads(1)
    _WORKER = (FaceMesher(max_faces=options.max_faces), options)
    _STOP = stop


def _prepare_safely(mesher, options, path: str):
    """prepare_path, with any exception turned into an error row: one image never takes the batch down."""
    from .pipeline import Status, failed, prepare_path

    try:
        return prepare_path(mesher, path, options).lite()
    except Exception as e:
        return failed(path, Status.ERROR, f"{type(e).__name__}: {e}")


def _prepare_in_worker(path: str):
    if _STOP is not None and _STOP.is_set():  # the parent is stopping: skip the queued work quickly
        return None
    return _prepare_safely(*_WORKER, path)


def worker_pool(options, workers: int):
    """A pool of ``workers`` processes, each with its own FaceMesher (MediaPipe is not fork-safe: spawn).
    The pool's ``occparse_stop`` event, once set, makes the workers skip every task still queued."""
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(options, stop))
    pool.occparse_stop = stop
    return pool


#: Longest wait (seconds) for the workers' last results when the reading stops early (Ctrl-C).
STOP_WAIT_S = 30.0


def _wind_down(pool, pending: deque) -> None:
    """Let the queued tasks end before the pool is shut down. Why: a worker still writing a large result
    (crops) into the full result pipe holds its write lock, and ``Pool.terminate`` waits on that lock
    once its result reader has stopped: the parent hung on Ctrl-C. Skipped tasks return at once."""
    import time

    stop = getattr(pool, "occparse_stop", None)
    if stop is None:
        return
    stop.set()
    deadline = time.monotonic() + STOP_WAIT_S
    for r in pending:
        r.wait(max(0.0, deadline - time.monotonic()))


def prepared(est, paths: list[Path], workers: int = 1, max_inflight: int = 256, pool=None) -> Iterator:
    """The CPU stages (decode, mesh, align) for each path, in order, in ``workers`` processes (or here).

    At most ``max_inflight`` images are queued or finished-but-unread at once, so memory stays
    flat even when the networks downstream are slower than the workers (``Pool.imap`` would
    buffer every finished result). ``pool``: an open :func:`worker_pool` to reuse."""
    if pool is None and workers <= 1:
        for p in paths:
            yield _prepare_safely(est.mesher, est.options, str(p))
        return
    if pool is None:
        with worker_pool(est.options, workers) as own:
            yield from prepared(est, paths, workers, max_inflight, own)
        return
    todo = iter(paths)
    pending = deque(pool.apply_async(_prepare_in_worker, (str(p),)) for p in islice(todo, max_inflight))
    try:
        while pending:
            result = pending[0].get()
            pending.popleft()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.apply_async(_prepare_in_worker, (str(nxt),)))
            yield result
    except BaseException:  # Ctrl-C, or the reader stopped early (GeneratorExit): end the queued work first
        _wind_down(pool, pending)
        raise


#: Longest wait (seconds) before a part-filled network batch runs anyway, so that rows reach the output
#: (and survive Ctrl-C) every few seconds whatever the folder size and ``batch_size``.
MAX_BATCH_WAIT_S = 2.0


def analyses(est, paths: list[Path], workers: int = 1, batch_size: int = 64, pool=None,
             max_wait_s: float = MAX_BATCH_WAIT_S) -> Iterator:
    """ImageAnalysis for each path, in order. Decoding and the mesh run in ``workers`` processes;
    the networks run here on batches of ``batch_size`` crops, or on the crops gathered in
    ``max_wait_s`` seconds when fewer arrive (so finished rows are never held back long). Memory stays
    flat: a bounded number of images is in flight (see :func:`prepared`)."""
    import time

    buf = []
    started = 0.0
    for prep in prepared(est, paths, workers, pool=pool):
        if not buf:
            started = time.monotonic()
        buf.append(prep)
        if len(buf) >= batch_size or time.monotonic() - started >= max_wait_s:
            yield from est.batch_finish(buf)
            buf = []
    if buf:
        yield from est.batch_finish(buf)
