"""What training records and shows: :class:`History` (per epoch) and :class:`Progress` (a text bar).

``rnnbp.fit`` fills a ``History`` and draws a ``Progress`` bar; the sweep
runner in ``tasks/`` uses the same bar for trials.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["History", "Progress"]


@dataclass(repr=False)
class History:
    """What ``fit`` recorded, one entry per epoch unless said otherwise.

    ``print(history)`` shows a one-line summary; the arrays are attributes.

    Attributes
    ----------
    loss : list[float]
        Mean training loss per epoch, weighted by batch size. With truncated
        BPTT each window's loss (a mean over its new steps) is weighted by
        its number of new steps, so the epoch's loss is a mean over steps,
        as with full BPTT.
    metric : list[float]
        Training metric per epoch (when ``metric`` was given), weighted the
        same way.
    val_loss, val_metric : list[float]
        On the validation set (when ``validation`` was given).
    grad_norm : list[float]
        Global gradient norm before clipping, one per optimizer update.
    clipped : list[bool]
        Whether each update was clipped.
    state_grad_norms : dict[str, ndarray]
        For each recurrent layer (by qualified name), ``||dL/dh_t||`` per
        epoch and time step, shape ``(epochs, T)``: the mean over the epoch's
        batches of the batch-level norm. With masks (variable lengths), each
        step averages over the sequences still running at that step
        (:meth:`rnnbp.TimeGraph.running_state_grad_norms`), so ended
        sequences do not make the norm seem to grow going back in time; NaN
        where no sequence runs. Recorded with full BPTT only.
    best_epoch : int or None
        The epoch (counted from 1, like every epoch number) with the lowest
        validation loss: ``val_loss[best_epoch - 1]``.
    skipped : int
        Updates skipped because of a non-finite loss or gradients
        (``on_nonfinite="skip"``).
    epoch_time : list[float]
        Wall-clock seconds per epoch.
    stopped_early : bool
        Whether early stopping or a callback ended training before the
        last epoch.

    Examples
    --------
    >>> h = History(loss=[0.5, 0.25], val_loss=[0.6, 0.4], best_epoch=1)
    >>> print(h)
    History(epochs=2, loss=0.25, val_loss=0.4, best_epoch=1)
    """

    loss: list[float] = field(default_factory=list)
    metric: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    clipped: list[bool] = field(default_factory=list)
    state_grad_norms: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: int = 0
    epoch_time: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """Number of epochs run."""
        return len(self.loss)

    def __repr__(self) -> str:
        parts = [f"epochs={self.epochs}"]
        for name in ("loss", "metric", "val_loss", "val_metric"):
            values = getattr(self, name)
            if values:
                parts.append(f"{name}={values[-1]:.4g}")
        if self.best_epoch is not None:
            parts.append(f"best_epoch={self.best_epoch}")
        if self.skipped:
            parts.append(f"skipped={self.skipped}")
        if self.stopped_early:
            parts.append("stopped_early=True")
        return f"History({', '.join(parts)})"


class Progress:
    """A one-line text progress bar on a stream (stderr by default).

    On a terminal it redraws in place at most ten times a second; elsewhere
    (logs, CI) it prints one line per ``every`` updates and at the end.

    Parameters
    ----------
    total : int
        Number of updates expected.
    desc : str
        Prefix shown before the bar.
    stream : file, optional
    every : int, optional
        Lines between prints when not on a terminal (default: about 10 lines).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = Progress(4, "demo", stream=out)
    >>> for _ in range(4):
    ...     bar.update(info="loss 0.1")
    >>> bar.close()
    >>> "4/4" in out.getvalue()
    True
    """

    def __init__(self, total: int, desc: str = "", stream: Any = None, every: int | None = None) -> None:
        self.total = max(int(total), 1)
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every or max(self.total // 10, 1)
        self.n = 0
        self.start = time.perf_counter()
        self._last = 0.0
        self._info = ""

    def update(self, n: int = 1, info: str | None = None) -> None:
        """Advance by ``n`` and optionally replace the trailing text."""
        self.n += n
        if info is not None:
            self._info = info
        now = time.perf_counter()
        if self.tty:
            if now - self._last >= 0.1 or self.n >= self.total:
                self._last = now
                self.stream.write("\r" + self._line(now))
                self.stream.flush()
        elif self.n % self.every == 0 or self.n == self.total:
            self.stream.write(self._line(now) + "\n")
            self.stream.flush()

    def _line(self, now: float) -> str:
        frac = min(self.n / self.total, 1.0)
        width = 24
        filled = int(round(frac * width))
        elapsed = now - self.start
        eta = elapsed / self.n * (self.total - self.n) if self.n else float("nan")
        bar = "#" * filled + "." * (width - filled)
        return (f"{self.desc} [{bar}] {self.n}/{self.total} "
                f"{elapsed:5.1f}s<{eta:5.1f}s {self._info}").rstrip()

    def close(self) -> None:
        """Finish the line on a terminal."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
