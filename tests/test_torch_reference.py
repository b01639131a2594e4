"""The cells against PyTorch's ``nn.RNN``/``nn.LSTM``/``nn.GRU`` in float64.

Weights convert one to one: ``W_ih = weight_ih_l0.T``, ``W_hh = weight_hh_l0.T``;
``b = bias_ih_l0 + bias_hh_l0`` (Elman, LSTM), and for the GRU
``b = bias_ih_l0 + [bias_hh_r, bias_hh_z, 0]``, ``b_hn = bias_hh_n``.
"""

from __future__ import annotations

import numpy as np
import pytest

from rnnbp.cells import GRU, LSTM, Elman

torch = pytest.importorskip("torch")

T, B, D, H = 6, 3, 4, 5
TOL = dict(rtol=1e-10, atol=1e-10)


def build(kind, seed=0):
    """Our cell with random non-zero biases and the equivalent torch module."""
    rng = np.random.default_rng(seed)
    if kind in ("tanh", "relu"):
        cell, module = Elman(D, H, kind, seed=seed), torch.nn.RNN(D, H, nonlinearity=kind)
    elif kind == "lstm":
        cell, module = LSTM(D, H, seed=seed), torch.nn.LSTM(D, H)
    else:
        cell, module = GRU(D, H, seed=seed), torch.nn.GRU(D, H)
    module = module.double()
    G = cell.params["b"].size // H
    b_ih = rng.standard_normal(G * H)
    b_hh = rng.standard_normal(G * H)
    if kind == "gru":
        cell.params["b"][...] = b_ih + np.concatenate([b_hh[:2 * H], np.zeros(H)])
        cell.params["b_hn"][...] = b_hh[2 * H:]
    else:
        cell.params["b"][...] = b_ih + b_hh
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(cell.params["W_ih"].T.copy()))
        module.weight_hh_l0.copy_(torch.from_numpy(cell.params["W_hh"].T.copy()))
        module.bias_ih_l0.copy_(torch.from_numpy(b_ih))
        module.bias_hh_l0.copy_(torch.from_numpy(b_hh))
    return cell, module


@pytest.mark.parametrize("kind", ["tanh", "relu", "lstm", "gru"])
def test_matches_torch(kind):
    cell, module = build(kind)
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((T, B, D))
    state = tuple(rng.standard_normal((B, H)) for _ in cell.state_sizes)
    R = rng.standard_normal((T, B, H))
    Rs = tuple(rng.standard_normal((B, H)) for _ in cell.state_sizes)

    ys, sT, cache = cell.forward_seq(xs, state)
    dxs, d0 = cell.backward_seq(R, Rs, cache)

    x_t = torch.from_numpy(xs.copy()).requires_grad_()
    s_t = [torch.from_numpy(s[None].copy()).requires_grad_() for s in state]
    out, final = module(x_t, tuple(s_t) if kind == "lstm" else s_t[0])
    final = final if kind == "lstm" else (final,)
    loss = (out * torch.from_numpy(R)).sum()
    for f, r in zip(final, Rs):
        loss = loss + (f[0] * torch.from_numpy(r)).sum()
    loss.backward()

    np.testing.assert_allclose(ys, out.detach().numpy(), **TOL)
    for ours, theirs in zip(sT, final, strict=True):
        np.testing.assert_allclose(ours, theirs[0].detach().numpy(), **TOL)
    np.testing.assert_allclose(dxs, x_t.grad.numpy(), **TOL)
    for ours, theirs in zip(d0, s_t, strict=True):
        np.testing.assert_allclose(ours, theirs.grad[0].numpy(), **TOL)
    g = cell.grads
    np.testing.assert_allclose(g["W_ih"], module.weight_ih_l0.grad.numpy().T, **TOL)
    np.testing.assert_allclose(g["W_hh"], module.weight_hh_l0.grad.numpy().T, **TOL)
    np.testing.assert_allclose(g["b"], module.bias_ih_l0.grad.numpy(), **TOL)
    if kind == "gru":
        np.testing.assert_allclose(g["b"][:2 * H], module.bias_hh_l0.grad.numpy()[:2 * H], **TOL)
        np.testing.assert_allclose(g["b_hn"], module.bias_hh_l0.grad.numpy()[2 * H:], **TOL)
    else:
        np.testing.assert_allclose(g["b"], module.bias_hh_l0.grad.numpy(), **TOL)


@pytest.mark.parametrize("kind", ["tanh", "relu", "lstm", "gru"])
def test_step_matches_torch_cell(kind):
    """One ``forward`` step against torch's ``*Cell`` modules (same weights)."""
    cell, module = build(kind, seed=2)
    cls = {"tanh": torch.nn.RNNCell, "relu": torch.nn.RNNCell,
           "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}[kind]
    kwargs = {"nonlinearity": kind} if kind in ("tanh", "relu") else {}
    step = cls(D, H, **kwargs).double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(step, name).copy_(getattr(module, name + "_l0"))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, D))
    state = tuple(rng.standard_normal((B, H)) for _ in cell.state_sizes)
    y, s1, _ = cell.forward(x, state)
    args = tuple(torch.from_numpy(s) for s in state)
    ref = step(torch.from_numpy(x), args if kind == "lstm" else args[0])
    ref = ref if kind == "lstm" else (ref,)
    np.testing.assert_allclose(y, ref[0].detach().numpy(), **TOL)
    for ours, theirs in zip(s1, ref, strict=True):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), **TOL)
