"""Tests of rnnbp.optim: hand-computed steps, PyTorch trajectories, contracts (schedules: tests/test_schedules.py)."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

import rnnbp.optim
import rnnbp.schedules
from rnnbp.protocol import Layer
from rnnbp.optim import SGD, Adagrad, Adam, RMSprop
from rnnbp.schedules import CosineLR, ExponentialLR, StepLR


class _Toy(Layer):
    """A minimal parameter-holding layer (the name starts with _: not registered)."""

    def __init__(self, dtype=np.float64, seed=0):
        super().__init__(dtype)
        rng = np.random.default_rng(seed)
        self._add_param("W", rng.normal(size=(3, 4)))
        self._add_param("b", rng.normal(size=(4,)))


def fill_grads(model, A):
    """A parameter-dependent gradient: of sum(A_k * sin(p_k)) + 0.1 * |p|^2 / 2."""
    for name, p in model.params.items():
        model.grads[name][...] = A[name] * np.cos(p) + 0.1 * p


def coefficients(model, seed=1):
    rng = np.random.default_rng(seed)
    return {n: rng.normal(size=p.shape) for n, p in model.params.items()}


CONFIGS = [
    (SGD, dict(lr=0.1)),
    (SGD, dict(lr=0.1, weight_decay=0.05)),
    (SGD, dict(lr=0.05, momentum=0.9)),
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
    (SGD, dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1)),
    (Adam, dict()),
    (Adam, dict(lr=0.05, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    (RMSprop, dict()),
    (RMSprop, dict(lr=0.01, alpha=0.9, eps=1e-6, momentum=0.9, weight_decay=0.05)),
    (Adagrad, dict()),
    (Adagrad, dict(lr=0.1, eps=1e-8, weight_decay=0.1)),
]
IDS = [f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'default'}" for cls, kw in CONFIGS]


def run(cls, kw, model, A, steps=20):
    opt = cls(model, **kw)
    history = []
    for _ in range(steps):
        opt.zero_grad()
        fill_grads(model, A)
        opt.step()
        history.append({n: p.copy() for n, p in model.params.items()})
    return opt, history


# -- hand-computed steps (no torch needed) -------------------------------------------

def pair(p, g):
    return {"w": np.array([p])}, {"w": np.array([g])}


def test_sgd_by_hand():
    params, grads = pair(1.0, 0.5)
    opt = SGD((params, grads), lr=0.1, momentum=0.9, weight_decay=0.2)
    opt.step()  # d = 0.5 + 0.2 = 0.7; b = 0.7; p = 1 - 0.07
    assert params["w"][0] == pytest.approx(0.93, rel=1e-15)
    opt.step()  # d = 0.5 + 0.186 = 0.686; b = 0.63 + 0.686 = 1.316; p = 0.93 - 0.1316
    assert params["w"][0] == pytest.approx(0.93 - 0.1316, rel=1e-15)
    params, grads = pair(1.0, 0.5)
    opt = SGD((params, grads), lr=0.1, momentum=0.9, nesterov=True)
    opt.step()  # b = 0.5; p = 1 - 0.1 (0.5 + 0.45)
    assert params["w"][0] == pytest.approx(0.905, rel=1e-15)
    opt.step()  # b = 0.95; p -= 0.1 (0.5 + 0.855)
    assert params["w"][0] == pytest.approx(0.905 - 0.1355, rel=1e-15)


def test_adam_by_hand():
    params, grads = pair(1.0, 0.5)
    opt = Adam((params, grads), lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    opt.step()  # m = 0.05, v = 0.00025; m_hat = 0.5, sqrt(v_hat) = 0.5
    assert params["w"][0] == pytest.approx(1 - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-15)
    grads["w"][0] = -1.0
    p1 = params["w"][0]
    opt.step()
    m = 0.9 * 0.05 + 0.1 * -1.0
    v = 0.999 * 0.00025 + 0.001 * 1.0
    expected = p1 - 0.1 / (1 - 0.9 ** 2) * m / (math.sqrt(v) / math.sqrt(1 - 0.999 ** 2) + 1e-8)
    assert params["w"][0] == pytest.approx(expected, rel=1e-14)


def test_rmsprop_by_hand():
    params, grads = pair(1.0, 2.0)
    opt = RMSprop((params, grads), lr=0.01, alpha=0.75, eps=1e-8, momentum=0.5)
    opt.step()  # v = 0.25 * 4 = 1; b = 2 / (1 + 1e-8); p = 1 - 0.01 b
    b = 2 / (1 + 1e-8)
    assert params["w"][0] == pytest.approx(1 - 0.01 * b, rel=1e-15)
    opt.step()  # v = 0.75 + 1 = 1.75
    b = 0.5 * b + 2 / (math.sqrt(1.75) + 1e-8)
    assert params["w"][0] == pytest.approx(1 - 0.01 * 2 / (1 + 1e-8) - 0.01 * b, rel=1e-14)


def test_adagrad_by_hand():
    params, grads = pair(1.0, 3.0)
    opt = Adagrad((params, grads), lr=0.5, eps=1e-10)
    opt.step()  # G = 9
    assert params["w"][0] == pytest.approx(1 - 0.5 * 3 / (3 + 1e-10), rel=1e-15)
    grads["w"][0] = 4.0
    opt.step()  # G = 25
    assert params["w"][0] == pytest.approx(1 - 0.5 * 3 / (3 + 1e-10) - 0.5 * 4 / (5 + 1e-10), rel=1e-15)


# -- contracts -------------------------------------------------------------------------

@pytest.mark.parametrize("cls, kw", CONFIGS, ids=IDS)
def test_updates_in_place_and_leaves_grads_alone(cls, kw):
    model = _Toy()
    A = coefficients(model)
    arrays = dict(model.params)
    grads = dict(model.grads)
    view = model.params["W"][1]              # a view held elsewhere (as by a Sequential)
    before = view.copy()
    attrs = set(vars(model))
    opt = cls(model, **kw)
    fill_grads(model, A)
    g_before = {n: g.copy() for n, g in model.grads.items()}
    opt.step()
    assert all(model.params[n] is arrays[n] for n in arrays)
    assert all(model.grads[n] is grads[n] for n in grads)
    assert not np.array_equal(view, before)  # the view saw the update
    for n in g_before:
        np.testing.assert_array_equal(model.grads[n], g_before[n])
    assert set(vars(model)) == attrs         # no state stored on the layer
    assert set(opt.state) == {"W", "b"}
    opt.zero_grad()
    assert all(model.grads[n] is grads[n] and not grads[n].any() for n in grads)


@pytest.mark.parametrize("cls, kw", CONFIGS, ids=IDS)
def test_float32_stays_float32(cls, kw):
    m64, m32 = _Toy(np.float64), _Toy(np.float32)
    A = coefficients(m64)
    A32 = {n: a.astype(np.float32) for n, a in A.items()}
    opt32, _ = run(cls, kw, m32, A32, steps=5)
    run(cls, kw, m64, A, steps=5)
    for n, p in m32.params.items():
        assert p.dtype == np.float32
        assert all(a.dtype == np.float32 for a in opt32.state[n].values())
        np.testing.assert_allclose(p, m64.params[n], rtol=1e-4, atol=1e-5)


def test_pair_of_dicts_and_state_dict_roundtrip():
    model = _Toy()
    A = coefficients(model)
    opt, _ = run(Adam, dict(lr=0.05), model, A, steps=5)
    saved = opt.state_dict()
    snapshot = {n: p.copy() for n, p in model.params.items()}
    for _ in range(5):
        fill_grads(model, A)
        opt.step()
    expected = {n: p.copy() for n, p in model.params.items()}

    params = {n: p.copy() for n, p in snapshot.items()}
    grads = {n: np.zeros_like(p) for n, p in params.items()}
    other = Adam((params, grads), lr=1.0)
    other.load_state_dict(saved)
    assert other.lr == 0.05 and other.steps == 5
    holder = _Toy()
    holder.params, holder.grads = params, grads
    for _ in range(5):
        fill_grads(holder, A)
        other.step()
    for n in expected:
        np.testing.assert_array_equal(params[n], expected[n])
    with pytest.raises(ValueError, match="expected the state of optimizer SGD, got that of 'Adam'"):
        SGD((params, grads), lr=0.1).load_state_dict(saved)


def test_validation_errors():
    model = _Toy()
    with pytest.raises(ValueError, match=r"lr: expected a number in \(0, inf\), got 0"):
        SGD(model, lr=0)
    with pytest.raises(ValueError, match="lr: .*got nan"):
        Adam(model, lr=float("nan"))
    with pytest.raises(TypeError, match=r"lr: expected a number in \(0, inf\), got '0.1' \(str\)"):
        SGD(model, lr="0.1")
    with pytest.raises(ValueError, match=r"momentum: expected a number in \[0, 1\), got -0.1"):
        SGD(model, lr=0.1, momentum=-0.1)
    with pytest.raises(ValueError, match="nesterov: Nesterov momentum requires momentum > 0"):
        SGD(model, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"betas\[1\]: expected .*\[0, 1\), got 1.0"):
        Adam(model, betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="betas: expected a pair"):
        Adam(model, betas=0.9)
    with pytest.raises(ValueError, match="eps: "):
        Adagrad(model, eps=0.0)
    with pytest.raises(ValueError, match="alpha: "):
        RMSprop(model, alpha=1.5)
    with pytest.raises(ValueError, match="weight_decay: "):
        RMSprop(model, weight_decay=-1)
    with pytest.raises(TypeError, match="model_or_params: expected a Layer or a pair of dicts"):
        SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match=r"grads\['w'\]: expected an array of shape \(3,\) and dtype float64"):
        SGD(({"w": np.zeros(3)}, {"w": np.zeros(4)}), lr=0.1)
    with pytest.raises(ValueError, match="missing grads"):
        SGD(({"w": np.zeros(3)}, {"v": np.zeros(3)}), lr=0.1)
    with pytest.raises(ValueError, match="at least one parameter"):
        SGD(({}, {}), lr=0.1)
    opt = SGD(model, lr=0.1)
    with pytest.raises(ValueError, match="lr: "):
        opt.lr = -1.0
    opt.lr = 0.0  # a schedule may anneal to zero
    with pytest.raises(ValueError, match="step_size: "):
        StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="gamma: "):
        ExponentialLR(opt, gamma=0.0)
    with pytest.raises(TypeError, match="T_max: "):
        CosineLR(opt, T_max=2.5)
    with pytest.raises(TypeError, match="optimizer: "):
        StepLR(model, step_size=1)


def test_validation_errors_name_the_argument_and_what_came():
    """The shared validators' messages: argument, expected interval or type, what arrived."""
    model = _Toy()
    with pytest.raises(TypeError, match=r"momentum: expected a number in \[0, 1\), got True \(bool\)"):
        SGD(model, lr=0.1, momentum=True)
    with pytest.raises(TypeError, match=r"nesterov: expected True or False, got 1 \(int\)"):
        SGD(model, lr=0.1, momentum=0.9, nesterov=1)
    with pytest.raises(ValueError, match=r"weight_decay: expected a finite number in \[0, inf\), got inf"):
        Adam(model, weight_decay=float("inf"))
    with pytest.raises(ValueError, match=r"eps: expected a number in \(0, inf\), got -1e-08"):
        RMSprop(model, eps=-1e-8)
    opt = SGD(model, lr=0.1)
    with pytest.raises(ValueError, match=r"lr: expected a number in \[0, inf\), got -0.5"):
        opt.lr = -0.5
    saved = opt.state_dict()
    with pytest.raises(TypeError, match=r"state_dict\['steps'\]: expected an integer >= 0, got 1.5 \(float\)"):
        opt.load_state_dict({**saved, "steps": 1.5})
    with pytest.raises(ValueError, match=r"state_dict\['steps'\]: expected an integer >= 0, got -1"):
        opt.load_state_dict({**saved, "steps": -1})
    sched = ExponentialLR(opt, gamma=0.5)
    with pytest.raises(ValueError, match=r"state_dict\['base_lr'\]: expected a number in \(0, inf\), got 0"):
        sched.load_state_dict({"epoch": 1, "base_lr": 0})
    with pytest.raises(TypeError, match=r"state_dict\['epoch'\]: expected an integer >= 0, got '2' \(str\)"):
        sched.load_state_dict({"epoch": "2", "base_lr": 1.0})
    with pytest.raises(ValueError, match=r"eta_min: expected a number in \[0, inf\), got -0.1"):
        CosineLR(opt, T_max=3, eta_min=-0.1)


def test_optim_still_raises_attribute_error_for_unknown_names():
    with pytest.raises(AttributeError, match="module 'rnnbp.optim' has no attribute 'Nadam'"):
        rnnbp.optim.Nadam  # noqa: B018


@pytest.mark.parametrize("module", [rnnbp.optim, rnnbp.schedules])
def test_doctests(module):
    failures, _ = doctest.testmod(module)
    assert failures == 0


# -- PyTorch comparison ---------------------------------------------------------------

TORCH_NAMES = {SGD: "SGD", Adam: "Adam", RMSprop: "RMSprop", Adagrad: "Adagrad"}


@pytest.mark.parametrize("cls, kw", CONFIGS, ids=IDS)
def test_trajectory_matches_torch(cls, kw):
    torch = pytest.importorskip("torch")
    model = _Toy()
    A = coefficients(model)
    tparams = {n: torch.tensor(p, requires_grad=True) for n, p in model.params.items()}
    topt = getattr(torch.optim, TORCH_NAMES[cls])(list(tparams.values()), **kw)
    _, history = run(cls, kw, model, A, steps=20)
    for step in range(20):
        for n, tp in tparams.items():
            p = tp.detach().numpy()
            tp.grad = torch.from_numpy(A[n] * np.cos(p) + 0.1 * p)
        topt.step()
        for n, tp in tparams.items():
            np.testing.assert_allclose(history[step][n], tp.detach().numpy(), rtol=1e-12, atol=1e-14,
                                       err_msg=f"step {step}, parameter {n}")
