"""Recurrent backprop beyond BPTT: settling networks (Almeida–Pineda) and RTRL, each against BPTT.

Part 1 — **settling networks on OCR glyphs.** Digits rendered by
``tasks.data.glyphs`` (clean targets, small geometric distortion) are corrupted by
Gaussian pixel noise and an occluding square. A network must restore the
clean image (denoising and completion: associative recall) and name the
digit, from one output ``[image (S*S) | logits (10)]``; loss
``recon_weight * MSE + cross-entropy``. Models:

- an MLP ``Linear -> tanh -> Linear`` trained by static backprop;
- the same with the hidden layer replaced by a settling layer
  ``h* = tanh(x W_ih + h* W_hh + b)`` (:class:`rnnbp.fixedpoint.FixedPoint`),
  trained with the gradient from: the Almeida–Pineda adjoint iteration
  (RBP), a truncated Neumann series (Neumann-RBP), GMRES and CG on the normal
  equations (Krylov RBP), full BPTT through every settling iteration and
  truncated BPTT through the last ``K``.

All settling nets start from the same weights and see the same batches;
after every update ``||W_hh||_2`` is clipped to keep the map a contraction.
Reported: test accuracy and reconstruction MSE, training time, the
tracemalloc peak of one forward+backward, and the agreement (cosine,
relative error) of each method's gradient with the converged RBP gradient
(tolerance 1e-12), plus that error as the number of terms / steps ``K`` grows.

Part 2 — **RTRL versus BPTT** on an online task (recall the bit seen
``delay`` steps ago): the gradients agree to rounding; RTRL learns online,
one update per step; and the time per step grows as ``n^4`` for RTRL against
``n^2`` for BPTT.

Timings are wall clock on a shared machine: compare them within this run only.
"""

from __future__ import annotations

import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

import rnnbp
from rnnbp.fixedpoint import FixedPoint
from rnnbp.losses import mse, softmax_cross_entropy
from rnnbp.rtrl import RTRL, rtrl_bytes

from ..data.glyphs import DIGITS, Distortion, ocr_dataset

SUMMARY = "MLP vs settling net by RBP/Neumann/GMRES/CG/BPTT/TBPTT on OCR denoising; RTRL vs BPTT cost"

METHODS = ["rbp", "neumann", "gmres", "cg", "bptt", "tbptt"]
LABELS = {"mlp": "MLP (static backprop)", "rbp": "RBP (Almeida-Pineda)", "neumann": "Neumann-RBP",
          "gmres": "GMRES-RBP", "cg": "CG-RBP (normal eq.)", "bptt": "BPTT (all iterations)",
          "tbptt": "TBPTT (last K)"}

FULL: dict[str, Any] = {
    "size": 16, "n_train": 8000, "n_test": 2000, "noise": 0.2, "occlusion": 5,
    "hidden": 128, "epochs": 20, "batch_size": 64, "lr": 2e-3, "recon_weight": 5.0,
    "tol": 1e-6, "max_iter": 1000, "max_norm": 0.95, "K": 10, "grad_batch": 256,
    "sweep_K": [1, 2, 5, 10, 20, 50, 100, 200],
    "rtrl": {"delay": 4, "hidden": 16, "stream": 4000, "batch": 4, "lr": 1e-2, "tbptt": (5, 20),
             "sizes": [4, 8, 16, 32, 48, 64, 96, 128], "check_T": 40},
}
QUICK: dict[str, Any] = {
    **FULL, "n_train": 256, "n_test": 128, "hidden": 24, "epochs": 2, "grad_batch": 64,
    "sweep_K": [1, 5, 20, 100],
    "rtrl": {**FULL["rtrl"], "hidden": 8, "stream": 300, "sizes": [4, 8, 16], "check_T": 12},
}


# -- data --------------------------------------------------------------------------
def _corrupt(clean: np.ndarray, cfg: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """Gaussian pixel noise and one occluding ``k x k`` square per image (set to 0)."""
    N, S, _ = clean.shape
    k = cfg["occlusion"]
    x = clean + rng.normal(0.0, cfg["noise"], clean.shape)
    r, c = (rng.integers(0, S - k + 1, N)[:, None, None] for _ in range(2))
    i = np.arange(S)
    hole = (i[None, :, None] >= r) & (i[None, :, None] < r + k) & (i[None, None, :] >= c) & (i[None, None, :] < c + k)
    x[hole] = 0.0
    return np.clip(x, 0.0, 1.0).reshape(N, S * S)


def _data(cfg: dict[str, Any], seed: int) -> dict[str, tuple]:
    ds = ocr_dataset(cfg["n_train"], cfg["n_test"], size=cfg["size"], charset=DIGITS, test_fonts=0,
                     distortion=Distortion(rotation=8.0, noise=0.0), seed=seed)
    rng = np.random.default_rng(seed + 1)
    return {name: (_corrupt(s.images, cfg, rng), s.flat().copy(), s.labels)
            for name, s in (("train", ds.train), ("test", ds.test))}


# -- models, loss, gradients -------------------------------------------------------
def _model(method: str, cfg: dict[str, Any], seed: int, D: int, C: int) -> rnnbp.Sequential:
    H = cfg["hidden"]
    if method == "mlp":
        return rnnbp.Sequential(rnnbp.Linear(D, H, seed=seed), rnnbp.Tanh(), rnnbp.Linear(H, D + C, seed=seed + 1))
    fp = FixedPoint(D, H, tol=cfg["tol"], max_iter=cfg["max_iter"], method=method, neumann_terms=cfg["K"],
                    truncate=cfg["K"], backward_max_iter=5000, seed=seed)
    return rnnbp.Sequential(fp, rnnbp.Linear(H, D + C, seed=seed + 1))


def _loss(out: np.ndarray, clean: np.ndarray, labels: np.ndarray, w: float) -> tuple[float, np.ndarray]:
    D = clean.shape[1]
    lr, dr = mse(out[:, :D], clean)
    lc, dc = softmax_cross_entropy(out[:, D:], labels)
    return w * lr + lc, np.concatenate([w * dr, dc], axis=1)


def _forward_backward(model: rnnbp.Sequential, x, clean, labels, w: float) -> float:
    state = model.initial_state(x.shape[0])
    out, _, cache = model.forward(x, state)
    loss, dout = _loss(out, clean, labels, w)
    model.backward(dout, state, cache)
    return loss


def _scores(model: rnnbp.Sequential, x, clean, labels) -> dict[str, float]:
    out = model.forward(x, model.initial_state(x.shape[0]))[0]
    D = clean.shape[1]
    return {"accuracy": float(np.mean(np.argmax(out[:, D:], axis=1) == labels)),
            "recon_mse": float(np.mean((out[:, :D] - clean) ** 2))}


def _train(method: str, cfg: dict[str, Any], data: dict, seed: int) -> tuple[rnnbp.Sequential, dict]:
    x, clean, labels = data["train"]
    model = _model(method, cfg, seed, x.shape[1], 10)
    fp = model.layers[0] if method != "mlp" else None
    opt = rnnbp.optim.Adam(model, lr=cfg["lr"])
    rng = np.random.default_rng(seed + 2)      # the same batches for every method
    curve, seconds, fwd_iters, bwd_iters = [], 0.0, [], []
    for epoch in range(cfg["epochs"]):
        if fp is not None:
            fp.trace = []
        t0 = time.perf_counter()
        for idx in np.array_split(rng.permutation(len(x)), max(1, len(x) // cfg["batch_size"])):
            model.zero_grad()
            _forward_backward(model, x[idx], clean[idx], labels[idx], cfg["recon_weight"])
            opt.step()
            if fp is not None:
                fp.clip_recurrent_norm(cfg["max_norm"])
        seconds += time.perf_counter() - t0
        if fp is not None:
            fwd_iters += [s.iterations for s in fp.trace if s.phase == "forward"]
            bwd_iters += [s.iterations for s in fp.trace if s.phase == "backward"]
            fp.trace = None
        curve.append({"epoch": epoch + 1, "seconds": seconds, **_scores(model, *data["test"])})
        print(f"  {method:8s} epoch {epoch + 1}: acc {curve[-1]['accuracy']:.3f} "
              f"recon {curve[-1]['recon_mse']:.4f} ({seconds:.1f} s)")
    out = {"curve": curve, "train_seconds": seconds, **{k: curve[-1][k] for k in ("accuracy", "recon_mse")},
           "parameters": model.num_params}
    if fp is not None:
        out.update(forward_iterations_mean=float(np.mean(fwd_iters)), forward_iterations_max=int(np.max(fwd_iters)),
                   backward_iterations_mean=float(np.mean(bwd_iters)),
                   W_hh_norm=float(np.linalg.norm(fp.params["W_hh"], 2)))
    return model, out


def _fp_grad(model: rnnbp.Sequential, batch: tuple, w: float, **options: Any) -> np.ndarray:
    """The settling layer's flattened gradient with the given FixedPoint options (restored after)."""
    fp = model.layers[0]
    saved = {k: getattr(fp, k) for k in options}
    for k, v in options.items():
        setattr(fp, k, v)
    try:
        model.zero_grad()
        _forward_backward(model, *batch, w)
        return np.concatenate([fp.grads[k].ravel() for k in ("W_ih", "W_hh", "b")])
    finally:
        for k, v in saved.items():
            setattr(fp, k, v)


def _agreement(g: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    return {"cosine": float(g @ ref / (np.linalg.norm(g) * np.linalg.norm(ref))),
            "rel_error": float(np.max(np.abs(g - ref)) / max(np.max(np.abs(g)), np.max(np.abs(ref)), 1e-8)),
            "rel_error_l2": float(np.linalg.norm(g - ref) / np.linalg.norm(ref))}


def _costs(model: rnnbp.Sequential, method: str, batch: tuple, w: float, repeats: int = 5) -> dict[str, float]:
    """Seconds (best of ``repeats``) and tracemalloc peak bytes of one forward+backward."""
    fp = model.layers[0] if method != "mlp" else None
    if fp is not None:
        fp.method = method
    best = np.inf
    for _ in range(repeats):
        model.zero_grad()
        t0 = time.perf_counter()
        _forward_backward(model, *batch, w)
        best = min(best, time.perf_counter() - t0)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        _forward_backward(model, *batch, w)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    if fp is not None:
        fp.method = "rbp"
    return {"seconds": best, "peak_bytes": int(peak)}


def _settling_part(cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    data = _data(cfg, seed)
    results, models = {}, {}
    for method in ["mlp"] + METHODS:
        models[method], results[method] = _train(method, cfg, data, seed + 100)
    gb = cfg["grad_batch"]
    batch = tuple(a[:gb] for a in data["test"])
    w = cfg["recon_weight"]
    exact = dict(method="rbp", tol=1e-12, backward_tol=1e-12)
    agreement: dict[str, Any] = {}
    for state, model in (("init", _model("rbp", cfg, seed + 100, batch[0].shape[1], 10)), ("trained", models["rbp"])):
        ref = _fp_grad(model, batch, w, **exact)
        agreement[state] = {m: _agreement(_fp_grad(model, batch, w, method=m), ref) for m in METHODS}
    # error of the truncated methods as K grows (at the RBP-trained weights)
    model = models["rbp"]
    ref = _fp_grad(model, batch, w, **exact)
    sweep = {"K": cfg["sweep_K"], "neumann": [], "tbptt": [], "bptt_K_steps": []}
    for K in cfg["sweep_K"]:
        grad = _fp_grad(model, batch, w, method="neumann", neumann_terms=K)
        sweep["neumann"].append(_agreement(grad, ref)["rel_error"])
        sweep["tbptt"].append(_agreement(_fp_grad(model, batch, w, method="tbptt", truncate=K), ref)["rel_error"])
        sweep["bptt_K_steps"].append(_agreement(_fp_grad(model, batch, w, method="bptt", steps=K), ref)["rel_error"])
    costs = {"mlp": _costs(models["mlp"], "mlp", batch, w)}
    costs.update({m: _costs(model, m, batch, w) for m in METHODS})
    return {"methods": results, "gradient_agreement": agreement, "K_sweep": sweep,
            "costs_per_batch": {"batch_size": gb, "at": "RBP-trained weights", **costs},
            "examples": (batch, model, models["mlp"])}


# -- part 2: RTRL versus BPTT ------------------------------------------------------
def _bits(T: int, B: int, delay: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.integers(0, 2, (T, B, 1)).astype(np.float64)
    y = np.zeros_like(x)
    y[delay:] = x[:-delay]
    return x, y


def _online(cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    """Learn to recall the bit from ``delay`` steps ago: RTRL (update every step) vs TBPTT(k1, k2)."""
    r = cfg["rtrl"]
    xs, ys = _bits(r["stream"], r["batch"], r["delay"], np.random.default_rng(seed + 3))
    curves, out = {}, {}
    for algo in ("RTRL", "TBPTT"):
        cell, head = rnnbp.Elman(1, r["hidden"], seed=seed), rnnbp.Linear(r["hidden"], 1, seed=seed + 1)
        model = rnnbp.Sequential(cell, head)
        opt = rnnbp.optim.Adam(model, lr=r["lr"])
        losses = np.empty(r["stream"])
        t0 = time.perf_counter()
        if algo == "RTRL":
            rtrl = RTRL(cell, r["batch"])
            for t in range(r["stream"]):
                model.zero_grad()
                h = rtrl.step(xs[t])
                y, _, c = head.forward(h)
                losses[t], dy = mse(y, ys[t])
                rtrl.accumulate(head.backward(dy, (), c)[0])   # dl_t/dh_t -> dl_t/dtheta now
                opt.step()
        else:
            k1, k2 = r["tbptt"]
            tb = rnnbp.TruncatedBPTT(model, k1, k2)
            for t0_ in range(0, r["stream"], k1):
                model.zero_grad()
                losses[t0_:t0_ + k1] = tb.train_step((xs[t0_:t0_ + k1], ys[t0_:t0_ + k1], None), mse).loss
                opt.step()
        seconds = time.perf_counter() - t0
        tail = losses[-max(1, r["stream"] // 5):]
        curves[algo] = losses
        out[algo] = {"final_mse": float(np.mean(tail)), "seconds": seconds,
                     "updates": r["stream"] if algo == "RTRL" else -(-r["stream"] // r["tbptt"][0])}
    return {"task": f"recall the bit from {r['delay']} steps ago (MSE; 0.25 = guessing)", **out,
            "curves": curves}


def _per_step_times(cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    r = cfg["rtrl"]
    rng = np.random.default_rng(seed + 4)
    times: dict[str, list] = {"n": r["sizes"], "RTRL": [], "BPTT": [],
                              "RTRL_bytes": [rtrl_bytes(rnnbp.Elman(1, n, init_hh="zeros"), 1) for n in r["sizes"]]}
    for n in r["sizes"]:
        cell = rnnbp.Elman(1, n, seed=seed)
        xs, R = rng.normal(size=(200, 1, 1)), rng.normal(size=(200, 1, n))
        rtrl, steps, t0 = RTRL(cell, 1), 0, time.perf_counter()
        while steps < 200 and (steps < 5 or time.perf_counter() - t0 < 0.5):
            rtrl.step(xs[steps])
            rtrl.accumulate(R[steps])
            steps += 1
        times["RTRL"].append((time.perf_counter() - t0) / steps)
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            rnnbp.unroll(cell, xs).backward(R)
            best = min(best, (time.perf_counter() - t0) / len(xs))
        times["BPTT"].append(best)
    for algo in ("RTRL", "BPTT"):
        k = max(2, len(r["sizes"]) // 2)                   # slope over the larger half of the sizes
        times[f"{algo}_loglog_slope"] = float(np.polyfit(np.log(r["sizes"][-k:]), np.log(times[algo][-k:]), 1)[0])
    return times


def _exactness(cfg: dict[str, Any], seed: int) -> float:
    """Max |RTRL - BPTT| over the Elman gradients, loss sum_t sum(h_t * R_t), online prefix sums included."""
    r, rng = cfg["rtrl"], np.random.default_rng(seed + 5)
    cell = rnnbp.Elman(3, r["hidden"], seed=seed)
    cell.params["b"][...] = rng.normal(size=r["hidden"])
    T = r["check_T"]
    xs, R = rng.normal(size=(T, 4, 3)), rng.normal(size=(T, 4, r["hidden"]))
    rtrl, worst = RTRL(cell, 4), 0.0
    for t in range(T):
        rtrl.step(xs[t])
        rtrl.accumulate(R[t])
        if t in (0, T // 2, T - 1):
            online = {k: g.copy() for k, g in cell.grads.items()}
            cell.zero_grad()
            rnnbp.unroll(cell, xs[:t + 1]).backward(R[:t + 1])
            worst = max(worst, max(float(np.max(np.abs(online[k] - cell.grads[k]))) for k in online))
            for k, g in cell.grads.items():
                g[...] = online[k]
    return worst


# -- figures (matplotlib's Figure API: no pyplot state) -----------------------------
def _figures(out: Path, cfg: dict, settling: dict, examples: tuple, rtrl: dict, curves: dict) -> list[str]:
    from ..figures import Figure

    names = ["settling_training.png", "gradient_agreement.png", "denoising.png", "rtrl_vs_bptt.png"]
    methods, res = ["mlp"] + METHODS, settling["methods"]
    colors = {m: f"C{i}" for i, m in enumerate(methods)}

    fig = Figure(figsize=(13, 4), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for m in methods:
        c = res[m]["curve"]
        ax1.plot([e["seconds"] for e in c], [e["accuracy"] for e in c], "o-", ms=3, color=colors[m], label=LABELS[m])
        ax2.plot([e["seconds"] for e in c], [e["recon_mse"] for e in c], "o-", ms=3, color=colors[m])
    ax1.set(xlabel="training time (s)", ylabel="test accuracy", title="Classifying corrupted glyphs")
    ax2.set(xlabel="training time (s)", ylabel="test reconstruction MSE", yscale="log",
            title="Restoring the clean glyph")
    ax1.legend(fontsize=7)
    costs = settling["costs_per_batch"]
    x = np.arange(len(methods))
    ax3.bar(x - 0.2, [costs[m]["seconds"] * 1e3 for m in methods], 0.4, color="C0", label="time (ms)")
    ax3b = ax3.twinx()
    ax3b.bar(x + 0.2, [costs[m]["peak_bytes"] / 2**20 for m in methods], 0.4, color="C3", label="peak memory (MiB)")
    ax3.set_xticks(x, [m.upper() if m != "neumann" else "Neumann" for m in methods], rotation=30, fontsize=8)
    ax3.set(ylabel="ms per forward+backward", title=f"Cost of one batch of {costs['batch_size']}")
    ax3b.set_ylabel("tracemalloc peak (MiB)")
    ax3.legend(*[sum(v, []) for v in zip(ax3.get_legend_handles_labels(), ax3b.get_legend_handles_labels())],
               loc="upper left", fontsize=7)
    fig.savefig(out / names[0], dpi=110)

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    agree = settling["gradient_agreement"]
    x = np.arange(len(METHODS))
    for i, state in enumerate(agree):
        vals = [max(agree[state][m]["rel_error"], 1e-17) for m in METHODS]
        ax1.bar(x + (i - 0.5) * 0.4, vals, 0.4, label=f"at {state} weights")
    ax1.set_xticks(x, [LABELS[m] for m in METHODS], rotation=25, fontsize=8)
    ax1.set(yscale="log", ylabel="relative error vs converged RBP",
            title=f"Gradient agreement (tol {cfg['tol']:g}, K = {cfg['K']})")
    ax1.legend(fontsize=8)
    sw = settling["K_sweep"]
    for key, label in (("neumann", "Neumann-RBP, K terms"), ("tbptt", "TBPTT, last K iterations"),
                       ("bptt_K_steps", "BPTT of a K-step settling net")):
        ax2.loglog(sw["K"], np.maximum(sw[key], 1e-17), "o-", label=label)
    ax2.set(xlabel="K", ylabel="relative error vs converged RBP", title="Truncation error as K grows (trained weights)")
    ax2.legend(fontsize=8)
    fig.savefig(out / names[1], dpi=110)

    (xb, clean, labels), model, mlp = examples
    k, S = min(8, len(xb)), cfg["size"]
    rows = [("corrupted", xb[:k]), ("settling net (RBP)", model.forward(xb[:k], model.initial_state(k))[0][:, :S * S]),
            ("MLP", mlp.forward(xb[:k], mlp.initial_state(k))[0][:, :S * S]), ("clean", clean[:k])]
    fig = Figure(figsize=(1.2 * k, 5.2), layout="constrained")
    axes = fig.subplots(len(rows), k, squeeze=False)
    for i, (name, imgs) in enumerate(rows):
        for j in range(k):
            axes[i, j].imshow(np.clip(imgs[j].reshape(S, S), 0, 1), cmap="gray_r", vmin=0, vmax=1)
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(name, fontsize=8)
    fig.suptitle("Associative recall: denoising and completing test glyphs")
    fig.savefig(out / names[2], dpi=110)

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    tp = rtrl["time_per_step"]
    for algo, c in (("RTRL", "C3"), ("BPTT", "C0")):
        ax1.loglog(tp["n"], np.array(tp[algo]) * 1e3, "o-", color=c,
                   label=f"{algo} (slope {tp[algo + '_loglog_slope']:.1f})")
    ax1.set(xlabel="hidden units n", ylabel="ms per step (B = 1)",
            title="Time per step: RTRL O(n^4) vs BPTT O(n^2) flops\n(BPTT at B = 1 is per-step overhead at these n)")
    ax1.legend(fontsize=8)
    win = max(1, len(curves["RTRL"]) // 40)
    for algo, c in (("RTRL", "C3"), ("TBPTT", "C0")):
        smooth = np.convolve(curves[algo], np.ones(win) / win, mode="valid")
        ax2.plot(smooth, color=c, label=algo)
    ax2.axhline(0.25, color="gray", ls=":", label="guessing")
    ax2.set(xlabel="step of the stream", ylabel="MSE (moving average)", title=rtrl["online"]["task"])
    ax2.legend(fontsize=8)
    fig.savefig(out / names[3], dpi=110)
    return names


def run(quick: bool, seed: int, out: Path) -> dict[str, Any]:
    """Run both parts, write the figures, return the metrics."""
    cfg = QUICK if quick else FULL
    settling = _settling_part(cfg, seed)
    examples = settling.pop("examples")
    online = _online(cfg, seed)
    curves = online.pop("curves")
    rtrl = {"max_abs_error_vs_bptt": _exactness(cfg, seed), "online": online,
            "time_per_step": _per_step_times(cfg, seed)}
    names = _figures(out, cfg, settling, examples, rtrl, curves)
    config = {**cfg, "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")}
    return {"config": config, "settling": settling, "rtrl": rtrl, "figures": names}
