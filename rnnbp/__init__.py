"""rnnbp: backpropagation through time for recurrent networks, in numpy.

Every layer, static or recurrent, speaks one protocol (:class:`Layer`);
:func:`unroll` runs a model over a sequence into a :class:`TimeGraph` whose
``backward`` is full BPTT; :class:`TruncatedBPTT` walks long streams in
windows; :func:`fit` trains. See ``docs/`` for the guide.
"""

from . import activations, checkpoint, ctc, decode, fixedpoint, init, losses, metrics, monitor, optim, rtrl, schedules
from .bidirectional import Bidirectional
from .cells import GRU, LSTM, Elman, LSTMState
from .conv import Conv2D, MaxPool2D
from .decode import ctc_beam_decode, ctc_greedy_decode
from .embedding import Embedding
from .clip import clip_grad_norm, clip_grad_value
from .errors import ConvergenceError, LoadError, NonFiniteError
from .fixedpoint import FixedPoint
from .gradcheck import GradcheckResult, gradcheck
from .io import load, save
from .protocol import Layer, StaticLayer
from .rtrl import RTRL
from .layers import Dropout, Flatten, Linear, ReLU, Reshape, Sequential, Sigmoid, Tanh
from .tbptt import TruncatedBPTT
from .history import History, Progress
from .update import StepResult, train_step
from .inference import accuracy, evaluate, predict
from .loop import fit
from .sampling import sample
from .unroll import Node, TimeGraph, unroll
from .buffers import BufferPool

__version__ = "0.2.0"

#: Modules renamed in 0.2.0, reachable as ``rnnbp.layer`` etc. (with a
#: DeprecationWarning on use) until 0.3.0.
_RENAMED = {"layer": "protocol", "train": "loop", "step": "update"}


def __getattr__(name: str):
    if name in _RENAMED:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Layer", "StaticLayer", "Linear", "Embedding", "Tanh", "Sigmoid", "ReLU", "Dropout", "Reshape", "Sequential",
    "Elman", "LSTM", "LSTMState", "GRU", "Bidirectional", "Conv2D", "MaxPool2D", "Flatten",
    "unroll", "TimeGraph", "Node", "BufferPool", "TruncatedBPTT", "FixedPoint", "ConvergenceError", "RTRL",
    "train_step", "StepResult", "fit", "evaluate", "predict", "sample", "History", "Progress", "accuracy",
    "clip_grad_norm", "clip_grad_value", "gradcheck", "GradcheckResult",
    "save", "load", "NonFiniteError", "LoadError", "ctc_greedy_decode", "ctc_beam_decode",
    "activations", "decode", "metrics", "init", "losses", "monitor", "optim", "schedules", "fixedpoint", "rtrl",
    "ctc", "checkpoint",
]
