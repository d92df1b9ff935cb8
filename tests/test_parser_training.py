"""``occparse train parser`` end to end on a tiny pool: one epoch, a checkpoint, an ONNX export that ONNX Runtime
reproduces, and ``--device``: auto trains where torch can, cuda without a CUDA device is one line, exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from occparse.cli import main  # noqa: E402
from occparse.evaluation.parser_eval import folder_crops  # noqa: E402
from occparse.train import parser as tp  # noqa: E402


@pytest.fixture(scope="module")
def tiny_pool(tmp_path_factory):
    """Eight made-up samples in the pool layout ``occparse synth`` writes: a bright disc of "face" (1) with a
    band of "occluder" (3) on a dark background (0); what the loop learns does not matter here."""
    import cv2

    out = tmp_path_factory.mktemp("pool")
    (out / "images").mkdir()
    (out / "labels").mkdir()
    rng = np.random.default_rng(0)
    rows = ["filename,FaceOcclusion,gender"]
    for i in range(8):
        lab = np.zeros((224, 224), np.uint8)
        cv2.circle(lab, (112 + int(rng.integers(-20, 20)), 112), 70, 1, -1)
        lab[100 + 4 * i : 130 + 4 * i, 60:170][lab[100 + 4 * i : 130 + 4 * i, 60:170] == 1] = 3
        img = np.stack([lab * 60 + rng.integers(0, 30, lab.shape)] * 3, -1).astype(np.uint8)
        cv2.imwrite(str(out / "images" / f"{i:06d}.jpg"), img)
        cv2.imwrite(str(out / "labels" / f"{i:06d}.png"), lab)
        rows.append(f"{i:06d}.jpg,0.1,{'FM'[i % 2]}")
    (out / "truth.csv").write_text("\n".join(rows) + "\n")
    return out


@pytest.fixture
def small_lfw_val(tiny_pool, monkeypatch):
    """The per-epoch LFW val check on four of the tiny pool's crops (LFW val is 500 photos: not here)."""
    crops, labels = folder_crops(tiny_pool, limit=4)
    monkeypatch.setattr(tp, "lfw_val_crops", lambda root: (crops, labels))


def test_one_epoch_on_the_chosen_device_exports_a_matching_onnx(data_root, tiny_pool, small_lfw_val, tmp_path, capsys):
    cfg = tp.ParserTrainConfig(pools=[str(tiny_pool)], out=str(tmp_path / "out"), work=str(tmp_path / "work"), epochs=1,
                               batch=4, width=0.25, input_size=64, lowres=0.0, device="auto", loader_workers=0)
    info = tp.train_parser(cfg)
    out = capsys.readouterr().out
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert f"training on {expected}" in out and "epoch 1: LFW val mIoU" in out
    assert (tmp_path / "out" / "parser.onnx").is_file() and info["max_abs_diff"] < 1e-3
    history = json.loads((tmp_path / "work" / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1] and np.isfinite(history[0]["loss"])
    ck = torch.load(tmp_path / "work" / "parser_last.pt", map_location="cpu", weights_only=False)
    assert ck["config"]["device"] == "auto" and ck["epoch"] == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_device_cuda_without_cuda_is_one_line(tiny_pool, tmp_path, capsys):
    assert main(["train", "parser", "--pool", str(tiny_pool), "--work", str(tmp_path / "w"), "--out", str(tmp_path),
                 "--device", "cuda", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cuda: torch sees no CUDA device" in err[0]
    assert not (tmp_path / "w" / "parser_last.pt").exists()


def test_device_and_loader_workers_are_checked():
    with pytest.raises(ValueError, match="--device"):
        tp.ParserTrainConfig(pools=[], device="tpu")
    with pytest.raises(ValueError, match="--loader-workers"):
        tp.ParserTrainConfig(pools=[], loader_workers=-1)
    assert "device" not in tp.RESUME_KEYS  # a checkpoint made on a GPU resumes on a CPU and back


def test_a_run_carried_as_its_portable_state_resumes_where_it_stopped(data_root, tiny_pool, small_lfw_val, tmp_path,
                                                                         capsys):
    kw = dict(pools=[str(tiny_pool)], out=str(tmp_path / "out"), batch=4, width=0.25, input_size=64, lowres=0.0,
              loader_workers=0)
    first = tmp_path / "first"
    tp.train_parser(tp.ParserTrainConfig(work=str(first), epochs=3, max_minutes=1e-9, **kw))  # stops after epoch 1
    full, portable = first / tp.CHECKPOINT, first / tp.PORTABLE
    assert portable.stat().st_size < 0.5 * full.stat().st_size  # fp16 weights, no optimiser moments
    ck = torch.load(portable, map_location="cpu", weights_only=True)
    assert "opt" not in ck and ck["epoch"] == 0
    halves = {k for k, v in ck["model"].items() if v.dtype == torch.float16}
    assert halves and all(v.dtype == torch.float32 for k, v in ck["model"].items()
                          if k.endswith(("running_mean", "running_var")))

    # another machine: only the portable state came along, and the run goes on with epoch 2
    carried = tmp_path / "carried"
    carried.mkdir()
    (carried / tp.PORTABLE).write_bytes(portable.read_bytes())
    capsys.readouterr()
    tp.train_parser(tp.ParserTrainConfig(work=str(carried), epochs=3, max_minutes=1e-9, **kw))
    out = capsys.readouterr().out
    assert "at epoch 2 (portable state: optimiser moments start afresh)" in out
    assert "epoch 1:" not in out and "epoch 2: LFW val mIoU" in out and "epoch 3:" not in out
    assert [h["epoch"] for h in json.loads((carried / "history.json").read_text())] == [1, 2]
    resumed = torch.load(carried / tp.CHECKPOINT, map_location="cpu", weights_only=True)
    steps = ck["sched"]["last_epoch"]
    assert steps < tp.PORTABLE_RAMP_STEPS - 1  # so the epoch ends inside the ramp
    assert resumed["sched"]["last_epoch"] == 2 * steps  # the one-cycle schedule went on
    # fresh moments: the rate ramps up to the schedule's over tp.PORTABLE_RAMP_STEPS steps
    ramped = resumed["opt"]["param_groups"][0]["lr"] / resumed["sched"]["_last_lr"][0]
    assert ramped == pytest.approx((steps + 1) / tp.PORTABLE_RAMP_STEPS)

    # back on the first machine: its checkpoint (epoch 1) is older than the carried state (epoch 2), which wins
    (first / tp.PORTABLE).write_bytes((carried / tp.PORTABLE).read_bytes())
    capsys.readouterr()
    info = tp.train_parser(tp.ParserTrainConfig(work=str(first), epochs=3, **kw))
    out = capsys.readouterr().out
    assert "at epoch 3 (portable state" in out and "epoch 2:" not in out and "epoch 3: LFW val mIoU" in out
    assert info["max_abs_diff"] < 1e-3
    # rerun once finished: nothing is trained again, the last epoch is exported
    capsys.readouterr()
    tp.train_parser(tp.ParserTrainConfig(work=str(first), epochs=3, **kw))
    assert "is finished (3/3 epochs): exporting it" in capsys.readouterr().out


def test_a_carried_state_is_judged_as_a_checkpoint_is(data_root, tiny_pool, small_lfw_val, tmp_path):
    import shutil

    pool = tmp_path / "pool"
    shutil.copytree(tiny_pool, pool)
    kw = dict(pools=[str(pool)], out=str(tmp_path / "out"), batch=4, width=0.25, input_size=64, lowres=0.0,
              loader_workers=0, epochs=3)
    tp.train_parser(tp.ParserTrainConfig(work=str(tmp_path / "a"), max_minutes=1e-9, **kw))
    other = tmp_path / "other"
    other.mkdir()
    (other / tp.PORTABLE).write_bytes((tmp_path / "a" / tp.PORTABLE).read_bytes())
    with pytest.raises(tp.ResumeMismatchError, match="seed"):
        tp.train_parser(tp.ParserTrainConfig(work=str(other), seed=5, **kw))
    # the pool remade at the same place with half its samples: the schedule would end after the run did
    rows = (pool / "truth.csv").read_text().splitlines()
    (pool / "truth.csv").write_text("\n".join(rows[:5]) + "\n")
    with pytest.raises(tp.ResumeMismatchError, match="gave 2 steps an epoch, these give 1"):
        tp.train_parser(tp.ParserTrainConfig(work=str(other), **kw))
