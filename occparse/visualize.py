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
