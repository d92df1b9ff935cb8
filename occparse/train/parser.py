"""``occparse train parser``: train the BiSeNet face parser, with checkpoints and resume.

Data: pools of synthetic samples written by ``occparse synth --preset train`` (LFW train faces
carry real background/skin/hair labels; pasted occluders and hair come with exact masks;
UTKFace-based samples are labelled only inside R and on the occluders). A fixed pool plus
random augmentation every epoch stands in for fully on-the-fly synthesis, which would leave
the 2-core training machine no CPU for the network.
Validation every epoch: IoU on LFW val (real labels, classes 0-2) and, if given, on the
benchmark split's label maps (occluder class).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..evaluation.parser_eval import LFW_CLASSES, folder_crops, iou_report, lfw_val_crops
from ..labels import HAIR, N_CLASSES
from ..runtime.parsing import ParserSpec, preprocess
from ..runtime.session import fixed_input_side
from ..synth.sources import find_data_root
from .bisenet import BiSeNet
from .parser_data import PoolDataset, pool_items
from .warmstart import expand_classes, freeze_batchnorm, load_from_onnx


@dataclass
class ParserTrainConfig:
    pools: list[str]
    out: str = "weights"
    work: str = "runs/parser"
    data: str | None = None
    bench: str | None = None
    epochs: int = 12
    batch: int = 16
    lr: float = 2e-3
    width: float = 0.5
    input_size: int = 128
    threads: int = 2
    seed: int = 0
    max_minutes: float = 0.0  # 0: no limit; else stop after the epoch that crosses it
    resume: bool = True
    init_onnx: str | None = None  # continue from a shipped parser.onnx (BatchNorm then stays frozen)
    init_from: str | None = None  # continue from a checkpoint's weights (auxiliary heads included), fresh schedule
    #: share of samples shown as low-resolution faces (parser_data.low_resolution); 0 = stages 1-6's augmentation.
    #: Proposed, not yet trained with (weights/parser.md): small faces in photos read as bare skin without it.
    lowres: float = 0.25
    #: cross-entropy weight per class (background, face, hair, occluder, facial hair); None = all 1.
    #: Above 1 for the occluding classes counters the parser's under-reading of real beards and hair.
    class_weight: tuple[float, ...] | None = None
    #: where the network trains: "cpu", "cuda" (an error when torch sees no CUDA device) or "auto" (cuda when
    #: there is one); not a recipe option, so a checkpoint resumes on either
    device: str = "cpu"
    #: processes that decode and augment the pool's samples (one keeps up with a 2-core CPU; a GPU needs more)
    loader_workers: int = 1

    def __post_init__(self) -> None:
        # one rule for the CLI and for callers of train_parser: checked before any data is read
        cw = self.class_weight
        if cw is not None and (len(cw) != N_CLASSES or any(not 0 < w < float("inf") for w in cw)):
            raise ValueError(f"--class-weight needs {N_CLASSES} finite values > 0, not {list(cw)}")
        if self.device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"--device must be cpu, cuda or auto, not {self.device!r}")
        if self.loader_workers < 0:
            raise ValueError(f"--loader-workers must be 0 or more, not {self.loader_workers}")


class TrainDeviceError(ValueError):
    """``--device cuda`` where torch sees no CUDA device."""


def train_device(name: str) -> torch.device:
    """The torch device of ``--device`` (cpu, cuda or auto). Raises :class:`TrainDeviceError` for cuda when torch
    sees none."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainDeviceError("--device cuda: torch sees no CUDA device (a CPU-only torch, or no GPU); use --device cpu")
    return torch.device(name)


class ResumeMismatchError(ValueError):
    """A checkpoint in the work folder was made with other training options than the ones given."""


#: options that define a run: resuming a checkpoint with any of them changed would silently mix two recipes
RESUME_KEYS = ("pools", "epochs", "batch", "lr", "width", "input_size", "lowres", "class_weight", "seed")


#: the checkpoint a run resumes from on the machine that made it (weights, optimiser, schedule; fp32)
CHECKPOINT = "parser_last.pt"
#: the same run in a form small enough to commit and resume on another machine: fp16 weights, the schedule,
#: the history, no optimiser moments (a width-0.75 parser: about 15 MB against 90 MB)
PORTABLE = "parser_resume.pt"


#: steps over which a run resumed from its portable state ramps up to the schedule's learning rate
PORTABLE_RAMP_STEPS = 100


#: BatchNorm's running statistics stay float32 in the portable state (they are few, and a variance can be small)
_KEEP_FP32 = ("running_mean", "running_var")


def portable_state(ck: dict) -> dict:
    """The portable form of a :data:`CHECKPOINT` dict: the network's floating-point weights as float16 (BatchNorm's
    statistics and integer buffers unchanged), the optimiser's moments left out, everything else as it is."""
    model = {k: v.half() if v.is_floating_point() and not k.endswith(_KEEP_FP32) else v for k, v in ck["model"].items()}
    return {**{k: v for k, v in ck.items() if k != "opt"}, "model": model, "portable": True}


def load_run_state(work: Path) -> tuple[Path, dict] | None:
    """The state a rerun in ``work`` goes on from: :data:`CHECKPOINT` or :data:`PORTABLE`, whichever holds the later
    epoch (the checkpoint on a tie: it keeps the optimiser), as ``(path, dict)``; None when neither is there.

    Why the later one: a portable state carried from another machine into a folder that still holds this machine's
    older checkpoint is the run's newest epoch; resuming the checkpoint would lose, then overwrite, the epochs
    in between. Loaded with ``weights_only``: a portable state may come through version control."""
    found = [(p, torch.load(p, map_location="cpu", weights_only=True))
             for p in (work / CHECKPOINT, work / PORTABLE) if p.exists()]
    return max(found, key=lambda f: f[1]["epoch"]) if found else None  # max keeps the first of a tie


def save_atomic(obj: dict, path: Path) -> None:
    """``torch.save`` to ``path`` through a temporary file, so an interrupted save leaves the old file whole."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def resume_mismatch(saved: dict, cfg: ParserTrainConfig) -> list[str]:
    """``"key: checkpoint X, now Y"`` for each of :data:`RESUME_KEYS` whose value differs between a
    checkpoint's saved config and ``cfg`` (keys a checkpoint lacks are not judged)."""
    def norm(v):  # tuples and lists, ints and floats, paths and strings compare equal
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        return v if v is None else str(v)

    now = asdict(cfg)
    return [f"{k}: checkpoint {saved[k]!r}, now {now[k]!r}" for k in RESUME_KEYS
            if k in saved and norm(saved[k]) != norm(now[k])]


def ohem_ce(logits: torch.Tensor, target: torch.Tensor, thresh: float = 0.7, min_frac: float = 1 / 16,
            class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Online hard example mining: mean CE over pixels the model is unsure of (p < thresh), at least min_frac of them.

    ``class_weight`` (float, one per class) weights each hard pixel by its true class (a weighted mean);
    which pixels are hard is decided on the unweighted CE, so the weights do not change the mining."""
    loss = F.cross_entropy(logits, target, ignore_index=255, reduction="none").flatten()
    flat = target.flatten()
    valid = flat != 255
    loss, flat = loss[valid], flat[valid]
    if loss.numel() == 0:
        return logits.sum() * 0
    n_min = max(1, int(loss.numel() * min_frac))
    keep = torch.nonzero(loss > -math.log(thresh)).flatten()
    if keep.numel() < n_min:
        keep = torch.topk(loss, n_min).indices
    if class_weight is None:
        return loss[keep].mean()
    w = class_weight[flat[keep]]
    return (w * loss[keep]).sum() / w.sum()


@torch.no_grad()
def predict_labels(model: torch.nn.Module, crops: np.ndarray, spec: ParserSpec, batch: int = 64) -> np.ndarray:
    """Labels at the crops' resolution, through the same preprocessing as the runtime."""
    model.eval()
    out = []
    size = crops.shape[1:3]
    device = next(model.parameters()).device
    for i in range(0, len(crops), batch):
        x = torch.from_numpy(preprocess(list(crops[i : i + batch]), spec)).to(device)
        logits = F.interpolate(model(x), size=size, mode="bilinear", align_corners=False)
        out.append(logits.argmax(1).cpu().numpy().astype(np.uint8))
    return np.concatenate(out)


def warm_start_onnx(path: Path, width: float, input_size: int) -> torch.nn.Module:
    """A BiSeNet with occparse's classes from a shipped parser ONNX; a four-class parser (before facial
    hair) gets a facial-hair output that starts as a copy of its hair output."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    # the weights do not depend on the input size, but an exported file's input side is fixed: probe and
    # check at the file's own side, so a parser can continue at another input size
    side = fixed_input_side(sess) or input_size
    probe = np.zeros((1, 3, side, side), np.float32)
    n_out = sess.run(None, {sess.get_inputs()[0].name: probe})[0].shape[1]
    model = BiSeNet(int(n_out), width)
    diff = load_from_onnx(model, path, side)
    if side != input_size:
        print(f"{path} takes {side} px; training continues at {input_size} px")
    print(f"initialised from {path} (torch vs ONNX Runtime max abs diff {diff:.1e}); BatchNorm frozen")
    if n_out < N_CLASSES:
        expand_classes(model, N_CLASSES, copy_from=HAIR)
        print(f"output classes {n_out} -> {N_CLASSES}: the new ones start from the hair output")
    return model


def init_from_checkpoint(model: torch.nn.Module, path: Path) -> bool:
    """Load a parser checkpoint's weights (not its optimiser or schedule); True if its BatchNorm was frozen.

    Why: a checkpoint keeps the trained auxiliary heads, which a restart from the ONNX loses (the
    exporter drops them), so a new stage starts without the dip that retraining them costs."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(ck["model"])
    return bool(ck.get("frozen_bn", ck.get("config", {}).get("init_onnx")))


def train_parser(cfg: ParserTrainConfig) -> dict:
    device = train_device(cfg.device)  # before any work: --device cuda without CUDA is one line
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    spec = ParserSpec(input_size=cfg.input_size)
    work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    data_root = find_data_root(cfg.data)
    ckpt_path = work / CHECKPOINT
    resume_path, ck = (load_run_state(work) if cfg.resume else None) or (None, None)
    if ck is not None:  # refuse a mismatched resume before the slow set-up
        if diff := resume_mismatch(ck.get("config", {}), cfg):
            raise ResumeMismatchError(f"{resume_path} was trained with other options ({'; '.join(diff)}): give the same "
                                      "options to resume, --restart to start over, or another --work folder")
        if ck["epoch"] + 1 >= cfg.epochs:
            print(f"the run in {work} is finished ({cfg.epochs}/{cfg.epochs} epochs): exporting it")
            return export_final(cfg, spec)

    items = pool_items([Path(p) for p in cfg.pools])
    ds = PoolDataset(items, spec, seed=cfg.seed, lowres=cfg.lowres)
    print(f"augmentation: low-resolution faces in {cfg.lowres:.0%} of samples")
    cw = None
    if cfg.class_weight is not None:  # valid: ParserTrainConfig checked it
        cw = torch.tensor(cfg.class_weight, dtype=torch.float32, device=device)
        print(f"class weights: {list(cfg.class_weight)}")
    loader = DataLoader(ds, batch_size=cfg.batch, shuffle=True, num_workers=cfg.loader_workers, drop_last=True,
                        persistent_workers=False, pin_memory=device.type == "cuda",
                        generator=torch.Generator().manual_seed(cfg.seed))
    model = BiSeNet(N_CLASSES, cfg.width)
    frozen_bn = bool(cfg.init_onnx)
    if ck is not None:
        pass  # the saved weights replace any starting point below: its files need not be on this machine
    elif cfg.init_onnx:
        model = warm_start_onnx(Path(cfg.init_onnx), cfg.width, cfg.input_size)
    elif cfg.init_from:
        frozen_bn = init_from_checkpoint(model, Path(cfg.init_from))
        print(f"initialised from {cfg.init_from}" + ("; BatchNorm stays frozen, as it was there" if frozen_bn else ""))
    model.to(device)  # before the optimizer: its state lives beside the weights
    print(f"training on {device}")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-4)
    total = cfg.epochs * len(loader)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=0.05)

    start_epoch, history, ramp = 0, [], 0
    if ck is not None:
        if (saved_total := ck["sched"].get("total_steps")) not in (None, total):
            # the schedule's length is the pools' size: remade pools that differ would end it early or never
            raise ResumeMismatchError(f"{resume_path}: its pools gave {saved_total // cfg.epochs} steps an epoch, "
                                      f"these give {len(loader)} (pools remade otherwise?): remake them with the "
                                      "commands that made them, --restart to start over, or another --work folder")
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()})
        sched.load_state_dict(ck["sched"])
        if "opt" in ck:
            opt.load_state_dict(ck["opt"])
        else:  # portable state: the schedule goes on where it was, AdamW's moments start from zero
            ramp = PORTABLE_RAMP_STEPS
            for group, lr in zip(opt.param_groups, sched.get_last_lr(), strict=True):
                group["lr"] = lr / ramp
        frozen_bn = bool(ck.get("frozen_bn", frozen_bn))
        start_epoch, history = ck["epoch"] + 1, ck["history"]
        note = "" if "opt" in ck else " (portable state: optimiser moments start afresh)"
        print(f"resumed from {resume_path} at epoch {start_epoch + 1}{note}")

    print("preparing validation data (LFW val, real labels) ...")
    val_x, val_y = lfw_val_crops(data_root)
    bench_x = bench_y = None
    if cfg.bench:
        bench_x, bench_y = folder_crops(Path(cfg.bench))
    t_start = time.time()
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        if frozen_bn:
            freeze_batchnorm(model)
        ds.epoch = epoch
        bar = tqdm(loader, desc=f"parser epoch {epoch + 1}/{cfg.epochs}", unit="batch")
        running = None
        for x, y in bar:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            main, a8, a16 = model(x)
            loss = ohem_ce(main, y, class_weight=cw) + 0.5 * (ohem_ce(a8, y, class_weight=cw) + ohem_ce(a16, y, class_weight=cw))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ramp > 1:  # fresh moments make the first updates sign-like: ease into the schedule's rate
                ramp -= 1
                for group in opt.param_groups:
                    group["lr"] *= (PORTABLE_RAMP_STEPS - ramp + 1) / PORTABLE_RAMP_STEPS
            running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
            bar.set_postfix(loss=f"{running:.3f}", lr=f"{opt.param_groups[0]['lr']:.1e}")
        lfw = iou_report(predict_labels(model, val_x, spec), val_y, LFW_CLASSES)
        rec = {"epoch": epoch + 1, "loss": running, "lfw_val": lfw, "minutes": (time.time() - t_start) / 60}
        if bench_x is not None:
            rec["bench"] = iou_report(predict_labels(model, bench_x, spec), bench_y)
        history.append(rec)
        msg = (f"epoch {epoch + 1}: LFW val mIoU {lfw['mean_merged']:.3f} (bg/face/hair) face {lfw['face']:.3f} "
               f"hair {lfw['hair']:.3f} facial hair {lfw['facial_hair']:.3f}")
        if "bench" in rec:
            msg += f" | bench occluder IoU {rec['bench']['occluder']:.3f}"
        print(msg, flush=True)
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "epoch": epoch,
                 "history": history, "config": asdict(cfg), "frozen_bn": frozen_bn}
        save_atomic(state, ckpt_path)
        save_atomic(portable_state(state), work / PORTABLE)
        (work / "history.json").write_text(json.dumps(history, indent=2))
        if cfg.max_minutes and (time.time() - t_start) / 60 > cfg.max_minutes:
            print(f"stopping after epoch {epoch + 1}: --max-minutes {cfg.max_minutes} reached")
            break
    return export_final(cfg, spec)


def export_final(cfg: ParserTrainConfig, spec: ParserSpec) -> dict:
    """Export the last epoch's weights: LFW val and the benchmark are reported each epoch, never used to pick one."""
    from ..models.zoo import file_sha256
    from .export import export_onnx, max_abs_diff

    work = Path(cfg.work)
    if (found := load_run_state(work)) is None:
        raise FileNotFoundError(f"{work} holds neither {CHECKPOINT} nor {PORTABLE}: nothing to export")
    ck = found[1]
    model = BiSeNet(N_CLASSES, ck["config"]["width"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in ck["model"].items()})
    out = export_onnx(model, Path(cfg.out) / "parser.onnx", spec.input_size)
    x = np.random.default_rng(0).normal(0, 1, (4, 3, spec.input_size, spec.input_size)).astype(np.float32)
    diff = max_abs_diff(model, out, x)
    info = {"onnx": str(out), "sha256": file_sha256(out), "bytes": out.stat().st_size, "max_abs_diff": diff}
    (work / "export.json").write_text(json.dumps(info, indent=2))
    print(json.dumps(info, indent=2))
    return info
