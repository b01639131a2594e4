"""Tests of rnnbp.schedules: learning rates by hand, state round trips, the old import path, PyTorch."""

import numpy as np
import pytest

import rnnbp.optim
import rnnbp.schedules
from rnnbp.optim import SGD, Adam
from rnnbp.schedules import CosineLR, ExponentialLR, StepLR
from tests.test_optim import _Toy, coefficients, fill_grads


def test_schedules_by_hand():
    def lrs(make, n=7):
        opt = SGD(({"w": np.zeros(1)}, {"w": np.zeros(1)}), lr=2.0)
        sched = make(opt)
        out = []
        for _ in range(n):
            assert sched.lr == opt.lr
            out.append(opt.lr)
            sched.step()
        return out

    assert lrs(lambda o: StepLR(o, 3, gamma=0.5)) == [2, 2, 2, 1, 1, 1, 0.5]
    np.testing.assert_allclose(lrs(lambda o: ExponentialLR(o, 0.5)), 2 * 0.5 ** np.arange(7))
    cos = lrs(lambda o: CosineLR(o, T_max=4, eta_min=0.5), n=9)
    np.testing.assert_allclose(cos, 0.5 + 1.5 * (1 + np.cos(np.pi * np.arange(9) / 4)) / 2)
    assert cos[4] == 0.5 and cos[8] == 2.0  # periodic past T_max, as in PyTorch


def test_schedule_state_dict_roundtrip():
    opt = SGD(({"w": np.zeros(1)}, {"w": np.zeros(1)}), lr=2.0)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(5):
        sched.step()
    saved = sched.state_dict()
    assert saved == {"epoch": 5, "base_lr": 2.0}
    other_opt = SGD(({"w": np.zeros(1)}, {"w": np.zeros(1)}), lr=7.0)
    other = StepLR(other_opt, step_size=2, gamma=0.5)
    other.load_state_dict(saved)
    assert other.epoch == 5 and other.base_lr == 2.0 and other_opt.lr == opt.lr == 0.5


@pytest.mark.parametrize("name", ["StepLR", "ExponentialLR", "CosineLR"])
def test_old_optim_spelling_of_a_schedule_says_where_it_lives(name):
    """rnnbp.optim.StepLR warned through 0.1.0 and is gone in 0.2.0; the error names the new home."""
    with pytest.raises(AttributeError, match=rf"from rnnbp.schedules import {name}"):
        getattr(rnnbp.optim, name)
    assert name not in rnnbp.optim.__all__ and name in rnnbp.schedules.__all__


@pytest.mark.parametrize("name, ours, theirs", [
    ("step", lambda o: StepLR(o, step_size=3, gamma=0.5), ("StepLR", dict(step_size=3, gamma=0.5))),
    ("exp", lambda o: ExponentialLR(o, gamma=0.9), ("ExponentialLR", dict(gamma=0.9))),
    ("cos", lambda o: CosineLR(o, T_max=10, eta_min=0.01),
     ("CosineAnnealingLR", dict(T_max=10, eta_min=0.01))),
])
def test_schedules_match_torch(name, ours, theirs):
    torch = pytest.importorskip("torch")
    model = _Toy()
    A = coefficients(model)
    opt = Adam(model, lr=0.1)
    sched = ours(opt)
    tparams = {n: torch.tensor(p, requires_grad=True) for n, p in model.params.items()}
    topt = torch.optim.Adam(list(tparams.values()), lr=0.1)
    tsched = getattr(torch.optim.lr_scheduler, theirs[0])(topt, **theirs[1])
    for epoch in range(25):
        assert opt.lr == pytest.approx(topt.param_groups[0]["lr"], rel=1e-12, abs=1e-15), epoch
        fill_grads(model, A)
        opt.step()
        for n, tp in tparams.items():
            tp.grad = torch.from_numpy(model.grads[n].copy())
        topt.step()
        sched.step()
        tsched.step()
    for n, tp in tparams.items():
        np.testing.assert_allclose(model.params[n], tp.detach().numpy(), rtol=1e-12, atol=1e-14)
