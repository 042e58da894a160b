"""Figures that check three claims about epochs against the numbers.

- "A bigger batch needs more memory" (`memory_bars`): what the memory of one step is made of.
- "Cross-validation scores are honest" (`cross_validation`): only if every fold starts afresh.
- "An epoch is a special moment" (`sliding_epochs`): a window of one epoch's worth of samples
  gives the same loss wherever it ends; the epoch boundary is just one of those windows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .. import checks
from ..crossval import CrossValidation
from ..run import Run
from ..step_memory import MB, Footprint
from .style import (
    EPOCH_LINE_WIDTH,
    LOSS_TITLES,
    OTHER_COLOURS,
    decimate,
    epoch_marks,
    layout,
    series_colours,
    translucent,
)

MEMORY_PARTS = {  # Footprint field → (legend name, colour)
    "params": ("parameters", OTHER_COLOURS[0]),
    "grads": ("gradients", OTHER_COLOURS[1]),
    "optimizer_state": ("optimizer state", OTHER_COLOURS[2]),
    "activations": ("activations", "#7F7F7F"),
}
WINDOW_COLUMNS = ("samples_seen", "window_loss", "coverage", "at_boundary")


def memory_bars(footprints: Sequence[Footprint], budget_mb: float | None = None) -> go.Figure:
    """Memory one training step needs, per batch size, split into what it is made of.

    Each bar stacks parameters, gradients, optimizer state and activations (in MB). With a
    `budget_mb`, a line marks the memory budget and bars above it are hatched and say
    "does not fit".

    >>> import epochviz as ev
    >>> memory_bars([ev.footprint("mlp", ev.moons(), b) for b in (32, 1024, 65536)], budget_mb=10)  # doctest: +SKIP

    What to notice: only the activations grow with the batch size; parameters, gradients and
    optimizer state stay the same, so a smaller batch (or accumulating micro-batches) is how
    a model that does not fit is made to fit.
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
    figure = layout(title=None, x_title="batch size", y_title="memory per training step (MB)")
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


def cross_validation(results: CrossValidation | Mapping[str, CrossValidation]) -> go.Figure:
    """Per fold, the validation loss next to the loss on held-out test rows no fold trained on.

    `results` is one CrossValidation or a dict label → CrossValidation, e.g.
    {"reset per fold": fair, "no reset (leaks)": leaky}. Solid lines are validation, dashed
    lines the test loss; the shaded gap between them is how optimistic validation was.

    >>> import epochviz as ev
    >>> fair = ev.cross_validate("digits", k=5, epochs=30)  # doctest: +SKIP
    >>> leaky = ev.cross_validate("digits", k=5, epochs=30, reset_between_folds=False)  # doctest: +SKIP
    >>> cross_validation({"reset per fold": fair, "no reset (leaks)": leaky})  # doctest: +SKIP

    What to notice: when the weights carry over from fold to fold, later folds validate on
    rows an earlier fold trained on, so their validation loss drops below the test loss: the
    score looks better than the model is. Reset per fold and the two lines stay together.
    """
    if isinstance(results, CrossValidation):
        named = [(_crossval_label(results), results)]
    elif isinstance(results, Mapping):
        named = [(str(label), result) for label, result in results.items()]
    else:
        raise TypeError(
            f"results must be a CrossValidation (from epochviz.cross_validate) or a dict label → CrossValidation; "
            f"got a {type(results).__name__}."
        )
    if not named:
        raise ValueError("results is empty: give at least one CrossValidation.")
    for label, result in named:
        if not isinstance(result, CrossValidation):
            raise TypeError(f"results must hold CrossValidation results; got a {type(result).__name__} for {label!r}.")
    # a reset between folds is a weights reset (vermillion); carrying the weights over is reset "never" (blue)
    colours = series_colours(["weights" if result.reset_between_folds else "never" for _, result in named])
    traces = []
    for (label, result), colour in zip(named, colours, strict=True):
        folds = result.folds
        gap = (folds["test_loss"] - folds["val_loss"]).to_numpy()
        common = {"type": "scatter", "mode": "lines+markers", "x": folds["fold"].to_numpy(), "legendgroup": label,
                  "customdata": gap}  # fmt: skip
        hover = "<br>test loss − validation loss: %{customdata:+.3g}" + f"<extra>{label}</extra>"
        traces.append({
            **common, "name": f"{label} · validation loss", "y": folds["val_loss"].to_numpy(),
            "line": {"color": colour, "width": EPOCH_LINE_WIDTH}, "marker": {"size": 10, "color": colour},
            "hovertemplate": "fold %{x}<br>validation loss %{y:.3g}" + hover,
        })  # fmt: skip
        traces.append({
            **common, "name": f"{label} · test loss (held out)", "y": folds["test_loss"].to_numpy(),
            "line": {"color": colour, "width": EPOCH_LINE_WIDTH, "dash": "dash"},
            "marker": {"size": 10, "color": "white", "line": {"color": colour, "width": 2}},
            "fill": "tonexty", "fillcolor": translucent(colour, 0.15),  # the gap: how optimistic validation was
            "hovertemplate": "fold %{x}<br>test loss %{y:.3g}" + hover,
        })  # fmt: skip
    task = named[0][1].runs[0].data.task if named[0][1].runs else None
    figure = layout(title=None, x_title="fold", y_title=LOSS_TITLES.get(task, "loss"))
    figure["xaxis"]["dtick"] = 1
    figure["legend"]["traceorder"] = "grouped"  # each result's validation then test, not plotly's reversed fills
    return go.Figure(data=traces, layout=figure)


def _crossval_label(result: CrossValidation) -> str:
    return "reset per fold" if result.reset_between_folds else "no reset between folds"


def sliding_epochs(windows: pd.DataFrame, run: Run | None = None) -> go.Figure:
    """The loss over a sliding window of one epoch's worth of samples, as training goes on.

    `windows` is the table from `epochviz.sliding_epochs(run)` (the numbers; this draws them). The line is the mean
    loss over the last `width` training samples seen, wherever that window ends; large dots
    mark windows ending exactly at an epoch boundary (true epochs). With `run`, its epoch
    train losses are drawn as diamonds at the same places. The dotted line (right axis) is
    the window's coverage: the share of distinct training samples inside it.

    >>> import epochviz as ev
    >>> from epochviz import plots
    >>> run = ev.train("moons", epochs=4)
    >>> plots.sliding_epochs(ev.sliding_epochs(run), run)  # doctest: +SKIP

    What to notice: the line passes smoothly through the epoch boundaries and the diamonds
    sit on it: the epoch's loss is one window among many, not a special moment in training.
    """
    if not isinstance(windows, pd.DataFrame):
        raise TypeError(f"windows must be the table from epochviz.sliding_epochs(run); got {type(windows).__name__}.")
    if run is not None and not isinstance(run, Run):
        raise TypeError(f"run must be a Run (from epochviz.train) or None; got {type(run).__name__}.")
    missing = [column for column in WINDOW_COLUMNS if column not in windows.columns]
    if missing:
        raise ValueError(f"windows must be the table from epochviz.windows.sliding_epochs; it lacks {missing}.")
    width = windows.attrs.get("width")
    seen, loss = windows["samples_seen"].to_numpy(dtype=float), windows["window_loss"].to_numpy()
    coverage, boundary = windows["coverage"].to_numpy(), windows["at_boundary"].to_numpy(dtype=bool)
    kept = decimate(loss)
    window = f"the last {width:,} samples" if width else "the window"
    colour = series_colours([None if run is None else run.config["reset"]])[0]
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
