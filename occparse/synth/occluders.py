"""Occluder placement: each function puts one kind of occluder on a face, as an RGBA layer.

A layer has the base image's size; its alpha says which pixels the occluder covers
(alpha >= 0.5 counts as covered for the ground truth). Placement follows the mesh:
mask anchors through a homography, glasses on the eye centres, caps above the brows,
hands reaching in from outside the face, hair transplanted from another person.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..labels import HAIR, OCCLUDER
from ..runtime.align import alignment_matrix
from ..runtime.mesh import (
    BETWEEN_EYES,
    CHIN_BOTTOM,
    FOREHEAD_TOP,
    LEFT_BROW,
    LOWER_LIP_BOTTOM,
    NOSE_BRIDGE_MID,
    NOSE_TIP,
    RIGHT_BROW,
    Face,
)
from ..runtime.regions import face_region
from .sources import BaseFace, OccluderLibrary, read_label_map, read_rgb


@dataclass
class Layer:
    """One pasted occluder at the base image's geometry."""

    kind: str
    rgb: np.ndarray  # H x W x 3 float32 in 0..255
    alpha: np.ndarray  # H x W float32 in 0..1
    label: int  # HAIR, OCCLUDER or FACIAL_HAIR (occparse.labels)
    #: False for look-alikes (paint, shadows): they change the picture but neither the truth nor the labels
    occludes: bool = True


def _warp_rgba(rgba: np.ndarray, m: np.ndarray, shape: tuple[int, int], perspective: bool = False) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    src = rgba.astype(np.float32)
    # premultiply so that transparent pixels do not bleed their colour into the edge
    src[..., :3] *= src[..., 3:4] / 255.0
    if perspective:
        out = cv2.warpPerspective(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    else:
        out = cv2.warpAffine(src, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a = out[..., 3] / 255.0
    rgb = out[..., :3] / np.maximum(a[..., None], 1e-6)
    return np.clip(rgb, 0, 255), np.clip(a, 0, 1)


def _similarity(src_pts: np.ndarray, dst_pts: np.ndarray) -> np.ndarray:
    m, _ = cv2.estimateAffinePartial2D(src_pts.astype(np.float32), dst_pts.astype(np.float32))
    return m


def _rotation_about(center: np.ndarray, angle_deg: float, scale: float, target: np.ndarray) -> np.ndarray:
    """Affine that rotates/scales about ``center`` (source pixels) and moves it to ``target``."""
    m = cv2.getRotationMatrix2D((float(center[0]), float(center[1])), angle_deg, scale)
    m[:, 2] += target - center
    return m


def _face_frame(face: Face) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """(across, down, face width, face height, roll in degrees) of a face."""
    across, down = face.axes()
    o = face.oval
    width = float(np.ptp(o @ across))
    height = float(np.ptp(o @ down))
    roll = float(np.degrees(np.arctan2(across[1], across[0])))
    return across, down, width, height, roll


def _oval_crossings(face: Face, point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the line through ``point`` perpendicular to the face's vertical axis meets the oval (right, left)."""
    across, down = face.axes()
    o = face.oval.astype(np.float64)
    t0 = float(point @ down)
    hits = []
    for p, q in zip(o, np.roll(o, -1, axis=0), strict=True):
        dp, dq = float(p @ down) - t0, float(q @ down) - t0
        if dp == dq or dp * dq > 0:
            continue
        u = dp / (dp - dq)
        hits.append(p + u * (q - p))
    if len(hits) < 2:  # line outside the oval: fall back to the extreme points
        return o[np.argmin(o @ across)], o[np.argmax(o @ across)]
    hits = np.array(hits)
    s = hits @ across
    return hits[np.argmin(s)], hits[np.argmax(s)]


def face_mask_anchors(face: Face) -> np.ndarray:
    """Where the six mask anchors a..f land on this face (see ../shared/data/README.md).

    a, c: face contour at the height of the nose tip; b: middle of the nose bridge;
    d, f: contour at the height of the lower lip; e: bottom of the chin. a and d are on the
    picture's left.
    """
    lm = face.landmarks
    a, c = _oval_crossings(face, lm[NOSE_TIP])
    d, f = _oval_crossings(face, lm[LOWER_LIP_BOTTOM])
    return np.array([a, lm[NOSE_BRIDGE_MID], c, d, lm[CHIN_BOTTOM], f], np.float32)


def yaw_ratio(face: Face) -> float:
    """Nose tip position between the cheek contours: 0.5 frontal, towards 0 or 1 when turned."""
    a, c = _oval_crossings(face, face.landmarks[NOSE_TIP])
    across, _ = face.axes()
    return float((face.landmarks[NOSE_TIP] - a) @ across / max(1e-6, (c - a) @ across))


def _recolour(rgb: np.ndarray, rng: np.random.Generator, textures: list[np.ndarray], neutral_rate: float = 0.0,
              alpha: np.ndarray | None = None) -> np.ndarray:
    """Masks come in many colours and prints: tint, texture or keep. ``neutral_rate``: the share made
    white, gray or black (real masks often are, and a white or black mask is the parser's hardest);
    their shading is the mask's own luminance relative to its mean over the covered pixels
    (``alpha`` >= 0.5; the whole picture when None)."""
    if neutral_rate and rng.random() < neutral_rate:  # no draw at 0: the first engine stays byte-identical
        grey_lum = rgb.mean(axis=2, keepdims=True)
        covered = grey_lum[..., 0][alpha >= 0.5] if alpha is not None else grey_lum
        # relative to the mask's own mean: the zeros a warp leaves outside the mask must not count
        lum = grey_lum / max(float(covered.mean()) if covered.size else 1.0, 1.0)
        grey = [rng.uniform(200, 250), rng.uniform(90, 170), rng.uniform(10, 45)][int(rng.integers(3))]
        return np.clip(grey * (0.75 + 0.25 * lum) + rng.normal(0, 3, 3), 0, 255)
    r = rng.random()
    if r < 0.35:
        return rgb
    lum = rgb.mean(axis=2, keepdims=True) / 255.0
    if r < 0.7 or not textures:
        colour = rng.uniform(0, 255, 3)
        return np.clip(lum * colour * rng.uniform(0.9, 1.3), 0, 255)
    tex = textures[int(rng.integers(len(textures)))]
    tex = cv2.resize(tex, (rgb.shape[1], rgb.shape[0])).astype(np.float32)
    return np.clip(tex * (0.45 + 0.75 * lum), 0, 255)


def mask_layer(base: BaseFace, shape, lib: OccluderLibrary, rng: np.random.Generator, template: str | None = None,
               neutral_rate: float = 0.0) -> Layer:
    """A face-mask template fitted to the mesh through the six anchors (homography).

    ``template`` forces one masks.cfg template by name (e.g. "surgical"), unrecoloured; ``neutral_rate``:
    the share recoloured white, gray or black (the real engine's)."""
    if template is not None:
        t = next((t for t in lib.mask_templates if t.name == template), None)
        if t is None:
            raise ValueError(f"no mask template {template!r}; have {[t.name for t in lib.mask_templates]}")
        hmat, _ = cv2.findHomography(t.anchors, face_mask_anchors(base.face))
        rgb, a = _warp_rgba(t.rgba, hmat, shape, perspective=True)
        return Layer("mask", rgb, a, OCCLUDER)
    yr = yaw_ratio(base.face)
    # a face turned so that its nose sits left in the picture takes the "left" template view
    view = "left" if yr < 0.4 else "right" if yr > 0.6 else "front"
    if rng.random() < 0.15:  # the simple accessory masks, anchored by their bounding box
        names = [n for n in lib.accessories if n.startswith("mask")]
        rgba = lib.accessories[names[int(rng.integers(len(names)))]]
        h, w = rgba.shape[:2]
        src = np.array([[0, 0.3 * h], [w / 2, 0], [w, 0.3 * h], [0.05 * w, 0.78 * h], [w / 2, h], [0.95 * w, 0.78 * h]], np.float32)
    else:
        cands = [t for t in lib.mask_templates if t.view == view] or lib.mask_templates
        t = cands[int(rng.integers(len(cands)))]
        rgba, src = t.rgba, t.anchors
    dst = face_mask_anchors(base.face)
    # small jitter: masks are worn higher or lower, tighter or looser
    across, down, fw, fh, _ = _face_frame(base.face)
    dst = dst + (rng.normal(0, 0.015 * fh, (6, 1)) * down) + rng.normal(0, 0.01 * fw, (6, 2))
    dst[1] += down * rng.uniform(-0.04, 0.06) * fh  # nose bridge: worn over or under the nose tip
    hmat, _ = cv2.findHomography(src, dst)
    rgb, a = _warp_rgba(rgba, hmat, shape, perspective=True)
    rgb = _recolour(rgb, rng, lib.textures, neutral_rate, alpha=a)
    return Layer("mask", rgb, a, OCCLUDER)


def glasses_layer(base: BaseFace, shape, lib: OccluderLibrary, rng: np.random.Generator, sun: bool) -> Layer:
    """Eyeglasses or sunglasses: lens centres on the eye centres (similarity)."""
    rgba = lib.accessories["sunglass" if sun else "glass"]
    h, w = rgba.shape[:2]
    spread = rng.uniform(0.95, 1.12)
    lens = np.array([[w * (0.5 - 0.25 * spread), h * 0.45], [w * (0.5 + 0.25 * spread), h * 0.45]], np.float32)
    kp = base.face.key_points()
    _, down, _, fh, _ = _face_frame(base.face)
    eyes = kp[:2] + down * rng.uniform(-0.01, 0.03) * fh
    m = _similarity(lens, eyes)
    rgb, a = _warp_rgba(rgba, m, shape)
    if sun and rng.random() < 0.6:  # dark tinted lenses of various colours
        rgb = np.clip(rgb * rng.uniform(0.2, 0.8) + rng.uniform(0, 60, 3), 0, 255)
    return Layer("sunglasses" if sun else "glasses", rgb, a, OCCLUDER)


def cap_layer(base: BaseFace, shape, lib: OccluderLibrary, rng: np.random.Generator) -> Layer:
    """A cap over the forehead: bottom edge between the hairline and the eyebrows."""
    rgba = lib.accessories["cap"]
    if rng.random() < 0.5:
        rgba = rgba[:, ::-1].copy()
    h, w = rgba.shape[:2]
    lm = base.face.landmarks
    _, down, fw, _, roll = _face_frame(base.face)
    brow = lm[list(LEFT_BROW + RIGHT_BROW)].mean(0)
    top = lm[FOREHEAD_TOP]
    t = rng.uniform(0.3, 1.0)  # 0: at the top of the oval, 1: down to the brows
    bottom_mid = top + t * (brow - top)
    scale = fw * rng.uniform(1.15, 1.5) / w
    # the crown's bottom edge sits at ~80% of the cut-out's height (the brim hangs lower)
    m = _rotation_about(np.array([w / 2, 0.8 * h]), -roll + rng.normal(0, 4), scale, bottom_mid)
    rgb, a = _warp_rgba(rgba, m, shape)
    rgb = _recolour(rgb, rng, [])
    return Layer("cap", rgb, a, OCCLUDER)


def hand_layer(base: BaseFace, shape, lib: OccluderLibrary, rng: np.random.Generator, aim: bool = False,
               lower_face: float = 0.0) -> Layer:
    """A hand reaching in: wrist pointing away from the face, fingers over part of it.

    ``aim``: most hands go over the mouth or an eye, as in real photos (a hand in front of the
    mouth, rubbing an eye); without it the first engine's spread around the face centre.
    ``lower_face`` (0..1): that share of the aimed hands (70% of all) goes to the chin (60%) or a
    cheek (40%) instead (a chin resting on a hand, a hand along the jaw); 0 keeps the random draws
    of the engines as they were."""
    rgba = lib.hand(int(rng.integers(1 << 30)))
    if rng.random() < 0.5:
        rgba = rgba[:, ::-1].copy()
    h, w = rgba.shape[:2]
    ys, xs = np.nonzero(rgba[..., 3] > 127)
    if len(xs) == 0:
        return Layer("hand", np.zeros(shape + (3,), np.float32), np.zeros(shape, np.float32), OCCLUDER)
    hand_h = float(ys.max() - ys.min() + 1)
    across, down, fw, fh, roll = _face_frame(base.face)
    centre = base.face.oval.mean(0)
    # target point for the hand's centre: somewhere over or near the face
    offset = rng.normal(0, 1, 2) * np.array([0.3 * fw, 0.3 * fh])
    target = centre + offset[0] * across + offset[1] * down
    if aim and rng.random() < 0.7:
        kp = base.face.key_points()  # right eye, left eye, nose tip, mouth corners
        if lower_face > 0 and rng.random() < lower_face:
            mouth = kp[3:].mean(0)
            side = float(rng.choice([-1.0, 1.0]))
            spot = [mouth + 0.3 * fh * down, mouth + side * 0.3 * fw * across][int(rng.random() < 0.4)]
        else:
            spot = [kp[3:].mean(0), kp[0], kp[1]][int(rng.choice(3, p=[0.6, 0.2, 0.2]))]
        target = spot + rng.normal(0, 0.08, 2) * np.array([fw, fh])
    # direction the wrist points to: away from the face centre, mostly downwards or sideways
    out_dir = target - centre
    if np.linalg.norm(out_dir) < 1e-3 or rng.random() < 0.35:
        out_dir = down + rng.normal(0, 0.6) * across
    ang_out = np.degrees(np.arctan2(out_dir[1], out_dir[0]))
    # in the cut-out the wrist points down (+90 deg); rotate so it points along out_dir
    angle = -(ang_out - 90.0) + rng.normal(0, 12)
    scale = fh * rng.uniform(0.4, 1.05) / hand_h
    hand_centre = np.array([(xs.min() + xs.max()) / 2, ys.min() + 0.4 * hand_h])
    m = _rotation_about(hand_centre, angle, scale, target)
    rgb, a = _warp_rgba(rgba, m, shape)
    return Layer("hand", rgb, a, OCCLUDER)


def hair_layer(base: BaseFace, shape, donors: list[BaseFace], rng: np.random.Generator, real: bool = False) -> Layer:
    """Head hair from another person's LFW hair label, moved onto this face by a similarity.

    ``real`` (the real-occluder engine): a donor's facial hair is never moved as head hair (beards
    are their own kind and class), and half the time the hair gets another hair colour (blond,
    gray, red, black), so that strands of every colour are seen over an eye."""
    # prefer donors whose hair reaches into their own face region (fringes): a few draws, best kept
    best = None
    for _ in range(4):
        cand = donors[int(rng.integers(len(donors)))]
        if cand.image_path == base.image_path:
            continue
        lab = read_label_map(cand.label_path)
        inside = float(((lab == 2) & face_region(cand.face, lab.shape)).mean())
        if best is None or inside > best[0]:
            best = (inside, cand, lab)
    if best is None:
        return Layer("hair", np.zeros(shape + (3,), np.float32), np.zeros(shape, np.float32), HAIR)
    _, donor, dlab = best
    drgb = read_rgb(donor.image_path).astype(np.float32)
    hair = (dlab == 2).astype(np.float32)
    if rng.random() < 0.6:  # often a fringe only: drop the donor's beard
        lm = donor.face.landmarks
        _, ddown = donor.face.axes()
        ys, xs = np.mgrid[0 : hair.shape[0], 0 : hair.shape[1]]
        along = xs * ddown[0] + ys * ddown[1]
        hair[along > float(lm[NOSE_TIP] @ ddown)] = 0
    if real and donor.gender == "M":
        from ..labels import facial_hair_zone

        hair[facial_hair_zone(donor.face, hair.shape)] = 0
    # donor -> base similarity through the canonical frame, with a little extra drop of the fringe
    m_d = np.vstack([alignment_matrix(donor.face), [0, 0, 1]])
    m_b = np.vstack([alignment_matrix(base.face), [0, 0, 1]])
    shift = np.eye(3)
    shift[1, 2] = rng.uniform(0, 28)  # canonical pixels: lets the fringe fall lower on the forehead
    m = (np.linalg.inv(m_b) @ shift @ m_d)[:2]
    h, w = shape
    rgb = cv2.warpAffine(drgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    a = cv2.warpAffine(hair, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a = cv2.GaussianBlur(a, (0, 0), 0.7)
    if real and rng.random() < 0.5:
        from .real_occluders import recolour_hair

        rgb = recolour_hair(rgb, rng)
    return Layer("hair", rgb, np.clip(a, 0, 1), HAIR)


def _texture_source(rng: np.random.Generator, lib: OccluderLibrary, pool: list[BaseFace]) -> np.ndarray:
    r = rng.random()
    if r < 0.4 and lib.textures:
        return lib.textures[int(rng.integers(len(lib.textures)))].astype(np.float32)
    if r < 0.75 and pool:
        img = read_rgb(pool[int(rng.integers(len(pool)))].image_path)
        return cv2.resize(img, (256, 256)).astype(np.float32)[::-1]  # upside down: no second face
    colour = rng.uniform(0, 255, 3)
    noise = rng.normal(0, rng.uniform(2, 20), (256, 256, 1))
    return np.clip(colour + noise, 0, 255).astype(np.float32)


def object_layer(base: BaseFace, shape, lib: OccluderLibrary, pool: list[BaseFace], rng: np.random.Generator) -> Layer:
    """A generic object: ellipse, box, polygon, bar or microphone, textured with another photo's pixels."""
    across, down, fw, fh, roll = _face_frame(base.face)
    centre = base.face.oval.mean(0)
    h, w = shape
    size = fw * rng.uniform(0.15, 0.65)
    p = centre + rng.normal(0, 0.3) * fw * across + rng.normal(0, 0.3) * fh * down
    mask = np.zeros((h, w), np.uint8)
    shape_kind = rng.choice(["ellipse", "box", "polygon", "bar", "microphone"])
    ang = rng.uniform(0, 180)
    if shape_kind == "ellipse":
        cv2.ellipse(mask, (p * 16).astype(int).tolist(), (int(size * 8), int(size * 8 * rng.uniform(0.4, 1))), ang, 0, 360, 1, -1, cv2.LINE_AA, 4)
    elif shape_kind == "box":
        box = cv2.boxPoints(((float(p[0]), float(p[1])), (size, size * rng.uniform(0.3, 1.2)), ang))
        cv2.fillPoly(mask, [np.round(box).astype(np.int32)], 1)
    elif shape_kind == "polygon":
        k = int(rng.integers(3, 8))
        t = np.sort(rng.uniform(0, 2 * np.pi, k))
        r = size / 2 * rng.uniform(0.5, 1.0, k)
        pts = np.stack([p[0] + r * np.cos(t), p[1] + r * np.sin(t)], 1)
        cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
    else:  # a bar from outside the frame towards the face (a microphone adds a ball at its end)
        direction = rng.normal(0, 1, 2)
        direction /= np.linalg.norm(direction) + 1e-9
        far = p + direction * 2 * max(h, w)
        thick = max(2, int(size * (0.25 if shape_kind == "microphone" else 0.3)))
        cv2.line(mask, tuple(np.round(p).astype(int)), tuple(np.round(far).astype(int)), 1, thick)
        if shape_kind == "microphone":
            cv2.circle(mask, tuple(np.round(p).astype(int)), max(3, int(size * 0.4)), 1, -1)
    tex = _texture_source(rng, lib, pool)
    rgb = cv2.resize(tex, (w, h))
    a = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 0.6)
    if shape_kind == "microphone":  # dark metal
        rgb = np.clip(rgb * 0.35, 0, 255)
    return Layer("object", rgb, np.clip(a, 0, 1), OCCLUDER)


def scarf_layer(base: BaseFace, shape, lib: OccluderLibrary, pool: list[BaseFace], rng: np.random.Generator) -> Layer:
    """A scarf or collar pulled up from below: covers the chin, sometimes up to the nose."""
    lm = base.face.landmarks
    across, down, fw, fh, _ = _face_frame(base.face)
    h, w = shape
    top_pt = lm[CHIN_BOTTOM] + rng.uniform(0.0, 1.0) * (lm[NOSE_TIP] - lm[CHIN_BOTTOM])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    along = (xs - top_pt[0]) * down[0] + (ys - top_pt[1]) * down[1]
    side = (xs - lm[BETWEEN_EYES][0]) * across[0] + (ys - lm[BETWEEN_EYES][1]) * across[1]
    wave = 0.04 * fh * np.sin(side / fw * rng.uniform(4, 10) + rng.uniform(0, 6))
    # a slightly curved upper edge that rises towards the cheeks
    edge = wave - 0.15 * fh * (side / (0.5 * fw)) ** 2 * rng.uniform(0, 1)
    a = (along > edge).astype(np.float32)
    a = cv2.GaussianBlur(a, (0, 0), 0.8)
    rgb = cv2.resize(_texture_source(rng, lib, []), (w, h))
    return Layer("scarf", rgb, np.clip(a, 0, 1), OCCLUDER)
