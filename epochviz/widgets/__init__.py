"""Explorers: sliders and buttons that redraw live Plotly figures of training across epochs.

Every explorer caches what it computed, redraws view-only changes at once, trains on a
background thread where the latest setting wins, and shows problems inside the widget.
"""

from .base import Explorer
from .crossval_explorer import CrossValidationExplorer
from .explorer import RunExplorer, explorer
from .landscape_explorer import LandscapeExplorer
from .loop_switchboard import LoopSwitchboard, loop_switchboard
from .memory_explorer import MemoryExplorer
from .predict import Prediction, predict
from .presets import batch_size_explorer, reset_explorer

__all__ = [
    "CrossValidationExplorer", "Explorer", "LandscapeExplorer", "LoopSwitchboard", "MemoryExplorer", "Prediction",
    "RunExplorer", "batch_size_explorer", "explorer", "loop_switchboard", "predict", "reset_explorer",
]  # fmt: skip
