"""A contact sheet of the worst faces: the rows that cost the challenge metric most, drawn as a grid.

A model change is judged by its heavy cases, its bias per occlusion bin and the faces it gets most
wrong, not by the mean alone; ``occparse evaluate --sheet worst.png --images-root DIR`` draws the
last of these. Rows are ranked by their share of the metric's numerator, w (p - GT)^2 with the
challenge weight w = 1/30 + GT (:func:`occparse.evaluation.metrics.challenge_weights`), so a heavy
face read as clean comes first. Missing or invalid predictions are not drawn (``evaluate`` reports
them already).

Each tile holds the photo (read with :func:`occparse.runtime.io.read_image`, letterboxed) and a
caption: rank and file name, truth, the scored prediction, the signed error (prediction - truth;
blue = under-read, red = over-read) and, when the prediction CSV has them, the ``geometric`` and
``regressor`` components (and the final ``FaceOcclusion`` when a component is scored). A photo
that cannot be read gets a grey tile saying why. Drawn with OpenCV; no model runs, no torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError
from ..runtime.io import ImageInputError, read_csv_rows, read_image
from ..runtime.visualize import FONT, put_text, wrap_text
from .metrics import challenge_weights, valid_prediction

#: side of a tile's picture area (pixels); the tile is TILE wide and TILE + CAPTION_H tall
TILE = 200
CAPTION_H = 74
TILE_H = TILE + CAPTION_H
TITLE_H = 52
COLUMNS = 6
#: prediction columns shown under the scored one when the CSV has them (``occparse predict`` writes all
#: three; the final estimate shows when a component is scored), with their short caption tags
COMPONENT_COLUMNS = ("FaceOcclusion", "geometric", "regressor")
COMPONENT_TAGS = {"FaceOcclusion": "final", "geometric": "geo", "regressor": "reg"}

# colours are RGB: the sheet is an RGB array until the writer turns it into BGR for OpenCV
INK = (25, 25, 25)
MUTED = (90, 90, 90)
PAPER = (250, 250, 250)
MAT = (40, 40, 40)  # letterbox bars around a photo
PLACEHOLDER = (170, 170, 170)
UNDER = (25, 85, 215)  # prediction below truth: occlusion under-read
OVER = (205, 35, 25)  # prediction above truth: occlusion over-read


class SheetError(DataError, OSError):
    """The sheet cannot be written (unknown extension, folder not writable); the message is one line."""


@dataclass(frozen=True)
class WorstRow:
    """One scored row: ``truth`` and ``pred`` in [0, 1]; ``error`` = pred - truth; ``cost`` = w * error^2
    with w = 1/30 + truth; ``components``: other prediction columns (None where empty or invalid)."""

    filename: str
    truth: float
    pred: float
    error: float
    cost: float
    components: dict[str, float | None] = field(default_factory=dict)


def rank_worst(
    pred: Mapping[str, str],
    truth_rows: Sequence[Mapping[str, str]],
    count: int | None = None,
    components: Mapping[str, Mapping[str, str]] | None = None,
) -> list[WorstRow]:
    """The scored rows, costliest first: cost w (p - GT)^2, w = 1/30 + GT; ties by file name.

    ``pred``: filename -> raw prediction text (as :func:`occparse.evaluation.metrics.read_predictions`);
    ``truth_rows``: truth CSV rows (filename, FaceOcclusion). Rows whose prediction is missing or not a
    number in [0, 1], or whose truth is not one, are left out (``evaluate`` counts and reports them).
    ``count``: keep only the first ``count`` (None: all). ``components``: column -> (filename -> raw
    text), shown on the tiles.
    """
    names, gts, ps = [], [], []
    for row in truth_rows:
        name = row.get("filename")
        p = valid_prediction(pred.get(name)) if name is not None else None
        gt = valid_prediction((row.get("FaceOcclusion") or "").strip())
        if p is None or gt is None:
            continue
        names.append(name)
        gts.append(gt)
        ps.append(p)
    gt_a = np.asarray(gts, np.float64)
    err = np.asarray(ps, np.float64) - gt_a
    cost = challenge_weights(gt_a) * err**2
    order = sorted(range(len(names)), key=lambda i: (-cost[i], names[i]))
    if count is not None:
        order = order[: max(0, count)]
    components = components or {}
    return [
        WorstRow(names[i], float(gt_a[i]), float(ps[i]), float(err[i]), float(cost[i]),
                 {c: valid_prediction((v.get(names[i]) or "").strip()) for c, v in components.items()})
        for i in order
    ]


def read_components(path: str | Path, exclude: str = "FaceOcclusion", columns: Sequence[str] = COMPONENT_COLUMNS,
                    ) -> dict[str, dict[str, str]]:
    """column -> (filename -> raw text) for each of ``columns`` the prediction CSV has, except ``exclude``
    (the scored one); the first row of a repeated filename counts. A CSV that cannot be read raises
    :class:`occparse.errors.DataError`."""
    rows = read_csv_rows(Path(path))
    if not rows or "filename" not in rows[0]:
        return {}
    out: dict[str, dict[str, str]] = {}
    for c in columns:
        if c == exclude or c not in rows[0]:
            continue
        values: dict[str, str] = {}
        for r in rows:
            values.setdefault(r["filename"], r.get(c) or "")
        out[c] = values
    return out


# ---------------------------------------------------------------------------------------------
# drawing


def _width(s: str, size: float, bold: int = 1) -> int:
    return cv2.getTextSize(s, FONT, size, bold)[0][0]


def shorten(s: str, width_px: int, size: float = 0.42) -> str:
    """``s`` cut in the middle ("Aaron_Pei...0001.jpg") until it is at most ``width_px`` wide; the end
    (number and extension) stays, since that is what tells one photo of a person from another."""
    s = s.encode("ascii", "replace").decode()  # OpenCV's fonts draw ASCII only
    if _width(s, size) <= width_px:
        return s
    keep = len(s)
    while keep > 2:
        keep -= 1
        head = keep // 2
        cand = s[:head] + "..." + s[len(s) - (keep - head):]
        if _width(cand, size) <= width_px:
            return cand
    return "..."


def letterbox(rgb: np.ndarray, side: int = TILE, fill=MAT) -> np.ndarray:
    """``rgb`` (H x W x 3 uint8) scaled to fit a ``side`` x ``side`` square, aspect kept, bars of ``fill``."""
    h, w = rgb.shape[:2]
    s = side / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    out = np.full((side, side, 3), fill, np.uint8)
    y, x = (side - nh) // 2, (side - nw) // 2
    out[y:y + nh, x:x + nw] = small
    return out


def placeholder(reason: str, side: int = TILE) -> np.ndarray:
    """A grey ``side`` x ``side`` tile saying that the photo could not be read, and why."""
    out = np.full((side, side, 3), PLACEHOLDER, np.uint8)
    put_text(out, "cannot read image", 10, 28, 0.5, INK, 1)
    for i, line in enumerate(wrap_text(reason.encode("ascii", "replace").decode(), side - 20, 0.38)[:8]):  # ASCII fonts
        put_text(out, line, 10, 52 + 17 * i, 0.38, INK)
    return out


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"


def draw_tile(row: WorstRow, rank: int, image: np.ndarray | None, reason: str = "") -> np.ndarray:
    """One tile (TILE_H x TILE x 3 uint8 RGB): the photo letterboxed (or a placeholder saying ``reason``
    when ``image`` is None) above its caption."""
    tile = np.full((TILE_H, TILE, 3), PAPER, np.uint8)
    tile[:TILE] = letterbox(image) if image is not None else placeholder(reason)
    colour = UNDER if row.error < 0 else OVER
    tile[TILE:TILE + 3] = colour  # a bar in the error's colour: under/over-read at a glance across the sheet
    x, y = 5, TILE + 17
    put_text(tile, shorten(f"{rank}. {row.filename}", TILE - 2 * x), x, y, 0.42, INK)
    put_text(tile, f"GT {row.truth:.3f}  pred {row.pred:.3f}", x, y + 17, 0.42, INK)
    err = f"err {row.error:+.3f}"
    put_text(tile, err, x, y + 34, 0.46, colour, 2)
    put_text(tile, f"cost {row.cost:.4f}", x + _width(err, 0.46, 2) + 10, y + 34, 0.38, MUTED)
    if row.components:
        comp = "  ".join(f"{COMPONENT_TAGS.get(c, c[:5])} {_fmt(v)}" for c, v in row.components.items())
        put_text(tile, shorten(comp, TILE - 2 * x, 0.4), x, y + 51, 0.4, MUTED)
    cv2.rectangle(tile, (0, 0), (TILE - 1, TILE_H - 1), (210, 210, 210), 1)
    return tile


def sheet_size(n_tiles: int, columns: int = COLUMNS) -> tuple[int, int]:
    """(height, width) in pixels of a sheet of ``n_tiles`` tiles: ``columns`` wide, one row at least."""
    rows = max(1, math.ceil(n_tiles / columns))
    return TITLE_H + rows * TILE_H, columns * TILE


def draw_worst_sheet(
    rows: Sequence[WorstRow],
    images_root: str | Path,
    column: str = "FaceOcclusion",
    n_scored: int | None = None,
    columns: int = COLUMNS,
    unreadable: list[str] | None = None,
) -> np.ndarray:
    """The contact sheet of ``rows`` (in the given order, as from :func:`rank_worst`): an H x W x 3 uint8
    RGB array, sized by :func:`sheet_size`.

    Each photo is ``images_root / filename``, read with :func:`occparse.runtime.io.read_image`; one that
    cannot be read becomes a grey tile saying why, and its filename is appended to ``unreadable`` (when
    given). ``column``: the prediction column scored, named in the title with how tiles are ranked;
    ``n_scored``: how many rows were ranked, for the title. Never raises for a bad photo.
    """
    if columns < 1:
        raise ValueError("columns must be at least 1")
    h, w = sheet_size(len(rows), columns)
    sheet = np.full((h, w, 3), PAPER, np.uint8)
    of = f" of {n_scored} scored rows" if n_scored is not None else ""
    title = (f"Worst {len(rows)}{of}, column {column}: ranked by cost w*(p-GT)^2, w = 1/30 + GT "
             "(the challenge's per-row error)")
    put_text(sheet, shorten(title, w - 16, 0.5), 8, 20, 0.5, INK, 1)
    x = 8
    for s, colour in (("err = prediction - truth:", MUTED), ("negative = under-read", UNDER),
                      ("positive = over-read", OVER)):
        put_text(sheet, s, x, 42, 0.44, colour, 1 if colour == MUTED else 2)
        x += _width(s, 0.44, 2) + 12
    if not rows:
        put_text(sheet, "no scored rows to draw", 8, TITLE_H + 30, 0.5, MUTED)
    root = Path(images_root)
    for i, row in enumerate(rows):
        image, reason = None, ""
        try:
            image = read_image(root / row.filename, min_side=1).rgb
        except ImageInputError as e:
            reason = e.detail
        except (OSError, ValueError, MemoryError) as e:  # anything else a damaged file can raise: still a tile
            reason = f"{type(e).__name__}: {e}"
        if image is None and unreadable is not None:
            unreadable.append(row.filename)
        r, c = divmod(i, columns)
        y0, x0 = TITLE_H + r * TILE_H, c * TILE
        sheet[y0:y0 + TILE_H, x0:x0 + TILE] = draw_tile(row, i + 1, image, reason)
    return sheet


def sheet_path_error(path: str | Path) -> str | None:
    """Why a sheet cannot be written to ``path`` (a folder, an extension OpenCV cannot write, a folder that
    is missing or not writable, a file that is not writable), or None when it can. Creates nothing."""
    p = Path(path)
    if p.is_dir():
        return f"{p} is a folder; give a file name such as {p / 'worst.png'}"
    if not p.suffix or not cv2.haveImageWriter(str(p)):
        return f"cannot write a picture as {p.name!r}: use .png, .jpg, .webp, .bmp or .tiff"
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        return f"{parent} is a file, not a folder"
    if not parent.is_dir():  # not made for the user: a typo in the folder should not leave new folders behind
        return f"folder {parent} does not exist"
    if not os.access(parent, os.W_OK):
        return f"folder {parent} is not writable"
    if p.exists() and not os.access(p, os.W_OK):
        return f"{p} exists and is not writable"
    return None


def write_sheet(rgb: np.ndarray, path: str | Path) -> Path:
    """Write the sheet (H x W x 3 uint8 RGB) to ``path`` atomically: encoded in memory, written to a
    temporary file in the same folder, then moved onto ``path`` (a reader never sees half a picture,
    and nothing but ``path`` is left behind). The format follows the extension. Raises
    :class:`SheetError` with one line when it cannot be written."""
    p = Path(path)
    if err := sheet_path_error(p):
        raise SheetError(err)
    ok, buf = cv2.imencode(p.suffix, np.ascontiguousarray(rgb[..., ::-1]))
    if not ok:
        raise SheetError(f"cannot encode the sheet as {p.suffix}")
    # a name of our own beside the target ("x" mode: never someone else's file), with the user's umask
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(buf.tobytes())
        os.replace(tmp, p)
    except OSError as e:
        if not isinstance(e, FileExistsError):
            tmp.unlink(missing_ok=True)
        raise SheetError(f"cannot write {p} ({e.strerror or e})") from None
    return p
