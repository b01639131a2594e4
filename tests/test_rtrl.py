"""RTRL: the same gradient as BPTT, online at every step; the memory guard."""

import numpy as np
import pytest

import rnnbp
from rnnbp.rtrl import RTRL, rtrl_bytes

T, B, D, H = 9, 3, 2, 5


def cell_with_bias(activation="tanh", dtype=np.float64, seed=0):
    cell = rnnbp.Elman(D, H, activation, seed=seed, dtype=dtype)
    cell.params["b"][...] = np.random.default_rng(seed + 1).normal(size=H)
    return cell


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_rtrl_equals_bptt_at_every_step(activation):
    """After step t the online sum equals BPTT's gradient of sum_{s <= t} l_s."""
    rng = np.random.default_rng(2)
    xs, R, h0 = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, H)), rng.normal(size=(B, H))
    cell = cell_with_bias(activation)
    rtrl = RTRL(cell, B, state=(h0,))
    worst = 0.0
    for t in range(T):
        h = rtrl.step(xs[t])
        rtrl.accumulate(R[t])
        online = {k: g.copy() for k, g in cell.grads.items()}
        cell.zero_grad()
        graph = rnnbp.unroll(cell, xs[:t + 1], state=(h0,))
        np.testing.assert_allclose(h, graph.outputs[-1], rtol=0, atol=1e-14)
        graph.backward(R[:t + 1])
        for k, g in cell.grads.items():
            worst = max(worst, np.max(np.abs(online[k] - g)) / max(np.max(np.abs(g)), 1e-8))
            g[...] = online[k]
    assert worst < 1e-10


def test_rtrl_with_a_readout_and_a_loss_per_step_equals_bptt():
    rng = np.random.default_rng(3)
    xs, targets = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, 2))
    cell, head = cell_with_bias(), rnnbp.Linear(H, 2, seed=4)
    model = rnnbp.Sequential(cell, head)
    graph = rnnbp.unroll(model, xs)
    dys = np.stack([rnnbp.losses.mse(graph.outputs[t], targets[t])[1] for t in range(T)])
    graph.backward(dys)
    bptt = {k: g.copy() for k, g in model.grads.items()}
    model.zero_grad()
    rtrl = RTRL(cell, B)
    for t in range(T):
        y, _, c = head.forward(rtrl.step(xs[t]))
        _, dy = rnnbp.losses.mse(y, targets[t])
        rtrl.accumulate(head.backward(dy, (), c)[0])
    for k, g in model.grads.items():
        np.testing.assert_allclose(g, bptt[k], rtol=1e-10, atol=1e-13)


def test_reset_restarts_the_sensitivities():
    rng = np.random.default_rng(5)
    xs, R = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, H))
    cell = cell_with_bias()
    rtrl = RTRL(cell, B)
    for t in range(T):
        rtrl.step(xs[t])
    rtrl.reset()
    assert rtrl.t == 0 and not rtrl.sensitivities.any() and not rtrl.h.any()
    for t in range(T):
        rtrl.step(xs[t])
        rtrl.accumulate(R[t])
    online = {k: g.copy() for k, g in cell.grads.items()}
    cell.zero_grad()
    rnnbp.unroll(cell, xs).backward(R)
    for k, g in cell.grads.items():
        np.testing.assert_allclose(online[k], g, rtol=1e-10, atol=1e-13)


def test_float32_runs_close_to_float64():
    rng = np.random.default_rng(6)
    xs, R = rng.normal(size=(T, B, D)), rng.normal(size=(T, B, H))
    out = {}
    for dtype in (np.float64, np.float32):
        cell = cell_with_bias(dtype=dtype)
        rtrl = RTRL(cell, B)
        for t in range(T):
            h = rtrl.step(xs[t].astype(dtype))
            rtrl.accumulate(R[t].astype(dtype))
        assert h.dtype == rtrl.sensitivities.dtype == cell.grads["W_hh"].dtype == dtype
        out[dtype] = cell.grads["W_hh"].astype(np.float64)
    np.testing.assert_allclose(out[np.float32], out[np.float64], rtol=1e-3, atol=1e-4)


# -- the memory guard -----------------------------------------------------------
def test_rtrl_bytes_is_two_buffers_of_B_H_nparams():
    cell = rnnbp.Elman(D, H)
    assert rtrl_bytes(cell, B) == 2 * B * H * (D * H + H * H + H) * 8
    assert rtrl_bytes(rnnbp.Elman(D, H, dtype=np.float32), B) == rtrl_bytes(cell, B) // 2


def test_memory_guard_refuses_with_the_estimate():
    cell = rnnbp.Elman(4, 64, seed=0)
    need = rtrl_bytes(cell, 8)
    with pytest.raises(MemoryError, match=f"{need:,} bytes") as info:
        RTRL(cell, 8, max_bytes=10**6)
    assert "max_bytes=1,000,000" in str(info.value) and "O(H^3)" in str(info.value)
    RTRL(cell, 8, max_bytes=need)                               # exactly enough is fine


def test_default_guard_refuses_what_no_machine_holds():
    cell = rnnbp.Elman(1, 1000, init_hh="zeros")
    with pytest.raises(MemoryError, match="bytes"):            # ~1.6e16 bytes
        RTRL(cell, 10**6)


# -- arguments --------------------------------------------------------------------
def test_bad_inputs_name_the_argument():
    cell = cell_with_bias()
    with pytest.raises(TypeError, match="cell: expected a rnnbp.Elman"):
        RTRL(rnnbp.LSTM(D, H), B)
    with pytest.raises(ValueError, match="batch_size"):
        RTRL(cell, 0)
    with pytest.raises(ValueError, match=r"state\[0\]: expected shape \(3, 5\)"):
        RTRL(cell, B, state=(np.zeros((B, H + 1)),))
    rtrl = RTRL(cell, B)
    with pytest.raises(RuntimeError, match="accumulate: call step"):
        rtrl.accumulate(np.zeros((B, H)))
    with pytest.raises(ValueError, match=r"x: expected shape \(3, 2\)"):
        rtrl.step(np.zeros((B, D + 1)))
    with pytest.raises(TypeError, match="x: expected dtype float64"):
        rtrl.step(np.zeros((B, D), dtype=np.float32))
    rtrl.step(np.zeros((B, D)))
    with pytest.raises(ValueError, match=r"dh: expected shape \(3, 5\)"):
        rtrl.accumulate(np.zeros((B, H + 1)))
    with pytest.raises(ValueError, match="sensitivities|read-only"):
        rtrl.sensitivities[0, 0, 0] = 1.0
