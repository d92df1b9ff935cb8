"""A parser training pool of real hair: the ``train`` part of CelebA-HQ's hair-mask photos.

Written in the format of ``occparse synth`` pools (``images/NNNNNN.jpg`` 224 x 224 aligned crops,
``labels/NNNNNN.png``, ``truth.csv``), so ``occparse train parser --pool`` takes it beside them.

Labels (values of :mod:`occparse.labels`), at the photo's own 256 x 256 geometry, then warped to the
crop like every pool's labels:

* the CelebAMask-HQ hair mask (1 = hair) -> 2 (hair) everywhere: real fringes and strands over the face;
* the rest of the face region R -> 1 (visible face) only on *clean* photos, whose attributes show no
  hat, no eyeglasses, no goatee, moustache, sideburns or stubble (``5_o_Clock_Shadow``) and
  ``No_Beard``, and where the audit by eye saw nothing else clearly over the face (a hand, a headband,
  a microphone, ...: ``occparse/synth/celebahq_hair_audit.csv``): the mask labels hair only, so on
  other photos a hat, glasses, a beard or a hand in R would be taught as face; there R's non-hair
  pixels are 255 (unknown, ignored by the loss);
* everything else (background, neck, clothes, a hat outside R) -> 255: the mask does not tell them apart.

Only ``train`` photos (:func:`occparse.synth.sources.celebahq_split`) are used: the ``val`` part is the
CelebA benchmark's (benchmarks/celebahq_kinds.py). ``FaceOcclusion`` in the truth is the share of R
under the hair mask: on a clean photo the photo's occlusion as far as the labels tell, on the others a
lower bound (``occluder`` says which: ``hair_mask`` or ``hair_mask_partial``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..labels import FACE, HAIR, IGNORE
from ..runtime.align import CANONICAL_SIZE, align
from ..runtime.io import to_gray3
from ..runtime.regions import face_region
from .sources import CelebAPhoto, _mesh_cached, celebahq_photos, hair_mask_occluders, read_label_map, read_rgb

#: attributes that make a photo's non-hair R unknown (something besides hair may cover the face)
NOT_CLEAN = ("Wearing_Hat", "Eyeglasses", "Goatee", "Mustache", "Sideburns", "5_o_Clock_Shadow")


def is_clean(attributes: dict[str, bool]) -> bool:
    """No hat, eyeglasses or facial hair of any kind by CelebA's attributes (``No_Beard`` set): the only
    occluder the attributes know of is hair, so R minus the hair mask can be taught as visible face.
    A missing attribute counts against cleanness."""
    return not any(attributes.get(k, True) for k in NOT_CLEAN) and attributes.get("No_Beard", False)


def teaches_face(photo: CelebAPhoto) -> bool:
    """Whether a hair-mask photo's R minus its hair can be taught as visible face: :func:`is_clean` by its
    attributes, and nothing that occludes seen clearly over the face by the audit
    (:func:`occparse.synth.sources.hair_mask_occluders`)."""
    return is_clean(photo.attributes) and not hair_mask_occluders(photo.name)


def hair_pool_labels(hair_mask: np.ndarray, region: np.ndarray, clean: bool) -> np.ndarray:
    """Label map (uint8 H x W) of one photo from its hair mask (H x W, 1 = hair) and R (bool H x W):
    hair -> 2; R minus hair -> 1 when ``clean`` else 255; everything else 255.
    Raises ValueError when the shapes differ."""
    if hair_mask.shape != region.shape:
        raise ValueError(f"hair mask {hair_mask.shape} and face region {region.shape} differ in shape")
    hair = hair_mask == 1
    lab = np.full(hair.shape, IGNORE, np.uint8)
    if clean:
        lab[region & ~hair] = FACE
    lab[hair] = HAIR
    return lab


def write_pool_sample(out: Path, i: int, image: np.ndarray, labels: np.ndarray, gray_every: int) -> tuple[str, bool]:
    """Write sample ``i`` of a pool: ``out/images/NNNNNN.jpg`` (``image``, RGB uint8; stored gray, three equal
    channels, when ``i`` is the last of every ``gray_every``; 0: never) and ``out/labels/NNNNNN.png``
    (``labels``). Returns (the image's file name, whether it was stored gray)."""
    gray = gray_every > 0 and i % gray_every == gray_every - 1
    name = f"{i:06d}.jpg"
    cv2.imwrite(str(out / "images" / name), (to_gray3(image) if gray else image)[..., ::-1],
                [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(out / "labels" / f"{i:06d}.png"), labels)
    return name, gray


def write_celebahq_hair_pool(data_root: Path, out: Path, variants: int = 1, gray_every: int = 4,
                             size: int = CANONICAL_SIZE, limit: int | None = None,
                             show_progress: bool = True) -> tuple[Path, dict[str, int]]:
    """Write the pool into ``out`` (images/, labels/, truth.csv): ``variants`` copies of each train
    hair-mask photo that the mesh finds a face in (the trainer augments each copy differently); every
    ``gray_every``-th copy (counting over the whole pool; 0: none) is stored as gray (three equal channels).

    Returns (truth path, counts: photos, no_mesh, clean, samples). Raises DataNotFoundError when the
    folder is missing, ValueError for ``variants`` < 1 or when no photo has a face."""
    from .writer import write_truth

    if variants < 1:
        raise ValueError(f"variants must be >= 1, not {variants}")
    photos: list[CelebAPhoto] = celebahq_photos(data_root, "celebahq_hair", "train")[:limit]
    meshes = _mesh_cached([p.image_path for p in photos], "celebahq_hair", show_progress)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    rows, counts, i = [], {"photos": len(photos), "no_mesh": 0, "clean": 0, "samples": 0}, 0
    for p in photos:
        face = meshes.get(p.name)
        if face is None:
            counts["no_mesh"] += 1
            continue
        rgb = read_rgb(p.image_path)
        hair = read_label_map(p.hair_path)
        if hair.shape != rgb.shape[:2]:
            hair = cv2.resize(hair, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_NEAREST)
        region = face_region(face, hair.shape)
        clean = teaches_face(p)
        counts["clean"] += clean
        lab = hair_pool_labels(hair, region, clean)
        n = int(region.sum())
        gt = float(((hair == 1) & region).sum()) / n if n else 1.0
        crop = align(rgb, face, size)
        crop_lab = align(lab, face, size, nearest=True, matrix=crop.matrix, fill=IGNORE).image
        for _ in range(variants):
            name, gray = write_pool_sample(out, i, crop.image, crop_lab, gray_every)
            rows.append({"filename": name, "FaceOcclusion": f"{gt:.6f}", "gender": p.gender,
                         "is_gray": str(int(gray)), "occluder": "hair_mask" if clean else "hair_mask_partial",
                         "source": "celebahq_hair", "base": p.name})
            i += 1
    if not rows:
        raise ValueError("no CelebA-HQ hair-mask train photo with a face found by the mesh")
    counts["samples"] = len(rows)
    truth = out / "truth.csv"
    write_truth(truth, rows)
    return truth, counts
