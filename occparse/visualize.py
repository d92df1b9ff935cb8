"""Pictures that show why: label overlays with the face region outlined."""

from __future__ import annotations

import cv2
import numpy as np

from .geometry import Face
from .parsing import colorize


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
    _legend(out)
    return out


def _legend(img: np.ndarray) -> None:
    scale = max(0.35, img.shape[1] / 900)
    y = int(18 * scale / 0.5)
    x = 6
    for name, colour in (("face", (60, 120, 255)), ("hair", (240, 200, 40)), ("occluder", (230, 40, 40)),
                         ("face region R", (0, 220, 0))):
        cv2.putText(img, name, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(img, name, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
        x += int(cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] + 12 * scale / 0.5)


def _region_tint(rgb: np.ndarray, analysis_faces, size) -> np.ndarray:
    """Visible face tinted blue, occluded part of R tinted red, R outlined."""
    from .parsing import FACE

    out = rgb.astype(np.float32)
    for fa in analysis_faces:
        inside = fa.crop.to_original(fa.geometry.region_mask.astype(np.uint8), size).astype(bool)
        vis = fa.crop.to_original((fa.parse.labels == FACE).astype(np.uint8), size).astype(bool)
        blue = inside & vis
        red = inside & ~vis
        out[blue] = out[blue] * 0.6 + np.array([40, 110, 255]) * 0.4
        out[red] = out[red] * 0.45 + np.array([255, 30, 30]) * 0.55
    return np.clip(out, 0, 255).astype(np.uint8)


def draw_estimate(analysis, max_side: int = 640) -> np.ndarray:
    """The picture `occparse estimate --visualize` writes: photo with the face region outlined, the
    visible face blue and the occluded part red, and a side panel with the numbers and per-region bars."""
    from .geometry import REGION_NAMES

    img = analysis.image.rgb
    h, w = img.shape[:2]
    pic = _region_tint(img, analysis.faces, (h, w))
    scale = max_side / max(h, w)
    pic = cv2.resize(pic, (max(1, round(w * scale)), max(1, round(h * scale))),
                     interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    thick = 2
    for i, fa in enumerate(analysis.faces):
        pts = np.round(fa.face.oval * scale * 16).astype(np.int32)
        cv2.polylines(pic, [pts], True, (0, 230, 0), thick, cv2.LINE_AA, 4)
        x0, y0 = fa.face.box[0] * scale, fa.face.box[1] * scale
        label = f"#{i + 1} {fa.result.occlusion:.0%}"
        cv2.putText(pic, label, (int(x0), max(14, int(y0) - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(pic, label, (int(x0), max(14, int(y0) - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    ph = max(pic.shape[0], 420)
    panel = np.full((ph, 300, 3), 250, np.uint8)
    f = analysis.faces[0].result

    def text(s, y, size=0.5, colour=(20, 20, 20), bold=1, x=12):
        cv2.putText(panel, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, size, colour, bold, cv2.LINE_AA)

    text("face #1 (largest)" if len(analysis.faces) > 1 else "face", 24, 0.5, (90, 90, 90))
    text(f"occluded {f.occlusion:.1%}", 56, 0.8, (200, 20, 20), 2)
    y = 82
    text(f"geometric (R minus visible) {f.geometric:.1%}", y, 0.42)
    if f.regressor is not None:
        y += 18
        text(f"regressor {f.regressor:.1%}", y, 0.42)
    y += 18
    text(f"hidden by: hair {f.occluded_by.hair:.0%}, other {f.occluded_by.occluder:.0%}", y, 0.42)
    y += 30
    text("occluded share per region", y, 0.45, (90, 90, 90))
    y += 10
    for name in REGION_NAMES:
        v = f.region(name)
        y += 24
        cv2.putText(panel, name.replace("_", " "), (12, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (20, 20, 20), 1, cv2.LINE_AA)
        x0, x1 = 112, 250
        cv2.rectangle(panel, (x0, y - 11), (x1, y + 1), (215, 225, 245), -1)
        if not np.isnan(v):
            cv2.rectangle(panel, (x0, y - 11), (x0 + int((x1 - x0) * v), y + 1), (220, 40, 40), -1)
            cv2.putText(panel, f"{v:.0%}", (x1 + 6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (20, 20, 20), 1, cv2.LINE_AA)
    y += 34
    cv2.rectangle(panel, (12, y - 10), (24, y + 2), (255, 110, 40)[::-1], -1)
    text("visible face", y + 1, 0.42, x=32)
    y += 20
    cv2.rectangle(panel, (12, y - 10), (24, y + 2), (255, 30, 30), -1)
    text("occluded part of the face", y + 1, 0.42, x=32)
    y += 20
    cv2.rectangle(panel, (12, y - 10), (24, y + 2), (0, 230, 0), -1)
    text("face region R (MediaPipe oval)", y + 1, 0.42, x=32)
    if pic.shape[0] < ph:
        pic = cv2.copyMakeBorder(pic, 0, ph - pic.shape[0], 0, 0, cv2.BORDER_CONSTANT, value=(250, 250, 250))
    return np.hstack([pic, panel])
