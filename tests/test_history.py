"""rnnbp.history: what History records and how Progress prints."""

import io

import numpy as np
import pytest

import rnnbp
from rnnbp.history import History, Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_repr_shows_the_last_value_of_each_recorded_list_and_flags():
    assert repr(History()) == "History(epochs=0)"
    h = History(loss=[1.0, 0.123456], metric=[0.5, 0.75], skipped=2, stopped_early=True)
    assert h.epochs == 2
    assert repr(h) == "History(epochs=2, loss=0.1235, metric=0.75, skipped=2, stopped_early=True)"


def test_fit_records_one_entry_per_epoch_and_one_norm_per_update():
    rng = np.random.default_rng(0)
    xs, ys = rng.normal(size=(6, 20, 2)), rng.normal(size=(6, 20, 1))
    model = rnnbp.Sequential(rnnbp.Elman(2, 4, seed=0), rnnbp.Linear(4, 1, seed=1))
    h = rnnbp.fit(model, (xs, ys), loss=rnnbp.losses.mse, optimizer=rnnbp.optim.SGD(model, lr=0.01),
                  epochs=3, batch_size=8, clip=1e-3, progress=False)
    assert h.epochs == 3 and len(h.epoch_time) == 3
    assert len(h.grad_norm) == len(h.clipped) == 3 * 3                 # ceil(20 / 8) updates an epoch
    assert all(h.clipped) and all(n > 1e-3 for n in h.grad_norm)
    assert h.state_grad_norms["0"].shape == (3, 6)                       # (epochs, T)
    assert not h.val_loss and not h.stopped_early


def test_progress_off_a_terminal_prints_every_tenth_and_the_last():
    out = io.StringIO()
    bar = Progress(25, "train", stream=out)
    for i in range(25):
        bar.update(info=f"loss {i}")
    bar.close()
    lines = out.getvalue().splitlines()
    assert [line.split("] ")[1].split()[0] for line in lines] == ["2/25", "4/25", "6/25", "8/25", "10/25", "12/25",
                                                                 "14/25", "16/25", "18/25", "20/25", "22/25",
                                                                 "24/25", "25/25"]
    assert lines[-1].startswith("train [" + "#" * 24 + "]") and lines[-1].endswith("loss 24")
    assert "\r" not in out.getvalue()


def test_progress_on_a_terminal_redraws_in_place_and_ends_the_line():
    out = Terminal()
    bar = Progress(3, "x", stream=out)
    for _ in range(3):
        bar.update()
    bar.close()
    text = out.getvalue()
    assert text.startswith("\r") and text.endswith("\n") and "3/3" in text and text.count("\n") == 1


@pytest.mark.parametrize("total, n, filled", [(4, 1, 6), (4, 2, 12), (3, 3, 24), (0, 1, 24)])
def test_progress_bar_fills_in_proportion(total, n, filled):
    out = io.StringIO()
    bar = Progress(total, stream=out, every=1)
    bar.update(n)
    assert "[" + "#" * filled + "." * (24 - filled) + "]" in out.getvalue()
