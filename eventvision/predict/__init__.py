"""Using a trained run: predictions over the windows of any recording, and export.

Example:
    >>> from eventvision.predict import Predictor, Windowing  # doctest: +SKIP
    >>> p = Predictor("runs/gesture", windowing=Windowing(window_us=500_000))  # doctest: +SKIP
    >>> for w in p.predict_file("user01_led.aedat"):  # doctest: +SKIP
    ...     print(w.t_start_us, w.top(1))
"""

from __future__ import annotations

from .binning import Binning as Binning
from .binning import read_binning as read_binning
from .binning import run_binning as run_binning
from .predictor import Predictor as Predictor
from .predictor import WindowPrediction as WindowPrediction
from .predictor import load_run_model as load_run_model
from .windows import Window as Window
from .windows import Windowing as Windowing
from .windows import iter_windows as iter_windows

__all__ = [
    "Predictor",
    "WindowPrediction",
    "load_run_model",
    "Binning",
    "read_binning",
    "run_binning",
    "Windowing",
    "Window",
    "iter_windows",
]
