"""Figures of what happens across epochs: run history in, `plotly.graph_objects.Figure` out.

Every function here is pure: it reads a Run (or results built from Runs) and draws; nothing
trains and no torch model is needed, so a run loaded from a checkpoint plots the same.

>>> import epochviz as ev
>>> from epochviz.plots import loss_curves, to_html
>>> to_html(loss_curves(ev.train("moons", epochs=5)), "loss.html")  # doctest: +SKIP
"""

from .boundary import boundary_after, decision_boundary, decision_surface
from .curves import loss_curves, loss_differences, weights_over_epochs
from .epoch_windows import sliding_epochs
from .folds import cross_validation
from .gallery import jump_gallery, lr_beside_loss
from .landscape import Bowl, loss_landscape
from .memory_use import memory_bars
from .orders import sample_orders
from .reported import reported_loss, running_average
from .style import decimate, to_html
from .watched import watched_figure

__all__ = [
    "Bowl", "boundary_after", "cross_validation", "decimate", "decision_boundary", "decision_surface", "jump_gallery",
    "loss_curves", "loss_differences", "loss_landscape", "lr_beside_loss", "memory_bars", "reported_loss",
    "running_average", "sample_orders", "sliding_epochs", "to_html", "watched_figure", "weights_over_epochs",
]  # fmt: skip
