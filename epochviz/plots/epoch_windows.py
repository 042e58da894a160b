"""Is an epoch a special moment? The loss over a sliding window of one epoch's worth of samples.

A window of one epoch's worth of samples gives the same loss wherever it ends; the epoch
boundary is just one of those windows. The numbers come from `epochviz.sliding_windows`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..run import Run
from .style import EPOCH_LINE_WIDTH, OTHER_COLOURS, decimate, epoch_marks, layout, series_colours

WINDOW_COLUMNS = ("samples_seen", "window_loss", "coverage", "at_boundary")


def sliding_epochs(windows: pd.DataFrame, run: Run | None = None) -> go.Figure:
    """The loss over a sliding window of one epoch's worth of samples, as training goes on.

    `windows` is the table from `epochviz.sliding_windows(run)` (the numbers; this draws them). The line is the mean
    loss over the last `width` training samples seen, wherever that window ends; large dots
    mark windows ending exactly at an epoch boundary (true epochs). With `run`, its epoch
    train losses are drawn as diamonds at the same places. The dotted line (right axis) is
    the window's coverage: the share of distinct training samples inside it.

    >>> import epochviz as ev
    >>> from epochviz import plots
    >>> run = ev.train("moons", epochs=4)
    >>> plots.sliding_epochs(ev.sliding_windows(run), run)  # doctest: +SKIP

    What to notice: the line passes smoothly through the epoch boundaries and the diamonds
    sit on it: the epoch's loss is one window among many, not a special moment in training.
    """
    if not isinstance(windows, pd.DataFrame):
        raise TypeError(f"windows must be the table from epochviz.sliding_windows(run); got {type(windows).__name__}.")
    if run is not None and not isinstance(run, Run):
        raise TypeError(f"run must be a Run (from epochviz.train) or None; got {type(run).__name__}.")
    missing = [column for column in WINDOW_COLUMNS if column not in windows.columns]
    if missing:
        raise ValueError(f"windows must be the table from epochviz.sliding_windows(run); it lacks {missing}.")
    width = windows.attrs.get("width")
    seen, loss = windows["samples_seen"].to_numpy(dtype=float), windows["window_loss"].to_numpy()
    coverage, boundary = windows["coverage"].to_numpy(), windows["at_boundary"].to_numpy(dtype=bool)
    kept = decimate(loss)
    window = f"the last {width:,} samples" if width else "the window"
    colour = series_colours([None if run is None else run.config.reset])[0]
    traces = [
        {
            "type": "scatter", "mode": "lines", "name": "loss over a sliding window", "x": seen[kept],
            "y": loss[kept], "customdata": coverage[kept], "line": {"color": colour, "width": EPOCH_LINE_WIDTH},
            "hovertemplate": f"window ending at %{{x:,}} samples seen<br>mean loss over {window}: %{{y:.3g}}<br>"
                             "coverage %{customdata:.0%} of the training samples<extra></extra>",
        },
        {
            "type": "scatter", "mode": "markers", "name": "window = an epoch", "x": seen[boundary],
            "y": loss[boundary], "marker": {"color": colour, "size": 13, "line": {"color": "#000000", "width": 2}},
            "hovertemplate": "window ends at an epoch boundary (%{x:,} samples seen)<br>loss %{y:.3g}<extra></extra>",
        },
        {
            "type": "scatter", "mode": "lines", "name": "coverage (right axis)", "x": seen[kept], "y": coverage[kept],
            "yaxis": "y2", "line": {"color": OTHER_COLOURS[2], "width": 2, "dash": "dot"}, "hoverinfo": "skip",
        },
    ]  # fmt: skip
    if run is not None:
        epochs = run.epochs
        traces.append({
            "type": "scatter", "mode": "markers", "name": "epoch train loss (from the run)",
            "x": epochs["samples_seen"].to_numpy(), "y": epochs["train_loss"].to_numpy(),
            "customdata": epochs["epoch"].to_numpy(),
            "marker": {"symbol": "diamond-open", "size": 20, "color": "#000000", "line": {"width": 2.5}},
            "hovertemplate": "end of epoch %{customdata}<br>train loss %{y:.3g}<extra></extra>",
        })  # fmt: skip
    figure = layout(title=None, x_title="training samples seen", y_title="loss (mean over the window)",
                    shapes=epoch_marks(np.concatenate([[0.0], seen[boundary]])))  # fmt: skip
    figure["yaxis2"] = {"title": {"text": "coverage"}, "overlaying": "y", "side": "right", "range": [0, 1.05],
                        "tickvals": [0, 0.25, 0.5, 0.75, 1], "tickformat": ".0%", "showgrid": False}  # fmt: skip
    figure["margin"]["r"] = 90
    return go.Figure(data=traces, layout=figure)
