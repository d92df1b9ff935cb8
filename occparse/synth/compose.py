"""Compositing with harmonisation: pasted occluders must not be given away by their edges.

Each layer's colour is pulled part-way towards the face's brightness, its edge is feathered,
it casts a faint shadow, and the whole picture then gets one lighting gradient, blur, noise
and JPEG-like softening, so that the face and the occluder share the same camera.
"""

from __future__ import annotations

import cv2
import numpy as np

from .occluders import Layer


def harmonise_layer(layer: Layer, base_rgb: np.ndarray, region: np.ndarray, rng: np.random.Generator) -> Layer:
    """Move the occluder's luminance statistics part-way towards the face's and soften it."""
    covered = layer.alpha > 0.5
    if covered.sum() < 8 or region.sum() < 8:
        return layer
    lab = cv2.cvtColor(np.clip(layer.rgb, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
    face_lab = cv2.cvtColor(base_rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    occ_l = lab[..., 0][covered]
    face_l = face_lab[..., 0][region]
    k = rng.uniform(0.2, 0.6) if layer.kind != "hair" else rng.uniform(0.0, 0.3)
    mean_shift = k * (face_l.mean() - occ_l.mean())
    contrast = 1.0 + k * (face_l.std() / max(occ_l.std(), 1.0) - 1.0) * 0.5
    lab[..., 0] = np.clip((lab[..., 0] - occ_l.mean()) * contrast + occ_l.mean() + mean_shift, 0, 255)
    rgb = cv2.cvtColor(lab.astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)
    sigma = rng.uniform(0.3, 1.0)
    rgb = cv2.GaussianBlur(rgb, (0, 0), sigma)
    return Layer(layer.kind, rgb, layer.alpha, layer.label, layer.occludes)


def composite(base_rgb: np.ndarray, layers: list[Layer], rng: np.random.Generator) -> np.ndarray:
    """Paste the layers in order, each with a soft shadow below it; returns float32 RGB."""
    out = base_rgb.astype(np.float32)
    for layer in layers:
        if layer.kind in ("hand", "object", "cap", "mask") and rng.random() < 0.7:
            shift = rng.normal(0, 2.0, 2)
            m = np.float32([[1, 0, shift[0]], [0, 1, shift[1] + 2.0]])
            shadow = cv2.warpAffine(layer.alpha, m, (out.shape[1], out.shape[0]))
            shadow = cv2.GaussianBlur(shadow, (0, 0), rng.uniform(2, 5))
            out *= (1.0 - rng.uniform(0.1, 0.3) * shadow)[..., None]
        a = layer.alpha[..., None]
        out = out * (1.0 - a) + layer.rgb * a
    return out


def camera_finish(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One lighting gradient, a little blur and noise for the whole picture; returns uint8."""
    h, w = rgb.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    grad = ((xs - w / 2) * np.cos(ang) + (ys - h / 2) * np.sin(ang)) / max(h, w)
    gain = 1.0 + rng.uniform(0.0, 0.25) * grad
    out = rgb * gain[..., None] * rng.uniform(0.9, 1.1)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 0.9))
    out = out + rng.normal(0, rng.uniform(0.5, 3.0), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)
