"""How every epochviz figure looks: colours, fonts, layout, epoch marks, and saving to HTML.

One colour-blind-safe palette (Okabe–Ito) with one fixed colour per reset mode, so "blue"
means "weights never reset" in every figure of every notebook. Fonts and line widths are
sized for a projector at the back of a classroom.
"""

from __future__ import annotations

import os
from itertools import count
from pathlib import Path

import numpy as np
import plotly.graph_objects as go

from .. import checks
from ..policies import POLICIES

PALETTE = ("#0072B2", "#E69F00", "#D55E00", "#CC79A7", "#009E73", "#56B4E9", "#000000", "#F0E442")  # Okabe–Ito
RESET_COLOURS = {name: policy.colour for name, policy in POLICIES.items()}  # each reset policy keeps its own
OTHER_COLOURS = tuple(colour for colour in PALETTE if colour not in RESET_COLOURS.values())  # for everything else
# A decision boundary colours the classes of one run, whose reset mode its title names: orange and sky blue
# first, the pair told apart best, then the rest of the palette, black last, since points are outlined in it
CLASS_COLOURS = ("#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#F0E442", "#0072B2", "#D55E00", "#000000")
FONT_SIZE = 16  # pixels; smaller text is lost on a projector
HEIGHT = 460  # pixels; fixed, because widgets inside VBox/HBox otherwise guess a wrong size
EPOCH_LINE_WIDTH = 3  # per-epoch curves, the ones the learner should follow
MAX_POINTS = 4000  # per-step traces longer than this are thinned for display (see `decimate`)
BAND_LIMIT = 40  # up to this many epochs each gets a shaded band; above, a line every few epochs
LABEL_LIMIT = 8  # at most this many "epoch k" labels across the x range: each needs ~60 px of an 800 px figure
BAND_SHADE = "rgba(0, 0, 0, 0.06)"
LOSS_TITLES = {"classification": "loss (cross-entropy)", "regression": "loss (mean squared error)"}  # y axis, by task


def series_colours(modes: list[str | None]) -> list[str]:
    """One colour per series, given each series' reset mode (or None when it has none).

    The first series with a reset mode gets that mode's fixed colour; every other series takes
    the next colour of the rest of the palette (the colours of modes not shown come last), so no
    two series share a colour until there are more than eight.

    >>> series_colours(["never", "weights", "never"])
    ['#0072B2', '#D55E00', '#009E73']
    """
    claimed = {RESET_COLOURS[mode] for mode in modes if mode in RESET_COLOURS}
    spare = [colour for colour in (*OTHER_COLOURS, *RESET_COLOURS.values()) if colour not in claimed]
    others = iter(spare * (len(modes) // len(spare) + 1))
    colours: list[str] = []
    for mode in modes:
        fixed = RESET_COLOURS.get(mode)
        colours.append(fixed if fixed is not None and fixed not in colours else next(others))
    return colours


def translucent(colour: str, alpha: float) -> str:
    """`colour` ("#RRGGBB") as an rgba() string with opacity `alpha`, for fills and faint lines."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def shades(colour: str) -> list[list]:
    """A colour scale from a pale tint of `colour` to a dark shade of it: early → late."""
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    pale, dark = rgb + (255 - rgb) * 0.75, rgb * 0.45
    return [[0.0, _hex(pale)], [0.5, colour], [1.0, _hex(dark)]]


def _hex(rgb: np.ndarray) -> str:
    return "#" + "".join(f"{round(channel):02X}" for channel in rgb)


def layout(*, title: str | None, x_title: str, y_title: str, shapes: list[dict] | None = None) -> dict:
    """The layout every figure starts from: white template, large fonts, legend below the plot."""
    if title is not None and not isinstance(title, str):
        raise TypeError(f"title must be text or None; got {type(title).__name__}.")
    return {
        "template": "plotly_white",
        "height": HEIGHT,
        "autosize": True,
        "font": {"size": FONT_SIZE},
        "hoverlabel": {"font": {"size": FONT_SIZE}},
        # pinned inside the top margin: with automargin plotly placed long titles partly above the figure
        "title": {"text": title or "", "x": 0.01, "xanchor": "left", "y": 0.98, "yanchor": "top", "yref": "container"},
        # at the bottom of the figure, below the axis title: it never covers a curve or the epoch labels
        "legend": {"orientation": "h", "x": 0, "xanchor": "left", "yref": "container", "y": 0, "yanchor": "bottom"},
        "margin": {"l": 80, "r": 30, "t": 60 if title else 30, "b": 40},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
        "shapes": shapes or [],
    }


def epoch_marks(edges: np.ndarray, span: float | None = None) -> list[dict]:
    """Shapes marking the epochs along x; `edges[0]` is where training starts, `edges[k]` where epoch k ends.

    Up to BAND_LIMIT epochs, alternate epochs are shaded, and bands say "epoch k" no closer
    together than 1/LABEL_LIMIT of `span` (the width of the drawn x range, by default the
    epochs' own): every band, or every 2nd, 5th, 10th… when they are narrower, so labels never
    run into each other. Beyond BAND_LIMIT, a thin line every 5, 10, 20… epochs keeps it legible.
    They go in `layout.shapes`, so a live figure can swap them in one assignment.
    """
    epochs = len(edges) - 1
    if epochs <= BAND_LIMIT:
        span = edges[-1] - edges[0] if span is None else span
        every = _label_stride(np.diff(edges).min() if epochs else 0.0, span, epochs)
        return [_band(k, edges[k - 1], edges[k], labelled=k % every == 0) for k in range(1, epochs + 1)]
    every = next(stride for stride in _one_two_five() if epochs / stride <= BAND_LIMIT // 2)
    return [_line(edges[k]) for k in range(every, epochs + 1, every)]


def _label_stride(narrowest: float, span: float, epochs: int) -> int:
    """Label every n-th band (1, 2, 5, 10…) so labels stand at least span / LABEL_LIMIT apart; past `epochs`: none."""
    if narrowest <= 0 or span <= 0:
        return epochs + 1
    return next(stride for stride in _one_two_five() if stride > epochs or narrowest * stride * LABEL_LIMIT >= span)


def _band(epoch: int, start: float, end: float, *, labelled: bool) -> dict:
    band = {
        "type": "rect", "xref": "x", "yref": "paper", "x0": float(start), "x1": float(end), "y0": 0, "y1": 1,
        "fillcolor": BAND_SHADE if epoch % 2 else "rgba(0, 0, 0, 0)", "line": {"width": 0}, "layer": "below",
    }  # fmt: skip
    if labelled:
        # just above the plot area, where no data is drawn
        band["label"] = {"text": f"epoch {epoch}", "textposition": "top center", "yanchor": "bottom",
                         "font": {"color": "#666666"}}  # fmt: skip
    return band


def _line(x: float) -> dict:
    return {
        "type": "line", "xref": "x", "yref": "paper", "x0": float(x), "x1": float(x), "y0": 0, "y1": 1,
        "line": {"color": "rgba(0, 0, 0, 0.25)", "width": 1, "dash": "dot"}, "layer": "below",
    }  # fmt: skip


def _one_two_five():
    """1, 2, 5, 10, 20, 50, …: strides a reader can count in."""
    for power in count():
        for first in (1, 2, 5):
            yield first * 10**power


def decimate(values: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Indices of the points of `values` to draw: all of them, or a thinned set of at most `max_points`.

    The interior is cut into equal buckets and each bucket keeps its lowest and highest point,
    so spikes survive; the first and last points are always kept. Index the x values, the
    y values and any hover data with the result.

    >>> losses = np.r_[np.ones(5_000), 9.0, np.ones(5_000)]
    >>> kept = decimate(losses, max_points=100)
    >>> len(kept) <= 100, 5_000 in kept, kept[[0, -1]].tolist()
    (True, True, [0, 10000])
    """
    max_points = checks.whole("max_points", max_points, minimum=4)  # the first, the last, and one bucket's two
    try:
        values = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise TypeError(f"values must be a 1-D array of numbers: {error}") from None
    if values.ndim != 1:
        raise ValueError(f"values must be a 1-D array of numbers; got shape {values.shape}.")
    if len(values) <= max_points:
        return np.arange(len(values))
    interior = values[1:-1]
    width = -(-len(interior) // ((max_points - 2) // 2))  # ⌈points per bucket⌉
    buckets = -(-len(interior) // width)
    # repeating the last value fills the last bucket; argmin/argmax return the first occurrence, a real point
    grid = np.pad(interior, (0, buckets * width - len(interior)), mode="edge").reshape(buckets, width)
    starts = np.arange(buckets) * width + 1
    return np.unique(
        np.concatenate([[0], starts + grid.argmin(axis=1), starts + grid.argmax(axis=1), [len(values) - 1]])
    )


def to_html(fig: go.Figure, path: str | Path) -> Path:
    """Save `fig` as one standalone HTML file that opens with no internet (plotly.js is inside it).

    >>> to_html(loss_curves(run), "loss.html")  # doctest: +SKIP
    PosixPath('loss.html')

    What to notice: the file is large (about 5 MB) because it carries plotly.js itself, so it
    works on a classroom machine with no network.
    """
    if not isinstance(fig, go.Figure):
        raise TypeError(f"fig must be a plotly Figure (from an epochviz.plots function); got {type(fig).__name__}.")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file name or path; got {type(path).__name__}.")
    path = Path(path)
    fig.write_html(path, include_plotlyjs=True, full_html=True, config={"displaylogo": False})
    return path
