"""The committed full-size records of ``gradient-norms`` and ``truncation`` show what their docs claim.

A record audit: it checks committed data, not code (see ``conftest.py`` here).
"""

import numpy as np
import pytest

from tests.records._record import load_record


def _record(name):
    return load_record(name, min_figure_bytes=10_000)


@pytest.fixture(scope="module")
def norms():
    return _record("gradient-norms")


@pytest.fixture(scope="module")
def truncation():
    return _record("truncation")


def test_small_spectral_radius_vanishes(norms):
    m = norms["models"]["Elman-tanh rho=0.8"]
    T = norms["config"]["T"]
    assert m["grad_ratio_first_over_last"]["epoch_1"] < 1e-8
    assert max(m["probe_grad_ratio_first_over_last"]["init"]) < 0.8 ** (T - 1) * (1 + 1e-9)
    assert m["bound"]["vanishing_guaranteed_at_init"] and m["bound"]["lambda1_gamma"]["init"] == pytest.approx(0.8)


def test_large_spectral_radius_grows(norms):
    m = norms["models"]["Elman-tanh rho=1.5"]
    assert m["grad_ratio_first_over_last"]["epoch_1"] > 10
    assert min(m["probe_grad_ratio_first_over_last"]["init"]) > 10
    assert min(m["jacobian_norm_first"]["init"]) > 100


def test_measured_decay_stays_under_the_bound_at_every_step(norms):
    for kind in ("Elman-tanh rho=0.8", "Elman-tanh rho=1.5", "IRNN"):
        b = norms["models"][kind]["bound"]
        assert b["holds_at_every_t"], kind
        assert b["max_jacobian_over_bound"] <= 1 + 1e-9
        assert b["max_loss_grad_ratio_over_bound"] <= 1 + 1e-9
        assert b["checked_measurements"] == norms["config"]["epochs"] + 1


def test_gated_layers_keep_more_gradient_than_the_contracting_elman(norms):
    models = norms["models"]
    elman = max(models["Elman-tanh rho=0.8"]["jacobian_norm_first"]["trained"])
    assert min(models["LSTM"]["jacobian_norm_first"]["trained"]) > 1e3 * elman
    assert models["LSTM"]["test_mse"] < 0.01 < norms["baseline_mse"] * 0.8 < models["Elman-tanh rho=0.8"]["test_mse"]


def test_clipping_stabilises_the_exploding_run(norms):
    runs = norms["clipping"]["runs"]
    plain = runs["no clipping"]
    clipped = next(v for k, v in runs.items() if k != "no clipping")
    assert clipped["diverged_at_update"] is None
    assert clipped["final_loss_mean_last_50"] < 0.25
    assert plain["diverged_at_update"] is not None or plain["final_loss_mean_last_50"] > 1e3
    assert plain["max_grad_norm"] > 1e3 * clipped["median_grad_norm"]


def test_the_cliff_throws_unclipped_sgd_and_not_clipped(norms):
    cliff = norms["cliff"]
    stats = cliff["random_start_stats"]
    assert stats["no clipping"]["share_with_a_step_longer_than_1"] > 0.05
    assert stats["clipped"]["share_with_a_step_longer_than_1"] == 0.0
    assert stats["clipped"]["share_reaching_loss_below_1e-3"] >= stats["no clipping"]["share_reaching_loss_below_1e-3"]
    assert cliff["library_vs_numpy_max_rel_grad_diff"] < 1e-10
    for p in cliff["drawn_paths"]:
        if p["clipped"]:
            assert p["longest_step"] <= cliff["lr"] * cliff["clip"] + 1e-12


def test_truncation_accuracy_jumps_once_k2_reaches_the_lag(truncation):
    a = truncation["accuracy"]
    lag, chance = truncation["config"]["lag"], truncation["chance"]
    k2 = np.array(a["k2"])
    acc = np.array(a["final_per_seed"])
    assert k2.min() <= lag < lag + 1 <= k2.max()
    assert acc[k2 >= lag + 1].min() > 0.95
    assert acc[k2 < lag + 1].max() < acc[k2 >= lag + 1].min()
    assert a["mean_k2_below_lag"] < 0.8 and a["mean_k2_reaching_lag"] > chance + 0.6


def test_truncation_cosine_rises_to_one_at_full_length(truncation):
    bias = truncation["bias"]
    T = truncation["config"]["T"]
    assert bias["k2"][-1] == T and bias["full_equals_truncated_at_T"]
    for label, cos in bias["cosine"].items():
        assert cos[-1] == pytest.approx(1.0, abs=1e-12), label
        assert bias["norm_ratio"][label][-1] == pytest.approx(1.0, abs=1e-12), label
        assert cos[0] < cos[-1] - 1e-3, label
    # mid-training (after one epoch) a short window is strongly biased
    mid = bias["cosine"][list(bias["cosine"])[1]]
    assert mid[0] < 0.8 and bias["norm_ratio"][list(bias["cosine"])[1]][0] < 0.1
