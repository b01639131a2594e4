"""Bidirectional: two directions, each sequence reversed within its valid prefix, merged outputs."""

import numpy as np
import pytest

import rnnbp
from rnnbp.bidirectional import reverse_valid_prefix
from rnnbp.losses import mse
from tests.helpers import random_biases

CELLS = {"elman": rnnbp.Elman, "lstm": rnnbp.LSTM, "gru": rnnbp.GRU}
T, B, D, H = 7, 4, 3, 5
LENGTHS = np.array([7, 4, 1, 6])


def _bi(cell="lstm", merge="concat", dtype=np.float64):
    layer = rnnbp.Bidirectional(CELLS[cell](D, H, seed=0, dtype=dtype), merge=merge, seed=1)
    random_biases(layer, np.random.default_rng(2))
    return layer


def _data(masked, seed=3):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(T, B, D))
    mask = np.arange(T)[:, None] < LENGTHS[None] if masked else None
    return xs, mask


def test_reverse_valid_prefix_reverses_each_prefix_and_keeps_padding():
    mask = np.arange(T)[:, None] < LENGTHS[None]
    index = reverse_valid_prefix(mask, T, B)
    a = np.arange(T)[:, None] * 10 + np.arange(B)[None]
    rev = a[index, np.arange(B)]
    for b, L in enumerate(LENGTHS):
        np.testing.assert_array_equal(rev[:L, b], a[:L, b][::-1])
        np.testing.assert_array_equal(rev[L:, b], a[L:, b])
    np.testing.assert_array_equal(rev[index, np.arange(B)], a)      # its own inverse


@pytest.mark.slow
@pytest.mark.parametrize("merge", ["concat", "sum"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_finite_differences(cell, masked, merge):
    model = rnnbp.Sequential(_bi(cell, merge), rnnbp.Linear(2 * H if merge == "concat" else H, 2, seed=4))
    xs, mask = _data(masked)
    for path in ("fast", "step"):
        res = rnnbp.gradcheck(model, xs, mask=mask, path=path)
        assert res.worst < 1e-6, str(res)


def _separately(layer, xs, mask, R):
    """Each direction unrolled on its own, sequence by sequence, on the reversed valid prefix."""
    fwd, bwd = layer.forward_layer, layer.backward_layer
    ys = np.zeros((T, B, layer.output_size))
    dxs = np.zeros_like(xs)
    fwd.zero_grad()
    bwd.zero_grad()
    norms = {"forward": np.zeros((T, B)), "backward": np.zeros((T, B))}
    lengths = LENGTHS if mask is not None else np.full(B, T)
    for b, L in enumerate(lengths):
        x = xs[:L, b:b + 1]
        gf = rnnbp.unroll(fwd, x)
        gb = rnnbp.unroll(bwd, x[::-1].copy())
        yf, yb = gf.outputs[:, 0], gb.outputs[::-1, 0]
        r = R[:L, b]
        if layer.merge == "concat":
            ys[:L, b] = np.concatenate([yf, yb], axis=-1)
            rf, rb = r[:, :H], r[:, H:]
        else:
            ys[:L, b] = yf + yb
            rf = rb = r
        dxf, _ = gf.backward(rf[:, None].copy())
        dxb, _ = gb.backward(rb[::-1, None].copy())
        dxs[:L, b] = dxf[:, 0] + dxb[::-1, 0]
        norms["forward"][:L, b] = gf.state_grad_norms_per_sequence[""][:, 0]
        norms["backward"][:L, b] = gb.state_grad_norms_per_sequence[""][::-1, 0]
    grads = dict({k: g.copy() for k, g in fwd.grads.items()},
                 **{f"{k}_reverse": g.copy() for k, g in bwd.grads.items()})
    return ys, grads, dxs, norms


@pytest.mark.parametrize("merge", ["concat", "sum"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_equals_two_layers_unrolled_separately_on_reversed_valid_prefixes(cell, masked, merge):
    layer = _bi(cell, merge)
    xs, mask = _data(masked)
    R = np.random.default_rng(5).normal(size=(T, B, layer.output_size))
    ys_ref, grads_ref, dxs_ref, norms_ref = _separately(layer, xs, mask, R)
    for path in ("fast", "step"):
        for recompute in (None, 4):
            graph = rnnbp.unroll(layer, xs, mask=mask, path=path, recompute=recompute)
            layer.zero_grad()
            dxs, _ = graph.backward(R)
            np.testing.assert_allclose(graph.outputs, ys_ref, rtol=1e-12, atol=1e-14)
            np.testing.assert_allclose(dxs, dxs_ref, rtol=1e-12, atol=1e-14)
            for k, g in grads_ref.items():
                np.testing.assert_allclose(layer.grads[k], g, rtol=1e-12, atol=1e-14, err_msg=k)
            for name in ("forward", "backward"):
                got = graph.state_grad_norms_per_sequence[name]
                valid = mask if mask is not None else np.ones((T, B), bool)
                np.testing.assert_allclose(got[valid], norms_ref[name][valid], rtol=1e-12, atol=1e-14)


def test_composes_trains_saves_and_loads(tmp_path):
    rng = np.random.default_rng(6)
    xs = rng.normal(size=(9, 32, 1))
    ys = np.flip(np.cumsum(np.flip(xs, 0), axis=0), 0) / 3        # a sum over the future: needs the backward pass
    mask = np.arange(9)[:, None] < rng.integers(4, 10, size=32)[None]
    model = rnnbp.Sequential(rnnbp.Bidirectional(rnnbp.GRU(1, 8, seed=0), seed=1), rnnbp.Linear(16, 1, seed=2))
    hist = rnnbp.fit(model, (xs, ys, mask), loss=mse, optimizer=rnnbp.optim.Adam(model, lr=2e-2),
                     epochs=40, batch_size=16, progress=False)
    assert hist.loss[-1] < hist.loss[0] / 5
    forward_only = rnnbp.Sequential(rnnbp.GRU(1, 16, seed=0), rnnbp.Linear(16, 1, seed=2))
    one_way = rnnbp.fit(forward_only, (xs, ys, mask), loss=mse, optimizer=rnnbp.optim.Adam(forward_only, lr=2e-2),
                        epochs=40, batch_size=16, progress=False)
    assert hist.loss[-1] < one_way.loss[-1] / 2             # the future is out of a forward layer's reach
    assert set(hist.state_grad_norms) == {"0.forward", "0.backward"}
    path = rnnbp.save(model, tmp_path / "bi")
    again = rnnbp.load(path)
    np.testing.assert_array_equal(rnnbp.predict(again, xs, mask), rnnbp.predict(model, xs, mask))
    assert sorted(again.params) == sorted(model.params)
    assert "0.W_ih_reverse" in again.params


def test_refuses_truncated_bptt_and_gapped_masks():
    model = rnnbp.Sequential(_bi(), rnnbp.Linear(2 * H, 1, seed=0))
    with pytest.raises(ValueError, match=r"model: truncated BPTT .* layer '0' \(Bidirectional\) reads later steps"):
        rnnbp.TruncatedBPTT(model, 3)
    xs, _ = _data(False)
    with pytest.raises(ValueError, match="truncated BPTT"):
        rnnbp.fit(model, (xs, np.zeros((T, B, 1))), loss=mse, optimizer=rnnbp.optim.SGD(model, lr=0.1),
                  bptt=3, progress=False)
    gapped = np.ones((T, B), bool)
    gapped[2, 1] = False
    with pytest.raises(ValueError, match="mask: Bidirectional needs prefix masks.*sequence 1"):
        rnnbp.unroll(model, xs, mask=gapped)
    with pytest.raises(TypeError, match="layer: expected a recurrent leaf layer"):
        rnnbp.Bidirectional(rnnbp.Linear(3, 3))
    with pytest.raises(ValueError, match="merge: expected one of 'concat', 'sum'"):
        rnnbp.Bidirectional(rnnbp.LSTM(3, 3), merge="mean")
    with pytest.raises(TypeError, match="backward_layer: expected dtype float64"):
        rnnbp.Bidirectional(rnnbp.LSTM(3, 3), rnnbp.LSTM(3, 3, dtype=np.float32))


def test_float32_runs():
    layer = _bi("gru", dtype=np.float32)
    xs, mask = _data(True)
    graph = rnnbp.unroll(layer, xs.astype(np.float32), mask=mask)
    dxs, _ = graph.backward(np.ones_like(graph.outputs))
    assert graph.outputs.dtype == dxs.dtype == np.float32


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "packed"])
def test_matches_torch_bidirectional_lstm(masked):
    torch = pytest.importorskip("torch")
    layer = _bi("lstm")
    xs, mask = _data(masked)
    ref = torch.nn.LSTM(D, H, bidirectional=True, dtype=torch.float64)
    fwd, bwd = layer.forward_layer.params, layer.backward_layer.params
    with torch.no_grad():                    # W_ih = weight_ih_l0.T; b = bias_ih + bias_hh (bias_hh = 0 here)
        for suffix, p in (("", fwd), ("_reverse", bwd)):
            getattr(ref, f"weight_ih_l0{suffix}").copy_(torch.tensor(p["W_ih"].T))
            getattr(ref, f"weight_hh_l0{suffix}").copy_(torch.tensor(p["W_hh"].T))
            getattr(ref, f"bias_ih_l0{suffix}").copy_(torch.tensor(p["b"]))
            getattr(ref, f"bias_hh_l0{suffix}").zero_()
    x = torch.tensor(xs, requires_grad=True)
    lengths = LENGTHS if masked else np.full(B, T)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), enforce_sorted=False)
    out, _ = ref(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, total_length=T)
    R = np.random.default_rng(7).normal(size=(T, B, 2 * H))
    (out * torch.tensor(R)).sum().backward()
    graph = rnnbp.unroll(layer, xs, mask=mask)
    layer.zero_grad()
    dxs, _ = graph.backward(R)
    np.testing.assert_allclose(graph.outputs, out.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dxs, x.grad.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W_hh_reverse"], ref.weight_hh_l0_reverse.grad.numpy().T, atol=1e-12)
    np.testing.assert_allclose(layer.grads["b"], ref.bias_ih_l0.grad.numpy(), atol=1e-12)
