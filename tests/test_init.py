"""Tests of the weight initialisers."""

from __future__ import annotations

import numpy as np
import pytest

from rnnbp import init


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("gates", [1, 3, 4])
def test_orthogonal_gate_blocks(gates):
    H = 6
    W = init.orthogonal((H, gates * H), rng())            # default: square blocks
    assert W.shape == (H, gates * H)
    for k in range(gates):
        block = W[:, k * H:(k + 1) * H]
        np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-12)
        np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-12)
    if gates > 1:                                          # blocks are drawn independently
        assert not np.allclose(W[:, :H], W[:, H:2 * H])


def test_orthogonal_rectangular_and_gain():
    tall = init.orthogonal((8, 3), rng())                  # orthonormal columns
    np.testing.assert_allclose(tall.T @ tall, np.eye(3), atol=1e-12)
    wide = init.orthogonal((3, 7), rng())                  # orthonormal rows
    np.testing.assert_allclose(wide @ wide.T, np.eye(3), atol=1e-12)
    blocks = init.orthogonal((8, 12), rng(), gates=4, gain=2.0)  # four (8, 3) blocks
    for k in range(4):
        b = blocks[:, 3 * k:3 * (k + 1)]
        np.testing.assert_allclose(b.T @ b, 4 * np.eye(3), atol=1e-12)


def test_orthogonal_sign_fix_gives_haar_diagonal():
    # Haar-distributed orthogonal matrices have diagonal entries of mean zero;
    # QR without the sign fix skews them.
    g = rng(1)
    diag = np.array([np.diag(init.orthogonal((4, 4), g)) for _ in range(400)])
    assert abs(diag.mean()) < 0.1


def test_identity_blocks():
    W = init.identity((3, 9), gain=0.5)
    np.testing.assert_array_equal(W, np.tile(0.5 * np.eye(3), (1, 3)))
    with pytest.raises(ValueError, match="identity needs"):
        init.identity((3, 4))
    with pytest.raises(ValueError, match="identity needs square gate blocks"):
        init.by_name("identity", (3, 12), rng(), gates=3)   # blocks (3, 4)
    np.testing.assert_array_equal(init.by_name("identity", (4, 12), rng(), gates=3),
                                  np.tile(np.eye(4), (1, 3)))


def test_glorot_bounds_and_spread():
    W = init.glorot_uniform(50, 30, (50, 30), rng())
    limit = np.sqrt(6 / 80)
    assert np.all(np.abs(W) <= limit)
    assert np.abs(W).max() > 0.9 * limit
    np.testing.assert_allclose(W.var(), limit ** 2 / 3, rtol=0.1)


def test_he_normal_std():
    W = init.he_normal(200, (200, 100), rng())
    np.testing.assert_allclose(W.std(), np.sqrt(2 / 200), rtol=0.05)
    assert abs(W.mean()) < 0.01


def test_zeros_and_forget_bias():
    assert not init.zeros((2, 3)).any()
    np.testing.assert_array_equal(init.forget_gate_bias(2, 1.5), [0, 0, 1.5, 1.5, 0, 0, 0, 0])


@pytest.mark.parametrize("name", init.INITIALISERS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_by_name_shapes_dtypes_determinism(name, dtype):
    a = init.by_name(name, (4, 16), rng(7), dtype, gates=4)
    b = init.by_name(name, (4, 16), rng(7), dtype, gates=4)
    assert a.shape == (4, 16) and a.dtype == dtype
    np.testing.assert_array_equal(a, b)
    if name not in ("identity", "zeros"):
        assert not np.array_equal(a, init.by_name(name, (4, 16), rng(8), dtype, gates=4))


def test_by_name_glorot_uses_gate_block_fans():
    W = init.by_name("glorot_uniform", (10, 40), rng(), gates=4)
    assert np.abs(W).max() <= np.sqrt(6 / (10 + 10))
    assert np.abs(W).max() > np.sqrt(6 / (10 + 40))


def test_unknown_name_lists_known_ones():
    with pytest.raises(ValueError) as info:
        init.by_name("xavier", (2, 2), rng())
    message = str(info.value)
    assert "xavier" in message
    for name in ("glorot_uniform", "he_normal", "orthogonal", "identity", "zeros"):
        assert name in message
    with pytest.raises(TypeError, match="init_hh"):
        init.check_name(None, "init_hh")


def test_no_global_random_state():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    init.orthogonal((5, 10), rng())
    init.glorot_uniform(3, 4, (3, 4), rng())
    init.he_normal(3, (3, 4), rng())
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    with pytest.raises(TypeError, match="rng: expected a numpy.random.Generator"):
        init.orthogonal((3, 3), np.random.RandomState(0))
