"""Pictures that show why: label overlays with the face region outlined, and the `--visualize` picture.

The `estimate --visualize` picture (:func:`draw_estimate`) is laid out as

* a header: the whole photo, small, with each reported face boxed and numbered, and how to read
  the colours;
* one row per reported face: the face zoomed (at least :data:`MIN_FACE_PX` tall, whatever its size in
  the photo) with R outlined, its sub-regions outlined and named, and every pixel of R tinted by
  what the parser sees there; beside it a panel with the numbers: the final estimate, its
  components, what R consists of (shares that add up to 100%), and the occluded share per region.

Everything is drawn with OpenCV; no model runs again.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from ..labels import CLASSES as LABEL_NAMES
from ..labels import PALETTE
from .mesh import Face
from .occlusion import crop_footprint
from .parsing import CLASSES, colorize
from .regions import REGION_NAMES, _fill, face_regions, restored_outline

# Layout (pixels). The picture is HEADER_H + ROW_H * faces tall and TILE + PANEL_W wide.
TILE = 520  # side of the zoomed face view
PANEL_W = 420
ROW_H = TILE
HEADER_H = 170
#: The face box's longer side takes 1 / ZOOM_MARGIN of the tile: 520 / 1.6 = 325 px.
ZOOM_MARGIN = 1.6
MIN_FACE_PX = int(TILE / ZOOM_MARGIN)

FONT = cv2.FONT_HERSHEY_SIMPLEX
INK = (25, 25, 25)
MUTED = (95, 95, 95)
PAPER = (250, 250, 250)
R_GREEN = (0, 200, 0)

#: Colour of each parser class (RGB), by name: occparse.labels.PALETTE, except a gray background
#: (black there, for label pictures), so the legend can show it. A user's parser with other class
#: names gets the fallback colour.
CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    **{name: tuple(int(v) for v in PALETTE[i]) for i, name in enumerate(LABEL_NAMES)},
    "background": (150, 150, 150),
}
FALLBACK_COLOUR = (0, 190, 190)
#: Names drawn on the zoomed face; left and right are the subject's own (the left eye is on the picture's right).
REGION_TAGS = {"forehead": "forehead", "left_eye": "left eye", "right_eye": "right eye", "nose": "nose",
               "mouth": "mouth", "left_cheek": "left cheek", "right_cheek": "right cheek", "chin": "chin"}


def _key(name: str) -> str:
    return name.strip().lower().replace(" ", "_")


def class_colour(name: str) -> tuple[int, int, int]:
    """RGB colour of a parser class name ("face", "hair", "facial hair", ...)."""
    return CLASS_COLOURS.get(_key(name), FALLBACK_COLOUR)


def _palette() -> np.ndarray:
    """(n_classes, 3) uint8 RGB, indexed by label value (parsing.CLASSES order)."""
    return np.array([class_colour(c) for c in CLASSES], np.uint8)


def label_overlay(rgb: np.ndarray, labels: np.ndarray, faces: list[Face], alpha: float = 0.45) -> np.ndarray:
    """The photo with parser classes tinted (blue face, yellow hair, red occluder) and R outlined in green."""
    out = rgb.astype(np.float32)
    colours = colorize(labels).astype(np.float32)
    tinted = labels > 0
    out[tinted] = out[tinted] * (1 - alpha) + colours[tinted] * alpha
    out = np.clip(out, 0, 255).astype(np.uint8)
    thick = max(1, round(max(rgb.shape[:2]) / 400))
    for f in faces:
        cv2.polylines(out, [np.round(f.oval * 16).astype(np.int32)], True, (0, 220, 0), thick, cv2.LINE_AA, 4)
        restored = restored_outline(f)
        if restored is not None:
            dashed_polyline(out, restored, (0, 220, 0), thick, outside=f.oval)
    _legend(out)
    return out


def _legend(img: np.ndarray) -> None:
    scale = max(0.35, img.shape[1] / 900)
    y = int(18 * scale / 0.5)
    x = 6
    entries = [(c.replace("_", " "), class_colour(c)) for c in CLASSES[1:]] + [("face region", (0, 220, 0))]
    for name, colour in entries:
        cv2.putText(img, name, (x, y), FONT, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, name, (x, y), FONT, scale, colour, 1, cv2.LINE_AA)
        x += int(cv2.getTextSize(name, FONT, scale, 1)[0][0] + 12 * scale / 0.5)


# ---------------------------------------------------------------------------------------------
# drawing helpers


def dashed_polyline(img: np.ndarray, pts: np.ndarray, colour, thick: int = 1, dash: float = 6.0,
                    outside: np.ndarray | None = None) -> None:
    """Draw the closed polygon ``pts`` ((n, 2) float pixels) on ``img`` in place as a dashed line:
    ``dash`` pixels drawn, ``dash`` left out, along its length. With ``outside`` (another polygon),
    only the dashes lying more than a pixel outside it are drawn."""
    loop = np.vstack([pts, pts[:1]]).astype(np.float64)
    seg = np.diff(loop, axis=0)
    length = np.hypot(seg[:, 0], seg[:, 1])
    at = np.concatenate([[0.0], np.cumsum(length)])
    other = None if outside is None else outside.reshape(-1, 1, 2).astype(np.float32)
    for start in np.arange(0.0, at[-1], 2 * dash):
        ts = np.linspace(start, min(start + dash, at[-1]), 4)
        xy = np.stack([np.interp(ts, at, loop[:, 0]), np.interp(ts, at, loop[:, 1])], 1)
        if other is not None and cv2.pointPolygonTest(other, tuple(map(float, xy[1:3].mean(0))), True) > -1.0:
            continue
        cv2.polylines(img, [np.round(xy * 16).astype(np.int32)], False, colour, thick, cv2.LINE_AA, 4)


def put_text(img, s, x, y, size=0.45, colour=INK, bold=1):
    """Anti-aliased text with its baseline's left end at (x, y) (also used by the worst-face sheet)."""
    cv2.putText(img, s, (int(x), int(y)), FONT, size, colour, bold, cv2.LINE_AA)


def wrap_text(s: str, width_px: int, size: float) -> list[str]:
    """``s`` broken at spaces into lines at most ``width_px`` wide (a single longer word stays whole)."""
    lines, cur = [], ""
    for word in s.split():
        trial = f"{cur} {word}".strip()
        if cur and cv2.getTextSize(trial, FONT, size, 1)[0][0] > width_px:
            lines.append(cur)
            cur = word
        else:
            cur = trial
    return lines + ([cur] if cur else [])


def _tag(img, s, cx, cy, size=0.42, bg=(20, 20, 20), fg=(255, 255, 255), taken: list | None = None):
    """A label on a small filled box centred at (cx, cy), kept inside the image: readable on any background.

    ``taken`` collects the boxes already drawn; a box that would overlap one moves down (then up) until free."""
    (tw, th), base = cv2.getTextSize(s, FONT, size, 1)
    pad = 3
    h, w = img.shape[:2]
    bw, bh = tw + 2 * pad, th + base + 2 * pad
    x0 = int(np.clip(cx - bw / 2, 0, max(0, w - bw - 1)))
    y_centre = int(np.clip(cy - bh / 2, 0, max(0, h - bh - 1)))
    y0 = y_centre
    if taken is not None:
        for k in range(12):
            step = (k + 1) // 2 * (bh + 2) * (1 if k % 2 else -1)
            y0 = int(np.clip(y_centre + step, 0, max(0, h - bh - 1)))
            if not any(x0 < a1 and a0 < x0 + bw and y0 < b1 and b0 < y0 + bh for a0, b0, a1, b1 in taken):
                break
        taken.append((x0, y0, x0 + bw, y0 + bh))
    x1, y1 = x0 + bw, y0 + bh
    roi = img[y0:y1, x0:x1]
    roi[:] = (roi.astype(np.float32) * 0.2 + np.array(bg, np.float32) * 0.8).astype(np.uint8)
    put_text(img, s, x0 + pad, y1 - pad - base + 1, size, fg)


def _swatch(img, x, y, colour):
    cv2.rectangle(img, (x, y - 11), (x + 12, y + 1), colour, -1)
    cv2.rectangle(img, (x, y - 11), (x + 12, y + 1), (60, 60, 60), 1)


#: The legend's name of the part of R outside the photo (drawn grey, as on the zoomed face).
OUTSIDE = "outside the photo"
CLASS_COLOURS[_key(OUTSIDE)] = (70, 70, 70)


def shares_of_r(result) -> list[tuple[str, float]]:
    """What R consists of, as (class name, fraction of R) that add up to 1: the visible face, then each
    field of ``result.occluded_by`` (hair, occluder, background, and any class added later: what hides
    the part inside the photo) scaled by that part's occluded fraction, then, when the border cuts the
    face, :data:`OUTSIDE` (``result.out_of_frame``)."""
    g = float(result.geometric)
    oof = float(getattr(result, "out_of_frame", 0.0) or 0.0)
    oof = min(max(oof, 0.0), g)  # the part outside is hidden, so it is part of the geometric fraction
    out = [("face", 1.0 - g)]
    for f in dataclasses.fields(result.occluded_by):
        out.append((f.name, (g - oof) * float(getattr(result.occluded_by, f.name))))
    if oof > 0:
        out.append((OUTSIDE, oof))
    total = sum(v for _, v in out)
    if total > 0 and abs(total - 1.0) > 1e-6:  # nothing hidden gives all-zero shares; keep the sum at 1
        out = [(n, v / total) for n, v in out]
    return out


def percent_labels(values: list[float], decimals: int = 1) -> list[str]:
    """Percentages rounded so that they still add up to exactly 100 (largest remainder)."""
    unit = 10 ** decimals
    raw = [max(0.0, v) * 100 * unit for v in values]
    floors = [math.floor(r) for r in raw]
    short = round(sum(raw)) - sum(floors)
    for i in sorted(range(len(raw)), key=lambda i: floors[i] - raw[i])[: max(0, short)]:
        floors[i] += 1
    return [f"{v / unit:.{decimals}f}%" for v in floors]


#: the final estimate this far (or more) from the geometric one gets a line saying why it differs from the tint
TINT_NOTE = 0.02


def explain_final(result) -> str | None:
    """One sentence when the final estimate lies outside both of its components, or between them but at
    least :data:`TINT_NOTE` from the geometric one (the share the picture tints); else None."""
    reg = result.regressor
    if reg is None:
        return None
    lo, hi = min(result.geometric, reg), max(result.geometric, reg)
    fin = result.occlusion
    tol = 0.0005  # below what the picture's one decimal shows
    if fin > hi + tol:
        where = "above"
    elif fin < lo - tol:
        where = "below"
    elif abs(fin - result.geometric) >= TINT_NOTE:
        side = "below" if fin < result.geometric else "above"
        return (f"Why {side} the tinted share? The final estimate weighs the geometric {result.geometric:.1%} "
                f"(what the tint shows) with the regressor's {reg:.1%}, as the stacker learned from faces with "
                f"known occlusion.")
    else:
        return None
    clipped = " (then clipped to 0-100%)" if fin <= 0.0 or fin >= 1.0 else ""
    return (f"Why {where} both? The stacker, a small model fitted on synthetic faces with known occlusion, "
            f"combines both estimates with the per-region and share figures and learned a correction "
            f"that can take it outside them{clipped}.")


# ---------------------------------------------------------------------------------------------
# the zoomed face


def zoom_matrix(box: tuple[float, float, float, float], tile: int = TILE) -> np.ndarray:
    """2x3 affine (photo pixels -> tile pixels) centring ``box`` (x0, y0, x1, y1) with its longer side
    1 / ZOOM_MARGIN of the tile; faces smaller than that are enlarged, larger ones reduced."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0, 1.0) * ZOOM_MARGIN
    s = tile / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[s, 0, tile / 2 - s * cx], [0, s, tile / 2 - s * cy]], np.float32)


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 affine a∘b (apply b, then a)."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2].astype(np.float32)


def draw_face_tile(rgb: np.ndarray, fa) -> np.ndarray:
    """TILE x TILE RGB view of one face: R tinted by parser class and outlined, sub-regions outlined and named."""
    h, w = rgb.shape[:2]
    m = zoom_matrix(fa.face.box)
    s = float(m[0, 0])
    interp = cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA if s < 0.5 else cv2.INTER_LINEAR
    if interp == cv2.INTER_AREA:  # warpAffine has no area filter: pre-shrink, then warp the rest
        k = max(1, int(1 / s))
        small = cv2.resize(rgb, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA)
        m_small = _compose(m, np.array([[k, 0, 0], [0, k, 0]], np.float32))
        tile = cv2.warpAffine(small, m_small, (TILE, TILE), flags=cv2.INTER_LINEAR, borderValue=(70, 70, 70))
    else:
        tile = cv2.warpAffine(rgb, m, (TILE, TILE), flags=interp, borderValue=(70, 70, 70))
    inside_photo = cv2.warpAffine(np.ones((h, w), np.uint8), m, (TILE, TILE), flags=cv2.INTER_NEAREST).astype(bool)

    # The parser's labels and R live in the aligned crop; map them straight into the tile.
    crop_to_tile = _compose(m, fa.crop.inverse.astype(np.float32))
    labels = cv2.warpAffine(fa.parse.labels, crop_to_tile, (TILE, TILE), flags=cv2.INTER_NEAREST, borderValue=0)
    face_t = fa.face.transformed(m, (TILE, TILE))
    regions = face_regions(face_t)
    r = regions.face & inside_photo  # R counts only inside the photo, as in the numbers

    palette = _palette().astype(np.float32)
    lab = np.minimum(labels, len(palette) - 1)
    # Inside R: tint by class (the visible face lightly); outside R: dim, as it enters no number.
    alpha = np.where(r, np.where(lab == 1, np.float32(0.35), np.float32(0.6)), np.float32(0.0))[..., None]
    keep = np.where(r, np.float32(1.0), np.float32(0.55))[..., None] * (1 - alpha)
    out = np.clip(tile * keep + palette[lab] * alpha, 0, 255).astype(np.uint8)

    # Sub-region outlines: a thin white line on a dark one reads on light and dark pixels alike. Drawn whole,
    # past the photo's border too (that part counts as hidden), so a cut region's name sits on the region,
    # not on the sliver of it left at the border.
    tags = []
    for name in REGION_NAMES:
        part = regions.parts[name].astype(np.uint8)
        if not part.any():
            continue
        contours, _ = cv2.findContours(part, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.drawContours(out, contours, -1, (255, 255, 255), 1, cv2.LINE_AA)
        mo = cv2.moments(max(contours, key=cv2.contourArea))  # the label goes on the largest piece
        if mo["m00"] > 30:
            tags.append((REGION_TAGS.get(name, name), mo["m10"] / mo["m00"], mo["m01"] / mo["m00"]))
    oval = np.round(face_t.oval * 16).astype(np.int32)
    cv2.polylines(out, [oval], True, R_GREEN, 2, cv2.LINE_AA, 4)
    restored = restored_outline(face_t)
    # R reaches past the mesh's oval (a cap brim, a fringe): said, and drawn dashed, from 1% of R
    restored_shown = restored is not None and np.count_nonzero(r & ~_fill(r.shape, face_t.oval)) > 0.01 * r.sum()
    if restored_shown:
        dashed_polyline(out, restored, (0, 0, 0), 3, outside=face_t.oval)
        dashed_polyline(out, restored, R_GREEN, 2, outside=face_t.oval)
    taken: list = []
    for s_, x, y in tags:
        _tag(out, s_, x, y, 0.4, taken=taken)
    if restored_shown:
        _tag(out, "dashed: face region restored past the mesh (counted)", TILE / 2, TILE - 32, 0.4)
    if (regions.face & ~inside_photo).any():  # only when the face region itself runs past the photo's border
        _tag(out, "grey: outside the photo (counted as hidden)", TILE / 2, TILE - 14, 0.4)
    return out


def region_hiders(fa) -> dict[str, list[tuple[str, float]]]:
    """For each sub-region, what hides it: (class name, share of the region's hidden pixels), largest first.

    Read from the parser's labels on the aligned crop (``fa`` is a pipeline.FaceDetail), so that each
    region's bar can be coloured by what covers it; the bar's length is the reported number."""
    labels = fa.parse.labels
    parts = face_regions(fa.crop.face, labels.shape).parts
    # crop pixels from outside the photo are the crop's mirrored border, whatever the parser calls them
    inside = crop_footprint(fa.crop, fa.face.image_size)
    out: dict[str, list[tuple[str, float]]] = {}
    for name in REGION_NAMES:
        hidden = labels[parts[name] & inside & (labels != 1)]
        n_out = int(np.count_nonzero(parts[name] & ~inside))
        total = hidden.size + n_out
        if total == 0:
            out[name] = []
            continue
        counts = np.bincount(np.minimum(hidden, len(CLASSES) - 1), minlength=len(CLASSES)).astype(float)
        shares = [(CLASSES[k], counts[k] / total) for k in range(len(CLASSES)) if counts[k] > 0]
        if n_out:
            shares.append((OUTSIDE, n_out / total))
        out[name] = sorted(shares, key=lambda kv: -kv[1])
    return out


# ---------------------------------------------------------------------------------------------
# the panel


def draw_panel(res, index: int, n_faces: int, height: int = ROW_H,
               hiders: dict[str, list[tuple[str, float]]] | None = None) -> np.ndarray:
    """PANEL_W x ``height`` RGB panel with one face's numbers (``res`` is a FaceResult).

    ``hiders`` (:func:`region_hiders`) colours each region's bar by what hides it; without it the bars
    are drawn in the occluder colour."""
    p = np.full((height, PANEL_W, 3), PAPER, np.uint8)
    x = 14
    y = 26
    head = f"face #{index + 1} of {n_faces}" if n_faces > 1 else "face"
    put_text(p, f"{head}  ({res.face_size:.0f} px tall in the photo)", x, y, 0.45, MUTED)
    y += 36
    put_text(p, f"occluded {res.occlusion:.1%}", x, y, 0.85, (200, 20, 20), 2)
    put_text(p, "final estimate: share of the face", x + 230, y - 6, 0.38, MUTED)
    put_text(p, "region hidden", x + 230, y + 8, 0.38, MUTED)
    y += 24
    comps = f"components: geometric {res.geometric:.1%} (face region minus visible face)"
    put_text(p, comps, x, y, 0.42)
    if res.regressor is not None:
        y += 18
        put_text(p, f"regressor {res.regressor:.1%} (a network reading the crop)", x + 88, y, 0.42)
    why = explain_final(res)
    if why:
        for line in wrap_text(why, PANEL_W - 2 * x, 0.38):
            y += 16
            put_text(p, line, x, y, 0.38, (150, 60, 0))
    for flag, text in ((res.small_face, "small face: fewer pixels, a less sure reading"),
                       (res.doubtful_face, "doubtful face: may not be a face; look at it")):
        if flag:
            y += 18
            put_text(p, text, x, y, 0.4, (200, 20, 20))
    y += 28
    put_text(p, "what the parser sees inside the face region (sums to 100%)", x, y, 0.42, MUTED)
    shares = shares_of_r(res)
    labels = percent_labels([v for _, v in shares])
    col = 0
    for k, ((name, _), lab) in enumerate(zip(shares, labels, strict=True)):
        if k % 2 == 0:
            y += 20
            col = 0
        cx = x + col * 200
        _swatch(p, cx, y, class_colour(name))
        shown = "visible face" if name == "face" else name.replace("_", " ")
        put_text(p, f"{shown} {lab}", cx + 18, y, 0.42)
        col += 1
    y += 30
    put_text(p, "occluded share of each region", x, y, 0.45, MUTED)
    y += 16
    put_text(p, "left / right: the subject's own; bars coloured by what hides the region", x, y, 0.36, MUTED)
    bx0, bx1 = x + 140, PANEL_W - 64
    for name in REGION_NAMES:
        y += 22
        v = res.region(name)
        put_text(p, name.replace("_", " "), x, y, 0.42)
        cv2.rectangle(p, (bx0, y - 11), (bx1, y + 1), (220, 228, 242), -1)
        if math.isnan(v):
            put_text(p, "turned out of view by the head's pose", bx0 + 6, y - 1, 0.36, MUTED)
            put_text(p, "n/a", bx1 + 6, y, 0.4, MUTED)
            continue
        fill = int(round((bx1 - bx0) * min(max(v, 0.0), 1.0)))
        parts = (hiders or {}).get(name) or [("occluder", 1.0)]
        start = bx0
        for k, (cls, share) in enumerate(parts):  # a 0% bar stays empty: no tick
            end = bx0 + fill if k == len(parts) - 1 else min(bx0 + fill, start + int(round(fill * share)))
            if end > start:
                cv2.rectangle(p, (start, y - 11), (end - 1, y + 1), class_colour(cls), -1)
            start = end
        put_text(p, f"{v:.0%}", bx1 + 6, y, 0.4)
    return p


def draw_header(rgb: np.ndarray | None, boxes: list[tuple[float, float, float, float]], title: str,
                width: int, present: set[str] | None = None) -> np.ndarray:
    """The strip above the faces: the whole photo small, faces boxed and numbered, and how to read the rest.

    ``present``: the parser classes seen in the drawn faces' regions; the legend names only those (all when None)."""
    hd = np.full((HEADER_H, width, 3), (235, 235, 235), np.uint8)
    x = 10
    if rgb is not None:
        h, w = rgb.shape[:2]
        s = min((HEADER_H - 20) / h, 260 / w)
        tw, th = max(1, round(w * s)), max(1, round(h * s))
        thumb = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            p0 = (int(x0 * s) - 2, int(y0 * s) - 2)
            p1 = (int(x1 * s) + 2, int(y1 * s) + 2)
            cv2.rectangle(thumb, p0, p1, (0, 0, 0), 3)
            cv2.rectangle(thumb, p0, p1, (255, 255, 0), 1)
            if len(boxes) > 1:
                _tag(thumb, f"#{i + 1}", p0[0] + 8, p0[1] - 2, 0.38)
        y0 = (HEADER_H - th) // 2
        hd[y0 : y0 + th, x : x + tw] = thumb
        x += tw + 16
    lines = [
        ("The green line is the face region (face-mesh oval, dashed where restored); every percentage is a share "
         "of it.", INK),
        ("Inside it each pixel is tinted by what the face parser sees there:", INK),
    ]
    y = 28
    put_text(hd, title, x, y, 0.5, INK, 1)
    for s_, c in lines:
        for line in wrap_text(s_, width - x - 10, 0.4):
            y += 18
            put_text(hd, line, x, y, 0.4, c)
    y += 22
    cx = x
    for name in CLASSES:
        if present is not None and name not in present:
            continue
        shown = "visible face" if name == "face" else name.replace("_", " ")
        _swatch(hd, cx, y, class_colour(name))
        put_text(hd, shown, cx + 18, y, 0.4)
        cx += 30 + cv2.getTextSize(shown, FONT, 0.4, 1)[0][0]
    y += 20
    for line in wrap_text("White lines and dark labels mark the sub-regions; outside the face region the photo "
                          "is dimmed.",
                      width - x - 10, 0.4):
        put_text(hd, line, x, y, 0.4, MUTED)
        y += 18
    return hd


def draw_estimate(analysis, max_faces: int | None = None) -> np.ndarray:
    """The picture `occparse estimate --visualize` writes, as an RGB uint8 array.

    ``analysis`` is a pipeline.ImageAnalysis; ``max_faces`` limits the rows to the largest faces
    (None: every face in the analysis). Shape: (HEADER_H + ROW_H * n, TILE + PANEL_W, 3) with
    n = the faces drawn; an analysis without faces (or without its image) gives the header alone,
    with the status in the title, and never raises.
    """
    faces = list(analysis.faces)[: max_faces if max_faces is not None else None]
    width = TILE + PANEL_W
    img = analysis.image.rgb if analysis.image is not None else None
    name = str(analysis.result.path).replace("\\", "/").rsplit("/", 1)[-1]
    if faces:
        title = f"{name}: {len(faces)} face{'s' if len(faces) > 1 else ''} shown"
        if len(analysis.faces) > len(faces):
            title += f" of {len(analysis.faces)} (--all-faces for the rest)"
    else:
        title = f"{name}: {analysis.result.status} {analysis.result.message}".strip()
    if getattr(analysis, "fallback", False):
        title += " (no mesh: canonical layout assumed)"
    hiders = [region_hiders(fa) for fa in faces]
    present = {name for fa in faces for name, share in shares_of_r(fa.result) if share >= 0.0005}  # shown >= 0.1%
    rows = [draw_header(img, [fa.face.box for fa in faces], title, width, present if faces else None)]
    for i, fa in enumerate(faces):
        tile = draw_face_tile(img, fa)
        panel = draw_panel(fa.result, i, len(faces), hiders=hiders[i])
        row = np.hstack([tile, panel])
        cv2.line(row, (0, 0), (width - 1, 0), (200, 200, 200), 1)
        rows.append(row)
    return np.vstack(rows)
