"""Output rows of the batch commands, shared by every engine (local processes, Ray).

One definition of the columns, the number formats and the Parquet column types, so that
``--engine local`` and ``--engine ray`` cannot write different values for the same image.
Imports nothing heavy (the CLI imports it while building its options).
"""

from __future__ import annotations

from .iso import COLUMNS as ISO_COLUMNS
from .iso import of_face, row_values

#: predict's output: the challenge's two columns, the status, and the two components of the estimate
PREDICT_COLUMNS = ("filename", "FaceOcclusion", "status", "geometric", "regressor")
#: then the ISO/IEC 29794-5 style components (occparse.runtime.iso): raw, score, code for each of three,
#: and the message that says why a row failed (or what was assumed)
PREDICT_COLUMNS = PREDICT_COLUMNS + ISO_COLUMNS + ("message",)

#: the region names of occparse.runtime.regions.REGION_NAMES (repeated so this module stays import-light;
#: tests/test_distributed.py checks they agree)
REGIONS = ("forehead", "left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek", "chin")

#: folder mode's output (``occparse estimate DIR --out X``)
FOLDER_COLUMNS = ("filename", "status", "message", "n_faces", "occlusion", "geometric", "regressor", "uncertainty",
                  *(f"region_{n}" for n in REGIONS), "hidden_by_hair", "hidden_by_occluder", "hidden_by_facial_hair",
                  "hidden_by_background", "x0", "y0", "x1", "y1", "is_gray")
#: folder mode's face-finding facts (docs/outputs.md, JSON schema), after FOLDER_COLUMNS' first part
FACE_EXTRA_COLUMNS = ("subject", "rotation", "out_of_frame", "yaw", "pitch", "roll", "source", "small_face",
                      "doubtful_face", "warnings")
FOLDER_COLUMNS = FOLDER_COLUMNS + FACE_EXTRA_COLUMNS
#: the columns of earlier occparse versions' folder output, still recognised as occparse's own (a rerun may
#: replace them): V2 without the ISO/IEC 29794-5 style components and the small_face / doubtful_face flags,
#: V1 also without hidden_by_facial_hair and hidden_by_background
FOLDER_COLUMNS_V2 = tuple(c for c in FOLDER_COLUMNS if c not in ("small_face", "doubtful_face"))
FOLDER_COLUMNS = FOLDER_COLUMNS + ISO_COLUMNS
FOLDER_COLUMNS_V1 = tuple(c for c in FOLDER_COLUMNS_V2 if c not in ("hidden_by_facial_hair", "hidden_by_background"))
#: V3 without the two scores of how sure occparse is of the face and of its parse
FOLDER_COLUMNS_V3 = FOLDER_COLUMNS
FOLDER_COLUMNS = FOLDER_COLUMNS + ("detector_score", "parser_confidence")

_TEXT = {"filename", "status", "message", "source", "warnings", *(c for c in ISO_COLUMNS if c.endswith("_code"))}
_INT = {"n_faces", "is_gray", "subject", "rotation", "small_face", "doubtful_face",
        *(c for c in ISO_COLUMNS if c.endswith("_score"))}


def utf8_text(text: str) -> str:
    """``text`` as valid Unicode that UTF-8 can write, unchanged when it already is.

    A file name that is not valid UTF-8 (bytes such as 0xFF, from another system's encoding) reaches
    Python as surrogate escapes (``os.fsdecode``); CSV, Parquet and JSON cannot hold those. Each
    undecodable byte is written as a backslash escape instead: ``b<0xFF>d.png`` -> ``b\\xffd.png``
    (docs/outputs.md, Folder mode). Other lone surrogates become ``\\udXXX``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def column_type(column: str) -> str:
    """The Parquet type of an output column: "string", "int64" or "float64" (empty text = null)."""
    return "string" if column in _TEXT else "int64" if column in _INT else "float64"


def predict_row(filename: str, res) -> dict[str, str]:
    """One ``predict`` row (text, as written to CSV) for an :class:`~occparse.runtime.results.ImageResult`."""
    row = {"filename": utf8_text(filename), "FaceOcclusion": "", "status": str(res.status), "geometric": "",
           "regressor": "", **row_values(None), "message": utf8_text(res.message)}
    if res.ok:
        f = res.faces[0]
        row.update(FaceOcclusion=f"{f.occlusion:.6f}", geometric=f"{f.geometric:.6f}",
                   regressor="" if f.regressor is None else f"{f.regressor:.6f}")
        row.update(row_values(of_face(f)))
    return row


def folder_row(filename: str, res) -> dict[str, str]:
    """One folder-mode row (text) for an :class:`~occparse.runtime.results.ImageResult`: its largest face."""
    row = {k: "" for k in FOLDER_COLUMNS}
    row.update(filename=utf8_text(filename), status=str(res.status), message=utf8_text(res.message),
               n_faces=str(res.n_faces))
    row.update(row_values(None))
    if res.ok:
        f = res.faces[0]
        row.update(occlusion=f"{f.occlusion:.6f}", geometric=f"{f.geometric:.6f}",
                   regressor="" if f.regressor is None else f"{f.regressor:.6f}",
                   uncertainty="" if f.uncertainty is None else f"{f.uncertainty:.6f}",
                   hidden_by_hair=f"{f.occluded_by.hair:.4f}", hidden_by_occluder=f"{f.occluded_by.occluder:.4f}",
                   hidden_by_facial_hair=f"{f.occluded_by.facial_hair:.4f}",
                   hidden_by_background=f"{f.occluded_by.background:.4f}",
                   x0=f"{f.box[0]:.1f}", y0=f"{f.box[1]:.1f}", x1=f"{f.box[2]:.1f}", y1=f"{f.box[3]:.1f}",
                   is_gray=str(int(f.is_gray)),
                   detector_score="" if f.landmark_confidence is None else f"{f.landmark_confidence:.4f}",
                   parser_confidence=f"{f.parser_confidence:.4f}")
        for r in f.regions:
            row[f"region_{r.name}"] = "" if r.fraction != r.fraction else f"{r.fraction:.4f}"
        row.update(face_extra(f))
        row.update(row_values(of_face(f)))
    return row


def face_extra(f) -> dict[str, str]:
    """Folder-mode columns for the face-finding facts of a :class:`~occparse.runtime.results.FaceResult` (docs/outputs.md, JSON schema)."""
    p = f.pose

    def num(v):
        return "" if v is None else f"{v:.1f}"

    return {"subject": str(int(f.subject)), "rotation": str(f.rotation), "out_of_frame": f"{f.out_of_frame:.4f}",
            "yaw": num(p.yaw if p else None), "pitch": num(p.pitch if p else None), "roll": num(p.roll if p else None),
            "source": f.source, "small_face": str(int(f.small_face)), "doubtful_face": str(int(f.doubtful_face)),
            "warnings": "; ".join(f.warnings)}


def typed(rows: list[dict[str, str]], columns: tuple[str, ...]) -> dict[str, list]:
    """Text rows -> typed columns (what the Parquet file holds): numbers parsed, empty numbers None.

    Parsing the same text that the CSV holds keeps Parquet and CSV values identical."""
    out: dict[str, list] = {}
    for c in columns:
        kind = column_type(c)
        if kind == "string":
            out[c] = [r[c] for r in rows]
        else:
            conv = int if kind == "int64" else float
            out[c] = [conv(r[c]) if r[c] != "" else None for r in rows]
    return out
