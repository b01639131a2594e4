r"""Gradient norms through time: vanishing, exploding, the Pascanu bound, clipping and the cliff.

Three parts, all on losses taken at the last step only, so that
``||dL/dh_t||`` measures how much of the error reaches step ``t``:

1. **Five recurrent layers on the adding problem** (T = 100): Elman-tanh
   with an orthogonal ``W_hh`` scaled to spectral radius 0.8 (every singular
   value 0.8, so :math:`\lambda_1 \gamma = 0.8 < 1`) and 1.5, the IRNN
   (Elman-ReLU, ``W_hh = I``; Le et al. 2015), an LSTM and a GRU, trained by
   full BPTT with ``rnnbp.fit``. A ``GradientRecorder`` keeps
   ``||dL/dh_t||`` per epoch and, on a fixed probe batch, the exact norms
   :math:`\lVert \partial h_{T-1} / \partial h_t \rVert_2` after every epoch,
   which for the Elman layers are checked against the bound of Pascanu,
   Mikolov & Bengio (2013), :math:`(\lambda_1 \gamma)^{T-1-t}`.
2. **Clipping** (Pascanu et al. 2013): the exploding Elman-tanh
   (radius 1.5) trained by plain SGD with and without rescaling the gradient
   norm to 1; loss and gradient norm at every update.
3. **The one-unit cliff** (Pascanu et al. 2013, Fig. 6): ``h_t = tanh(w
   h_{t-1} + b)`` over T = 50 steps from ``h_0 = 0.5``, loss
   ``(h_T - 0.7)^2``. The loss surface over ``(w, b)`` has a wall along the
   saddle-node bifurcation of the map; SGD paths with and without clipping
   (through ``rnnbp.Elman(1, 1)``), and how often an unclipped step is thrown
   far by the wall among many random starts (an independent vectorised numpy
   BPTT of the same unit, checked against the library on the drawn paths).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

import rnnbp
from rnnbp import monitor, plot
from rnnbp.losses import mse

from .. import figures
from ..data.sequences import adding_baseline_mse, adding_problem
from ..sweep import Sweep, Trial

SUMMARY = ("||dL/dh_t|| over time and training (Elman rho 0.8/1.5, IRNN, LSTM, GRU), "
           "the Pascanu bound, clipping, the one-unit cliff")

MODELS = ("Elman-tanh rho=0.8", "Elman-tanh rho=1.5", "IRNN", "LSTM", "GRU")

FULL = {"T": 100, "hidden": 32, "n_train": 1000, "n_test": 200, "epochs": 60, "batch_size": 50,
        "lr": 1e-2, "clip": 1.0, "n_probe": 4,
        "clip_lr": 0.05, "clip_updates": 400, "clip_threshold": 1.0,
        "cliff_T": 50, "cliff_grid": 300, "cliff_starts": 2000, "cliff_steps": 300, "cliff_lr": 0.5,
        "cliff_clip": 1.0}
QUICK = {"T": 20, "hidden": 8, "n_train": 100, "n_test": 40, "epochs": 2, "batch_size": 50,
         "lr": 1e-2, "clip": 1.0, "n_probe": 2,
         "clip_lr": 0.05, "clip_updates": 20, "clip_threshold": 1.0,
         "cliff_T": 50, "cliff_grid": 60, "cliff_starts": 100, "cliff_steps": 40, "cliff_lr": 0.5,
         "cliff_clip": 1.0}

#: The one-unit problem of part 3 and the starts of the drawn SGD paths (below the wall).
CLIFF_H0, CLIFF_TARGET = 0.5, 0.7

#: A clipping-experiment run whose training loss passes this (the baseline is 1/6) has diverged.
DIVERGED = 1e6
CLIFF_BOX = {"w": (-0.5, 4.0), "b": (-2.5, 1.5)}
CLIFF_STARTS = ((2.3, -0.6), (2.7, -1.3), (2.0, -1.0))


def _model(kind: str, hidden: int, seed: int) -> rnnbp.Sequential:
    if kind.startswith("Elman-tanh"):
        cell = rnnbp.Elman(2, hidden, "tanh", seed=seed, init_hh="orthogonal")
        cell.params["W_hh"] *= float(kind.split("=")[1])   # every singular value = rho
    elif kind == "IRNN":
        cell = rnnbp.Elman(2, hidden, "relu", seed=seed, init_hh="identity")
    elif kind == "LSTM":
        cell = rnnbp.LSTM(2, hidden, seed=seed)
    else:
        cell = rnnbp.GRU(2, hidden, seed=seed)
    return rnnbp.Sequential(cell, rnnbp.Linear(hidden, 1, seed=seed + 1))


def _loss_grad_ratio(model: rnnbp.Sequential, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Per sequence ``||dL/dh_t|| / ||dL/dh_{T-1}||`` for the MSE at the last step, (T, B)."""
    graph = rnnbp.unroll(model, xs)
    _, dlast = mse(graph.outputs[-1], ys)
    dys = np.zeros_like(graph.outputs)
    dys[-1] = dlast
    saved = {k: g.copy() for k, g in model.grads.items()}
    graph.backward(dys)
    for k, g in model.grads.items():
        g[...] = saved[k]
    per_seq = graph.state_grad_norms_per_sequence["0"]
    return per_seq / per_seq[-1][None]


# -- part 1 -------------------------------------------------------------------

def model_trial(kind: str, cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    """Part 1 for one model (a ``tasks.sweep.Trial``): train, and keep what the recorder measured.

    Returns the model's metrics (``"result"``) and the recorder's arrays as
    lists (``state_grad_norms`` (epochs, T), ``jacobian_norms`` (epochs + 1,
    T, B), ``bounds`` (epochs + 1, T) or empty) for the figures.
    """
    T = cfg["T"]
    train = adding_problem(cfg["n_train"], T, seed=seed)
    test = adding_problem(cfg["n_test"], T, seed=seed + 1)
    probe_x, probe_y = test.xs[:, :cfg["n_probe"]], test.ys[:cfg["n_probe"]]
    i = MODELS.index(kind)
    model = _model(kind, cfg["hidden"], seed + 10 * i)
    rec = monitor.GradientRecorder(model, "0", probe=probe_x)
    rec.measure()                                        # before training
    ratio_init = _loss_grad_ratio(model, probe_x, probe_y)
    print(f"{kind}: {model.num_params} parameters, adding problem T = {T}")
    hist = rnnbp.fit(model, (train.xs, train.ys), loss=mse, target="last",
                     optimizer=rnnbp.optim.Adam(model, lr=cfg["lr"]), epochs=cfg["epochs"],
                     batch_size=cfg["batch_size"], clip=cfg["clip"],
                     validation=(test.xs, test.ys), callbacks=[rec], seed=seed, progress=False)
    ratio_end = _loss_grad_ratio(model, probe_x, probe_y)
    sgn = rec.state_grad_norms                            # (epochs, T)
    jac = rec.jacobian_norms                              # (epochs + 1, T, B)
    r = {"test_mse": hist.val_loss[-1], "test_mse_per_epoch": hist.val_loss,
         "train_mse": hist.loss[-1],
         "parameters": model.num_params,
         "updates_clipped": int(sum(hist.clipped)), "updates": len(hist.clipped),
         # ||dL/dh_0|| / ||dL/dh_{T-1}||, epoch means of the batch norms
         "grad_ratio_first_over_last": {"epoch_1": float(sgn[0, 0] / sgn[0, -1]),
                                        "last_epoch": float(sgn[-1, 0] / sgn[-1, -1])},
         # the same per probe sequence, exact, before and after training
         "probe_grad_ratio_first_over_last": {"init": ratio_init[0].tolist(),
                                              "trained": ratio_end[0].tolist()},
         "jacobian_norm_first": {"init": jac[0, 0].tolist(), "trained": jac[-1, 0].tolist()},
         "jacobian_norm_first_median_per_epoch": np.median(jac[:, 0], axis=1).tolist()}
    if rec.bounds.size:
        bounds = rec.bounds                                # (epochs + 1, T)
        lam_gamma = bounds[:, 0] ** (1.0 / (T - 1))
        over = jac[:, :-1] / bounds[:, :-1, None]          # t = T-1: both are 1
        loss_over = np.concatenate([ratio_init[:-1] / bounds[0, :-1, None],
                                    ratio_end[:-1] / bounds[-1, :-1, None]], axis=1)
        r["bound"] = {
            "lambda1_gamma": {"init": float(lam_gamma[0]), "trained": float(lam_gamma[-1]),
                              "max": float(lam_gamma.max())},
            "checked_measurements": int(jac.shape[0]),
            "measurements_with_lambda1_gamma_below_1": int((lam_gamma < 1).sum()),
            "max_jacobian_over_bound": float(over.max()),
            "max_loss_grad_ratio_over_bound": float(loss_over.max()),
            "holds_at_every_t": bool(over.max() <= 1 + 1e-9 and loss_over.max() <= 1 + 1e-9),
            "vanishing_guaranteed_at_init": bool(lam_gamma[0] < 1),
        }
    return {"result": r, "state_grad_norms": sgn, "jacobian_norms": jac, "bounds": rec.bounds}


class _Recorded:
    """A part-1 trial's recorder arrays, read back from its JSON result."""

    def __init__(self, done: dict[str, Any]) -> None:
        self.state_grad_norms = np.asarray(done["state_grad_norms"], dtype=float)
        self.jacobian_norms = np.asarray(done["jacobian_norms"], dtype=float)
        self.bounds = np.asarray(done["bounds"], dtype=float)


def _part_models(cfg: dict[str, Any], out: Path, done: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Part 1 from the finished model trials (``done[kind]``): print, draw, collect."""
    T = cfg["T"]
    results, recorders = {}, {}
    for kind in MODELS:
        r = results[kind] = done[kind]["result"]
        recorders[kind] = _Recorded(done[kind])
        print(f"{kind}: test MSE {r['test_mse']:.4f}; ||dL/dh_0||/||dL/dh_T-1|| epoch 1 "
              f"{r['grad_ratio_first_over_last']['epoch_1']:.3g}, last "
              f"{r['grad_ratio_first_over_last']['last_epoch']:.3g}")

    fig = plot.state_grad_norms({k: rec.state_grad_norms for k, rec in recorders.items()},
                                title=r"Adding problem, T = %d: $\|\partial L/\partial h_t\|$ "
                                      r"(loss at the last step) over time step and epoch" % T)
    fig.savefig(out / "gradient_norms.png", dpi=90)
    for when, row in (("init", 0), ("trained", -1)):
        measured = {k: rec.jacobian_norms[row] for k, rec in recorders.items()}
        bounds = {k: rec.bounds[row] for k, rec in recorders.items() if rec.bounds.size}
        fig = plot.decay_with_bound(
            measured, bounds,
            title=("%s: exact Jacobian-product norms on %d probe sequences (line: largest, band: range)\n"
                   r"dashed: the bound $(\lambda_1\gamma)^{T-1-t}$ of Pascanu et al. (2013) for the Elman layers"
                   % ("At initialisation" if when == "init" else "After training", cfg["n_probe"])),
            ylabel=r"$\|\partial s_{T-1}/\partial s_t\|_2$  (LSTM: $s = (h, c)$)")
        fig.savefig(out / f"jacobian_{when}.png", dpi=100)
    return {"models": results, "baseline_mse": adding_baseline_mse()}


# -- part 2 -------------------------------------------------------------------

def clipping_trial(clip: float | None, cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    """Part 2 for one setting (a ``tasks.sweep.Trial``): SGD with or without clipping at ``clip``.

    Returns the run's metrics (``"run"``), the loss at every update
    (``"trace"``) and the gradient norms (``"grad_norm"``).
    """
    T, B = cfg["T"], cfg["batch_size"]
    train = adding_problem(cfg["n_train"], T, seed=seed)
    model = _model("Elman-tanh rho=1.5", cfg["hidden"], seed)
    opt = rnnbp.optim.SGD(model, lr=cfg["clip_lr"])
    rec = monitor.GradientRecorder(model, "0")
    rng = np.random.default_rng(seed + 7)
    trace, diverged = [], None
    for u in range(cfg["clip_updates"]):
        idx = rng.choice(cfg["n_train"], B, replace=False)
        model.zero_grad()
        graph = rnnbp.unroll(model, train.xs[:, idx])
        try:
            value, dlast = mse(graph.outputs[-1], train.ys[idx])
        except rnnbp.NonFiniteError:
            value = math.inf
        if not value <= DIVERGED:                   # stop: the run has blown up
            diverged = u
            break
        dys = np.zeros_like(graph.outputs)
        dys[-1] = dlast
        graph.backward(dys)
        if clip is None:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in model.grads.values()))
        else:
            norm = rnnbp.clip_grad_norm(model, clip)
        if not math.isfinite(norm):
            diverged = u
            break
        rec.record(graph, grad_norm=norm, clipped=clip is not None and norm > clip)
        trace.append(value)
        opt.step()
    g = rec.grad_norm
    tail = np.asarray(trace[-50:])
    run = {"diverged_at_update": diverged, "divergence_threshold": DIVERGED,
                   "updates": len(trace),
                   "final_loss_mean_last_50": float(tail.mean()) if tail.size else None,
                   "max_loss": float(np.max(trace)) if trace else None,
                   "max_grad_norm": float(g.max()) if g.size else None,
                   "median_grad_norm": float(np.median(g)) if g.size else None,
                   "updates_clipped": int(rec.clipped.sum()),
                   "first_update_grad_norm": float(g[0]) if g.size else None}
    return {"run": run, "trace": trace, "grad_norm": g}


def _clip_settings(cfg: dict[str, Any]) -> dict[str, float | None]:
    thr = cfg["clip_threshold"]
    return {"no clipping": None, f"clipped to norm {thr:g}": thr}


def _part_clipping(cfg: dict[str, Any], out: Path, done: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Part 2 from the finished clipping trials (``done[label]``): print, draw, collect."""
    T, thr = cfg["T"], cfg["clip_threshold"]
    runs, losses, grad_norms = {}, {}, {}
    for label in _clip_settings(cfg):
        runs[label] = done[label]["run"]
        losses[label] = np.asarray(done[label]["trace"], dtype=float)
        grad_norms[label] = np.asarray(done[label]["grad_norm"], dtype=float)
        print(f"clipping, {label}: final loss {runs[label]['final_loss_mean_last_50']:.4g}, "
              f"max gradient norm {runs[label]['max_grad_norm']:.3g}")
    fig = plot.training_trace(grad_norms, losses, clip=thr,
                              title=f"Elman-tanh, radius 1.5, adding T = {T}: SGD lr {cfg['clip_lr']:g}, "
                                    "with and without clipping")
    fig.savefig(out / "clipping.png", dpi=100)
    return {"runs": runs, "optimizer": f"SGD(lr={cfg['clip_lr']})", "threshold": thr,
            "model": "Elman-tanh rho=1.5"}


# -- part 3 -------------------------------------------------------------------

def _unit_loss_grad(w: np.ndarray, b: np.ndarray, T: int) -> tuple[np.ndarray, ...]:
    """Vectorised one-unit BPTT, independent of rnnbp: loss, dL/dw, dL/db for arrays of (w, b)."""
    hs = [np.full_like(w, CLIFF_H0)]
    for _ in range(T):
        hs.append(np.tanh(w * hs[-1] + b))                   # h_t = tanh(w h_{t-1} + b)
    loss = (hs[-1] - CLIFF_TARGET) ** 2
    dh = 2 * (hs[-1] - CLIFF_TARGET)
    dw, db = np.zeros_like(w), np.zeros_like(w)
    for t in range(T, 0, -1):
        da = dh * (1 - hs[t] ** 2)
        dw += da * hs[t - 1]
        db += da
        dh = da * w
    return loss, dw, db


def _sgd_unit(w: np.ndarray, b: np.ndarray, cfg: dict[str, Any], clip: float | None):
    """SGD on many one-unit problems at once (numpy); longest step and final loss of each."""
    longest = np.zeros_like(w)
    for _ in range(cfg["cliff_steps"]):
        _, dw, db = _unit_loss_grad(w, b, cfg["cliff_T"])
        norm = np.hypot(dw, db)
        scale = np.ones_like(norm) if clip is None else \
            np.where(norm > clip, clip / np.maximum(norm, 1e-300), 1.0)
        w, b = w - cfg["cliff_lr"] * scale * dw, b - cfg["cliff_lr"] * scale * db
        longest = np.maximum(longest, cfg["cliff_lr"] * scale * norm)
    loss, _, _ = _unit_loss_grad(w, b, cfg["cliff_T"])
    return longest, loss


def _sgd_path(start: tuple[float, float], cfg: dict[str, Any], clip: float | None):
    """The same SGD through the library: ``rnnbp.Elman(1, 1)`` with zero input, full BPTT."""
    cell = rnnbp.Elman(1, 1, "tanh", seed=0)
    cell.params["W_hh"][...] = start[0]
    cell.params["b"][...] = start[1]
    opt = rnnbp.optim.SGD(cell, lr=cfg["cliff_lr"])
    xs = np.zeros((cfg["cliff_T"], 1, 1))
    h0 = (np.full((1, 1), CLIFF_H0),)
    target = np.full((1, 1), CLIFF_TARGET)
    path, norms, diff = [], [], 0.0
    for _ in range(cfg["cliff_steps"]):
        w, b = float(cell.params["W_hh"][0, 0]), float(cell.params["b"][0])
        path.append((w, b))
        cell.zero_grad()
        graph = rnnbp.unroll(cell, xs, state=h0)
        _, dlast = mse(graph.outputs[-1], target)
        dys = np.zeros_like(graph.outputs)
        dys[-1] = dlast
        graph.backward(dys)
        _, dw, db = _unit_loss_grad(np.array(w), np.array(b), cfg["cliff_T"])
        g = np.array([cell.grads["W_hh"][0, 0], cell.grads["b"][0]])
        diff = max(diff, float(np.max(np.abs(g - [dw, db])) / max(1.0, float(np.abs(g).max()))))
        norm = rnnbp.clip_grad_norm(cell, clip) if clip is not None else float(np.hypot(*g))
        norms.append(norm)
        opt.step()
    path.append((float(cell.params["W_hh"][0, 0]), float(cell.params["b"][0])))
    return np.array(path), np.array(norms), diff


def _part_cliff(cfg: dict[str, Any], seed: int, out: Path) -> dict[str, Any]:
    n = cfg["cliff_grid"]
    w = np.linspace(*CLIFF_BOX["w"], n)
    b = np.linspace(*CLIFF_BOX["b"], n)
    W, Bg = np.meshgrid(w, b)
    surface, dw, db = _unit_loss_grad(W, Bg, cfg["cliff_T"])
    rng = np.random.default_rng(seed + 11)
    w0 = rng.uniform(*CLIFF_BOX["w"], cfg["cliff_starts"])
    b0 = rng.uniform(*CLIFF_BOX["b"], cfg["cliff_starts"])
    stats = {}
    for label, clip in (("no clipping", None), ("clipped", cfg["cliff_clip"])):
        longest, final = _sgd_unit(w0.copy(), b0.copy(), cfg, clip)
        stats[label] = {"share_with_a_step_longer_than_1": float(np.mean(longest > 1.0)),
                        "longest_step": float(longest.max()),
                        "share_reaching_loss_below_1e-3": float(np.mean(final < 1e-3)),
                        "median_final_loss": float(np.median(final))}
    paths, styles, path_stats, max_diff = {}, {}, [], 0.0
    for i, start in enumerate(CLIFF_STARTS):
        for label, clip in (("SGD", None), ("SGD + clipping", cfg["cliff_clip"])):
            p, norms, diff = _sgd_path(start, cfg, clip)
            max_diff = max(max_diff, diff)
            steps = np.hypot(*np.diff(p, axis=0).T)
            final_loss = float(_unit_loss_grad(p[-1:, 0], p[-1:, 1], cfg["cliff_T"])[0][0])
            path_stats.append({"start": list(start), "clipped": clip is not None,
                               "max_grad_norm": float(norms.max()), "longest_step": float(steps.max()),
                               "end": p[-1].tolist(), "final_loss": final_loss})
            key = (f"{label} from ({start[0]:g}, {start[1]:g}): longest step {steps.max():.2g}, "
                   f"ends at ({p[-1, 0]:.3g}, {p[-1, 1]:.3g}) with loss {final_loss:.1e}")
            paths[key] = p
            styles[key] = {"color": ("black", "red", "magenta")[i % 3], "ls": "-" if clip is None else "--",
                           "marker": "." if clip is None else None, "lw": 1.6}
    fig = figures.loss_surface(w, b, surface, paths, styles=styles,
                               title=(r"The cliff: one unit $h_t = \tanh(w\,h_{t-1} + b)$, $h_0 = 0.5$, T = %d,"
                                      "\n" r"loss $(h_T - 0.7)^2$; SGD lr %g, solid: plain, dashed: clipped at norm %g"
                                      % (cfg["cliff_T"], cfg["cliff_lr"], cfg["cliff_clip"])))
    fig.savefig(out / "cliff.png", dpi=100)
    return {"T": cfg["cliff_T"], "h0": CLIFF_H0, "target": CLIFF_TARGET, "box": CLIFF_BOX,
            "lr": cfg["cliff_lr"], "clip": cfg["cliff_clip"], "steps": cfg["cliff_steps"],
            "random_starts": cfg["cliff_starts"], "random_start_stats": stats,
            "surface_max_grad_norm": float(np.hypot(dw, db).max()),
            "drawn_paths": path_stats,
            "library_vs_numpy_max_rel_grad_diff": max_diff}


def make_trials(cfg: dict[str, Any], seed: int) -> list[Trial]:
    """The independent runs of parts 1 (one per model) and 2 (with and without clipping)."""
    return ([Trial(f"model/{kind}", model_trial, {"kind": kind, "cfg": cfg, "seed": seed}) for kind in MODELS]
            + [Trial(f"clipping/{label}", clipping_trial, {"clip": clip, "cfg": cfg, "seed": seed})
               for label, clip in _clip_settings(cfg).items()])


def run(quick: bool, seed: int, out: Path, sweep: Sweep | None = None) -> dict[str, Any]:
    """Run the three parts (parts 1 and 2 as trials through ``sweep``); write ``gradient_norms.png``,
    ``jacobian_init.png``, ``jacobian_trained.png``, ``clipping.png`` and ``cliff.png``; return the metrics."""
    cfg = QUICK if quick else FULL
    todo = make_trials(cfg, seed)
    done = dict(zip((t.key for t in todo), (sweep or Sweep()).run(todo, desc="gradient-norm trials")))
    metrics: dict[str, Any] = {"config": dict(cfg)}
    metrics.update(_part_models(cfg, out, {k: done[f"model/{k}"] for k in MODELS}))
    metrics["clipping"] = _part_clipping(cfg, out, {k: done[f"clipping/{k}"] for k in _clip_settings(cfg)})
    metrics["cliff"] = _part_cliff(cfg, seed, out)
    metrics["figures"] = ["gradient_norms.png", "jacobian_init.png", "jacobian_trained.png",
                          "clipping.png", "cliff.png"]
    return metrics
