"""A parser training pool from CelebA-HQ photos that have attributes but no pixel labels.

CelebA's attributes say *whether* a photo shows facial hair, not *where*. This pool turns them into
pixel labels with a teacher parser (an occparse parser ONNX export) and rules the attributes make safe:

* ``beard`` photos (a man with ``Goatee``, ``Mustache`` or ``Sideburns``): inside the facial-hair zone
  (:func:`occparse.labels.facial_hair_zone`, within R), a pixel whose teacher probability of facial hair
  plus hair reaches ``beard_threshold`` (below the teacher's own 0.5), that is darker than the photo's
  sure skin (at most ``BEARD_CONTRAST`` of its median luminance) and not on the lips is facial hair
  (a beard-like pixel that fails the luminance test is unknown; the lips are face), one whose
  teacher face probability reaches ``confidence`` stays face (bare skin between the patches of a
  goatee or under a moustache), and the rest is unknown (the beard the teacher misses, or skin: the
  attribute cannot tell). This is a multiple-instance reading of the attribute: the photo holds
  facial hair, so the zone's most beard-like pixels are taught as such, without teaching that the
  whole zone of a bearded man is beard.
* ``plain`` photos (clean by :func:`occparse.synth.celebahq_pool.is_clean`: no hat, eyeglasses or
  facial hair of any kind, and no ``Bangs``): the zone holds no facial hair, so the teacher's facial
  hair there becomes visible face and its hair there unknown (long hair can fall across the jaw);
  in the rest of R, wherever the teacher's first choice is face it is taught as face whatever its
  confidence (nothing but hair can hide such a face, and the teacher's hair is kept only where sure).
  With ``Bald``, ``Receding_Hairline`` or ``Gray_Hair`` such a photo is a *light-hair negative*: a
  bare or wrinkled forehead that a parser taught on fringes may read as hair.
* ``sunglasses`` photos (``Eyeglasses``, no hat or fringe; only when ``max_per_kind`` asks for them):
  CelebA does not tell dark glasses from clear ones, so the photo's own pixels do. Both eyes must
  be dark (``occparse.runtime.lenses.dark_lenses``: the 90th percentile of the luminance around each eye at most
  ``occparse.runtime.lenses.LENS_P90`` of the median of the photo's sure skin; an open eye shows its white, a dark lens
  does not); clear glasses are skipped. Around each eye, the pixels at most ``LENS_CONTRAST`` of the
  skin's luminance that touch the eye, with the highlights inside them filled, are the lens
  (``occparse.runtime.lenses.lens_mask``): occluder. The rest of the search ellipse around the eye is unknown (frame, a
  lens's lighter rim), and everything else follows the rule below. Taught to the parser because a
  parser trained on pasted sunglasses reads most real dark lenses as visible eyes.
* ``hat`` photos (``Wearing_Hat``; only when ``max_per_kind`` asks for them): a brim or a cap pulls the face
  mesh's forehead in, and a parser trained on pasted headwear reads many real caps there as hair or
  visible face, so the crown rule (:func:`occparse.runtime.regions.crown_band`) cannot count them. Where the
  face-shape prior finds the forehead top pulled in (:func:`occparse.runtime.regions.pulled_band`: the band
  between the mesh's R and the mean face's upper outline, above the eyebrows), the band's pixels are the
  hat: occluder, except those the teacher is sure are face (a forehead a raised hat leaves bare, or a cap
  the attribute cannot tell from it: unknown). A hat photo without that pull is skipped (the hat sits
  above the face region, or a face without a depth fit: nothing to teach); so is a hat photo with ``Bangs`` (a
  fringe under the brim would lie in the band). The facial-hair zone follows the attributes (:func:`lower_face`):
  a clean lower face's teacher facial hair is face, a stubbled one is unknown where the teacher is not sure
  of face, a beard keeps the teacher's labels. Everything else follows the rule below.
* Everywhere else the teacher's label is kept where its confidence reaches ``confidence``, unknown
  (255) below it.

So the pool moves the student where the attribute is certain and copies the teacher elsewhere; a
teacher's systematic error outside the zone is copied too, which is why the pool is mixed with real
pixel labels in training and judged on the CelebA val photos (never written here).

What the beard rule leaves unknown: gray and white beards and light stubble (not darker than the
skin), and every beard pixel of a photo with too little sure skin to compare with. The lips are
always face, also where a moustache hangs over the upper lip. On a ``Mustache`` photo the upper lip's
skin between the nose and the lips (:func:`moustache_band`) is never taught as face, and its pixels
darker than the skin are facial hair even where the teacher reads them as skin.

``hand_rate``: that share of the samples also get a real hand cut-out (the ``train`` hands of
``occluders/hands``) over the mouth or an eye, its luminance moved towards the face's, as the
synthetic engine pastes hands (:func:`occparse.synth.occluders.hand_layer`); with
``hand_lower_face``, that share of the aimed hands (about 70% of them) goes to the chin or a cheek.
The teacher labels the clean photo; the hand's pixels are then occluder. Skin-coloured hands on high-quality faces are
what a parser taught on attribute photos alone would otherwise learn to call face.

Only ``train`` photos (:func:`occparse.synth.sources.celebahq_split`) are used. The truth CSV's
``FaceOcclusion`` is the share of R the labels mark as not visible face, counting unknown pixels as
visible: a rough value for pool statistics, not for fitting regressors (``occluder`` is
``attr_beard``, ``attr_plain`` or ``attr_light_hair``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..labels import FACE, FACIAL_HAIR, HAIR, IGNORE, facial_hair_zone
from ..runtime.align import CANONICAL_SIZE, align
from ..runtime.lenses import find_lenses, luminance
from ..runtime.mesh import NOSE, OUTER_LIPS
from ..runtime.occlusion import crop_footprint
from ..runtime.regions import _fill, _hull, crowned_region, face_region, pulled_band
from .celebahq_pool import is_clean, write_pool_sample
from .sources import CelebAPhoto, _mesh_cached, celebahq_photos, read_rgb

BEARD_ATTRIBUTES = ("Goatee", "Mustache", "Sideburns")
LIGHT_HAIR_ATTRIBUTES = ("Bald", "Receding_Hairline", "Gray_Hair")
#: the nose's base (alae and subnasale) and the outer upper lip, corner to corner: the moustache band's outline
NOSE_BASE = (98, 97, 2, 326, 327)
UPPER_OUTER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
BEARD_CONTRAST = 0.8  # a beard pixel is at most this share of the sure skin's median luminance
MIN_SKIN_PIXELS = 50  # fewer sure-skin pixels outside the zone than this: no reference, no beard labels


def photo_kind(p: CelebAPhoto) -> str | None:
    """``"beard"``, ``"light_hair"``, ``"plain"`` or None (not used) for one photo, from its attributes.

    A photo with ``Bangs`` or ``Wearing_Hat`` is not used (its forehead is unknown), nor one with
    ``Eyeglasses`` (CelebA does not tell dark glasses from clear ones); a beard photo must be a man's
    (CelebA marks some women's sideburns)."""
    a = p.attributes
    if a.get("Bangs", True) or a.get("Wearing_Hat", True) or a.get("Eyeglasses", True):
        return None
    if p.gender == "M" and any(a.get(k, False) for k in BEARD_ATTRIBUTES):
        return "beard"
    if is_clean(a):
        return "light_hair" if any(a.get(k, False) for k in LIGHT_HAIR_ATTRIBUTES) else "plain"
    return None


def is_glasses_photo(p: CelebAPhoto) -> bool:
    """An ``Eyeglasses`` photo without hat or fringe: a candidate for the sunglasses kind (its pixels decide)."""
    a = p.attributes
    return a.get("Eyeglasses", False) and not a.get("Bangs", True) and not a.get("Wearing_Hat", True)


def sunglasses_labels(probs: np.ndarray, luma: np.ndarray, landmarks: np.ndarray, region: np.ndarray,
                      confidence: float = 0.8) -> np.ndarray | None:
    """Training labels (uint8 H x W) of a sunglasses photo's crop, or None when its lenses are not dark
    (``occparse.runtime.lenses.find_lenses``) or it has too little sure skin to compare with. ``probs``: the teacher's
    5 x H x W probabilities; ``luma``: float H x W luminance; ``landmarks``: the crop's mesh points
    (pixels); ``region``: bool H x W, R. The teacher's confident labels, unknown (255) below
    ``confidence`` and in the search ellipses, and the lenses occluder."""
    from ..labels import OCCLUDER

    found = find_lenses(luma, probs[FACE], region, landmarks)
    if found is None:
        return None
    lens, searched = found
    lab = np.where(probs.max(0) >= confidence, probs.argmax(0), IGNORE).astype(np.uint8)
    lab[searched] = IGNORE
    lab[lens] = OCCLUDER
    return lab


def is_hat_photo(p: CelebAPhoto) -> bool:
    """A ``Wearing_Hat`` photo without a fringe: a candidate for the hat kind (its face mesh decides). A fringe
    under a brim would lie in the band the kind teaches as occluder."""
    return bool(p.attributes.get("Wearing_Hat", False)) and not p.attributes.get("Bangs", True)


def lower_face(attributes: dict[str, bool]) -> str:
    """What the attributes say of a photo's lower face: ``"beard"`` (a goatee, moustache or sideburns),
    ``"stubble"`` (``5_o_Clock_Shadow`` alone) or ``"clean"`` (``No_Beard`` and neither). A missing
    attribute counts against a clean face."""
    if any(attributes.get(k, False) for k in BEARD_ATTRIBUTES):
        return "beard"
    if attributes.get("5_o_Clock_Shadow", True) or not attributes.get("No_Beard", False):
        return "stubble"
    return "clean"


def hat_labels(probs: np.ndarray, band: np.ndarray, confidence: float = 0.8, zone: np.ndarray | None = None,
               lower: str = "beard") -> np.ndarray:
    """Training labels (uint8 H x W) of a hat photo's crop: the teacher's confident labels (unknown, 255, below
    ``confidence``), and in ``band`` (bool H x W, :func:`occparse.runtime.regions.pulled_band` on the crop's
    face) occluder, except where the teacher's face probability reaches ``confidence`` (unknown there).
    ``probs``: the teacher's 5 x H x W probabilities. In ``zone`` (bool H x W, the facial-hair zone within R;
    None: not used) the lower face follows ``lower`` (:func:`lower_face`): ``"clean"``, the teacher's facial
    hair there is face and its hair unknown; ``"stubble"``, unknown except where the teacher is sure of face;
    ``"beard"``, the teacher's confident labels. Raises ValueError when the shapes differ or for another
    ``lower``."""
    from ..labels import OCCLUDER

    if probs.shape[1:] != band.shape or (zone is not None and zone.shape != band.shape):
        raise ValueError(f"teacher probabilities {probs.shape[1:]}, band {band.shape} and zone differ in shape")
    if lower not in ("clean", "stubble", "beard"):
        raise ValueError(f"lower must be clean, stubble or beard, not {lower!r}")
    top = probs.argmax(0).astype(np.uint8)
    lab = np.where(probs.max(0) >= confidence, top, IGNORE).astype(np.uint8)
    if zone is not None and lower == "clean":
        lab[zone & (top == FACIAL_HAIR)] = FACE
        lab[zone & (top == HAIR)] = IGNORE
    elif zone is not None and lower == "stubble":
        lab[zone & (probs[FACE] < confidence)] = IGNORE
    sure_face = probs[FACE] >= confidence
    lab[band & sure_face] = IGNORE
    lab[band & ~sure_face] = OCCLUDER
    return lab


def moustache_band(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """bool H x W of ``shape``: the upper lip's skin, where a moustache grows: the hull of the nose's base and
    the outer upper lip (corner to corner), less the nose's and the lips' own hulls. ``landmarks``: the
    face mesh's points in the same image (pixels)."""
    band = _fill(shape, _hull(landmarks[list(NOSE_BASE + UPPER_OUTER_LIP), :2]))
    return band & ~_fill(shape, _hull(landmarks[list(NOSE), :2])) & ~_fill(shape, _hull(landmarks[list(OUTER_LIPS), :2]))


def attribute_labels(probs: np.ndarray, zone: np.ndarray, kind: str, region: np.ndarray | None = None,
                     beard_threshold: float = 0.3, confidence: float = 0.8, luma: np.ndarray | None = None,
                     lips: np.ndarray | None = None, beard_contrast: float = BEARD_CONTRAST,
                     moustache: np.ndarray | None = None) -> np.ndarray:
    """Training labels (uint8 H x W, occparse classes and 255) of one crop.

    ``probs``: the teacher's 5 x H x W float32 class probabilities; ``zone``: bool H x W, the facial-hair
    zone within R; ``kind``: :func:`photo_kind`'s answer; ``region``: bool H x W, R (None: R is not
    used, only the zone). For a beard photo, ``luma`` (float H x W, the crop's luminance, any scale)
    and ``lips`` (bool H x W, the outer-lip hull) make the rule stricter: a beard-like pixel is facial
    hair only where its luminance is at most ``beard_contrast`` times the median of the photo's sure
    skin outside the zone (``MIN_SKIN_PIXELS`` of it at least, else no pixel is), and never on the
    lips; such pixels that fail are unknown (255), and the lips are face. ``beard_contrast`` 0 turns
    the luminance test off. Why: on dark skin the teacher's facial-hair + hair probability passes the
    threshold on lips and clean skin around a thin moustache, which taught a parser that a dark lower
    face is a beard. ``moustache`` (bool H x W, :func:`moustache_band`; given for a ``Mustache`` photo): the
    attribute says the upper lip is covered, so no pixel of the band is taught as face there (the teacher's
    sure skin becomes unknown: a teacher that misses moustaches would teach the miss), and a band pixel that
    passes the luminance test is facial hair whatever the teacher says.
    Raises ValueError for an unknown kind, shapes that differ or a negative or NaN ``beard_contrast``."""
    if not beard_contrast >= 0.0:
        raise ValueError(f"beard_contrast must be 0 or more, not {beard_contrast}")
    if kind not in ("beard", "plain", "light_hair"):
        raise ValueError(f"kind must be beard, plain or light_hair, not {kind!r}")
    shapes = [a.shape for a in (region, luma, lips, moustache) if a is not None]
    if probs.shape[1:] != zone.shape or any(s != zone.shape for s in shapes):
        raise ValueError(f"teacher probabilities {probs.shape[1:]}, zone {zone.shape}, region, luma, lips and "
                         "moustache band differ in shape")
    top = probs.argmax(0).astype(np.uint8)
    lab = np.where(probs.max(0) >= confidence, top, IGNORE).astype(np.uint8)
    if kind != "beard" and region is not None:
        lab[region & (top == FACE)] = FACE
    if kind == "beard":
        beardish = (probs[FACIAL_HAIR] + probs[HAIR]) >= beard_threshold
        lab[zone] = IGNORE
        lab[zone & (probs[FACE] >= confidence)] = FACE
        if luma is not None and beard_contrast > 0:
            sure = (probs[FACE] >= confidence) & ~zone
            if region is not None:
                sure &= region
            # too little sure skin to compare with: no pixel of the zone is called a beard
            ref = float(np.median(luma[sure])) if sure.sum() >= MIN_SKIN_PIXELS else -np.inf
            beardish &= luma <= beard_contrast * ref
        if lips is not None:
            lab[zone & lips] = FACE
            beardish &= ~lips
        lab[zone & beardish] = FACIAL_HAIR
        if moustache is not None:
            upper = zone & moustache if lips is None else zone & moustache & ~lips
            lab[upper & (lab == FACE)] = IGNORE
            if luma is not None and beard_contrast > 0:
                lab[upper & (luma <= beard_contrast * ref)] = FACIAL_HAIR
    else:
        lab[zone & (top == FACIAL_HAIR)] = FACE
        lab[zone & (top == HAIR)] = IGNORE
    return lab


def write_celebahq_attribute_pool(data_root: Path, out: Path, teacher: Path, max_per_kind: dict[str, int] | None = None,
                                  gray_every: int = 4, size: int = CANONICAL_SIZE, beard_threshold: float = 0.3,
                                  confidence: float = 0.8, gender: str | None = None, hand_rate: float = 0.0,
                                  seed: int = 0, beard_contrast: float = BEARD_CONTRAST, hand_lower_face: float = 0.0,
                                  show_progress: bool = True) -> tuple[Path, dict[str, int]]:
    """Write the pool into ``out`` (images/, labels/, truth.csv), one sample per used train photo of
    ``faces/celebahq``; ``max_per_kind`` caps each kind (file-name order), e.g. ``{"plain": 600}``;
    ``gender`` ("F" or "M") keeps one gender's photos only (None: both); ``hand_rate`` (0..1) of the
    samples get a pasted hand (see the module docstring), drawn with ``seed``, ``hand_lower_face`` (0..1)
    of them over the chin or a cheek rather than the mouth or an eye; ``beard_contrast``: see
    :func:`attribute_labels` (0 turns the luminance test off; the lips are never facial hair).
    ``hand_lower_face`` needs ``hand_rate`` above 0.
    Every ``gray_every``-th sample is stored gray (three equal channels; 0: none).

    Returns (truth path, counts per kind plus ``no_mesh``, ``hands`` and ``samples``). Raises
    DataNotFoundError when the folder is missing, FileNotFoundError without the teacher, ValueError when
    no photo is used, ``hand_rate`` or ``hand_lower_face`` is outside 0..1, ``hand_lower_face`` is
    given without ``hand_rate`` or ``beard_contrast`` is negative."""
    from ..labels import OCCLUDER
    from ..runtime.parsing import FaceParser
    from .compose import composite, harmonise_layer
    from .occluders import hand_layer
    from .sources import BaseFace, OccluderLibrary
    from .writer import write_truth

    if not 0.0 <= hand_rate <= 1.0:
        raise ValueError(f"hand_rate must be in 0..1, not {hand_rate}")
    if not 0.0 <= hand_lower_face <= 1.0:
        raise ValueError(f"hand_lower_face must be in 0..1, not {hand_lower_face}")
    if hand_lower_face > 0 and hand_rate == 0:
        raise ValueError("hand_lower_face needs hand_rate above 0 (it places the pasted hands)")
    if not beard_contrast >= 0.0:
        raise ValueError(f"beard_contrast must be 0 or more, not {beard_contrast}")
    rng = np.random.default_rng(seed)
    hands = OccluderLibrary(data_root, "train") if hand_rate > 0 else None

    caps = max_per_kind or {}
    photos, taken = [], {"beard": 0, "light_hair": 0, "plain": 0}
    counts = {"beard": 0, "light_hair": 0, "plain": 0, "sunglasses": 0, "clear_glasses": 0, "hat": 0,
              "hat_no_pull": 0, "no_mesh": 0, "hands": 0, "samples": 0}
    want_sunglasses = caps.get("sunglasses", 0)  # asked for by name only: the kind is new, and costs a look at each
    want_hats = caps.get("hat", 0)  # the same: its face mesh decides which hat photos are used
    for p in celebahq_photos(data_root, "celebahq", "train"):
        kind = photo_kind(p)
        if kind is None and want_hats and is_hat_photo(p) and gender in (None, p.gender):
            photos.append((p, "hat"))  # the cap counts the ones written, below
        elif kind is None and want_sunglasses and is_glasses_photo(p) and gender in (None, p.gender):
            photos.append((p, "sunglasses"))  # the cap counts the dark ones written, below
        elif kind is not None and gender in (None, p.gender) and taken[kind] < caps.get(kind, 1 << 30):
            taken[kind] += 1
            photos.append((p, kind))
    parser = FaceParser(teacher, threads=2)
    meshes = _mesh_cached([p.image_path for p, _ in photos], "celebahq", show_progress)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    rows = []
    items = photos
    if show_progress:
        from tqdm import tqdm

        items = tqdm(photos, desc="labelling CelebA-HQ attribute photos", unit="img")
    for p, kind in items:
        if (kind == "sunglasses" and counts["sunglasses"] >= want_sunglasses) or (
                kind == "hat" and counts["hat"] >= want_hats):
            continue
        face = meshes.get(p.name)
        if face is None:
            counts["no_mesh"] += 1
            continue
        rgb = read_rgb(p.image_path)
        shape = rgb.shape[:2]
        region = face_region(face, shape)
        zone = (facial_hair_zone(face, shape) & region).astype(np.uint8)
        crop = align(rgb, face, size)
        crop_zone = align(zone, face, size, nearest=True, matrix=crop.matrix, fill=0).image.astype(bool)
        crop_r = align(region.astype(np.uint8), face, size, nearest=True, matrix=crop.matrix, fill=0).image.astype(bool)
        lips = _fill(shape, _hull(face.landmarks[list(OUTER_LIPS)]))
        crop_lips = align(lips.astype(np.uint8), face, size, nearest=True, matrix=crop.matrix,
                          fill=0).image.astype(bool)
        if kind == "hat":  # the pull test needs landmarks only: a hat photo without it is skipped before the parse
            # the band counts only where the crop shows the photo (its border is a mirror of the photo's edge)
            band = pulled_band(crop.face, crop_r.shape, lambda c=crop, s=shape: crop_footprint(c, s))
            if band is None:
                counts["hat_no_pull"] += 1
                continue
        luma = luminance(crop.image)
        probs = parser.parse([crop.image])[0].probs
        if kind == "hat":
            lab = hat_labels(probs, band, confidence, zone=crop_zone, lower=lower_face(p.attributes))
        elif kind == "sunglasses":
            lab = sunglasses_labels(probs, luma, crop.face.landmarks, crop_r, confidence)
            if lab is None:
                counts["clear_glasses"] += 1
                continue
        else:
            mous = moustache_band(crop.face.landmarks, crop_r.shape) if kind == "beard" and p.attributes.get(
                "Mustache", False) else None
            lab = attribute_labels(probs, crop_zone, kind, crop_r, beard_threshold, confidence, luma=luma,
                                   lips=crop_lips, beard_contrast=beard_contrast, moustache=mous)
        if hands is not None and rng.random() < hand_rate:  # the teacher read the clean photo; the hand is occluder
            base = BaseFace("celebahq", p.image_path, None, p.gender, face)
            hand = hand_layer(base, shape, hands, rng, aim=True, lower_face=hand_lower_face)
            layer = harmonise_layer(hand, rgb, region, rng)
            pasted = np.clip(composite(rgb, [layer], rng), 0, 255).astype(np.uint8)
            crop = align(pasted, face, size, matrix=crop.matrix)
            covered = align((layer.alpha >= 0.5).astype(np.uint8), face, size, nearest=True, matrix=crop.matrix,
                            fill=0).image.astype(bool)
            lab[covered] = OCCLUDER
            counts["hands"] += 1
        name, gray = write_pool_sample(out, len(rows), crop.image, lab, gray_every)
        if kind == "hat":  # R as if nothing covered the face: the runtime's crowned R (label_rules.with_crown)
            crop_r = crop_r | (band & crowned_region(crop.face, crop_r.shape))
        n = int(crop_r.sum())
        gt = float((crop_r & (lab != FACE) & (lab != IGNORE)).sum()) / n if n else 1.0
        rows.append({"filename": name, "FaceOcclusion": f"{gt:.6f}", "gender": p.gender, "is_gray": str(int(gray)),
                     "occluder": f"attr_{kind}", "source": "celebahq", "base": p.name})
        counts[kind] += 1
    if not rows:
        raise ValueError("no CelebA-HQ train photo of a usable kind with a face found by the mesh")
    counts["samples"] = len(rows)
    truth = out / "truth.csv"
    write_truth(truth, rows)
    return truth, counts
