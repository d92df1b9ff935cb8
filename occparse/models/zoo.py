"""The registry of shipped models: file, pinned sha256, model card; and users' own paths.

``weights/manifest.json`` lists each model occparse ships. A shipped file whose checksum does
not match its pin is refused (a half-copied or swapped file would give silently wrong numbers).
A user path is taken as given, with its own spec.

Where the models are (:func:`weights_dir`): a folder given explicitly (``--weights DIR``,
``EstimatorOptions(weights=...)``), else ``$OCCPARSE_WEIGHTS``, else the copy installed with the
package (the wheel holds the repository's ``weights/`` folder as the package data
``occparse/weights_data``), else the checkout's ``weights/`` beside the source (editable installs
and ``PYTHONPATH`` use).

The fp32 regressors are not in the repository (size policy, see docs/training.md); a manifest entry whose
file is absent but whose ``NAME_int8`` copy is present is *not shipped*, not broken, and
``--precision fp32`` runs the int8 regressor in its place.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError
from ..runtime.parsing import ParserSpec


class WeightsError(ModelError, RuntimeError):
    """A model file is missing, unlisted or fails its checksum."""


#: The environment variable that points occparse at another weights folder.
WEIGHTS_ENV = "OCCPARSE_WEIGHTS"


def packaged_weights_dir() -> Path:
    """The weights installed with occparse: the wheel's ``occparse/weights_data``, else the checkout's ``weights/``.

    Raises :class:`WeightsError` when neither holds a ``manifest.json``."""
    from importlib import resources

    pkg = Path(str(resources.files("occparse")))
    for cand in (pkg / "weights_data", pkg.parent / "weights"):
        if (cand / "manifest.json").is_file():
            return cand
    raise WeightsError(f"no weights installed with occparse (looked in {pkg / 'weights_data'} and {pkg.parent / 'weights'}); "
                       f"point --weights DIR or ${WEIGHTS_ENV} at a folder with manifest.json")


def weights_dir(folder: str | Path | None = None) -> Path:
    """The weights folder in use: ``folder`` when given, else ``$OCCPARSE_WEIGHTS``, else :func:`packaged_weights_dir`."""
    if folder:
        return Path(folder)
    env = os.environ.get(WEIGHTS_ENV)
    return Path(env) if env else packaged_weights_dir()


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    sha256: str
    card: Path
    spec: dict


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest(folder: str | Path | None = None) -> dict[str, ModelEntry]:
    """Every entry of ``FOLDER/manifest.json`` by name (``{}`` when the folder has no manifest)."""
    folder = weights_dir(folder)
    mpath = folder / "manifest.json"
    if not mpath.exists():
        return {}
    raw = json.loads(mpath.read_text())
    return {
        name: ModelEntry(name, folder / e["file"], e["sha256"], folder / e.get("card", ""), e.get("spec", {}))
        for name, e in raw.items()
    }


_VERIFIED: set[tuple[str, float]] = set()


def not_shipped(e: ModelEntry, entries: dict[str, ModelEntry]) -> bool:
    """True for an fp32 network left out of the repository on purpose: its file is absent, its int8 copy is there."""
    twin = entries.get(f"{e.name}_int8")
    return not e.path.is_file() and twin is not None and twin.path.is_file()


def shipped(name: str, folder: str | Path | None = None, verify: bool = True) -> ModelEntry:
    """A shipped model by name, with its checksum verified once per process.

    Raises :class:`WeightsError` (an ``occparse.errors.ModelError``) when it is unlisted, missing or
    fails its pinned sha256."""
    entries = manifest(folder)
    if name not in entries:
        where = weights_dir(folder) / "manifest.json"
        if not where.is_file():
            raise WeightsError(f"{weights_dir(folder)} holds no manifest.json: not an occparse weights folder "
                               "(--weights DIR names a folder with manifest.json and the models it lists)")
        raise WeightsError(f"no shipped model named {name!r} in {where}")
    e = entries[name]
    if not e.path.is_file():
        hint = " (not in the repository; docs/training.md, Models: how to restore it)" if not_shipped(e, entries) else ""
        raise WeightsError(f"{e.path} is missing (listed in manifest.json){hint}")
    key = (str(e.path), e.path.stat().st_mtime)
    if verify and key not in _VERIFIED:
        got = file_sha256(e.path)
        if got != e.sha256:
            raise WeightsError(
                f"{e.path} fails its checksum (sha256 {got[:12]}..., pinned {e.sha256[:12]}...); if you replaced "
                f"it with a model you trained, pin it: python -m occparse.models.zoo {e.name} {e.path.name} {e.card.name}"
            )
        _VERIFIED.add(key)
    return e


PRECISIONS = ("auto", "fp32", "int8")


def resolve_precision(precision: str = "auto", providers: list[str] | tuple[str, ...] | None = None,
                      folder: str | Path | None = None) -> str:
    """"fp32" or "int8" for the shipped networks.

    "auto" picks the int8 models on CPU (2-3x faster there, accuracy in the model cards) and
    fp32 when CUDA will run them (int8 QDQ models gain nothing on a GPU).
    """
    if precision not in PRECISIONS:
        raise WeightsError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision != "auto":
        return precision
    from ..runtime.session import select_providers

    chosen = list(providers) if providers else select_providers()
    if "CUDAExecutionProvider" in chosen:
        return "fp32"
    return "int8" if {"parser_int8", "regressor_color_int8"} <= set(manifest(folder)) else "fp32"


def shipped_variant(name: str, precision: str, folder: str | Path | None = None) -> ModelEntry:
    """The shipped model ``name`` at a resolved precision ("int8" looks up ``NAME_int8``)."""
    return shipped(f"{name}_int8" if precision == "int8" else name, folder)


def parser_model(path: str | Path | None = None, spec: str | None = None,
                 precision: str = "fp32", folder: str | Path | None = None) -> tuple[Path, ParserSpec]:
    """The parser to use: a user's ONNX (with ``spec`` = "celebamask19" or a JSON spec file), else the shipped one
    at ``precision`` (already resolved: "fp32" or "int8")."""
    if path:
        p = Path(path)
        if not p.is_file():
            raise WeightsError(f"parser model not found: {p}")
        if spec is None or spec == "occparse":
            return p, ParserSpec()
        if spec == "celebamask19":
            return p, ParserSpec.celebamask19()
        return p, ParserSpec.from_json(spec)
    if spec is not None:
        raise WeightsError(f"a parser spec ({spec}) describes a parser of your own: give its ONNX file with --parser "
                           "(the shipped parser's spec is pinned in its manifest)")
    e = shipped_variant("parser", precision, folder)
    return e.path, ParserSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in e.spec.items()})


def register(name: str, file: str | Path, card: str | Path, spec: dict | None = None,
             folder: str | Path | None = None) -> ModelEntry:
    """Pin a model file's sha256 in manifest.json (run after training a model you will ship)."""
    folder = weights_dir(folder)
    mpath = folder / "manifest.json"
    raw = json.loads(mpath.read_text()) if mpath.exists() else {}
    f = Path(file)
    raw[name] = {"file": f.name, "sha256": file_sha256(folder / f.name), "card": Path(card).name, "spec": spec or {}}
    tmp = mpath.with_suffix(".tmp")
    tmp.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    tmp.replace(mpath)
    return manifest(folder)[name]


@dataclass(frozen=True)
class ModelState:
    """One manifest entry as found on disk: ``state`` is ok, not_shipped, missing or bad_checksum."""

    entry: ModelEntry
    state: str
    size: int  # bytes; 0 when absent


def check_all(folder: str | Path | None = None, verify: bool = True) -> list[ModelState]:
    """Every manifest entry's state; with ``verify`` each present file's sha256 is recomputed."""
    entries = manifest(folder)
    out = []
    for e in entries.values():
        if not e.path.is_file():
            out.append(ModelState(e, "not_shipped" if not_shipped(e, entries) else "missing", 0))
            continue
        ok = not verify or file_sha256(e.path) == e.sha256
        out.append(ModelState(e, "ok" if ok else "bad_checksum", e.path.stat().st_size))
    return out


def add_arguments(p) -> None:
    """``occparse models``: list, verify, locate or pin the models (an ``argparse`` sub-parser)."""
    p.add_argument("action", choices=["list", "verify", "path", "pin"],
                   help="list: the models and their files; verify: recompute every sha256 (exit 1 on any failure); "
                        "path: print the weights folder in use; pin NAME FILE CARD [SPEC_JSON]: record a retrained "
                        "file's sha256 in manifest.json")
    p.add_argument("pin_args", nargs="*", metavar="NAME FILE CARD [SPEC_JSON]", help="for pin only")
    p.add_argument("--weights", metavar="DIR", help=f"weights folder (default ${WEIGHTS_ENV}, else the installed one)")


def run(a) -> int:
    """Carry out ``occparse models`` (see :func:`add_arguments`); errors are :class:`WeightsError`."""
    if a.action == "pin":
        if len(a.pin_args) not in (3, 4):
            raise WeightsError("models pin needs NAME FILE CARD [SPEC_JSON]")
        return _pin(a.pin_args, a.weights)
    if a.pin_args:
        raise WeightsError(f"models {a.action} takes no further arguments (got {' '.join(a.pin_args)})")
    folder = weights_dir(a.weights)
    if a.action == "path":
        print(folder)
        return 0
    if not (folder / "manifest.json").is_file():
        raise WeightsError(f"{folder} has no manifest.json")
    states = check_all(folder, verify=a.action == "verify")
    print(f"weights folder: {folder}")
    notes = {"ok": "ok" if a.action == "verify" else "present", "not_shipped": "not shipped (int8 copy used)",
             "missing": "MISSING", "bad_checksum": "FAILS ITS SHA256"}
    for st in states:
        size = f"{st.size / 1e6:6.1f} MB" if st.size else "      -  "
        print(f"  {st.entry.name:22s} {st.entry.path.name:28s} {size}  {st.entry.sha256[:12]}  {notes[st.state]}")
    bad = [st for st in states if st.state in ("missing", "bad_checksum")]
    if bad:
        raise WeightsError(f"{len(bad)} model file(s) missing or failing their pinned sha256 in {folder}: "
                           + ", ".join(st.entry.name for st in bad))
    return 0


def _read_spec(text: str) -> dict:
    """SPEC_JSON of ``models pin``: a JSON file's path or the JSON text itself (an object)."""
    from ..errors import DataError

    src = Path(text).read_text() if Path(text).is_file() else text
    try:
        spec = json.loads(src)
    except json.JSONDecodeError as e:
        raise DataError(f"SPEC_JSON {text!r} is neither a JSON file nor JSON text: {e}") from None
    if not isinstance(spec, dict):
        raise DataError(f"SPEC_JSON {text!r} must be a JSON object, like the spec entries in manifest.json")
    return spec


def _pin(args: list[str], folder: str | Path | None = None) -> int:
    listed = manifest(folder).get(args[0])
    spec = _read_spec(args[3]) if len(args) == 4 else (listed.spec if listed else {})
    e = register(args[0], args[1], args[2], spec, folder)
    print(f"{e.name}: {e.path.name} sha256 {e.sha256}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """python -m occparse.models.zoo NAME FILE CARD [SPEC_JSON] (= occparse models pin ...): pin a file in manifest.json.

    Without SPEC_JSON an entry that is already listed keeps its spec (the usual case: a retrained
    model of the same shape); a new entry gets an empty one."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (3, 4):
        print(main.__doc__)
        return 2
    return _pin(args)


if __name__ == "__main__":
    raise SystemExit(main())
