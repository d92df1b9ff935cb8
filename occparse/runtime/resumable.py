"""Resumable batch output: one row per input, in order, never a truncated file.

Rows are appended to ``OUT.partial`` and flushed to disk every few rows; on success the partial
file is renamed to ``OUT`` in one step. A rerun after a crash reads the complete rows of the
partial file (a torn last line is dropped) and carries on from there; the run's settings and what its
input files were are kept beside the rows, so that a resume or a rerun never mixes two definitions
or keeps a row of a photo that changed.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from .batch import BatchInputError

PRED_COLUMNS = ("filename", "FaceOcclusion", "status")


class StalePartialError(BatchInputError):
    """``OUT.partial`` was written for other inputs or with other settings; ``reason`` says which, without the
    advice of the message (what to do about it differs with the options given)."""

    def __init__(self, reason: str, advice: str):
        self.reason = reason
        super().__init__(f"{reason}{advice}")


class ResumableWriter:
    """Append-only CSV writer over ``OUT.partial``; ``finish()`` renames it to ``OUT``.

    ``settings``: what decides the numbers of the run (weights, precision, options; JSON-able values),
    kept beside the rows in ``OUT.partial.json`` so that a resume with other settings is refused
    (:meth:`resume_check`) instead of mixing two definitions in one output."""

    def __init__(self, out: str | Path, columns: tuple[str, ...] = PRED_COLUMNS, flush_every: int = 16,
                 settings: dict | None = None, inputs_digest: str | None = None, renamable: bool = False):
        self.out = Path(out)
        #: the rows' ``filename`` is a path to the input (folder mode), so the same files named another way
        #: (``../photos`` and ``/data/photos``) are the same inputs; not for ``predict``, whose names are the
        #: keys of the user's CSV
        self.renamable = renamable
        #: set by complete_rows: the complete OUT names the same files another way (its first name, for the user)
        self.named_otherwise: str | None = None
        #: what the input files were when this run started (:func:`inputs_digest`), kept in the record of a
        #: complete output so that a rerun after a photo changed computes it again
        self.inputs_digest = inputs_digest
        self.partial = self.out.with_name(self.out.name + ".partial")
        self.sidecar = self.partial.with_name(self.partial.name + ".json")
        self.columns = columns
        self.flush_every = flush_every
        self.settings = settings
        self.done = self._read_done()
        self._f = None
        self._pending = 0
        self.written = 0  # rows written by this run
        #: a line for the user about the resume (a partial file from before settings were stored), or None
        self.note: str | None = None
        #: why a complete OUT is computed again (other settings or inputs), set by complete_rows
        self.stale: str | None = None

    def _read_done(self) -> list[dict[str, str]]:
        if not self.partial.exists():
            return []
        text = self.partial.read_text(encoding="utf-8")
        if not text.endswith("\n"):  # torn last line from a crash: drop it
            text = text[: text.rfind("\n") + 1]
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and set(rows[0]) != set(self.columns):
            raise BatchInputError(f"{self.partial} has other columns; delete it to start over")
        # rewrite without the torn line so appends start on a clean line
        self._rewrite(rows)
        return rows

    def _rewrite(self, rows: list[dict[str, str]]) -> None:
        tmp = self.partial.with_name(self.partial.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(self.columns), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.partial)

    def _sidecar_record(self) -> dict | None:
        """The partial run's ``OUT.partial.json`` as a dict (``{}`` when it holds something else); None when there is
        none. Raises BatchInputError when it cannot be read."""
        import json

        try:
            raw = json.loads(self.sidecar.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise BatchInputError(f"{self.sidecar} cannot be read ({e}); delete {self.partial} and {self.sidecar} to "
                                  "start over") from None
        return raw if isinstance(raw, dict) else {}

    def _stored_settings(self) -> dict | None:
        record = self._sidecar_record()
        return None if record is None else record.get("settings", {})

    def _check_settings(self) -> None:
        """Refuse to resume rows computed under other settings, naming each difference."""
        if self.settings is None or not self.done:
            return
        self.note, diffs = compare_settings(self._stored_settings(), self.settings, str(self.partial))
        if diffs:
            raise StalePartialError(
                f"{self.partial} was written with other settings: {'; '.join(diffs)}",
                f". Rerun with the same options to resume, or add --overwrite (or delete {self.partial} and "
                f"{self.sidecar}) to start over")

    def _write_settings(self, path: Path | None = None) -> None:
        """Record this run's settings atomically in ``path`` (default: the ``OUT.partial.json`` sidecar)."""
        import json

        if self.settings is None:
            return
        record = {"format": 1, "settings": self.settings}
        if self.inputs_digest is not None:
            record["inputs"] = self.inputs_digest
        path = path or self.sidecar
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    def resume_check(self, expected: list[str]) -> int:
        """How many input rows are already done; refuses a partial file from another input, or one whose stored
        settings differ from this run's (:class:`BatchInputError` naming each difference).

        ``expected``: the input names in order, as given (file names that are not valid UTF-8 are compared
        as written, see :func:`occparse.runtime.rows.utf8_text`)."""
        from .rows import utf8_text

        same: bool | None = None  # asked once, at the first row named otherwise
        renamed = False
        for i, r in enumerate(self.done):
            name = utf8_text(expected[i]) if i < len(expected) else None
            if r["filename"] == name:
                continue
            if name is not None and same is None:
                same = self._same_files()
            if name is None or not same:
                raise StalePartialError(
                    f"{self.partial} was written for other inputs (its row {i + 1} is {r['filename']!r}, this run's "
                    f"is {name if name is not None else 'missing'!r}): the list of inputs changed since it was "
                    "interrupted",
                    "; rerun with the same inputs to resume, or delete it to start over")
            r["filename"] = name  # the same files named another way: one output, one way of naming them
            renamed = True
        self._check_settings()
        self._check_inputs()
        if renamed and self.done:
            self._rewrite(self.done)
            self.note = ((self.note + "; ") if self.note else "") + (
                "the same files named another way: the rows already written now name them as this run does")
        return len(self.done)

    def _same_files(self) -> bool:
        """Whether the inputs named otherwise than in the stored run (``../photos`` against ``/data/photos``)
        are the same files in the same order, unchanged: the stored digest of the run (resolved paths, sizes,
        modification times) equals this run's."""
        if self.inputs_digest is None or not self.renamable:
            return False
        try:
            return (self._sidecar_record() or {}).get("inputs") == self.inputs_digest
        except BatchInputError:
            return False

    def _check_inputs(self) -> None:
        """A resume over input files that changed since the interrupted run starts over, saying so: the rows
        already written may be of photos that are no longer there as they were, and a resumed output must
        never keep stale numbers."""
        if self.inputs_digest is None or not self.done:
            return
        try:
            before = (self._sidecar_record() or {}).get("inputs")
        except BatchInputError:  # an unreadable record: the settings check says so where it matters
            before = None
        if before is not None and before != self.inputs_digest:
            self.note = ((self.note + "; ") if self.note else "") + (
                "input files changed since the interrupted run (a size or modification time differs, or a file "
                f"came or went): the {len(self.done)} rows written before are computed again")
            self.done = []
            self._rewrite([])

    def start_over(self) -> None:
        """Discard ``OUT.partial`` and its settings record (the user asked to compute the output again, e.g.
        ``--overwrite`` over a partial run with other settings); ``OUT`` itself stays until :meth:`finish`."""
        self.close()
        self.done = []
        self.note = None
        for p in (self.partial, self.sidecar):
            p.unlink(missing_ok=True)

    def write(self, row: dict[str, str]) -> None:
        from .rows import utf8_text

        if self._f is None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            new = not self.partial.exists()
            if new or not self.done or not self.sidecar.exists():  # the settings these rows are computed with
                self._write_settings()
            self._f = open(self.partial, "a", newline="", encoding="utf-8")  # noqa: SIM115 (held open across calls)
            self._w = csv.DictWriter(self._f, fieldnames=list(self.columns), lineterminator="\n")
            if new:
                self._w.writeheader()
        # valid UTF-8 always: one odd name must not stop the run with a half-written partial file
        self._w.writerow({k: utf8_text(v) if isinstance(v, str) else v for k, v in row.items()})
        self._pending += 1
        self.written += 1
        if self._pending >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._pending = 0

    def finish(self) -> Path:
        """All rows written: make the output appear in one step."""
        if self._f is None and not self.partial.exists():
            self._rewrite([])
        self.close()
        os.replace(self.partial, self.out)
        self.drop_settings()
        return self.out

    @property
    def record(self) -> Path:
        """``OUT.occparse.json``: the settings a complete output was computed with (see :meth:`complete_rows`)."""
        return self.out.with_name(self.out.name + ".occparse.json")

    def drop_settings(self) -> None:
        """The output is complete: its settings move from ``OUT.partial.json`` to :attr:`record`, so that a rerun
        can tell whether the output is still current."""
        self._write_settings(self.record)
        self.sidecar.unlink(missing_ok=True)

    def complete_rows(self, expected: list[str]) -> tuple[int, int] | None:
        """(rows, failed rows) of a complete ``OUT`` that already holds exactly these inputs (in order), computed
        with this run's settings; None when there is none, or it is from other inputs or settings, or cannot be
        read (then a rerun recomputes it, and :attr:`stale` says why when ``OUT`` is occparse's)."""
        import json

        from .rows import utf8_text

        self.stale = None
        if self.partial.exists() or not self.out.is_file() or self.settings is None:
            return None
        try:
            kept = json.loads(self.record.read_text(encoding="utf-8"))
            stored = kept.get("settings")
            if self.out.suffix.lower() == ".parquet":
                import pyarrow.parquet as pq

                table = pq.read_table(self.out, columns=["filename", "status"])
                names = [str(v) for v in table.column("filename").to_pylist()]
                statuses = [str(v) for v in table.column("status").to_pylist()]
            else:
                with open(self.out, newline="", encoding="utf-8") as f:
                    rows = list(csv.DictReader(f))
                names, statuses = [r["filename"] for r in rows], [r["status"] for r in rows]
        except (OSError, ValueError, KeyError, AttributeError, ImportError):
            return None
        if stored != json.loads(json.dumps(self.settings)):
            _, diffs = compare_settings(stored, self.settings, str(self.out))
            self.stale = f"{self.out} was computed with other settings ({'; '.join(diffs)}): computing it again"
            return None
        if names != [utf8_text(e) for e in expected]:
            if not (self.renamable and self.inputs_digest is not None and kept.get("inputs") == self.inputs_digest):
                self.stale = f"{self.out} holds other inputs ({len(names)} rows): computing it again"
                return None
            self.named_otherwise = names[0] if names else None  # the same files, named otherwise
        if self.inputs_digest is not None and kept.get("inputs") != self.inputs_digest:
            self.stale = (f"{self.out}: input files changed since it was computed (a size or modification time "
                          "differs, or a file came or went): computing it again" if kept.get("inputs") else
                          f"{self.out} does not record its input files (an older occparse): computing it again")
            return None
        return len(names), sum(st != "ok" for st in statuses)

    def close(self) -> None:
        if self._f is not None:
            self.flush()
            self._f.close()
            self._f = None


def foreign_table(path: Path) -> bool:
    """Whether ``path`` exists but is not an occparse batch output (no ``filename`` and ``status`` columns in
    its header; not a regular file; not CSV or Parquet at all). False when there is no such file."""
    from .io import is_regular_file

    if not is_regular_file(path):
        return path.exists()
    try:
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            header = list(pq.read_schema(path).names)
        else:
            with open(path, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), [])
    except Exception:  # not text, not Parquet (pyarrow raises its own errors): certainly not ours
        return True
    return not {"filename", "status"} <= set(header)


def inputs_digest(paths) -> str:
    """A short digest of what the files at ``paths`` are now: each one's resolved path (so that ``../photos/a.jpg``
    and ``/data/photos/a.jpg`` are the same input), size and modification time (or that it is missing), in
    order. A ``stat`` per file, and a path resolution per folder (a linked file is resolved on its own); a
    photo replaced under the same name changes it."""
    import hashlib

    h = hashlib.sha256()
    folders: dict[str, str] = {}

    def where(p) -> str:
        """The resolved path: the folder resolved once (thousands of files share a few folders), a link itself."""
        try:
            if os.path.islink(p):
                return os.path.realpath(p)
        except (OSError, ValueError):
            pass
        head, tail = os.path.split(os.fspath(p))
        if head not in folders:
            folders[head] = os.path.realpath(head or ".")
        return os.path.join(folders[head], tail)

    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{where(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
        except (OSError, ValueError):
            h.update(f"{where(p)}\0-\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()[:32]


def _show(v) -> str:
    return "(not set)" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def compare_settings(stored: dict | None, now: dict, where: str) -> tuple[str | None, list[str]]:
    """A resume's settings check, for both engines: (a note for the user or None, the differences).

    ``stored``: the record kept beside the rows of ``where`` (None: none was kept, as by an older
    occparse). Each difference reads 'name OLD (now NEW)'; a setting the record does not hold is not
    compared, and the note says so."""
    if stored is None:
        return (f"{where} has no record of its settings (written by an older occparse, or the record was deleted); "
                "resuming without checking that they match this run's"), []
    missing = [k for k in now if k not in stored]
    note = f"{where} does not record {', '.join(missing)} (an older occparse); not checked" if missing else None
    keys = [k for k in now if k in stored] + [k for k in stored if k not in now]
    return note, [f"{k} {_show(stored.get(k))} (now {_show(now.get(k))})" for k in keys if stored.get(k) != now.get(k)]
