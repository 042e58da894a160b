"""The loss a progress bar reports: a running average that starts over at every epoch.

Keras's `fit` progress bar, and many others, print the mean of the epoch's batch losses so
far, not the loss of the batch just trained. That average restarts at every epoch: the first
batches of an epoch are averaged alone, so while training improves, the printed number drops
at each epoch edge even though the true per-batch loss runs on without a jump. At an epoch's
last batch it equals the epoch's training loss, the number `fit` keeps in its history (and
`run.epochs.train_loss` here).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from ..run import Run
from .axes import epoch_edges, step_x
from .style import EPOCH_LINE_WIDTH, LOSS_TITLES, OTHER_COLOURS, epoch_marks, layout, translucent


def running_average(run: Run) -> np.ndarray:
    """At every step, the mean loss of the epoch's batches so far (weighted by batch size): what a progress bar shows.

    >>> import epochviz as ev
    >>> run = ev.train("moons", epochs=2)
    >>> bool(abs(running_average(run)[run.steps_per_epoch - 1] - run.epochs.train_loss[0]) < 1e-9)
    True
    """
    steps = run.steps
    weighted = (steps["loss"] * steps["batch_size"]).groupby(steps["epoch"]).cumsum()
    return (weighted / steps["batch_size"].groupby(steps["epoch"]).cumsum()).to_numpy()


def reported_loss(run: Run, *, title: str | None = None) -> go.Figure:
    """Each batch's loss beside the running average a progress bar prints for it (x in epochs).

    >>> import epochviz as ev
    >>> reported_loss(ev.train("moons", epochs=5))  # doctest: +SKIP

    What to notice: the faint line (each batch) runs on across every epoch edge; the bold one
    (what Keras prints) drops at the edges while training improves: its average starts again from
    the epoch's first batches, which are better than the epoch before them on average.
    """
    if not isinstance(run, Run):
        raise TypeError(f"run must be a Run (from epochviz.train); got {type(run).__name__}.")
    x, colour = step_x(run, "epoch"), OTHER_COLOURS[0]
    epoch_of = run.steps["epoch"].to_numpy()
    traces = [
        {"type": "scatter", "mode": "lines", "name": "each batch (the true loss)", "x": x, "y": run.steps["loss"],
         "line": {"color": translucent(colour, 0.45), "width": 1.5},
         "hovertemplate": "batch loss %{y:.3g}<extra></extra>"},
        {"type": "scatter", "mode": "lines", "name": "running average (what the progress bar prints)",
         "x": x, "y": running_average(run), "customdata": epoch_of,
         "line": {"color": colour, "width": EPOCH_LINE_WIDTH},
         "hovertemplate": "mean of epoch %{customdata}'s batches so far: %{y:.3g}<extra></extra>"},
    ]  # fmt: skip
    figure = layout(title=title, x_title="epoch", y_title=LOSS_TITLES[run.data.task],
                    shapes=epoch_marks(epoch_edges(run, "epoch")))  # fmt: skip
    return go.Figure(data=traces, layout=figure)
