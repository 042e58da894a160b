"""What the device memory of a training step is made of, per batch size: a bigger batch needs more, but only in part.

It draws `Footprint` records (from `epochviz.footprint`); nothing here measures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .. import checks
from ..step_memory import MB, Footprint
from .style import OTHER_COLOURS, layout

MEMORY_PARTS = {  # Footprint field → (legend name, colour)
    "params": ("parameters", OTHER_COLOURS[0]),
    "grads": ("gradients", OTHER_COLOURS[1]),
    "optimizer_state": ("optimizer state", OTHER_COLOURS[2]),
    "activations": ("activations", "#7F7F7F"),
    "data": ("data (training + validation samples)", OTHER_COLOURS[3]),
}


def memory_bars(footprints: Sequence[Footprint], budget_mb: float | None = None) -> go.Figure:
    """Device memory a run needs during one training step, per batch size, split into what it is made of.

    Each bar stacks parameters, gradients, optimizer state, activations and the data (in MB). With a
    `budget_mb`, a line marks the memory budget and bars above it are hatched and say
    "does not fit".

    >>> import epochviz as ev
    >>> memory_bars([ev.footprint("mlp", ev.moons(), b) for b in (32, 1024, 65536)], budget_mb=10)  # doctest: +SKIP

    What to notice: only the activations grow with the batch size; parameters, gradients,
    optimizer state and data stay the same, so a smaller batch (or accumulating micro-batches)
    is how a model that does not fit is made to fit.
    """
    if isinstance(footprints, Footprint) or not isinstance(footprints, Sequence):
        raise TypeError("footprints must be a list of Footprints (from epochviz.footprint).")
    footprints = list(footprints)
    if not footprints:
        raise ValueError("footprints is empty: give at least one Footprint.")
    if not all(isinstance(footprint, Footprint) for footprint in footprints):
        raise TypeError("footprints must be a list of Footprints (from epochviz.footprint).")
    if budget_mb is not None:
        budget_mb = checks.number("budget_mb", budget_mb, low=0, low_open=True)
    optimizers = {footprint.optimizer for footprint in footprints}
    labels = [f"{f.batch_size}" if len(optimizers) == 1 else f"{f.batch_size} ({f.optimizer})" for f in footprints]
    totals = np.array([f.total_mb for f in footprints])
    too_big = totals > budget_mb if budget_mb is not None else np.zeros(len(footprints), dtype=bool)
    traces = [
        {
            "type": "bar",
            "name": name,
            "x": labels,
            "y": np.array([getattr(f, part) for f in footprints]) / MB,
            "customdata": totals,
            "marker": {"color": colour, "pattern": {"shape": np.where(too_big, "/", "").tolist()}},
            "hovertemplate": f"batch size %{{x}}<br>{name} %{{y:.3g}} MB"
            "<br>total %{customdata:.3g} MB<extra></extra>",
        }
        for part, (name, colour) in MEMORY_PARTS.items()
    ]
    figure = layout(title=None, x_title="batch size", y_title="device memory during a step (MB)")
    figure["barmode"], figure["xaxis"]["type"] = "stack", "category"
    if budget_mb is not None:
        figure["shapes"] = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": budget_mb,
                             "y1": budget_mb, "line": {"color": "#000000", "width": 2.5, "dash": "dash"}}]  # fmt: skip
        # at the left, over the smallest batches, where bars are lowest
        budget = {"xref": "paper", "x": 0, "xanchor": "left", "y": budget_mb, "yanchor": "bottom", "showarrow": False,
                  "text": f"memory budget: {budget_mb:g} MB", "bgcolor": "rgba(255, 255, 255, 0.8)"}  # fmt: skip
        figure["annotations"] = [budget] + [
            # x by position: on a category axis plotly would read the label "2048" as position 2048
            {"x": position, "y": total, "text": "<b>does not fit</b>", "showarrow": False, "yanchor": "bottom"}
            for position, (total, over) in enumerate(zip(totals, too_big, strict=True))
            if over
        ]
    return go.Figure(data=traces, layout=figure)
