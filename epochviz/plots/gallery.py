"""Curves that jump at epoch edges: the gallery of causes (`epochviz.jumps`), and a schedule's lr beside its loss.

Pure like every figure here: each panel reads a run (and the numbers measured beside it) and
draws; nothing trains.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import checks
from ..jumps import CURVES, Jump
from ..run import Run
from ..schedules import learning_rates
from .axes import epoch_edges, epoch_x, step_x
from .reported import running_average
from .style import HEIGHT, LOSS_TITLES, OTHER_COLOURS, epoch_marks, layout

COLUMNS = 3  # panels per row of the gallery
LOG_SPAN = 20  # a curve whose largest loss is this many times its smallest gets a log axis: its later teeth show
PANEL_HEIGHT = 300  # pixels per row of panels


def jump_curve(jump: Jump) -> tuple[np.ndarray, np.ndarray]:
    """(x in epochs, loss): the line of `jump.run` its cause draws (`jump.cause.curve`, a key of `jumps.CURVES`)."""
    run, kind = jump.run, jump.cause.curve
    x = step_x(run, "epoch")
    if kind == "progress bar":
        return x, running_average(run)
    losses = run.steps.loss.to_numpy()
    if kind == "batch loss":
        return x, losses
    # each epoch's batches, then at its end (x = k, where its last batch sits) the evaluation of its weights
    ends = epoch_x(run, "epoch")
    x_all, y_all = np.concatenate([x, ends]), np.concatenate([losses, jump.edges.train_loss_at_end.to_numpy()])
    order = np.lexsort((np.arange(len(x_all)), x_all))  # at x = k the last batch comes first, then the evaluation
    return x_all[order], y_all[order]


def jump_gallery(jumps: Mapping[int, Jump], *, reveal: bool = False, title: str | None = None) -> go.Figure:
    """One panel per numbered curve of `ev.jumps.gallery()`, x in epochs; `reveal=True` names each one's cause.

    >>> import epochviz as ev
    >>> jump_gallery(ev.jumps.gallery())  # doctest: +SKIP

    What to notice: every curve has a tooth at the epoch edges (the shaded bands), and they are
    not all the same tooth: up at the edge, down at the edge, or in the middle of every epoch.
    """
    checks.flag("reveal", reveal)
    if not isinstance(jumps, Mapping) or not all(isinstance(jump, Jump) for jump in jumps.values()):
        raise TypeError("jumps must map curve numbers to Jumps, as ev.jumps.gallery() returns.")
    rows = -(-len(jumps) // COLUMNS)
    names = [
        f"{number}: {jump.cause.name.replace('_', ' ')}" if reveal else f"curve {number}"
        for number, jump in jumps.items()
    ]
    figure = make_subplots(rows=rows, cols=COLUMNS, subplot_titles=names, horizontal_spacing=0.06,
                           vertical_spacing=0.5 / (rows * 2))  # fmt: skip
    for index, jump in enumerate(jumps.values()):
        row, col = index // COLUMNS + 1, index % COLUMNS + 1
        x, y = jump_curve(jump)
        hover = f"{CURVES[jump.cause.curve]}: %{{y:.3g}}<extra></extra>" if reveal else "%{y:.3g}<extra></extra>"
        figure.add_trace(go.Scatter(x=x, y=y, mode="lines", line={"color": OTHER_COLOURS[0], "width": 1.5},
                                    hovertemplate=hover, showlegend=False), row=row, col=col)  # fmt: skip
        if _spans_decades(y):
            figure.update_yaxes(type="log", row=row, col=col)
        for edge in epoch_edges(jump.run, "epoch")[1:-1]:
            figure.add_vline(x=edge, line={"color": "rgba(0, 0, 0, 0.25)", "width": 1, "dash": "dot"}, row=row,
                             col=col)  # fmt: skip
    figure.update_layout(layout(title=title, x_title="", y_title=""), height=PANEL_HEIGHT * rows + 60)
    figure.update_xaxes(title_text="epoch", dtick=1)
    figure.update_yaxes(title_text="loss", col=1)
    return figure


def lr_beside_loss(run: Run, *, title: str | None = None) -> go.Figure:
    """A run's batch loss (top) above the learning rate each step trained with (bottom), x in epochs.

    >>> import epochviz as ev
    >>> lr_beside_loss(ev.train("moons", epochs=4, lr_schedule="warm_restarts"))  # doctest: +SKIP

    What to notice: under warm restarts the loss settles while the rate glides to 0 at each epoch's
    end, and rises again just after the rate jumps back at the next epoch's start.
    """
    if not isinstance(run, Run):
        raise TypeError(f"run must be a Run (from epochviz.train); got {type(run).__name__}.")
    x = step_x(run, "epoch")
    rates = learning_rates(run.config.lr_schedule, run.config.lr, run.steps_per_epoch, run.total_steps)
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.06)
    figure.add_trace(go.Scatter(x=x, y=run.steps.loss, mode="lines", name="each batch's loss",
                                line={"color": OTHER_COLOURS[0], "width": 1.5},
                                hovertemplate="batch loss %{y:.3g}<extra></extra>"), row=1, col=1)  # fmt: skip
    figure.add_trace(go.Scatter(x=x, y=rates[: len(x)], mode="lines", name=f"learning rate ({run.config.lr_schedule})",
                                line={"color": OTHER_COLOURS[1], "width": 2},
                                hovertemplate="lr %{y:.3g}<extra></extra>"), row=2, col=1)  # fmt: skip
    figure.update_layout(layout(title=title, x_title="", y_title="", shapes=epoch_marks(epoch_edges(run, "epoch"))),
                         height=HEIGHT + 60)  # fmt: skip
    log = {"type": "log"} if _spans_decades(run.steps.loss.to_numpy()) else {}
    figure.update_yaxes(title_text="loss, log scale" if log else LOSS_TITLES[run.data.task], row=1, col=1, **log)
    figure.update_yaxes(title_text="learning rate", row=2, col=1)
    figure.update_xaxes(title_text="epoch", row=2, col=1)
    return figure


def _spans_decades(losses: np.ndarray) -> bool:
    finite = losses[np.isfinite(losses) & (losses > 0)]
    return len(finite) > 0 and finite.max() > LOG_SPAN * finite.min()
