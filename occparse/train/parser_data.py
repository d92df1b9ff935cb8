"""Training data for the parser: synthetic pools written by `occparse synth`, with augmentation."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..runtime.parsing import ParserSpec, preprocess
from ..synth.engine import IGNORE
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


def augment(img: np.ndarray, lab: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Flip, small scale/rotation/shift, colour jitter, grayscale, blur. Labels follow the geometry."""
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
    return np.clip(x, 0, 255).astype(np.uint8), np.ascontiguousarray(lab)


class PoolDataset(Dataset):
    """Augmented (crop, label) pairs at the parser's input size."""

    def __init__(self, items: list[tuple[Path, Path]], spec: ParserSpec, seed: int = 0, train: bool = True):
        self.items = items
        self.spec = spec
        self.seed = seed
        self.train = train
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        ip, lp = self.items[i]
        img = cv2.cvtColor(cv2.imread(str(ip), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        lab = cv2.imread(str(lp), cv2.IMREAD_GRAYSCALE)
        if self.train:
            img, lab = augment(img, lab, np.random.default_rng([self.seed, self.epoch, i]))
        s = self.spec.input_size
        x = preprocess([img], self.spec)[0]
        y = cv2.resize(lab, (s, s), interpolation=cv2.INTER_NEAREST)
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
