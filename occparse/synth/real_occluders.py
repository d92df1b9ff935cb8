"""The occluders of real photos that the first engine lacked, and look-alikes that must stay face.

Occluders (each an RGBA :class:`~occparse.synth.occluders.Layer` at the base image's geometry):

* ``beard``: facial hair transplanted from an LFW train man (his hair labels inside the
  facial-hair zone, see :mod:`occparse.labels`) through the canonical frame, in any colour
  (gray, white, blond, red, black), or painted procedurally (stubble to a full beard).
* ``goggles``: ski or swimming goggles, one wide lens band over both eyes with a strap.
* ``sunglasses`` (in this engine, two draws in three): procedural sunglasses of many shapes, sized and
  placed by each eye's corners, with tinted, gradient or mirrored lenses the eye may faintly show through.
* ``hat``: hats, helmets and beanies drawn procedurally, the crown's edge anywhere between the top of
  the face oval and the brows, often with a brim.
* ``held_object``: a phone, cup, food or microphone in front of the mouth or a cheek, mostly held by a
  hand from the hands set.
* hands aimed at the mouth or an eye, and hair fringes/strands recoloured to any hair colour,
  are options of the first engine's ``hand`` and ``hair`` kinds (see ``SynthConfig.real``).

Look-alikes (``occludes=False``: they change the picture, not the truth nor the labels):

* ``paint``: thin paint lines, tattoo strokes, translucent face paint and make-up on the skin.
* ``shadow``: a hard shadow over part of the face.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from ..labels import FACIAL_HAIR, OCCLUDER, facial_hair_zone, split_facial_hair
from ..runtime.align import alignment_matrix
from ..runtime.mesh import OUTER_LIPS
from ..runtime.regions import _fill, face_region
from .occluders import Layer, _face_frame
from .sources import BaseFace, read_label_map, read_rgb

#: hair colours as RGB, from white-gray through blond and red to black
HAIR_COLOURS = np.array([
    [235, 235, 230], [190, 190, 185], [130, 130, 128], [225, 200, 140], [200, 160, 90], [160, 110, 60],
    [170, 80, 40], [100, 65, 40], [55, 40, 30], [25, 22, 20],
], np.float32)


def recolour_hair(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Give hair pixels another hair colour, keeping their texture (luminance relative to its mean)."""
    colour = HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))] * rng.uniform(0.85, 1.1)
    lum = rgb.mean(axis=2, keepdims=True)
    rel = lum / max(float(lum.mean()), 1.0)
    return np.clip(colour * (0.55 + 0.45 * rel), 0, 255).astype(np.float32)


def _empty(kind: str, shape, label: int, occludes: bool = True) -> Layer:
    return Layer(kind, np.zeros(shape + (3,), np.float32), np.zeros(shape, np.float32), label, occludes)


class BeardDonors:
    """LFW train men whose facial hair covers at least ``min_fraction`` of their face region."""

    def __init__(self, donors: list[BaseFace], min_fraction: float = 0.06):
        self.donors = [d for d in donors if d.gender == "M" and d.label_path is not None]
        self.min_fraction = min_fraction
        self._with_beard: list[tuple[BaseFace, np.ndarray]] | None = None

    def with_beard(self) -> list[tuple[BaseFace, np.ndarray]]:
        """(donor, facial-hair mask) pairs; computed on first use (about 1 s per 300 donors)."""
        if self._with_beard is None:
            out = []
            for d in self.donors:
                lab = read_label_map(d.label_path)
                fh = split_facial_hair(lab, d.face, d.gender) == FACIAL_HAIR
                region = face_region(d.face, lab.shape)
                if (fh & region).sum() >= self.min_fraction * max(1, region.sum()):
                    out.append((d, fh))
            self._with_beard = out
        return self._with_beard


def _painted_beard(base: BaseFace, shape, rng: np.random.Generator) -> Layer:
    """A procedural beard: the facial-hair zone below a random upper edge, textured like hair."""
    face = base.face
    h, w = shape
    zone = facial_hair_zone(face, shape)
    lm = face.landmarks
    across, down, fw, fh, _ = _face_frame(face)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    lip_hull = cv2.convexHull(lm[list(OUTER_LIPS)].astype(np.float32))[:, 0]
    lips = _fill(shape, lip_hull) if rng.random() < 0.9 else np.zeros(shape, bool)
    style = rng.choice(["full", "chin", "moustache", "stubble"], p=[0.45, 0.2, 0.15, 0.2])
    mouth = lm[list(OUTER_LIPS)].mean(0)
    along = (xs - mouth[0]) * down[0] + (ys - mouth[1]) * down[1]
    side = np.abs((xs - mouth[0]) * across[0] + (ys - mouth[1]) * across[1])
    if style == "chin":  # goatee: the chin below the mouth, narrow
        mask = zone & (along > 0) & (side < fw * rng.uniform(0.15, 0.3))
    elif style == "moustache":
        mask = zone & (along < 0) & (side < fw * rng.uniform(0.2, 0.3))
    else:  # full beard or stubble: the whole zone, sometimes without the moustache
        mask = zone.copy()
        if rng.random() < 0.25:
            mask &= ~((along < 0) & (side < fw * 0.25))
    mask &= ~lips
    noise = rng.normal(0, 1, (h, w)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), rng.uniform(0.5, 1.5))
    density = rng.uniform(0.25, 0.55) if style == "stubble" else rng.uniform(0.75, 1.0)
    a = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), max(0.8, 0.01 * fw)) * density
    a = np.clip(a * (1 + 0.25 * noise), 0, 1)
    colour = HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))]
    rgb = np.clip(colour[None, None, :] * (1 + 0.35 * noise[..., None]), 0, 255).astype(np.float32)
    return Layer("beard", rgb, a, FACIAL_HAIR)


def beard_layer(base: BaseFace, shape, donors: BeardDonors, rng: np.random.Generator) -> Layer:
    """Facial hair on ``base``: transplanted from a bearded donor (70%) or painted (30%)."""
    pool = donors.with_beard()
    if not pool or rng.random() < 0.3:
        return _painted_beard(base, shape, rng)
    donor, fh_mask = pool[int(rng.integers(len(pool)))]
    if donor.image_path == base.image_path:
        return _painted_beard(base, shape, rng)
    drgb = read_rgb(donor.image_path).astype(np.float32)
    m_d = np.vstack([alignment_matrix(donor.face), [0, 0, 1]])
    m_b = np.vstack([alignment_matrix(base.face), [0, 0, 1]])
    m = (np.linalg.inv(m_b) @ m_d)[:2]
    h, w = shape
    rgb = cv2.warpAffine(drgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    a = cv2.warpAffine(fh_mask.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    # never over the eyes or above the nose, even when the two faces' poses differ
    a = cv2.GaussianBlur(a, (0, 0), 0.7) * facial_hair_zone(base.face, shape)
    if rng.random() < 0.5:
        rgb = recolour_hair(rgb, rng)
    return Layer("beard", rgb, np.clip(a, 0, 1), FACIAL_HAIR)


def paint_layer(base: BaseFace, shape, rng: np.random.Generator) -> Layer:
    """Paint lines, tattoo strokes, translucent face paint or make-up: still visible face."""
    face = base.face
    h, w = shape
    region = face_region(face, shape)
    ys, xs = np.nonzero(region)
    if len(xs) < 20:
        return _empty("paint", shape, 1, occludes=False)
    _, _, fw, _, _ = _face_frame(face)
    mask = np.zeros(shape, np.float32)
    style = rng.choice(["lines", "tattoo", "facepaint"], p=[0.5, 0.2, 0.3])
    if style == "facepaint":  # a translucent patch of colour: skin shows through
        c = np.array([xs.mean(), ys.mean()]) + rng.normal(0, 0.2 * fw, 2)
        axes = (int(fw * rng.uniform(0.1, 0.35)), int(fw * rng.uniform(0.08, 0.3)))
        cv2.ellipse(mask, (int(c[0]), int(c[1])), axes, rng.uniform(0, 180), 0, 360, 1.0, -1, cv2.LINE_AA)
        mask = cv2.GaussianBlur(mask, (0, 0), 0.02 * fw) * rng.uniform(0.25, 0.45)
    else:
        thick = max(1, int(round(fw * (rng.uniform(0.006, 0.02) if style == "lines" else rng.uniform(0.01, 0.03)))))
        for _ in range(int(rng.integers(2, 9))):
            i = int(rng.integers(len(xs)))
            p = np.array([xs[i], ys[i]], np.float64)
            pts = [p]
            heading = rng.uniform(0, 2 * np.pi)
            for _ in range(int(rng.integers(2, 6))):
                heading += rng.normal(0, 0.6)
                p = p + rng.uniform(0.05, 0.2) * fw * np.array([np.cos(heading), np.sin(heading)])
                pts.append(p)
            cv2.polylines(mask, [np.round(np.array(pts) * 16).astype(np.int32)], False, 1.0, thick, cv2.LINE_AA, 4)
        mask *= rng.uniform(0.7, 1.0)
    mask *= region
    if style == "lines":
        colour = np.array([245, 245, 245], np.float32) if rng.random() < 0.6 else rng.uniform(0, 255, 3)
    elif style == "tattoo":
        colour = rng.uniform(10, 70, 3)
    else:
        colour = rng.uniform(0, 255, 3)
    rgb = np.broadcast_to(colour.astype(np.float32), shape + (3,)).copy()
    return Layer("paint", rgb, np.clip(mask, 0, 1), 1, occludes=False)


def shadow_layer(base: BaseFace, base_rgb: np.ndarray, rng: np.random.Generator) -> Layer:
    """A hard shadow (a dark half-plane or blob over part of the face): still visible face."""
    h, w = base_rgb.shape[:2]
    face = base.face
    across, down, fw, fh, _ = _face_frame(face)
    c = face.oval.mean(0) + rng.normal(0, 0.15, 2) * np.array([fw, fh])
    ang = rng.uniform(0, 2 * np.pi)
    n = np.array([np.cos(ang), np.sin(ang)])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    mask = (((xs - c[0]) * n[0] + (ys - c[1]) * n[1]) > 0).astype(np.float32)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.5, rng.uniform(0.002, 0.02) * fw))
    rgb = base_rgb.astype(np.float32) * rng.uniform(0.35, 0.7)
    return Layer("shadow", rgb, mask, 1, occludes=False)


def _textured(shape, rng: np.random.Generator, base_colour: np.ndarray | None = None) -> np.ndarray:
    """A plain colour with a little noise and a vertical shading gradient (plastic, fabric, metal)."""
    h, w = shape
    colour = rng.uniform(0, 255, 3) if base_colour is None else base_colour
    noise = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2.0)
    grad = np.linspace(rng.uniform(0.7, 1.0), rng.uniform(1.0, 1.3), h, dtype=np.float32)[:, None]
    return np.clip(colour[None, None, :] * grad[..., None] * (1 + 0.06 * noise[..., None]), 0, 255).astype(np.float32)


def goggles_layer(base: BaseFace, shape, rng: np.random.Generator) -> Layer:
    """Ski or swimming goggles: one wide rounded lens band over both eyes, a strap to the face's edges."""
    face = base.face
    across, down, fw, fh, roll = _face_frame(face)
    kp = face.key_points()
    centre = kp[:2].mean(0) + down * rng.uniform(-0.03, 0.02) * fh
    h, w = shape
    mask = np.zeros(shape, np.float32)
    half_w = fw * rng.uniform(0.42, 0.55)
    half_h = fh * rng.uniform(0.09, 0.16)
    ang = float(np.degrees(np.arctan2(across[1], across[0])))
    cv2.ellipse(mask, (int(centre[0] * 16), int(centre[1] * 16)), (int(half_w * 16), int(half_h * 16)), ang, 0, 360,
                1.0, -1, cv2.LINE_AA, 4)
    strap = max(2, int(half_h * rng.uniform(0.3, 0.6)))
    for s in (-1, 1):
        end = centre + s * across * fw * 0.9
        cv2.line(mask, tuple(np.round(centre).astype(int)), tuple(np.round(end).astype(int)), 1.0, strap, cv2.LINE_AA)
    # mirrored or tinted lens: a colour gradient with a bright reflection band
    rgb = _textured(shape, rng, rng.uniform(0, 255, 3) * rng.uniform(0.3, 1.0))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    band = np.exp(-(((xs - centre[0]) * down[0] + (ys - centre[1]) * down[1]) / (0.5 * half_h + 1e-6) + 0.5) ** 2)
    rgb = np.clip(rgb + rng.uniform(0, 90) * band[..., None], 0, 255)
    del roll
    return Layer("goggles", rgb.astype(np.float32), np.clip(mask, 0, 1), OCCLUDER)


#: lens outlines of :func:`sunglasses_layer` (real sunglasses come in many shapes; the library has one cut-out)
SUNGLASS_SHAPES = ("oval", "round", "rect", "aviator", "cateye", "wrap")
#: eye-corner landmarks (outer, inner) of the subject's right and left eye (MediaPipe Face Mesh indices)
_EYE_CORNERS = ((33, 133), (263, 362))


def _lens_outline(kind: str, a: float, b: float, n: int = 72) -> np.ndarray:
    """n x 2 outline of one lens in its own frame: x towards the nose, y down; half-width a, half-height b."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    c, s = np.cos(t), np.sin(t)
    if kind == "rect":  # a superellipse: a rounded rectangle
        x, y = a * np.sign(c) * np.abs(c) ** 0.4, b * np.sign(s) * np.abs(s) ** 0.4
    else:
        x, y = a * c, b * s
    if kind == "aviator":  # the teardrop: deeper below, towards the nose
        y = y + 0.45 * b * np.clip(s, 0, None) * np.clip(c, 0, None)
    elif kind == "cateye":  # the upper outer corner swept up
        y = y - 0.5 * b * np.clip(-s, 0, None) * np.clip(-c, 0, None)
        x = x - 0.15 * a * np.clip(-s, 0, None) * np.clip(-c, 0, None)
    return np.stack([x, y], axis=1)


class _Lens(NamedTuple):
    """One lens of :func:`sunglasses_layer`, in image pixels."""

    centre: np.ndarray  # (2,)
    inward: np.ndarray  # (2,) unit vector towards the nose
    a: float  # half-width
    outline: np.ndarray  # n x 2
    eye_width: float  # corner to corner, the lens's own eye


def sunglasses_layer(base: BaseFace, base_rgb: np.ndarray, shape, rng: np.random.Generator) -> Layer:
    """Procedural sunglasses: a lens over each eye sized by that eye's own corners (so a turned head's far
    lens is narrower), in one of :data:`SUNGLASS_SHAPES`; dark, tinted, gradient or mirrored lenses through
    which the eye may faintly show, reflections, a frame (or none), a bridge and the temples."""
    face = base.face
    lm = face.landmarks
    across, down, _, _, _ = _face_frame(face)
    kind = SUNGLASS_SHAPES[int(rng.integers(len(SUNGLASS_SHAPES)))]
    ratio = {"oval": (0.62, 0.85), "round": (0.9, 1.0), "rect": (0.5, 0.75), "aviator": (0.75, 0.95),
             "cateye": (0.55, 0.8), "wrap": (0.45, 0.6)}[kind]
    widen = rng.uniform(0.85, 1.3) * (1.2 if kind == "wrap" else 1.0)
    aspect, drop = rng.uniform(*ratio), rng.uniform(0.0, 0.2)
    h, w = shape
    lens = np.zeros(shape, np.float32)
    frame = np.zeros(shape, np.float32)
    corners = [(lm[o].astype(np.float64), lm[i].astype(np.float64)) for o, i in _EYE_CORNERS]
    centres = [(o + i) / 2 for o, i in corners]
    widths = [float(np.linalg.norm(i - o)) for o, i in corners]
    half_gap = 0.5 * float(np.linalg.norm(centres[1] - centres[0]))
    # lens height from the wider (nearer) eye, so a turned head's far lens is narrower, not shorter
    b = max(max(widths) * widen * aspect, 2.0)
    lenses = []
    for eye_centre, inward, ew in zip(centres, (1.0, -1.0), widths, strict=True):
        a = ew * widen
        if kind != "wrap":  # two lenses and a bridge: they never meet over the nose
            a = min(a, half_gap - 0.1 * ew)
        a = max(a, 2.0)
        centre = eye_centre + down * b * drop
        e_in = across * inward
        pts = _lens_outline(kind, a, b)
        outline = centre + pts[:, :1] * e_in + pts[:, 1:] * down
        cv2.fillPoly(lens, [np.round(outline * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
        lenses.append(_Lens(centre, e_in, a, outline, ew))
    rimless = rng.random() < 0.15
    thick = 0 if rimless else max(1, int(round(lenses[0].eye_width * rng.uniform(0.04, 0.16))))
    for ln in lenses:
        if thick:
            cv2.polylines(frame, [np.round(ln.outline * 16).astype(np.int32)], True, 1.0, thick, cv2.LINE_AA, 4)
        # the temple, from the outer top edge towards the ear
        start = ln.centre - ln.inward * ln.a * 0.97 - down * b * 0.35
        end = start - ln.inward * ln.eye_width * rng.uniform(0.6, 1.4)
        cv2.line(frame, tuple(np.round(start).astype(int)), tuple(np.round(end).astype(int)), 1.0,
                 max(1, thick or int(round(ln.eye_width * 0.05))), cv2.LINE_AA)
    # the bridge between the inner top edges
    l0, l1 = lenses
    p0, p1 = (ln.centre + ln.inward * ln.a * 0.9 - down * b * 0.3 for ln in lenses)
    cv2.line(frame, tuple(np.round(p0).astype(int)), tuple(np.round(p1).astype(int)), 1.0,
             max(1, thick or int(round(l0.eye_width * 0.06))), cv2.LINE_AA)
    # lens colour: near black, brown, green, blue or gray tints; sometimes mirrored (bright)
    if rng.random() < 0.1:
        tint = rng.uniform(90, 230, 3)
    else:
        tint = np.array([[18, 18, 20], [60, 40, 25], [40, 55, 40], [30, 40, 70], [55, 55, 58]][int(rng.integers(5))],
                        np.float64) * rng.uniform(0.5, 1.4)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    mid = (l0.centre + l1.centre) / 2
    along = (xs - mid[0]) * down[0] + (ys - mid[1]) * down[1]
    grad = 1 + rng.uniform(0, 0.6) * np.clip(along / max(b, 1.0), -1, 1)  # gradient lenses: lighter below
    lens_rgb = tint[None, None, :] * grad[..., None]
    see_through = rng.uniform(0.0, 0.55) ** 2  # the eye faintly behind the tint (mostly dark lenses)
    lens_rgb = lens_rgb * (1 - see_through) + base_rgb.astype(np.float32) * see_through * rng.uniform(0.3, 0.7)
    if rng.random() < 0.7:  # a reflection: a soft bright streak
        spot = np.zeros(shape, np.float32)
        c = lenses[int(rng.integers(2))].centre + rng.normal(0, 0.3, 2) * l0.a
        cv2.ellipse(spot, (int(c[0]), int(c[1])), (max(1, int(l0.a * 0.5)), max(1, int(b * 0.15))),
                    float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        spot = cv2.GaussianBlur(spot, (0, 0), max(1.0, l0.a * 0.15))
        lens_rgb = lens_rgb + rng.uniform(30, 140) * spot[..., None]
    frame_colour = np.array([[20, 20, 22], [70, 45, 30], [200, 170, 90], [190, 190, 195], rng.uniform(0, 255, 3)]
                            [int(rng.integers(5))], np.float64)
    fa = cv2.GaussianBlur(frame, (0, 0), 0.5)
    rgb = lens_rgb * (1 - fa[..., None]) + _textured(shape, rng, frame_colour) * fa[..., None]
    alpha = np.clip(np.maximum(lens, fa), 0, 1)
    return Layer("sunglasses", np.clip(rgb, 0, 255).astype(np.float32), alpha, OCCLUDER)


#: The headwear :func:`hat_layer` draws, with how often: a hat or helmet crown, a baseball cap with its brim
#: over the forehead, a knitted beanie pulled low, a hood and a headscarf (both frame the face and cover its
#: border: forehead, temples, jaw).
HEADWEAR_STYLES = (("crown", 0.3), ("cap", 0.25), ("beanie", 0.2), ("hood", 0.125), ("headscarf", 0.125))


def hat_layer(base: BaseFace, shape, rng: np.random.Generator, style: str | None = None) -> Layer:
    """Procedural headwear over the head and the top or border of the face (class occluder): one of
    :data:`HEADWEAR_STYLES` (drawn by its weight when ``style`` is None).

    The truth's face region comes from the base image, so what a brim, a hood or a scarf hides of the
    face's border counts as hidden, as the data definition asks. Raises ValueError for an unknown style."""
    from ..runtime.mesh import FOREHEAD_TOP, LEFT_BROW, RIGHT_BROW

    names = [n for n, _ in HEADWEAR_STYLES]
    if style is None:
        weights = np.array([w for _, w in HEADWEAR_STYLES])
        style = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    if style not in names:
        raise ValueError(f"unknown headwear style {style!r}; choose from {', '.join(names)}")
    face = base.face
    lm = face.landmarks
    across, down, fw, fh, _ = _face_frame(face)
    brow = lm[list(LEFT_BROW + RIGHT_BROW)].mean(0)
    top = lm[FOREHEAD_TOP]
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if style in ("hood", "headscarf"):
        # the fabric frames the face: everything around an opening over the eyes, nose and mouth
        centre = face.oval.mean(0) + down * fh * rng.uniform(-0.02, 0.06 if style == "hood" else 0.1)
        u = (xs - centre[0]) * across[0] + (ys - centre[1]) * across[1]
        v = (xs - centre[0]) * down[0] + (ys - centre[1]) * down[1]
        open_w = fw * rng.uniform(0.42, 0.5)  # wide enough to leave the eyes' outer corners free
        open_h = fh * (rng.uniform(0.46, 0.56) if style == "hood" else rng.uniform(0.40, 0.50))
        # the outer edge: the head's outline grown by the fabric's fold, centred a little higher
        outer_w, outer_h = fw * rng.uniform(0.6, 0.74), fh * rng.uniform(0.78, 0.95)
        vo = v + fh * rng.uniform(0.08, 0.16)
        inside_opening = (u / open_w) ** 2 + (v / open_h) ** 2 <= 1
        inside_outer = (u / outer_w) ** 2 + (vo / outer_h) ** 2 <= 1
        mask = (inside_outer & ~inside_opening).astype(np.float32)
        if style == "hood":  # a hood leaves the chin and neck free below the opening
            mask[v > open_h * rng.uniform(0.6, 1.0)] = 0
        mask = cv2.GaussianBlur(mask, (0, 0), 1.0)
        rgb = _textured(shape, rng)
        shade = np.clip(1 - 0.35 * np.exp(-np.maximum(0, (u / open_w) ** 2 + (v / open_h) ** 2 - 1) * 6), 0.6, 1)
        return Layer("hat", rgb * shade[..., None].astype(np.float32), np.clip(mask, 0, 1), OCCLUDER)
    low = {"crown": (0.25, 1.05), "cap": (0.15, 0.6), "beanie": (0.55, 1.15)}[style]
    edge = top + rng.uniform(*low) * (brow - top)  # lower edge of the crown, on the midline
    along = (xs - edge[0]) * down[0] + (ys - edge[1]) * down[1]
    side = (xs - edge[0]) * across[0] + (ys - edge[1]) * across[1]
    half = fw * rng.uniform(0.55, 0.7)
    curve = rng.uniform(0.0, 0.12) * fh * (side / half) ** 2  # the edge rises or dips towards the temples
    # a dome over the head (caps, beanies, helmets); a hat's crown is sometimes flat-topped
    crown_h = fh * rng.uniform(0.45, 0.7)
    dome = (side / half) ** 2 + (np.minimum(along, 0) / crown_h) ** 2 <= 1
    if style == "crown" and rng.random() < 0.4:
        dome = (np.abs(side) < half * rng.uniform(0.8, 0.95)) & (along > -crown_h)
    crown = (along < curve * rng.choice([-1, 1])) & dome
    mask = crown.astype(np.float32)
    rgb = _textured(shape, rng)
    if style == "beanie":  # knitted ribs, a folded band at the bottom
        ribs = 1 + 0.12 * np.sin(side / max(1.0, fw * 0.025))
        band = np.where(along > -fh * rng.uniform(0.08, 0.16), 0.85, 1.0)
        rgb = rgb * (ribs * band)[..., None].astype(np.float32)
    brim_p = {"crown": 0.6, "cap": 1.0, "beanie": 0.0}[style]
    if rng.random() < brim_p:
        if style == "cap":  # a peak seen from the front: curved down in the middle, its underside in shadow
            brim_h = fh * rng.uniform(0.08, 0.2)
            brim_w = half * rng.uniform(0.75, 1.05)
            sag = brim_h * rng.uniform(0.2, 0.6) * (1 - (side / brim_w) ** 2)
            brim = (along >= -0.01 * fh) & (along < brim_h * 0.5 + sag) & (np.abs(side) < brim_w)
            under = brim & (along > brim_h * 0.15)
            rgb = np.where(under[..., None], rgb * rng.uniform(0.35, 0.6), rgb).astype(np.float32)
        else:  # a flat band below the crown, wider than it
            brim_h = fh * rng.uniform(0.04, 0.12)
            brim_w = half * rng.uniform(1.0, 1.5)
            brim = (along >= -0.01 * fh) & (along < brim_h) & (np.abs(side) < brim_w)
        mask = np.maximum(mask, brim.astype(np.float32))
    mask = cv2.GaussianBlur(mask, (0, 0), 0.8)
    return Layer("hat", np.clip(rgb, 0, 255).astype(np.float32), np.clip(mask, 0, 1), OCCLUDER)


def held_object_layer(base: BaseFace, shape, lib, rng: np.random.Generator) -> Layer:
    """A phone, cup, food or microphone held in front of the mouth or cheek, with a hand holding it."""
    from .occluders import hand_layer

    face = base.face
    across, down, fw, fh, _ = _face_frame(face)
    kp = face.key_points()
    mouth = kp[3:].mean(0)
    h, w = shape
    mask = np.zeros(shape, np.float32)
    what = rng.choice(["phone", "cup", "food", "microphone"])
    p = mouth + rng.normal(0, 0.12, 2) * np.array([fw, fh]) + across * rng.choice([-1, 1]) * rng.uniform(0, 0.25) * fw
    ang = float(np.degrees(np.arctan2(across[1], across[0]))) + rng.normal(0, 20)
    if what == "phone":
        size = (fw * rng.uniform(0.3, 0.45), fh * rng.uniform(0.45, 0.7))
    elif what == "cup":
        size = (fw * rng.uniform(0.3, 0.45), fh * rng.uniform(0.3, 0.45))
    elif what == "food":
        size = (fw * rng.uniform(0.25, 0.5), fh * rng.uniform(0.15, 0.3))
    else:
        size = (fw * rng.uniform(0.15, 0.25), fh * rng.uniform(0.15, 0.25))
    if what in ("food", "microphone"):
        cv2.ellipse(mask, (int(p[0] * 16), int(p[1] * 16)), (int(size[0] * 8), int(size[1] * 8)), ang, 0, 360, 1.0, -1,
                    cv2.LINE_AA, 4)
        if what == "microphone":  # the handle, away from the face
            far = p + down * fh * 1.5
            cv2.line(mask, tuple(np.round(p).astype(int)), tuple(np.round(far).astype(int)), 1.0,
                     max(2, int(size[0] * 0.35)), cv2.LINE_AA)
    else:
        box = cv2.boxPoints(((float(p[0]), float(p[1])), size, ang))
        cv2.fillPoly(mask, [np.round(box * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
    base_colour = {"phone": rng.uniform(10, 60, 3), "microphone": rng.uniform(20, 80, 3)}.get(what)
    rgb = _textured(shape, rng, base_colour)
    a = cv2.GaussianBlur(mask, (0, 0), 0.6)
    if rng.random() < 0.7 and lib is not None:  # the hand that holds it, over the object's lower part
        hand = hand_layer(base, shape, lib, rng, aim=True)
        ha = hand.alpha[..., None]
        rgb = rgb * (1 - ha) + hand.rgb * ha
        a = np.maximum(a, hand.alpha)
    return Layer("held_object", rgb.astype(np.float32), np.clip(a, 0, 1), OCCLUDER)
