"""Training data for the parser: synthetic pools written by `occparse synth`, with augmentation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..runtime.parsing import ParserSpec, preprocess
from ..synth.engine import IGNORE
from ..synth.sources import read_label_map, read_rgb
from ..synth.writer import read_truth_rows


def pool_items(dirs: list[Path]) -> list[tuple[Path, Path]]:
    """(image, label map) pairs from folders written by ``occparse synth``."""
    items = []
    for d in dirs:
        for r in read_truth_rows(d):
            items.append((d / "images" / r["filename"], d / "labels" / (Path(r["filename"]).stem + ".png")))
    if not items:
        raise FileNotFoundError(f"no samples in {', '.join(map(str, dirs))}")
    return items


#: Face-oval width as a share of the aligned crop's side: 158-167 px in the 224-px crops of the
#: benchmark split (mesh on the crop), so a target face width maps to a shrink factor.
FACE_SHARE = 0.72
#: Face widths (px, in the photo) that :func:`low_resolution` simulates, drawn log-uniformly: the
#: faces of 6-40 px that the real masked photos hold (benchmarks/masked_faces.py) and that the parser, trained
#: on well-resolved 224-px crops, reads as bare skin once they are warped up to the crop.
LOWRES_FACE_PX = (12.0, 64.0)
#: How a small photo face is brought back up to the crop: the runtime's warp (bilinear, or
#: Lanczos for small faces) and other resamplers a user's pipeline may have applied.
LOWRES_UPSCALE = (cv2.INTER_LINEAR, cv2.INTER_LINEAR, cv2.INTER_LANCZOS4, cv2.INTER_CUBIC, cv2.INTER_NEAREST)


def low_resolution(img: np.ndarray, rng: np.random.Generator, face_px: tuple[float, float] = LOWRES_FACE_PX,
                   jpeg: float = 0.5) -> np.ndarray:
    """``img`` (S x S x 3 uint8, an aligned crop) as if its face had been only a few pixels wide in the photo.

    The crop is shrunk (area averaging, as a camera's sensor integrates) until its face is
    ``face_px`` wide (log-uniform draw), JPEG-compressed at quality 30-90 with probability ``jpeg``
    (at that low resolution, where a photo's blocks are), and brought back to S x S with a random
    interpolation from :data:`LOWRES_UPSCALE`. Returns a new S x S x 3 uint8 array; the labels need no
    change (the truth stays at full resolution)."""
    h, w = img.shape[:2]
    target = float(np.exp(rng.uniform(np.log(face_px[0]), np.log(face_px[1]))))
    scale = min(1.0, target / (FACE_SHARE * w))
    small = cv2.resize(np.ascontiguousarray(img), (max(2, round(w * scale)), max(2, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    if rng.random() < jpeg:
        # OpenCV's codec takes BGR: its chroma subsampling must see the true colours
        ok, buf = cv2.imencode(".jpg", small[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 91))])
        if ok:
            small = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    flag = LOWRES_UPSCALE[int(rng.integers(len(LOWRES_UPSCALE)))]
    return cv2.resize(small, (w, h), interpolation=flag)


def augment(img: np.ndarray, lab: np.ndarray, rng: np.random.Generator,
            lowres: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Flip, small scale/rotation/shift, colour jitter, grayscale, blur; with probability ``lowres``, a
    low-resolution face (:func:`low_resolution`). Labels follow the geometry.

    ``lowres=0`` draws nothing more from ``rng``: the augmentation is then exactly the one earlier
    parsers were trained with."""
    h, w = lab.shape
    if rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
    if rng.random() < 0.8:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-15, 15), rng.uniform(0.87, 1.15))
        m[:, 2] += rng.uniform(-0.04, 0.04, 2) * w
        img = cv2.warpAffine(np.ascontiguousarray(img), m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        lab = cv2.warpAffine(np.ascontiguousarray(lab), m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=IGNORE)
    x = img.astype(np.float32)
    x = x * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)  # brightness / contrast
    gray = x.mean(axis=2, keepdims=True)
    x = gray + (x - gray) * rng.uniform(0.6, 1.4)  # saturation
    x = x * rng.uniform(0.92, 1.08, 3)  # white balance
    if rng.random() < 0.1:
        x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
    if rng.random() < 0.25:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.5, 1.5))
    out = np.clip(x, 0, 255).astype(np.uint8)
    if lowres > 0 and rng.random() < lowres:
        out = low_resolution(out, rng)
    return out, np.ascontiguousarray(lab)


class PoolDataset(Dataset):
    """Augmented (crop, label) pairs at the parser's input size. ``lowres``: the share of training
    samples shown as low-resolution faces (:func:`low_resolution`); 0 turns it off."""

    def __init__(self, items: list[tuple[Path, Path]], spec: ParserSpec, seed: int = 0, train: bool = True,
                 lowres: float = 0.0):
        if not 0.0 <= lowres <= 1.0:
            raise ValueError(f"lowres is a probability in 0..1, not {lowres}")
        self.lowres = lowres
        self.items = items
        self.spec = spec
        self.seed = seed
        self.train = train
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        ip, lp = self.items[i]
        img = read_rgb(ip)
        lab = read_label_map(lp)
        if self.train:
            img, lab = augment(img, lab, np.random.default_rng([self.seed, self.epoch, i]), self.lowres)
        s = self.spec.input_size
        x = preprocess([img], self.spec)[0]
        y = cv2.resize(lab, (s, s), interpolation=cv2.INTER_NEAREST)
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
