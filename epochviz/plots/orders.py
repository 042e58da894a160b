"""The order in which each epoch visits the training samples, cut into its batches.

One row per epoch, one cell per position in the epoch, coloured by which training sample sits
there (or by its class). An epoch is a complete pass, so every row holds every sample exactly
once; shuffling only changes where each sample sits, and the batch size only where the cuts
between batches fall.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .. import checks
from ..run import Run
from .curves import named_runs
from .style import FONT_SIZE, HEIGHT, layout

SAMPLE_COLOURS = "Viridis"  # a sequential, colour-blind-safe scale: neighbouring sample numbers look alike
BOUNDARY_LIMIT = 64  # up to this many batches per epoch, a line marks each cut; more would hide the cells
ROW_HEIGHT = 190  # pixels per run beyond the second, so a stack of runs keeps readable rows
COLOUR_BY = ("sample", "class")  # what a cell's colour shows: the training sample's number, or its class


def sample_orders(runs: Run | Sequence[Run] | Mapping[str, Run], epochs: int = 3, *, colour_by: str = "sample",
                  title: str | None = None) -> go.Figure:  # fmt: skip
    """Which training sample each epoch visits at each position, with the batches marked.

    One panel per run (a Run, a list of Runs, or a dict label → Run), one row per epoch (the
    first `epochs` epochs the run has trained, or started), one cell per position: its colour is the
    number of the training sample visited there (0 … N−1, in the training split). White lines
    cut each row into its batches; each batch is one optimizer step. With `drop_last=True` the
    positions of the dropped last batch stay blank. `colour_by="class"` colours each cell by the
    class of the sample there instead (classification runs only), which shows what each batch
    holds: on a dataset sorted by label (`Dataset.sorted_by_label`) without shuffling, one class.

    >>> import epochviz as ev
    >>> runs = {"shuffled": ev.train("moons", epochs=3), "not shuffled": ev.train("moons", epochs=3, shuffle=False)}
    >>> sample_orders(runs)  # doctest: +SKIP

    What to notice: without shuffling every row is the same smooth ramp; with shuffling every
    row is a different jumble. Either way each row holds every sample once (that is what makes
    it an epoch), and a bigger batch size means fewer, wider batches in the same row.
    """
    checks.whole("epochs", epochs, minimum=1)
    checks.choice("colour_by", colour_by, COLOUR_BY)
    named = named_runs(runs)
    if colour_by == "class":
        for label, run in named:
            if run.data.task != "classification":
                raise ValueError(f"colour_by='class' needs classification runs; {label!r} trained on "
                                 f"{run.data.name!r}, a {run.data.task} dataset. Use colour_by='sample'.")  # fmt: skip
    titles = [f"{label}: {_batches(run)}" if len(named) > 1 else _batches(run) for label, run in named]
    figure = make_subplots(rows=len(named), cols=1, shared_xaxes=True, vertical_spacing=0.12 / len(named),
                           subplot_titles=titles)  # fmt: skip
    figure.update_layout(
        layout(title=title, x_title="", y_title=""), height=HEIGHT + ROW_HEIGHT * max(0, len(named) - 2)
    )
    figure.update_annotations(font={"size": FONT_SIZE}, xanchor="left", x=0)  # the panel titles, over each panel
    largest = max(len(run.train_indices) for _, run in named)
    for row, (label, run) in enumerate(named, start=1):
        heatmap = _order_heatmap(run, epochs, label, largest, colour_bar=row == 1)
        if colour_by == "class":
            heatmap = _by_class(heatmap, run)
        figure.add_trace(heatmap, row=row, col=1)
        for cut in _batch_cuts(run):
            figure.add_vline(x=float(cut), line={"color": "white", "width": 4}, row=row, col=1)
        figure.update_yaxes(autorange="reversed", row=row, col=1)  # epoch 1 on top: time runs down the page
    figure.update_xaxes(title={"text": "position in the epoch (1 = visited first)"}, row=len(named), col=1)
    return figure


def _batches(run: Run) -> str:
    """How one epoch of `run` is cut: "320 training samples → 7 batches per epoch (6 of 50, 1 of 20)"."""
    n, size = len(run.train_indices), run.config.batch_size
    full, rest = divmod(n, size)
    if rest and not run.config.drop_last:
        sizes = f"{full} of {size}, 1 of {rest}" if full else f"1 of {rest}"
    else:
        sizes = f"each of {size}" + (f"; the last {rest} samples dropped" if rest else "")
    steps = run.steps_per_epoch
    return f"{n} training samples → {steps} batch{'es' if steps > 1 else ''} per epoch ({sizes})"


def _order_heatmap(run: Run, epochs: int, label: str, largest: int, *, colour_bar: bool) -> dict:
    started = run.completed_epochs + run.diverged  # a diverged run stopped inside the epoch after the last complete one
    shown = range(1, min(epochs, max(started, 1)) + 1)
    n, size = len(run.train_indices), run.config.batch_size
    visited = run.steps_per_epoch * size  # with drop_last, the positions after this are never visited
    orders = np.array([run.sample_order(epoch) for epoch in shown], dtype=float)
    orders[:, visited:] = np.nan
    positions = np.arange(1, n + 1)
    batch = np.broadcast_to((positions - 1) // size + 1, orders.shape)
    return {
        "type": "heatmap", "name": label, "x": positions, "y": [f"epoch {epoch}" for epoch in shown], "z": orders,
        "zmin": 0, "zmax": largest - 1, "ygap": 3, "colorscale": SAMPLE_COLOURS, "customdata": batch,
        "showscale": colour_bar, "colorbar": {"title": {"text": "training<br>sample #"}, "thickness": 15},
        "hovertemplate": "%{y}, position %{x} (batch %{customdata})<br>visits training sample %{z:.0f}"
                         f"<extra>{label}</extra>",
    }  # fmt: skip


def _by_class(heatmap: dict, run: Run) -> dict:
    """`heatmap` recoloured by the class of the sample at each cell; the hover still names the sample."""
    samples = heatmap["z"]
    visited = ~np.isnan(samples)
    labels = run.data.y[run.train_indices].numpy()
    classes = np.full(samples.shape, np.nan)
    classes[visited] = labels[samples[visited].astype(int)]
    names = run.data.classes
    return {
        **heatmap, "z": classes, "zmin": 0, "zmax": max(len(names) - 1, 1),
        "customdata": np.stack([heatmap["customdata"], samples], axis=-1),
        "colorbar": {"title": {"text": "class"}, "thickness": 15, "tickvals": list(range(len(names))),
                     "ticktext": list(names)},
        "hovertemplate": "%{y}, position %{x} (batch %{customdata[0]})<br>visits training sample "
                         f"%{{customdata[1]:.0f}}, of class %{{z:.0f}}<extra>{heatmap['name']}</extra>",
    }  # fmt: skip


def _batch_cuts(run: Run) -> np.ndarray:
    """x positions between one batch and the next (none when there are too many to see)."""
    steps = run.steps_per_epoch
    if steps > BOUNDARY_LIMIT:
        return np.array([])
    return np.arange(1, steps) * run.config.batch_size + 0.5
