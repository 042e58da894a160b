"""The main explorer set up for one idea: a few of its controls, the rest fixed."""

from __future__ import annotations

from ..data import Dataset
from .explorer import RunExplorer


def reset_explorer(data: str | Dataset = "moons", **defaults) -> RunExplorer:
    """Every reset policy side by side: which one keeps improving across epochs?"""
    return RunExplorer(data, compare=True, show=("epochs", "lr", "optimizer", "shuffle", "x"),
                       buttons=("more", "restart"), **defaults)  # fmt: skip


def batch_size_explorer(data: str | Dataset = "moons", **defaults) -> RunExplorer:
    """Change the batch size: the steps per epoch change, the samples per epoch do not.

    Earlier batch sizes stay on the figure as ghosts; with the x axis in samples, every
    curve's epochs end at the same places.
    """
    return RunExplorer(data, **{"x": "samples", **defaults}, show=("batch_size", "epochs", "x"),
                       buttons=("clear",))  # fmt: skip
