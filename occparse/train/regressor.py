"""``occparse train regressor --kind color|gray``: the ResNet-18 occlusion regressors.

Data: pools written by ``occparse synth --preset train`` (training faces only; the benchmark
faces and hands are never in them). A held-out validation split is carved from the pools by
base face (about 5% of base faces, by name hash), so no face is on both sides; the challenge
Score on it is printed every epoch. The colour model trains on the colour samples; the gray
model on every sample converted to gray, optionally starting from the colour model's weights.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..evaluation.metrics import challenge_score
from ..runtime.io import to_gray3
from ..runtime.regression import RegressorSpec, preprocess
from ..synth.sources import HOLDOUT_BUCKETS, read_rgb, stable_bucket
from ..synth.writer import read_truth_rows
from .losses import sample_weights
from .resnet import OcclusionRegressor
from .warmstart import freeze_batchnorm, load_from_onnx


@dataclass
class RegressorTrainConfig:
    pools: list[str]
    kind: str = "color"
    out: str = "weights"
    work: str = "runs/regressor"
    epochs: int = 5
    batch: int = 32
    lr: float = 1e-3
    input_size: int = 112
    weighting: str = "bins"
    balance_gender: bool = False
    init_from: str | None = None  # a checkpoint (e.g. the colour model) to start from
    pretrained: bool = False  # torchvision ImageNet weights, if the user has them
    val_buckets: int = HOLDOUT_BUCKETS  # of 100 name-hash buckets of base faces
    threads: int = 2
    seed: int = 0
    max_minutes: float = 0.0
    max_train: int = 0  # use at most this many training samples (0 = all)
    resume: bool = True
    init_onnx: str | None = None  # continue from a shipped regressor ONNX (BatchNorm then stays frozen)


@dataclass(frozen=True)
class Item:
    path: Path
    gt: float
    male: bool
    gray: bool


def load_items(pools: list[str], val_buckets: int) -> tuple[list[Item], list[Item]]:
    train, val = [], []
    for p in pools:
        d = Path(p)
        for r in read_truth_rows(d):
            it = Item(d / "images" / r["filename"], float(r["FaceOcclusion"]), r["gender"] == "M", r.get("is_gray") == "1")
            (val if stable_bucket(r.get("base", r["filename"])) < val_buckets else train).append(it)
    return train, val


class CropDataset(Dataset):
    def __init__(self, items: list[Item], spec: RegressorSpec, gray: bool, train: bool, seed: int = 0):
        self.items, self.spec, self.gray, self.train, self.seed = items, spec, gray, train, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        it = self.items[i]
        img = read_rgb(it.path)
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            if rng.random() < 0.5:
                img = img[:, ::-1]
            x = img.astype(np.float32) * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
            g = x.mean(axis=2, keepdims=True)
            x = g + (x - g) * rng.uniform(0.7, 1.3)
            img = np.clip(x, 0, 255).astype(np.uint8)
        if self.gray:
            img = to_gray3(img)
        return torch.from_numpy(preprocess([np.ascontiguousarray(img)], self.spec)[0]), torch.tensor(it.gt, dtype=torch.float32), i


@torch.no_grad()
def predict(model: torch.nn.Module, ds: CropDataset, batch: int = 64) -> np.ndarray:
    model.eval()
    out = np.zeros(len(ds), np.float32)
    for x, _, idx in DataLoader(ds, batch_size=batch, shuffle=False, num_workers=1):
        out[idx.numpy()] = model(x).numpy()
    return out


def train_regressor(cfg: RegressorTrainConfig) -> dict:
    if cfg.kind not in ("color", "gray"):
        raise ValueError("kind must be color or gray")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    spec = RegressorSpec(input_size=cfg.input_size)
    work = Path(cfg.work) / cfg.kind
    work.mkdir(parents=True, exist_ok=True)
    train_items, val_items = load_items(cfg.pools, cfg.val_buckets)
    if cfg.kind == "color":
        train_items = [it for it in train_items if not it.gray]
        val_items = [it for it in val_items if not it.gray]
    if cfg.max_train:
        rng = np.random.default_rng(cfg.seed)
        train_items = [train_items[i] for i in sorted(rng.choice(len(train_items), min(cfg.max_train, len(train_items)), replace=False))]
    gray = cfg.kind == "gray"
    gts = np.array([it.gt for it in train_items])
    w = sample_weights(gts, np.array([it.male for it in train_items]), cfg.weighting, cfg.balance_gender)
    weights = torch.tensor(w, dtype=torch.float32)
    ds = CropDataset(train_items, spec, gray, train=True, seed=cfg.seed)
    vds = CropDataset(val_items, spec, gray, train=False)
    loader = DataLoader(ds, batch_size=cfg.batch, shuffle=True, num_workers=1, drop_last=True,
                        generator=torch.Generator().manual_seed(cfg.seed))
    print(f"{cfg.kind}: {len(ds)} training samples, {len(vds)} held-out (by base face); weighting {cfg.weighting}"
          f"{' + gender balance' if cfg.balance_gender else ''}", flush=True)

    model = OcclusionRegressor(pretrained=cfg.pretrained)
    if cfg.init_from:
        ck = torch.load(cfg.init_from, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        print(f"initialised from {cfg.init_from}")
    if cfg.init_onnx:
        diff = load_from_onnx(model, Path(cfg.init_onnx), cfg.input_size)
        print(f"initialised from {cfg.init_onnx} (torch vs ONNX Runtime max abs diff {diff:.1e}); BatchNorm frozen")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * len(loader), pct_start=0.1)
    ckpt = work / "last.pt"
    start, history, best = 0, [], float("inf")
    if cfg.resume and ckpt.exists():
        ck = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        start, history, best = ck["epoch"] + 1, ck["history"], ck["best"]
        print(f"resumed from {ckpt} at epoch {start + 1}")
    vgt = np.array([it.gt for it in val_items])
    vmale = np.array([it.male for it in val_items])
    def save_best() -> None:
        torch.save({"model": model.state_dict(), "spec": asdict(spec), "config": asdict(cfg)}, work / "best.pt")

    if start == 0 and (cfg.init_onnx or cfg.init_from):  # the starting point is a candidate too
        score, ef, em = challenge_score(predict(model, vds), vgt, vmale)
        print(f"before training: held-out Score {score:.5f} (Err_F {ef:.5f}, Err_M {em:.5f})", flush=True)
        best = score
        save_best()
    t0 = time.time()
    for epoch in range(start, cfg.epochs):
        model.train()
        if cfg.init_onnx:
            freeze_batchnorm(model)
        ds.epoch = epoch
        running = None
        bar = tqdm(loader, desc=f"{cfg.kind} epoch {epoch + 1}/{cfg.epochs}", unit="batch")
        for x, y, idx in bar:
            p = model(x)
            loss = (weights[idx] * (p - y) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
            bar.set_postfix(loss=f"{running:.5f}")
        vp = predict(model, vds)
        score, ef, em = challenge_score(vp, vgt, vmale)
        rec = {"epoch": epoch + 1, "loss": running, "val_score": score, "val_err_f": ef, "val_err_m": em,
               "val_mae": float(np.abs(vp - vgt).mean()), "minutes": (time.time() - t0) / 60}
        history.append(rec)
        print(f"epoch {epoch + 1}: held-out Score {score:.5f} (Err_F {ef:.5f}, Err_M {em:.5f}, MAE {rec['val_mae']:.4f})", flush=True)
        if score < best:
            best = score
            save_best()
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "epoch": epoch,
                    "history": history, "best": best}, work / "last.tmp")
        (work / "last.tmp").replace(ckpt)
        (work / "history.json").write_text(json.dumps(history, indent=2))
        if cfg.max_minutes and (time.time() - t0) / 60 > cfg.max_minutes:
            print(f"stopping after epoch {epoch + 1}: --max-minutes {cfg.max_minutes} reached")
            break
    return export_regressor(work / "best.pt", Path(cfg.out) / f"regressor_{cfg.kind}.onnx", spec)


def export_regressor(ckpt: Path, out: Path, spec: RegressorSpec) -> dict:
    from ..models.zoo import file_sha256
    from .export import export_onnx, max_abs_diff

    model = OcclusionRegressor()
    model.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=False)["model"])
    export_onnx(model, out, spec.input_size)
    x = np.random.default_rng(0).normal(0, 1, (4, 3, spec.input_size, spec.input_size)).astype(np.float32)
    info = {"onnx": str(out), "sha256": file_sha256(out), "bytes": out.stat().st_size, "max_abs_diff": max_abs_diff(model, out, x)}
    print(json.dumps(info, indent=2))
    return info
