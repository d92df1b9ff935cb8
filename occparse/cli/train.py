"""``occparse train parser|regressor``: train occparse's networks (needs the [train] extra; thin over occparse.train)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    fail,
)


def add_parser(sub) -> argparse.ArgumentParser:
    """Register ``occparse train`` (help, description, options) on the subcommands ``sub``."""
    p = sub.add_parser(
        "train",
        help="train occparse's models (needs the [train] extra)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a model on the CPU (or GPU) with checkpoints; rerunning the same command resumes. "
        "`occparse train parser --help` and `occparse train regressor --help` list each one's options and defaults.",
        epilog="""examples:
  occparse synth --preset train --sources lfw --count 8000 --seed 11 --out pools/lfw
  occparse synth --preset bench --out bench/
  occparse train parser --pool pools/lfw --bench bench/ --out weights/ --epochs 12 --max-minutes 60
  occparse train regressor --kind color --pool pools/lfw pools/utk
  occparse train regressor --kind gray --pool pools/lfw pools/utk --init-from runs/regressor/color/best.pt --epochs 2
  occparse train average seed1/parser.onnx seed2/parser.onnx --out soup/parser.onnx
""",
    )
    add_arguments(p)
    p.set_defaults(func=run)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``occparse train``'s options."""
    tsub = p.add_subparsers(dest="what", metavar="MODEL", required=True)
    # Defaults are those of ParserTrainConfig / RegressorTrainConfig (occparse/train/), repeated here because
    # building the CLI must not import torch; tests/test_package.py checks they agree.
    tp = tsub.add_parser("parser", help="the BiSeNet face parser", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    tp.add_argument("--pool", nargs="+", type=Path, help="synth output folder(s) to train on (default: make one in WORK/pool)")
    tp.add_argument("--pool-size", type=int, default=12000, help="samples in the default pool")
    tp.add_argument("--bench", help="benchmark split folder: its occluder IoU is reported each epoch")
    tp.add_argument("--data", help="data folder (default $OCCPARSE_DATA or ../shared/data)")
    tp.add_argument("--work", default="runs/parser", help="checkpoints and history")
    tp.add_argument("--epochs", type=int, default=12, help="passes over the pool")
    tp.add_argument("--batch", type=int, default=16, help="crops per step")
    tp.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    tp.add_argument("--width", type=float, default=0.5, help="channel width multiplier of the ResNet-18 trunk")
    tp.add_argument("--input-size", type=int, default=128, help="network input side in pixels")
    tp.add_argument("--init-from", help="a previous stage's WORK/parser_last.pt (auxiliary heads included); fresh schedule")
    tp.add_argument("--lowres", type=float, default=0.25,
                    help="share of samples shrunk to a 12-64 px face (JPEG on half) and brought back up; 0 = off")
    tp.add_argument("--class-weight", type=float, nargs=5, metavar=("BG", "FACE", "HAIR", "OCCLUDER", "FACIAL_HAIR"),
                    help="cross-entropy weight per class (default all 1); e.g. 1 1 1.5 1.5 2.5 leans towards "
                         "reading hair, occluders and beards")
    tp.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu",
                    help="where the network trains (cuda: an error when torch sees no CUDA device; auto: cuda when "
                         "there is one); a checkpoint resumes on either")
    tp.add_argument("--loader-workers", type=int, default=1,
                    help="processes that decode and augment the samples (1 keeps up with a 2-core CPU; a GPU needs "
                         "about as many as the machine has cores)")
    tr = tsub.add_parser("regressor", help="a ResNet-18 occlusion regressor (colour or gray)",
                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    tr.add_argument("--pool", nargs="+", type=Path, required=True, help="synth output folder(s) to train on")
    tr.add_argument("--kind", choices=["color", "gray"], default="color", help="which of the two models")
    tr.add_argument("--work", default="runs/regressor", help="checkpoints and history")
    tr.add_argument("--epochs", type=int, default=5, help="passes over the pool")
    tr.add_argument("--batch", type=int, default=32, help="crops per step")
    tr.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    tr.add_argument("--input-size", type=int, default=112, help="network input side in pixels")
    tr.add_argument("--weighting", choices=["plain", "bins", "metric", "bins+metric"], default="bins",
                    help="loss weights: inverse frequency over occlusion bins, the metric's 1/30+GT, ...")
    tr.add_argument("--balance-gender", action="store_true", help="equal total weight for F and M")
    tr.add_argument("--init-from", help="checkpoint whose weights start the run (e.g. the colour model for the gray one)")
    tr.add_argument("--pretrained", action="store_true", help="torchvision ImageNet weights (if you have them)")
    tr.add_argument("--max-train", type=int, default=0, help="at most this many training samples (0: all)")
    ta = tsub.add_parser(
        "average", help="average the weights of several exports of one network (seeds of one recipe)",
        description="Write an ONNX model whose weights are the mean of those of MODEL.onnx files exported from the "
        "same network (e.g. one recipe run with several --seed values from the same --init-onnx). Needs the fp32 "
        "exports; quantize the average afterwards. No torch needed.")
    ta.add_argument("models", nargs="+", type=Path, metavar="MODEL.onnx", help="two or more fp32 ONNX exports")
    ta.add_argument("--out", type=Path, required=True, help="the averaged model (never one of the inputs)")
    ta.set_defaults(func=_average)
    for q in (tp, tr):
        q.add_argument("--out", type=Path, default=Path("weights"), help="where the ONNX goes")
        q.add_argument("--init-onnx", help="continue training from an occparse ONNX export, e.g. weights/parser.onnx, or "
                       "an int8 copy such as weights/regressor_color.int8.onnx (its weights dequantized) "
                       "(the shipped weights survive where checkpoints do not; BatchNorm is then frozen)")
        q.add_argument("--threads", type=int, default=2, help="torch CPU threads")
        q.add_argument("--seed", type=int, default=0)
        q.add_argument("--max-minutes", type=float, default=0.0, help="stop after the epoch that passes this many minutes")
        q.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
        q.set_defaults(func=run)


def _average(a: argparse.Namespace) -> int:
    from ..train.average import IncompatibleModelsError, average_onnx

    try:
        import onnx
    except ImportError:
        return fail('averaging needs the onnx package: pip install "onnx==1.22.0" (or the [train] extra)')
    try:
        out = average_onnx(a.models, a.out)
    except (IncompatibleModelsError, FileNotFoundError) as e:
        return fail(str(e))
    except onnx.checker.ValidationError as e:
        return fail(f"the averaged model does not pass the ONNX checker: {e}")
    except OSError as e:
        return fail(f"could not write {a.out}: {e}")
    except Exception as e:  # onnx.load on a file that is not an ONNX model raises its own decode errors
        return fail(f"could not read the models as ONNX: {e}")
    print(f"{out}: the mean of {len(a.models)} models")
    return 0


def run(a: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        return fail('training needs PyTorch: pip install -e ".[train]"')
    if a.what == "parser":
        return _train_parser(a)
    return _train_regressor(a)


def _train_regressor(a: argparse.Namespace) -> int:
    from ..train.regressor import RegressorTrainConfig, train_regressor

    if not a.pool:
        return fail("train regressor needs --pool DIR [DIR ...] (folders written by occparse synth --preset train)")
    missing = [str(p) for p in a.pool if not (Path(p) / "truth.csv").exists()]
    if missing:
        return fail(f"not a synth output folder (no truth.csv): {', '.join(missing)}")
    cfg = RegressorTrainConfig(
        pools=[str(p) for p in a.pool], kind=a.kind, out=str(a.out), work=a.work, epochs=a.epochs, batch=a.batch,
        lr=a.lr, input_size=a.input_size, weighting=a.weighting, balance_gender=a.balance_gender,
        init_from=a.init_from, pretrained=a.pretrained, threads=a.threads, seed=a.seed, max_minutes=a.max_minutes,
        max_train=a.max_train, resume=not a.restart, init_onnx=a.init_onnx,
    )
    train_regressor(cfg)
    return 0


def _train_parser(a: argparse.Namespace) -> int:
    from ..synth.sources import DataNotFoundError
    from ..train.parser import ParserTrainConfig, ResumeMismatchError, TrainDeviceError, train_parser

    pools = [str(p) for p in (a.pool or [])]
    if not pools:  # make a pool of training samples once, reused by later runs
        from ..synth.engine import SynthConfig, Synthesizer
        from ..synth.writer import WriteJob, tasks_for, write_dataset

        pool = Path(a.work) / "pool"
        if not (pool / "truth.csv").exists():
            try:
                synth = Synthesizer(a.data, "train", SynthConfig.real())
            except DataNotFoundError as e:
                return fail(str(e))
            job = WriteJob(str(synth.faces.root), "train", a.seed, SynthConfig.real(), ("lfw", "utkface"), None, str(pool))
            write_dataset(job, tasks_for(synth, "train", a.pool_size))
        pools = [str(pool)]
    missing = [p for p in pools if not (Path(p) / "truth.csv").exists()]
    if missing:
        return fail(f"not a synth output folder (no truth.csv): {', '.join(missing)}")
    if a.init_onnx and a.init_from:
        return fail("give --init-onnx (a shipped ONNX) or --init-from (a checkpoint), not both")
    try:
        cfg = ParserTrainConfig(
            pools=pools, out=str(a.out), work=str(a.work), data=a.data, bench=a.bench, epochs=a.epochs, batch=a.batch,
            lr=a.lr, width=a.width, input_size=a.input_size, threads=a.threads, seed=a.seed, max_minutes=a.max_minutes,
            resume=not a.restart, init_onnx=a.init_onnx, init_from=a.init_from, lowres=a.lowres,
            class_weight=tuple(a.class_weight) if a.class_weight else None, device=a.device,
            loader_workers=a.loader_workers,
        )
    except ValueError as e:  # --class-weight, --loader-workers
        return fail(str(e))
    try:
        train_parser(cfg)
    except (DataNotFoundError, ResumeMismatchError, TrainDeviceError) as e:
        return fail(str(e))
    return 0
