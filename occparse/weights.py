"""The registry of shipped models: file, pinned sha256, model card; and users' own paths.

``weights/manifest.json`` lists each model occparse ships. A shipped file whose checksum does
not match its pin is refused (a half-copied or swapped file would give silently wrong numbers).
A user path is taken as given, with its own spec.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from .parsing import ParserSpec


class WeightsError(RuntimeError):
    """A model file is missing, unlisted or fails its checksum."""


def weights_dir() -> Path:
    """$OCCPARSE_WEIGHTS, else the repository's ``weights/`` folder."""
    env = os.environ.get("OCCPARSE_WEIGHTS")
    return Path(env) if env else Path(__file__).resolve().parents[1] / "weights"


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


def manifest(folder: Path | None = None) -> dict[str, ModelEntry]:
    folder = folder or weights_dir()
    mpath = folder / "manifest.json"
    if not mpath.exists():
        return {}
    raw = json.loads(mpath.read_text())
    return {
        name: ModelEntry(name, folder / e["file"], e["sha256"], folder / e.get("card", ""), e.get("spec", {}))
        for name, e in raw.items()
    }


_VERIFIED: set[tuple[str, float]] = set()


def shipped(name: str, folder: Path | None = None, verify: bool = True) -> ModelEntry:
    """A shipped model by name, with its checksum verified once per process."""
    entries = manifest(folder)
    if name not in entries:
        raise WeightsError(f"no shipped model named {name!r} in {(folder or weights_dir()) / 'manifest.json'}")
    e = entries[name]
    if not e.path.is_file():
        raise WeightsError(f"{e.path} is missing (listed in manifest.json)")
    key = (str(e.path), e.path.stat().st_mtime)
    if verify and key not in _VERIFIED:
        got = file_sha256(e.path)
        if got != e.sha256:
            raise WeightsError(
                f"{e.path} fails its checksum (sha256 {got[:12]}..., pinned {e.sha256[:12]}...); if you replaced "
                f"it with a model you trained, pin it: python -m occparse.weights {e.name} {e.path.name} {e.card.name}"
            )
        _VERIFIED.add(key)
    return e


PRECISIONS = ("auto", "fp32", "int8")


def resolve_precision(precision: str = "auto", providers: list[str] | tuple[str, ...] | None = None) -> str:
    """"fp32" or "int8" for the shipped networks.

    "auto" picks the int8 models on CPU (2-3x faster there, accuracy measured in the README) and
    fp32 when CUDA will run them (int8 QDQ models gain nothing on a GPU).
    """
    if precision not in PRECISIONS:
        raise WeightsError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision != "auto":
        return precision
    from .parsing import pick_providers

    chosen = list(providers) if providers else pick_providers()
    if "CUDAExecutionProvider" in chosen:
        return "fp32"
    return "int8" if {"parser_int8", "regressor_color_int8"} <= set(manifest()) else "fp32"


def shipped_variant(name: str, precision: str) -> ModelEntry:
    """The shipped model ``name`` at a resolved precision ("int8" looks up ``NAME_int8``)."""
    return shipped(f"{name}_int8" if precision == "int8" else name)


def parser_model(path: str | Path | None = None, spec: str | None = None,
                 precision: str = "fp32") -> tuple[Path, ParserSpec]:
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
    e = shipped_variant("parser", precision)
    return e.path, ParserSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in e.spec.items()})


def register(name: str, file: str | Path, card: str | Path, spec: dict | None = None, folder: Path | None = None) -> ModelEntry:
    """Pin a model file's sha256 in manifest.json (run after training a model you will ship)."""
    folder = folder or weights_dir()
    mpath = folder / "manifest.json"
    raw = json.loads(mpath.read_text()) if mpath.exists() else {}
    f = Path(file)
    raw[name] = {"file": f.name, "sha256": file_sha256(folder / f.name), "card": Path(card).name, "spec": spec or {}}
    tmp = mpath.with_suffix(".tmp")
    tmp.write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    tmp.replace(mpath)
    return manifest(folder)[name]


def main(argv: list[str] | None = None) -> int:
    """python -m occparse.weights NAME FILE CARD [SPEC_JSON]: pin a file in weights/manifest.json.

    Without SPEC_JSON an entry that is already listed keeps its spec (the usual case: a retrained
    model of the same shape); a new entry gets an empty one."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (3, 4):
        print(main.__doc__)
        return 2
    listed = manifest().get(args[0])
    spec = json.loads(args[3]) if len(args) == 4 else (listed.spec if listed else {})
    e = register(args[0], args[1], args[2], spec)
    print(f"{e.name}: {e.path.name} sha256 {e.sha256}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
