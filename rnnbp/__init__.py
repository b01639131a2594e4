"""rnnbp: backpropagation through time for recurrent networks, in numpy."""

from .errors import NonFiniteError
from .layer import Layer, StaticLayer

__version__ = "0.1.0"
