"""The decision boundary beside the main explorer's loss curve, at the epoch the epochs slider shows.

The curve says how wrong the model is, epoch by epoch; the boundary shows *where* it is wrong:
the class it predicts over the plane, with the training samples on top. It is drawn for
two-feature classification data (moons, circles, spirals) and hidden for the rest. Moving the
epochs slider redraws it in place from the weights that epoch ended with, as the curve is
redrawn: nothing trains.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go

from ..plots import boundary_after, decision_surface
from ..run import Run
from .base import plain, sync_figure

WIDTH = 400  # pixels, fixed: a figure first drawn while its box was hidden or unsized would fall back to 700
RESOLUTION = 50  # cells per side: a 320 px panel gives each about 6 px; 50² = 2 500 cells to send per redraw
DECIMALS = 3  # of z, the colour: a thousandth of a class's band is finer than any screen shows, and a third the bytes


class BoundaryPanel:
    """A FigureWidget (`figure`) inside a box (`box`, hidden when the data has no plane to draw on).

    >>> panel = BoundaryPanel(height=480)                           # doctest: +SKIP
    >>> panel.show(run, "reset: never"); panel.figure.data[0].z      # the grid after run's last epoch

    A model with buffers (batch norm) cannot be rebuilt at a past epoch: `note` says so in place of the figure.
    """

    def __init__(self, *, height: int) -> None:
        self.figure = go.FigureWidget(layout={"height": height, "width": WIDTH})
        # said in place of the figure when the boundary cannot be drawn honestly (a model with buffers)
        self.note = widgets.HTML(layout=widgets.Layout(width=f"{WIDTH}px"))
        self.box = widgets.VBox([self.figure], layout=widgets.Layout(display="none", flex="0 0 auto"))
        self.box.add_class("epochviz-boundary")  # a stable hook for the browser tests
        self._plane = None  # the data and training samples drawn now: while they stay, only the colours change

    @staticmethod
    def can_show(run: Run) -> bool:
        """Whether `run` has a boundary to draw: classes on a plane of two features, and an epoch of weights."""
        return run.data.task == "classification" and run.data.features == 2 and run.completed_epochs > 0

    def show(self, run: Run | None, label: str) -> None:
        """Draw `run`'s boundary after its last epoch, titled with `label` (which run it is); hide it if it has none."""
        if run is None or not self.can_show(run):
            self.box.layout.display = "none"
            return
        if reason := run.cannot_predict_because:
            self.note.value = f"<i>No decision boundary: {html.escape(reason)}</i>"
            self.box.children = (self.note,)
            self.box.layout.display = "flex"
            return
        self.box.children = (self.figure,)
        epoch = run.completed_epochs
        title = f"Boundary after epoch {epoch} · {label}"  # short: it must clear the mode bar of a narrow panel
        if self._plane is not None and self._plane[0] is run.data and np.array_equal(self._plane[1], run.train_indices):
            with self.figure.batch_update():  # another epoch of the same plane: only the colours change
                self.figure.data[0].update(_colours(decision_surface(run, epoch, resolution=RESOLUTION)))
                self.figure.layout.title.text = title
        else:
            figure = boundary_after(run, epoch, resolution=RESOLUTION, title=title)
            figure.data[0].update(_colours(figure.data[0]))
            figure.update_layout(
                margin={"l": 50, "r": 10, "t": 60, "b": 40}, legend={"font": {"size": 13}}, title={"font": {"size": 15}}
            )
            sync_figure(self.figure, figure)
            self._plane = (run.data, run.train_indices)
        self.box.layout.display = "flex"


def _colours(surface) -> dict:
    """The heatmap's z (rounded; None, a blank cell, where the weights are not finite) and customdata, as lists."""
    z = np.asarray(surface["z"], dtype=float)
    return {"z": np.where(np.isnan(z), None, z.round(DECIMALS)).tolist(), "customdata": plain(surface["customdata"])}
