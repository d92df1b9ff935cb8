"""The parser's training loss: online hard example mining with optional per-class weights."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="needs the [train] extra (torch)")

from occparse.train.parser import ohem_ce  # noqa: E402


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 5, 8, 8, generator=g, requires_grad=True)
    target = torch.randint(0, 5, (2, 8, 8), generator=g)
    target[0, 0, :4] = 255  # unknown pixels are ignored
    return logits, target


def test_unit_class_weights_change_nothing():
    logits, target = _batch()
    plain = ohem_ce(logits, target)
    ones = ohem_ce(logits, target, class_weight=torch.ones(5))
    assert torch.allclose(plain, ones)


def test_a_heavier_class_gets_a_larger_share_of_the_gradient():
    """Weighting facial hair (class 4) up must move more gradient onto its pixels, with the same pixels mined."""
    logits, target = _batch(1)
    share, mined = [], []
    for w in (torch.ones(5), torch.tensor([1.0, 1.0, 1.0, 1.0, 4.0])):
        x = logits.detach().clone().requires_grad_(True)
        ohem_ce(x, target, class_weight=w).backward()
        g = x.grad.abs().sum(1)  # per pixel
        share.append(float(g[target == 4].sum() / g.sum()))
        mined.append(g > 0)
    assert share[1] > share[0] * 1.5
    assert torch.equal(mined[0], mined[1])  # the weights do not change which pixels are mined


def test_all_unknown_gives_a_zero_loss_not_nan():
    logits, target = _batch()
    target[:] = 255
    loss = ohem_ce(logits, target, class_weight=torch.ones(5))
    assert loss.item() == 0.0


def test_the_config_refuses_class_weights_the_loss_cannot_use():
    """One rule, at construction (the CLI reports it as one line before any data is read)."""
    from occparse.train.parser import ParserTrainConfig

    assert ParserTrainConfig(pools=[], class_weight=(1, 1, 1.5, 1.5, 2.5)).class_weight == (1, 1, 1.5, 1.5, 2.5)
    for bad in ((1, 1), (1, 1, 0, 1, 1), (1, 1, float("inf"), 1, 1), (1, 1, float("nan"), 1, 1)):
        with pytest.raises(ValueError, match="--class-weight"):
            ParserTrainConfig(pools=[], class_weight=bad)


def test_resume_refuses_a_checkpoint_of_other_options():
    """Resuming with changed class weights (or pools, rate, ...) would mix two recipes silently."""
    from dataclasses import asdict

    from occparse.train.parser import ParserTrainConfig, resume_mismatch

    cfg = ParserTrainConfig(pools=["pools/a"], class_weight=(1, 1, 1.5, 1.5, 2.5), lr=3e-4)
    saved = asdict(cfg)
    assert resume_mismatch(saved, cfg) == []
    saved_lists = {**saved, "class_weight": [1.0, 1.0, 1.5, 1.5, 2.5]}  # as a checkpoint may hold them
    assert resume_mismatch(saved_lists, cfg) == []
    other = ParserTrainConfig(pools=["pools/a"], class_weight=(1, 1, 2, 2, 3), lr=3e-4)
    (msg,) = resume_mismatch(saved, other)
    assert msg.startswith("class_weight:")
    assert len(resume_mismatch(saved, ParserTrainConfig(pools=["pools/b"], lr=1e-3))) == 3  # pools, lr, class_weight
    # options that do not define the run (threads, where to write, time limit) never block a resume
    assert resume_mismatch(saved, ParserTrainConfig(pools=["pools/a"], class_weight=(1, 1, 1.5, 1.5, 2.5), lr=3e-4,
                                                    threads=1, out="elsewhere", max_minutes=5)) == []
    assert resume_mismatch({}, other) == []  # an older checkpoint without a saved config
