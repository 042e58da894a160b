"""The loss surface of a two-parameter model, and the path training takes across it, epoch by epoch.

A `linear` model on the one-feature `line` dataset predicts a·x + b: two parameters, so the
whole loss surface fits on a page. Its mean squared error over the training rows is a bowl
we compute in closed form from five averages of the data, so no model is needed to draw it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from .. import checks
from ..run import Run
from .axes import weight_path
from .style import EPOCH_LINE_WIDTH, OTHER_COLOURS, layout, series_colours, shades, translucent

MARGIN = 0.15  # share of the drawn range added on each side of the path and the best point


def loss_landscape(run: Run, *, resolution: int = 60) -> go.Figure:
    """Contours of the training loss over (slope a, intercept b), with the path training took.

    Needs a run of model "linear" on a one-feature regression dataset (such as "line"),
    trained with `track_weights=True`. Each epoch's stretch of the path is a darker shade
    than the one before; the star is the least-squares answer training is looking for.
    `resolution` is the number of grid points along each axis (10 to 400).

    >>> import epochviz as ev
    >>> run = ev.train("line", model="linear", epochs=5, lr=0.1, track_weights=True)
    >>> loss_landscape(run)  # doctest: +SKIP

    What to notice: with reset="never" the path keeps heading for the star across epochs;
    with reset="weights" every epoch starts again from the same start and gets no closer.
    """
    checks.whole("resolution", resolution, minimum=10, maximum=400)
    if not isinstance(run, Run):
        raise TypeError(f"run must be a Run (from epochviz.train); got {type(run).__name__}.")
    if not (run.config.model == "linear" and run.data.task == "regression" and run.data.features == 1):
        raise ValueError(
            f"loss_landscape draws a model='linear' run on a one-feature regression dataset such as 'line' "
            f"(two parameters: slope and intercept); this run is model={run.config.model_name!r} on "
            f"{run.data.name!r} ({run.data.features} feature(s), {run.data.task})."
        )
    if not run.config.track_weights:
        raise ValueError("loss_landscape needs the weights of every step: train the run with track_weights=True.")
    bowl = Bowl.of(run)
    epoch, done, path = weight_path(run)
    path, best = path.reshape(-1, 2), bowl.best()  # a run with no steps (diverged at once, first(0)) has no path
    slopes, intercepts = _grid(np.vstack([path, best]), resolution)
    colour, middle = series_colours([run.config.reset])[0], (slopes[0] + slopes[-1]) / 2
    finish = (
        f"end after {run.completed_epochs} epochs" if not run.diverged else f"diverged in epoch {run.diverged_at[0]}"
    )
    traces = [
        {
            "type": "contour", "name": "loss over (a, b)", "x": slopes, "y": intercepts,
            "z": bowl.loss(*np.meshgrid(slopes, intercepts)), "showscale": False, "ncontours": 18,
            "colorscale": [[0, "#FFFFFF"], [1, "#BDBDBD"]], "line": {"color": "#9E9E9E", "width": 1},
            "contours": {"showlabels": True, "labelfont": {"color": "#555555"}},
            "hovertemplate": "slope a %{x:.2f}, intercept b %{y:.2f}<br>loss %{z:.3g}<extra></extra>",
        },
        {
            "type": "scatter", "mode": "lines+markers", "name": "path of (a, b)", "x": path[:, 0], "y": path[:, 1],
            "customdata": np.column_stack([epoch, done, np.full(len(epoch), run.steps_per_epoch),
                                           bowl.loss(path[:, 0], path[:, 1])]),
            "line": {"color": translucent(colour, 0.5), "width": 1.5},
            "marker": {"color": epoch, "colorscale": shades(colour), "cmin": 1, "cmax": max(run.config.epochs, 2),
                       "size": 9, "colorbar": {"title": {"text": "epoch"}, "thickness": 15}},
            "hovertemplate": "epoch %{customdata[0]}, after %{customdata[1]} of %{customdata[2]} batches<br>"
                             "a %{x:.3f}, b %{y:.3f}<br>loss on the training rows %{customdata[3]:.3g}<extra></extra>",
        },
        _point("least-squares best", best, "star", OTHER_COLOURS[0], "best fit", vertical="bottom", middle=middle),
    ]  # fmt: skip
    if len(path):
        traces[2:2] = [_point("start", path[0], "circle-open", "#000000", "start", vertical="top", middle=middle),
                       _point(finish, path[-1], "square", colour, finish, vertical="top", middle=middle)]  # fmt: skip
    figure = layout(title=None, x_title="slope a", y_title="intercept b")
    figure["xaxis"]["range"], figure["yaxis"]["range"] = [slopes[0], slopes[-1]], [intercepts[0], intercepts[-1]]
    return go.Figure(data=traces, layout=figure)


@dataclass(frozen=True)
class Bowl:
    """The mean squared error of a·x + b over some rows, from the averages of x, y, x², xy and y².

    mean((a·x + b − y)²) = a²·mean(x²) + 2ab·mean(x) + b² − 2a·mean(xy) − 2b·mean(y) + mean(y²)
    """

    x: float
    y: float
    xx: float
    xy: float
    yy: float

    @classmethod
    def of(cls, run: Run) -> Bowl:
        """The bowl of `run`'s training rows."""
        x = run.data.x.numpy()[run.train_indices, 0].astype(np.float64)
        y = run.data.y.numpy()[run.train_indices].astype(np.float64)
        return cls(x.mean(), y.mean(), (x * x).mean(), (x * y).mean(), (y * y).mean())

    def loss(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * a * self.xx + 2 * a * b * self.x + b * b - 2 * a * self.xy - 2 * b * self.y + self.yy

    @property
    def curvature(self) -> float:
        """L: how sharply the bowl curves along its steepest direction (the largest eigenvalue of its Hessian).

        On a bowl, plain gradient descent (one full batch per step) with learning rate lr multiplies
        the distance to the bottom along that direction by (1 − lr·L) at every step. Below 1/L the
        weights creep in from one side; between 1/L and 2/L the factor is negative but smaller than
        1 in size, so every step overshoots the bottom and still lands closer (a zig-zag that
        converges); above 2/L every step lands further out than it started, and the run diverges.

        >>> bowl = Bowl(x=0.0, y=0.0, xx=1.0, xy=0.0, yy=0.0)  # x with mean 0 and mean square 1
        >>> bowl.curvature  # the loss a²·1 + b² curves by 2 along both a and b
        2.0
        """
        return float(np.linalg.eigvalsh(2 * np.array([[self.xx, self.x], [self.x, 1.0]])).max())

    def best(self) -> np.ndarray:
        """The bottom of the bowl, (a, b) of the least-squares line: where both slopes of the loss are 0.

        When every x is the same the bottom is a valley, not a point: the lowest (a, b) nearest 0.
        """
        return np.linalg.lstsq([[self.xx, self.x], [self.x, 1.0]], [self.xy, self.y], rcond=None)[0]


def _grid(points: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts covering `points` with a margin; at least ±0.5 around a single point."""
    low, high = points.min(axis=0), points.max(axis=0)
    pad = np.maximum((high - low) * MARGIN, 0.5)
    slopes = np.linspace(low[0] - pad[0], high[0] + pad[0], resolution)
    intercepts = np.linspace(low[1] - pad[1], high[1] + pad[1], resolution)
    return slopes, intercepts


def _point(name: str, at: np.ndarray, symbol: str, colour: str, text: str, *, vertical: str, middle: float) -> dict:
    """One marked point, its label on the side facing the middle so that the plot's edge does not cut it off."""
    side = "left" if at[0] > middle else "right"
    return {
        "type": "scatter", "mode": "markers+text", "name": name, "x": [float(at[0])], "y": [float(at[1])],
        "text": [text], "textposition": f"{vertical} {side}", "textfont": {"color": colour},
        "marker": {"symbol": symbol, "size": 18, "color": colour, "line": {"width": EPOCH_LINE_WIDTH, "color": colour}},
        "hovertemplate": f"{text}<br>a %{{x:.3f}}, b %{{y:.3f}}<extra></extra>",
    }  # fmt: skip
