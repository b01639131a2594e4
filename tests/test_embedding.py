"""Embedding: integer ids to learned vectors; finite differences, padding, PyTorch, errors, training."""

import numpy as np
import pytest

import rnnbp
from rnnbp.losses import softmax_cross_entropy


def _ids(shape, V=9, seed=0):
    return np.random.default_rng(seed).integers(0, V, size=shape)


@pytest.mark.parametrize("padding_idx", [None, 0, -1])
def test_finite_differences_through_a_recurrent_model(padding_idx):
    model = rnnbp.Sequential(rnnbp.Embedding(9, 4, padding_idx=padding_idx, seed=0),
                             rnnbp.GRU(4, 5, seed=1), rnnbp.Linear(5, 3, seed=2))
    ids = _ids((6, 3))
    ids[0, 0] = 8                                          # the padding row (-1 -> 8) is read too
    res = rnnbp.gradcheck(model, ids)
    assert "xs" not in res.errors                          # ids are not differentiable
    assert max(e for k, e in res.errors.items() if k != "0.W") < 1e-7, str(res)
    a, n = res.analytic["0.W"], res.numeric["0.W"]
    if padding_idx is not None:                            # as torch: the padding vector is frozen,
        row = padding_idx % 9                              # although reading it changes the loss
        assert not a[row].any() and np.abs(n[row]).max() > 1e-3
        assert not model.params["0.W"][row].any()
        a, n = np.delete(a, row, axis=0), np.delete(n, row, axis=0)
    assert np.abs(a - n).max() / np.abs(n).max() < 1e-7


def test_step_path_and_masks():
    emb = rnnbp.Embedding(9, 4, seed=0)
    ids = _ids((5, 3))
    mask = np.arange(5)[:, None] < np.array([5, 2, 1])[None]
    R = np.random.default_rng(1).normal(size=(5, 3, 4))
    grads = {}
    for path in ("fast", "step"):
        graph = rnnbp.unroll(emb, ids, mask=mask, path=path)
        emb.zero_grad()
        dxs, _ = graph.backward(R)
        assert dxs.shape == ids.shape and not dxs.any()
        assert not graph.outputs[~mask].any()
        grads[path] = emb.grads["W"].copy()
    np.testing.assert_allclose(grads["step"], grads["fast"], rtol=0, atol=1e-14)
    expected = np.zeros((9, 4))                            # dW[v] = sum of R over valid (t, b) with id v
    for t, b in zip(*np.nonzero(mask)):
        expected[ids[t, b]] += R[t, b]
    np.testing.assert_allclose(grads["fast"], expected, rtol=0, atol=1e-14)


def test_matches_torch_embedding():
    torch = pytest.importorskip("torch")
    emb = rnnbp.Embedding(7, 3, padding_idx=2, seed=0)
    ids = _ids((4, 5), V=7, seed=3)
    dy = np.random.default_rng(4).normal(size=(4, 5, 3))
    ref = torch.nn.Embedding(7, 3, padding_idx=2, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(emb.params["W"]))
    out = ref(torch.tensor(ids))
    out.backward(torch.tensor(dy))
    y, _, cache = emb.forward(ids)
    emb.zero_grad()
    emb.backward(dy, (), cache)
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(emb.grads["W"], ref.weight.grad.numpy(), rtol=0, atol=1e-14)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"padding_idx: expected None or an int in \[-5, 5\), got 5"):
        rnnbp.Embedding(5, 2, padding_idx=5)
    with pytest.raises(TypeError, match="num_embeddings: expected a positive integer"):
        rnnbp.Embedding(2.0, 2)
    emb = rnnbp.Embedding(5, 2, seed=0)
    with pytest.raises(ValueError, match=r"x: expected ids in \[0, 5\), got 7 at index \(1,\)"):
        emb.forward(np.array([1, 7]))
    with pytest.raises(TypeError, match="xs: expected an integer numpy array of ids"):
        rnnbp.unroll(emb, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"xs: expected ids of shape \(T, B\), got shape \(3,\)"):
        rnnbp.unroll(emb, np.zeros(3, dtype=int))


def test_trains_a_next_token_model_and_round_trips_through_save(tmp_path):
    rng = np.random.default_rng(5)
    ids = (np.arange(12)[:, None] + rng.integers(0, 6, size=(1, 64))) % 6   # a counter mod 6
    model = rnnbp.Sequential(rnnbp.Embedding(6, 8, seed=0), rnnbp.Elman(8, 16, seed=1),
                             rnnbp.Linear(16, 6, seed=2))
    hist = rnnbp.fit(model, (ids[:-1], ids[1:]), loss=softmax_cross_entropy,
                     optimizer=rnnbp.optim.Adam(model, lr=3e-2), epochs=20, batch_size=16,
                     metric=rnnbp.accuracy, progress=False)
    assert hist.metric[-1] > 0.95 > hist.metric[0]
    path = rnnbp.save(model, tmp_path / "m")
    again = rnnbp.load(path)
    np.testing.assert_array_equal(rnnbp.predict(again, ids), rnnbp.predict(model, ids))
